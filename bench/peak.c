// bench/peak.c — FMA throughput of this machine, measured rather than taken
// from a data sheet, since clocks under vector load (and in VMs) vary.
#include "peak.h"
#include "../common.h"
#include <stdlib.h>
#include <string.h>

// The same vector setup as the matmul kernels (vec.h), so the ratio is fair.
#include "../vec.h"

// Enough independent chains to cover FMA latency (4-5 cycles) times the
// number of FMA units (2) with room to spare, yet fit the register file.
enum { FMA_CHAINS = 12 };

#ifdef VEC_SCALAR
typedef float vec;
#else
typedef float vec __attribute__((vector_size(VEC_BYTES)));
#endif
enum { VL = sizeof(vec) / sizeof(float) };

// Runs `iters` rounds of FMA_CHAINS multiply-adds; returns a value depending on all
// of them so none can be optimised away.
WIDE_VECTORS
static float fma_chains(long iters, float seed) {
    vec acc[FMA_CHAINS], mul = {0}, add = {0};
    mul += 0.999999f;            // |x| stays bounded: no overflow, no denormals
    add += seed * 1e-7f;
    for (int c = 0; c < FMA_CHAINS; c++) acc[c] = add * (float)c;
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < FMA_CHAINS; c++) acc[c] = acc[c] * mul + add;
    float lanes[VL], s = 0;
    for (int c = 0; c < FMA_CHAINS; c++) {
        memcpy(lanes, &acc[c], sizeof(lanes));
        for (int l = 0; l < VL; l++) s += lanes[l];
    }
    return s;
}

// Seconds for every thread to run `iters` rounds.
static double time_chains(int threads, long iters, volatile float *sink) {
    (void)threads;   // read only by the OpenMP clause
    double t0 = now_seconds();
    float total = 0;
    #pragma omp parallel num_threads(threads) reduction(+ : total)
    total += fma_chains(iters, 1.0f);
    *sink = total;
    return now_seconds() - t0;
}

double measure_fma_peak_gflops(int threads) {
    volatile float sink = 0;
#ifndef _OPENMP
    threads = 1;
#endif
    long iters = 1 << 16;
    double t;
    while ((t = time_chains(threads, iters, &sink)) < 0.03) iters *= 2;
    iters = (long)(iters * 0.1 / t);
    // The best of three 0.1 s runs: other processes can only slow it down.
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        t = time_chains(threads, iters, &sink);
        if (t < best) best = t;
    }
    return 2.0 * FMA_CHAINS * VL * (double)iters * threads / best / 1e9;
}

double measure_update_gbps(int threads) {
#ifndef _OPENMP
    threads = 1;
#endif
    (void)threads;   // read only by the OpenMP clauses
    size_t n = (size_t)256 << 20;  // 2 arrays of 1 GiB: beyond any L3 (this VM reports 480 MiB)
    float *a = xmalloc(n * sizeof(float), "bandwidth array"), *b = xmalloc(n * sizeof(float), "bandwidth array");
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = 1, b[i] = 2;  // first touch by the thread that streams it
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now_seconds();
        #pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++) {
            float x = a[i], y = b[i];
            a[i] = x + 0.5f * y;
            b[i] = y - 0.5f * x;
        }
        double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    volatile float sink = a[n / 2] + b[n / 3];
    (void)sink;
    free(a); free(b);
    return 16.0 * (double)n / best / 1e9;
}
