/*
 * suggest.h - "did you mean" for names: the closest of a set of candidates by edit distance, so that a typo
 * in a key, a broker, a topic or a group name is answered with the name that was probably meant.
 */
#ifndef MQ_SUGGEST_H
#define MQ_SUGGEST_H

#include <stddef.h>

/* Levenshtein distance of a and b; SIZE_MAX when either is longer than 255 bytes. */
size_t mq_edit_distance(const char *a, const char *b);

/* Incremental search: start with mq_suggest_init(&s, name), feed every candidate, read s.best (NULL when no
 * candidate was close: at most 2 edits, and fewer than half the name's length). */
struct mq_suggest {
    const char *name;
    const char *best;
    size_t best_distance;
};
void mq_suggest_init(struct mq_suggest *s, const char *name);
void mq_suggest_feed(struct mq_suggest *s, const char *candidate);

#endif
