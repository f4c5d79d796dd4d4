/*
 * cursor.c - reading records: the cursor every reader uses (log.h), and under it the batch scanner that
 * walks one segment file (log_int.h), which recovery, reader refresh and verify use directly.
 *
 * Layers. The scanner knows a file and a byte range: it buffers reads, parses each batch header, checks the
 * size and, when the batch's bytes are wanted, the CRC. The cursor knows a partition: it asks mq_part_read()
 * for a slice of whole visible batches (which finds the segment, takes a reference on it and bounds the
 * range by what readers may see), walks the slice with the scanner, then asks for the next slice. Records
 * come from the batches through mq_cursor_decode(), the one place where compressed batches are decoded: into
 * a buffer of the cursor, reused from batch to batch and bounded by MQ_BATCH_MAX_RECORDS_SIZE.
 */
#include "log/log_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MQ_SCAN_CHUNK         (256 * 1024)  /* bytes the scanner reads at a time, at least, by default */
#define MQ_CURSOR_SLICE_BYTES (1024 * 1024) /* bytes of batches the cursor asks mq_part_read() for */

/* ---- the scanner: batches of one file ---- */

void mq_scan_init(struct mq_scan *sc, int fd, int64_t pos, int64_t end)
{
    memset(sc, 0, sizeof *sc);
    sc->fd = fd;
    sc->pos = pos;
    sc->end = end;
}

void mq_scan_reset(struct mq_scan *sc, int fd, int64_t pos, int64_t end)
{
    sc->fd = fd;
    sc->pos = pos;
    sc->end = end;
    sc->buf_pos = 0;
    sc->buf_len = 0;
    sc->bad_crc = false;
}

void mq_scan_free(struct mq_scan *sc)
{
    free(sc->buf);
    sc->buf = NULL;
    sc->cap = 0;
    sc->buf_len = 0;
}

/* Makes [sc->pos, sc->pos + need) available in the buffer. Returns 1, 0 when the file (or end) holds fewer
 * bytes, -1 on an I/O error (errno set). */
static int mq_scan_fill(struct mq_scan *sc, size_t need)
{
    if (sc->pos >= sc->buf_pos && sc->pos + (int64_t)need <= sc->buf_pos + (int64_t)sc->buf_len)
        return 1;
    if (sc->pos + (int64_t)need > sc->end)
        return 0;
    size_t chunk = sc->chunk ? sc->chunk : MQ_SCAN_CHUNK;
    size_t want = need > chunk ? need : chunk;
    if ((int64_t)want > sc->end - sc->pos)
        want = (size_t)(sc->end - sc->pos);
    if (want > sc->cap) {
        uint8_t *nb = realloc(sc->buf, want);
        if (!nb) {
            errno = ENOMEM;
            return -1;
        }
        sc->buf = nb;
        sc->cap = want;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(sc->fd, sc->buf + got, want - got, sc->pos + (int64_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            sc->buf_len = 0;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    sc->buf_pos = sc->pos;
    sc->buf_len = got;
    return got >= need ? 1 : 0;
}

enum mq_scan_res mq_scan_next(struct mq_scan *sc, bool want_body, struct mq_batch_info *bi,
                              const uint8_t **body)
{
    sc->bad_crc = false;
    if (sc->pos >= sc->end)
        return MQ_SCAN_END;
    int r = mq_scan_fill(sc, MQ_BATCH_HEADER_SIZE);
    if (r < 0)
        return MQ_SCAN_IOERR;
    if (r == 0)
        return MQ_SCAN_PARTIAL;
    const uint8_t *p = sc->buf + (sc->pos - sc->buf_pos);
    enum mq_err err = mq_batch_parse_header(p, MQ_BATCH_HEADER_SIZE, bi);
    if (err == MQ_ERR_RANGE)
        return MQ_SCAN_PARTIAL;
    if (err != MQ_OK)
        return MQ_SCAN_BAD;
    size_t size = mq_batch_size(bi);
    if (sc->pos + (int64_t)size > sc->end)
        return MQ_SCAN_PARTIAL;
    if (want_body) {
        r = mq_scan_fill(sc, size);
        if (r < 0)
            return MQ_SCAN_IOERR;
        if (r == 0)
            return MQ_SCAN_PARTIAL;
        p = sc->buf + (sc->pos - sc->buf_pos);
        if (!mq_batch_crc_ok(p, bi)) {
            sc->bad_crc = true;
            sc->crc_computed = mq_crc32c(0, p + MQ_BATCH_CRC_START, size - MQ_BATCH_CRC_START);
            return MQ_SCAN_BAD;
        }
        if (body)
            *body = p;
    }
    sc->pos += (int64_t)size;
    return MQ_SCAN_BATCH;
}

/* ---- the cursor: records of one partition ---- */

struct mq_cursor {
    struct mq_part *part;
    int64_t offset; /* the next batch read starts here */
    int64_t want;   /* records below this are skipped (an open or seek inside a batch, a rewritten batch) */

    struct mq_slice slice; /* the visible batches being walked; slice.ref is NULL when none */
    struct mq_scan scan;   /* over [slice.pos, slice.pos + slice.len) */
    struct mq_scan hdrs;   /* mq_part_read_with()'s walk over the batch headers, its buffer kept */

    struct mq_batch_info bi; /* the batch last read */
    const uint8_t *batch;    /* its bytes, in scan's buffer */
    bool in_records;         /* its records are being returned through it */
    struct mq_record_iter it;
    struct mq_codec_buf inflated; /* the records of a compressed batch, decompressed */

    struct mq_cursor_fault fault;
    char *fault_path;
    char fault_what[128];
};

static void mq_cursor_drop_slice(struct mq_cursor *cur)
{
    mq_slice_release(&cur->slice);
    memset(&cur->slice, 0, sizeof cur->slice);
    cur->slice.fd = -1;
    cur->in_records = false;
}

/* Records where a batch-level problem was found and returns -err. */
static int mq_cursor_fail(struct mq_cursor *cur, enum mq_err err, int64_t pos, int64_t base, const char *fmt,
                          ...) __attribute__((format(printf, 5, 6)));

static int mq_cursor_fail(struct mq_cursor *cur, enum mq_err err, int64_t pos, int64_t base, const char *fmt,
                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cur->fault_what, sizeof cur->fault_what, fmt, ap);
    va_end(ap);
    free(cur->fault_path);
    cur->fault_path = NULL;
    if (pos >= 0 && cur->slice.ref)
        cur->fault_path = strdup(((struct mq_segment *)cur->slice.ref)->path_log);
    cur->fault = (struct mq_cursor_fault){.path = cur->fault_path ? cur->fault_path : "",
                                          .position = cur->fault_path ? pos : -1,
                                          .base_offset = base,
                                          .what = cur->fault_what};
    return -(int)err;
}

static enum mq_err mq_cursor_new(struct mq_part *part, int64_t offset, struct mq_cursor **curp)
{
    struct mq_cursor *cur = calloc(1, sizeof *cur);
    if (!cur)
        return MQ_ERR_NOMEM;
    cur->part = part;
    cur->offset = cur->want = offset;
    cur->slice.fd = -1;
    mq_scan_init(&cur->scan, -1, 0, 0);
    mq_scan_init(&cur->hdrs, -1, 0, 0);
    cur->fault = (struct mq_cursor_fault){.path = "", .position = -1, .base_offset = -1, .what = ""};
    *curp = cur;
    return MQ_OK;
}

enum mq_err mq_cursor_open(struct mq_part *part, int64_t offset, struct mq_cursor **curp)
{
    int64_t start, end;
    enum mq_err err = mq_part_offsets(part, &start, &end);
    if (err != MQ_OK)
        return err;
    if (offset < start || offset > end)
        return MQ_ERR_RANGE;
    return mq_cursor_new(part, offset, curp);
}

enum mq_err mq_cursor_open_time(struct mq_part *part, int64_t ts, struct mq_cursor **curp)
{
    int64_t offset, start, end;
    enum mq_err err = mq_part_offset_for_time(part, ts, &offset);
    if (err == MQ_OK)
        err = mq_part_offsets(part, &start, &end);
    if (err != MQ_OK)
        return err;
    if (offset < 0 || offset > end) /* no record that new yet: only what arrives later */
        offset = end;
    if (offset < start) /* retention deleted it since the lookup */
        offset = start;
    return mq_cursor_new(part, offset, curp);
}

void mq_cursor_close(struct mq_cursor *cur)
{
    if (!cur)
        return;
    mq_cursor_drop_slice(cur);
    mq_scan_free(&cur->scan);
    mq_scan_free(&cur->hdrs);
    mq_codec_buf_free(&cur->inflated);
    free(cur->fault_path);
    free(cur);
}

void mq_cursor_seek(struct mq_cursor *cur, int64_t offset)
{
    mq_cursor_drop_slice(cur);
    cur->offset = cur->want = offset;
}

int64_t mq_cursor_position(const struct mq_cursor *cur)
{
    return cur->offset;
}

bool mq_cursor_buffered(const struct mq_cursor *cur)
{
    if (cur->in_records && cur->it.remaining > 0)
        return true;
    return cur->slice.ref && cur->scan.pos < cur->scan.end;
}

const struct mq_cursor_fault *mq_cursor_fault(const struct mq_cursor *cur)
{
    return &cur->fault;
}

/* Reads the next visible batch into cur->bi and cur->batch: 1, 0 at the visible end, or -err. */
static int mq_cursor_read_batch(struct mq_cursor *cur)
{
    cur->in_records = false;
    for (;;) {
        if (!cur->slice.ref) {
            /* Every record below offset has been returned or skipped. A segment rewritten since the last
             * slice (recompaction) may hold offset inside a larger batch that begins before it: its first
             * records must not come again. */
            if (cur->offset > cur->want)
                cur->want = cur->offset;
            enum mq_err err =
                mq_part_read_with(cur->part, cur->offset, MQ_CURSOR_SLICE_BYTES, &cur->slice, &cur->hdrs);
            if (err != MQ_OK) {
                mq_cursor_drop_slice(cur);
                return mq_cursor_fail(cur, err, -1, cur->offset, "reading at offset %" PRId64 ": %s",
                                      cur->offset, mq_strerror(err));
            }
            if (!cur->slice.ref) {
                /* the visible end; past damage at the end of a segment, the read may have moved on */
                if (cur->slice.next_offset > cur->offset)
                    cur->offset = cur->slice.next_offset;
                return 0;
            }
            mq_scan_reset(&cur->scan, cur->slice.fd, cur->slice.pos,
                          cur->slice.pos + (int64_t)cur->slice.len);
            cur->scan.chunk = cur->slice.len; /* the slice in one read: its batches are all wanted */
        }
        int64_t pos = cur->scan.pos;
        struct mq_batch_info bi;
        const uint8_t *body = NULL;
        switch (mq_scan_next(&cur->scan, true, &bi, &body)) {
        case MQ_SCAN_BATCH:
            cur->bi = bi;
            cur->batch = body;
            if (mq_batch_last_offset(&bi) + 1 > cur->offset)
                cur->offset = mq_batch_last_offset(&bi) + 1;
            return 1;
        case MQ_SCAN_END:
            /* The slice is done; records removed at its end (compaction) are skipped over. */
            if (cur->slice.next_offset > cur->offset)
                cur->offset = cur->slice.next_offset;
            mq_cursor_drop_slice(cur);
            continue;
        case MQ_SCAN_BAD:
            if (cur->scan.bad_crc)
                return mq_cursor_fail(cur, MQ_ERR_CORRUPT, pos, bi.base_offset,
                                      "CRC mismatch: stored 0x%08" PRIx32 ", computed 0x%08" PRIx32, bi.crc,
                                      cur->scan.crc_computed);
            return mq_cursor_fail(cur, MQ_ERR_CORRUPT, pos, cur->offset, "malformed batch header");
        case MQ_SCAN_PARTIAL: /* a slice holds whole batches: a header that disagrees with it is damage */
            return mq_cursor_fail(cur, MQ_ERR_CORRUPT, pos, cur->offset, "malformed batch header");
        case MQ_SCAN_IOERR:
        default: {
            int e = errno;
            return mq_cursor_fail(cur, e == ENOMEM ? MQ_ERR_NOMEM : MQ_ERR_IO, pos, cur->offset,
                                  "read error: %s", MQ_STRERROR(e));
        }
        }
    }
}

int mq_cursor_next_batch(struct mq_cursor *cur, struct mq_cursor_batch *batch)
{
    int r = mq_cursor_read_batch(cur);
    if (r == 1) {
        batch->info = cur->bi;
        batch->data = cur->batch;
    }
    return r;
}

/*
 * Prepares cur->it over the records of the batch just read. The one place where compressed batches are
 * decoded: the codec inflates the records into cur->inflated and the iterator walks them there. A frame that
 * does not decompress (corrupt, truncated, or inflating past the bound) is damage like a bad CRC; a codec
 * mqlog cannot decode is MQ_ERR_INVAL.
 */
static int mq_cursor_decode(struct mq_cursor *cur)
{
    int codec = cur->bi.attributes & MQ_BATCH_ATTR_COMPRESSION_MASK;
    int64_t pos = cur->scan.pos - (int64_t)mq_batch_size(&cur->bi);
    enum mq_err err = mq_record_iter_open(&cur->it, cur->batch, &cur->bi, &cur->inflated);
    if (err == MQ_OK) {
        cur->in_records = true;
        return 1;
    }
    if (codec == MQ_CODEC_NONE)
        return mq_cursor_fail(cur, MQ_ERR_CORRUPT, pos, cur->bi.base_offset, "malformed batch header");
    if (err == MQ_ERR_INVAL)
        return mq_cursor_fail(cur, err, pos, cur->bi.base_offset,
                              "compressed with %s (codec %d): not decoded", mq_codec_name(codec), codec);
    if (err == MQ_ERR_NOMEM)
        return mq_cursor_fail(cur, err, pos, cur->bi.base_offset, "out of memory decompressing %s records",
                              mq_codec_name(codec));
    return mq_cursor_fail(cur, MQ_ERR_CORRUPT, pos, cur->bi.base_offset,
                          "%s records do not decompress (corrupt, truncated or over %zu bytes)",
                          mq_codec_name(codec), MQ_BATCH_MAX_RECORDS_SIZE);
}

int mq_cursor_next(struct mq_cursor *cur, struct mq_record_view *rv)
{
    for (;;) {
        if (cur->in_records) {
            int r = mq_record_next(&cur->it, rv);
            if (r == 1 && rv->offset < cur->want)
                continue;
            if (r == 1)
                return 1;
            cur->in_records = false;
            if (r < 0) {
                /* Read the batch again next time, so that the same call fails the same way. */
                cur->offset = cur->bi.base_offset > cur->want ? cur->bi.base_offset : cur->want;
                int64_t pos = cur->scan.pos - (int64_t)mq_batch_size(&cur->bi);
                int err = mq_cursor_fail(cur, MQ_ERR_CORRUPT, pos, cur->bi.base_offset, "malformed record");
                mq_cursor_drop_slice(cur);
                return err;
            }
        }
        int r = mq_cursor_read_batch(cur);
        if (r <= 0)
            return r;
        if (cur->bi.attributes & MQ_BATCH_ATTR_CONTROL)
            continue; /* a transaction marker: not data (mqlog writes none) */
        r = mq_cursor_decode(cur);
        if (r < 0) {
            /* as above: the batch stays the next to read */
            cur->offset = cur->bi.base_offset > cur->want ? cur->bi.base_offset : cur->want;
            mq_cursor_drop_slice(cur);
            return r;
        }
    }
}
