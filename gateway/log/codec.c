/*
 * codec.c - compressing and decompressing the records section of a batch (see codec.h).
 *
 * Every decompressor writes into one growing buffer, doubling it up to limit + 1 bytes: reaching that size
 * means the input inflates past the limit, which is reported as damage without decoding further. Input is
 * untrusted (bytes read back from disk, or a segment copied in), so every library error, a stream that ends
 * early and bytes left after it are all MQ_ERR_CORRUPT.
 */
#include "log/codec.h"

#include <lz4frame.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#ifdef MQ_HAVE_SNAPPY
#include <snappy-c.h>
#endif

#define MQ_ZSTD_LEVEL    3    /* zstd's default: most of the gain of higher levels at a fraction of the CPU */
#define MQ_INFLATE_MIN   4096 /* first output buffer of a decompression, at least */
#define MQ_INFLATE_GUESS 4    /* ... or this many times the input */

const char *mq_codec_name(int codec)
{
    static const char *const names[MQ_CODEC_COUNT] = {"none", "gzip", "snappy", "lz4", "zstd"};
    return codec >= 0 && codec < MQ_CODEC_COUNT ? names[codec] : "unknown";
}

void mq_codec_buf_free(struct mq_codec_buf *b)
{
    if (!b)
        return;
    free(b->p);
    memset(b, 0, sizeof *b);
}

enum mq_err mq_codec_buf_reserve(struct mq_codec_buf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return MQ_OK;
    size_t cap = b->cap ? b->cap : MQ_INFLATE_MIN;
    while (cap - b->len < more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return MQ_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return MQ_OK;
}

/* ---- per-thread contexts ---- */

struct mq_codec_ctx {
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
    LZ4F_dctx *ld;
    struct mq_codec_buf buf; /* mq_codec_thread_buf() */
};

static pthread_key_t mq_codec_key;
static pthread_once_t mq_codec_once = PTHREAD_ONCE_INIT;
static bool mq_codec_key_ok;

static void mq_codec_ctx_free(void *p)
{
    struct mq_codec_ctx *c = p;
    ZSTD_freeCCtx(c->zc);
    ZSTD_freeDCtx(c->zd);
    if (c->ld)
        LZ4F_freeDecompressionContext(c->ld);
    mq_codec_buf_free(&c->buf);
    free(c);
}

static void mq_codec_key_init(void)
{
    mq_codec_key_ok = pthread_key_create(&mq_codec_key, mq_codec_ctx_free) == 0;
}

/* This thread's contexts, or NULL when out of memory. */
static struct mq_codec_ctx *mq_codec_ctx(void)
{
    pthread_once(&mq_codec_once, mq_codec_key_init);
    if (!mq_codec_key_ok)
        return NULL;
    struct mq_codec_ctx *c = pthread_getspecific(mq_codec_key);
    if (c)
        return c;
    c = calloc(1, sizeof *c);
    if (c && pthread_setspecific(mq_codec_key, c) != 0) {
        free(c);
        c = NULL;
    }
    return c;
}

struct mq_codec_buf *mq_codec_thread_buf(void)
{
    struct mq_codec_ctx *c = mq_codec_ctx();
    return c ? &c->buf : NULL;
}

/* ---- compression ---- */

static enum mq_err mq_zstd_compress(const void *src, size_t len, struct mq_codec_buf *out)
{
    struct mq_codec_ctx *c = mq_codec_ctx();
    if (c && !c->zc)
        c->zc = ZSTD_createCCtx();
    if (!c || !c->zc)
        return MQ_ERR_NOMEM;
    size_t bound = ZSTD_compressBound(len);
    if (mq_codec_buf_reserve(out, bound) != MQ_OK)
        return MQ_ERR_NOMEM;
    size_t n = ZSTD_compressCCtx(c->zc, out->p + out->len, bound, src, len, MQ_ZSTD_LEVEL);
    if (ZSTD_isError(n))
        return MQ_ERR_NOMEM; /* with a bound-sized buffer only its allocations can fail */
    out->len += n;
    return MQ_OK;
}

static enum mq_err mq_lz4_compress(const void *src, size_t len, struct mq_codec_buf *out)
{
    /* What Kafka's readers require: independent blocks (Java's reader decodes each block on its own), 64 KiB
     * blocks, no content size; the frame header checksum is the standard one (magic 2). */
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    size_t bound = LZ4F_compressFrameBound(len, &prefs);
    if (mq_codec_buf_reserve(out, bound) != MQ_OK)
        return MQ_ERR_NOMEM;
    size_t n = LZ4F_compressFrame(out->p + out->len, bound, src, len, &prefs);
    if (LZ4F_isError(n))
        return MQ_ERR_NOMEM;
    out->len += n;
    return MQ_OK;
}

static enum mq_err mq_gzip_compress(const void *src, size_t len, struct mq_codec_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return MQ_ERR_NOMEM;
    size_t bound = deflateBound(&zs, (uLong)len);
    enum mq_err err = mq_codec_buf_reserve(out, bound);
    if (err == MQ_OK) {
        zs.next_in = (Bytef *)(uintptr_t)src;
        zs.avail_in = (uInt)len;
        zs.next_out = out->p + out->len;
        zs.avail_out = (uInt)bound;
        if (deflate(&zs, Z_FINISH) == Z_STREAM_END)
            out->len += bound - zs.avail_out;
        else
            err = MQ_ERR_NOMEM;
    }
    deflateEnd(&zs);
    return err;
}

#ifdef MQ_HAVE_SNAPPY
/* One raw snappy block, as librdkafka writes it (readers take both this and snappy-java's framing). */
static enum mq_err mq_snappy_compress(const void *src, size_t len, struct mq_codec_buf *out)
{
    size_t bound = snappy_max_compressed_length(len);
    if (mq_codec_buf_reserve(out, bound) != MQ_OK)
        return MQ_ERR_NOMEM;
    size_t n = bound;
    if (snappy_compress(src, len, (char *)out->p + out->len, &n) != SNAPPY_OK)
        return MQ_ERR_NOMEM;
    out->len += n;
    return MQ_OK;
}
#endif

enum mq_err mq_codec_compress(int codec, const void *src, size_t len, struct mq_codec_buf *out)
{
    switch (codec) {
    case MQ_CODEC_ZSTD:
        return mq_zstd_compress(src, len, out);
    case MQ_CODEC_LZ4:
        return mq_lz4_compress(src, len, out);
    case MQ_CODEC_GZIP:
        return mq_gzip_compress(src, len, out);
#ifdef MQ_HAVE_SNAPPY
    case MQ_CODEC_SNAPPY:
        return mq_snappy_compress(src, len, out);
#endif
    default:
        return MQ_ERR_INVAL;
    }
}

/* ---- decompression ---- */

/* Makes room after out->len: doubles the buffer, up to limit + 1 bytes. MQ_ERR_CORRUPT once the output
 * already holds more than limit could (the input inflates past it). */
static enum mq_err mq_inflate_grow(struct mq_codec_buf *out, size_t in_len, size_t limit)
{
    if (out->len < out->cap)
        return MQ_OK;
    if (out->cap > limit)
        return MQ_ERR_CORRUPT;
    size_t cap = out->cap ? out->cap * 2 : in_len * MQ_INFLATE_GUESS;
    if (cap < MQ_INFLATE_MIN)
        cap = MQ_INFLATE_MIN;
    if (cap > limit + 1)
        cap = limit + 1;
    uint8_t *p = realloc(out->p, cap);
    if (!p)
        return MQ_ERR_NOMEM;
    out->p = p;
    out->cap = cap;
    return MQ_OK;
}

static enum mq_err mq_zstd_decompress(const uint8_t *src, size_t len, size_t limit, struct mq_codec_buf *out)
{
    struct mq_codec_ctx *c = mq_codec_ctx();
    if (c && !c->zd)
        c->zd = ZSTD_createDCtx();
    if (!c || !c->zd)
        return MQ_ERR_NOMEM;
    ZSTD_DCtx_reset(c->zd, ZSTD_reset_session_only); /* a frame an earlier call gave up on is forgotten */
    ZSTD_inBuffer in = {src, len, 0};
    for (;;) {
        enum mq_err err = mq_inflate_grow(out, len, limit);
        if (err != MQ_OK)
            return err;
        ZSTD_outBuffer ob = {out->p, out->cap, out->len};
        size_t in_before = in.pos, out_before = ob.pos;
        size_t r = ZSTD_decompressStream(c->zd, &ob, &in);
        if (ZSTD_isError(r))
            return MQ_ERR_CORRUPT;
        out->len = ob.pos;
        if (out->len > limit)
            return MQ_ERR_CORRUPT;
        if (r == 0 && in.pos == in.size)
            return MQ_OK; /* the last frame is complete and flushed */
        if (in.pos == in_before && ob.pos == out_before && ob.pos < ob.size)
            return MQ_ERR_CORRUPT; /* no progress with room to write: the input ends inside a frame */
    }
}

static enum mq_err mq_lz4_decompress(const uint8_t *src, size_t len, size_t limit, struct mq_codec_buf *out)
{
    struct mq_codec_ctx *c = mq_codec_ctx();
    if (c && !c->ld && LZ4F_isError(LZ4F_createDecompressionContext(&c->ld, LZ4F_VERSION)))
        c->ld = NULL;
    if (!c || !c->ld)
        return MQ_ERR_NOMEM;
    LZ4F_resetDecompressionContext(c->ld);
    size_t pos = 0;
    for (;;) {
        enum mq_err err = mq_inflate_grow(out, len, limit);
        if (err != MQ_OK)
            return err;
        size_t room = out->cap - out->len, used = len - pos;
        size_t r = LZ4F_decompress(c->ld, out->p + out->len, &room, src + pos, &used, NULL);
        if (LZ4F_isError(r))
            return MQ_ERR_CORRUPT;
        pos += used;
        out->len += room;
        if (out->len > limit)
            return MQ_ERR_CORRUPT;
        if (r == 0 && pos == len)
            return MQ_OK; /* a frame ended exactly at the end of the input */
        if (used == 0 && room == 0 && out->len < out->cap)
            return MQ_ERR_CORRUPT; /* the input ends inside a frame */
    }
}

static enum mq_err mq_gzip_decompress(const uint8_t *src, size_t len, size_t limit, struct mq_codec_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return MQ_ERR_NOMEM;
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.avail_in = (uInt)len;
    enum mq_err err = MQ_OK;
    for (;;) {
        if ((err = mq_inflate_grow(out, len, limit)) != MQ_OK)
            break;
        zs.next_out = out->p + out->len;
        zs.avail_out = (uInt)(out->cap - out->len);
        int r = inflate(&zs, Z_NO_FLUSH);
        out->len = out->cap - zs.avail_out;
        if (out->len > limit || (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)) {
            err = r == Z_MEM_ERROR ? MQ_ERR_NOMEM : MQ_ERR_CORRUPT;
            break;
        }
        if (r == Z_STREAM_END) {
            if (zs.avail_in == 0)
                break;         /* the last member ended with the input */
            inflateReset(&zs); /* members back to back, as gzip writes them */
        } else if (r == Z_BUF_ERROR && zs.avail_out > 0) {
            err = MQ_ERR_CORRUPT; /* no progress with room to write: the input ends inside a member */
            break;
        }
    }
    inflateEnd(&zs);
    return err;
}

#ifdef MQ_HAVE_SNAPPY
/* Appends one raw snappy block. */
static enum mq_err mq_snappy_block(const uint8_t *src, size_t len, size_t limit, struct mq_codec_buf *out)
{
    size_t n;
    if (snappy_uncompressed_length((const char *)src, len, &n) != SNAPPY_OK || n > limit - out->len)
        return MQ_ERR_CORRUPT; /* its length comes first: a bomb is refused before anything is allocated */
    if (mq_codec_buf_reserve(out, n) != MQ_OK)
        return MQ_ERR_NOMEM;
    if (snappy_uncompress((const char *)src, len, (char *)out->p + out->len, &n) != SNAPPY_OK)
        return MQ_ERR_CORRUPT;
    out->len += n;
    return MQ_OK;
}

static enum mq_err mq_snappy_decompress(const uint8_t *src, size_t len, size_t limit,
                                        struct mq_codec_buf *out)
{
    /* snappy-java's framing: the magic, a version and a compatible version (4 bytes each), then blocks. */
    static const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    if (len < 16 || memcmp(src, magic, sizeof magic) != 0)
        return mq_snappy_block(src, len, limit, out);
    for (size_t pos = 16; pos < len;) {
        if (len - pos < 4)
            return MQ_ERR_CORRUPT;
        size_t n =
            (size_t)src[pos] << 24 | (size_t)src[pos + 1] << 16 | (size_t)src[pos + 2] << 8 | src[pos + 3];
        pos += 4;
        if (n > len - pos)
            return MQ_ERR_CORRUPT;
        enum mq_err err = mq_snappy_block(src + pos, n, limit, out);
        if (err != MQ_OK)
            return err;
        pos += n;
    }
    return MQ_OK;
}
#endif

enum mq_err mq_codec_decompress(int codec, const void *src, size_t len, size_t limit,
                                struct mq_codec_buf *out)
{
    out->len = 0;
    enum mq_err err;
    switch (codec) {
    case MQ_CODEC_ZSTD:
        err = mq_zstd_decompress(src, len, limit, out);
        break;
    case MQ_CODEC_LZ4:
        err = mq_lz4_decompress(src, len, limit, out);
        break;
    case MQ_CODEC_GZIP:
        err = mq_gzip_decompress(src, len, limit, out);
        break;
#ifdef MQ_HAVE_SNAPPY
    case MQ_CODEC_SNAPPY:
        err = mq_snappy_decompress(src, len, limit, out);
        break;
#endif
    default:
        err = MQ_ERR_INVAL;
        break;
    }
    if (err != MQ_OK)
        out->len = 0;
    return err;
}
