/*
 * strset.c - a set of strings for the loader's duplicate checks (filters and topic patterns of one list,
 * the properties of one forwarder, broker and forwarder names): each check was a scan of everything before,
 * and a file of 40,000 filters took seconds to load.
 *
 * Open addressing with linear probing over XXH3 hashes (libxxhash is a dependency already). glibc's
 * hsearch_r() would have served, but its hash keeps only a string's first 8 bytes and its length, and
 * filters share long prefixes ("sensors/hall-3/..."): every probe would have collided.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "config/config_int.h"

struct mq_cset_slot {
    const char *key; /* NULL: free */
    uint64_t hash;
    size_t value;
};

void mq_cset_free(struct mq_cset *set)
{
    free(set->slots);
    *set = (struct mq_cset){0};
}

/* Doubles the table (16 slots at first), keeping it at most half full. */
static bool mq_cset_grow(struct mq_cset *set)
{
    size_t ncap = set->cap ? set->cap * 2 : 16;
    struct mq_cset_slot *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return false;
    for (size_t i = 0; i < set->cap; i++) {
        const struct mq_cset_slot *s = &set->slots[i];
        if (!s->key)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(set->slots);
    set->slots = ns;
    set->cap = ncap;
    return true;
}

int mq_cset_add(struct mq_cset *set, const char *key, size_t value, size_t *prev)
{
    if ((set->n + 1) * 2 > set->cap && !mq_cset_grow(set))
        return -1;
    uint64_t h = XXH3_64bits(key, strlen(key));
    size_t j = h & (set->cap - 1);
    for (; set->slots[j].key; j = (j + 1) & (set->cap - 1)) {
        const struct mq_cset_slot *s = &set->slots[j];
        if (s->hash == h && strcmp(s->key, key) == 0) {
            if (prev)
                *prev = s->value;
            return 0;
        }
    }
    set->slots[j] = (struct mq_cset_slot){.key = key, .hash = h, .value = value};
    set->n++;
    return 1;
}
