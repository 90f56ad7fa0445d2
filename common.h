// common.h — the element type, checked I/O and allocation, the RNG and a clock.
// Every other file includes this; it has no knowledge of models or attention.
#ifndef COMMON_H
#define COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// The element type of parameters and activations. The trainer builds with
// float; the gradient-check tests build the very same sources with
// -DREAL_DOUBLE so that finite differences are accurate to ~1e-10.
#ifdef REAL_DOUBLE
typedef double real;
#define REAL_NAME "double"
#else
typedef float real;
#define REAL_NAME "float"
#endif

#include <math.h>
#include <string.h>

// The square root in the element type (sqrt on a float would round-trip
// through double and keep the optimizer's loop from vectorising well).
#ifdef REAL_DOUBLE
static inline double sqrt_r(double x) { return sqrt(x); }
#else
static inline float sqrt_r(float x) { return sqrtf(x); }
#endif

// exp for the hot loops (softmax, GELU, exp feature maps). In float builds a
// branch-free version the compiler vectorises: e^x = 2^n · e^r with
// n = round(x / ln 2), |r| <= ln2/2, e^r by its degree-7 Taylor polynomial
// (relative error ~1e-7, about one float ulp). Inputs are clamped to
// [-87, 88], where float e^x is normal. No library call and no float-to-int
// conversion: compilers vectorise neither without -ffast-math. Double builds
// (the gradient checks) use libm's exp.

#ifdef REAL_DOUBLE
static inline double exp_r(double x) { return exp(x); }
#else
static inline float exp_r(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    // Adding 1.5·2^23 rounds x/ln2 to an integer n held in the low mantissa
    // bits of nm; subtracting it back gives n as a float.
    float nm = x * 1.44269504088896341f + 12582912.0f;
    float n = nm - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln 2 split in two for an exact n·ln2
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.6666667e-1f + r * (4.1666668e-2f + r * (8.3333338e-3f +
              r * (1.3888889e-3f + r * 1.9841270e-4f))))));
    uint32_t bits;  // 2^n: n + 127 into the exponent field (unsigned: a NaN input wraps harmlessly)
    memcpy(&bits, &nm, sizeof bits);
    bits = (bits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
#endif

// Row reductions as CHAINS independent partial results that the compiler
// keeps in vector registers (one running sum is a serial chain of dependent
// adds it may not reorder: 4 cycles per element), combined in a fixed order,
// so results do not depend on threads. Chains of sums hold `real` where a
// float-to-double sum would not vectorise, and are combined in double.
enum { CHAINS = 16 };

// Σ (x[i] − shift), or Σ (x[i] − shift)² when `square`, over a row of n
// (rows short enough, or split into blocks, that float chains are plenty).
static inline double row_sum(const real *x, int n, real shift, int square) {
    real acc[CHAINS] = {0};
    double s = 0;
    int i = 0;
    for (; i + CHAINS <= n; i += CHAINS)
        for (int l = 0; l < CHAINS; l++) acc[l] += square ? (x[i + l] - shift) * (x[i + l] - shift) : x[i + l] - shift;
    for (; i < n; i++) s += square ? (x[i] - shift) * (x[i] - shift) : x[i] - shift;
    for (int l = 0; l < CHAINS; l++) s += acc[l];
    return s;
}

// Σ a[i]·b[i], in the same CHAINS independent partial sums.
static inline real dot(const real *a, const real *b, int n) {
    real acc[CHAINS] = {0}, s = 0;
    int i = 0;
    for (; i + CHAINS <= n; i += CHAINS)
        for (int l = 0; l < CHAINS; l++) acc[l] += a[i + l] * b[i + l];
    for (; i < n; i++) s += a[i] * b[i];
    for (int l = 0; l < CHAINS; l++) s += acc[l];
    return s;
}

// y += a·x
static inline void axpy(real *y, real a, const real *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

// max of x[0..n), n >= 1. A max is exact in any order, so the lanes of an
// `omp simd` reduction give the same result; without the pragma GCC leaves
// the compare-and-select scalar, even split into chains (it may not treat it
// as a max: NaNs). (Built without
// OpenMP the pragma is ignored: the same result, scalar. Clang 14 cannot
// vectorise this reduction and warns that it could not, so it is not asked.)
static inline real row_max(const real *x, int n) {
    real mx = x[0];
#if !defined(__clang__)
    #pragma omp simd reduction(max : mx)
#endif
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

// z[i] = exp(z[i] − shift) over the row.
static inline void exp_shifted(real *z, int n, real shift) {
    for (int i = 0; i < n; i++) z[i] = exp_r(z[i] - shift);
}

// The same, returning their sum (in double). Two loops, each of which the
// compiler vectorises; fused, it does neither.
static inline double exp_shift_sum(real *z, int n, real shift) {
    exp_shifted(z, n, shift);
    double acc[CHAINS] = {0}, sum = 0;
    int i = 0;
    for (; i + CHAINS <= n; i += CHAINS)
        for (int l = 0; l < CHAINS; l++) acc[l] += z[i + l];
    for (; i < n; i++) sum += z[i];
    for (int l = 0; l < CHAINS; l++) sum += acc[l];
    return sum;
}

#if defined(__GNUC__) || defined(__clang__)
#define NORETURN __attribute__((noreturn))
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
// A hint to start loading a cache line now (rw 1: it will be written).
// Use it inside a function that does other work: GCC counts prefetches as
// free of effects, so it finds a function of prefetches alone to do nothing
// and deletes the calls (matmul's panel prefetch never ran for that reason).
#define PREFETCH(p, rw) __builtin_prefetch((p), (rw), 3)
// The same for reading, into L2 only (L1 keeps what is being worked on).
#define PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
#else
#define NORETURN
#define PRINTF_LIKE(a, b)
#define PREFETCH(p, rw) ((void)(p))
#define PREFETCH_L2(p) ((void)(p))
#endif

// Print "error: <message>" to stderr and exit(1). Messages are for users:
// say what was wrong, where, and what to do.
NORETURN void die(const char *fmt, ...) PRINTF_LIKE(1, 2);
void warn(const char *fmt, ...) PRINTF_LIKE(1, 2);

// Allocation that never returns NULL: on failure it names what was being
// allocated and how many bytes. Memory from xcalloc/xmalloc is freed with free().
void *xmalloc(size_t bytes, const char *what);
void *xcalloc(size_t n, size_t size, const char *what);

// File I/O that exits with the file name and the reason on any failure.
FILE *xfopen(const char *path, const char *mode);
void xfread(void *ptr, size_t size, size_t n, FILE *f, const char *path);
void xfwrite(const void *ptr, size_t size, size_t n, FILE *f, const char *path);
void xfclose(FILE *f, const char *path);
void xfseek(FILE *f, long offset, int whence, const char *path);
long xfsize(FILE *f, const char *path);        // size in bytes, position unchanged
// Replacing a file atomically: replace_open writes to PATH.tmp (its name in
// tmp, tmp_size bytes); replace_commit flushes it to the disk and renames it
// over PATH, so a crash at any moment leaves the old file or the new one,
// never half of one. If the program dies in between (a failed write), die()
// removes the .tmp. One replacement at a time.
FILE *replace_open(const char *path, const char *mode, char *tmp, size_t tmp_size);
void replace_commit(FILE *f, const char *tmp, const char *path);
// Read a whole file into a NUL-terminated buffer; *len gets the byte count.
char *read_file(const char *path, size_t *len);
int file_exists(const char *path);
// Make a directory (and its parents); exits with a message when it cannot.
void make_dirs(const char *path);

// Deterministic RNG (splitmix64 seeding + xoshiro256**): the same seed gives
// the same stream on every machine, so runs are reproducible and resumable.
typedef struct { uint64_t s[4]; } Rng;
void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
double rng_uniform(Rng *r);                 // [0, 1)
double rng_normal(Rng *r);                  // standard normal (Box–Muller)
uint64_t rng_below(Rng *r, uint64_t n);     // uniform integer in [0, n)

double now_seconds(void);                   // monotonic wall clock

// A batch's target at a position the loss does not score (a loss mask's 0):
// the data loader writes it, the model's cross-entropy skips it.
#define NO_TARGET (-1)

// Seconds spent per layer type, for bench_train's breakdown: each layer's
// function adds its own time (prof_add(kind, t0) with t0 = now_seconds() at
// its start). Only functions called outside parallel regions count.
enum { PROF_MATMUL_FWD, PROF_MATMUL_BWD, PROF_ATTN_FWD, PROF_ATTN_BWD, PROF_LAYERNORM,
       PROF_GELU, PROF_LOSS, PROF_OPTIMIZER, PROF_OTHER, N_PROF };
extern double prof_seconds[N_PROF];
extern const char *const prof_names[N_PROF];
static inline void prof_add(int kind, double t0) { prof_seconds[kind] += now_seconds() - t0; }

// Bytes of memory this process can still use: the kernel's MemAvailable,
// or what the cgroup's limit leaves when that is less; 0 when unknown.
double memory_available(void);
// Stop with a message when `bytes` (an estimate of what `what` is about to
// allocate) exceeds memory_available(); `advice` says what to reduce.
void memory_check(double bytes, const char *what, const char *advice);

// Run fn(arg) in a child process, its stdout discarded and its stderr
// captured into msg (at most n − 1 bytes, NUL-terminated): how die()'s
// messages are caught, to be tested or reported again with more context.
// Returns the child's exit status (128 + the signal when it was killed).
int run_captured(void (*fn)(void *), void *arg, char *msg, size_t n);

// Number of OpenMP threads in use (1 when built without OpenMP).
int n_threads(void);

#endif
