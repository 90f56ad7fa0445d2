// data/recall.c — associative-recall sequences and their accuracy. See recall.h.
#include "recall.h"

#include <stdlib.h>

RecallTask recall_default(void) { return (RecallTask){.n_keys = 8, .n_values = 8, .n_pairs = 4, .n_queries = 16}; }

int recall_vocab(const RecallTask *t) { return 1 + t->n_keys + t->n_values; }

int recall_len(const RecallTask *t) { return 1 + 2 * t->n_pairs + 2 * t->n_queries; }

void recall_generate(const RecallTask *t, uint64_t seed, int n, uint16_t *out) {
    if (t->n_pairs > t->n_keys) die("recall: %d pairs need at least as many keys (have %d)", t->n_pairs, t->n_keys);
    Rng rng;
    rng_seed(&rng, seed);
    int *keys = xmalloc((size_t)t->n_keys * sizeof(int), "recall keys");
    int *value_of = xmalloc((size_t)t->n_keys * sizeof(int), "recall bindings");
    for (int s = 0; s < n; s++) {
        uint16_t *o = out + (size_t)s * recall_len(t);
        // A partial Fisher–Yates shuffle: the first n_pairs keys are distinct.
        for (int k = 0; k < t->n_keys; k++) keys[k] = k;
        for (int k = 0; k < t->n_pairs; k++) {
            int j = k + (int)rng_below(&rng, (uint64_t)(t->n_keys - k));
            int tmp = keys[k];
            keys[k] = keys[j];
            keys[j] = tmp;
        }
        *o++ = 0;
        for (int p = 0; p < t->n_pairs; p++) {
            value_of[keys[p]] = (int)rng_below(&rng, (uint64_t)t->n_values);
            *o++ = (uint16_t)(1 + keys[p]);
            *o++ = (uint16_t)(1 + t->n_keys + value_of[keys[p]]);
        }
        for (int q = 0; q < t->n_queries; q++) {
            int k = keys[rng_below(&rng, (uint64_t)t->n_pairs)];
            *o++ = (uint16_t)(1 + k);
            *o++ = (uint16_t)(1 + t->n_keys + value_of[k]);
        }
    }
    free(keys);
    free(value_of);
}

double recall_accuracy(const RecallTask *t, const uint16_t *seqs, int n, const real *logits, int Vp) {
    int L = recall_len(t), V = recall_vocab(t);
    long right = 0, total = 0;
    for (int s = 0; s < n; s++)
        for (int q = 0; q < t->n_queries; q++) {
            int pos = 1 + 2 * t->n_pairs + 2 * q;  // the query key; its answer follows
            const real *l = logits + ((size_t)s * L + pos) * Vp;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (l[v] > l[best]) best = v;
            right += best == seqs[(size_t)s * L + pos + 1];
            total++;
        }
    return total ? (double)right / total : 0;
}
