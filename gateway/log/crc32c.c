/*
 * crc32c.c - CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2, on top of ISA-L.
 *
 * ISA-L's crc32_iscsi() is the raw register update: it neither inverts the initial value nor the result.
 * The conventional CRC-32C (check value 0xE3069283 for "123456789") inverts both, so we wrap it as
 * ~crc32_iscsi(buf, len, ~crc). Because the inversions cancel between calls, a CRC can be continued
 * chunk by chunk: mq_crc32c(mq_crc32c(0, a), b) == mq_crc32c(0, a || b).
 */
#include <isa-l/crc.h>
#include <limits.h>

#include "log/batch.h"

/* crc32_iscsi() takes an int length; larger buffers are fed in chunks below INT_MAX. A multiple of 64 keeps
 * every chunk but the last on the vectorised path's natural stride. */
#define MQ_CRC_CHUNK ((size_t)1 << 30)

uint32_t mq_crc32c(uint32_t crc, const void *buf, size_t len)
{
    /* ISA-L's prototype lacks const but only reads the buffer. */
    unsigned char *p = (unsigned char *)(uintptr_t)buf;
    uint32_t reg = ~crc;
    while (len > 0) {
        size_t n = len < MQ_CRC_CHUNK ? len : MQ_CRC_CHUNK;
        reg = crc32_iscsi(p, (int)n, reg);
        p += n;
        len -= n;
    }
    return ~reg;
}
