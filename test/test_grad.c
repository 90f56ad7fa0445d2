// test_grad.c — every backward against central finite differences, in double.
//
// Built with real = double. For a layer f and fixed random weights w, the
// scalar L = Σ w ⊙ f(x) has dL/dout = w, so the layer's backward must return
// dL/dx; we compare it with (L(x+h) − L(x−h)) / 2h entry by entry.
#include "test.h"
#include "numeric.h"
#include "kinds.h"
#include "../matmul.h"
#include "../model.h"

#include <stdlib.h>

#define TOL 1e-6
#define H 1e-4
// Relative error is |a − n| / max(|a| + |n|, FLOOR): the floor keeps the
// differences' own rounding noise (~1e-11 absolute) from failing
// gradients that are themselves nearly zero.
#define FLOOR 1e-4

static Rng rng;

static real *rand_vec(size_t n, double scale) {
    real *x = xmalloc(n * sizeof(real), "test vector");
    for (size_t i = 0; i < n; i++) x[i] = (real)(scale * rng_normal(&rng));
    return x;
}

static double weighted_sum(const real *w, const real *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)w[i] * y[i];
    return s;
}

// Compare `analytic` (n entries) with finite differences of loss() w.r.t. x,
// at every entry when n is small, else at `samples` random entries.
static void gradcheck(const char *what, double (*loss)(void *), void *ctx, real *x, const real *analytic, size_t n, int samples) {
    double worst = 0;
    size_t count = n <= (size_t)samples ? n : (size_t)samples;
    for (size_t s = 0; s < count; s++) {
        size_t i = n <= (size_t)samples ? s : (size_t)rng_below(&rng, n);
        double num = numeric_grad(loss, ctx, &x[i], H), e = rel_err(num, analytic[i], FLOOR);
        if (e > worst) worst = e;
        if (e > TOL) printf("  %s[%zu]: analytic %.10g, numeric %.10g\n", what, i, (double)analytic[i], num);
    }
    CHECK(worst <= TOL, "%s: worst relative error %.2e > %.0e", what, worst, TOL);
}

// ---------------------------------------------------------------------------
// Single layers

enum { N = 6, C = 8, OC = 5, B = 2, T = 3, VOC = 7, VP = 9 };

typedef struct { real *x, *w, *b, *out, *mean, *rstd, *wout; } LnCtx;
static double ln_loss(void *p) {
    LnCtx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, N, C);
    return weighted_sum(c->wout, c->out, N * C);
}

static void test_layernorm(void) {
    LnCtx c = {rand_vec(N * C, 2), rand_vec(C, 1), rand_vec(C, 1), rand_vec(N * C, 0), rand_vec(N, 0), rand_vec(N, 0), rand_vec(N * C, 1)};
    real *dx = calloc(N * C, sizeof(real)), *dw = calloc(C, sizeof(real)), *db = calloc(C, sizeof(real));
    real *part = calloc(layernorm_scratch_size(N, C), sizeof(real));
    ln_loss(&c);
    layernorm_backward(dx, dw, db, part, c.wout, c.x, c.w, c.mean, c.rstd, N, C);
    gradcheck("layernorm dx", ln_loss, &c, c.x, dx, N * C, 100);
    gradcheck("layernorm dw", ln_loss, &c, c.w, dw, C, 100);
    gradcheck("layernorm db", ln_loss, &c, c.b, db, C, 100);
    free(c.x); free(c.w); free(c.b); free(c.out); free(c.mean); free(c.rstd); free(c.wout);
    free(dx); free(dw); free(db); free(part);
}

typedef struct { real *x, *out, *wout; } GeluCtx;
static double gelu_loss(void *p) {
    GeluCtx *c = p;
    gelu_forward(c->out, c->x, N * C);
    return weighted_sum(c->wout, c->out, N * C);
}

static void test_gelu(void) {
    GeluCtx c = {rand_vec(N * C, 2), rand_vec(N * C, 0), rand_vec(N * C, 1)};
    real *dx = calloc(N * C, sizeof(real));
    gelu_backward(dx, c.x, c.wout, N * C);
    gradcheck("gelu dx", gelu_loss, &c, c.x, dx, N * C, 100);
    free(c.x); free(c.out); free(c.wout); free(dx);
}

typedef struct { real *x, *w, *bias, *out, *wout; } MmCtx;
static double mm_loss(void *p) {
    MmCtx *c = p;
    matmul_forward(c->out, c->x, c->w, c->bias, N, C, OC);
    return weighted_sum(c->wout, c->out, N * OC);
}

static void test_matmul(void) {
    MmCtx c = {rand_vec(N * C, 1), rand_vec(OC * C, 1), rand_vec(OC, 1), rand_vec(N * OC, 0), rand_vec(N * OC, 1)};
    real *dx = calloc(N * C, sizeof(real)), *dw = calloc(OC * C, sizeof(real)), *db = calloc(OC, sizeof(real));
    matmul_backward(dx, dw, db, c.wout, c.x, c.w, N, C, OC);
    gradcheck("matmul dinp", mm_loss, &c, c.x, dx, N * C, 100);
    gradcheck("matmul dweight", mm_loss, &c, c.w, dw, OC * C, 100);
    gradcheck("matmul dbias", mm_loss, &c, c.bias, db, OC, 100);
    free(c.x); free(c.w); free(c.bias); free(c.out); free(c.wout); free(dx); free(dw); free(db);
}

typedef struct { real *wte, *wpe, *out, *wout; int *tok; } EncCtx;
static double enc_loss(void *p) {
    EncCtx *c = p;
    encoder_forward(c->out, c->tok, c->wte, c->wpe, B, T, C);
    return weighted_sum(c->wout, c->out, B * T * C);
}

static void test_encoder(void) {
    int tok[B * T] = {1, 4, 1, 6, 0, 4};  // repeated ids: their gradients must add up
    EncCtx c = {rand_vec(VOC * C, 1), rand_vec(T * C, 1), rand_vec(B * T * C, 0), rand_vec(B * T * C, 1), tok};
    real *dwte = calloc(VOC * C, sizeof(real)), *dwpe = calloc(T * C, sizeof(real));
    encoder_backward(dwte, dwpe, c.wout, tok, B, T, C);
    gradcheck("encoder dwte", enc_loss, &c, c.wte, dwte, VOC * C, 100);
    gradcheck("encoder dwpe", enc_loss, &c, c.wpe, dwpe, T * C, 100);
    free(c.wte); free(c.wpe); free(c.out); free(c.wout); free(dwte); free(dwpe);
}

// The mean over the scored rows (a loss mask's NO_TARGET rows left out).
typedef struct { real *logits, *work, *losses; int *tgt, n_scored; } XentCtx;
static double xent_loss(void *p) {
    XentCtx *c = p;
    memcpy(c->work, c->logits, N * VP * sizeof(real));  // the forward works in place
    softmax_xent_forward(c->losses, c->work, c->tgt, N, VOC, VP);
    double s = 0;
    for (int i = 0; i < N; i++) s += c->losses[i];
    return s / c->n_scored;
}

static void check_softmax_xent(const char *what, int *tgt) {
    int n_scored = 0;
    for (int n = 0; n < N; n++) n_scored += tgt[n] != NO_TARGET;
    XentCtx c = {rand_vec(N * VP, 2), rand_vec(N * VP, 0), rand_vec(N, 0), tgt, n_scored};
    real *dlogits = rand_vec(N * VP, 0);
    xent_loss(&c);
    memcpy(dlogits, c.work, N * VP * sizeof(real));
    softmax_xent_backward(dlogits, tgt, (real)(1.0 / n_scored), N, VP);
    gradcheck(what, xent_loss, &c, c.logits, dlogits, N * VP, 100);
    int pad_zero = 1, unscored_zero = 1;
    for (int n = 0; n < N; n++)
        for (int v = 0; v < VP; v++) {
            if (v >= VOC) pad_zero &= dlogits[n * VP + v] == 0;
            if (tgt[n] == NO_TARGET) unscored_zero &= dlogits[n * VP + v] == 0 && c.losses[n] == 0;
        }
    CHECK(pad_zero, "%s: padded vocabulary columns get no gradient", what);
    CHECK(unscored_zero, "%s: unscored rows (NO_TARGET) have loss 0 and no gradient", what);
    free(c.logits); free(c.work); free(c.losses); free(dlogits);
}

static void test_softmax_xent(void) {
    int tgt[N] = {0, 6, 3, 3, 1, 5};
    check_softmax_xent("softmax+xent dlogits", tgt);
}

static void test_softmax_xent_masked(void) {
    int tgt[N] = {NO_TARGET, 6, 3, NO_TARGET, NO_TARGET, 5};
    check_softmax_xent("softmax+xent dlogits, loss mask", tgt);
}

// ---------------------------------------------------------------------------
// The whole model, for each attention kind: L w.r.t. samples of every tensor.

typedef struct { GPT2 *m; int *in, *tgt; } ModelCtx;
static double model_loss(void *p) {
    ModelCtx *c = p;
    model_forward(c->m, c->in, c->tgt, 2, 5);
    return c->m->loss;
}

// masked: some targets NO_TARGET (a loss mask), the LM loss their mean over
// the rest.
static void check_model(const AttnKind *k, const char *form, double distill_weight, int qk_grad, double lm_weight, int masked) {
    Config cfg;
    config_defaults(&cfg);
    kind_config(&cfg, k);
    char kind[48];
    kind_label(k, kind, sizeof kind);
    cfg.lm_weight = lm_weight;
    strcpy(cfg.attention_form, form);
    cfg.n_layer = 2; cfg.n_head = 2; cfg.n_embd = 16; cfg.seq_len = 6; cfg.vocab_size = 23;
    cfg.chunk_size = 2;  // several chunks in T = 5 when the kind is chunked
    cfg.distill_weight = distill_weight;
    cfg.distill_qk_grad = qk_grad;
    cfg.seed = 42;
    GPT2 m;
    model_init(&m, &cfg);
    // Move every parameter off its special init (LN gains of 1, identity maps,
    // zero biases) so no gradient is trivially zero by symmetry.
    for (size_t i = 0; i < m.n_params; i++) m.params[i] += (real)(0.05 * rng_normal(&rng));
    for (size_t i = (size_t)m.V * m.C; i < m.sizes[P_WTE]; i++) m.params[i] = 0;  // padding rows
    int in[10] = {1, 5, 22, 5, 0, 3, 3, 17, 8, 11}, tgt[10] = {5, 22, 5, 0, 9, 3, 17, 8, 11, 2};
    ModelCtx c = {&m, in, tgt};
    if (masked) {
        model_loss(&c);
        double sum = 0;
        for (int i = 0; i < 10; i++) sum += i % 3 ? m.losses[i] : 0;
        for (int i = 0; i < 10; i += 3) tgt[i] = NO_TARGET;
        model_loss(&c);
        CHECK(m.n_scored == 6 && fabs(m.lm_loss - sum / 6) <= 1e-12 * sum,
              "loss mask: lm_loss %.15g is the mean over the 6 scored positions' losses (%.15g)", m.lm_loss, sum / 6);
    }
    model_loss(&c);
    model_zero_grad(&m);
    model_backward(&m, 1.0);
    real *g = xmalloc(m.n_params * sizeof(real), "grad copy");
    memcpy(g, m.grads, m.n_params * sizeof(real));
    static const char *names[N_PARAM_TENSORS] = {"wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
                                                 "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb", "attn"};
    for (int t = 0; t < N_PARAM_TENSORS; t++) {
        size_t n = t == P_WTE ? (size_t)m.V * m.C : m.sizes[t];
        real *x = m.p[t];
        // With distillation the analytic gradient deliberately leaves out the
        // teacher (and, for qk=0, the path into q and k), so it is the
        // derivative of the total loss only where neither path exists: the
        // last layer's feature-map parameters. test_attention checks the rest
        // against a frozen-teacher reference, layer by layer.
        if (distill_weight > 0) {
            if (t != P_ATTN) continue;
            x += (size_t)(m.L - 1) * m.n_attn;
            n = m.n_attn;
        }
        if (n == 0) continue;
        char what[128];
        snprintf(what, sizeof what, "model[%s %s λ=%g qk=%d lm=%g%s] %s", kind, form, distill_weight, qk_grad, lm_weight,
                 masked ? " loss mask" : "", names[t]);
        gradcheck(what, model_loss, &c, x, g + (x - m.params), n, distill_weight > 0 ? 40 : 6);
    }
    if (lm_weight == 0 && !qk_grad) {   // a pure distillation gradient: the feature maps', nothing else
        size_t lo = (size_t)(m.p[P_ATTN] - m.params), hi = lo + m.sizes[P_ATTN], nonzero = 0;
        for (size_t i = 0; i < m.n_params; i++) nonzero += (i < lo || i >= hi) && g[i] != 0;
        CHECK(nonzero == 0, "model[%s %s lm_weight=0]: %zu gradients outside the feature maps are nonzero", kind, form, nonzero);
    }
    free(g);
    model_free(&m);
}

int main(void) {
    rng_seed(&rng, 2024);
    test_layernorm();
    test_gelu();
    test_matmul();
    test_encoder();
    test_softmax_xent();
    const AttnKind *const *kinds;
    int n = attn_kinds(&kinds);
    // Every kind in each of its training forms (softmax has one; it ignores
    // the key); the linear kinds also with the distillation, beside the LM
    // loss and (lm_weight = 0, conversion's stage 1) alone.
    for (int k = 0; k < n; k++) {
        int linear = strcmp(kinds[k]->name, "softmax") != 0;
        for (int f = 0; f < (linear ? 2 : 1); f++) {
            const char *form = f ? "chunked" : "quadratic";
            check_model(kinds[k], form, 0, 0, 1, 0);
            if (!linear) continue;
            for (int qk = 0; qk <= 1; qk++) check_model(kinds[k], form, 0.7, qk, 1, 0);
            check_model(kinds[k], form, 1, 0, 0, 0);
        }
    }
    // The loss mask, alone and through the whole model (it changes only the
    // cross-entropy, the same for every kind). Last, so the checks above
    // draw the same random points as before (T2R's ReLU has kinks that a
    // finite difference must not straddle).
    test_softmax_xent_masked();
    check_model(kinds[0], "quadratic", 0, 0, 1, 1);   // the table's first row: softmax
    return test_summary("test_grad");
}
