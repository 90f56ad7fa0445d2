// test_attention.c — every attention kind and form on its own (attention.h).
//
// Built twice: with real = double (test_attention: finite-difference
// gradients and form agreement to 1e-12) and, through test_attention_f.c, with
// real = float (test_attention_f: form agreement to 1e-5, overflow safety,
// thread independence, Performer's features). Layers are built here from the
// kinds' reported sizes, independent of model.c.
#include "test.h"
#include "numeric.h"
#include "../attention.h"
#include "../feature_maps.h"

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <float.h>
#ifdef REAL_DOUBLE
#define REAL_TINY (DBL_MIN / DBL_EPSILON)
#define NAME "test_attention"
#define FORM_TOL 1e-12
#define REF_TOL 1e-10
#else
#define REAL_TINY (FLT_MIN / FLT_EPSILON)
#define NAME "test_attention_f"
#define FORM_TOL 1e-5
#define REF_TOL 1e-4
#endif

static const char *const FORMS[] = {"quadratic", "chunked"};

static Rng rng;

// One attention layer with everything allocated from the kind's sizes.
typedef struct {
    Config cfg;
    const AttnKind *k;
    AttnLayer a;
    int B, T;
    size_t n_params, n_qkv, n_y;
    real *qkv, *y, *w, *dqkv;
    const double *teacher;  // when set, layer_loss uses ref_distill with it
} Layer;

static real *alloc(size_t n) { return xcalloc(n + 1, sizeof(real), "test buffer"); }

// The kinds the tests run, as "name", "name:variant" (hedgehog_map) or
// "name:variant/heads" (one map per head): every row of the table, and the
// Hedgehog maps per head. Returns the count.
enum { MAX_SPECS = 32 };
static char specs[MAX_SPECS][48];
static int n_specs;

static void make_specs(void) {
    const AttnKind *const *kinds;
    int n = attn_kinds(&kinds);
    for (int k = 0; k < n && n_specs < MAX_SPECS - 1; k++) {
        snprintf(specs[n_specs++], sizeof specs[0], "%s%s%s", kinds[k]->name, kinds[k]->variant ? ":" : "",
                 kinds[k]->variant ? kinds[k]->variant : "");
        if (kinds[k]->variant && n_specs < MAX_SPECS)
            snprintf(specs[n_specs++], sizeof specs[0], "%s:%s/heads", kinds[k]->name, kinds[k]->variant);
    }
}

static int is_softmax(const char *spec) { return strcmp(spec, "softmax") == 0; }

// A spec into the config's attention keys.
static void set_kind(Config *c, const char *spec) {
    char name[48];
    snprintf(name, sizeof name, "%s", spec);
    char *heads = strstr(name, "/heads"), *colon = strchr(name, ':');
    if (heads) *heads = '\0', c->hedgehog_per_head = 1;
    if (colon) *colon = '\0', snprintf(c->hedgehog_map, sizeof c->hedgehog_map, "%s", colon + 1);
    snprintf(c->attention, sizeof c->attention, "%.31s", name);
}

static void layer_init(Layer *L, const char *kind, const char *form, int B, int T, int NH, int hs, int chunk,
                       double lambda, int qk_grad) {
    memset(L, 0, sizeof *L);
    config_defaults(&L->cfg);
    set_kind(&L->cfg, kind);
    snprintf(L->cfg.attention_form, sizeof L->cfg.attention_form, "%s", form);
    L->cfg.n_head = NH;
    L->cfg.n_embd = NH * hs;
    L->cfg.seq_len = T;
    L->cfg.chunk_size = chunk;
    L->cfg.distill_weight = lambda;
    L->cfg.distill_qk_grad = qk_grad;
    L->cfg.seed = 7;
    L->B = B;
    L->T = T;
    L->k = attn_find(&L->cfg);
    AttnLayer *a = &L->a;
    a->kind = L->k;
    a->cfg = &L->cfg;
    a->layer = 0;
    a->C = NH * hs;
    a->NH = NH;
    a->hs = hs;
    L->n_params = attn_n_params(L->k, &L->cfg);
    a->params = alloc(L->n_params);
    a->grads = alloc(L->n_params);
    a->buffers = alloc(attn_n_buffers(L->k, &L->cfg));
    a->acts = alloc(attn_act_size(L->k, &L->cfg, B, T));
    size_t scratch = attn_scratch_size(L->k, &L->cfg, B, T), gen = attn_scratch_size(L->k, &L->cfg, 1, T);
    a->scratch = alloc(scratch > gen ? scratch : gen);
    Rng init;
    rng_seed(&init, 1);
    attn_init(a, &init);
    // Off the identity init, so no parameter gradient vanishes by symmetry.
    for (size_t i = 0; i < L->n_params; i++) a->params[i] += (real)(0.1 * rng_normal(&rng));
    L->n_qkv = (size_t)B * T * 3 * a->C;
    L->n_y = (size_t)B * T * a->C;
    L->qkv = alloc(L->n_qkv);
    L->dqkv = alloc(L->n_qkv);
    L->y = alloc(L->n_y);
    L->w = alloc(L->n_y);
    for (size_t i = 0; i < L->n_qkv; i++) L->qkv[i] = (real)rng_normal(&rng);
    for (size_t i = 0; i < L->n_y; i++) L->w[i] = (real)rng_normal(&rng);
}

#ifdef REAL_DOUBLE
// ReLU features have a kink at 0: redraw q and k until none lies within
// 1e-3 of it, so that finite differences (steps of 1e-4) never cross one.
// A positive bias keeps most features alive, so few pairs score near 0
// (where log n, in the distillation, curves too fast for the differences).
static void avoid_kinks(Layer *L) {
    const FeatureMap *fm = L->k->map;
    if (!fm || fm->z_to_phi != PHI_RELU) return;
    int F = fm->n_features(&L->cfg), C = L->a.C, hs = L->a.hs;
    for (size_t i = attn_n_decay(L->k, &L->cfg); i < L->n_params; i++) L->a.params[i] = 1;
    real *z = alloc((size_t)F);
    for (int kink = 1; kink;) {
        kink = 0;
        for (size_t i = 0; i < L->n_qkv; i++) L->qkv[i] = (real)rng_normal(&rng);
        for (size_t t = 0; t < (size_t)L->B * L->T; t++)
            for (int r = 0; r < 2; r++)
                for (int h = 0; h < L->a.NH; h++) {
                    fm->map(&L->a, (Role)r, h, L->qkv + t * 3 * C + (size_t)r * C + (size_t)h * hs, z);
                    for (int f = 0; f < F; f++) kink |= fabs(z[f]) < 1e-3;
                }
    }
    free(z);
}
#endif

static void layer_free(Layer *L) {
    real *p[] = {L->a.params, L->a.grads, L->a.buffers, L->a.acts, L->a.scratch, L->qkv, L->dqkv, L->y, L->w};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

// The distillation straight from the definition, in double, without
// stabilisation: the teacher P (B,NH,T,T) = causal softmax of q·k/√d, and
// Σ_{b,h,i} −Σ_{j<=i} P_ij log A_ij with A_ij = n_ij / (Σ_j n_ij + ε),
// n_ij = phi(q_i)·phi(k_j), phi made from the kind's map output z as its
// `phi` field says (exp, relu, softmaxes), in double.
static void ref_teacher(const Layer *L, double *P) {
    int T = L->T, C = L->a.C, hs = L->a.hs, NH = L->a.NH;
    for (int b = 0; b < L->B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                double *p = P + (((size_t)b * NH + h) * T + i) * T, mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    p[j] = 0;
                    for (int c = 0; c < hs; c++)
                        p[j] += (double)L->qkv[((size_t)b * T + i) * 3 * C + h * hs + c] *
                                L->qkv[((size_t)b * T + j) * 3 * C + C + h * hs + c] / sqrt((double)hs);
                    mx = fmax(mx, p[j]);
                }
                for (int j = 0; j <= i; j++) sum += p[j] = exp(p[j] - mx);
                for (int j = 0; j <= i; j++) p[j] /= sum;
            }
}

static void ref_phi(const Layer *L, Role role, int h, const real *x, real *z, double *f) {
    const FeatureMap *fm = L->k->map;
    int F = fm->n_features(&L->cfg), groups = fm->z_to_phi == PHI_SOFTMAX_HALVES ? 2 : 1;
    fm->map(&L->a, role, h, x, z);
    for (int i = 0; i < F; i++)
        f[i] = fm->z_to_phi == PHI_EXP ? exp((double)z[i]) : fm->z_to_phi == PHI_RELU ? fmax(z[i], 0) : z[i];
    if (fm->z_to_phi == PHI_SOFTMAX || fm->z_to_phi == PHI_SOFTMAX_HALVES)
        for (int g = 0, n = F / groups; g < groups; g++) {
            double sum = 0;
            for (int i = g * n; i < (g + 1) * n; i++) sum += f[i] = exp((double)z[i]);
            for (int i = g * n; i < (g + 1) * n; i++) f[i] /= sum;
        }
}

static double ref_distill(const Layer *L, const double *P) {
    int T = L->T, C = L->a.C, hs = L->a.hs, NH = L->a.NH, F = L->k->map->n_features(&L->cfg);
    double total = 0, *fq = xmalloc(2 * (size_t)F * sizeof(double), "phi"), *fk = fq + F;
    double *n = xmalloc((size_t)T * sizeof(double), "n");
    real *z = alloc((size_t)F);
    for (int b = 0; b < L->B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                ref_phi(L, QUERY, h, L->qkv + ((size_t)b * T + i) * 3 * C + h * hs, z, fq);
                double den = L->k->map->den_eps;
                for (int j = 0; j <= i; j++) {
                    ref_phi(L, KEY, h, L->qkv + ((size_t)b * T + j) * 3 * C + C + h * hs, z, fk);
                    n[j] = 0;
                    for (int a = 0; a < F; a++) n[j] += fq[a] * fk[a];
                    den += n[j];
                }
                const double *p = P + (((size_t)b * NH + h) * T + i) * T;
                // (a T2R pair with n = 0 has log A = −∞: the engine, and so
                // this, takes log of at least REAL_TINY there)
                for (int j = 0; j <= i; j++) total -= p[j] * (log(fmax(n[j], REAL_TINY)) - log(den));
            }
    free(fq);
    free(n);
    free(z);
    return total;
}

// L = Σ w ⊙ y + λ · (distillation sum); with L->teacher set, the distillation
// is ref_distill's with that teacher held fixed, and counts only when it may
// reach q and k (distill_qk_grad = 1).
static double layer_loss(Layer *L) {
    double d = attn_forward(&L->a, L->y, L->qkv, L->B, L->T), s = 0;
    for (size_t i = 0; i < L->n_y; i++) s += (double)L->w[i] * L->y[i];
    if (L->teacher) d = L->cfg.distill_qk_grad ? ref_distill(L, L->teacher) : 0;
    return s + L->cfg.distill_weight * d;
}

static void layer_grad(Layer *L) {
    layer_loss(L);
    memset(L->dqkv, 0, L->n_qkv * sizeof(real));
    memset(L->a.grads, 0, L->n_params * sizeof(real));
    attn_backward(&L->a, L->dqkv, L->w, L->qkv, L->y, L->B, L->T, L->cfg.distill_weight);
}

// Largest |a − b| over largest |a| (1 when a is all zero).
static double rel_diff(const real *a, const real *b, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        d = e > d || e != e ? e : d;
        m = fabs((double)a[i]) > m ? fabs((double)a[i]) : m;
    }
    return d / (m > 0 ? m : 1);
}

static int all_finite(const real *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

// ---------------------------------------------------------------------------
// Gradients against central differences (double only).

#ifdef REAL_DOUBLE
static double layer_loss_of(void *L) { return layer_loss(L); }

// Relative error |a − n| / max(|a| + |n|, 1e-4): the floor keeps the
// differences' own rounding (~1e-11 absolute) from failing near-zero gradients.
static double worst_sampled(Layer *L, real *x, const real *g, size_t n, int samples) {
    double worst = 0;
    for (int s = 0; s < samples && n > 0; s++) {
        size_t i = (size_t)rng_below(&rng, n);
        double e = rel_err(numeric_grad(layer_loss_of, L, &x[i], 1e-4), g[i], 1e-4);
        worst = e > worst ? e : worst;
    }
    return worst;
}

static void check_grad(const char *kind, const char *form, int T, double lambda, int qk) {
    Layer L;
    layer_init(&L, kind, form, 2, T, 2, 4, 3, lambda, qk);
    avoid_kinks(&L);
    layer_grad(&L);
    real *gq = alloc(L.n_qkv), *gp = alloc(L.n_params);
    memcpy(gq, L.dqkv, L.n_qkv * sizeof(real));
    memcpy(gp, L.a.grads, L.n_params * sizeof(real));
    // Parameters do not move the teacher: the kind's own loss is the reference.
    double ep = worst_sampled(&L, L.a.params, gp, L.n_params, 30);
    // q and k do: the teacher is held fixed (no gradient flows through it).
    double *P = NULL;
    if (lambda > 0) {
        P = xmalloc((size_t)L.B * L.a.NH * L.T * L.T * sizeof(double), "teacher");
        ref_teacher(&L, P);
        double d = attn_forward(&L.a, L.y, L.qkv, L.B, L.T), r = ref_distill(&L, P);
        CHECK(fabs(d - r) <= REF_TOL * fabs(r), "%s/%s: distillation loss %.15g, from the definition %.15g", kind, form, d, r);
        L.teacher = P;
    }
    double eq = worst_sampled(&L, L.qkv, gq, L.n_qkv, 40);
    L.teacher = NULL;
    free(P);
    CHECK(eq <= 1e-6, "%s/%s λ=%g qk=%d: dqkv worst relative error %.3g", kind, form, lambda, qk, eq);
    CHECK(ep <= 1e-6, "%s/%s λ=%g qk=%d: dparams worst relative error %.3g", kind, form, lambda, qk, ep);
    if (lambda > 0 && !qk) {  // the distillation must not reach q and k (nor v)
        L.cfg.distill_weight = 0;
        layer_grad(&L);
        int same = 1;
        for (size_t i = 0; i < L.n_qkv; i++) same &= L.dqkv[i] == gq[i];
        CHECK(same, "%s/%s: with distill_qk_grad = 0, dqkv does not depend on the distillation", kind, form);
    }
    free(gq);
    free(gp);
    layer_free(&L);
}

static void test_gradients(void) {
    for (int k = 0; k < n_specs; k++) {
        const char *K = specs[k];
        int linear = !is_softmax(K);
        for (int f = 0; f < (linear ? 2 : 1); f++) {
            check_grad(K, FORMS[f], 7, 0, 0);
            if (linear) {   // the distillation, into the map alone or into q and k too
                check_grad(K, FORMS[f], 7, 0.7, 0);
                check_grad(K, FORMS[f], 7, 0.7, 1);
            }
        }
        if (!linear) check_grad(K, FORMS[0], 139, 0, 0);   // three of softmax's 64-row blocks
    }
}
#endif

// ---------------------------------------------------------------------------
// Quadratic, chunked and recurrent forms compute one function.

// y from generation (step) for batch row 0 of L, into out (T,C).
static void step_outputs(Layer *L, real *out) {
    size_t C = (size_t)L->a.C;
    real *state = alloc(attn_state_size(L->k, &L->cfg, L->T));
    for (int t = 0; t < L->T; t++) attn_step(&L->a, state, out + t * C, L->qkv + t * 3 * C, t);
    free(state);
}

// qkv's queries and keys (not values) scaled to entries up to `range`.
static void scale_qk(Layer *L, double range) {
    size_t C = (size_t)L->a.C;
    for (size_t t = 0; t < (size_t)L->B * L->T; t++)
        for (size_t c = 0; c < 2 * C; c++) L->qkv[t * 3 * C + c] = (real)(range * (2 * rng_uniform(&rng) - 1));
}

static void check_forms(const char *kind, int B, int T, int NH, int hs, int chunk, double range, double lambda) {
    Layer L[2];
    real *dq[2], *dp[2];
    double dist[2];
    for (int f = 0; f < 2; f++) {
        layer_init(&L[f], kind, FORMS[f], B, T, NH, hs, chunk, lambda, 1);
        if (f == 1) {
            memcpy(L[1].qkv, L[0].qkv, L[0].n_qkv * sizeof(real));
            memcpy(L[1].w, L[0].w, L[0].n_y * sizeof(real));
            memcpy(L[1].a.params, L[0].a.params, L[0].n_params * sizeof(real));
        } else if (range > 0)
            scale_qk(&L[0], range);
    }
    for (int f = 0; f < 2; f++) {
        layer_grad(&L[f]);
        dist[f] = attn_forward(&L[f].a, L[f].y, L[f].qkv, B, T);
        dq[f] = L[f].dqkv;
        dp[f] = L[f].a.grads;
    }
    size_t TC = (size_t)T * L[0].a.C;
    real *ys = alloc(TC);
    step_outputs(&L[0], ys);
    char what[96];
    snprintf(what, sizeof what, "%s B=%d T=%d d=%d chunk=%d range=%g λ=%g", kind, B, T, hs, chunk, range, lambda);
    int finite = all_finite(L[0].y, L[0].n_y) && all_finite(L[1].y, L[1].n_y) && all_finite(ys, TC) &&
                 all_finite(dq[0], L[0].n_qkv) && all_finite(dq[1], L[1].n_qkv) && isfinite(dist[0]);
    CHECK(finite, "%s: outputs and gradients finite", what);
    double ey = rel_diff(L[0].y, L[1].y, L[0].n_y), es = rel_diff(L[0].y, ys, TC);
    // Log-features of size |z| carry a rounding of |z|·ε into exp(z): beyond
    // |q|, |k| ~ 30 the forms agree to that, not to FORM_TOL.
    double tol = FORM_TOL * (range >= 30 ? range / 10 : 1);
    double eg = rel_diff(dq[0], dq[1], L[0].n_qkv), ep = L[0].n_params ? rel_diff(dp[0], dp[1], L[0].n_params) : 0;
    CHECK(ey <= tol, "%s: quadratic vs chunked y differ by %.3g", what, ey);
    CHECK(es <= tol, "%s: quadratic vs recurrent y differ by %.3g", what, es);
    CHECK(eg <= tol, "%s: quadratic vs chunked dqkv differ by %.3g", what, eg);
    if (T > 1) CHECK(ep <= tol, "%s: quadratic vs chunked dparams differ by %.3g", what, ep);
    else {
        // One token attends only to itself: y = v (T2R: v·n/(n + ε)), so
        // D = g·(v − y) = 0 (T2R: nearly) and so is the exact parameter
        // gradient. Each form returns its own rounding noise, which must be
        // small against the gradient's scale (dv = g).
        double noise = 0, scale = 0;
        for (size_t i = 0; i < L[0].n_params; i++) {
            double e = L[0].k->map->den_eps > 0 ? fabs((double)dp[0][i] - dp[1][i]) : fmax(fabs((double)dp[0][i]), fabs((double)dp[1][i]));
            noise = e > noise || e != e ? e : noise;
        }
        for (size_t i = 0; i < L[0].n_qkv; i++) scale = fmax(scale, fabs((double)dq[0][i]));
        CHECK(noise <= tol * scale, "%s: dparams %.3g, should be 0 (gradient scale %.3g)", what, noise, scale);
    }
    if (lambda > 0) {
        double *P = xmalloc((size_t)B * NH * T * T * sizeof(double), "teacher");
        ref_teacher(&L[0], P);
        double r = ref_distill(&L[0], P);
        free(P);
        CHECK(fabs(dist[0] - dist[1]) <= tol * fabs(dist[0]), "%s: distillation %.12g vs %.12g", what, dist[0], dist[1]);
        if (range <= 30)   // the definition, unstabilised, overflows beyond
            CHECK(fabs(dist[0] - r) <= REF_TOL * fabs(r), "%s: distillation %.12g, from the definition %.12g", what, dist[0], r);
    }
    free(ys);
    layer_free(&L[0]);
    layer_free(&L[1]);
}

static void test_forms(void) {
    for (int k = 0; k < n_specs; k++) {
        if (is_softmax(specs[k])) continue;
        check_forms(specs[k], 2, 37, 2, 8, 8, 0, 0);    // T not a multiple of the chunk
        check_forms(specs[k], 1, 1, 2, 8, 8, 0, 0);     // a single token
        check_forms(specs[k], 1, 1000, 1, 32, 64, 0, 0);  // long
        check_forms(specs[k], 1, 64, 2, 16, 16, 30, 0);   // |q|, |k| entries up to 30
        check_forms(specs[k], 2, 37, 2, 8, 8, 0, 0.7);  // with the distillation
    }
    check_forms("hedgehog", 1, 200, 2, 16, 16, 30, 0.7);
    // Magnitudes where a trained model's exp maps span more than float's
    // range within one row: every form must still agree with the recurrent
    // one (a single key shift for the whole sequence zeroed such rows).
    check_forms("performer", 1, 300, 2, 32, 64, 60, 0);
    check_forms("hedgehog", 1, 300, 2, 32, 64, 200, 0);
    check_forms("hedgehog", 1, 300, 2, 32, 64, 200, 0.5);
}

// ---------------------------------------------------------------------------
// Performer's random features.

static void test_performer(void) {
    Layer L;
    layer_init(&L, "performer", "chunked", 1, 4, 2, 16, 4, 0, 0);
    int d = L.a.hs, m = config_performer_m(&L.cfg);
    size_t n = (size_t)m * d;
    const real *W = L.a.buffers;
    double worst = 0, sq = 0;
    for (int i = 0; i < m; i++) {
        for (int j = i / d * d; j < i; j++) {
            double p = 0, ni = 0, nj = 0;
            for (int c = 0; c < d; c++) {
                p += (double)W[i * d + c] * W[j * d + c];
                ni += (double)W[i * d + c] * W[i * d + c];
                nj += (double)W[j * d + c] * W[j * d + c];
            }
            worst = fmax(worst, fabs(p) / sqrt(ni * nj));
        }
        for (int c = 0; c < d; c++) sq += (double)W[i * d + c] * W[i * d + c];
    }
    CHECK(worst < (sizeof(real) == 8 ? 1e-12 : 1e-5), "performer: rows orthogonal within a block (worst cosine %.3g)", worst);
    CHECK(fabs(sq / m - d) < 0.5 * d, "performer: mean squared row norm %.3g is near d = %d (chi²_d)", sq / m, d);
    real *W0 = alloc(n);
    memcpy(W0, W, n * sizeof(real));
    Rng other;
    rng_seed(&other, 99);
    attn_init(&L.a, &other);
    CHECK(memcmp(W0, W, n * sizeof(real)) == 0, "performer: W depends only on (seed, layer, redraw)");
    L.cfg.performer_redraw = 10;
    attn_before_step(&L.a, 7);
    CHECK(memcmp(W0, W, n * sizeof(real)) == 0, "performer: no redraw between multiples of performer_redraw");
    attn_before_step(&L.a, 10);
    CHECK(memcmp(W0, W, n * sizeof(real)) != 0, "performer: redrawn at step performer_redraw");
    real *W1 = alloc(n);
    memcpy(W1, W, n * sizeof(real));
    attn_before_step(&L.a, 20);
    CHECK(memcmp(W1, W, n * sizeof(real)) != 0, "performer: each redraw is new");
    attn_before_step(&L.a, 10);
    CHECK(memcmp(W1, W, n * sizeof(real)) == 0, "performer: redraw k is reproducible (resume)");
    L.cfg.performer_redraw = 0;
    attn_before_step(&L.a, 1000);
    CHECK(memcmp(W1, W, n * sizeof(real)) == 0, "performer: performer_redraw = 0 never redraws");
    L.a.layer = 1;
    attn_init(&L.a, &other);
    CHECK(memcmp(W0, W, n * sizeof(real)) != 0, "performer: layers draw different features");
    L.a.layer = 0;
    L.cfg.seed = 8;
    attn_init(&L.a, &other);
    CHECK(memcmp(W0, W, n * sizeof(real)) != 0, "performer: another seed draws different features");
    free(W0);
    free(W1);
    layer_free(&L);
}

// ---------------------------------------------------------------------------
// Same bits for 1 and 2 threads.

#ifdef _OPENMP
static void check_threads(const char *kind, const char *form, double lambda, int qk) {
    real *out[2][3];
    double dist[2];
    Layer L;
    for (int r = 0; r < 2; r++) {
        rng_seed(&rng, 5);
        omp_set_num_threads(2);
        layer_init(&L, kind, form, 2, 29, 3, 8, 8, lambda, qk);
        omp_set_num_threads(r + 1);
        layer_grad(&L);
        dist[r] = attn_forward(&L.a, L.y, L.qkv, L.B, L.T);
        out[r][0] = L.y;
        out[r][1] = L.dqkv;
        out[r][2] = L.a.grads;
        L.y = L.dqkv = L.a.grads = NULL;
        if (r == 0) layer_free(&L);
    }
    int same = dist[0] == dist[1] && memcmp(out[0][0], out[1][0], L.n_y * sizeof(real)) == 0 &&
               memcmp(out[0][1], out[1][1], L.n_qkv * sizeof(real)) == 0 &&
               memcmp(out[0][2], out[1][2], L.n_params * sizeof(real)) == 0;
    CHECK(same, "%s/%s λ=%g qk=%d: 1 and 2 threads give the same bits", kind, form, lambda, qk);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 3; i++) free(out[r][i]);
    layer_free(&L);
    omp_set_num_threads(2);
}
#endif

static void test_threads(void) {
#ifdef _OPENMP
    for (int k = 0; k < n_specs; k++)
        for (int f = 0; f < (is_softmax(specs[k]) ? 1 : 2); f++) check_threads(specs[k], FORMS[f], 0, 0);
    check_threads("hedgehog", "quadratic", 0.7, 0);
    check_threads("hedgehog", "chunked", 0.7, 1);
#else
    SKIP("thread independence: built without OpenMP");
#endif
}

// ---------------------------------------------------------------------------
// weights(): the analysis view of A must be the matrix the forward applies:
// rows sum to 1, zero above the diagonal, and y = A v for every head.

static void test_weights(void) {
    for (int k = 0; k < n_specs; k++) {
        Layer L;
        // T past two of softmax's 64-row blocks, and not a multiple of them.
        layer_init(&L, specs[k], "quadratic", 2, 139, 2, 8, 4, 0, 0);
        attn_forward(&L.a, L.y, L.qkv, L.B, L.T);
        int T = L.T, C = L.a.C, hs = L.a.hs;
        real *A = alloc((size_t)T * T);
        double worst_row = 0, worst_y = 0, above = 0;
        for (int b = 0; b < L.B; b++)
            for (int h = 0; h < L.a.NH; h++) {
                attn_weights(&L.a, L.qkv, L.B, T, b, h, A);
                for (int i = 0; i < T; i++) {
                    double sum = 0;
                    for (int j = 0; j < T; j++) {
                        if (j > i) above += fabs(A[i * T + j]);
                        else sum += A[i * T + j];
                    }
                    // With a guarded denominator (T2R) a row sums to Σn/(Σn + ε), 0 when every feature is 0.
                    worst_row = fmax(worst_row, L.k->map && L.k->map->den_eps > 0 ? fmax(sum - 1, -sum) : fabs(sum - 1));
                    for (int c = 0; c < hs; c++) {
                        double yc = 0;
                        for (int j = 0; j <= i; j++) yc += A[i * T + j] * L.qkv[((size_t)b * T + j) * 3 * C + 2 * C + h * hs + c];
                        worst_y = fmax(worst_y, fabs(yc - L.y[((size_t)b * T + i) * C + h * hs + c]));
                    }
                }
            }
        double tol = sizeof(real) == 8 ? 1e-12 : 1e-5;
        CHECK(worst_row <= tol && above == 0, "%s weights: rows sum to 1 (worst %.2e), causal", specs[k], worst_row);
        CHECK(worst_y <= tol, "%s weights: A·v reproduces the forward's y (worst %.2e)", specs[k], worst_y);
        free(A);
        layer_free(&L);
    }
}

// The kind a GPT-2-small-shaped config of attention `name` gets.
static const AttnKind *kind_named(Config *c, const char *name) {
    config_defaults(c);
    c->n_embd = 768;
    c->n_head = 12;
    snprintf(c->attention, sizeof c->attention, "%.31s", name);
    return attn_find(c);
}

static void test_table(void) {
    static const char *const want[] = {"softmax", "elu", "taylor", "performer", "hedgehog"};
    Config c;
    for (int i = 0; i < 5; i++) CHECK(strcmp(kind_named(&c, want[i])->name, want[i]) == 0, "kind %s is in the table", want[i]);
    CHECK(strcmp(attn_kind_names(), "softmax|elu|taylor|performer|hedgehog|t2r") == 0, "the config's list of kinds: %s",
          attn_kind_names());
    const AttnKind *k = kind_named(&c, "hedgehog");
    CHECK(attn_n_params(k, &c) == 2 * 64 * 64 + 2 * 64, "hedgehog: U_q, U_k, b_q, b_k per layer");
    CHECK(attn_n_decay(k, &c) == 2 * 64 * 64, "hedgehog: the two U are decayed");
    k = kind_named(&c, "performer");
    CHECK(attn_n_buffers(k, &c) == 266 * 64, "performer: W is m×d = 266×64 for d = 64");
    k = kind_named(&c, "taylor");
    CHECK(attn_state_size(k, &c, 1024) == 12 * (2145 * 64 + 2145 + 1), "taylor: F = 2145 for d = 64");
}

int main(void) {
    rng_seed(&rng, 2024);
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    make_specs();
    test_table();
#ifdef REAL_DOUBLE
    test_gradients();
#endif
    test_forms();
    test_performer();
    test_weights();
    test_threads();
    return test_summary(NAME);
}
