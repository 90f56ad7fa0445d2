// feature_maps.c — the linear attentions' feature maps, one section each.
//
// A map sends a head vector x (d = hs reals) to F non-negative features;
// the linear engine (attention_linear.c) turns any map into attention:
// A_ij = phi(q_i)·phi(k_j) / Σ_{j'<=i} phi(q_i)·phi(k_j'). Each section gives
// phi, its backward (dL/dx from dL/dphi, and the map's own parameter
// gradients), and fills one FeatureMap (feature_maps.h) that attention.c's
// table points to. docs/attention.md derives every one.
//
// A map returns z; its `phi` field says how the engine makes features of it
// (feature_maps.h): as they are, exp(z) (the engine shifts z first so that
// nothing overflows; the shifts cancel in A), relu(z), or softmaxes of z.
#include "feature_maps.h"
#include "matmul.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ===========================================================================
// elu: phi(x) = elu(x) + 1 element-wise on the raw head vector (F = d).

static int elu_features(const Config *c) { return head_size(c); }

static void elu_map(const AttnLayer *a, Role role, int h, const real *x, real *z) {
    (void)role; (void)h;
    for (int i = 0; i < a->hs; i++) z[i] = x[i] > 0 ? x[i] + 1 : exp_r(x[i]);
}

static void elu_map_backward(const AttnLayer *a, Role role, int h, const real *x, const real *dz, real *dx, real *dp) {
    (void)role; (void)h; (void)dp;
    for (int i = 0; dx && i < a->hs; i++) dx[i] += dz[i] * (x[i] > 0 ? 1 : exp_r(x[i]));
}

const FeatureMap ELU_MAP = {.n_features = elu_features, .map = elu_map, .map_backward = elu_map_backward,
                            .z_to_phi = PHI_Z};

// ===========================================================================
// taylor: phi(x) = [1, x', (x'⊗x')/√2], x' = x/d^(1/4), so that
// phi(q)·phi(k) = 1 + s + s²/2 with s = q·k/√d. The chunked and recurrent forms
// store the d(d+1)/2 distinct products (squares /√2, a<b products plain);
// the quadratic form uses the scalar kernel.

static int taylor_features(const Config *c) {
    int d = head_size(c);
    return 1 + d + d * (d + 1) / 2;
}

static void taylor_map(const AttnLayer *a, Role role, int h, const real *restrict x, real *restrict z) {
    (void)role; (void)h;
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
// dx (for every j > i): one loop that did both would make each step wait on
// the last.
static void taylor_map_backward(const AttnLayer *a, Role role, int h, const real *x, const real *dz, real *dx, real *dp) {
    (void)role; (void)h; (void)dp;
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

const FeatureMap TAYLOR_MAP = {.n_features = taylor_features, .map = taylor_map, .map_backward = taylor_map_backward,
                               .z_to_phi = PHI_Z, .kernel = taylor_kernel};

// ===========================================================================
// performer (FAVOR+): phi(x) = m^(-1/2) exp(W x' − ‖x'‖²/2), x' = x/d^(1/4).
// W (m×d) is a buffer, not trained: m rows of orthogonal random features,
// shared by the layer's heads, redrawn every performer_redraw steps.

static size_t performer_n_buffers(const Config *c) { return (size_t)config_performer_m(c) * head_size(c); }
static int performer_features(const Config *c) { return config_performer_m(c); }

// log phi; m^(-1/2) and −‖x'‖²/2 of queries cancel in A but keep z exact.
static void performer_map(const AttnLayer *a, Role role, int h, const real *x, real *z) {
    (void)role; (void)h;
    int d = a->hs, m = config_performer_m(a->cfg);
    real r = (real)pow((double)d, -0.25), c = dot(x, x, d) * r * r / 2 + (real)(0.5 * log((double)m));
    for (int f = 0; f < m; f++) z[f] = dot(a->buffers + (size_t)f * d, x, d) * r - c;
}

// dx = r (Wᵀ dz − x' Σ dz)
static void performer_map_backward(const AttnLayer *a, Role role, int h, const real *x, const real *dz, real *dx, real *dp) {
    (void)role; (void)h; (void)dp;
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
static void performer_map_rows(const AttnLayer *a, Role role, int h, const real *x, size_t ld, int n, real *z) {
    (void)role; (void)h;
    int d = a->hs, m = config_performer_m(a->cfg);
    real r = (real)pow((double)d, -0.25), lm = (real)(0.5 * log((double)m));
    mat_mul(mat(z, n, m, (size_t)m), mat(x, n, d, ld), mat_t(mat(a->buffers, m, d, (size_t)d)));   // X Wᵀ
    for (int t = 0; t < n; t++) {
        const real *xt = x + t * ld;
        real c = dot(xt, xt, d) * r * r / 2 + lm, *zt = z + (size_t)t * m;
        for (int f = 0; f < m; f++) zt[f] = zt[f] * r - c;
    }
}

// dX += r (dZ W) − r² (Σ_f dz_tf) x_t, dZ scaled by r in place first.
static void performer_map_backward_rows(const AttnLayer *a, Role role, int h, const real *x, size_t ld, int n, real *dz,
                                        real *dx, real *dp) {
    (void)role; (void)h; (void)dp;
    if (!dx) return;
    int d = a->hs, m = config_performer_m(a->cfg);
    real r = (real)pow((double)d, -0.25);
    for (size_t i = 0; i < (size_t)n * m; i++) dz[i] *= r;
    mat_mul_add(mat(dx, n, d, ld), mat(dz, n, m, (size_t)m), mat(a->buffers, m, d, (size_t)d));   // dX += dZ W
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

const FeatureMap PERFORMER_MAP = {
    .n_features = performer_features, .map = performer_map, .map_backward = performer_map_backward,
    .map_rows = performer_map_rows, .map_backward_rows = performer_map_backward_rows, .z_to_phi = PHI_EXP,
    .n_buffers = performer_n_buffers, .init = performer_init, .before_step = performer_before_step,
    .settings = "performer_features"};

// ===========================================================================
// hedgehog (Zhang et al. 2024): a learned map of u = U x + b (d features),
// z = [u, −u] (F = 2d), made into features in one of three published ways
// (hedgehog_map, one table row each in attention.c):
//   exp      phi = [exp(u), exp(−u)]              the paper (Appendix A)
//   softmax  phi = [softmax(u), softmax(−u)]      LoLCATs
//   joint    phi = softmax([u, −u])              flash-linear-attention (which feeds [2u, −2u])
// One map for queries (U_q, b_q) and one for keys (U_k, b_k), shared by a
// layer's heads or, with hedgehog_per_head = 1, one pair per head;
// identity init. params: every U (d×d) — decayed — then every b (d), map
// pair g's U_q, U_k at (2g, 2g+1)·d², its b_q, b_k after all the U's.

static int hedgehog_pairs(const Config *c) { return c->hedgehog_per_head ? c->n_head : 1; }

static size_t hedgehog_n_params(const Config *c) {
    size_t d = (size_t)head_size(c);
    return (size_t)hedgehog_pairs(c) * (2 * d * d + 2 * d);
}
static size_t hedgehog_n_decay(const Config *c) {
    size_t d = (size_t)head_size(c);
    return (size_t)hedgehog_pairs(c) * 2 * d * d;
}
static int hedgehog_features(const Config *c) { return 2 * head_size(c); }

// Where head h's map in this role (QUERY = 0, KEY = 1) keeps U and b, in
// params or gradients.
static size_t hedgehog_u(const AttnLayer *a, Role role, int h) {
    size_t g = a->cfg->hedgehog_per_head ? (size_t)h : 0, d = (size_t)a->hs;
    return (2 * g + role) * d * d;
}
static size_t hedgehog_b(const AttnLayer *a, Role role, int h) {
    size_t g = a->cfg->hedgehog_per_head ? (size_t)h : 0, d = (size_t)a->hs;
    return hedgehog_n_decay(a->cfg) + (2 * g + role) * d;
}

static void hedgehog_init(AttnLayer *a, Rng *rng) {
    (void)rng;
    int d = a->hs;
    memset(a->params, 0, hedgehog_n_params(a->cfg) * sizeof(real));
    for (int g = 0; g < 2 * hedgehog_pairs(a->cfg); g++)
        for (int i = 0; i < d; i++) a->params[(size_t)g * d * d + (size_t)i * d + i] = 1;
}

// z = [u, −u], u = U x + b.
static void hedgehog_map(const AttnLayer *a, Role role, int h, const real *x, real *z) {
    int d = a->hs;
    const real *U = a->params + hedgehog_u(a, role, h), *bias = a->params + hedgehog_b(a, role, h);
    for (int i = 0; i < d; i++) {
        z[i] = dot(U + (size_t)i * d, x, d) + bias[i];
        z[d + i] = -z[i];
    }
}

// du = dz[:d] − dz[d:]: dx += Uᵀdu, dU += du xᵀ, db += du.
static void hedgehog_map_backward(const AttnLayer *a, Role role, int h, const real *x, const real *dz, real *dx,
                                  real *dp) {
    int d = a->hs;
    const real *U = a->params + hedgehog_u(a, role, h);
    real *dU = dp + hedgehog_u(a, role, h), *db = dp + hedgehog_b(a, role, h);
    for (int i = 0; i < d; i++) {
        real du = dz[i] - dz[d + i];
        if (dx) axpy(dx, du, U + (size_t)i * d, d);
        axpy(dU + (size_t)i * d, du, x, d);
        db[i] += du;
    }
}

// The same for n rows: Z[:, :d] = X Uᵀ + b as one matrix product; backward,
// with dZu = dz[:, :d] − dz[:, d:] (the gradient of the u rows):
// dX += dZu U, dU += dZuᵀ X, db += dZu's column sums.
static void hedgehog_map_rows(const AttnLayer *a, Role role, int h, const real *x, size_t ld, int n, real *z) {
    int d = a->hs;
    const real *U = a->params + hedgehog_u(a, role, h), *bias = a->params + hedgehog_b(a, role, h);
    mat_mul(mat(z, n, d, 2 * (size_t)d), mat(x, n, d, ld), mat_t(mat(U, d, d, (size_t)d)));   // X Uᵀ into the first halves
    for (int t = 0; t < n; t++) {
        real *zt = z + (size_t)t * 2 * d;
        for (int i = 0; i < d; i++) {
            zt[i] += bias[i];
            zt[d + i] = -zt[i];
        }
    }
}

static void hedgehog_map_backward_rows(const AttnLayer *a, Role role, int h, const real *x, size_t ld, int n,
                                       real *dz, real *dx, real *dp) {
    int d = a->hs;
    size_t F = 2 * (size_t)d;
    const real *U = a->params + hedgehog_u(a, role, h);
    real *dU = dp + hedgehog_u(a, role, h), *db = dp + hedgehog_b(a, role, h);
    for (int t = 0; t < n; t++) {
        real *dzt = dz + t * F;
        for (int i = 0; i < d; i++) {
            dzt[i] -= dzt[d + i];
            db[i] += dzt[i];
        }
    }
    Mat dZu = mat(dz, n, d, F);
    if (dx) mat_mul_add(mat(dx, n, d, ld), dZu, mat(U, d, d, (size_t)d));   // dX += dZu U
    mat_mul_add(mat(dU, d, d, (size_t)d), mat_t(dZu), mat(x, n, d, ld));   // dU += dZuᵀ X
}

const FeatureMap HEDGEHOG_MAP = {
    .n_features = hedgehog_features, .map = hedgehog_map, .map_backward = hedgehog_map_backward,
    .map_rows = hedgehog_map_rows, .map_backward_rows = hedgehog_map_backward_rows, .z_to_phi = PHI_EXP,
    .n_params = hedgehog_n_params, .n_decay = hedgehog_n_decay, .init = hedgehog_init,
    .settings = "hedgehog_map hedgehog_per_head"};
const FeatureMap HEDGEHOG_SOFTMAX_MAP = {
    .n_features = hedgehog_features, .map = hedgehog_map, .map_backward = hedgehog_map_backward,
    .map_rows = hedgehog_map_rows, .map_backward_rows = hedgehog_map_backward_rows, .z_to_phi = PHI_SOFTMAX_HALVES,
    .n_params = hedgehog_n_params, .n_decay = hedgehog_n_decay, .init = hedgehog_init,
    .settings = "hedgehog_map hedgehog_per_head"};
const FeatureMap HEDGEHOG_JOINT_MAP = {
    .n_features = hedgehog_features, .map = hedgehog_map, .map_backward = hedgehog_map_backward,
    .map_rows = hedgehog_map_rows, .map_backward_rows = hedgehog_map_backward_rows, .z_to_phi = PHI_SOFTMAX,
    .n_params = hedgehog_n_params, .n_decay = hedgehog_n_decay, .init = hedgehog_init,
    .settings = "hedgehog_map hedgehog_per_head"};

// ===========================================================================
// t2r (Kasai et al. 2021, "Finetuning Pretrained Transformers into RNNs"):
// phi(x) = relu(W x + b), W (F×d), b (F), F = t2r_features; one map per
// layer, for queries and keys alike, shared by the heads. A fresh W is
// N(0, 1/d), b = 0. ReLU features can all be zero, so the engine adds 1e-6
// to every denominator (den_eps). params: W — decayed — then b.

static int t2r_features(const Config *c) { return config_t2r_features(c); }
static size_t t2r_n_decay(const Config *c) { return (size_t)config_t2r_features(c) * head_size(c); }
static size_t t2r_n_params(const Config *c) { return t2r_n_decay(c) + (size_t)config_t2r_features(c); }

static void t2r_init(AttnLayer *a, Rng *rng) {
    size_t n = t2r_n_decay(a->cfg);
    double std = 1 / sqrt((double)a->hs);
    for (size_t i = 0; i < n; i++) a->params[i] = (real)(std * rng_normal(rng));
    memset(a->params + n, 0, (size_t)config_t2r_features(a->cfg) * sizeof(real));
}

// z = W x + b (the engine takes the relu).
static void t2r_map(const AttnLayer *a, Role role, int h, const real *x, real *z) {
    (void)role; (void)h;
    int d = a->hs, F = config_t2r_features(a->cfg);
    const real *W = a->params, *bias = a->params + t2r_n_decay(a->cfg);
    for (int f = 0; f < F; f++) z[f] = dot(W + (size_t)f * d, x, d) + bias[f];
}

// dx += Wᵀ dz, dW += dz xᵀ, db += dz.
static void t2r_map_backward(const AttnLayer *a, Role role, int h, const real *x, const real *dz, real *dx,
                             real *dp) {
    (void)role; (void)h;
    int d = a->hs, F = config_t2r_features(a->cfg);
    const real *W = a->params;
    real *dW = dp, *db = dp + t2r_n_decay(a->cfg);
    for (int f = 0; f < F; f++) {
        if (dx) axpy(dx, dz[f], W + (size_t)f * d, d);
        axpy(dW + (size_t)f * d, dz[f], x, d);
        db[f] += dz[f];
    }
}

// The same for n rows: Z = X Wᵀ + b; dX += dZ W, dW += dZᵀ X, db += column sums.
static void t2r_map_rows(const AttnLayer *a, Role role, int h, const real *x, size_t ld, int n, real *z) {
    (void)role; (void)h;
    int d = a->hs, F = config_t2r_features(a->cfg);
    const real *W = a->params, *bias = a->params + t2r_n_decay(a->cfg);
    mat_mul(mat(z, n, F, (size_t)F), mat(x, n, d, ld), mat_t(mat(W, F, d, (size_t)d)));   // X Wᵀ
    for (int t = 0; t < n; t++)
        for (int f = 0; f < F; f++) z[(size_t)t * F + f] += bias[f];
}

static void t2r_map_backward_rows(const AttnLayer *a, Role role, int h, const real *x, size_t ld, int n, real *dz,
                                  real *dx, real *dp) {
    (void)role; (void)h;
    int d = a->hs, F = config_t2r_features(a->cfg);
    real *db = dp + t2r_n_decay(a->cfg);
    Mat dZ = mat(dz, n, F, (size_t)F);
    for (int t = 0; t < n; t++)
        for (int f = 0; f < F; f++) db[f] += dz[(size_t)t * F + f];
    if (dx) mat_mul_add(mat(dx, n, d, ld), dZ, mat(a->params, F, d, (size_t)d));   // dX += dZ W
    mat_mul_add(mat(dp, F, d, (size_t)d), mat_t(dZ), mat(x, n, d, ld));            // dW += dZᵀ X
}

const FeatureMap T2R_MAP = {
    .n_features = t2r_features, .map = t2r_map, .map_backward = t2r_map_backward, .map_rows = t2r_map_rows,
    .map_backward_rows = t2r_map_backward_rows, .z_to_phi = PHI_RELU, .den_eps = (real)1e-6, .n_params = t2r_n_params,
    .n_decay = t2r_n_decay, .init = t2r_init, .settings = "t2r_features"};
