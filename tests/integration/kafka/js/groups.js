// groups.js - KafkaJS against mqlogd's Kafka endpoint (issue 12), driven by ../test_kafka_js.py, which
// starts mqlogd and stores the records first. Usage: node groups.js BOOTSTRAP TOPIC PARTITIONS PER_PARTITION
//
// 1. admin.fetchTopicOffsets: every partition has low 0 and high PER_PARTITION.
// 2. A consumer in group "jsg" reads every record from the beginning and commits; while it runs,
//    admin.describeGroups shows the group Stable with its one member holding every partition, and
//    admin.listGroups lists it as a consumer group.
// 3. The consumer stops: the group is Empty with no members, and admin.fetchOffsets gives PER_PARTITION.
// 4. admin.resetOffsets({earliest: true}) commits Kafka's EARLIEST sentinel (-2), which fetchOffsets shows
//    as a broker does; fetchOffsets({resolveOffsets: true}) turns it into 0 (the low watermark) and
//    commits that, which a plain fetchOffsets confirms.
// 5. A new consumer in "jsg" that would start at the end without a committed offset (fromBeginning false)
//    reads every record again.
//
// Prints one line per step; any failed check throws, and the process exits 1 with the reason.
'use strict'

const assert = require('node:assert/strict')
const { Kafka, logLevel, AssignerProtocol } = require('kafkajs')

const [bootstrap, topic, partitionsArg, perPartitionArg] = process.argv.slice(2)
const partitions = Number(partitionsArg)
const perPartition = Number(perPartitionArg)
const group = 'jsg'
const total = partitions * perPartition
const STEP_MS = 30000 // every wait below is bounded by this deadline

const kafka = new Kafka({
  clientId: 'kafkajs-test',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  retry: { retries: 3 },
})

const started = Date.now()
function step(msg) {
  console.log(`kafkajs: [${((Date.now() - started) / 1000).toFixed(1)} s] ${msg}`)
}

// Resolves once cond() holds, polling every 20 ms; rejects after STEP_MS naming what it waited for.
async function waitFor(cond, what) {
  const deadline = Date.now() + STEP_MS
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what)
    await new Promise(resolve => setTimeout(resolve, 20)) // the poll interval of this deadline loop
  }
}

// The sorted partition numbers of one topic in a member's assignment (KafkaJS's own decoder).
function assigned(member) {
  const a = AssignerProtocol.MemberAssignment.decode(member.memberAssignment)
  return (a.assignment[topic] || []).slice().sort((x, y) => x - y)
}

function allPartitions() {
  return [...Array(partitions).keys()]
}

// Offsets of group for topic as {partition: offset string}, sorted by partition.
async function committed(admin, opts = {}) {
  const res = await admin.fetchOffsets({ groupId: group, topics: [topic], ...opts })
  assert.equal(res.length, 1, 'fetchOffsets: one topic')
  const out = {}
  for (const p of res[0].partitions) out[p.partition] = p.offset
  return out
}

function uniform(value) {
  const out = {}
  for (const p of allPartitions()) out[p] = String(value)
  return out
}

// Runs a consumer of group until it has seen every record; returns it still running, with the records
// seen as "partition:offset:value" strings.
async function consumeAll(fromBeginning) {
  // A short fetch wait: disconnect() waits for the fetch under way, which the endpoint holds this long
  // when there is nothing new, as Kafka does.
  const consumer = kafka.consumer({
    groupId: group,
    heartbeatInterval: 500,
    sessionTimeout: 10000,
    maxWaitTimeInMs: 200,
  })
  const seen = []
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning })
  await consumer.run({
    autoCommitThreshold: 1, // commit after each record, so a stop commits the whole read
    eachMessage: async ({ partition, message }) => {
      seen.push(`${partition}:${message.offset}:${message.value.toString()}`)
    },
  })
  await waitFor(() => seen.length >= total, `${total} records (have ${seen.length})`)
  return { consumer, seen }
}

function checkRecords(seen) {
  assert.equal(seen.length, total, 'records read')
  const expect = []
  for (const p of allPartitions())
    for (let o = 0; o < perPartition; o++) expect.push(`${p}:${o}:p${p}-r${o}`)
  assert.deepEqual(seen.slice().sort(), expect.sort(), 'the records, by partition and offset')
}

async function describe(admin) {
  const { groups } = await admin.describeGroups([group])
  assert.equal(groups.length, 1, 'describeGroups: one group')
  assert.equal(groups[0].errorCode, 0, 'describeGroups: error code')
  return groups[0]
}

async function main() {
  const admin = kafka.admin()
  await admin.connect()

  const offsets = await admin.fetchTopicOffsets(topic)
  offsets.sort((a, b) => a.partition - b.partition)
  assert.deepEqual(
    offsets.map(o => [o.partition, o.low, o.high]),
    allPartitions().map(p => [p, '0', String(perPartition)]),
    'fetchTopicOffsets'
  )
  step(`fetchTopicOffsets: ${partitions} partitions, low 0, high ${perPartition}`)

  const first = await consumeAll(true)
  checkRecords(first.seen)
  await waitFor(async () => {
    const c = await committed(admin)
    return allPartitions().every(p => c[p] === String(perPartition))
  }, 'the first consumer to commit every record')
  step(`consumer read ${total} records and committed ${perPartition} per partition`)

  const live = await describe(admin)
  assert.equal(live.state, 'Stable', 'describeGroups: state of the running group')
  assert.equal(live.protocolType, 'consumer', 'describeGroups: protocol type')
  assert.equal(live.protocol, 'RoundRobinAssigner', 'describeGroups: protocol (KafkaJS default assigner)')
  assert.equal(live.members.length, 1, 'describeGroups: members of the running group')
  const m = live.members[0]
  assert.equal(m.clientId, 'kafkajs-test', 'describeGroups: member client id')
  assert.match(m.clientHost, /127\.0\.0\.1/, 'describeGroups: member host')
  assert.deepEqual(assigned(m), allPartitions(), 'describeGroups: member assignment')
  step(`describeGroups (running): Stable, RoundRobinAssigner, member ${m.memberId} holds ${assigned(m)}`)

  const { groups: listed } = await admin.listGroups()
  const mine = listed.filter(g => g.groupId === group)
  assert.deepEqual(mine, [{ groupId: group, protocolType: 'consumer' }], 'listGroups: ' + JSON.stringify(listed))
  step('listGroups: ' + JSON.stringify(listed))

  await first.consumer.disconnect()
  const idle = await describe(admin)
  assert.equal(idle.state, 'Empty', 'describeGroups: state after the consumer left')
  assert.equal(idle.members.length, 0, 'describeGroups: members after the consumer left')
  assert.deepEqual(await committed(admin), uniform(perPartition), 'fetchOffsets after the consumer left')
  step(`consumer stopped: describeGroups Empty, no members; fetchOffsets ${perPartition} per partition`)

  // About 10 s of KafkaJS's own: resetOffsets runs a consumer of its own with the default 5 s fetch wait,
  // which sleeps that long while paused before it commits, and again while it stops.
  await admin.resetOffsets({ groupId: group, topic, earliest: true })
  assert.deepEqual(await committed(admin), uniform(-2), 'fetchOffsets after resetOffsets (earliest)')
  assert.deepEqual(await committed(admin, { resolveOffsets: true }), uniform(0), 'fetchOffsets resolved')
  assert.deepEqual(await committed(admin), uniform(0), 'fetchOffsets after resolving')
  step('resetOffsets earliest: committed -2 (EARLIEST), resolved and committed as 0')

  const second = await consumeAll(false)
  checkRecords(second.seen)
  await second.consumer.disconnect()
  step(`a new consumer (fromBeginning false) read all ${total} records again`)

  await admin.disconnect()
  step('all passed')
}

main().catch(err => {
  console.error('kafkajs: FAILED: ' + (err && err.stack ? err.stack : err))
  process.exit(1)
})
