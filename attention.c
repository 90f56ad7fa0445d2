// attention.c — the attention kinds behind one interface (attention.h).
//
// Layout: qkv (B,T,3C) holds, for token (b,t), the query channels at [0,C),
// keys at [C,2C) and values at [2C,3C); head h owns [h*hs, (h+1)*hs) of each.
// y (B,T,C) holds the heads' outputs side by side. Work is split over
// (b, h) pairs: each pair is one thread's, so sums run in a fixed order and
// results do not depend on the thread count.
#include "attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Pointers to head h of token (b,t).
#define Q(qkv, b, t, h) ((qkv) + ((size_t)(b) * T + (t)) * 3 * C + (size_t)(h) * hs)
#define K(qkv, b, t, h) (Q(qkv, b, t, h) + C)
#define V(qkv, b, t, h) (Q(qkv, b, t, h) + 2 * C)
#define Y(y, b, t, h) ((y) + ((size_t)(b) * T + (t)) * C + (size_t)(h) * hs)

static real dot(const real *a, const real *b, int n) {
    real s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
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
// (B,NH,T); backward recomputes each row of A from q, k and lse. Scratch is
// one row of T scores per thread, so no T×T matrix ever exists.

static size_t softmax_act_size(const Config *c, int B, int T) { return (size_t)B * c->n_head * T; }
static size_t softmax_scratch_size(const Config *c, int B, int T) { (void)c; (void)B; return (size_t)n_threads() * T; }

// Row i of the scaled scores into s[0..i]; returns their max.
static real softmax_scores(real *s, const real *q, const real *qkv, int b, int h, int i, int T, int C, int hs, real scale) {
    real mx = -INFINITY;
    for (int j = 0; j <= i; j++) {
        s[j] = dot(q, K(qkv, b, j, h), hs) * scale;
        mx = s[j] > mx ? s[j] : mx;
    }
    return mx;
}

// qkv (B,T,3C) -> y (B,T,C), acts: lse (B,NH,T)
static double softmax_forward(AttnLayer *a, real *y, const real *qkv, int B, int T) {
    int C = a->C, NH = a->NH, hs = a->hs;
    real scale = (real)(1.0 / sqrt((double)hs));
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            real *s = a->scratch + (size_t)THREAD_ID * T;
            real *lse = a->acts + ((size_t)b * NH + h) * T;
            for (int i = 0; i < T; i++) {
                real mx = softmax_scores(s, Q(qkv, b, i, h), qkv, b, h, i, T, C, hs, scale);
                real sum = 0, *yi = Y(y, b, i, h);
                memset(yi, 0, (size_t)hs * sizeof(real));
                for (int j = 0; j <= i; j++) {
                    real e = exp(s[j] - mx);
                    sum += e;
                    axpy(yi, e, V(qkv, b, j, h), hs);
                }
                for (int d = 0; d < hs; d++) yi[d] /= sum;
                lse[i] = mx + log(sum);
            }
        }
    return 0;
}

// With A_ij recomputed and D_i = dy_i·y_i = Σ_j A_ij (dy_i·v_j):
//   dv_j += A_ij dy_i,   ds_ij = A_ij (dy_i·v_j − D_i),
//   dq_i += ds_ij k_j/√d,   dk_j += ds_ij q_i/√d
// dy (B,T,C) -> dqkv (B,T,3C) +=
static void softmax_backward(AttnLayer *a, real *dqkv, const real *dy, const real *qkv, const real *y,
                             int B, int T, double distill_scale) {
    (void)distill_scale;
    int C = a->C, NH = a->NH, hs = a->hs;
    real scale = (real)(1.0 / sqrt((double)hs));
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            real *s = a->scratch + (size_t)THREAD_ID * T;
            const real *lse = a->acts + ((size_t)b * NH + h) * T;
            for (int i = 0; i < T; i++) {
                const real *q = Q(qkv, b, i, h), *dyi = Y(dy, b, i, h);
                real D = dot(dyi, Y(y, b, i, h), hs);
                softmax_scores(s, q, qkv, b, h, i, T, C, hs, scale);
                real *dq = Q(dqkv, b, i, h);
                for (int j = 0; j <= i; j++) {
                    real A = exp(s[j] - lse[i]);
                    real ds = A * (dot(dyi, V(qkv, b, j, h), hs) - D) * scale;
                    axpy(V(dqkv, b, j, h), A, dyi, hs);
                    axpy(dq, ds, K(qkv, b, j, h), hs);
                    axpy(K(dqkv, b, j, h), ds, q, hs);
                }
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
            real e = exp(s[j] - mx);
            sum += e;
            axpy(yh, e, vc + (size_t)j * C + (size_t)h * hs, hs);
        }
        for (int d = 0; d < hs; d++) yh[d] /= sum;
    }
}

static const AttnKind SOFTMAX = {
    "softmax", zero_size, zero_size, zero_size, softmax_act_size, softmax_scratch_size,
    no_init, softmax_forward, softmax_backward, softmax_state_size, softmax_step, NULL};

// ===========================================================================
// The table.

static const AttnKind *const KINDS[] = {&SOFTMAX};
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
