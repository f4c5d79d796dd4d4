/*
 * suggest.c - edit distance (one row of the Levenshtein table on the stack) and the closest-name search.
 */
#include "util/suggest.h"

#include <stdint.h>
#include <string.h>

#define MQ_SUGGEST_MAX_LEN 255

size_t mq_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > MQ_SUGGEST_MAX_LEN || lb > MQ_SUGGEST_MAX_LEN)
        return SIZE_MAX;
    size_t row[MQ_SUGGEST_MAX_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

void mq_suggest_init(struct mq_suggest *s, const char *name)
{
    size_t len = strlen(name);
    s->name = name;
    s->best = NULL;
    /* Close means at most 2 edits, and fewer than half the name: "ab" is not a typo of "xy". */
    s->best_distance = len / 2 + 1 < 3 ? len / 2 + 1 : 3;
}

void mq_suggest_feed(struct mq_suggest *s, const char *candidate)
{
    if (!candidate || strcmp(candidate, s->name) == 0)
        return;
    size_t d = mq_edit_distance(s->name, candidate);
    if (d < s->best_distance) {
        s->best_distance = d;
        s->best = candidate;
    }
}
