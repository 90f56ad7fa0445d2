// attention.c — the attention kinds behind one interface (attention.h).
//
// Layout: qkv (B,T,3C) holds, for token (b,t), the query channels at [0,C),
// keys at [C,2C) and values at [2C,3C); head h owns [h*hs, (h+1)*hs) of each.
// y (B,T,C) holds the heads' outputs side by side. Work is split over
// (b, h) pairs: each pair is one thread's, so sums run in a fixed order and
// results do not depend on the thread count.
//
// Sections: softmax (flash-style), then one linear-attention engine shared by
// the four feature maps (elu, taylor, performer, hedgehog), then the table.
// docs/attention.md derives every forward and backward below.
#include "attention.h"
#include "matmul.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// Pointers to head h of token (b,t).
#define Q(qkv, b, t, h) ((qkv) + ((size_t)(b) * T + (t)) * 3 * C + (size_t)(h) * hs)
#define K(qkv, b, t, h) (Q(qkv, b, t, h) + C)
#define V(qkv, b, t, h) (Q(qkv, b, t, h) + 2 * C)
#define Y(y, b, t, h) ((y) + ((size_t)(b) * T + (t)) * C + (size_t)(h) * hs)

// 16 independent partial sums the compiler keeps in vector registers (one
// running sum is a serial chain it may not reorder); the order is fixed, so
// the result does not depend on threads.
static real dot(const real *a, const real *b, int n) {
    enum { LANES = 16 };
    real acc[LANES] = {0}, s = 0;
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += a[i + l] * b[i + l];
    for (; i < n; i++) s += a[i] * b[i];
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

static void axpy(real *y, real a, const real *x, int n) {  // y += a·x
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static size_t zero_size(const Config *c) { (void)c; return 0; }
static void no_init(AttnLayer *a, Rng *rng) { (void)a; (void)rng; }

// Which thread runs this iteration's scratch row (0 without OpenMP).
#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID omp_get_thread_num()
#else
#define THREAD_ID 0
#endif

// ===========================================================================
// softmax: A_ij = exp(s_ij − lse_i), s_ij = q_i·k_j/√d, causal.
//
// Flash-style memory: forward keeps only lse_i = log Σ_j exp(s_ij) per row
// (B,NH,T); backward recomputes A from q, k and lse. The work goes by blocks
// of QB query rows: their scores against the keys they see form a QB × i1
// strip (i1 = one past the block's last row), and every step on a strip is a
// matrix product (matmul_strided) or a row loop. Scratch is two strips per
// thread; no T×T matrix ever exists.

enum { QB = 64 };   // query rows per block

static size_t softmax_act_size(const Config *c, int B, int T) { return (size_t)B * c->n_head * T; }
static size_t softmax_scratch_size(const Config *c, int B, int T) {
    (void)c; (void)B;
    return (size_t)n_threads() * 2 * (QB < T ? QB : T) * T;
}

// Row i of the scaled scores into s[0..i]; returns their max.
static real softmax_scores(real *s, const real *q, const real *qkv, int b, int h, int i, int T, int C, int hs, real scale) {
    real mx = -INFINITY;
    for (int j = 0; j <= i; j++) {
        s[j] = dot(q, K(qkv, b, j, h), hs) * scale;
        mx = s[j] > mx ? s[j] : mx;
    }
    return mx;
}

// The strip of query rows [i0, i0+n) of head (b, h): p (n × m, m = i0 + n)
// = q_i·k_j, row r for query i0 + r; only j <= i0 + r is meaningful.
static void score_strip(real *p, const real *qkv, int b, int h, int i0, int n, int T, int C, int hs) {
    size_t ld = 3 * (size_t)C;
    matmul_strided(p, (size_t)(i0 + n), Q(qkv, b, i0, h), ld, 1, K(qkv, b, 0, h), 1, ld, n, i0 + n, hs, 0);
}

// qkv (B,T,3C) -> y (B,T,C), acts: lse (B,NH,T)
static double softmax_forward(AttnLayer *a, real *y, const real *qkv, int B, int T) {
    int C = a->C, NH = a->NH, hs = a->hs, qb = QB < T ? QB : T;
    real scale = (real)(1.0 / sqrt((double)hs));
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            real *p = a->scratch + (size_t)THREAD_ID * 2 * qb * T, *inv = p + (size_t)qb * T;
            real *lse = a->acts + ((size_t)b * NH + h) * T;
            for (int i0 = 0; i0 < T; i0 += qb) {
                int n = T - i0 < qb ? T - i0 : qb, m = i0 + n;
                score_strip(p, qkv, b, h, i0, n, T, C, hs);
                for (int r = 0; r < n; r++) {   // row r: A = exp(s − max) / sum over j <= i0 + r
                    real *row = p + (size_t)r * m;
                    int len = i0 + r + 1;
                    for (int j = 0; j < len; j++) row[j] *= scale;
                    real mx = row_max(row, len);
                    double sum = exp_shift_sum(row, len, mx);
                    memset(row + len, 0, (size_t)(m - len) * sizeof(real));
                    inv[r] = (real)(1.0 / sum);
                    lse[i0 + r] = mx + (real)log(sum);
                }
                real *y0 = Y(y, b, i0, h);
                matmul_strided(y0, (size_t)C, p, (size_t)m, 1, V(qkv, b, 0, h), 3 * (size_t)C, 1, n, hs, m, 0);
                for (int r = 0; r < n; r++)
                    for (int d = 0; d < hs; d++) y0[(size_t)r * C + d] *= inv[r];
            }
        }
    return 0;
}

// With A_ij recomputed and D_i = dy_i·y_i = Σ_j A_ij (dy_i·v_j), per strip:
//   dP = dY Vᵀ,  dS = A ⊙ (dP − D)/√d,
//   dQ += dS K,  dK += dSᵀ Q,  dV += Aᵀ dY
// dy (B,T,C) -> dqkv (B,T,3C) +=
static void softmax_backward(AttnLayer *a, real *dqkv, const real *dy, const real *qkv, const real *y,
                             int B, int T, double distill_scale) {
    (void)distill_scale;
    int C = a->C, NH = a->NH, hs = a->hs, qb = QB < T ? QB : T;
    size_t ld = 3 * (size_t)C;
    real scale = (real)(1.0 / sqrt((double)hs));
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            real *A = a->scratch + (size_t)THREAD_ID * 2 * qb * T, *dS = A + (size_t)qb * T;
            const real *lse = a->acts + ((size_t)b * NH + h) * T;
            for (int i0 = 0; i0 < T; i0 += qb) {
                int n = T - i0 < qb ? T - i0 : qb, m = i0 + n;
                score_strip(A, qkv, b, h, i0, n, T, C, hs);
                matmul_strided(dS, (size_t)m, Y(dy, b, i0, h), (size_t)C, 1, V(qkv, b, 0, h), 1, ld, n, m, hs, 0);
                for (int r = 0; r < n; r++) {
                    real *ar = A + (size_t)r * m, *dr = dS + (size_t)r * m;
                    int i = i0 + r, len = i + 1;
                    real D = dot(Y(dy, b, i, h), Y(y, b, i, h), hs);
                    for (int j = 0; j < len; j++) ar[j] *= scale;
                    exp_shifted(ar, len, lse[i]);
                    for (int j = 0; j < len; j++) dr[j] = ar[j] * (dr[j] - D) * scale;
                    memset(ar + len, 0, (size_t)(m - len) * sizeof(real));
                    memset(dr + len, 0, (size_t)(m - len) * sizeof(real));
                }
                matmul_strided(Q(dqkv, b, i0, h), ld, dS, (size_t)m, 1, K(qkv, b, 0, h), ld, 1, n, hs, m, 1);
                matmul_strided(K(dqkv, b, 0, h), ld, dS, 1, (size_t)m, Q(qkv, b, i0, h), ld, 1, m, hs, n, 1);
                matmul_strided(V(dqkv, b, 0, h), ld, A, 1, (size_t)m, Y(dy, b, i0, h), (size_t)C, 1, m, hs, n, 1);
            }
        }
}

// Generation keeps a KV cache: keys (max_T, C) then values (max_T, C).
static size_t softmax_state_size(const Config *c, int max_T) { return 2 * (size_t)max_T * c->n_embd; }

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
    int C = a->C, hs = a->hs;
    real scale = (real)(1.0 / sqrt((double)hs));
    memset(A, 0, (size_t)T * T * sizeof(real));
    for (int i = 0; i < T; i++) {
        real *row = A + (size_t)i * T, sum = 0;
        real mx = softmax_scores(row, Q(qkv, b, i, h), qkv, b, h, i, T, C, hs, scale);
        for (int j = 0; j <= i; j++) sum += row[j] = exp_r(row[j] - mx);
        for (int j = 0; j <= i; j++) row[j] /= sum;
    }
}

static const AttnKind SOFTMAX = {
    "softmax", zero_size, zero_size, zero_size, softmax_act_size, softmax_scratch_size,
    no_init, softmax_forward, softmax_backward, softmax_state_size, softmax_step, NULL, softmax_weights};

// ===========================================================================
// Linear attentions: one engine, parameterised by a feature map phi.
//
//   A_ij = n_ij / den_i,  n_ij = phi(q_i)·phi(k_j),  den_i = Σ_{j<=i} n_ij,
//   y_i  = Σ_{j<=i} A_ij v_j = phi(q_i)ᵀ S_i / phi(q_i)·z_i,
//   S_i  = Σ_{j<=i} phi(k_j) v_jᵀ (F×d),  z_i = Σ_{j<=i} phi(k_j) (F).
//
// Three forms of the same function: quadratic (row by row over j, the exact
// reference, O(T²)), chunked (S, z carried across chunks, quadratic inside a
// chunk, O(T)) and recurrent (one token at a time, for generation). Forward
// saves den_i per row (B,NH,T), plus the teacher's log-sum-exp per row when
// distilling; everything else is recomputed by backward.

enum { QUERY, KEY };

// Denominator guard. Below REAL_TINY (the smallest normal over epsilon,
// ~1e-31 in float) every weight of the row has underflowed or nearly: the
// row's output is 0 and it passes no gradient. Any larger 1/den keeps the
// backward's sums, 1/den times O(T·|v|·|dy|), clear of overflow. Ordinary
// rows have den ≫ REAL_TINY, so the guard never changes them.
#ifdef REAL_DOUBLE
#define REAL_TINY (DBL_MIN / DBL_EPSILON)
#else
#define REAL_TINY (FLT_MIN / FLT_EPSILON)
#endif

static real inv_den(real den) { return den > REAL_TINY ? 1 / den : 0; }
static real safe_log(real x) { return (real)log(x > REAL_TINY ? x : REAL_TINY); }


static int head_size(const Config *c) { return c->n_embd / c->n_head; }

// Everything about a linear kind: its feature map and what the engine needs
// to know about it. A sixth linear kind is its functions and one LINEAR_KIND
// line filling this in (fields left out are "none": 0 or NULL).
typedef struct {
    int (*n_features)(const Config *c);  // F
    // x (hs) -> z (F): phi(x), or log phi(x) when exp_map (the engine then
    // subtracts its stabilising constants and exponentiates).
    void (*map)(const AttnLayer *a, int role, const real *x, real *z);
    // dz (F) -> dx (hs) += (skipped when dx is NULL) and dp += (parameter
    // gradients in the params layout; only maps with parameters use it).
    void (*map_backward)(const AttnLayer *a, int role, const real *x, const real *dz, real *dx, real *dp);
    // Optional: the same for n rows at once (x and dx rows ld apart, z and dz
    // n×F; dz is overwritten), as matrix products; the chunked form uses them.
    void (*map_rows)(const AttnLayer *a, int role, const real *x, size_t ld, int n, real *z);
    void (*map_backward_rows)(const AttnLayer *a, int role, const real *x, size_t ld, int n, real *dz, real *dx, real *dp);
    int exp_map;
    int distill;  // Hedgehog's attention distillation applies
    // Shortcut for the quadratic form: phi(q)·phi(k) = kernel(q·k/√d)
    // (Taylor), returning the kernel and its derivative in *dk.
    real (*kernel)(real s, real *dk);
    // Per-layer sizes (parameters: the n_decay 2-D matrices first), init, and
    // the hook after each optimizer step, as in AttnKind.
    size_t (*n_params)(const Config *c);
    size_t (*n_decay)(const Config *c);
    size_t (*n_buffers)(const Config *c);
    void (*init)(AttnLayer *a, Rng *rng);
    void (*before_step)(AttnLayer *a, long step);
} FeatureMap;

static size_t opt_size(size_t (*f)(const Config *c), const Config *c) { return f ? f(c) : 0; }

// One (b, h) pair as the forms see it. Token t's query in a (B,T,3C) array x
// is HQ(H, x, t), its output in a (B,T,C) array y is HY(H, y, t).
typedef struct {
    const FeatureMap *fm;
    const AttnLayer *a;
    const real *qkv;
    int b, h, T, C, hs;
    int F, G, chunk;  // features, pair features of the quadratic form, chunk length
    real kshift;      // subtracted from every key's log-features (exp maps)
    real *dp;         // this pair's parameter-gradient slot (backward), or NULL
} Head;

#define HQ(H, x, t) ((x) + ((size_t)(H)->b * (H)->T + (t)) * 3 * (H)->C + (size_t)(H)->h * (H)->hs)
#define HK(H, x, t) (HQ(H, x, t) + (H)->C)
#define HV(H, x, t) (HQ(H, x, t) + 2 * (H)->C)
#define HY(H, y, t) ((y) + ((size_t)(H)->b * (H)->T + (t)) * (H)->C + (size_t)(H)->h * (H)->hs)

// ---------------------------------------------------------------------------
// Features, stabilised. exp maps: a query's log-features are shifted by their
// own max (a per-query constant, cancels in A), every key's by H->kshift (one
// constant for all keys of the sequence, cancels too). Backward treats the
// shifts as constants, which is exact because A does not depend on them.

// x (hs) -> f (F)
static void phi(const Head *H, int role, const real *x, real *f) {
    H->fm->map(H->a, role, x, f);
    if (H->fm->exp_map) exp_shifted(f, H->F, role == QUERY ? row_max(f, H->F) : H->kshift);
}

// df (F) at f = phi(x) -> dx (hs) += (when dx), H->dp +=. Overwrites df.
static void phi_backward(const Head *H, int role, const real *x, const real *f, real *df, real *dx) {
    if (H->fm->exp_map)
        for (int i = 0; i < H->F; i++) df[i] *= f[i];
    H->fm->map_backward(H->a, role, x, df, dx, H->dp);
}

// Tokens [t0, t0+n) in one role: z (n×F) = the map of their q or k, before
// the engine's stabilising and exp (map_rows when the kind has it).
static void map_rows(const Head *H, int role, int t0, int n, real *z) {
    const real *x = role == QUERY ? HQ(H, H->qkv, t0) : HK(H, H->qkv, t0);
    size_t ld = 3 * (size_t)H->C;
    if (H->fm->map_rows) H->fm->map_rows(H->a, role, x, ld, n, z);
    else
        for (int t = 0; t < n; t++) H->fm->map(H->a, role, x + t * ld, z + (size_t)t * H->F);
}

// The same rows' features: f (n×F) = phi of their q or k.
static void phi_rows(const Head *H, int role, int t0, int n, real *f) {
    size_t F = H->F;
    map_rows(H, role, t0, n, f);
    if (H->fm->exp_map)
        for (int t = 0; t < n; t++) exp_shifted(f + t * F, H->F, role == QUERY ? row_max(f + t * F, H->F) : H->kshift);
}

// df (n×F) at f = phi_rows(...) -> those tokens' rows of dq or dk in dqkv +=,
// H->dp +=. Overwrites df.
static void phi_backward_rows(const Head *H, int role, int t0, int n, const real *f, real *df, real *dqkv) {
    const real *x = role == QUERY ? HQ(H, H->qkv, t0) : HK(H, H->qkv, t0);
    real *dx = role == QUERY ? HQ(H, dqkv, t0) : HK(H, dqkv, t0);
    size_t F = H->F, ld = 3 * (size_t)H->C;
    if (!H->fm->map_backward_rows) {
        for (int t = 0; t < n; t++) phi_backward(H, role, x + t * ld, f + t * F, df + t * F, dx + t * ld);
        return;
    }
    if (H->fm->exp_map)
        for (size_t i = 0; i < (size_t)n * F; i++) df[i] *= f[i];
    H->fm->map_backward_rows(H->a, role, x, ld, n, df, dx, H->dp);
}

// The largest key log-feature of the sequence (exp maps; 0 otherwise),
// chunk by chunk. tmp: chunk·F (exp maps have G = F, so every form's
// workspace holds it).
static real key_shift(const Head *H, real *tmp) {
    if (!H->fm->exp_map) return 0;
    real m = -INFINITY;
    for (int t0 = 0; t0 < H->T; t0 += H->chunk) {
        int n = H->T - t0 < H->chunk ? H->T - t0 : H->chunk;
        map_rows(H, KEY, t0, n, tmp);
        real mt = row_max(tmp, n * H->F);
        m = mt > m ? mt : m;
    }
    return m;
}

// The quadratic form scores pairs of "pair features" psi (G of them):
// n_ij = kernel(psi(q_i)·psi(k_j)). Without a kernel psi = phi; with one,
// psi(x) = x/d^(1/4), so psi(q)·psi(k) = q·k/√d and no features are built.
static real psi_scale(const Head *H) { return (real)pow((double)H->hs, -0.25); }

// x (hs) -> f (G)
static void psi(const Head *H, int role, const real *x, real *f) {
    if (!H->fm->kernel) {
        phi(H, role, x, f);
        return;
    }
    real r = psi_scale(H);
    for (int i = 0; i < H->hs; i++) f[i] = x[i] * r;
}

// df (G) -> dx (hs) += (when dx), H->dp +=. Overwrites df. Kernel maps have
// no parameters.
static void psi_backward(const Head *H, int role, const real *x, const real *f, real *df, real *dx) {
    if (!H->fm->kernel) phi_backward(H, role, x, f, df, dx);
    else if (dx) axpy(dx, psi_scale(H), df, H->hs);
}

// n_ij from pair features; *dn = dn_ij / d(psi(q_i)·psi(k_j)).
static real psi_score(const Head *H, const real *fq, const real *fk, real *dn) {
    real s = dot(fq, fk, H->G);
    if (!H->fm->kernel) {
        *dn = 1;
        return s;
    }
    return H->fm->kernel(s, dn);
}

// ---------------------------------------------------------------------------
// Pieces of the recurrent form (and the chunked form's cotangents). S is F×d
// row-major.

// S += f wᵀ, z += c·f
static void state_add(real *S, real *z, const real *f, const real *w, real c, int F, int d) {
    for (int a = 0; a < F; a++) axpy(S + (size_t)a * d, f[a], w, d);
    axpy(z, c, f, F);
}

// out (d) += Sᵀ f
static void state_read(real *out, const real *S, const real *f, int F, int d) {
    for (int a = 0; a < F; a++) axpy(out, f[a], S + (size_t)a * d, d);
}

// Backward's per-query cotangents: g = dy_i/den_i (d) and the returned
// e = −g·y_i, so that dL/dn_ij = g·v_j + e = g·(v_j − y_i).
static real cotangent(const Head *H, real *g, const real *dy, const real *y, const real *den, int i) {
    real inv = inv_den(den[i]);
    const real *dyi = HY(H, dy, i);
    for (int c = 0; c < H->hs; c++) g[c] = dyi[c] * inv;
    return -dot(g, HY(H, y, i), H->hs);
}

// ---------------------------------------------------------------------------
// Hedgehog's distillation, per query row i: teacher p_ij = softmax_j(q_i·k_j/√d)
// (a constant), term_i = −Σ_{j<=i} p_ij log A_ij = log den_i − Σ_j p_ij log n_ij.

// The teacher's scores of row i into s[0..i]; returns their max.
static real teacher_scores(const Head *H, int i, real *s) {
    real scale = (real)(1.0 / sqrt((double)H->hs));
    return softmax_scores(s, HQ(H, H->qkv, i), H->qkv, H->b, H->h, i, H->T, H->C, H->hs, scale);
}

// The same, returning their log-sum-exp.
static real teacher_row(const Head *H, int i, real *s) {
    real mx = teacher_scores(H, i, s), sum = 0;
    for (int j = 0; j <= i; j++) sum += exp_r(s[j] - mx);
    return mx + (real)log(sum);
}

// ---------------------------------------------------------------------------
// Quadratic form: row by row; keys' pair features kept (T×G), never a T×T
// matrix. Workspace layout (reals): fk, dfk, dfkd: T·G each; fq, dfq, dfqd:
// G each; n, s: T each; g: d.

static size_t quad_ws_size(int T, int G, int d) { return 3 * (size_t)T * G + 3 * (size_t)G + 2 * (size_t)T + d; }

// qkv (B,T,3C) -> this head's rows of y (B,T,C) (skipped when y is NULL),
// den (T) (skipped when NULL); when lse is given, the teacher's lse (T) too,
// and returns Σ_i term_i.
static double quad_forward(const Head *H, real *y, real *den, real *lse, real *ws) {
    int T = H->T, G = H->G, hs = H->hs;
    real *fk = ws, *fq = fk + 3 * (size_t)T * G, *n = fq + 3 * (size_t)G, *s = n + T;
    for (int j = 0; j < T; j++) psi(H, KEY, HK(H, H->qkv, j), fk + (size_t)j * G);
    double distill = 0;
    for (int i = 0; i < T; i++) {
        psi(H, QUERY, HQ(H, H->qkv, i), fq);
        real sum = 0, dn;
        for (int j = 0; j <= i; j++) {
            n[j] = psi_score(H, fq, fk + (size_t)j * G, &dn);
            sum += n[j];
        }
        if (y) {
            real *yi = HY(H, y, i), inv = inv_den(sum);
            memset(yi, 0, (size_t)hs * sizeof(real));
            for (int j = 0; j <= i; j++) axpy(yi, n[j], HV(H, H->qkv, j), hs);
            for (int c = 0; c < hs; c++) yi[c] *= inv;
        }
        if (den) den[i] = sum;
        if (lse) {
            lse[i] = teacher_row(H, i, s);
            double term = safe_log(sum);
            for (int j = 0; j <= i; j++) term -= exp_r(s[j] - lse[i]) * safe_log(n[j]);
            distill += term;
        }
    }
    return distill;
}

// dy -> dqkv (+=), H->dp (+=); dy NULL: the distillation's gradient only.
// Per pair, with (g, e) from cotangent() and dn = dn_ij/d(psi·psi):
//   dv_j += n_ij g,  D = (g·v_j + e) + λ(1/den_i − p_ij/n_ij),
//   dpsi(q_i) += D·dn·psi(k_j),  dpsi(k_j) += D·dn·psi(q_i).
// With distill_qk_grad = 0 the λ part is summed apart (dfqd, dfkd) and
// reaches only the map's parameters.
static void quad_backward(const Head *H, real *dqkv, const real *dy, const real *y, const real *den,
                          const real *lse, real lambda, int qk_grad, real *ws) {
    int T = H->T, G = H->G, hs = H->hs;
    int split = lse && !qk_grad, main_part = dy || !split;
    size_t TG = (size_t)T * G;
    real *fk = ws, *dfk = fk + TG, *dfkd = dfk + TG, *fq = dfkd + TG, *dfq = fq + G, *dfqd = dfq + G;
    real *s = dfqd + G + T, *g = s + T;
    memset(dfk, 0, 2 * TG * sizeof(real));
    for (int j = 0; j < T; j++) psi(H, KEY, HK(H, H->qkv, j), fk + (size_t)j * G);
    for (int i = 0; i < T; i++) {
        const real *q = HQ(H, H->qkv, i);
        psi(H, QUERY, q, fq);
        memset(dfq, 0, 2 * (size_t)G * sizeof(real));
        real inv = inv_den(den[i]), e = dy ? cotangent(H, g, dy, y, den, i) : 0;
        if (lse) teacher_scores(H, i, s);
        for (int j = 0; j <= i; j++) {
            const real *fkj = fk + (size_t)j * G;
            real dn, n = psi_score(H, fq, fkj, &dn), D = 0, Dd = 0;
            if (dy) {
                D = dot(g, HV(H, H->qkv, j), hs) + e;
                axpy(HV(H, dqkv, j), n, g, hs);
            }
            if (lse) Dd = lambda * (inv - (real)exp_r(s[j] - lse[i]) * inv_den(n));
            if (!split) D += Dd;
            if (main_part) {
                axpy(dfq, D * dn, fkj, G);
                axpy(dfk + (size_t)j * G, D * dn, fq, G);
            }
            if (split) {
                axpy(dfqd, Dd * dn, fkj, G);
                axpy(dfkd + (size_t)j * G, Dd * dn, fq, G);
            }
        }
        if (main_part) psi_backward(H, QUERY, q, fq, dfq, HQ(H, dqkv, i));
        if (split) psi_backward(H, QUERY, q, fq, dfqd, NULL);
    }
    for (int j = 0; j < T; j++) {
        const real *k = HK(H, H->qkv, j);
        if (main_part) psi_backward(H, KEY, k, fk + (size_t)j * G, dfk + (size_t)j * G, HK(H, dqkv, j));
        if (split) psi_backward(H, KEY, k, fk + (size_t)j * G, dfkd + (size_t)j * G, NULL);
    }
}

// ---------------------------------------------------------------------------
// Chunked form: chunks of c tokens; the state carries the earlier chunks and a
// chunk's own pairs are scored directly. Everything a chunk does is a matrix
// product (matmul_strided), so the F×d state is read and written once per
// chunk, not once per token. Two tricks keep it to few products: the state
// is S' = [S | z] (F × (d+1)) and each value row is v' = [v | 1], so that
// S' += Φkᵀ V' updates S and z together and Φq S' gives numerators and
// denominators together; in backward the cotangent rows are g' = [g | e].
// Maps with a kernel (Taylor) score a chunk's own pairs as kernel(q·k/√d):
// d multiply-adds a pair instead of F (2145 for d = 64), and their gradients
// reach q and k directly instead of through the features.
// Workspace (reals), d1 = d + 1: S' F·d1; pq, pk, df: c·F each (the chunk's
// query and key features, feature gradients); vv, gg, yy: c·d1 each; nn, dd,
// kk: c·c each (the chunk's scores n_tu, D_tu and the kernel's derivatives,
// zero above the diagonal).

static size_t chunk_ws_size(int F, int c, int d) {
    return (size_t)F * (d + 1) + 3 * (size_t)c * F + 3 * (size_t)c * (d + 1) + 3 * (size_t)c * c;
}

typedef struct { real *S, *pq, *pk, *df, *vv, *gg, *yy, *nn, *dd, *kk; } ChunkWs;

static ChunkWs chunk_ws(const Head *H, real *ws) {
    size_t F = H->F, c = H->chunk, d1 = H->hs + 1;
    ChunkWs w;
    w.S = ws;
    w.pq = w.S + F * d1;
    w.pk = w.pq + c * F;
    w.df = w.pk + c * F;
    w.vv = w.df + c * F;
    w.gg = w.vv + c * d1;
    w.yy = w.gg + c * d1;
    w.nn = w.yy + c * d1;
    w.dd = w.nn + c * c;
    w.kk = w.dd + c * c;
    return w;
}

// The three passes over a head's chunks and the rows each writes: y in
// forward, dq in the queries' backward pass, dk and dv in the keys'.
typedef enum { PASS_FORWARD, PASS_QUERIES, PASS_KEYS } ChunkPass;

// Tokens [c0, c0+n): features into w->pq, w->pk, rows [v | 1] into w->vv;
// in backward (dy given), the cotangent rows [g | e] into w->gg. Meanwhile
// the rows that the pass's chunk at `next` reads and writes (out: y or dqkv)
// are prefetched, none when next < 0.
static void chunk_load(const Head *H, const ChunkWs *w, ChunkPass pass, int c0, int n, int next, const real *out,
                       const real *dy, const real *y, const real *den) {
    int hs = H->hs, d1 = hs + 1;
    // A head's rows lie 3C apart, each on pages of its own, out of the
    // hardware prefetchers' sight: without this, 1+ELU at T = 16384 took
    // 1.4x longer per token. (Here and not in a function of its own: GCC
    // finds a function of prefetches alone free of effects and drops calls.)
    for (int t = next; next >= 0 && t < next + H->chunk && t < H->T; t++)
        for (int l = 0; l < hs; l += 64 / (int)sizeof(real)) {
            PREFETCH(HQ(H, H->qkv, t) + l, 0);
            PREFETCH(HK(H, H->qkv, t) + l, 0);
            PREFETCH(HV(H, H->qkv, t) + l, 0);
            if (pass == PASS_FORWARD) PREFETCH(HY(H, out, t) + l, 1);
            else {
                PREFETCH(HY(H, dy, t) + l, 0);
                PREFETCH(HY(H, y, t) + l, 0);
                PREFETCH((pass == PASS_QUERIES ? HQ(H, out, t) : HK(H, out, t)) + l, 1);
                if (pass == PASS_KEYS) PREFETCH(HV(H, out, t) + l, 1);
            }
        }
    phi_rows(H, QUERY, c0, n, w->pq);
    phi_rows(H, KEY, c0, n, w->pk);
    for (int t = 0; t < n; t++) {
        real *vt = w->vv + (size_t)t * d1;
        memcpy(vt, HV(H, H->qkv, c0 + t), (size_t)hs * sizeof(real));
        vt[hs] = 1;
        if (dy) w->gg[(size_t)t * d1 + hs] = cotangent(H, w->gg + (size_t)t * d1, dy, y, den, c0 + t);
    }
}

// out (n,n) = x (n,K) · yᵀ (K,n) over rows ldx and ldy apart, zero above the
// diagonal: the chunk's causal pairs.
static void chunk_pairs(real *out, const real *x, size_t ldx, const real *y, size_t ldy, int n, int K) {
    matmul_strided(out, (size_t)n, x, ldx, 1, y, 1, ldy, n, n, K, 0);
    for (int t = 0; t < n; t++) memset(out + (size_t)t * n + t + 1, 0, (size_t)(n - t - 1) * sizeof(real));
}

// The chunk's scores n_tu = phi(q_t)·phi(k_u) into w->nn; for kernel maps
// from q·k, with dn_tu/d(q_t·k_u/√d) into w->kk.
static void chunk_scores(const Head *H, const ChunkWs *w, int c0, int n) {
    if (!H->fm->kernel) {
        chunk_pairs(w->nn, w->pq, (size_t)H->F, w->pk, (size_t)H->F, n, H->F);
        return;
    }
    size_t ld = 3 * (size_t)H->C;
    chunk_pairs(w->nn, HQ(H, H->qkv, c0), ld, HK(H, H->qkv, c0), ld, n, H->hs);
    real r = psi_scale(H) * psi_scale(H);
    for (int t = 0; t < n; t++)
        for (int u = 0; u <= t; u++) {
            size_t i = (size_t)t * n + u;
            w->nn[i] = H->fm->kernel(w->nn[i] * r, &w->kk[i]);
        }
    for (int t = 0; t < n; t++) memset(w->kk + (size_t)t * n + t + 1, 0, (size_t)(n - t - 1) * sizeof(real));
}

// The chunk's own pairs' share of the feature gradients, from D (w->dd):
// role QUERY: dΦq += D Φk; role KEY: dΦk += Dᵀ Φq. Kernel maps instead add
// dq += (D ⊙ kk) k/√d or dk += (D ⊙ kk)ᵀ q/√d to dqkv (w->dd is scaled).
static void chunk_pair_grads(const Head *H, const ChunkWs *w, int role, int c0, int n, real *dqkv) {
    int F = H->F;
    size_t cs = role == QUERY ? 1 : (size_t)n, rs = role == QUERY ? (size_t)n : 1;
    if (!H->fm->kernel) {
        matmul_strided(w->df, (size_t)F, w->dd, rs, cs, role == QUERY ? w->pk : w->pq, (size_t)F, 1, n, F, n, 1);
        return;
    }
    size_t ld = 3 * (size_t)H->C;
    real r = psi_scale(H) * psi_scale(H);
    for (size_t i = 0; i < (size_t)n * n; i++) w->dd[i] *= w->kk[i] * r;
    real *dx = role == QUERY ? HQ(H, dqkv, c0) : HK(H, dqkv, c0);
    const real *other = role == QUERY ? HK(H, H->qkv, c0) : HQ(H, H->qkv, c0);
    matmul_strided(dx, ld, w->dd, rs, cs, other, ld, 1, n, H->hs, n, 1);
}

// qkv (B,T,3C) -> this head's rows of y (B,T,C), den (T):
//   [num_t | den_t] = Φq_t S' + Σ_{u in chunk, u<=t} n_tu [v_u | 1],  y_t = num_t / den_t
static void chunk_forward(const Head *H, real *y, real *den, real *ws) {
    int F = H->F, hs = H->hs, d1 = hs + 1;
    ChunkWs w = chunk_ws(H, ws);
    memset(w.S, 0, (size_t)F * d1 * sizeof(real));
    for (int c0 = 0; c0 < H->T; c0 += H->chunk) {
        int n = H->T - c0 < H->chunk ? H->T - c0 : H->chunk;
        chunk_load(H, &w, PASS_FORWARD, c0, n, c0 + H->chunk, y, NULL, NULL, NULL);
        matmul_strided(w.yy, (size_t)d1, w.pq, (size_t)F, 1, w.S, (size_t)d1, 1, n, d1, F, 0);
        chunk_scores(H, &w, c0, n);
        matmul_strided(w.yy, (size_t)d1, w.nn, (size_t)n, 1, w.vv, (size_t)d1, 1, n, d1, n, 1);
        for (int t = 0; t < n; t++) {
            const real *yt = w.yy + (size_t)t * d1;
            real *yi = HY(H, y, c0 + t), inv = inv_den(yt[hs]);
            for (int c = 0; c < hs; c++) yi[c] = yt[c] * inv;
            den[c0 + t] = yt[hs];
        }
        matmul_strided(w.S, (size_t)d1, w.pk, 1, (size_t)F, w.vv, (size_t)d1, 1, F, d1, n, 1);
    }
}

// dy -> dqkv (+=), H->dp (+=), in two passes with D_tu = g_t·v_u + e_t = g'_t·v'_u:
// (for kernel maps the D terms go to q and k: chunk_pair_grads)
//   chunks in order, S' as in forward:  dΦq = G' S'ᵀ + D Φk
//   chunks in reverse, R' = Σ_{later chunks} Φq_tᵀ g'_t (F × d1, in S' memory):
//     dΦk = V' R'ᵀ + Dᵀ Φq,   dV += Φk R + Nᵀ G   (R: R' without its last column)
static void chunk_backward(const Head *H, real *dqkv, const real *dy, const real *y, const real *den, real *ws) {
    int F = H->F, hs = H->hs, d1 = hs + 1, T = H->T, c = H->chunk;
    size_t ldv = 3 * (size_t)H->C;   // dqkv's row stride
    ChunkWs w = chunk_ws(H, ws);
    memset(w.S, 0, (size_t)F * d1 * sizeof(real));
    for (int c0 = 0; c0 < T; c0 += c) {
        int n = T - c0 < c ? T - c0 : c;
        chunk_load(H, &w, PASS_QUERIES, c0, n, c0 + c, dqkv, dy, y, den);
        matmul_strided(w.df, (size_t)F, w.gg, (size_t)d1, 1, w.S, 1, (size_t)d1, n, F, d1, 0);
        chunk_pairs(w.dd, w.gg, (size_t)d1, w.vv, (size_t)d1, n, d1);
        if (H->fm->kernel) chunk_scores(H, &w, c0, n);
        chunk_pair_grads(H, &w, QUERY, c0, n, dqkv);
        phi_backward_rows(H, QUERY, c0, n, w.pq, w.df, dqkv);
        matmul_strided(w.S, (size_t)d1, w.pk, 1, (size_t)F, w.vv, (size_t)d1, 1, F, d1, n, 1);
    }
    memset(w.S, 0, (size_t)F * d1 * sizeof(real));
    for (int c0 = (T - 1) / c * c; c0 >= 0; c0 -= c) {
        int n = T - c0 < c ? T - c0 : c;
        chunk_load(H, &w, PASS_KEYS, c0, n, c0 - c, dqkv, dy, y, den);
        chunk_pairs(w.dd, w.gg, (size_t)d1, w.vv, (size_t)d1, n, d1);
        chunk_scores(H, &w, c0, n);
        matmul_strided(w.df, (size_t)F, w.vv, (size_t)d1, 1, w.S, 1, (size_t)d1, n, F, d1, 0);
        real *dv = HV(H, dqkv, c0);
        matmul_strided(dv, ldv, w.pk, (size_t)F, 1, w.S, (size_t)d1, 1, n, hs, F, 1);
        matmul_strided(dv, ldv, w.nn, 1, (size_t)n, w.gg, (size_t)d1, 1, n, hs, n, 1);
        chunk_pair_grads(H, &w, KEY, c0, n, dqkv);
        phi_backward_rows(H, KEY, c0, n, w.pk, w.df, dqkv);
        matmul_strided(w.S, (size_t)d1, w.pq, 1, (size_t)F, w.gg, (size_t)d1, 1, F, d1, n, 1);
    }
}

// ---------------------------------------------------------------------------
// Choosing the form, sizes, and the drivers that run the forms over (b, h).

typedef struct {
    int quadratic, distill, F, G, chunk, hs;
    size_t ws;  // workspace per thread
} Plan;

// attention_form = auto: the cheaper per token, counting multiply-adds of one
// forward: quadratic T/2·(G + d) (scores, then values); chunked 2·F·d (read
// and update S) + c/2·(G + d) (pairs inside the chunk), divided by
// CHUNK_SPEEDUP because the chunked form's run as matrix products and the
// quadratic form's as vector loops (measured, bench/bench_attention, d = 64:
// Taylor's forms cross near T = 900, Hedgehog's and 1+ELU's below T = 128).
// With distillation, quadratic: the loss needs every n_ij anyway.
#define CHUNK_SPEEDUP 5.0
static Plan lin_plan(const FeatureMap *fm, const Config *c, int T) {
    Plan p;
    p.hs = head_size(c);
    p.F = fm->n_features(c);
    p.G = fm->kernel ? p.hs : p.F;
    p.distill = fm->distill && c->distill_weight > 0;
    p.chunk = c->chunk_size < T ? c->chunk_size : T;
    if (strcmp(c->attention_form, "auto") != 0) p.quadratic = strcmp(c->attention_form, "quadratic") == 0;
    else {
        double quad = T / 2.0 * (p.G + p.hs), chunked = (2.0 * p.F * p.hs + p.chunk / 2.0 * (p.G + p.hs)) / CHUNK_SPEEDUP;
        p.quadratic = p.distill || quad <= chunked;
    }
    size_t quad = p.quadratic || p.distill ? quad_ws_size(T, p.G, p.hs) : 0;
    size_t chunked = p.quadratic ? 0 : chunk_ws_size(p.F, p.chunk, p.hs);
    p.ws = quad > chunked ? quad : chunked;
    if (p.ws < 2 * (size_t)p.F) p.ws = 2 * (size_t)p.F;  // step uses 2F
    return p;
}

static Head lin_head(const FeatureMap *fm, const AttnLayer *a, const Plan *p, const real *qkv, int b, int h, int T) {
    Head H = {fm, a, qkv, b, h, T, a->C, a->hs, p->F, p->G, p->chunk, 0, NULL};
    return H;
}

// Per layer: den (B,NH,T), and the teacher's lse (B,NH,T) when distilling.
static size_t lin_act_size(const FeatureMap *fm, const Config *c, int B, int T) {
    return (lin_plan(fm, c, T).distill ? 2 : 1) * (size_t)B * c->n_head * T;
}

// A workspace per thread, then one parameter-gradient slot per (b, h).
static size_t lin_scratch_size(const FeatureMap *fm, const Config *c, int B, int T) {
    return (size_t)n_threads() * lin_plan(fm, c, T).ws + (size_t)B * c->n_head * opt_size(fm->n_params, c);
}

// qkv (B,T,3C) -> y (B,T,C), acts: den (B,NH,T) [, lse (B,NH,T)]
static double lin_forward(const FeatureMap *fm, AttnLayer *a, real *y, const real *qkv, int B, int T) {
    Plan p = lin_plan(fm, a->cfg, T);
    int NH = a->NH;
    size_t BH = (size_t)B * NH;
    double *dsum = p.distill ? xcalloc(BH, sizeof(double), "distillation sums") : NULL;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            real *ws = a->scratch + (size_t)THREAD_ID * p.ws;
            size_t o = ((size_t)b * NH + h) * T;
            real *den = a->acts + o, *lse = p.distill ? a->acts + BH * T + o : NULL;
            Head H = lin_head(fm, a, &p, qkv, b, h, T);
            H.kshift = key_shift(&H, ws);
            double d;
            if (p.quadratic) d = quad_forward(&H, y, den, lse, ws);
            else {
                chunk_forward(&H, y, den, ws);
                d = lse ? quad_forward(&H, NULL, NULL, lse, ws) : 0;
            }
            if (dsum) dsum[(size_t)b * NH + h] = d;
        }
    double total = 0;
    for (size_t i = 0; dsum && i < BH; i++) total += dsum[i];
    free(dsum);
    return total;
}

// dy (B,T,C) -> dqkv (B,T,3C) +=, grads +=. Each (b, h) sums its parameter
// gradients into its own slot; the slots are then added in (b, h) order, so
// the result has the same bits for any thread count.
static void lin_backward(const FeatureMap *fm, AttnLayer *a, real *dqkv, const real *dy, const real *qkv, const real *y,
                         int B, int T, double distill_scale) {
    Plan p = lin_plan(fm, a->cfg, T);
    int NH = a->NH;
    size_t BH = (size_t)B * NH, np = opt_size(fm->n_params, a->cfg);
    real *slots = a->scratch + (size_t)n_threads() * p.ws;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            real *ws = a->scratch + (size_t)THREAD_ID * p.ws;
            size_t o = ((size_t)b * NH + h) * T;
            const real *den = a->acts + o, *lse = p.distill ? a->acts + BH * T + o : NULL;
            Head H = lin_head(fm, a, &p, qkv, b, h, T);
            H.kshift = key_shift(&H, ws);
            if (np) {
                H.dp = slots + ((size_t)b * NH + h) * np;
                memset(H.dp, 0, np * sizeof(real));
            }
            if (p.quadratic) quad_backward(&H, dqkv, dy, y, den, lse, (real)distill_scale, a->cfg->distill_qk_grad, ws);
            else {
                chunk_backward(&H, dqkv, dy, y, den, ws);
                if (lse) quad_backward(&H, dqkv, NULL, y, den, lse, (real)distill_scale, a->cfg->distill_qk_grad, ws);
            }
        }
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < np; i++) {
        real s = 0;
        for (size_t k = 0; k < BH; k++) s += slots[k * np + i];
        a->grads[i] += s;
    }
}

// Recurrent form. Per head: S (F×d), z (F) and, for exp maps, M: the running
// max of the keys' log-features, the key shift so far. A larger one rescales
// S and z by exp(M_old − M_new) (online-softmax style), so every query sees
// all its keys under one shift and the result equals the other forms'.
static size_t lin_state_size(const FeatureMap *fm, const Config *c, int max_T) {
    (void)max_T;
    int F = fm->n_features(c);
    return (size_t)c->n_head * ((size_t)F * head_size(c) + F + 1);
}

// qkv (3C) at position pos -> y (C); the state was zeroed before pos 0.
static void lin_step(const FeatureMap *fm, AttnLayer *a, real *state, real *y, const real *qkv, int pos) {
    int C = a->C, hs = a->hs, F = fm->n_features(a->cfg);
    Plan p = lin_plan(fm, a->cfg, 1);
    real *fq = a->scratch, *fk = fq + F;
    for (int h = 0; h < a->NH; h++) {
        real *S = state + (size_t)h * ((size_t)F * hs + F + 1), *z = S + (size_t)F * hs, *M = z + F;
        const real *q = qkv + (size_t)h * hs, *k = q + C, *v = q + 2 * C;
        Head H = lin_head(fm, a, &p, NULL, 0, h, 1);
        fm->map(a, KEY, k, fk);
        if (fm->exp_map) {
            real mk = row_max(fk, F);
            if (pos == 0 || mk > *M) {
                if (pos > 0) {
                    real r = exp_r(*M - mk);
                    for (size_t i = 0; i < (size_t)F * hs + F; i++) S[i] *= r;
                }
                *M = mk;
            }
            exp_shifted(fk, F, *M);
        }
        state_add(S, z, fk, v, 1, F, hs);
        phi(&H, QUERY, q, fq);
        real *yh = y + (size_t)h * hs, inv = inv_den(dot(fq, z, F));
        memset(yh, 0, (size_t)hs * sizeof(real));
        state_read(yh, S, fq, F, hs);
        for (int c = 0; c < hs; c++) yh[c] *= inv;
    }
}

// qkv (B,T,3C) -> A (T,T) of head h of sequence b: n_ij / den_i, from the same
// stabilised pair features the quadratic form scores.
static void lin_weights(const FeatureMap *fm, AttnLayer *a, const real *qkv, int B, int T, int b, int h, real *A) {
    (void)B;
    Plan p = lin_plan(fm, a->cfg, T);
    Head H = lin_head(fm, a, &p, qkv, b, h, T);
    real *fk = xmalloc(((size_t)T + 1) * (p.G > p.F ? p.G : p.F) * sizeof(real), "attention weights"), *fq = fk + (size_t)T * p.G;
    H.kshift = key_shift(&H, fk);   // before fk is filled: it holds T·G >= chunk·F
    for (int j = 0; j < T; j++) psi(&H, KEY, HK(&H, qkv, j), fk + (size_t)j * p.G);
    memset(A, 0, (size_t)T * T * sizeof(real));
    for (int i = 0; i < T; i++) {
        real *row = A + (size_t)i * T, den = 0, dn;
        psi(&H, QUERY, HQ(&H, qkv, i), fq);
        for (int j = 0; j <= i; j++) den += row[j] = psi_score(&H, fq, fk + (size_t)j * p.G, &dn);
        real inv = inv_den(den);
        for (int j = 0; j <= i; j++) row[j] *= inv;
    }
    free(fk);
}

// A linear kind: its FeatureMap (designated initializers) bound to the engine
// as an AttnKind, NAME_KIND.
#define LINEAR_KIND(NAME, ...)                                                                     \
    static const FeatureMap NAME##_MAP = {__VA_ARGS__};                                            \
    static size_t kind_##NAME##_n_params(const Config *c) { return opt_size(NAME##_MAP.n_params, c); } \
    static size_t kind_##NAME##_n_decay(const Config *c) { return opt_size(NAME##_MAP.n_decay, c); } \
    static size_t kind_##NAME##_n_buffers(const Config *c) { return opt_size(NAME##_MAP.n_buffers, c); } \
    static size_t kind_##NAME##_act_size(const Config *c, int B, int T) {                          \
        return lin_act_size(&NAME##_MAP, c, B, T);                                                 \
    }                                                                                              \
    static size_t kind_##NAME##_scratch_size(const Config *c, int B, int T) {                      \
        return lin_scratch_size(&NAME##_MAP, c, B, T);                                             \
    }                                                                                              \
    static void kind_##NAME##_init(AttnLayer *a, Rng *rng) {                                       \
        if (NAME##_MAP.init) NAME##_MAP.init(a, rng);                                              \
    }                                                                                              \
    static double kind_##NAME##_forward(AttnLayer *a, real *y, const real *qkv, int B, int T) {    \
        return lin_forward(&NAME##_MAP, a, y, qkv, B, T);                                          \
    }                                                                                              \
    static void kind_##NAME##_backward(AttnLayer *a, real *dqkv, const real *dy, const real *qkv,  \
                                       const real *y, int B, int T, double distill_scale) {        \
        lin_backward(&NAME##_MAP, a, dqkv, dy, qkv, y, B, T, distill_scale);                       \
    }                                                                                              \
    static size_t kind_##NAME##_state_size(const Config *c, int max_T) {                           \
        return lin_state_size(&NAME##_MAP, c, max_T);                                              \
    }                                                                                              \
    static void kind_##NAME##_step(AttnLayer *a, real *state, real *y, const real *qkv, int pos) { \
        lin_step(&NAME##_MAP, a, state, y, qkv, pos);                                              \
    }                                                                                              \
    static void kind_##NAME##_before_step(AttnLayer *a, long step) {                                \
        if (NAME##_MAP.before_step) NAME##_MAP.before_step(a, step);                                 \
    }                                                                                              \
    static void kind_##NAME##_weights(AttnLayer *a, const real *qkv, int B, int T, int b, int h, real *A) { \
        lin_weights(&NAME##_MAP, a, qkv, B, T, b, h, A);                                           \
    }                                                                                              \
    static const AttnKind NAME##_KIND = {                                                          \
        #NAME, kind_##NAME##_n_params, kind_##NAME##_n_decay, kind_##NAME##_n_buffers,             \
        kind_##NAME##_act_size, kind_##NAME##_scratch_size, kind_##NAME##_init,                    \
        kind_##NAME##_forward, kind_##NAME##_backward, kind_##NAME##_state_size,                   \
        kind_##NAME##_step, kind_##NAME##_before_step, kind_##NAME##_weights}

// ===========================================================================
// elu: phi(x) = elu(x) + 1 element-wise on the raw head vector (F = d).

static int elu_features(const Config *c) { return head_size(c); }

static void elu_map(const AttnLayer *a, int role, const real *x, real *z) {
    (void)role;
    for (int i = 0; i < a->hs; i++) z[i] = x[i] > 0 ? x[i] + 1 : exp_r(x[i]);
}

static void elu_map_backward(const AttnLayer *a, int role, const real *x, const real *dz, real *dx, real *dp) {
    (void)role; (void)dp;
    for (int i = 0; dx && i < a->hs; i++) dx[i] += dz[i] * (x[i] > 0 ? 1 : exp_r(x[i]));
}

LINEAR_KIND(elu, .n_features = elu_features, .map = elu_map, .map_backward = elu_map_backward);

// ===========================================================================
// taylor: phi(x) = [1, x', (x'⊗x')/√2], x' = x/d^(1/4), so that
// phi(q)·phi(k) = 1 + s + s²/2 with s = q·k/√d. The chunked and recurrent forms
// store the d(d+1)/2 distinct products (squares /√2, a<b products plain);
// the quadratic form uses the scalar kernel.

static int taylor_features(const Config *c) {
    int d = head_size(c);
    return 1 + d + d * (d + 1) / 2;
}

static void taylor_map(const AttnLayer *a, int role, const real *restrict x, real *restrict z) {
    (void)role;
    int d = a->hs;
    real r = (real)pow((double)d, -0.25), r2 = r * r, *o = z + 1 + d;
    z[0] = 1;
    for (int i = 0; i < d; i++) z[1 + i] = x[i] * r;
    // Row i of the products, from x rather than from z's own x' so that the
    // compiler sees no overlap and vectorises it.
    for (int i = 0; i < d; o += d - i, i++) {
        o[0] = r2 * x[i] * x[i] * (real)sqrt(0.5);
        for (int j = i + 1; j < d; j++) o[j - i] = r2 * x[i] * x[j];
    }
}

// dx_i += r·dz_x'i + r²·(Σ_j dz_ij x_j over the products holding x_i), taken
// row by row of the products: row i's dot with x (for dx_i) and its axpy into
// dx (for every j > i). (One loop that did both made each step wait on the
// last; that was a quarter of Taylor's chunked time.)
static void taylor_map_backward(const AttnLayer *a, int role, const real *x, const real *dz, real *dx, real *dp) {
    (void)role; (void)dp;
    if (!dx) return;
    int d = a->hs;
    real r = (real)pow((double)d, -0.25), r2 = r * r;
    const real *o = dz + 1 + d;
    for (int i = 0; i < d; o += d - i, i++) {
        int m = d - 1 - i;   // products x_i x_j with j > i
        dx[i] += r * dz[1 + i] + r2 * ((real)sqrt(2.0) * x[i] * o[0] + dot(o + 1, x + i + 1, m));
        axpy(dx + i + 1, r2 * x[i], o + 1, m);
    }
}

static real taylor_kernel(real s, real *dk) {
    *dk = 1 + s;
    return 1 + s + s * s / 2;
}

LINEAR_KIND(taylor, .n_features = taylor_features, .map = taylor_map, .map_backward = taylor_map_backward,
            .kernel = taylor_kernel);

// ===========================================================================
// performer (FAVOR+): phi(x) = m^(-1/2) exp(W x' − ‖x'‖²/2), x' = x/d^(1/4).
// W (m×d) is a buffer, not trained: m rows of orthogonal random features,
// shared by the layer's heads, redrawn every performer_redraw steps.

static size_t performer_n_buffers(const Config *c) { return (size_t)config_performer_m(c) * head_size(c); }
static int performer_features(const Config *c) { return config_performer_m(c); }

// log phi; m^(-1/2) and −‖x'‖²/2 of queries cancel in A but keep z exact.
static void performer_map(const AttnLayer *a, int role, const real *x, real *z) {
    (void)role;
    int d = a->hs, m = config_performer_m(a->cfg);
    real r = (real)pow((double)d, -0.25), c = dot(x, x, d) * r * r / 2 + (real)(0.5 * log((double)m));
    for (int f = 0; f < m; f++) z[f] = dot(a->buffers + (size_t)f * d, x, d) * r - c;
}

// dx = r (Wᵀ dz − x' Σ dz)
static void performer_map_backward(const AttnLayer *a, int role, const real *x, const real *dz, real *dx, real *dp) {
    (void)role; (void)dp;
    if (!dx) return;
    int d = a->hs, m = config_performer_m(a->cfg);
    real r = (real)pow((double)d, -0.25), sum = 0;
    for (int f = 0; f < m; f++) {
        axpy(dx, dz[f] * r, a->buffers + (size_t)f * d, d);
        sum += dz[f];
    }
    axpy(dx, -sum * r * r, x, d);
}

// The same for n rows: z = r X Wᵀ − c_t, one matrix product.
static void performer_map_rows(const AttnLayer *a, int role, const real *x, size_t ld, int n, real *z) {
    (void)role;
    int d = a->hs, m = config_performer_m(a->cfg);
    real r = (real)pow((double)d, -0.25), lm = (real)(0.5 * log((double)m));
    matmul_strided(z, (size_t)m, x, ld, 1, a->buffers, 1, (size_t)d, n, m, d, 0);
    for (int t = 0; t < n; t++) {
        const real *xt = x + t * ld;
        real c = dot(xt, xt, d) * r * r / 2 + lm, *zt = z + (size_t)t * m;
        for (int f = 0; f < m; f++) zt[f] = zt[f] * r - c;
    }
}

// dX += r (dZ W) − r² (Σ_f dz_tf) x_t, dZ scaled by r in place first.
static void performer_map_backward_rows(const AttnLayer *a, int role, const real *x, size_t ld, int n, real *dz,
                                        real *dx, real *dp) {
    (void)role; (void)dp;
    if (!dx) return;
    int d = a->hs, m = config_performer_m(a->cfg);
    real r = (real)pow((double)d, -0.25);
    for (size_t i = 0; i < (size_t)n * m; i++) dz[i] *= r;
    matmul_strided(dx, ld, dz, (size_t)m, 1, a->buffers, (size_t)d, 1, n, d, m, 1);
    for (int t = 0; t < n; t++) axpy(dx + t * ld, -(real)row_sum(dz + (size_t)t * m, m, 0, 0) * r, x + t * ld, d);
}

// W for (seed, layer, redraw): blocks of d×d standard normals (row-major, in
// stream order), each orthonormalised by modified Gram–Schmidt over its rows;
// then, for each of the block's rows kept (m may end mid-block), the norm of
// d fresh normals as the row's length (chi with d degrees of freedom).
static void performer_draw(AttnLayer *a, long redraw) {
    int d = a->hs, m = config_performer_m(a->cfg);
    Rng rng;
    rng_seed(&rng, (uint64_t)a->cfg->seed * 0x9E3779B97F4A7C15ull ^ (uint64_t)(a->layer + 1) * 0xBF58476D1CE4E5B9ull ^
                       (uint64_t)(redraw + 1) * 0x94D049BB133111EBull);
    double *blk = xmalloc((size_t)d * d * sizeof(double), "performer block");
    for (int r0 = 0; r0 < m; r0 += d) {
        for (int i = 0; i < d * d; i++) blk[i] = rng_normal(&rng);
        for (int i = 0; i < d; i++) {
            double *bi = blk + (size_t)i * d, nrm = 0;
            for (int j = 0; j < i; j++) {
                double *bj = blk + (size_t)j * d, p = 0;
                for (int c = 0; c < d; c++) p += bi[c] * bj[c];
                for (int c = 0; c < d; c++) bi[c] -= p * bj[c];
            }
            for (int c = 0; c < d; c++) nrm += bi[c] * bi[c];
            for (int c = 0; c < d; c++) bi[c] /= sqrt(nrm);
        }
        for (int i = 0; i < d && r0 + i < m; i++) {
            double len = 0;
            for (int c = 0; c < d; c++) {
                double g = rng_normal(&rng);
                len += g * g;
            }
            for (int c = 0; c < d; c++) a->buffers[(size_t)(r0 + i) * d + c] = (real)(blk[(size_t)i * d + c] * sqrt(len));
        }
    }
    free(blk);
}

// W comes from the seed, not from the model's stream: it depends only on
// (seed, layer, redraw index), so a resumed run redraws the same features.
static void performer_init(AttnLayer *a, Rng *rng) {
    (void)rng;
    performer_draw(a, 0);
}

static void performer_before_step(AttnLayer *a, long step) {
    int every = a->cfg->performer_redraw;
    if (every > 0 && step % every == 0) performer_draw(a, step / every);
}

LINEAR_KIND(performer, .n_features = performer_features, .map = performer_map, .map_backward = performer_map_backward,
            .map_rows = performer_map_rows, .map_backward_rows = performer_map_backward_rows, .exp_map = 1, .n_buffers = performer_n_buffers, .init = performer_init, .before_step = performer_before_step);

// ===========================================================================
// hedgehog: phi(x) = [exp(Ux + b), exp(−(Ux + b))], F = 2d, one map for queries
// (U_q, b_q) and one for keys (U_k, b_k) per layer, shared by its heads,
// identity init. params: U_q (d×d), U_k (d×d) — decayed — then b_q, b_k (d).

static size_t hedgehog_n_params(const Config *c) {
    size_t d = (size_t)head_size(c);
    return 2 * d * d + 2 * d;
}
static size_t hedgehog_n_decay(const Config *c) {
    size_t d = (size_t)head_size(c);
    return 2 * d * d;
}
static int hedgehog_features(const Config *c) { return 2 * head_size(c); }

static void hedgehog_init(AttnLayer *a, Rng *rng) {
    (void)rng;
    int d = a->hs;
    memset(a->params, 0, hedgehog_n_params(a->cfg) * sizeof(real));
    for (int role = QUERY; role <= KEY; role++)
        for (int i = 0; i < d; i++) a->params[(size_t)role * d * d + (size_t)i * d + i] = 1;
}

// log phi: z = [u, −u], u = U x + b.
static void hedgehog_map(const AttnLayer *a, int role, const real *x, real *z) {
    int d = a->hs;
    const real *U = a->params + (size_t)role * d * d, *bias = a->params + 2 * (size_t)d * d + (size_t)role * d;
    for (int i = 0; i < d; i++) {
        z[i] = dot(U + (size_t)i * d, x, d) + bias[i];
        z[d + i] = -z[i];
    }
}

// du = dz[:d] − dz[d:]: dx += Uᵀdu, dU += du xᵀ, db += du.
static void hedgehog_map_backward(const AttnLayer *a, int role, const real *x, const real *dz, real *dx, real *dp) {
    int d = a->hs;
    const real *U = a->params + (size_t)role * d * d;
    real *dU = dp + (size_t)role * d * d, *db = dp + 2 * (size_t)d * d + (size_t)role * d;
    for (int i = 0; i < d; i++) {
        real du = dz[i] - dz[d + i];
        if (dx) axpy(dx, du, U + (size_t)i * d, d);
        axpy(dU + (size_t)i * d, du, x, d);
        db[i] += du;
    }
}

// The same for n rows: U = X Uᵀ + b as one matrix product; backward
// dX += dU_rows U, dU += dU_rowsᵀ X, db += column sums, with dU_rows = dz[:, :d] − dz[:, d:].
static void hedgehog_map_rows(const AttnLayer *a, int role, const real *x, size_t ld, int n, real *z) {
    int d = a->hs;
    const real *U = a->params + (size_t)role * d * d, *bias = a->params + 2 * (size_t)d * d + (size_t)role * d;
    matmul_strided(z, 2 * (size_t)d, x, ld, 1, U, 1, (size_t)d, n, d, d, 0);
    for (int t = 0; t < n; t++) {
        real *zt = z + (size_t)t * 2 * d;
        for (int i = 0; i < d; i++) {
            zt[i] += bias[i];
            zt[d + i] = -zt[i];
        }
    }
}

static void hedgehog_map_backward_rows(const AttnLayer *a, int role, const real *x, size_t ld, int n, real *dz,
                                       real *dx, real *dp) {
    int d = a->hs;
    size_t F = 2 * (size_t)d;
    const real *U = a->params + (size_t)role * d * d;
    real *dU = dp + (size_t)role * d * d, *db = dp + 2 * (size_t)d * d + (size_t)role * d;
    for (int t = 0; t < n; t++) {
        real *dzt = dz + t * F;
        for (int i = 0; i < d; i++) {
            dzt[i] -= dzt[d + i];
            db[i] += dzt[i];
        }
    }
    if (dx) matmul_strided(dx, ld, dz, F, 1, U, (size_t)d, 1, n, d, d, 1);
    matmul_strided(dU, (size_t)d, dz, 1, F, x, ld, 1, d, d, n, 1);
}

LINEAR_KIND(hedgehog, .n_features = hedgehog_features, .map = hedgehog_map, .map_backward = hedgehog_map_backward,
            .map_rows = hedgehog_map_rows, .map_backward_rows = hedgehog_map_backward_rows, .exp_map = 1, .distill = 1, .n_params = hedgehog_n_params, .n_decay = hedgehog_n_decay,
            .init = hedgehog_init);

// ===========================================================================
// The table.

static const AttnKind *const KINDS[] = {&SOFTMAX, &elu_KIND, &taylor_KIND, &performer_KIND, &hedgehog_KIND};
#define N_KINDS (int)(sizeof KINDS / sizeof KINDS[0])

int attn_kinds(const AttnKind *const **kinds) {
    *kinds = KINDS;
    return N_KINDS;
}

const AttnKind *attn_find(const char *name) {
    for (int i = 0; i < N_KINDS; i++)
        if (strcmp(KINDS[i]->name, name) == 0) return KINDS[i];
    char list[256] = "";
    for (int i = 0; i < N_KINDS; i++) {
        strcat(list, i ? ", " : "");
        strcat(list, KINDS[i]->name);
    }
    die("attention '%s' is not implemented in this build (available: %s)", name, list);
}
