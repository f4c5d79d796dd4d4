/*
 * placement.c - MurmurHash2 as Kafka computes it, and the keyed partition choice built on it.
 *
 * Kafka reads the key in little-endian 4-byte blocks and folds the 1-3 trailing bytes in afterwards; all
 * arithmetic wraps modulo 2^32, which unsigned 32-bit integers give us without undefined behaviour.
 */
#include "route/placement.h"

#define MQ_MURMUR2_SEED 0x9747b28cu
#define MQ_MURMUR2_M    0x5bd1e995u
#define MQ_MURMUR2_R    24

uint32_t mq_murmur2(const void *key, size_t len)
{
    const unsigned char *p = key;
    /* Kafka mixes the length in as a Java int; keys longer than 2 GiB cannot occur in a record anyway. */
    uint32_t h = MQ_MURMUR2_SEED ^ (uint32_t)len;
    size_t blocks = len / 4;
    for (size_t i = 0; i < blocks; i++, p += 4) {
        uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        k *= MQ_MURMUR2_M;
        k ^= k >> MQ_MURMUR2_R;
        k *= MQ_MURMUR2_M;
        h *= MQ_MURMUR2_M;
        h ^= k;
    }
    switch (len & 3) {
    case 3:
        h ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)p[0];
        h *= MQ_MURMUR2_M;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= MQ_MURMUR2_M;
    h ^= h >> 15;
    return h;
}

int32_t mq_partition_for_key(const void *key, size_t len, int32_t partitions)
{
    return (int32_t)((mq_murmur2(key, len) & 0x7fffffffu) % (uint32_t)partitions);
}
