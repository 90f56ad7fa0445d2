// attention_linear.c — the linear-attention engine, shared by every kind
// that is a feature map (feature_maps.c). docs/attention.md derives it.
//
//   A_ij = n_ij / den_i,  n_ij = phi(q_i)·phi(k_j),  den_i = Σ_{j<=i} n_ij,
//   y_i  = Σ_{j<=i} A_ij v_j = phi(q_i)ᵀ S_i / phi(q_i)·z_i,
//   S_i  = Σ_{j<=i} phi(k_j) v_jᵀ (F×d),  z_i = Σ_{j<=i} phi(k_j) (F).
//
// Three forms of the same function:
//   quadratic  row by row over j: the exact reference, O(T²) (and the form
//              the distillation loss needs: it compares every A_ij);
//   chunked    S, z carried from chunk to chunk, pairs scored directly inside
//              a chunk: O(T), every step a matrix product;
//   recurrent  one token at a time, for generation.
// Forward saves den_i per row (B,NH,T), plus the teacher's log-sum-exp per
// row when distilling; backward recomputes everything else.
//
// Work is split over (b, h) pairs, one thread each; each pair's parameter
// gradients go to a slot of its own and are summed in (b, h) order, so the
// result has the same bits for any thread count.
#include "attention_parts.h"
#include "feature_maps.h"
#include "matmul.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

// Which form runs for a (kind, config, T), and the workspace it needs.
typedef struct {
    int quadratic;   // 1: the quadratic form; 0: chunked
    int distill;     // the distillation loss is computed (needs the quadratic pairs)
    int F, Fp;       // features; "pair features" the quadratic form scores (below)
    int chunk, hs;
    size_t ws;       // workspace reals per thread
} LinearPlan;

// One (sequence, head) pair as the forms see it.
typedef struct {
    const FeatureMap *fm;
    const AttnLayer *a;
    HeadView x;       // its q, k, v rows, and its output rows y
    int h, T, hs, F, Fp, chunk;
    real *dp;         // this pair's parameter-gradient slot (backward), or NULL
} Head;

static const real *role_rows(const Head *H, Role role) { return role == QUERY ? H->x.q : H->x.k; }

// ---------------------------------------------------------------------------
// Features, stabilised. exp maps give log-features z, and exp(z) overflows
// float for z > 88. So every query's features are exp(z − max z): a constant
// per query, which cancels in A. Every key's are exp(z − K_j) with K_j its own
// max, and each pair (i, j) is then scored with the factor exp(K_j − M_i),
// M_i = max_{j'<=i} K_j' (the largest key shift query i sees):
//   n_ij = exp(K_j − M_i) · phi(q_i)·phi(k_j) = e^{−max zq} e^{−M_i} Σ_f e^{zq_f} e^{zk_jf},
// one constant per query again, so A is exact, and nothing over 1 is ever
// exponentiated. (One shift for the whole sequence, as this engine first had,
// let a large later key push every earlier key of a row below float's range
// and zero the row.) The recurrent form's running max is the same M_i.
// Backward treats the shifts as constants, which is exact because A does
// not depend on them.

static int is_exp(const Head *H) { return H->fm->z_to_phi == PHI_EXP; }

// z (F) -> softmax over each of `groups` equal parts, in place.
static void softmax_groups(real *z, int F, int groups) {
    for (int g = 0, n = F / groups; g < groups; g++) {
        real *zg = z + g * n;
        real inv = (real)(1.0 / exp_shift_sum(zg, n, row_max(zg, n)));
        for (int i = 0; i < n; i++) zg[i] *= inv;
    }
}

// The map's output z (F) into features in place, as the map's `phi` says;
// returns the shift subtracted before exp (0 for the other kinds of phi).
static real features_of(const Head *H, real *z) {
    switch (H->fm->z_to_phi) {
    case PHI_EXP: {
        real shift = row_max(z, H->F);
        exp_shifted(z, H->F, shift);
        return shift;
    }
    case PHI_RELU:
        for (int i = 0; i < H->F; i++) z[i] = z[i] > 0 ? z[i] : 0;
        return 0;
    case PHI_SOFTMAX_HALVES: softmax_groups(z, H->F, 2); return 0;
    case PHI_SOFTMAX: softmax_groups(z, H->F, 1); return 0;
    default: return 0;
    }
}

// df (F), the gradient of features f, into the gradient of z, in place:
// exp: df·f; relu: df where f > 0; softmax: f ⊙ (df − f·df) per group.
static void features_backward(const Head *H, const real *f, real *df) {
    int F = H->F, groups = H->fm->z_to_phi == PHI_SOFTMAX_HALVES ? 2 : 1;
    switch (H->fm->z_to_phi) {
    case PHI_EXP:
        for (int i = 0; i < F; i++) df[i] *= f[i];
        break;
    case PHI_RELU:
        for (int i = 0; i < F; i++) df[i] = f[i] > 0 ? df[i] : 0;
        break;
    case PHI_SOFTMAX_HALVES:
    case PHI_SOFTMAX:
        for (int g = 0, n = F / groups; g < groups; g++) {
            real s = dot(f + g * n, df + g * n, n);
            for (int i = g * n; i < (g + 1) * n; i++) df[i] = f[i] * (df[i] - s);
        }
        break;
    default: break;
    }
}

// x (hs) -> f (F); returns the shift subtracted before exp (0 without exp).
static real phi(const Head *H, Role role, const real *x, real *f) {
    H->fm->map(H->a, role, H->h, x, f);
    return features_of(H, f);
}

// The factor that puts a key with own shift K in the row of a query whose
// keys' largest shift is M (1 without exp maps).
static real pair_factor(const Head *H, real K, real M) { return is_exp(H) ? exp_r(K - M) : 1; }

// df (F) at f = phi(x) -> dx (hs) += (when dx), H->dp +=. Overwrites df.
static void phi_backward(const Head *H, Role role, const real *x, const real *f, real *df, real *dx) {
    features_backward(H, f, df);
    H->fm->map_backward(H->a, role, H->h, x, df, dx, H->dp);
}

// Tokens [t0, t0+n) in one role: z (n×F) = the map of their q or k, before
// the engine's stabilising and exp (map_rows when the kind has it).
static void map_rows(const Head *H, Role role, int t0, int n, real *z) {
    const real *x = role_rows(H, role) + (size_t)t0 * H->x.ld;
    size_t ld = H->x.ld;
    if (H->fm->map_rows) H->fm->map_rows(H->a, role, H->h, x, ld, n, z);
    else
        for (int t = 0; t < n; t++) H->fm->map(H->a, role, H->h, x + t * ld, z + (size_t)t * H->F);
}

// The same rows' features: f (n×F) = phi of their q or k; each row's shift
// into shift[t] (when not NULL).
static void phi_rows(const Head *H, Role role, int t0, int n, real *f, real *shift) {
    size_t F = H->F;
    map_rows(H, role, t0, n, f);
    if (H->fm->z_to_phi == PHI_Z) return;
    for (int t = 0; t < n; t++) {
        real m = features_of(H, f + t * F);
        if (shift) shift[t] = m;
    }
}

// df (n×F) at f = phi_rows(...) -> those tokens' rows of dq or dk +=
// (d: the view of dqkv), H->dp +=. Overwrites df.
static void phi_backward_rows(const Head *H, Role role, int t0, int n, const real *f, real *df, const HeadView *d) {
    size_t F = H->F, ld = H->x.ld;
    const real *x = role_rows(H, role) + (size_t)t0 * ld;
    real *dx = (role == QUERY ? d->q : d->k) + (size_t)t0 * ld;
    if (!H->fm->map_backward_rows) {
        for (int t = 0; t < n; t++) phi_backward(H, role, x + t * ld, f + t * F, df + t * F, dx + t * ld);
        return;
    }
    if (is_exp(H))
        for (size_t i = 0; i < (size_t)n * F; i++) df[i] *= f[i];
    else
        for (int t = 0; t < n; t++) features_backward(H, f + t * F, df + t * F);
    H->fm->map_backward_rows(H->a, role, H->h, x, ld, n, df, dx, H->dp);
}

// The quadratic form scores pairs of "pair features" psi (Fp of them):
// n_ij = kernel(psi(q_i)·psi(k_j)). Without a kernel psi = phi; with one,
// psi(x) = x/d^(1/4), so psi(q)·psi(k) = q·k/√d and no features are built.
static real psi_scale(const Head *H) { return (real)pow((double)H->hs, -0.25); }

// x (hs) -> f (Fp); returns phi's shift (0 for kernel maps: they have no exp).
static real psi(const Head *H, Role role, const real *x, real *f) {
    if (!H->fm->kernel) return phi(H, role, x, f);
    real r = psi_scale(H);
    for (int i = 0; i < H->hs; i++) f[i] = x[i] * r;
    return 0;
}

// df (Fp) -> dx (hs) += (when dx), H->dp +=. Overwrites df. Kernel maps have
// no parameters.
static void psi_backward(const Head *H, Role role, const real *x, const real *f, real *df, real *dx) {
    if (!H->fm->kernel) phi_backward(H, role, x, f, df, dx);
    else if (dx) axpy(dx, psi_scale(H), df, H->hs);
}

// n_ij from pair features; *dn = dn_ij / d(psi(q_i)·psi(k_j)).
static real psi_score(const Head *H, const real *fq, const real *fk, real *dn) {
    real s = dot(fq, fk, H->Fp);
    if (!H->fm->kernel) {
        *dn = 1;
        return s;
    }
    return H->fm->kernel(s, dn);
}

// ---------------------------------------------------------------------------
// Pieces of the recurrent form and of the backward. S is F×d row-major.

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
// e = −g·y_i, so that dL/dn_ij = g·v_j + e = g·(v_j − y_i). (d->y: dy rows.)
static real cotangent(const Head *H, const HeadView *d, real *g, const real *den, int i) {
    real inv = inv_den(den[i]);
    const real *dyi = d->y + (size_t)i * d->ldy;
    for (int c = 0; c < H->hs; c++) g[c] = dyi[c] * inv;
    return -dot(g, H->x.y + (size_t)i * H->x.ldy, H->hs);
}

// ---------------------------------------------------------------------------
// The distillation loss, per query row i: teacher p_ij = softmax_j(q_i·k_j/√d)
// (a constant), term_i = −Σ_{j<=i} p_ij log A_ij = log den_i − Σ_j p_ij log n_ij.

// The teacher's scores of row i into s[0..i]; returns their max.
static real teacher_scores(const Head *H, int i, real *s) {
    return softmax_row_scores(s, &H->x, i, H->hs, (real)(1.0 / sqrt((double)H->hs)));
}

// The same, returning their log-sum-exp.
static real teacher_row(const Head *H, int i, real *s) {
    real mx = teacher_scores(H, i, s), sum = 0;
    for (int j = 0; j <= i; j++) sum += exp_r(s[j] - mx);
    return mx + (real)log(sum);
}

// ---------------------------------------------------------------------------
// Quadratic form: row by row; the keys' pair features kept (T × Fp), never
// a T×T matrix. A thread's workspace:
typedef struct {
    real *fk;            // the keys' pair features                      T × Fp
    real *dfk, *dfkd;    // their gradients, and the distillation's share  T × Fp each
    real *fq;            // one query's pair features                    Fp
    real *dfq, *dfqd;    // its gradient, and the distillation's share   Fp each
    real *n, *s, *ks;    // the row's scores n_ij, the teacher's scores, the keys' shifts K_j   T each
    real *g;             // the row's cotangent g_i                      d
} QuadWs;

static size_t quad_ws_size(int T, int Fp, int d) { return 3 * (size_t)T * Fp + 3 * (size_t)Fp + 3 * (size_t)T + d; }

static QuadWs quad_ws(const Head *H, real *ws) {
    size_t TF = (size_t)H->T * H->Fp, Fp = H->Fp, T = H->T;
    QuadWs w;
    w.fk = ws;
    w.dfk = w.fk + TF;
    w.dfkd = w.dfk + TF;    // right after dfk: one memset zeroes both
    w.fq = w.dfkd + TF;
    w.dfq = w.fq + Fp;
    w.dfqd = w.dfq + Fp;    // likewise
    w.n = w.dfqd + Fp;
    w.s = w.n + T;
    w.ks = w.s + T;
    w.g = w.ks + T;
    return w;
}

// -> this head's rows of y (when write_y), den (T) (when not NULL); when lse
// is given, the teacher's lse (T) too, and returns Σ_i term_i.
static double quad_forward(const Head *H, int write_y, real *den, real *lse, real *ws) {
    int T = H->T, Fp = H->Fp, hs = H->hs;
    size_t ld = H->x.ld;
    QuadWs w = quad_ws(H, ws);
    real *fk = w.fk, *fq = w.fq, *n = w.n, *s = w.s, *ks = w.ks;
    for (int j = 0; j < T; j++) ks[j] = psi(H, KEY, H->x.k + j * ld, fk + (size_t)j * Fp);
    double distill = 0;
    real M = -INFINITY;   // M_i
    for (int i = 0; i < T; i++) {
        psi(H, QUERY, H->x.q + i * ld, fq);
        M = ks[i] > M ? ks[i] : M;
        real sum = 0, dn;
        for (int j = 0; j <= i; j++) {
            n[j] = psi_score(H, fq, fk + (size_t)j * Fp, &dn);
            if (is_exp(H)) n[j] *= pair_factor(H, ks[j], M);
            sum += n[j];
        }
        sum += H->fm->den_eps;
        if (write_y) {   // y_i = Σ_j n_ij v_j / den_i
            real *yi = H->x.y + (size_t)i * H->x.ldy, inv = inv_den(sum);
            memset(yi, 0, (size_t)hs * sizeof(real));
            for (int j = 0; j <= i; j++) axpy(yi, n[j], H->x.v + j * ld, hs);
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

// -> d's rows of dq, dk, dv (+=), H->dp (+=); d->y (dy) NULL: the
// distillation's gradient only. Per pair, with (g, e) from cotangent() and
// dn = dn_ij/d(psi·psi):
//   dv_j += n_ij g,  D = (g·v_j + e) + λ(1/den_i − p_ij/n_ij),
//   dpsi(q_i) += D·dn·psi(k_j),  dpsi(k_j) += D·dn·psi(q_i).
// With distill_qk_grad = 0 the λ part is summed apart (dfqd, dfkd) and
// reaches only the map's parameters.
static void quad_backward(const Head *H, const HeadView *d, const real *den, const real *lse, real distill_scale,
                          int qk_grad, real *ws) {
    int T = H->T, Fp = H->Fp, hs = H->hs;
    int has_dy = d->y != NULL, split = lse && !qk_grad, main_part = has_dy || !split;
    size_t TF = (size_t)T * Fp, ld = H->x.ld;
    QuadWs w = quad_ws(H, ws);
    real *fk = w.fk, *dfk = w.dfk, *dfkd = w.dfkd, *fq = w.fq, *dfq = w.dfq, *dfqd = w.dfqd, *s = w.s, *ks = w.ks, *g = w.g;
    memset(dfk, 0, 2 * TF * sizeof(real));   // dfk and dfkd
    for (int j = 0; j < T; j++) ks[j] = psi(H, KEY, H->x.k + j * ld, fk + (size_t)j * Fp);
    real M = -INFINITY;
    for (int i = 0; i < T; i++) {
        const real *q = H->x.q + i * ld;
        psi(H, QUERY, q, fq);
        M = ks[i] > M ? ks[i] : M;
        memset(dfq, 0, 2 * (size_t)Fp * sizeof(real));   // dfq and dfqd
        real inv = inv_den(den[i]), e = has_dy ? cotangent(H, d, g, den, i) : 0;
        if (lse) teacher_scores(H, i, s);
        for (int j = 0; j <= i; j++) {
            const real *fkj = fk + (size_t)j * Fp;
            real dn, n = psi_score(H, fq, fkj, &dn), D = 0, Dd = 0;
            if (is_exp(H)) {   // n and its derivative carry the pair's factor
                real f = pair_factor(H, ks[j], M);
                n *= f;
                dn *= f;
            }
            if (has_dy) {
                D = dot(g, H->x.v + j * ld, hs) + e;
                axpy(d->v + j * ld, n, g, hs);
            }
            if (lse) Dd = distill_scale * (inv - (real)exp_r(s[j] - lse[i]) * inv_den(n));
            if (!split) D += Dd;
            if (main_part) {
                axpy(dfq, D * dn, fkj, Fp);
                axpy(dfk + (size_t)j * Fp, D * dn, fq, Fp);
            }
            if (split) {
                axpy(dfqd, Dd * dn, fkj, Fp);
                axpy(dfkd + (size_t)j * Fp, Dd * dn, fq, Fp);
            }
        }
        if (main_part) psi_backward(H, QUERY, q, fq, dfq, d->q + i * ld);
        if (split) psi_backward(H, QUERY, q, fq, dfqd, NULL);
    }
    for (int j = 0; j < T; j++) {
        const real *k = H->x.k + j * ld;
        if (main_part) psi_backward(H, KEY, k, fk + (size_t)j * Fp, dfk + (size_t)j * Fp, d->k + j * ld);
        if (split) psi_backward(H, KEY, k, fk + (size_t)j * Fp, dfkd + (size_t)j * Fp, NULL);
    }
}

// ---------------------------------------------------------------------------
// Chunked form: chunks of c tokens; the state carries the earlier chunks and
// a chunk's own pairs are scored directly. Everything a chunk does is a
// matrix product, so the F×d state is read and written once per chunk, not
// once per token. Two tricks keep it to few products: the state is
// S' = [S | z] (F × (d+1)) and each value row is v' = [v | 1], so that
// S' += Φkᵀ V' updates S and z together and Φq S' gives numerators and
// denominators together; in backward the cotangent rows are g' = [g | e].
// Maps with a kernel (Taylor) score a chunk's own pairs as kernel(q·k/√d):
// d multiply-adds a pair instead of F (2145 for d = 64), and their gradients
// reach q and k directly instead of through the features.

// With exp maps the chunk also carries the running key shift (see "Features,
// stabilised"): S' holds the earlier keys under M = the largest shift so
// far. Query t of a chunk sees S' under its own M_t, so its row of Φq S' is
// scaled by r_t = exp(M − M_t), and its pairs with the chunk's keys by
// exp(K_u − M_t) (kept in w->kk); the keys enter S' scaled by
// s_u = exp(K_u − M_end) after S' itself is rescaled to M_end, the chunk's
// last M_t. Every factor is at most 1.

// A chunk's workspace (n <= c rows, d1 = d + 1 columns where it says d1).
typedef struct {
    real *S;        // S' = [S | z]          F × d1   (backward's second pass: R')
    real *pq, *pk;  // Φq, Φk: the chunk's features            c × F each
    real *pks;      // exp maps: Φk's rows scaled by s_u (else pks = pk)    c × F
    real *df;       // dΦ: their gradient                       c × F
    real *vv;       // V' = [V | 1]                             c × d1
    real *gg;       // G' = [G | e]: backward's cotangent rows  c × d1
    real *yy;       // [numerators | denominators]              c × d1
    real *nn, *dd;  // N = (n_tu), D = (D_tu): the chunk's pairs, zero above the diagonal, c × c
    real *kk;       // kernel maps: dn_tu/d(q_t·k_u/√d); exp maps: the pairs' factors   c × c
    real *ks, *ms;  // exp maps: each key's shift K_u and each query's M_t    c each
    real *m_before; // exp maps: M before each chunk (backward)                  ⌈T/c⌉
    real m_prev, m_end;   // exp maps: M before and after the current chunk
} ChunkWs;

static size_t chunk_ws_size(int F, int c, int d, int T) {
    return (size_t)F * (d + 1) + 4 * (size_t)c * F + 3 * (size_t)c * (d + 1) + 3 * (size_t)c * c + 2 * (size_t)c +
           (size_t)(T + c - 1) / c;
}

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
    w.pks = is_exp(H) ? w.kk + c * c : w.pk;
    w.ks = w.kk + c * c + c * F;
    w.ms = w.ks + c;
    w.m_before = w.ms + c;
    w.m_prev = w.m_end = -INFINITY;
    return w;
}

// The three passes over a head's chunks and the rows each writes: y in
// forward, dq in the queries' backward pass, dk and dv in the keys'.
typedef enum { PASS_FORWARD, PASS_QUERIES, PASS_KEYS } ChunkPass;

// Tokens [c0, c0+n): features into w->pq, w->pk, rows [v | 1] into w->vv;
// in backward (d given), the cotangent rows [g | e] into w->gg; for exp maps
// the shifts and factors, with M before the chunk given as m_prev. Meanwhile
// the rows that the pass's chunk at `next` reads and writes are prefetched,
// none when next < 0.
static void chunk_load(const Head *H, ChunkWs *w, ChunkPass pass, int c0, int n, int next, const HeadView *d,
                       const real *den, real m_prev) {
    int hs = H->hs, d1 = hs + 1;
    size_t ld = H->x.ld, ldy = H->x.ldy, F = H->F;
    // A head's rows lie 3C apart, each on pages of its own, out of the
    // hardware prefetchers' sight (docs/performance.md). Here and not in a
    // function of its own: GCC finds a function of prefetches alone free of
    // effects and drops its calls.
    for (int t = next; next >= 0 && t < next + H->chunk && t < H->T; t++)
        for (int l = 0; l < hs; l += 64 / (int)sizeof(real)) {
            PREFETCH(H->x.q + t * ld + l, 0);
            PREFETCH(H->x.k + t * ld + l, 0);
            PREFETCH(H->x.v + t * ld + l, 0);
            if (pass == PASS_FORWARD) PREFETCH(H->x.y + t * ldy + l, 1);
            else {
                PREFETCH(d->y + t * ldy + l, 0);
                PREFETCH(H->x.y + t * ldy + l, 0);
                PREFETCH((pass == PASS_QUERIES ? d->q : d->k) + t * ld + l, 1);
                if (pass == PASS_KEYS) PREFETCH(d->v + t * ld + l, 1);
            }
        }
    phi_rows(H, QUERY, c0, n, w->pq, NULL);
    phi_rows(H, KEY, c0, n, w->pk, w->ks);
    for (int t = 0; t < n; t++) {
        real *vt = w->vv + (size_t)t * d1;
        memcpy(vt, H->x.v + (size_t)(c0 + t) * ld, (size_t)hs * sizeof(real));
        vt[hs] = 1;
        if (d) w->gg[(size_t)t * d1 + hs] = cotangent(H, d, w->gg + (size_t)t * d1, den, c0 + t);
    }
    if (!is_exp(H)) return;
    w->m_prev = m_prev;
    real M = m_prev;
    for (int t = 0; t < n; t++) {
        M = w->ks[t] > M ? w->ks[t] : M;
        w->ms[t] = M;
        for (int u = 0; u <= t; u++) w->kk[(size_t)t * n + u] = pair_factor(H, w->ks[u], M);
    }
    w->m_end = M;
    for (int u = 0; u < n; u++) {   // the keys as they enter S' (or R')
        real su = pair_factor(H, w->ks[u], M);
        for (size_t f = 0; f < F; f++) w->pks[(size_t)u * F + f] = w->pk[(size_t)u * F + f] * su;
    }
}

// Exp maps: rows t of an n-row block of product rows, ld apart, times
// r_t = exp(M_prev − M_t): the earlier chunks as query t sees them. Nothing
// to do in the first chunk, where S' (or the rows) are still zero.
static void scale_by_query_shift(const Head *H, const ChunkWs *w, real *rows, size_t ld, int n, int width) {
    if (!is_exp(H) || w->m_prev == -INFINITY) return;
    for (int t = 0; t < n; t++) {
        real r = pair_factor(H, w->m_prev, w->ms[t]);
        for (int j = 0; j < width; j++) rows[(size_t)t * ld + j] *= r;
    }
}

// Exp maps: S' (or R'), kept under M_prev, rescaled to the chunk's M_end.
static void rescale_state(const Head *H, const ChunkWs *w) {
    if (!is_exp(H) || w->m_prev == -INFINITY) return;
    real r = pair_factor(H, w->m_prev, w->m_end);
    for (size_t i = 0; i < (size_t)H->F * (H->hs + 1); i++) w->S[i] *= r;
}

// out (n×n) = X Yᵀ, zero above the diagonal: the chunk's causal pairs.
static void chunk_pairs(real *out, Mat X, Mat Y) {
    int n = X.rows;
    mat_mul(mat(out, n, n, (size_t)n), X, mat_t(Y));
    for (int t = 0; t < n; t++) memset(out + (size_t)t * n + t + 1, 0, (size_t)(n - t - 1) * sizeof(real));
}

// Exp maps: a chunk's pair matrix times the pairs' factors (w->kk).
static void times_pair_factors(const Head *H, const ChunkWs *w, real *pairs, int n) {
    if (!is_exp(H)) return;
    for (int t = 0; t < n; t++)
        for (int u = 0; u <= t; u++) pairs[(size_t)t * n + u] *= w->kk[(size_t)t * n + u];
}

// The rows [t0, t0+n) of a head's queries or keys as an n × hs matrix.
static Mat head_rows(const Head *H, const real *base, int t0, int n) {
    return mat(base + (size_t)t0 * H->x.ld, n, H->hs, H->x.ld);
}

// The chunk's scores n_tu = phi(q_t)·phi(k_u) into w->nn: N = Φq Φkᵀ (times
// the pairs' factors for exp maps); for kernel maps N = kernel(Q Kᵀ/√d)
// element-wise, with its derivative in w->kk.
static void chunk_scores(const Head *H, const ChunkWs *w, int c0, int n) {
    if (!H->fm->kernel) {
        chunk_pairs(w->nn, mat(w->pq, n, H->F, (size_t)H->F), mat(w->pk, n, H->F, (size_t)H->F));
        times_pair_factors(H, w, w->nn, n);
        return;
    }
    chunk_pairs(w->nn, head_rows(H, H->x.q, c0, n), head_rows(H, H->x.k, c0, n));
    real r = psi_scale(H) * psi_scale(H);
    for (int t = 0; t < n; t++)
        for (int u = 0; u <= t; u++) {
            size_t i = (size_t)t * n + u;
            w->nn[i] = H->fm->kernel(w->nn[i] * r, &w->kk[i]);
        }
    for (int t = 0; t < n; t++) memset(w->kk + (size_t)t * n + t + 1, 0, (size_t)(n - t - 1) * sizeof(real));
}

// D = G' V'ᵀ, the chunk's pair cotangents (times the pairs' factors for exp
// maps, as the pairs themselves are).
static void chunk_pair_cotangents(const Head *H, const ChunkWs *w, int n) {
    int d1 = H->hs + 1;
    chunk_pairs(w->dd, mat(w->gg, n, d1, (size_t)d1), mat(w->vv, n, d1, (size_t)d1));
    times_pair_factors(H, w, w->dd, n);
}

// The chunk's own pairs' share of the feature gradients, from D (w->dd):
// role QUERY: dΦq += D Φk; role KEY: dΦk += Dᵀ Φq. Kernel maps instead add
// dQ += (D ⊙ K')·K/√d or dK += (D ⊙ K')ᵀ·Q/√d to d's rows (w->dd is scaled).
static void chunk_pair_grads(const Head *H, const ChunkWs *w, Role role, int c0, int n, const HeadView *d) {
    int F = H->F;
    Mat D = mat(w->dd, n, n, (size_t)n), Dr = role == QUERY ? D : mat_t(D);
    if (!H->fm->kernel) {
        mat_mul_add(mat(w->df, n, F, (size_t)F), Dr, mat(role == QUERY ? w->pk : w->pq, n, F, (size_t)F));
        return;
    }
    real r = psi_scale(H) * psi_scale(H);
    for (size_t i = 0; i < (size_t)n * n; i++) w->dd[i] *= w->kk[i] * r;
    Mat dX = head_rows(H, role == QUERY ? d->q : d->k, c0, n);
    mat_mul_add(dX, Dr, head_rows(H, role == QUERY ? H->x.k : H->x.q, c0, n));
}

// -> this head's rows of y, den (T):
//   [Num | Den] = Φq S' + N V',  y_t = num_t / den_t,  then  S' += Φkᵀ V'
static void chunk_forward(const Head *H, real *den, real *ws) {
    int F = H->F, hs = H->hs, d1 = hs + 1;
    ChunkWs w = chunk_ws(H, ws);
    Mat S = mat(w.S, F, d1, (size_t)d1);
    memset(w.S, 0, (size_t)F * d1 * sizeof(real));
    for (int c0 = 0; c0 < H->T; c0 += H->chunk) {
        int n = H->T - c0 < H->chunk ? H->T - c0 : H->chunk;
        Mat Pq = mat(w.pq, n, F, (size_t)F), Pks = mat(w.pks, n, F, (size_t)F);
        Mat V1 = mat(w.vv, n, d1, (size_t)d1), Out = mat(w.yy, n, d1, (size_t)d1);
        chunk_load(H, &w, PASS_FORWARD, c0, n, c0 + H->chunk, NULL, NULL, w.m_end);
        mat_mul(Out, Pq, S);                                  // [Num | Den] = Φq S'
        scale_by_query_shift(H, &w, w.yy, (size_t)d1, n, d1);
        chunk_scores(H, &w, c0, n);
        mat_mul_add(Out, mat(w.nn, n, n, (size_t)n), V1);     //            += N V'
        for (int t = 0; t < n; t++) {
            const real *yt = w.yy + (size_t)t * d1;
            real dent = yt[hs] + H->fm->den_eps, *yi = H->x.y + (size_t)(c0 + t) * H->x.ldy, inv = inv_den(dent);
            for (int c = 0; c < hs; c++) yi[c] = yt[c] * inv;
            den[c0 + t] = dent;
        }
        rescale_state(H, &w);
        mat_mul_add(S, mat_t(Pks), V1);                       // S' += Φkᵀ V'
    }
}

// -> d's rows of dq, dk, dv (+=), H->dp (+=), in two passes, with
// D_tu = g_t·v_u + e_t = g'_t·v'_u (D = G' V'ᵀ):
//   chunks in order, S' as in forward:       dΦq = G' S'ᵀ + D Φk
//   chunks in reverse, R' = Σ_{later chunks} Φqᵀ G' (F × d1, in S's memory):
//     dΦk = V' R'ᵀ + Dᵀ Φq,   dV += Φk R + Nᵀ G   (R, G: R', G' without the last column)
// (for kernel maps the D terms go to q and k instead: chunk_pair_grads;
// for exp maps the factors above scale the rows: r_t on the G' S'ᵀ rows
// and on G' entering R', s_u on the R' terms of key u).
static void chunk_backward(const Head *H, const HeadView *d, const real *den, real *ws) {
    int F = H->F, hs = H->hs, d1 = hs + 1, T = H->T, c = H->chunk;
    ChunkWs w = chunk_ws(H, ws);
    Mat S = mat(w.S, F, d1, (size_t)d1);
    memset(w.S, 0, (size_t)F * d1 * sizeof(real));
    for (int c0 = 0; c0 < T; c0 += c) {
        int n = T - c0 < c ? T - c0 : c;
        Mat Pks = mat(w.pks, n, F, (size_t)F), dP = mat(w.df, n, F, (size_t)F);
        Mat V1 = mat(w.vv, n, d1, (size_t)d1), G1 = mat(w.gg, n, d1, (size_t)d1);
        w.m_before[c0 / c] = w.m_end;
        chunk_load(H, &w, PASS_QUERIES, c0, n, c0 + c, d, den, w.m_end);
        mat_mul(dP, G1, mat_t(S));              // dΦq = G' S'ᵀ
        scale_by_query_shift(H, &w, w.df, (size_t)F, n, F);
        chunk_pair_cotangents(H, &w, n);        // D = G' V'ᵀ
        if (H->fm->kernel) chunk_scores(H, &w, c0, n);
        chunk_pair_grads(H, &w, QUERY, c0, n, d);   //  + D Φk
        phi_backward_rows(H, QUERY, c0, n, w.pq, w.df, d);
        rescale_state(H, &w);
        mat_mul_add(S, mat_t(Pks), V1);         // S' += Φkᵀ V'
    }
    // Now R', from the last chunk back, holding the later queries under the
    // current chunk's M_end.
    memset(w.S, 0, (size_t)F * d1 * sizeof(real));
    for (int c0 = (T - 1) / c * c; c0 >= 0; c0 -= c) {
        int n = T - c0 < c ? T - c0 : c;
        Mat Pq = mat(w.pq, n, F, (size_t)F), Pks = mat(w.pks, n, F, (size_t)F), dP = mat(w.df, n, F, (size_t)F);
        Mat V1 = mat(w.vv, n, d1, (size_t)d1), G1 = mat(w.gg, n, d1, (size_t)d1);
        chunk_load(H, &w, PASS_KEYS, c0, n, c0 - c, d, den, w.m_before[c0 / c]);
        chunk_pair_cotangents(H, &w, n);        // D = G' V'ᵀ
        chunk_scores(H, &w, c0, n);
        mat_mul(dP, V1, mat_t(S));              // dΦk = V' R'ᵀ
        Mat dV = head_rows(H, d->v, c0, n);
        mat_mul_add(dV, Pks, mat(w.S, F, hs, (size_t)d1));                          // dV += Φk R
        mat_mul_add(dV, mat_t(mat(w.nn, n, n, (size_t)n)), mat(w.gg, n, hs, (size_t)d1));   //  + Nᵀ G
        if (is_exp(H))   // key u's share of dΦk through R' is scaled by s_u
            for (int u = 0; u < n; u++) {
                real su = pair_factor(H, w.ks[u], w.m_end);
                for (int f = 0; f < F; f++) w.df[(size_t)u * F + f] *= su;
            }
        chunk_pair_grads(H, &w, KEY, c0, n, d);     // dΦk += Dᵀ Φq
        phi_backward_rows(H, KEY, c0, n, w.pk, w.df, d);
        // R' for the chunk before, under its M_end (this chunk's M_prev):
        // rescaled, and this chunk's queries added with their r_t.
        rescale_state(H, &w);
        scale_by_query_shift(H, &w, w.gg, (size_t)d1, n, d1);
        mat_mul_add(S, mat_t(Pq), G1);          // R' += Φqᵀ G'
    }
}

// ---------------------------------------------------------------------------
// Choosing the form, sizes, and the drivers that run the forms over (b, h).

// attention_form = auto: the cheaper per token, counting multiply-adds of one
// forward: quadratic T/2·(G + d) (scores, then values); chunked 2·F·d (read
// and update S) + c/2·(G + d) (pairs inside the chunk), divided by
// CHUNK_SPEEDUP because the chunked form's run as matrix products and the
// quadratic form's as vector loops (measured: docs/performance.md).
// With distillation, quadratic: the loss needs every n_ij anyway.
#define CHUNK_SPEEDUP 5.0
static LinearPlan lin_plan(const FeatureMap *fm, const Config *c, int T) {
    LinearPlan p;
    p.hs = head_size(c);
    p.F = fm->n_features(c);
    p.Fp = fm->kernel ? p.hs : p.F;
    p.distill = c->distill_weight > 0;
    p.chunk = c->chunk_size < T ? c->chunk_size : T;
    if (strcmp(c->attention_form, "auto") != 0) p.quadratic = strcmp(c->attention_form, "quadratic") == 0;
    else {
        double quad = T / 2.0 * (p.Fp + p.hs), chunked = (2.0 * p.F * p.hs + p.chunk / 2.0 * (p.Fp + p.hs)) / CHUNK_SPEEDUP;
        p.quadratic = p.distill || quad <= chunked;
    }
    size_t quad = p.quadratic || p.distill ? quad_ws_size(T, p.Fp, p.hs) : 0;
    size_t chunked = p.quadratic ? 0 : chunk_ws_size(p.F, p.chunk, p.hs, T);
    p.ws = quad > chunked ? quad : chunked;
    if (p.ws < 2 * (size_t)p.F) p.ws = 2 * (size_t)p.F;  // step uses 2F
    return p;
}

static Head lin_head(const AttnLayer *a, const LinearPlan *p, const real *qkv, const real *y, int b, int h, int T) {
    Head H = {a->kind->map, a, head_view(qkv, y, b, h, T, a->C, a->hs), h, T, a->hs, p->F, p->Fp, p->chunk, NULL};
    return H;
}

// Per layer: den (B,NH,T), and the teacher's lse (B,NH,T) when distilling.
static size_t lin_act_size(const AttnKind *k, const Config *c, int B, int T) {
    return (lin_plan(k->map, c, T).distill ? 2 : 1) * (size_t)B * c->n_head * T;
}

// A workspace per thread, then one parameter-gradient slot per (b, h).
static size_t lin_scratch_size(const AttnKind *k, const Config *c, int B, int T) {
    return (size_t)n_threads() * lin_plan(k->map, c, T).ws + (size_t)B * c->n_head * attn_n_params(k, c);
}

// qkv (B,T,3C) -> y (B,T,C), acts: den (B,NH,T) [, lse (B,NH,T)]
static double lin_forward(AttnLayer *a, real *y, const real *qkv, int B, int T) {
    LinearPlan p = lin_plan(a->kind->map, a->cfg, T);
    int NH = a->NH;
    size_t BH = (size_t)B * NH;
    double *dsum = p.distill ? xcalloc(BH, sizeof(double), "distillation sums") : NULL;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            real *ws = a->scratch + (size_t)THREAD_ID * p.ws;
            size_t o = ((size_t)b * NH + h) * T;
            real *den = a->acts + o, *lse = p.distill ? a->acts + BH * T + o : NULL;
            Head H = lin_head(a, &p, qkv, y, b, h, T);
            double dl;
            if (p.quadratic) dl = quad_forward(&H, 1, den, lse, ws);
            else {
                chunk_forward(&H, den, ws);
                dl = lse ? quad_forward(&H, 0, NULL, lse, ws) : 0;
            }
            if (dsum) dsum[(size_t)b * NH + h] = dl;
        }
    double total = 0;
    for (size_t i = 0; dsum && i < BH; i++) total += dsum[i];
    free(dsum);
    return total;
}

// dy (B,T,C) -> dqkv (B,T,3C) +=, grads +=. Each (b, h) sums its parameter
// gradients into its own slot; the slots are then added in (b, h) order, so
// the result has the same bits for any thread count.
static void lin_backward(AttnLayer *a, real *dqkv, const real *dy, const real *qkv, const real *y, int B, int T,
                         double distill_scale) {
    const FeatureMap *fm = a->kind->map;
    LinearPlan p = lin_plan(fm, a->cfg, T);
    int NH = a->NH;
    size_t BH = (size_t)B * NH, np = attn_n_params(a->kind, a->cfg);
    real *slots = a->scratch + (size_t)n_threads() * p.ws;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            real *ws = a->scratch + (size_t)THREAD_ID * p.ws;
            size_t o = ((size_t)b * NH + h) * T;
            // The distillation's gradient reaches the map's parameters, and q
            // and k only when distill_qk_grad = 1: without either, nothing.
            const real *den = a->acts + o, *lse = p.distill && (np || a->cfg->distill_qk_grad) ? a->acts + BH * T + o : NULL;
            if (!dy && !lse) continue;   // no gradient to take
            Head H = lin_head(a, &p, qkv, y, b, h, T);
            HeadView d = head_view(dqkv, dy, b, h, T, a->C, a->hs);
            if (np) {
                H.dp = slots + ((size_t)b * NH + h) * np;
                memset(H.dp, 0, np * sizeof(real));
            }
            int qk_grad = a->cfg->distill_qk_grad;
            if (p.quadratic) quad_backward(&H, &d, den, lse, (real)distill_scale, qk_grad, ws);
            else {
                if (dy) chunk_backward(&H, &d, den, ws);
                if (lse) {
                    HeadView dd = d;
                    dd.y = NULL;   // the distillation's share only
                    quad_backward(&H, &dd, den, lse, (real)distill_scale, qk_grad, ws);
                }
            }
        }
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < np; i++) {
        real s = 0;
        for (size_t k = 0; k < BH; k++) s += slots[k * np + i];
        a->grads[i] += s;
    }
}

// ---------------------------------------------------------------------------
// Recurrent form. Per head: S (F×d), z (F) and, for exp maps, M: the running
// max of the keys' log-features, the key shift so far. A larger one rescales
// S and z by exp(M_old − M_new) (online-softmax style), so every query sees
// all its keys under one shift and the result equals the other forms'.
static size_t lin_state_size(const AttnKind *k, const Config *c, int max_T) {
    (void)max_T;
    int F = k->map->n_features(c);
    return (size_t)c->n_head * ((size_t)F * head_size(c) + F + 1);
}

// qkv (3C) at position pos -> y (C); the state was zeroed before pos 0.
static void lin_step(AttnLayer *a, real *state, real *y, const real *qkv, int pos) {
    const FeatureMap *fm = a->kind->map;
    int C = a->C, hs = a->hs, F = fm->n_features(a->cfg);
    LinearPlan p = lin_plan(fm, a->cfg, 1);
    real *fq = a->scratch, *fk = fq + F;
    for (int h = 0; h < a->NH; h++) {
        real *S = state + (size_t)h * ((size_t)F * hs + F + 1), *z = S + (size_t)F * hs, *M = z + F;
        const real *q = qkv + (size_t)h * hs, *k = q + C, *v = q + 2 * C;
        Head H = lin_head(a, &p, qkv, NULL, 0, h, 1);
        fm->map(a, KEY, h, k, fk);
        if (fm->z_to_phi == PHI_EXP) {
            real mk = row_max(fk, F);
            if (pos == 0 || mk > *M) {
                if (pos > 0) {
                    real r = exp_r(*M - mk);
                    for (size_t i = 0; i < (size_t)F * hs + F; i++) S[i] *= r;
                }
                *M = mk;
            }
            exp_shifted(fk, F, *M);
        } else
            features_of(&H, fk);
        state_add(S, z, fk, v, 1, F, hs);
        phi(&H, QUERY, q, fq);
        real *yh = y + (size_t)h * hs, inv = inv_den(dot(fq, z, F) + fm->den_eps);
        memset(yh, 0, (size_t)hs * sizeof(real));
        state_read(yh, S, fq, F, hs);
        for (int c = 0; c < hs; c++) yh[c] *= inv;
    }
}

// qkv (B,T,3C) -> A (T,T) of head h of sequence b: n_ij / den_i, from the same
// stabilised pair features the quadratic form scores.
static void lin_weights(AttnLayer *a, const real *qkv, int B, int T, int b, int h, real *A) {
    (void)B;
    LinearPlan p = lin_plan(a->kind->map, a->cfg, T);
    Head H = lin_head(a, &p, qkv, NULL, b, h, T);
    size_t ld = H.x.ld;
    real *fk = xmalloc(((size_t)T + 1) * p.Fp * sizeof(real) + (size_t)T * sizeof(real), "attention weights");
    real *fq = fk + (size_t)T * p.Fp, *ks = fq + p.Fp, M = -INFINITY;
    for (int j = 0; j < T; j++) ks[j] = psi(&H, KEY, H.x.k + j * ld, fk + (size_t)j * p.Fp);
    memset(A, 0, (size_t)T * T * sizeof(real));
    for (int i = 0; i < T; i++) {
        real *row = A + (size_t)i * T, den = 0, dn;
        psi(&H, QUERY, H.x.q + i * ld, fq);
        M = ks[i] > M ? ks[i] : M;
        for (int j = 0; j <= i; j++) den += row[j] = psi_score(&H, fq, fk + (size_t)j * p.Fp, &dn) * pair_factor(&H, ks[j], M);
        real inv = inv_den(den + H.fm->den_eps);
        for (int j = 0; j <= i; j++) row[j] *= inv;
    }
    free(fk);
}

const AttnEngine LINEAR_ENGINE = {
    .act_size = lin_act_size, .scratch_size = lin_scratch_size, .forward = lin_forward, .backward = lin_backward,
    .state_size = lin_state_size, .step = lin_step, .weights = lin_weights};
