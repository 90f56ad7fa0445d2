// analysis.c — attention-row measures. See analysis.h.
#include "analysis.h"
#include "common.h"

#include <math.h>
#include <stdlib.h>

double attn_entropy(const double *a, int n) {
    double h = 0;
    for (int j = 0; j < n; j++)
        if (a[j] > 0) h -= a[j] * log(a[j]);
    return h;
}

double attn_kl(const double *p, const double *q, int n) {
    double kl = 0;
    for (int j = 0; j < n; j++) {
        if (p[j] <= 0) continue;
        if (q[j] <= 0) return INFINITY;
        kl += p[j] * log(p[j] / q[j]);
    }
    return kl;
}

static const double *sort_keys;  // qsort has no context argument in C11
static int by_key(const void *a, const void *b) {
    double x = sort_keys[*(const int *)a], y = sort_keys[*(const int *)b];
    return (x > y) - (x < y);
}

// Ranks 1..n of v, tied values sharing the mean of their ranks.
static void ranks(const double *v, int n, int *idx, double *r) {
    for (int i = 0; i < n; i++) idx[i] = i;
    sort_keys = v;
    qsort(idx, (size_t)n, sizeof *idx, by_key);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]]) j++;
        for (int k = i; k <= j; k++) r[idx[k]] = (i + j) / 2.0 + 1;
        i = j + 1;
    }
}

double attn_spearman(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    int *idx = xmalloc((size_t)n * sizeof *idx, "spearman indices");
    double *rx = xmalloc((size_t)n * 2 * sizeof *rx, "spearman ranks"), *ry = rx + n;
    ranks(x, n, idx, rx);
    ranks(y, n, idx, ry);
    // Pearson correlation of the ranks: with ties this is Spearman's rho proper
    // (the 1 − 6Σd²/(n(n²−1)) shortcut is only exact without ties).
    double mean = (n + 1) / 2.0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        sxy += (rx[i] - mean) * (ry[i] - mean);
        sxx += (rx[i] - mean) * (rx[i] - mean);
        syy += (ry[i] - mean) * (ry[i] - mean);
    }
    free(idx);
    free(rx);
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}
