// bench/peak.h — the machine's measured multiply-add throughput, the yardstick
// every benchmark reports its figures against.
#ifndef PEAK_H
#define PEAK_H

// GFLOP/s (one fused multiply-add = 2 flops) of `threads` threads each running
// independent vector multiply-add chains: the best of three 0.1 s runs.
double measure_fma_peak_gflops(int threads);

// GB/s of `threads` threads updating two arrays far larger than the caches in
// place (x, y <- x + y/2, y - x/2: 8 bytes read and 8 written per element,
// every byte counted). It is the optimizer's access pattern, so the bytes an
// optimizer moves divided by this is a true lower bound on its time. (STREAM's
// triad writes a third array, whose lines the CPU also reads before writing
// them; STREAM does not count those bytes, so it understates the bandwidth
// an in-place update gets by about a quarter.)
double measure_update_gbps(int threads);

#endif
