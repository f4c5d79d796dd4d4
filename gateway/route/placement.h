/*
 * placement.h - Kafka-compatible key placement: Kafka's default partitioner for keyed records, so that a
 * record mqlog stores sits in the partition a Kafka producer would have chosen for the same key.
 *
 * Kafka's DefaultPartitioner (and librdkafka's "murmur2_random" partitioner) take the 32-bit MurmurHash2 of
 * the key bytes with seed 0x9747b28c, clear the sign bit and reduce it modulo the partition count.
 */
#ifndef MQ_ROUTE_PLACEMENT_H
#define MQ_ROUTE_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

/* MurmurHash2 (32-bit, Kafka's seed) of key[0..len); key may be NULL when len is 0. */
uint32_t mq_murmur2(const void *key, size_t len);

/* (mq_murmur2(key, len) & 0x7fffffff) % partitions; partitions must be >= 1. */
int32_t mq_partition_for_key(const void *key, size_t len, int32_t partitions);

#endif
