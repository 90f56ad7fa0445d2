// test/test_matmul.c — the fast linear-layer kernels against the reference
// loops on awkward shapes, the += contract of the backward pass, and bitwise
// identical results for any thread count.
#include "../matmul.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static real *random_array(Rng *rng, size_t n) {
    real *a = xmalloc(n * sizeof(real), "test array");
    for (size_t i = 0; i < n; i++) a[i] = (real)(rng_uniform(rng) * 2 - 1);
    return a;
}

// Largest |x - y| relative to `scale`, the same products over absolute
// values: rounding grows with the terms summed, not with the result, so this
// stays near float epsilon for any C, OC or BT while a lost term does not.
static double max_err(const real *x, const real *y, const real *scale, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - y[i]) / fmax(scale[i], 1e-30);
        if (!(d <= worst)) worst = d;   // also catches NaN
    }
    return worst;
}

static real *abs_copy(const real *a, size_t n) {
    if (!a) return NULL;
    real *b = xmalloc(n * sizeof(real), "test array");
    for (size_t i = 0; i < n; i++) b[i] = (real)fabs((double)a[i]);
    return b;
}

typedef struct {
    real *out, *dinp, *dweight, *dbias;
} Results;

// Forward, then backward twice into zeroed gradients (so the result is 2x one
// pass if and only if the backward accumulates).
static Results run(int fast, const real *inp, const real *weight, const real *bias, const real *dout,
                   int BT, int C, int OC, int with_dbias) {
    Results r = {
        xmalloc((size_t)BT * OC * sizeof(real), "out"),
        xcalloc((size_t)BT * C, sizeof(real), "dinp"),
        xcalloc((size_t)OC * C, sizeof(real), "dweight"),
        with_dbias ? xcalloc((size_t)OC, sizeof(real), "dbias") : NULL,
    };
    (fast ? matmul_forward : matmul_forward_ref)(r.out, inp, weight, bias, BT, C, OC);
    for (int pass = 0; pass < 2; pass++)
        (fast ? matmul_backward : matmul_backward_ref)(r.dinp, r.dweight, r.dbias, dout, inp, weight, BT, C, OC);
    return r;
}

static void free_results(Results r) {
    free(r.out); free(r.dinp); free(r.dweight); free(r.dbias);
}

#ifdef _OPENMP
static int same_bits(Results x, Results y, int BT, int C, int OC) {
    return !memcmp(x.out, y.out, (size_t)BT * OC * sizeof(real)) &&
           !memcmp(x.dinp, y.dinp, (size_t)BT * C * sizeof(real)) &&
           !memcmp(x.dweight, y.dweight, (size_t)OC * C * sizeof(real)) &&
           (!x.dbias || !memcmp(x.dbias, y.dbias, (size_t)OC * sizeof(real)));
}
#endif

static void test_shape(Rng *rng, int BT, int C, int OC, int with_bias) {
    real *inp = random_array(rng, (size_t)BT * C), *weight = random_array(rng, (size_t)OC * C);
    real *dout = random_array(rng, (size_t)BT * OC), *bias = with_bias ? random_array(rng, OC) : NULL;
    Results ref = run(0, inp, weight, bias, dout, BT, C, OC, with_bias);
    Results fast = run(1, inp, weight, bias, dout, BT, C, OC, with_bias);
    real *ainp = abs_copy(inp, (size_t)BT * C), *aweight = abs_copy(weight, (size_t)OC * C);
    real *adout = abs_copy(dout, (size_t)BT * OC), *abias = abs_copy(bias, OC);
    Results scale = run(0, ainp, aweight, abias, adout, BT, C, OC, with_bias);
    double tol = sizeof(real) == sizeof(float) ? 1e-5 : 1e-12;
    double e;
    e = max_err(fast.out, ref.out, scale.out, (size_t)BT * OC);
    CHECK(e <= tol, "forward %dx%dx%d bias %d: error %g", BT, C, OC, with_bias, e);
    e = max_err(fast.dinp, ref.dinp, scale.dinp, (size_t)BT * C);
    CHECK(e <= tol, "dinp %dx%dx%d: error %g", BT, C, OC, e);
    e = max_err(fast.dweight, ref.dweight, scale.dweight, (size_t)OC * C);
    CHECK(e <= tol, "dweight %dx%dx%d: error %g", BT, C, OC, e);
    if (with_bias) {
        e = max_err(fast.dbias, ref.dbias, scale.dbias, OC);
        CHECK(e <= tol, "dbias %dx%dx%d: error %g", BT, C, OC, e);
    }

    // Two backward passes must give exactly twice one: compare with 2x a single pass.
    real *dinp1 = xcalloc((size_t)BT * C, sizeof(real), "dinp"), *dw1 = xcalloc((size_t)OC * C, sizeof(real), "dw");
    matmul_backward(dinp1, dw1, NULL, dout, inp, weight, BT, C, OC);
    for (size_t i = 0; i < (size_t)BT * C; i++) dinp1[i] *= 2;
    for (size_t i = 0; i < (size_t)OC * C; i++) dw1[i] *= 2;
    CHECK(max_err(fast.dinp, dinp1, scale.dinp, (size_t)BT * C) <= tol &&
          max_err(fast.dweight, dw1, scale.dweight, (size_t)OC * C) <= tol,
          "backward %dx%dx%d does not accumulate", BT, C, OC);

#ifdef _OPENMP
    int threads = omp_get_max_threads();
    for (int t = 1; t <= 3; t += 2) {   // 1 and 3: an odd split of every loop
        omp_set_num_threads(t);
        Results other = run(1, inp, weight, bias, dout, BT, C, OC, with_bias);
        CHECK(same_bits(fast, other, BT, C, OC), "%dx%dx%d: %d threads differ from %d", BT, C, OC, t, threads);
        free_results(other);
    }
    omp_set_num_threads(threads);
#endif
    free(dinp1); free(dw1);
    free_results(ref); free_results(fast); free_results(scale);
    free(ainp); free(aweight); free(adout); free(abias);
    free(inp); free(weight); free(dout); free(bias);
}

// mat_mul / mat_mul_add on transposed and padded operands against the plain sum,
// overwriting and accumulating, and the same bits when called from inside a
// parallel region (where it runs on the calling thread).
static void product(real *c, size_t ldc, const real *a, size_t lda, const real *b, size_t ldb, int M, int N, int K,
                    int accumulate) {
    // C = Aᵀ·B with A stored K×M (rows lda apart), B K×N (rows ldb apart).
    Mat C = mat(c, M, N, ldc), At = mat_t(mat(a, K, M, lda)), Bm = mat(b, K, N, ldb);
    if (accumulate) mat_mul_add(C, At, Bm);
    else mat_mul(C, At, Bm);
}

static void test_strided(Rng *rng, int M, int N, int K) {
    size_t lda = (size_t)M + 3, ldb = (size_t)N + 5, ldc = (size_t)N + 2;
    real *a = random_array(rng, lda * K), *b = random_array(rng, (size_t)K * ldb);   // A stored transposed
    real *c0 = random_array(rng, ldc * M), *c = xmalloc(ldc * M * sizeof(real), "C");
    for (int accumulate = 0; accumulate <= 1; accumulate++) {
        memcpy(c, c0, ldc * M * sizeof(real));
        product(c, ldc, a, lda, b, ldb, M, N, K, accumulate);
        double worst = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double want = accumulate ? c0[i * ldc + j] : 0, scale = fabs(want);
                for (int k = 0; k < K; k++) {
                    want += (double)a[k * lda + i] * b[k * ldb + j];
                    scale += fabs((double)a[k * lda + i] * b[k * ldb + j]);
                }
                double e = fabs(c[i * ldc + j] - want) / fmax(scale, 1e-30);
                worst = e > worst || e != e ? e : worst;
            }
        int padding_kept = 1;
        for (int i = 0; i < M; i++)
            for (size_t j = (size_t)N; j < ldc; j++) padding_kept &= c[i * ldc + j] == c0[i * ldc + j];
        CHECK(worst <= (sizeof(real) == sizeof(float) ? 1e-5 : 1e-12) && padding_kept,
              "strided %dx%dx%d accumulate=%d: error %g, padding kept %d", M, N, K, accumulate, worst, padding_kept);
#ifdef _OPENMP
        real *cp = xmalloc(ldc * M * sizeof(real), "C");
        memcpy(cp, c0, ldc * M * sizeof(real));
        #pragma omp parallel num_threads(2)
        {
            #pragma omp single
            product(cp, ldc, a, lda, b, ldb, M, N, K, accumulate);
        }
        CHECK(!memcmp(cp, c, ldc * M * sizeof(real)), "strided %dx%dx%d: inside a parallel region differs", M, N, K);
        free(cp);
#endif
    }
    free(a); free(b); free(c0); free(c);
}

int main(void) {
    Rng rng;
    rng_seed(&rng, 6);
#ifdef _OPENMP
    if (omp_get_max_threads() < 2) omp_set_num_threads(2);   // so the default differs from 1
#endif
    static const int shapes[][3] = {   // BT, C, OC
        {1, 1, 1}, {1, 37, 53}, {37, 53, 1}, {37, 1, 53}, {37, 53, 71}, {2, 3, 5},
        {17, 257, 49}, {9, 300, 97}, {257, 31, 769},     // just past a block or panel edge
        {64, 768, 2304}, {300, 520, 130},                // GPT-2-like; several k-blocks
        {1024, 256, 777},   // weight gradient with several row blocks and k-blocks
    };
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
        for (int with_bias = 0; with_bias <= 1; with_bias++)
            test_shape(&rng, shapes[s][0], shapes[s][1], shapes[s][2], with_bias);
    test_strided(&rng, 1, 1, 1);
    test_strided(&rng, 37, 65, 9);
    test_strided(&rng, 130, 17, 300);    // several k-blocks, sliced along M
    matmul_release();
    return test_summary("test_matmul");
}
