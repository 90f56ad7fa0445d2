// bench/peak.h — the machine's measured multiply-add throughput, the yardstick
// every benchmark reports its figures against.
#ifndef PEAK_H
#define PEAK_H

// GFLOP/s (one fused multiply-add = 2 flops) of `threads` threads each running
// independent vector multiply-add chains: the best of three 0.1 s runs.
double measure_fma_peak_gflops(int threads);

#endif
