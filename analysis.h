// analysis.h — measures of attention rows used by ./analyze and its tests:
// the paper's spikiness (entropy), distance from softmax (KL) and dot-product
// monotonicity (Spearman rank correlation between q·k scores and weights).
#ifndef ANALYSIS_H
#define ANALYSIS_H

// Entropy −Σ a_j log a_j in nats of a row of weights (0 log 0 = 0).
double attn_entropy(const double *a, int n);
// KL(p ‖ q) = Σ p_j log(p_j / q_j) in nats; +inf when some q_j = 0 < p_j.
double attn_kl(const double *p, const double *q, int n);
// Spearman's rank correlation of x and y, ties given their average rank;
// NaN when n < 2 or either side is constant (the correlation is undefined).
double attn_spearman(const double *x, const double *y, int n);

#endif
