// test_analysis.c — the attention measures on hand-made rows with known
// answers (entropy, KL, Spearman with ties), and the associative-recall
// generator and metric (data/recall.c).
#include "test.h"
#include "../analysis.h"
#include "../data/recall.h"

#include <stdlib.h>

static void test_entropy_kl(void) {
    double uni[4] = {0.25, 0.25, 0.25, 0.25}, hot[4] = {0, 0, 1, 0}, half[3] = {0.5, 0.5, 0};
    CHECK_CLOSE(attn_entropy(uni, 4), log(4.0), 1e-15, "uniform row");
    CHECK(attn_entropy(hot, 4) == 0, "a one-hot row has entropy 0");
    CHECK_CLOSE(attn_entropy(half, 3), log(2.0), 1e-15, "0 log 0 counts as 0");
    double p[2] = {0.5, 0.5}, q[2] = {0.25, 0.75};
    CHECK(attn_kl(uni, uni, 4) == 0, "KL(p||p) = 0");
    CHECK_CLOSE(attn_kl(p, q, 2), 0.5 * log(2.0) + 0.5 * log(2.0 / 3.0), 1e-15, "KL of two rows");
    CHECK(isinf(attn_kl(uni, hot, 4)), "KL is infinite where the model puts 0 and softmax does not");
    CHECK(attn_kl(hot, uni, 4) == log(4.0), "terms with p = 0 drop out");
}

static void test_spearman(void) {
    double x[4] = {1, 2, 3, 4}, up[4] = {10, 20, 30, 40}, down[4] = {4, 3, 2, 1}, tied[4] = {1, 2, 2, 3};
    double same[4] = {7, 7, 7, 7}, bent[4] = {0.1, 5, 6, 1e9};
    CHECK_CLOSE(attn_spearman(x, up, 4), 1, 1e-15, "monotone increasing");
    CHECK_CLOSE(attn_spearman(x, bent, 4), 1, 1e-15, "ranks only: any increasing map gives 1");
    CHECK_CLOSE(attn_spearman(x, down, 4), -1, 1e-15, "decreasing");
    // Average ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): 4.5 / sqrt(4.5 · 5).
    CHECK_CLOSE(attn_spearman(tied, x, 4), 4.5 / sqrt(22.5), 1e-14, "ties take their average rank");
    CHECK_CLOSE(attn_spearman(x, tied, 4), 4.5 / sqrt(22.5), 1e-14, "symmetric");
    CHECK(isnan(attn_spearman(x, same, 4)) && isnan(attn_spearman(x, x, 1)), "undefined for a constant row or one entry");
    double a[5] = {3, 1, 4, 1, 5}, b[5] = {2, 7, 1, 8, 2};
    // By hand: ranks a = (3, 1.5, 4, 1.5, 5), b = (2.5, 4, 1, 5, 2.5); Σ(ra−3)(rb−3) = −7.5,
    // Σ(ra−3)² = 9.5, Σ(rb−3)² = 9.5.
    CHECK_CLOSE(attn_spearman(a, b, 5), -7.5 / 9.5, 1e-14, "ties on both sides");
}

// The loss mask ./recall make writes marks exactly the targets the metric
// scores: logits right at the masked targets alone score 1, and there are as
// many as queries.
static void check_answer_mask(const RecallTask *t, const uint16_t *a, int n, int queries_each, const char *what) {
    int L = recall_len(t), Vp = 256;
    uint16_t *mask = malloc((size_t)n * L * sizeof *mask);
    recall_answer_mask(t, a, n, mask);
    real *logits = calloc((size_t)n * L * Vp, sizeof *logits);
    long marked = 0;
    for (size_t i = 1; i < (size_t)n * L; i++)
        if (mask[i]) logits[(i - 1) * Vp + a[i]] = 1, marked++;
    CHECK(mask[0] == 0 && marked == (long)n * queries_each, "%s: the mask marks %ld targets, %d queries", what, marked,
          n * queries_each);
    CHECK_CLOSE(recall_accuracy(t, a, n, logits, Vp), 1, 0, "%s: logits right only where the mask is 1 score every query", what);
    free(logits);
    free(mask);
}

static void test_recall_sequences(void) {
    RecallTask t = recall_default();
    int L = recall_len(&t), n = 200;
    CHECK(L == 41 && recall_vocab(&t) == 17, "default task: 41 tokens, 17 ids (L %d)", L);
    uint16_t *a = malloc((size_t)n * L * sizeof *a), *b = malloc((size_t)n * L * sizeof *b);
    recall_generate(&t, 5, n, a);
    recall_generate(&t, 5, n, b);
    CHECK(memcmp(a, b, (size_t)n * L * sizeof *a) == 0, "the same seed gives the same sequences");
    recall_generate(&t, 6, n, b);
    CHECK(memcmp(a, b, (size_t)n * L * sizeof *a) != 0, "another seed gives others");
    int K = t.n_keys, NV = t.n_values, bad = 0, value_hist[64] = {0};
    for (int s = 0; s < n; s++) {
        const uint16_t *q = a + (size_t)s * L;
        int bound[65];
        for (int k = 0; k <= K; k++) bound[k] = -1;
        bad += q[0] != 0;
        for (int p = 0; p < t.n_pairs; p++) {
            int k = q[1 + 2 * p], v = q[2 + 2 * p];
            bad += k < 1 || k > K || v < K + 1 || v > K + NV || bound[k] != -1;  // keys distinct, ids in range
            bound[k] = v;
            value_hist[v - K - 1]++;
        }
        for (int j = 0; j < t.n_queries; j++) {
            int k = q[1 + 2 * t.n_pairs + 2 * j], v = q[2 + 2 * t.n_pairs + 2 * j];
            bad += k < 1 || k > K || bound[k] != v;  // a query asks a bound key; the answer is its value
        }
    }
    CHECK(bad == 0, "%d malformed tokens in the recall sequences", bad);
    int lo = n, hi = 0;
    for (int v = 0; v < NV; v++) lo = value_hist[v] < lo ? value_hist[v] : lo, hi = value_hist[v] > hi ? value_hist[v] : hi;
    CHECK(lo > 50 && hi < 150, "values are spread evenly (each ~100 of 800: %d..%d)", lo, hi);

    // The metric: logits that name the answer score 1, logits one id off score 0,
    // and only query positions count.
    int Vp = 72;
    real *logits = calloc((size_t)n * L * Vp, sizeof *logits);
    for (int s = 0; s < n; s++)
        for (int i = 0; i + 1 < L; i++) logits[((size_t)s * L + i) * Vp + a[(size_t)s * L + i + 1]] = 1;
    CHECK_CLOSE(recall_accuracy(&t, a, n, logits, Vp), 1, 0, "perfect logits");
    for (int s = 0; s < n; s++)
        for (int i = 1; i < 1 + 2 * t.n_pairs; i++) memset(logits + ((size_t)s * L + i) * Vp, 0, Vp * sizeof *logits);
    CHECK_CLOSE(recall_accuracy(&t, a, n, logits, Vp), 1, 0, "the pairs' positions do not count");
    for (int s = 0; s < n; s++)
        for (int j = 0; j < t.n_queries; j++) {
            real *l = logits + ((size_t)s * L + 1 + 2 * t.n_pairs + 2 * j) * Vp;
            memset(l, 0, Vp * sizeof *l);
            l[j % 2 ? 0 : recall_vocab(&t)] = 1;  // BOS, or a padding id beyond the vocabulary: never the answer
        }
    CHECK(recall_accuracy(&t, a, n, logits, Vp) == 0, "wrong or out-of-vocabulary argmax scores 0");
    check_answer_mask(&t, a, n, t.n_queries, "pairs");
    free(logits);
    free(a);
    free(b);
}

// Multi-query associative recall (Zoology's form): keys and values from the
// two halves of the vocabulary, the pairs first, then every key once more in
// an even slot, followed by its value; queries mostly near the pairs
// (power_a = 0.01); zeros elsewhere. Its metric counts the queries alone.
static void test_mqar(void) {
    RecallTask t = recall_mqar();
    int L = recall_len(&t), V = recall_vocab(&t), P = t.n_pairs, n = 500;
    CHECK(L == 64 && V == 256 && P == 8, "mqar: 64 tokens, 256 ids, 8 pairs");
    uint16_t *a = malloc((size_t)n * L * sizeof *a), *b = malloc((size_t)n * L * sizeof *a);
    recall_generate(&t, 9, n, a);
    recall_generate(&t, 9, n, b);
    CHECK(memcmp(a, b, (size_t)n * L * sizeof *a) == 0, "mqar: the same seed gives the same sequences");
    int bad = 0, slots = (L - 2 * P) / 2, used[64] = {0};
    for (int s = 0; s < n; s++) {
        const uint16_t *q = a + (size_t)s * L;
        int value_of[256], seen_value[256] = {0}, asked[256] = {0};
        for (int k = 0; k < 256; k++) value_of[k] = -1;
        for (int p = 0; p < P; p++) {
            int k = q[2 * p], v = q[2 * p + 1];
            bad += k < 1 || k >= V / 2 || v < V / 2 || v >= V || value_of[k] != -1 || seen_value[v]++;
            value_of[k] = v;
        }
        for (int g = 0; g < slots; g++) {
            int k = q[2 * P + 2 * g], v = q[2 * P + 2 * g + 1];
            if (k == 0) { bad += v != 0; continue; }
            bad += value_of[k] != v || asked[k]++;
            used[g]++;
        }
        for (int k = 1; k < V / 2; k++) bad += value_of[k] >= 0 && !asked[k];   // every key is asked once
    }
    CHECK(bad == 0, "mqar: %d malformed sequences' tokens", bad);
    CHECK(used[0] > 2 * used[slots - 1] && used[1] > used[slots / 2], "mqar: power_a = 0.01 favours the slots next to the "
          "pairs (first %d, middle %d, last %d of %d sequences)", used[0], used[slots / 2], used[slots - 1], n);
    int Vp = 256;
    real *logits = calloc((size_t)n * L * Vp, sizeof *logits);
    for (int s = 0; s < n; s++)
        for (int i = 0; i + 1 < L; i++) logits[((size_t)s * L + i) * Vp + a[(size_t)s * L + i + 1]] = 1;
    CHECK_CLOSE(recall_accuracy(&t, a, n, logits, Vp), 1, 0, "mqar: perfect logits");
    for (int s = 0; s < n; s++)
        for (int i = 2 * P; i < L; i += 2)
            if (a[(size_t)s * L + i]) logits[((size_t)s * L + i) * Vp + a[(size_t)s * L + i + 1]] = 0;
    CHECK(recall_accuracy(&t, a, n, logits, Vp) == 0, "mqar: only the queries' answers count");
    check_answer_mask(&t, a, n, P, "mqar");
    char path[64];
    snprintf(path, sizeof path, "/tmp/hh_task_%d.conf", (int)getpid());
    recall_write(&t, path);
    RecallTask back = recall_read(path);
    remove(path);
    CHECK(back.form == RECALL_MQAR && back.vocab == t.vocab && back.seq_len == t.seq_len && back.n_pairs == P &&
          back.power_a == t.power_a, "mqar: task.conf reads back the same task");
    free(logits);
    free(a);
    free(b);
}

int main(void) {
    test_entropy_kl();
    test_spearman();
    test_recall_sequences();
    test_mqar();
    return test_summary("test_analysis");
}
