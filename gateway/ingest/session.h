/*
 * session.h - the redelivery guard of one broker session (inside the ingest layer; connectors see only the
 * handle and mq_ingest_session_*() in ingest.h).
 *
 * Why. A connector acknowledges a QoS 1/2 message only once its record is durable. A crash, a lost
 * connection or a broker restart between the two makes the broker deliver the message again on the
 * resumed session, with the same packet identifier (MQTT 3.1.1 and 5 both require it). Stored a second
 * time it would be a duplicate. The guard remembers, durably and in step with the records, which packet
 * ids of the session were stored, so that such a redelivery is recognised, acknowledged and not stored
 * again.
 *
 * How.
 *  - A ring of fixed 64-byte slots in a file of the data directory (sessions/<broker>@<client id>.rx),
 *    mapped into memory. Each record ingest produces for the session gets a slot: the message's number
 *    among the session's stored messages, its packet id and QoS, a digest of its MQTT topic and payload, and
 * where the record went (log topic, partition, offset) with its timestamp. The slot is written from the log's
 *    produce note (mq_part_produce_noted()), before any write can take the record to its segment: a kill of
 *    the process at any moment leaves no stored record without its slot. A slot written for a record that
 *    never reached the file is found out when the guard opens: each slot is checked against the record at
 *    its offset (same digest and timestamp), and the ones that do not match are dropped.
 *  - On a connection with session present, the messages stored before it become candidates: for each packet
 *    id, the latest message stored with it, among the cover, the session's last 30,000 stored messages
 *    (session.c says why so many). The cover counts stored messages only: a process that recognises
 *    the same thousands of redeliveries after each of many kills (each killed before its acknowledgements
 *    went out) must not push the stored messages they stand for out of it. Redeliveries come first on a
 *    resumed session: once as many messages as the cover have come since the connection (each counted
 *    once, however often the store refused it), the candidates are dropped. A message that
 *    arrives with a candidate's packet id and the same topic and payload digest (and, when the client
 *    library tells, with DUP set) is that message again: ingest does not store it where it was stored
 *    before. Any other message with that packet id retires the candidate: the broker has reused the id, so
 *    it had the acknowledgement. A connection without session present retires every candidate: the broker
 *    has nothing to redeliver.
 *  - The cover bounds both memory and the one residual risk: a broker that reused an id whose
 *    acknowledgement it had, for a message with the same topic and payload, while the first was still a
 *    candidate. Brokers that number their outgoing messages in sequence (mosquitto) reuse an id only after
 *    65535 others; the cover stays far below that. A broker whose oldest unacknowledged message lies
 *    further back than the cover has its redeliveries stored again: duplicates, never a loss.
 *
 * The slots are in host byte order: the file never leaves the machine. A killed process leaves the page
 * cache, and so the slots, intact. Power loss: a connector that acknowledges a batch at a time (mosquitto)
 * syncs the ring after the batch's records are durable and before the acknowledgements go out
 * (mq_ingest_session_sync()), which costs nothing measurable there; only a power loss in the moment between
 * the two syncs can leave a durable, unacknowledged record without its slot, and its redelivery is then
 * stored again. A connector that acknowledges one message per flush (paho) does not: a second sync per
 * message cost 37% of its rate (tests/bench/ingest); its slots reach the disk by the kernel's writeback
 * (seconds), and after a power loss a redelivery whose slot had not is stored again. Either way a
 * duplicate, never a loss.
 *
 * Threads: one connector thread delivers a session's messages; connected() may come from another. A mutex
 * guards the state; the produce note takes it under the partition's lock, so nothing here calls into the
 * log while holding it.
 */
#ifndef MQ_INGEST_SESSION_H
#define MQ_INGEST_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest.h"
#include "log/log.h"
#include "util/err.h"

struct mq_store;

/* Opens (creating when missing) the guard of session client_id at broker in the store's directory, and
 * checks the slots a previous process left against the log. window: the broker's in-flight window
 * (max_inflight): with dedup: payload and no DUP flag from the library, only that many messages after a
 * reconnect are taken for redeliveries. mode: enum mq_dedup (config.h). */
enum mq_err mq_rx_session_open(struct mq_store *store, const char *broker, const char *client_id,
                               int64_t window, int mode, struct mq_rx_session **out, char *errstr,
                               size_t errstr_size);
void mq_rx_session_close(struct mq_rx_session *s);

bool mq_rx_session_is(const struct mq_rx_session *s, const char *broker, const char *client_id);
int mq_rx_session_ref(struct mq_rx_session *s, int delta); /* returns the new count */

/* The digest a redelivery must match: of the MQTT topic and the payload. */
uint64_t mq_rx_digest(const void *topic, size_t topic_len, const void *payload, size_t payload_len);

/* A stored message that a redelivery matched: where its records are. */
struct mq_rx_match {
    uint64_t seq, digest;
    int n;
    struct {
        struct mq_part *part;
        int64_t offset;
    } at[MQ_TICKET_MAX];
};

/*
 * Looks for the candidate a message with packet id pid (1..65535), digest and dup (-1: unknown, 0, 1) would
 * be a redelivery of. True and *m filled when it is one. Changes nothing: the caller calls
 * mq_rx_session_done() once the message is stored (a message the store refused comes again).
 */
bool mq_rx_session_match(struct mq_rx_session *s, int pid, uint64_t digest, int dup, struct mq_rx_match *m);

/* The message with packet id pid is stored, or (matched: what the match returned, else NULL) known stored,
 * or dropped for good: retires the candidate it matched, or with packet ids the candidate of pid, and counts
 * the message against the cover of the redeliveries (once per message: not per attempt). */
void mq_rx_session_done(struct mq_rx_session *s, int pid, const struct mq_rx_match *matched);

/* The note context of one message: filled by mq_rx_session_begin(), passed to mq_part_produce_noted() with
 * mq_rx_session_note for each of its records. */
struct mq_rx_note {
    struct mq_rx_session *s;
    uint64_t seq; /* the message's number: 0 until the note of its first record gives it one */
    uint64_t digest;
    int64_t timestamp;
    uint16_t pid;
    uint8_t qos;
};
void mq_rx_session_begin(struct mq_rx_session *s, int pid, int qos, uint64_t digest, int64_t timestamp,
                         struct mq_rx_note *note);
mq_produce_note_fn mq_rx_session_note;

/* A connection to the broker is up: session_present as its CONNACK said. */
void mq_rx_session_connected(struct mq_rx_session *s, bool session_present);

/* Makes the slots written so far durable (one msync of the ring, when any was written since the last). */
void mq_rx_session_sync(struct mq_rx_session *s);

#endif
