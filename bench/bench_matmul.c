// bench/bench_matmul.c — the three linear-layer products on the shapes GPT-2
// trains with, as milliseconds, GFLOP/s and a share of the measured FMA peak.
//
//   bench/bench_matmul [reps]     (default 9; OMP_NUM_THREADS sets threads)
#include "../matmul.h"
#include "peak.h"
#include <stdlib.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef enum { FORWARD, INPUT_GRAD, WEIGHT_GRAD, FORWARD_REF, BACKWARD_REF } Product;
static const char *product_name[] = {"forward", "dinp", "dweight", "forward (ref)", "backward (ref)"};

typedef struct {
    int BT, C, OC;
    real *inp, *weight, *bias, *dout, *out, *dinp, *dweight, *dbias;
} Problem;

static void run(Product p, Problem *m) {
    switch (p) {
    case FORWARD: matmul_forward(m->out, m->inp, m->weight, m->bias, m->BT, m->C, m->OC); break;
    case INPUT_GRAD: matmul_input_grad(m->dinp, m->dout, m->weight, m->BT, m->C, m->OC); break;
    case WEIGHT_GRAD: matmul_weight_grad(m->dweight, m->dbias, m->dout, m->inp, m->BT, m->C, m->OC); break;
    case FORWARD_REF: matmul_forward_ref(m->out, m->inp, m->weight, m->bias, m->BT, m->C, m->OC); break;
    case BACKWARD_REF:
        matmul_backward_ref(m->dinp, m->dweight, m->dbias, m->dout, m->inp, m->weight, m->BT, m->C, m->OC);
        break;
    }
}

static real *filled(Rng *rng, size_t n) {
    real *a = xmalloc(n * sizeof(real), "benchmark array");
    for (size_t i = 0; i < n; i++) a[i] = (real)(rng_uniform(rng) - 0.5);
    return a;
}

// Median milliseconds of `reps` timed calls after two untimed ones, printed
// with GFLOP/s and the share of `peak`.
static void bench(Product p, Problem *m, int reps, double peak) {
    double *ms = xmalloc(sizeof(double) * reps, "timings");
    for (int r = -2; r < reps; r++) {
        double t0 = now_seconds();
        run(p, m);
        if (r >= 0) ms[r] = (now_seconds() - t0) * 1e3;
    }
    qsort(ms, reps, sizeof(double), cmp_double);
    double med = ms[reps / 2];
    double gflop = 2.0 * m->BT * m->C * m->OC * (p == BACKWARD_REF ? 2 : 1) / 1e9;
    printf("| %4d | %4d | %5d | %-14s | %8.3f | %7.1f | %5.1f%% |\n",
           m->BT, m->C, m->OC, product_name[p], med, gflop / med * 1e3, 100 * gflop / med * 1e3 / peak);
    fflush(stdout);
    free(ms);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 9;
    if (reps < 1) die("usage: %s [reps >= 1]", argv[0]);
    int threads = n_threads();
    double peak = measure_fma_peak_gflops(threads);
    printf("threads %d, real = %s, FMA peak %.1f GFLOP/s (measured), median of %d reps\n\n",
           threads, REAL_NAME, peak, reps);
    printf("|   BT |    C |    OC | product        |       ms | GFLOP/s |  peak  |\n");
    printf("|-----:|-----:|------:|----------------|---------:|--------:|-------:|\n");
    static const int shapes[][3] = {
        {256, 768, 2304}, {256, 768, 768}, {256, 768, 3072}, {256, 3072, 768}, {256, 768, 50304},
        {1024, 256, 768}, {1024, 256, 256}, {1024, 256, 1024}, {1024, 1024, 256}, {1024, 256, 50304},
    };
    Rng rng;
    rng_seed(&rng, 1);
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int BT = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        Problem m = {BT, C, OC,
                     filled(&rng, (size_t)BT * C), filled(&rng, (size_t)OC * C), filled(&rng, OC),
                     filled(&rng, (size_t)BT * OC), filled(&rng, (size_t)BT * OC),
                     filled(&rng, (size_t)BT * C), filled(&rng, (size_t)OC * C), filled(&rng, OC)};
        for (Product p = FORWARD; p <= WEIGHT_GRAD; p++) bench(p, &m, reps, peak);
        if (s == 1)   // the reference, on one shape, for scale
            for (Product p = FORWARD_REF; p <= BACKWARD_REF; p++) bench(p, &m, 3, peak);
        free(m.inp); free(m.weight); free(m.bias); free(m.dout);
        free(m.out); free(m.dinp); free(m.dweight); free(m.dbias);
    }
    double peak_after = measure_fma_peak_gflops(threads);
    printf("\nFMA peak measured again after the runs: %.1f GFLOP/s\n", peak_after);
    matmul_release();
    return 0;
}
