/*
 * peers.c - the client addresses with open connections (see server_int.h): one slot per address in a
 * small chained hash table, counting its connections for kafka.max_connections_per_ip. Used only by the
 * loop thread.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kafka/server_int.h"

/* The address of a peer as the per-address limit sees it: IPv4-mapped IPv6 counts as IPv4. */
uint8_t mq_ksrv_ip_key(const struct sockaddr_storage *ss, uint8_t addr[16])
{
    memset(addr, 0, 16);
    if (ss->ss_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        return 4;
    }
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(addr, a->s6_addr + 12, 4);
            return 4;
        }
        memcpy(addr, a->s6_addr, 16);
        return 16;
    }
    return 0; /* any other family: one slot for all */
}

static struct ip_slot **ip_bucket(struct mq_kafka_server *srv, const uint8_t *addr, uint8_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (uint8_t i = 0; i < len; i++)
        h = (h ^ addr[i]) * 16777619u;
    return &srv->ip_buckets[h & (srv->ip_nbuckets - 1)];
}

struct ip_slot *mq_ksrv_ip_find(struct mq_kafka_server *srv, const uint8_t *addr, uint8_t len)
{
    for (struct ip_slot *s = *ip_bucket(srv, addr, len); s; s = s->next)
        if (s->len == len && memcmp(s->addr, addr, len) == 0)
            return s;
    return NULL;
}

/* The slot of addr, created when it has none (NULL when out of memory). */
struct ip_slot *mq_ksrv_ip_get(struct mq_kafka_server *srv, const uint8_t *addr, uint8_t len)
{
    struct ip_slot *s = mq_ksrv_ip_find(srv, addr, len);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    memcpy(s->addr, addr, 16);
    s->len = len;
    struct ip_slot **b = ip_bucket(srv, addr, len);
    s->next = *b;
    *b = s;
    return s;
}

/* One connection of slot s closed; the slot goes with its last one. */
void mq_ksrv_ip_release(struct mq_kafka_server *srv, struct ip_slot *s)
{
    if (--s->conns > 0)
        return;
    for (struct ip_slot **p = ip_bucket(srv, s->addr, s->len); *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    free(s);
}

/* Frees every slot and the table (the server is being freed). */
void mq_ksrv_ips_free(struct mq_kafka_server *srv)
{
    for (size_t i = 0; srv->ip_buckets && i < srv->ip_nbuckets; i++)
        while (srv->ip_buckets[i]) {
            struct ip_slot *s = srv->ip_buckets[i];
            srv->ip_buckets[i] = s->next;
            free(s);
        }
    free(srv->ip_buckets);
    srv->ip_buckets = NULL;
}
