// bench/peak.h — the machine's measured multiply-add throughput, the yardstick
// every benchmark reports its figures against.
#ifndef PEAK_H
#define PEAK_H

// GFLOP/s (one fused multiply-add = 2 flops) of `threads` threads each running
// independent vector multiply-add chains: the best of three 0.1 s runs.
double measure_fma_peak_gflops(int threads);

// GB/s of `threads` threads running STREAM's triad a = b + s·c over arrays far
// larger than the caches (12 bytes counted per element): the best of three.
// The other yardstick: a memory-bound loop (the optimizer) is judged by it.
double measure_stream_gbps(int threads);

#endif
