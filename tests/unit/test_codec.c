/*
 * test_codec.c - the batch codecs (log/codec.h) and compressed batches through the log: round trips of every
 * codec at awkward sizes, frames cut short or with flipped bytes (damage, never a crash: run under ASan),
 * decompression bombs refused at the bound without holding more, batches the builder compresses (and the
 * tiny ones it leaves alone), and a partition written with lz4 and zstd read back by the cursor, verified by
 * mq_log_verify() and found by time.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "log/batch.h"
#include "log/codec.h"
#include "log/log.h"
#include "log_test.h"
#include "testutil.h"

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* len bytes: random ones when noisy, else sensor-like text that compresses well. */
static uint8_t *sample(size_t len, bool noisy)
{
    uint8_t *p = malloc(len ? len : 1);
    CU_ASSERT_FATAL(p != NULL);
    for (size_t i = 0; i < len; i++)
        p[i] = noisy ? (uint8_t)rng() : (uint8_t) "{\"t\":21.5,\"h\":40}"[i % 18];
    return p;
}

/* The codecs this build decodes (snappy needs libsnappy). */
static bool have(int codec)
{
    struct mq_codec_buf b = {0};
    enum mq_err err = mq_codec_compress(codec, "x", 1, &b);
    mq_codec_buf_free(&b);
    return err == MQ_OK;
}

static const int all_codecs[] = {MQ_CODEC_GZIP, MQ_CODEC_SNAPPY, MQ_CODEC_LZ4, MQ_CODEC_ZSTD};
#define NCODECS (sizeof all_codecs / sizeof all_codecs[0])

static void test_names(void)
{
    CU_ASSERT_STRING_EQUAL(mq_codec_name(MQ_CODEC_NONE), "none");
    CU_ASSERT_STRING_EQUAL(mq_codec_name(MQ_CODEC_LZ4), "lz4");
    CU_ASSERT_STRING_EQUAL(mq_codec_name(MQ_CODEC_ZSTD), "zstd");
    CU_ASSERT_STRING_EQUAL(mq_codec_name(7), "unknown");
    struct mq_codec_buf b = {0};
    CU_ASSERT_EQUAL(mq_codec_compress(MQ_CODEC_NONE, "x", 1, &b), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_codec_compress(5, "x", 1, &b), MQ_ERR_INVAL);
    CU_ASSERT_EQUAL(mq_codec_decompress(6, "x", 1, 100, &b), MQ_ERR_INVAL);
    mq_codec_buf_free(&b);
    CU_ASSERT(have(MQ_CODEC_LZ4) && have(MQ_CODEC_ZSTD) && have(MQ_CODEC_GZIP));
}

/* Every codec, sizes from one byte to past a 64 KiB lz4 block and zstd's window steps, noise and text. */
static void test_round_trips(void)
{
    const size_t sizes[] = {1, 2, 17, 100, 4095, 4096, 4097, 65535, 65536, 65537, 300000, 1 << 20};
    for (size_t c = 0; c < NCODECS; c++) {
        int codec = all_codecs[c];
        if (!have(codec))
            continue;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int noisy = 0; noisy < 2; noisy++) {
                uint8_t *src = sample(sizes[s], noisy);
                struct mq_codec_buf z = {0}, out = {0};
                z.len = 0;
                CU_ASSERT_FATAL(mq_codec_compress(codec, src, sizes[s], &z) == MQ_OK);
                CU_ASSERT_EQUAL(mq_codec_decompress(codec, z.p, z.len, sizes[s], &out), MQ_OK);
                CU_ASSERT(out.len == sizes[s] && memcmp(out.p, src, sizes[s]) == 0);
                /* one byte less allowed: the output passes the limit */
                CU_ASSERT_EQUAL(mq_codec_decompress(codec, z.p, z.len, sizes[s] - 1, &out), MQ_ERR_CORRUPT);
                CU_ASSERT_EQUAL(out.len, 0);
                mq_codec_buf_free(&z);
                mq_codec_buf_free(&out);
                free(src);
            }
    }
}

/* Every prefix of a frame is refused, and every flipped byte either still decodes (lz4 and snappy blocks
 * carry no checksum of their own: the batch CRC covers them) or is refused; nothing reads out of bounds. */
static void test_corrupt_frames(void)
{
    for (size_t c = 0; c < NCODECS; c++) {
        int codec = all_codecs[c];
        if (!have(codec))
            continue;
        size_t n = 3000;
        uint8_t *src = sample(n, false);
        src[100] = 'X'; /* some literals too */
        struct mq_codec_buf z = {0}, out = {0};
        CU_ASSERT_FATAL(mq_codec_compress(codec, src, n, &z) == MQ_OK);
        for (size_t cut = 0; cut < z.len; cut++) {
            uint8_t *p = malloc(cut ? cut : 1); /* exactly cut bytes: ASan sees any overread */
            memcpy(p, z.p, cut);
            enum mq_err err = mq_codec_decompress(codec, p, cut, 1 << 20, &out);
            if (codec == MQ_CODEC_SNAPPY) {
                CU_ASSERT(err == MQ_ERR_CORRUPT || (err == MQ_OK && out.len < n));
            } else if (err != MQ_ERR_CORRUPT) {
                fprintf(stderr, "%s: a frame cut to %zu of %zu bytes gave %s\n", mq_codec_name(codec), cut,
                        z.len, mq_strerror(err));
                CU_FAIL("a cut frame decoded");
            }
            free(p);
        }
        for (size_t i = 0; i < z.len; i++) {
            uint8_t *p = malloc(z.len);
            memcpy(p, z.p, z.len);
            p[i] ^= (uint8_t)(1u << (i % 8));
            enum mq_err err = mq_codec_decompress(codec, p, z.len, 1 << 20, &out);
            CU_ASSERT(err == MQ_OK || err == MQ_ERR_CORRUPT);
            free(p);
        }
        /* random bytes */
        for (int k = 0; k < 200; k++) {
            size_t len = rng() % 200;
            uint8_t *p = sample(len, true);
            enum mq_err err = mq_codec_decompress(codec, p, len, 1 << 16, &out);
            CU_ASSERT(err == MQ_OK || err == MQ_ERR_CORRUPT);
            CU_ASSERT(out.len <= 1 << 16);
            free(p);
        }
        mq_codec_buf_free(&z);
        mq_codec_buf_free(&out);
        free(src);
    }
}

/* `total` zero bytes compressed by codec, streamed from a small buffer (the test never holds them all). */
static void zeros_compressed(int codec, size_t total, struct mq_codec_buf *z)
{
    static const uint8_t zero[1 << 16];
    z->len = 0;
    if (codec == MQ_CODEC_ZSTD) {
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        CU_ASSERT_FATAL(mq_codec_buf_reserve(z, ZSTD_compressBound(total / 1000) + (1 << 16)) == MQ_OK);
        ZSTD_outBuffer ob = {z->p, z->cap, 0};
        for (size_t done = 0; done < total; done += sizeof zero) {
            ZSTD_inBuffer ib = {zero, sizeof zero < total - done ? sizeof zero : total - done, 0};
            while (ib.pos < ib.size)
                CU_ASSERT_FATAL(!ZSTD_isError(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_continue)));
        }
        ZSTD_inBuffer ib = {NULL, 0, 0};
        CU_ASSERT_FATAL(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end) == 0);
        z->len = ob.pos;
        ZSTD_freeCCtx(cc);
    } else if (codec == MQ_CODEC_LZ4) {
        LZ4F_cctx *cc;
        CU_ASSERT_FATAL(!LZ4F_isError(LZ4F_createCompressionContext(&cc, LZ4F_VERSION)));
        LZ4F_preferences_t prefs;
        memset(&prefs, 0, sizeof prefs);
        prefs.frameInfo.blockMode = LZ4F_blockIndependent;
        size_t step = LZ4F_compressBound(sizeof zero, &prefs);
        CU_ASSERT_FATAL(mq_codec_buf_reserve(z, LZ4F_HEADER_SIZE_MAX) == MQ_OK);
        z->len += LZ4F_compressBegin(cc, z->p, z->cap, &prefs);
        for (size_t done = 0; done < total; done += sizeof zero) {
            CU_ASSERT_FATAL(mq_codec_buf_reserve(z, step) == MQ_OK);
            size_t n = LZ4F_compressUpdate(cc, z->p + z->len, z->cap - z->len, zero,
                                           sizeof zero < total - done ? sizeof zero : total - done, NULL);
            CU_ASSERT_FATAL(!LZ4F_isError(n));
            z->len += n;
        }
        CU_ASSERT_FATAL(mq_codec_buf_reserve(z, step) == MQ_OK);
        z->len += LZ4F_compressEnd(cc, z->p + z->len, z->cap - z->len, NULL);
        LZ4F_freeCompressionContext(cc);
    } else {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        CU_ASSERT_FATAL(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        for (size_t done = 0;;) {
            size_t chunk = sizeof zero < total - done ? sizeof zero : total - done;
            zs.next_in = (Bytef *)(uintptr_t)zero;
            zs.avail_in = (uInt)chunk;
            done += chunk;
            int flush = done == total ? Z_FINISH : Z_NO_FLUSH;
            int r;
            do {
                CU_ASSERT_FATAL(mq_codec_buf_reserve(z, 1 << 16) == MQ_OK);
                zs.next_out = z->p + z->len;
                zs.avail_out = (uInt)(z->cap - z->len);
                r = deflate(&zs, flush);
                z->len = z->cap - zs.avail_out;
            } while (zs.avail_in > 0 || (flush == Z_FINISH && r != Z_STREAM_END));
            if (flush == Z_FINISH)
                break;
        }
        deflateEnd(&zs);
    }
}

/* Frames that inflate far past the limit: refused, and the output buffer never grew past the limit + 1. */
static void test_bombs(void)
{
    const int codecs[] = {MQ_CODEC_ZSTD, MQ_CODEC_LZ4, MQ_CODEC_GZIP};
    for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
        struct mq_codec_buf z = {0}, out = {0};
        zeros_compressed(codecs[c], 8 << 20, &z); /* 8 MiB of zeros */
        CU_ASSERT(z.len < 64 << 10);
        CU_ASSERT_EQUAL(mq_codec_decompress(codecs[c], z.p, z.len, 100000, &out), MQ_ERR_CORRUPT);
        CU_ASSERT(out.cap <= 100001 && out.len == 0);
        CU_ASSERT_EQUAL(mq_codec_decompress(codecs[c], z.p, z.len, 8 << 20, &out), MQ_OK);
        CU_ASSERT(out.len == 8 << 20);
        mq_codec_buf_free(&z);
        mq_codec_buf_free(&out);
    }
    /* a batch whose zstd records inflate past MQ_BATCH_MAX_RECORDS_SIZE: damage for the record iterator */
    struct mq_codec_buf z = {0};
    zeros_compressed(MQ_CODEC_ZSTD, MQ_BATCH_MAX_RECORDS_SIZE + 1, &z);
    struct mq_batch_builder b;
    mq_batch_builder_init(&b);
    mq_batch_reset(&b, 0);
    struct mq_record r = {1, NULL, -1, "v", 1, NULL, 0};
    CU_ASSERT_FATAL(mq_batch_add(&b, &r) == MQ_OK);
    mq_batch_finish(&b);
    uint8_t *batch = malloc(MQ_BATCH_HEADER_SIZE + z.len);
    memcpy(batch, b.buf, MQ_BATCH_HEADER_SIZE);
    memcpy(batch + MQ_BATCH_HEADER_SIZE, z.p, z.len);
    size_t size = MQ_BATCH_HEADER_SIZE + z.len;
    mq_be32_put(batch + 8, (uint32_t)(size - MQ_BATCH_LOG_OVERHEAD));
    mq_be16_put(batch + 21, MQ_CODEC_ZSTD);
    mq_be32_put(batch + 17, mq_crc32c(0, batch + MQ_BATCH_CRC_START, size - MQ_BATCH_CRC_START));
    struct mq_batch_info bi;
    CU_ASSERT_FATAL(mq_batch_parse_header(batch, size, &bi) == MQ_OK);
    CU_ASSERT(mq_batch_crc_ok(batch, &bi));
    struct mq_codec_buf scratch = {0};
    struct mq_record_iter it;
    CU_ASSERT_EQUAL(mq_record_iter_open(&it, batch, &bi, &scratch), MQ_ERR_CORRUPT);
    CU_ASSERT(scratch.cap <= MQ_BATCH_MAX_RECORDS_SIZE + 1);
    mq_codec_buf_free(&scratch);
    mq_batch_builder_free(&b);
    mq_codec_buf_free(&z);
    free(batch);
}

/* The builder compresses the records section, sets the codec bits and the CRC over the compressed bytes; the
 * iterator gives back exactly the records added. A batch that would not shrink is left uncompressed. */
static void test_builder_codecs(void)
{
    static const struct mq_header hs[] = {{"mqtt.topic", 10, "sensors/hall/temp", 17},
                                          {"mqtt.qos", 8, "1", 1}};
    const int codecs[] = {MQ_CODEC_LZ4, MQ_CODEC_ZSTD, MQ_CODEC_GZIP};
    for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++) {
        struct mq_batch_builder b;
        mq_batch_builder_init(&b);
        b.codec = codecs[c];
        /* twice, so that the buffers are reused */
        for (int round = 0; round < 2; round++) {
            mq_batch_reset(&b, 100);
            char vals[50][40];
            for (int i = 0; i < 50; i++) {
                int vl = snprintf(vals[i], sizeof vals[i], "{\"t\":%d.%d,\"h\":%d}", 20 + i % 3, i % 10,
                                  40 + i % 5);
                struct mq_record r = {1700000000000LL + i * 1000, "hall", 4, vals[i], vl, hs, 2};
                CU_ASSERT_FATAL(mq_batch_add(&b, &r) == MQ_OK);
            }
            mq_batch_finish(&b);
            CU_ASSERT(b.out != b.buf && b.out_len < b.len / 2);
            uint8_t *p = malloc(b.out_len);
            memcpy(p, b.out, b.out_len);
            struct mq_batch_info bi;
            CU_ASSERT_FATAL(mq_batch_parse_header(p, b.out_len, &bi) == MQ_OK);
            CU_ASSERT(mq_batch_size(&bi) == b.out_len && mq_batch_crc_ok(p, &bi));
            CU_ASSERT((bi.attributes & MQ_BATCH_ATTR_COMPRESSION_MASK) == codecs[c]);
            CU_ASSERT(bi.count == 50 && bi.last_offset_delta == 49 && bi.base_offset == 100);
            struct mq_record_iter it;
            CU_ASSERT_EQUAL(mq_record_iter_init(&it, p, &bi), MQ_ERR_INVAL);
            struct mq_codec_buf scratch = {0};
            CU_ASSERT_FATAL(mq_record_iter_open(&it, p, &bi, &scratch) == MQ_OK);
            struct mq_record_view rv;
            int n = 0;
            while (mq_record_next(&it, &rv) == 1) {
                CU_ASSERT(rv.offset == 100 + n && rv.timestamp == 1700000000000LL + n * 1000);
                CU_ASSERT(rv.key_len == 4 && memcmp(rv.key, "hall", 4) == 0);
                CU_ASSERT(rv.value_len == (int32_t)strlen(vals[n]) &&
                          memcmp(rv.value, vals[n], strlen(vals[n])) == 0);
                CU_ASSERT(rv.header_count == 2);
                n++;
            }
            CU_ASSERT(n == 50);
            mq_codec_buf_free(&scratch);
            free(p);
        }
        /* one tiny record: the frame would cost more than it saves */
        mq_batch_reset(&b, 7);
        struct mq_record r = {1, NULL, -1, "x", 1, NULL, 0};
        CU_ASSERT_FATAL(mq_batch_add(&b, &r) == MQ_OK);
        mq_batch_finish(&b);
        CU_ASSERT(b.out == b.buf && b.out_len == b.len);
        CU_ASSERT((mq_be16_get(b.out + 21) & MQ_BATCH_ATTR_COMPRESSION_MASK) == 0);
        mq_batch_builder_free(&b);
    }
}

static int64_t ts_of(int64_t off)
{
    return 1700000000000LL + off * 1000;
}

/* A partition written with lz4, then zstd, then none: the cursor reads every record back, verify finds no
 * problem, a time lookup lands inside a compressed batch, and a frame corrupted in the file (its CRC made to
 * agree) is reported as damage by the cursor and by verify. */
static void test_partition_codecs(void)
{
    char *dir = mq_test_tmpdir("codec");
    struct mq_log_conf c = small_conf();
    struct mq_log *log = open_log(dir, MQ_LOG_WRITE, &c);
    CU_ASSERT_FATAL(mq_log_topic_create(log, "t", 1) == MQ_OK);
    struct mq_part *part = get_part(log, "t", 0);
    CU_ASSERT(mq_part_compression(part) == MQ_CODEC_NONE);
    const int codecs[] = {MQ_CODEC_LZ4, MQ_CODEC_ZSTD, MQ_CODEC_NONE};
    int64_t off = 0;
    char vals[40][48];
    for (size_t k = 0; k < 3; k++) {
        mq_part_set_compression(part, codecs[k]);
        CU_ASSERT(mq_part_compression(part) == codecs[k]);
        for (int rep = 0; rep < 5; rep++) {
            struct mq_record recs[40];
            for (int i = 0; i < 40; i++, off++) {
                int vl = snprintf(vals[i], sizeof vals[i], "{\"sensor\":%d,\"t\":%" PRId64 "}", i, off);
                recs[i] = (struct mq_record){ts_of(off), NULL, -1, vals[i], vl, NULL, 0};
            }
            CU_ASSERT_FATAL(mq_part_append(part, recs, 40, NULL) == MQ_OK);
        }
        /* and through produce(): the open batch is compressed when sealed */
        for (int i = 0; i < 30; i++, off++) {
            int vl = snprintf(vals[0], sizeof vals[0], "{\"sensor\":%d,\"t\":%" PRId64 "}", i, off);
            struct mq_record r = {ts_of(off), NULL, -1, vals[0], vl, NULL, 0};
            CU_ASSERT_FATAL(mq_part_produce(part, &r, NULL) == MQ_OK);
        }
        CU_ASSERT_FATAL(mq_part_flush(part) == MQ_OK);
    }
    struct mq_cursor *cur = NULL;
    CU_ASSERT_FATAL(mq_cursor_open(part, 0, &cur) == MQ_OK);
    struct mq_cursor_batch cb;
    int seen[8] = {0};
    while (mq_cursor_next_batch(cur, &cb) == 1)
        seen[cb.info.attributes & MQ_BATCH_ATTR_COMPRESSION_MASK]++;
    CU_ASSERT(seen[MQ_CODEC_LZ4] >= 6 && seen[MQ_CODEC_ZSTD] >= 6 && seen[MQ_CODEC_NONE] >= 6);
    mq_cursor_seek(cur, 0);
    struct mq_record_view rv;
    int64_t n = 0;
    int r;
    while ((r = mq_cursor_next(cur, &rv)) == 1) {
        char want[48];
        int wl = snprintf(want, sizeof want, "\"t\":%" PRId64 "}", n);
        CU_ASSERT(rv.offset == n && rv.timestamp == ts_of(n));
        CU_ASSERT(rv.value_len > wl && memcmp(rv.value + rv.value_len - wl, want, (size_t)wl) == 0);
        n++;
    }
    CU_ASSERT(r == 0 && n == off);
    mq_cursor_close(cur);
    /* a time inside the zstd range (offsets 230..459) */
    CU_ASSERT_FATAL(mq_cursor_open_time(part, ts_of(301), &cur) == MQ_OK);
    CU_ASSERT(mq_cursor_next(cur, &rv) == 1 && rv.offset == 301);
    mq_cursor_close(cur);
    CU_ASSERT(mq_log_close(log) == MQ_OK);

    int64_t problems = -1, batches = 0;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, &batches) == MQ_OK);
    CU_ASSERT(problems == 0 && batches >= 18);

    /* damage the first (lz4) batch's frame, keeping its CRC right: only decompression can tell */
    char *path = NULL;
    CU_ASSERT_FATAL(asprintf(&path, "%s/t-0/%020d.log", dir, 0) > 0);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t hdr[MQ_BATCH_HEADER_SIZE];
    CU_ASSERT_FATAL(pread(fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr);
    struct mq_batch_info bi;
    CU_ASSERT_FATAL(mq_batch_parse_header(hdr, sizeof hdr, &bi) == MQ_OK);
    CU_ASSERT_FATAL((bi.attributes & 7) == MQ_CODEC_LZ4);
    size_t size = mq_batch_size(&bi);
    uint8_t *batch = malloc(size);
    CU_ASSERT_FATAL(pread(fd, batch, size, 0) == (ssize_t)size);
    batch[MQ_BATCH_HEADER_SIZE + 4] ^= 0x40; /* the lz4 frame descriptor: its header checksum fails */
    mq_be32_put(batch + 17, mq_crc32c(0, batch + MQ_BATCH_CRC_START, size - MQ_BATCH_CRC_START));
    CU_ASSERT_FATAL(pwrite(fd, batch, size, 0) == (ssize_t)size);
    close(fd);
    free(batch);
    free(path);
    problems = -1;
    CU_ASSERT(mq_log_verify(dir, NULL, NULL, &problems, &batches) == MQ_OK);
    CU_ASSERT(problems == 1);
    log = open_log(dir, MQ_LOG_READ, &c);
    part = get_part(log, "t", 0);
    CU_ASSERT_FATAL(mq_cursor_open(part, 0, &cur) == MQ_OK);
    CU_ASSERT(mq_cursor_next(cur, &rv) == -MQ_ERR_CORRUPT);
    const struct mq_cursor_fault *f = mq_cursor_fault(cur);
    CU_ASSERT(f->base_offset == 0 && f->position == 0 && strstr(f->what, "lz4") != NULL);
    CU_ASSERT(mq_cursor_next(cur, &rv) == -MQ_ERR_CORRUPT); /* the same call fails the same way */
    /* the batches after it read on */
    mq_cursor_seek(cur, mq_batch_last_offset(&bi) + 1);
    CU_ASSERT(mq_cursor_next(cur, &rv) == 1 && rv.offset == mq_batch_last_offset(&bi) + 1);
    mq_cursor_close(cur);
    CU_ASSERT(mq_log_close(log) == MQ_OK);
    mq_test_rmdir(dir);
}

int main(void)
{
    static const struct mq_test tests[] = {
        MQ_TEST(test_names), MQ_TEST(test_round_trips),    MQ_TEST(test_corrupt_frames),
        MQ_TEST(test_bombs), MQ_TEST(test_builder_codecs), MQ_TEST(test_partition_codecs),
        MQ_TEST_END,
    };
    return mq_test_run("codec", tests);
}
