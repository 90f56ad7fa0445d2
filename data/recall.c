// data/recall.c — associative-recall sequences and their accuracy. See recall.h.
#include "recall.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

RecallTask recall_default(void) {
    return (RecallTask){.form = RECALL_PAIRS, .n_keys = 8, .n_values = 8, .n_pairs = 4, .n_queries = 16};
}

RecallTask recall_mqar(void) {
    return (RecallTask){.form = RECALL_MQAR, .vocab = 256, .seq_len = 64, .n_pairs = 8, .power_a = 0.01};
}

int recall_vocab(const RecallTask *t) { return t->form == RECALL_MQAR ? t->vocab : 1 + t->n_keys + t->n_values; }

int recall_len(const RecallTask *t) { return t->form == RECALL_MQAR ? t->seq_len : 1 + 2 * t->n_pairs + 2 * t->n_queries; }

void recall_check(const RecallTask *t) {
    if (t->form == RECALL_PAIRS) {
        if (t->n_pairs < 1 || t->n_queries < 1 || t->n_pairs > t->n_keys || t->n_values < 1)
            die("recall: %d pairs need at least as many keys (have %d), and some values and queries", t->n_pairs, t->n_keys);
        return;
    }
    if (t->vocab < 4 || t->vocab > 65536) die("mqar: vocabulary %d must be 4..65536", t->vocab);
    if (t->n_pairs < 1 || t->n_pairs > t->vocab / 2 - 1)
        die("mqar: %d pairs need as many distinct keys, and vocabulary %d has %d", t->n_pairs, t->vocab, t->vocab / 2 - 1);
    if (t->seq_len % 2 || 4 * t->n_pairs > t->seq_len)
        die("mqar: seq_len %d must be even and hold the %d pairs twice (at least %d)", t->seq_len, t->n_pairs, 4 * t->n_pairs);
    if (!(t->power_a > 0)) die("mqar: power_a %g must be positive", t->power_a);
}

// k distinct integers from [lo, hi) in out, uniformly (a partial Fisher–Yates
// shuffle over pool, which holds hi − lo ints).
static void draw_distinct(Rng *rng, int lo, int hi, int k, int *pool, int *out) {
    for (int i = 0; i < hi - lo; i++) pool[i] = lo + i;
    for (int i = 0; i < k; i++) {
        int j = i + (int)rng_below(rng, (uint64_t)(hi - lo - i));
        int tmp = pool[i];
        pool[i] = pool[j];
        pool[j] = tmp;
        out[i] = pool[i];
    }
}

static void generate_pairs(const RecallTask *t, Rng *rng, uint16_t *o, int *keys, int *value_of) {
    for (int k = 0; k < t->n_keys; k++) keys[k] = k;
    for (int k = 0; k < t->n_pairs; k++) {   // the first n_pairs keys become distinct
        int j = k + (int)rng_below(rng, (uint64_t)(t->n_keys - k));
        int tmp = keys[k];
        keys[k] = keys[j];
        keys[j] = tmp;
    }
    *o++ = 0;
    for (int p = 0; p < t->n_pairs; p++) {
        value_of[keys[p]] = (int)rng_below(rng, (uint64_t)t->n_values);
        *o++ = (uint16_t)(1 + keys[p]);
        *o++ = (uint16_t)(1 + t->n_keys + value_of[keys[p]]);
    }
    for (int q = 0; q < t->n_queries; q++) {
        int k = keys[rng_below(rng, (uint64_t)t->n_pairs)];
        *o++ = (uint16_t)(1 + k);
        *o++ = (uint16_t)(1 + t->n_keys + value_of[k]);
    }
}

// weight (n slots): p(g) ∝ (g + 1)^(power_a − 1). Slots are then drawn one
// at a time without replacement, each in proportion to the weights left.
static void generate_mqar(const RecallTask *t, Rng *rng, uint16_t *o, int *pool, int *keys, int *values, double *weight) {
    int P = t->n_pairs, slots = (t->seq_len - 2 * P) / 2;
    draw_distinct(rng, 1, t->vocab / 2, P, pool, keys);
    draw_distinct(rng, t->vocab / 2, t->vocab, P, pool, values);
    memset(o, 0, (size_t)t->seq_len * sizeof *o);
    for (int p = 0; p < P; p++) {
        o[2 * p] = (uint16_t)keys[p];
        o[2 * p + 1] = (uint16_t)values[p];
    }
    for (int g = 0; g < slots; g++) weight[g] = pow(g + 1.0, t->power_a - 1);
    for (int p = 0; p < P; p++) {
        double total = 0;
        for (int g = 0; g < slots; g++) total += weight[g];
        double u = rng_uniform(rng) * total;
        int g = 0;
        while (g < slots - 1 && (weight[g] == 0 || (u -= weight[g]) >= 0)) g++;
        while (weight[g] == 0) g--;   // rounding at the end: the last slot still free
        weight[g] = 0;
        o[2 * P + 2 * g] = (uint16_t)keys[p];
        o[2 * P + 2 * g + 1] = (uint16_t)values[p];
    }
}

void recall_generate(const RecallTask *t, uint64_t seed, int n, uint16_t *out) {
    recall_check(t);
    Rng rng;
    rng_seed(&rng, seed);
    int V = recall_vocab(t), L = recall_len(t);
    int *pool = xmalloc((size_t)V * sizeof(int), "recall pool"), *a = xmalloc((size_t)V * sizeof(int), "recall keys");
    int *b = xmalloc((size_t)V * sizeof(int), "recall values");
    double *weight = xmalloc((size_t)L * sizeof(double), "recall gaps");
    for (int s = 0; s < n; s++) {
        uint16_t *o = out + (size_t)s * L;
        if (t->form == RECALL_MQAR) generate_mqar(t, &rng, o, pool, a, b, weight);
        else generate_pairs(t, &rng, o, a, b);
    }
    free(pool);
    free(a);
    free(b);
    free(weight);
}

// Is position pos of sequence seq a query, whose answer follows it?
static int is_query(const RecallTask *t, const uint16_t *seq, int pos) {
    if (t->form == RECALL_PAIRS) return pos >= 1 + 2 * t->n_pairs && (pos - 1 - 2 * t->n_pairs) % 2 == 0;
    return pos >= 2 * t->n_pairs && pos % 2 == 0 && seq[pos] != 0 && pos + 1 < t->seq_len;
}

double recall_accuracy(const RecallTask *t, const uint16_t *seqs, int n, const real *logits, int Vp) {
    int L = recall_len(t), V = recall_vocab(t);
    long right = 0, total = 0;
    for (int s = 0; s < n; s++)
        for (int pos = 0; pos < L; pos++) {
            if (!is_query(t, seqs + (size_t)s * L, pos)) continue;
            const real *l = logits + ((size_t)s * L + pos) * Vp;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (l[v] > l[best]) best = v;
            right += best == seqs[(size_t)s * L + pos + 1];
            total++;
        }
    return total ? (double)right / total : 0;
}

void recall_answer_mask(const RecallTask *t, const uint16_t *seqs, int n, uint16_t *mask) {
    int L = recall_len(t);
    for (int s = 0; s < n; s++)
        for (int pos = 0; pos < L; pos++)
            mask[(size_t)s * L + pos] = pos > 0 && is_query(t, seqs + (size_t)s * L, pos - 1);
}

void recall_write(const RecallTask *t, const char *path) {
    FILE *f = xfopen(path, "w");
    if (t->form == RECALL_MQAR)
        fprintf(f, "task = mqar\nvocab = %d\nseq_len = %d\npairs = %d\npower_a = %.17g\n", t->vocab, t->seq_len, t->n_pairs,
                t->power_a);
    else
        fprintf(f, "task = pairs\nkeys = %d\nvalues = %d\npairs = %d\nqueries = %d\n", t->n_keys, t->n_values, t->n_pairs,
                t->n_queries);
    xfclose(f, path);
}

RecallTask recall_read(const char *path) {
    size_t len;
    char *text = read_file(path, &len);
    RecallTask t = recall_default();
    char key[32], form[16] = "pairs";
    double v;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (sscanf(line, "task = %15s", form) == 1) {
            if (strcmp(form, "mqar") == 0) t = recall_mqar();
            else if (strcmp(form, "pairs") != 0) die("%s: task = %s: expected pairs or mqar", path, form);
        } else if (sscanf(line, "%31s = %lf", key, &v) == 2) {
            int *field = strcmp(key, "vocab") == 0 ? &t.vocab : strcmp(key, "seq_len") == 0 ? &t.seq_len
                       : strcmp(key, "pairs") == 0 ? &t.n_pairs : strcmp(key, "keys") == 0 ? &t.n_keys
                       : strcmp(key, "values") == 0 ? &t.n_values : strcmp(key, "queries") == 0 ? &t.n_queries : NULL;
            if (strcmp(key, "power_a") == 0) t.power_a = v;
            else if (field) *field = (int)v;
            else die("%s: unknown key '%s'", path, key);
        } else die("%s: expected 'key = value', got '%s'", path, line);
    }
    free(text);
    recall_check(&t);
    return t;
}
