// attention_softmax.c — softmax attention, GPT-2's own (docs/attention.md).
//
//   s_ij = q_i·k_j/√d,  A_ij = exp(s_ij − lse_i) for j <= i,  y_i = Σ_j A_ij v_j,
//   lse_i = log Σ_{j<=i} exp(s_ij)
//
// Flash-style memory: forward keeps only lse (B,NH,T); backward recomputes A
// from q, k and lse. The work goes by blocks of QB query rows: their scores
// against the keys they see form a QB × m strip (m = one past the block's
// last row), and every step on a strip is a matrix product or a row loop.
// Scratch is two strips per thread; no T×T matrix ever exists.
//
// Work is split over (b, h) pairs, each pair one thread's, so every sum runs
// in an order fixed by the shapes and the result does not depend on threads.
#include "attention.h"
#include "attention_parts.h"
#include "matmul.h"

#include <math.h>
#include <string.h>

enum { QB = 64 };   // query rows per block

static size_t softmax_act_size(const AttnKind *k, const Config *c, int B, int T) {
    (void)k;
    return (size_t)B * c->n_head * T;
}

static size_t softmax_scratch_size(const AttnKind *k, const Config *c, int B, int T) {
    (void)k; (void)c; (void)B;
    return (size_t)n_threads() * 2 * (QB < T ? QB : T) * T;
}

real softmax_row_scores(real *s, const HeadView *x, int i, int hs, real scale) {
    const real *q = x->q + (size_t)i * x->ld;
    real mx = -INFINITY;
    for (int j = 0; j <= i; j++) {
        s[j] = dot(q, x->k + (size_t)j * x->ld, hs) * scale;
        mx = s[j] > mx ? s[j] : mx;
    }
    return mx;
}

// The rows [i0, i0+n) of a head's queries, and its first m keys, values and
// outputs, as matrices.
static Mat rows_of(real *base, size_t ld, int i0, int n, int hs) { return mat(base + (size_t)i0 * ld, n, hs, ld); }

// qkv (B,T,3C) -> y (B,T,C), acts: lse (B,NH,T). Per block of n query rows
// and the m = i0 + n keys they see:
//   P = Q Kᵀ (n × m),  P_ij = exp(P_ij/√d − max_i) (zero for j > i),
//   Y = P V / rowsum(P)
static double softmax_forward(AttnLayer *a, real *y, const real *qkv, int B, int T) {
    int C = a->C, NH = a->NH, hs = a->hs, qb = QB < T ? QB : T;
    real scale = (real)(1.0 / sqrt((double)hs));
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            HeadView x = head_view(qkv, y, b, h, T, C, hs);
            real *p = a->scratch + (size_t)THREAD_ID * 2 * qb * T, *inv = p + (size_t)qb * T;
            real *lse = a->acts + ((size_t)b * NH + h) * T;
            for (int i0 = 0; i0 < T; i0 += qb) {
                int n = T - i0 < qb ? T - i0 : qb, m = i0 + n;
                Mat P = mat(p, n, m, (size_t)m);
                mat_mul(P, rows_of(x.q, x.ld, i0, n, hs), mat_t(rows_of(x.k, x.ld, 0, m, hs)));   // P = Q Kᵀ
                for (int r = 0; r < n; r++) {   // row r (query i0 + r) sees keys j < len
                    real *row = p + (size_t)r * m;
                    int len = i0 + r + 1;
                    for (int j = 0; j < len; j++) row[j] *= scale;
                    real mx = row_max(row, len);
                    double sum = exp_shift_sum(row, len, mx);
                    memset(row + len, 0, (size_t)(m - len) * sizeof(real));
                    inv[r] = (real)(1.0 / sum);
                    lse[i0 + r] = mx + (real)log(sum);
                }
                Mat Y = rows_of(x.y, x.ldy, i0, n, hs);
                mat_mul(Y, P, rows_of(x.v, x.ld, 0, m, hs));   // Y = P V
                for (int r = 0; r < n; r++)
                    for (int d = 0; d < hs; d++) Y.p[(size_t)r * Y.rs + d] *= inv[r];
            }
        }
    return 0;
}

// dy (B,T,C) -> dqkv (B,T,3C) +=. With A recomputed from lse and
// D_i = dy_i·y_i = Σ_j A_ij (dy_i·v_j), per block:
//   dP = dY Vᵀ,  dS = A ⊙ (dP − D)/√d,
//   dQ += dS K,  dK += dSᵀ Q,  dV += Aᵀ dY
static void softmax_backward(AttnLayer *a, real *dqkv, const real *dy, const real *qkv, const real *y, int B, int T,
                             double distill_scale) {
    (void)distill_scale;
    if (!dy) return;   // no distillation: nothing but dy feeds this backward
    int C = a->C, NH = a->NH, hs = a->hs, qb = QB < T ? QB : T;
    real scale = (real)(1.0 / sqrt((double)hs));
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            HeadView x = head_view(qkv, y, b, h, T, C, hs), dx = head_view(dqkv, dy, b, h, T, C, hs);
            real *pa = a->scratch + (size_t)THREAD_ID * 2 * qb * T, *pds = pa + (size_t)qb * T;
            const real *lse = a->acts + ((size_t)b * NH + h) * T;
            for (int i0 = 0; i0 < T; i0 += qb) {
                int n = T - i0 < qb ? T - i0 : qb, m = i0 + n;
                Mat A = mat(pa, n, m, (size_t)m), dS = mat(pds, n, m, (size_t)m);
                Mat Q = rows_of(x.q, x.ld, i0, n, hs), K = rows_of(x.k, x.ld, 0, m, hs), V = rows_of(x.v, x.ld, 0, m, hs);
                Mat dY = rows_of(dx.y, dx.ldy, i0, n, hs);
                mat_mul(A, Q, mat_t(K));    // the scores again: A = Q Kᵀ, exponentiated below
                mat_mul(dS, dY, mat_t(V));  // dP = dY Vᵀ
                for (int r = 0; r < n; r++) {
                    real *ar = pa + (size_t)r * m, *dr = pds + (size_t)r * m;
                    int i = i0 + r, len = i + 1;
                    real D = dot(dx.y + (size_t)i * dx.ldy, x.y + (size_t)i * x.ldy, hs);
                    for (int j = 0; j < len; j++) ar[j] *= scale;
                    exp_shifted(ar, len, lse[i]);
                    for (int j = 0; j < len; j++) dr[j] = ar[j] * (dr[j] - D) * scale;
                    memset(ar + len, 0, (size_t)(m - len) * sizeof(real));
                    memset(dr + len, 0, (size_t)(m - len) * sizeof(real));
                }
                mat_mul_add(rows_of(dx.q, dx.ld, i0, n, hs), dS, K);          // dQ += dS K
                mat_mul_add(rows_of(dx.k, dx.ld, 0, m, hs), mat_t(dS), Q);    // dK += dSᵀ Q
                mat_mul_add(rows_of(dx.v, dx.ld, 0, m, hs), mat_t(A), dY);    // dV += Aᵀ dY
            }
        }
}

// Generation keeps a KV cache: keys (max_T, C) then values (max_T, C).
static size_t softmax_state_size(const AttnKind *k, const Config *c, int max_T) {
    (void)k;
    return 2 * (size_t)max_T * c->n_embd;
}

// qkv (3C) at position pos -> y (C); scratch holds pos+1 scores.
static void softmax_step(AttnLayer *a, real *state, real *y, const real *qkv, int pos) {
    int C = a->C, NH = a->NH, hs = a->hs, T = pos + 1;
    int maxT = a->cfg->seq_len;
    real *kc = state, *vc = state + (size_t)maxT * C;
    memcpy(kc + (size_t)pos * C, qkv + C, (size_t)C * sizeof(real));
    memcpy(vc + (size_t)pos * C, qkv + 2 * C, (size_t)C * sizeof(real));
    real scale = (real)(1.0 / sqrt((double)hs));
    real *s = a->scratch;
    for (int h = 0; h < NH; h++) {
        const real *q = qkv + (size_t)h * hs;
        real mx = -INFINITY, sum = 0, *yh = y + (size_t)h * hs;
        for (int j = 0; j < T; j++) {
            s[j] = dot(q, kc + (size_t)j * C + (size_t)h * hs, hs) * scale;
            mx = s[j] > mx ? s[j] : mx;
        }
        memset(yh, 0, (size_t)hs * sizeof(real));
        for (int j = 0; j < T; j++) {
            real e = exp_r(s[j] - mx);
            sum += e;
            axpy(yh, e, vc + (size_t)j * C + (size_t)h * hs, hs);
        }
        for (int d = 0; d < hs; d++) yh[d] /= sum;
    }
}

// qkv (B,T,3C) -> A (T,T) of head h of sequence b
static void softmax_weights(AttnLayer *a, const real *qkv, int B, int T, int b, int h, real *A) {
    (void)B;
    int hs = a->hs;
    HeadView x = head_view(qkv, NULL, b, h, T, a->C, hs);
    real scale = (real)(1.0 / sqrt((double)hs));
    memset(A, 0, (size_t)T * T * sizeof(real));
    for (int i = 0; i < T; i++) {
        real *row = A + (size_t)i * T, sum = 0;
        real mx = softmax_row_scores(row, &x, i, hs, scale);
        for (int j = 0; j <= i; j++) sum += row[j] = exp_r(row[j] - mx);
        for (int j = 0; j <= i; j++) row[j] /= sum;
    }
}

const AttnEngine SOFTMAX_ENGINE = {
    .act_size = softmax_act_size, .scratch_size = softmax_scratch_size, .forward = softmax_forward,
    .backward = softmax_backward, .state_size = softmax_state_size, .step = softmax_step, .weights = softmax_weights};
