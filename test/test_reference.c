// test_reference.c — the whole model against an independent implementation:
// test/reference/*.ref, written by test/reference/make_reference.py from the
// published definitions with PyTorch (float64, autograd), one tiny GPT-2 per
// attention kind (and with the distillation loss). Loss, logits and every
// parameter's gradient must agree: to ~1e-10 in the double build (built as
// test_reference) and ~1e-5 in the float one (test_reference_f). The linear
// kinds are checked in both training forms. Finite differences only prove a
// backward matches its forward; this proves the forward is GPT-2's.
#include "test.h"
#include "../model.h"

#include <stdlib.h>

#ifdef REAL_DOUBLE
#define NAME "test_reference"
#define TOL 1e-12
#else
#define NAME "test_reference_f"
#define TOL 2e-5
#endif

typedef struct {
    Config cfg;
    int B, T, V, n_params, n_buffers;
    int *tokens, *targets;
    double *params, *buffers, loss, lm_loss, distill_loss, *logits, *grads;
} Fixture;

static void take(void *dst, size_t n, const char **p, const char *end, const char *path) {
    if ((size_t)(end - *p) < n) die("%s: truncated fixture", path);
    memcpy(dst, *p, n);
    *p += n;
}

static double *doubles(int n, const char **p, const char *end, const char *path) {
    double *x = xmalloc((size_t)n * sizeof *x + 1, "fixture");
    take(x, (size_t)n * sizeof *x, p, end, path);
    return x;
}

static int read_fixture(const char *path, Fixture *f) {
    if (!file_exists(path)) return 0;
    size_t len;
    char *data = read_file(path, &len);
    const char *p = data, *end = data + len;
    char magic[8];
    int32_t n, dims[5];
    take(magic, 8, &p, end, path);
    if (memcmp(magic, "HHREF1\0\0", 8) != 0) die("%s: not a reference fixture", path);
    take(&n, 4, &p, end, path);
    char *text = xmalloc((size_t)n + 1, "config text");
    take(text, (size_t)n, &p, end, path);
    text[n] = '\0';
    config_defaults(&f->cfg);
    config_load_text(&f->cfg, text, path);
    free(text);
    take(dims, sizeof dims, &p, end, path);
    f->B = dims[0], f->T = dims[1], f->V = dims[2], f->n_params = dims[3], f->n_buffers = dims[4];
    f->tokens = xmalloc((size_t)f->B * f->T * sizeof(int), "tokens");
    f->targets = xmalloc((size_t)f->B * f->T * sizeof(int), "targets");
    take(f->tokens, (size_t)f->B * f->T * sizeof(int), &p, end, path);
    take(f->targets, (size_t)f->B * f->T * sizeof(int), &p, end, path);
    f->params = doubles(f->n_params, &p, end, path);
    f->buffers = doubles(f->n_buffers, &p, end, path);
    double losses[3];
    take(losses, sizeof losses, &p, end, path);
    f->loss = losses[0], f->lm_loss = losses[1], f->distill_loss = losses[2];
    f->logits = doubles(f->B * f->T * f->V, &p, end, path);
    f->grads = doubles(f->n_params, &p, end, path);
    if (p != end) die("%s: %ld bytes too many", path, (long)(end - p));
    free(data);
    return 1;
}

static void free_fixture(Fixture *f) {
    free(f->tokens); free(f->targets); free(f->params); free(f->buffers); free(f->logits); free(f->grads);
}

// The fixture's flat layout is the model's without wte's padding rows.
static size_t model_index(const GPT2 *m, size_t i) {
    size_t real_rows = (size_t)m->V * m->C;
    return i < real_rows ? i : i + m->sizes[P_WTE] - real_rows;
}

// max |a − b| / max(|b|, floor) over n values (b: the reference).
static double worst(const real *a, const double *b, size_t n, size_t (*index)(const GPT2 *, size_t), const GPT2 *m) {
    double d = 0, scale = 1e-3;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[index ? index(m, i) : i] - b[i]);
        d = e > d || e != e ? e : d;
    }
    return d / scale;
}

static void check_fixture(const char *name, const char *form) {
    char path[256], what[128];
    snprintf(path, sizeof path, "test/reference/%s.ref", name);
    Fixture f;
    if (!read_fixture(path, &f)) {
        SKIP("%s is missing (run make test from the repository root)", path);
        return;
    }
    snprintf(what, sizeof what, "%s (%s)", name, form);
    snprintf(f.cfg.attention_form, sizeof f.cfg.attention_form, "%s", form);
    GPT2 m;
    model_init(&m, &f.cfg);
    CHECK((size_t)f.n_params == m.n_params - m.sizes[P_WTE] + (size_t)m.V * m.C && (size_t)f.n_buffers == m.n_buffers,
          "%s: the fixture's layout (%d parameters, %d buffers) is the model's", what, f.n_params, f.n_buffers);
    if ((size_t)f.n_params != m.n_params - m.sizes[P_WTE] + (size_t)m.V * m.C) {
        model_free(&m);
        free_fixture(&f);
        return;
    }
    memset(m.params, 0, m.n_params * sizeof(real));
    for (size_t i = 0; i < (size_t)f.n_params; i++) m.params[model_index(&m, i)] = (real)f.params[i];
    for (size_t i = 0; i < (size_t)f.n_buffers; i++) m.buffers[i] = (real)f.buffers[i];
    // Logits first (a forward with targets turns them into probabilities in place).
    model_forward(&m, f.tokens, NULL, f.B, f.T);
    double el = 0, scale = 1e-3;
    for (int r = 0; r < f.B * f.T; r++)
        for (int v = 0; v < f.V; v++) {
            double ref = f.logits[(size_t)r * f.V + v];
            el = fmax(el, fabs((double)m.logits[(size_t)r * m.Vp + v] - ref));
            scale = fmax(scale, fabs(ref));
        }
    CHECK(el / scale <= TOL, "%s: logits differ from the reference by %.3g (relative)", what, el / scale);
    model_forward(&m, f.tokens, f.targets, f.B, f.T);
    CHECK(fabs(m.loss - f.loss) <= TOL * fabs(f.loss) && fabs(m.lm_loss - f.lm_loss) <= TOL * fabs(f.lm_loss) &&
          fabs(m.distill_loss - f.distill_loss) <= TOL * fmax(fabs(f.distill_loss), 1e-3),
          "%s: loss %.12g (lm %.12g, distill %.12g), reference %.12g (%.12g, %.12g)", what, m.loss, m.lm_loss,
          m.distill_loss, f.loss, f.lm_loss, f.distill_loss);
    model_zero_grad(&m);
    model_backward(&m, 1.0);
    double eg = worst(m.grads, f.grads, (size_t)f.n_params, model_index, &m);
    CHECK(eg <= TOL, "%s: gradients differ from the reference by %.3g (relative to the largest)", what, eg);
    int padding_zero = 1;
    for (size_t i = (size_t)m.V * m.C; i < m.sizes[P_WTE]; i++) padding_zero &= m.grads[i] == 0;
    CHECK(padding_zero, "%s: the padded vocabulary rows get no gradient", what);
    model_free(&m);
    free_fixture(&f);
}

int main(void) {
    static const char *const fixtures[] = {"softmax", "elu", "taylor", "performer", "hedgehog", "hedgehog-softmax",
                                           "hedgehog-joint", "hedgehog-per-head", "t2r", "hedgehog-distill",
                                           "t2r-distill-only"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        check_fixture(fixtures[i], "quadratic");
        if (strcmp(fixtures[i], "softmax") != 0) check_fixture(fixtures[i], "chunked");
    }
    return test_summary(NAME);
}
