// sasl.js - KafkaJS's SASL (SaslHandshake v1, then SaslAuthenticate) against a SASL listener of mqlogd,
// driven by ../test_kafka_js.py. Usage: node sasl.js BOOTSTRAP TOPIC USER PASSWORD
//
// With each of PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 an admin client authenticates and reads the topic's
// offsets (PLAIN twice: the second login is answered from the endpoint's PBKDF2 memo); a wrong password
// gets KafkaJS's SASL authentication error. Any failed check throws, and the process exits 1.
'use strict'

const assert = require('node:assert/strict')
const { Kafka, logLevel } = require('kafkajs')

const [bootstrap, topic, username, password] = process.argv.slice(2)

function client(mechanism, pw) {
  return new Kafka({
    clientId: 'kafkajs-sasl-test',
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING, // the wrong password below is expected to fail
    retry: { retries: 0 },
    sasl: { mechanism, username, password: pw },
  })
}

async function offsets(mechanism) {
  const admin = client(mechanism, password).admin()
  await admin.connect()
  const res = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  assert.ok(res.length > 0, `${mechanism}: fetchTopicOffsets gave no partitions`)
  console.log(`kafkajs sasl: ${mechanism}: authenticated, ${res.length} partitions`)
}

async function main() {
  for (const mechanism of ['plain', 'plain', 'scram-sha-256', 'scram-sha-512']) await offsets(mechanism)
  for (const mechanism of ['plain', 'scram-sha-256']) {
    const admin = client(mechanism, password + '-wrong').admin()
    await assert.rejects(admin.connect(), err => err.name === 'KafkaJSSASLAuthenticationError',
      `${mechanism} with a wrong password`)
    console.log(`kafkajs sasl: ${mechanism} with a wrong password: KafkaJSSASLAuthenticationError`)
  }
  console.log('kafkajs sasl: all passed')
}

main().catch(err => {
  console.error('kafkajs sasl: FAILED: ' + (err && err.stack ? err.stack : err))
  process.exit(1)
})
