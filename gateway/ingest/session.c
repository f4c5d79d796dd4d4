/*
 * session.c - the redelivery guard of one broker session: its ring file, the check of a previous process's
 * slots against the log, and the candidates a resumed session's redeliveries are matched against. See
 * session.h for the design.
 */
#include "ingest/session.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "config/config.h"
#include "log/batch.h"
#include "store/store.h"
#include "util/diag.h"

#define MQ_RX_MAGIC     "MQRXRNG1"
#define MQ_RX_HEADER    4096u /* the file header's room; slots start on the next page */
#define MQ_RX_TAG       0x31585251u
#define MQ_RX_MIN_SLOTS 256u
#define MQ_RX_MAX_SLOTS 65536u
/*
 * The cover: how many of the latest stored messages are candidates, and how many messages after a reconnect
 * may still be redeliveries. Not the in-flight window: mosquitto 2.0.11 does not keep to it once it has a
 * backlog (each acknowledgement moves up to a window more queued messages into flight:
 * test_broker_redelivery), so everything mqlogd lags behind is in flight. Killed again and again under load
 * (two busy loops on two cores), the crash tests saw the broker resend from the same message to four
 * processes in a row, each killed within seconds of its start: with max_inflight 1000, its oldest
 * unacknowledged message was 17,000 stored messages back, and more than 16,000 redeliveries came before the
 * first new message. The cover is as large as is safe: far below the 65535 packet ids a broker numbering in
 * sequence (mosquitto) goes through before it reuses one, past which an old candidate could take a new
 * message with its id, topic and payload for a redelivery.
 */
#define MQ_RX_COVER 30000

struct mq_rx_header {
    char magic[8];
    uint32_t version;
    uint32_t nslots;
    char broker[1024];
    char client_id[1024];
};

/* One produced record (64 bytes, host byte order). crc covers the 60 bytes after it. */
struct mq_rx_slot {
    uint32_t crc;
    uint32_t tag;
    uint64_t seq; /* the message's number among the session's stored messages, from 1 */
    uint64_t digest;
    uint64_t topic_hash; /* of the log topic's name */
    int64_t offset;
    int64_t timestamp;
    int32_t partition;
    uint16_t pid;
    uint8_t qos;
    uint8_t pad[9];
};
_Static_assert(sizeof(struct mq_rx_slot) == 64, "a slot is 64 bytes");

struct mq_rx_cand {
    uint64_t key; /* the packet id, or in MQ_DEDUP_PAYLOAD the digest */
    uint64_t seq;
    uint64_t digest;
    uint32_t slot; /* one of the message's slots */
    bool used, retired;
};

struct mq_rx_session {
    char *broker, *client_id;
    int refs;
    int64_t window;
    pthread_mutex_t mu;
    int fd;
    uint8_t *map;
    size_t map_len;
    struct mq_rx_slot *slots;
    uint32_t nslots, next_slot;
    struct mq_part **parts; /* per slot: its record's partition; NULL when the slot holds nothing valid */
    uint64_t seq;           /* the last sequence number given out: counts stored messages only */
    struct mq_rx_cand *cand;
    uint32_t ccap;
    uint64_t matched;       /* redeliveries recognised since the last connection */
    uint64_t since_connect; /* messages done with since the last connection (each once) */
    int mode;               /* enum mq_dedup */
    bool warned_renumber;   /* said once that the broker renumbers redeliveries */
    atomic_bool dirty;      /* slots written since the last mq_rx_session_sync() */
    bool warned_sync;
    int unmatched_dups; /* DUP messages that matched no candidate since the last connection */
};

uint64_t mq_rx_digest(const void *topic, size_t topic_len, const void *payload, size_t payload_len)
{
    return XXH3_64bits_withSeed(payload, payload_len, XXH3_64bits(topic, topic_len));
}

static uint64_t mq_rx_topic_hash(const char *name)
{
    return XXH3_64bits(name, strlen(name));
}

static uint32_t mq_rx_slot_crc(const struct mq_rx_slot *sl)
{
    return mq_crc32c(0, (const uint8_t *)sl + 4, sizeof *sl - 4);
}

static bool mq_rx_slot_valid(const struct mq_rx_slot *sl)
{
    return sl->tag == MQ_RX_TAG && sl->seq > 0 && sl->crc == mq_rx_slot_crc(sl);
}

/* Slots for the cover, with room for messages stored in more than one topic. */
static uint32_t mq_rx_nslots(void)
{
    uint64_t want = (uint64_t)MQ_RX_COVER * 2;
    uint32_t n = MQ_RX_MIN_SLOTS;
    while (n < want && n < MQ_RX_MAX_SLOTS)
        n *= 2;
    return n;
}

/* The file's name: broker@client_id, bytes outside [A-Za-z0-9._-] written as %XX. */
static void mq_rx_path(struct mq_store *store, const char *broker, const char *client_id, char *path,
                       size_t size)
{
    int n = snprintf(path, size, "%s/sessions/", mq_store_dir(store));
    size_t at = n > 0 && (size_t)n < size ? (size_t)n : 0;
    const char *parts[2] = {broker, client_id};
    for (int k = 0; k < 2; k++) {
        for (const unsigned char *c = (const unsigned char *)parts[k]; *c && at + 4 < size; c++) {
            if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                *c == '.' || *c == '_' || *c == '-')
                path[at++] = (char)*c;
            else
                at += (size_t)snprintf(path + at, size - at, "%%%02X", *c);
        }
        if (k == 0 && at + 1 < size)
            path[at++] = '@';
    }
    snprintf(path + at, size - at, ".rx");
}

/* Maps a ring file of nslots slots (created, or replaced through a temporary file, when `create`). */
static enum mq_err mq_rx_map(struct mq_rx_session *s, const char *path, uint32_t nslots, bool create,
                             char *errstr, size_t errstr_size)
{
    size_t len = MQ_RX_HEADER + (size_t)nslots * sizeof(struct mq_rx_slot);
    int fd = -1;
    char tmp[4200];
    if (create) {
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)len) != 0)
            goto fail;
        struct mq_rx_header h = {.version = 1, .nslots = nslots};
        memcpy(h.magic, MQ_RX_MAGIC, 8);
        snprintf(h.broker, sizeof h.broker, "%s", s->broker);
        snprintf(h.client_id, sizeof h.client_id, "%s", s->client_id);
        if (pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || fdatasync(fd) != 0 || rename(tmp, path) != 0)
            goto fail;
    } else {
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            goto fail;
    }
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        goto fail;
    s->fd = fd;
    s->map = map;
    s->map_len = len;
    s->nslots = nslots;
    s->slots = (struct mq_rx_slot *)(s->map + MQ_RX_HEADER);
    return MQ_OK;
fail:;
    int e = errno;
    snprintf(errstr, errstr_size, "%s: %s", create ? tmp : path, MQ_STRERROR(e));
    if (fd >= 0)
        close(fd);
    return mq_err_from_errno(e);
}

/* The valid slots of an existing ring file, oldest first (at most `keep` of the newest). */
static enum mq_err mq_rx_load_old(const char *path, uint32_t *nslots_out, struct mq_rx_slot **out, size_t *n,
                                  bool *usable)
{
    *out = NULL;
    *n = 0;
    *usable = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MQ_OK : mq_err_from_errno(errno);
    struct mq_rx_header h;
    struct stat st;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h.magic, MQ_RX_MAGIC, 8) != 0 ||
        h.version != 1 || h.nslots < MQ_RX_MIN_SLOTS || h.nslots > MQ_RX_MAX_SLOTS || fstat(fd, &st) != 0 ||
        (size_t)st.st_size < MQ_RX_HEADER + (size_t)h.nslots * sizeof(struct mq_rx_slot)) {
        close(fd);
        MQ_WARN("%s: not a redelivery guard file of this version: starting a new one", path);
        return MQ_OK;
    }
    struct mq_rx_slot *v = malloc((size_t)h.nslots * sizeof *v);
    if (!v) {
        close(fd);
        return MQ_ERR_NOMEM;
    }
    ssize_t want = (ssize_t)((size_t)h.nslots * sizeof *v);
    if (pread(fd, v, (size_t)want, MQ_RX_HEADER) != want) {
        close(fd);
        free(v);
        return MQ_ERR_IO;
    }
    close(fd);
    *nslots_out = h.nslots;
    *usable = true;
    size_t k = 0;
    for (uint32_t i = 0; i < h.nslots; i++)
        if (mq_rx_slot_valid(&v[i]))
            v[k++] = v[i];
    *out = v;
    *n = k;
    return MQ_OK;
}

static int mq_rx_cmp_seq(const void *a, const void *b)
{
    const struct mq_rx_slot *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- checking a previous process's slots against the log ---- */

struct mq_rx_topic {
    uint64_t hash;
    const char *name;
};

static int mq_rx_cmp_topic(const void *a, const void *b)
{
    const struct mq_rx_topic *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

struct mq_rx_check {
    uint32_t slot;
    struct mq_part *part;
    int64_t offset;
};

static int mq_rx_cmp_check(const void *a, const void *b)
{
    const struct mq_rx_check *x = a, *y = b;
    if (x->part != y->part)
        return x->part < y->part ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The digest of a stored record: its mqtt.topic header and its value. */
static bool mq_rx_record_digest(const struct mq_record_view *rv, uint64_t *digest)
{
    const uint8_t *hp = rv->headers;
    struct mq_header h;
    while (mq_header_next(&hp, rv->headers_end, &h) == 1) {
        if (h.key_len == MQ_HDR_LEN(MQ_HDR_TOPIC) && memcmp(h.key, MQ_HDR_TOPIC, (size_t)h.key_len) == 0) {
            *digest = mq_rx_digest(h.value, h.value_len > 0 ? (size_t)h.value_len : 0, rv->value,
                                   rv->value_len > 0 ? (size_t)rv->value_len : 0);
            return true;
        }
    }
    return false;
}

/* Checks the slots of one partition (checks[0..n), sorted by offset) against its records. */
static void mq_rx_check_part(struct mq_rx_session *s, struct mq_rx_check *checks, size_t n)
{
    struct mq_part *part = checks[0].part;
    int64_t start = 0, end = 0;
    if (mq_part_offsets(part, &start, &end) != MQ_OK)
        return;
    size_t i = 0;
    while (i < n && checks[i].offset < start)
        i++; /* deleted by retention: no redelivery can be that old */
    if (i == n || checks[i].offset >= end)
        return;
    struct mq_cursor *cur = NULL;
    if (mq_cursor_open(part, checks[i].offset, &cur) != MQ_OK)
        return;
    struct mq_record_view rv;
    int r = 0;
    bool have = false;
    for (; i < n; i++) {
        while (!have || rv.offset < checks[i].offset) {
            r = mq_cursor_next(cur, &rv);
            if (r != 1)
                break;
            have = true;
        }
        if (r != 1)
            break;
        const struct mq_rx_slot *sl = &s->slots[checks[i].slot];
        uint64_t d;
        if (rv.offset == checks[i].offset && rv.timestamp == sl->timestamp && mq_rx_record_digest(&rv, &d) &&
            d == sl->digest)
            s->parts[checks[i].slot] = part;
    }
    mq_cursor_close(cur);
}

/* Keeps the slots whose record is in the log (s->parts[i] set); the others are cleared in the file. */
static enum mq_err mq_rx_check_all(struct mq_rx_session *s, struct mq_store *store, size_t *kept,
                                   size_t *dropped)
{
    *kept = *dropped = 0;
    struct mq_catalog_topic *topics = NULL;
    size_t ntopics = 0;
    enum mq_err err = mq_store_topic_list(store, &topics, &ntopics);
    if (err != MQ_OK)
        return err;
    struct mq_rx_topic *th = calloc(ntopics ? ntopics : 1, sizeof *th);
    struct mq_rx_check *checks = calloc(s->nslots, sizeof *checks);
    if (!th || !checks) {
        err = MQ_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < ntopics; i++)
        th[i] = (struct mq_rx_topic){mq_rx_topic_hash(topics[i].name), topics[i].name};
    qsort(th, ntopics, sizeof *th, mq_rx_cmp_topic);
    size_t nc = 0, valid = 0;
    for (uint32_t i = 0; i < s->nslots; i++) {
        const struct mq_rx_slot *sl = &s->slots[i];
        if (!mq_rx_slot_valid(sl))
            continue;
        valid++;
        struct mq_rx_topic key = {.hash = sl->topic_hash};
        const struct mq_rx_topic *t = bsearch(&key, th, ntopics, sizeof *th, mq_rx_cmp_topic);
        struct mq_part *part = NULL;
        if (t && mq_store_part(store, t->name, sl->partition, &part) == MQ_OK)
            checks[nc++] = (struct mq_rx_check){i, part, sl->offset};
    }
    qsort(checks, nc, sizeof *checks, mq_rx_cmp_check);
    for (size_t a = 0; a < nc;) {
        size_t b = a;
        while (b < nc && checks[b].part == checks[a].part)
            b++;
        mq_rx_check_part(s, checks + a, b - a);
        a = b;
    }
    for (uint32_t i = 0; i < s->nslots; i++) {
        if (s->parts[i])
            (*kept)++;
        else if (mq_rx_slot_valid(&s->slots[i]))
            s->slots[i].tag = 0; /* its record is not in the log: forget it */
    }
    *dropped = valid - *kept;
out:
    free(checks);
    free(th);
    free(topics);
    return err;
}

enum mq_err mq_rx_session_open(struct mq_store *store, const char *broker, const char *client_id,
                               int64_t window, int mode, struct mq_rx_session **out, char *errstr,
                               size_t errstr_size)
{
    struct mq_rx_session *s = calloc(1, sizeof *s);
    if (!s || !(s->broker = strdup(broker)) || !(s->client_id = strdup(client_id))) {
        if (s)
            free(s->broker);
        free(s);
        snprintf(errstr, errstr_size, "out of memory");
        return MQ_ERR_NOMEM;
    }
    s->fd = -1;
    s->refs = 1;
    s->window = window > 0 ? window : 1;
    s->mode = mode;
    pthread_mutex_init(&s->mu, NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/sessions", mq_store_dir(store));
    enum mq_err err = MQ_OK;
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        err = mq_err_from_errno(errno);
        snprintf(errstr, errstr_size, "%s: %s", path, MQ_STRERROR(errno));
        goto fail;
    }
    mq_rx_path(store, broker, client_id, path, sizeof path);

    uint32_t want = mq_rx_nslots(), have = 0;
    struct mq_rx_slot *old = NULL;
    size_t nold = 0;
    bool usable = false;
    err = mq_rx_load_old(path, &have, &old, &nold, &usable);
    if (err != MQ_OK) {
        snprintf(errstr, errstr_size, "%s: %s", path, mq_strerror(err));
        goto fail;
    }
    if (usable && have == want) {
        err = mq_rx_map(s, path, want, false, errstr, errstr_size);
    } else {
        /* new, or sized for another cover (an older version): a fresh file with the newest valid slots, in
         * sequence order */
        err = mq_rx_map(s, path, want, true, errstr, errstr_size);
        if (err == MQ_OK && nold) {
            qsort(old, nold, sizeof *old, mq_rx_cmp_seq);
            size_t from = nold > want ? nold - want : 0;
            memcpy(s->slots, old + from, (nold - from) * sizeof *old);
        }
    }
    free(old);
    if (err != MQ_OK)
        goto fail;
    s->parts = calloc(s->nslots, sizeof *s->parts);
    if (!s->parts) {
        err = MQ_ERR_NOMEM;
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    /* go on after the newest slot; the sequence never goes back, even past slots found invalid */
    uint32_t newest = 0;
    for (uint32_t i = 0; i < s->nslots; i++) {
        if (mq_rx_slot_valid(&s->slots[i]) && s->slots[i].seq >= s->seq) {
            s->seq = s->slots[i].seq;
            newest = i;
        }
    }
    s->next_slot = s->seq ? (newest + 1) % s->nslots : 0;
    size_t kept = 0, dropped = 0;
    err = mq_rx_check_all(s, store, &kept, &dropped);
    if (err != MQ_OK) {
        snprintf(errstr, errstr_size, "checking %s against the log: %s", path, mq_strerror(err));
        goto fail;
    }
    if (kept || dropped)
        MQ_INFO("broker %s session %s: %zu records of recent messages are in the log (a redelivery of them "
                "will not be stored again), %zu noted records never reached it",
                broker, client_id, kept, dropped);
    *out = s;
    return MQ_OK;
fail:
    mq_rx_session_close(s);
    return err;
}

void mq_rx_session_close(struct mq_rx_session *s)
{
    if (!s)
        return;
    if (s->map)
        munmap(s->map, s->map_len);
    if (s->fd >= 0)
        close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s->parts);
    free(s->cand);
    free(s->broker);
    free(s->client_id);
    free(s);
}

bool mq_rx_session_is(const struct mq_rx_session *s, const char *broker, const char *client_id)
{
    return strcmp(s->broker, broker) == 0 && strcmp(s->client_id, client_id) == 0;
}

int mq_rx_session_ref(struct mq_rx_session *s, int delta)
{
    pthread_mutex_lock(&s->mu);
    int r = s->refs += delta;
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- candidates ---- */

/* The candidate of key (a packet id, or a digest in MQ_DEDUP_PAYLOAD) and seq (0: any not retired), or with
 * insert the free entry where it goes. */
static struct mq_rx_cand *mq_rx_cand_find(struct mq_rx_session *s, uint64_t key, uint64_t seq, bool insert)
{
    if (!s->ccap)
        return NULL;
    for (uint32_t i = (uint32_t)(key * 0x9E3779B97F4A7C15ull >> 32) & (s->ccap - 1);;
         i = (i + 1) & (s->ccap - 1)) {
        struct mq_rx_cand *c = &s->cand[i];
        if (!c->used)
            return insert ? c : NULL;
        if (c->key == key && (seq ? c->seq == seq : !c->retired))
            return c;
    }
}

/* Where a candidate's records are: its message's slots, next to each other in the ring. */
static void mq_rx_cand_match(const struct mq_rx_session *s, const struct mq_rx_cand *c, struct mq_rx_match *m)
{
    *m = (struct mq_rx_match){.seq = c->seq, .digest = c->digest};
    uint32_t first = c->slot;
    for (int k = 1; k < MQ_TICKET_MAX; k++) {
        uint32_t prev = (first + s->nslots - 1) % s->nslots;
        if (s->slots[prev].seq != c->seq || !s->parts[prev] || !mq_rx_slot_valid(&s->slots[prev]))
            break;
        first = prev;
    }
    for (uint32_t i = first; m->n < MQ_TICKET_MAX; i = (i + 1) % s->nslots) {
        if (s->slots[i].seq != c->seq || !s->parts[i] || !mq_rx_slot_valid(&s->slots[i]))
            break;
        m->at[m->n].part = s->parts[i];
        m->at[m->n].offset = s->slots[i].offset;
        m->n++;
    }
}

/* Adds slot i to the candidates. */
static void mq_rx_cand_add(struct mq_rx_session *s, uint32_t i)
{
    const struct mq_rx_slot *sl = &s->slots[i];
    struct mq_rx_cand *c;
    if (s->mode == MQ_DEDUP_PAYLOAD) {
        c = mq_rx_cand_find(s, sl->digest, sl->seq, true); /* each message its own candidate */
    } else {
        /* the latest message with each packet id: the broker reused the id of any earlier one */
        c = mq_rx_cand_find(s, sl->pid, 0, true);
        if (c->used && c->seq > sl->seq)
            return;
        if (c->used && c->seq < sl->seq)
            c->used = false;
    }
    if (!c->used)
        *c = (struct mq_rx_cand){.used = true,
                                 .key = s->mode == MQ_DEDUP_PAYLOAD ? sl->digest : sl->pid,
                                 .seq = sl->seq,
                                 .digest = sl->digest,
                                 .slot = i};
}

void mq_rx_session_connected(struct mq_rx_session *s, bool session_present)
{
    pthread_mutex_lock(&s->mu);
    if (s->matched)
        MQ_INFO("broker %s session %s: %" PRIu64 " redelivered messages were stored already and not stored "
                "again",
                s->broker, s->client_id, s->matched);
    s->matched = 0;
    s->since_connect = 0;
    s->unmatched_dups = 0;
    free(s->cand);
    s->cand = NULL;
    s->ccap = 0;
    int64_t cover = MQ_RX_COVER;
    uint64_t oldest = s->seq > (uint64_t)cover ? s->seq - (uint64_t)cover + 1 : 1;
    uint32_t n = 0;
    for (uint32_t i = 0; session_present && s->mode != MQ_DEDUP_OFF && i < s->nslots; i++)
        if (s->parts[i] && s->slots[i].seq >= oldest && mq_rx_slot_valid(&s->slots[i]))
            n++;
    uint32_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    if (n && (s->cand = calloc(cap, sizeof *s->cand)) != NULL) {
        s->ccap = cap;
        for (uint32_t i = 0; i < s->nslots; i++) {
            const struct mq_rx_slot *sl = &s->slots[i];
            if (s->parts[i] && sl->seq >= oldest && sl->pid != 0 && mq_rx_slot_valid(sl))
                mq_rx_cand_add(s, i);
        }
    } else if (n) {
        MQ_ERROR("broker %s session %s: out of memory for the redelivery guard: redeliveries of stored "
                 "messages will be stored again",
                 s->broker, s->client_id);
    }
    pthread_mutex_unlock(&s->mu);
}

bool mq_rx_session_match(struct mq_rx_session *s, int pid, uint64_t digest, int dup, struct mq_rx_match *m)
{
    if (pid <= 0 || pid > 65535 || dup == 0)
        return false;
    pthread_mutex_lock(&s->mu);
    bool hit = false;
    if (s->since_connect >= (uint64_t)MQ_RX_COVER && s->cand) {
        /* redeliveries come first on a resumed session: by now they are over. since_connect counts each
         * message once, in mq_rx_session_done(): the attempts of a message the store refused (MQ_ERR_FULL,
         * retried for as long as it pushes back) are one message */
        free(s->cand);
        s->cand = NULL;
        s->ccap = 0;
    }
    if (s->mode == MQ_DEDUP_PAYLOAD) {
        /* renumbered redeliveries come first after the reconnect, with DUP set; without the flag only
         * that many messages are taken for redeliveries */
        struct mq_rx_cand *c =
            dup == 1 || s->since_connect < (uint64_t)s->window ? mq_rx_cand_find(s, digest, 0, false) : NULL;
        if (c)
            mq_rx_cand_match(s, c, m);
        hit = c && m->n > 0; /* none: its slots were overwritten since */
    } else {
        struct mq_rx_cand *c = mq_rx_cand_find(s, (uint64_t)pid, 0, false);
        if (c && c->digest == digest)
            mq_rx_cand_match(s, c, m);
        hit = c && c->digest == digest && m->n > 0;
        if (!hit && dup == 1 && !s->warned_renumber && s->unmatched_dups++ < 64) {
            /* a redelivery (DUP) of a stored message under another packet id: the broker renumbers */
            for (uint32_t i = 0; i < s->ccap && !s->warned_renumber; i++) {
                const struct mq_rx_cand *o = &s->cand[i];
                if (o->used && !o->retired && o->digest == digest) {
                    s->warned_renumber = true;
                    MQ_WARN("broker %s session %s: the broker redelivered a stored message under another "
                            "packet id (%d, stored as %d): it renumbers redeliveries, as RabbitMQ does, so "
                            "they are stored again; set dedup: payload for this broker",
                            s->broker, s->client_id, pid, (int)o->key);
                }
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return hit;
}

void mq_rx_session_done(struct mq_rx_session *s, int pid, const struct mq_rx_match *matched)
{
    if (pid <= 0 || pid > 65535)
        return;
    pthread_mutex_lock(&s->mu);
    struct mq_rx_cand *c = NULL;
    if (s->mode == MQ_DEDUP_PAYLOAD)
        c = matched ? mq_rx_cand_find(s, matched->digest, matched->seq, false) : NULL;
    else
        c = mq_rx_cand_find(s, (uint64_t)pid, 0, false); /* matched, or the broker reused the id */
    if (c)
        c->retired = true;
    s->since_connect++;
    if (matched && s->matched++ == 0)
        MQ_INFO("broker %s session %s: the broker redelivers messages stored before (first: packet id %d): "
                "they are acknowledged and not stored again",
                s->broker, s->client_id, pid);
    pthread_mutex_unlock(&s->mu);
}

/* ---- noting produced records ---- */

void mq_rx_session_begin(struct mq_rx_session *s, int pid, int qos, uint64_t digest, int64_t timestamp,
                         struct mq_rx_note *note)
{
    *note = (struct mq_rx_note){.s = s,
                                .seq = 0, /* given with the first record's slot */
                                .digest = digest,
                                .timestamp = timestamp,
                                .pid = (uint16_t)(pid > 0 && pid <= 65535 ? pid : 0),
                                .qos = (uint8_t)qos};
}

void mq_rx_session_note(void *opaque, struct mq_part *part, int64_t offset)
{
    struct mq_rx_note *n = opaque;
    struct mq_rx_session *s = n->s;
    struct mq_rx_slot sl = {.tag = MQ_RX_TAG,
                            .digest = n->digest,
                            .topic_hash = mq_rx_topic_hash(mq_part_topic(part)),
                            .offset = offset,
                            .timestamp = n->timestamp,
                            .partition = mq_part_id(part),
                            .pid = n->pid,
                            .qos = n->qos};
    pthread_mutex_lock(&s->mu);
    /* The sequence numbers the stored messages, and only them: the cover is counted in it. A message looked
     * at but not stored (a recognised redelivery, an attempt the store refused) takes none, or a process
     * that recognises the same thousands of redeliveries again after each of many kills would push stored,
     * still unacknowledged messages out of the cover (their redeliveries then stored again). */
    if (!n->seq)
        n->seq = ++s->seq;
    sl.seq = n->seq;
    sl.crc = mq_rx_slot_crc(&sl);
    uint32_t i = s->next_slot;
    s->next_slot = (i + 1) % s->nslots;
    memcpy(&s->slots[i], &sl, sizeof sl);
    atomic_store_explicit(&s->dirty, true, memory_order_relaxed);
    s->parts[i] = part;
    pthread_mutex_unlock(&s->mu);
}

void mq_rx_session_sync(struct mq_rx_session *s)
{
    if (!atomic_exchange(&s->dirty, false))
        return;
    if (msync(s->map, s->map_len, MS_SYNC) != 0 && !s->warned_sync) {
        s->warned_sync = true; /* the slots stay in the page cache: exact through kills, not power loss */
        MQ_WARN("broker %s session %s: cannot sync the redelivery guard: %s", s->broker, s->client_id,
                MQ_STRERROR(errno));
    }
}
