// matmul.c — linear-layer products. See matmul.h for shapes and contracts.
#include "matmul.h"
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// out (BT,OC) = inp (BT,C) · weightᵀ + bias
void matmul_forward_ref(real *out, const real *inp, const real *weight, const real *bias,
                        int BT, int C, int OC) {
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < BT; r++) {
        const real *x = inp + (size_t)r * C;
        for (int o = 0; o < OC; o++) {
            const real *w = weight + (size_t)o * C;
            real acc = bias ? bias[o] : 0;
            for (int c = 0; c < C; c++) acc += x[c] * w[c];
            out[(size_t)r * OC + o] = acc;
        }
    }
}

// dinp += dout · weight; dweight += doutᵀ · inp; dbias += column sums of dout
void matmul_backward_ref(real *dinp, real *dweight, real *dbias, const real *dout,
                         const real *inp, const real *weight, int BT, int C, int OC) {
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < BT; r++) {
        const real *g = dout + (size_t)r * OC;
        real *dx = dinp + (size_t)r * C;
        for (int o = 0; o < OC; o++) {
            const real *w = weight + (size_t)o * C;
            for (int c = 0; c < C; c++) dx[c] += g[o] * w[c];
        }
    }
    if (!dweight) return;   // a frozen layer
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o++) {
        real *dw = dweight + (size_t)o * C;
        real db = 0;
        for (int r = 0; r < BT; r++) {
            real g = dout[(size_t)r * OC + o];
            const real *x = inp + (size_t)r * C;
            for (int c = 0; c < C; c++) dw[c] += g * x[c];
            db += g;
        }
        if (dbias) dbias[o] += db;
    }
}

// The fast path: one blocked GEMM serves all three products, in both
// precisions (so the gradient checks in double exercise the same code). With
// GCC and Clang it runs on vector extensions; other compilers get the same
// code on scalars.

#include "vec.h"

// MR x NV accumulators plus NV loads of B and one broadcast of A must fit the
// register file (32 registers with AVX-512 and on AArch64, 16 otherwise).
#if defined(__AVX512F__) || defined(__aarch64__)
enum { MR = 8, NV = 3 };
#else
enum { MR = 6, NV = 2 };
#endif
#ifdef VEC_SCALAR
typedef real vec;
#else
typedef real vec __attribute__((vector_size(VEC_BYTES)));
#endif
enum {
    VL = sizeof(vec) / sizeof(real),
    NR = NV * VL,          // columns of one micro-tile
    KC = 384,              // k-block: fixed, so the summation order is too (the choice: docs/performance.md)
    MC = 32 * MR,          // rows of A packed at once: MC x KC stays in L2
    NC = 48 * NR,          // columns of B packed at once
    ALIGN = 64,
};

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

// A matrix seen as rows r and depth k: element (r, k) is p[r*rs + k*cs]. Both
// operands are described this way, so transposes cost nothing to express.
typedef struct { const real *p; size_t rs, cs; } View;

// dst[o*d_out + i*d_in] = src[o*s_out + i*s_in] over an n_out x n_in grid,
// in strips of 16 along i so that both sides touch few cache lines at a time.
static inline void copy_grid(real *restrict dst, size_t d_out, size_t d_in, const real *restrict src,
                             size_t s_out, size_t s_in, int n_out, int n_in) {
    enum { STRIP = 16 };
    for (int i0 = 0; i0 < n_in; i0 += STRIP) {
        int i1 = n_in - i0 < STRIP ? n_in : i0 + STRIP;
        for (int o = 0; o < n_out; o++)
            for (int i = i0; i < i1; i++) dst[o * d_out + i * d_in] = src[o * s_out + i * s_in];
    }
}

// Copy rows r..r+n-1, depths k..k+nk-1 of v into a k-major panel of row
// stride `width`, d pointing at the first row's first depth.
static inline void copy_rect(real *restrict d, View v, int width, int r, int n, int k, int nk) {
    const real *src = v.p + (size_t)r * v.rs + (size_t)k * v.cs;
    if (v.cs == 1) copy_grid(d, 1, (size_t)width, src, v.rs, 1, n, nk);
    else if (v.rs == 1) {   // rows contiguous: a panel row at a time, not the strip copy
        // Whole rows get a copy of constant length (width is a constant once
        // inlined): with a variable one GCC calls memmove per row, 32 bytes
        // at a time for A's panels.
        if (n == width)
            for (int j = 0; j < nk; j++) memcpy(d + (size_t)j * width, src + (size_t)j * v.cs, sizeof(real) * width);
        else
            for (int j = 0; j < nk; j++)
                for (int i = 0; i < n; i++) d[(size_t)j * width + i] = src[(size_t)j * v.cs + i];
    }
    else copy_grid(d, (size_t)width, 1, src, v.cs, v.rs, nk, n);
}

// A source with k contiguous (the forward's inp and W, dinp's dout) is packed
// by transposing it, and element by element every write of that lands in a
// different cache line. Vector
// shuffles transpose LANES x LANES blocks in registers instead: log2(LANES)
// rounds that each interleave row i with row i + LANES/2 (after the last
// round, vector j holds column j). Needs __builtin_shufflevector (Clang, GCC
// >= 12); other compilers keep the element-wise copy.
#ifdef REAL_DOUBLE
#define LANES (VEC_BYTES / 8)
#else
#define LANES (VEC_BYTES / 4)
#endif
#if !defined(VEC_SCALAR) && (defined(__clang__) || __GNUC__ >= 12)
#if LANES == 16
#define ZIP_LO(x, y) __builtin_shufflevector(x, y, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define ZIP_HI(x, y) __builtin_shufflevector(x, y, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#elif LANES == 8
#define ZIP_LO(x, y) __builtin_shufflevector(x, y, 0, 8, 1, 9, 2, 10, 3, 11)
#define ZIP_HI(x, y) __builtin_shufflevector(x, y, 4, 12, 5, 13, 6, 14, 7, 15)
#elif LANES == 4
#define ZIP_LO(x, y) __builtin_shufflevector(x, y, 0, 4, 1, 5)
#define ZIP_HI(x, y) __builtin_shufflevector(x, y, 2, 6, 3, 7)
#endif
#endif

#ifdef ZIP_LO
// Rows r..r+VL-1, depths k..k+VL-1 of v (k contiguous) into the panels at
// dst, row r - r0 of the block landing in panel (r - r0) / width. Whole
// vectors or whole panel rows are stored, so width and VL must divide one
// another (checked by the caller).
WIDE_VECTORS
static inline void transpose_block(real *restrict dst, int width, int kc, View v, int r0, int r, int k0, int k) {
    vec t[VL];
    for (int i = 0; i < VL; i++) memcpy(&t[i], v.p + (size_t)r * v.rs + (size_t)(k0 + k) + (size_t)i * v.rs, sizeof(vec));
    _Pragma("GCC unroll 8")
    for (int round = 1; round < VL; round *= 2) {
        vec u[VL];
        for (int i = 0; i < VL / 2; i++) {
            u[2 * i] = ZIP_LO(t[i], t[i + VL / 2]);
            u[2 * i + 1] = ZIP_HI(t[i], t[i + VL / 2]);
        }
        memcpy(t, u, sizeof(t));
    }
    int seg = width < VL ? width : VL;
    for (int j = 0; j < VL; j++)
        for (int s = 0; s < VL; s += seg) {
            int row = r - r0 + s;
            memcpy(dst + ((size_t)(row / width) * kc + k + j) * width + row % width, (real *)&t[j] + s,
                   sizeof(real) * seg);
        }
}
#endif

// Pack rows r0..r0+rows-1, depths k0..k0+kc-1 of v into consecutive k-major
// panels of `width` rows each, zero-padding the last panel's missing rows so
// the micro-kernel never needs an edge case. Transposing sources go through
// transpose_block where whole blocks fit; the rest is copied walking the
// source in memory order, so its reads stream while the scattered writes land
// in panels that are in cache.
static inline void pack_panels(real *restrict dst, View v, int r0, int rows, int k0, int kc, int width) {
    if (rows % width) memset(dst + (size_t)(rows / width) * width * kc, 0, sizeof(real) * (size_t)kc * width);
    int rt = 0, kt = 0;   // rows [0, rt) x depths [0, kt) transposed in blocks
#ifdef ZIP_LO
    if (v.cs == 1 && (width % VL == 0 || VL % width == 0)) {
        rt = rows / VL * VL, kt = kc / VL * VL;
        for (int r = 0; r < rt; r += VL)
            for (int k = 0; k < kt; k += VL) transpose_block(dst, width, kc, v, r0, r0 + r, k0, k);
    }
#endif
    for (int a = 0; a < rows; a += width) {
        int n = imin(width, rows - a), t = imin(imax(rt, a), a + n);
        real *d = dst + (size_t)(a / width) * width * kc;
        copy_rect(d + (size_t)kt * width, v, width, r0 + a, t - a, k0 + kt, kc - kt);
        copy_rect(d + (t - a), v, width, r0 + t, a + n - t, k0, kc);
    }
}

// acc = a (MR x kc panel) · b (kc x NR panel), of which only the first nv
// vectors of columns are needed; then the m x n valid part of the tile at c
// becomes acc + c (when accumulating) or acc + bias (or acc). nv is a
// constant in each caller below, so the loops unroll fully.
#if defined(__GNUC__)
#define INLINE_ALWAYS inline __attribute__((always_inline))
#else
#define INLINE_ALWAYS inline
#endif
WIDE_VECTORS
static INLINE_ALWAYS void tile_kernel(int nv, int kc, const real *restrict a, const real *restrict b,
                                      real *restrict c, size_t ldc, int m, int n,
                                      int accumulate, const real *restrict bias) {
    // The C tile is read once the sums are done; ask for it now so that the
    // misses (C is often larger than L2) overlap the multiply-adds.
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j += 64 / (int)sizeof(real)) PREFETCH(c + (size_t)i * ldc + j, 1);
    vec acc[MR][NV];
    memset(acc, 0, sizeof(acc));
    // Unrolled so that loop counting does not take issue slots from the FMAs.
    _Pragma("GCC unroll 4")
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        vec bk[NV];
        for (int v = 0; v < nv; v++) memcpy(&bk[v], b + v * VL, sizeof(vec));
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < nv; v++) acc[i][v] += a[i] * bk[v];
    }
    // Through a buffer, so partial edge tiles share the one store loop.
    real tile[MR][NR];
    memcpy(tile, acc, sizeof(tile));
    for (int i = 0; i < m; i++) {
        real *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++)
            ci[j] = tile[i][j] + (accumulate ? ci[j] : bias ? bias[j] : 0);
    }
}

// A panel's last tile is often narrow (N = 64 = 48 + 16 in attention, for a
// head size of 64): it runs as many vectors of columns as it has, not NV,
// rather than computing columns that are thrown away.
WIDE_VECTORS
static void micro_kernel(int kc, const real *restrict a, const real *restrict b,
                         real *restrict c, size_t ldc, int m, int n,
                         int accumulate, const real *restrict bias) {
    int nv = (n + VL - 1) / VL;   // branches past NV fold away at compile time
    if (nv == 1 && NV > 1) tile_kernel(1, kc, a, b, c, ldc, m, n, accumulate, bias);
    else if (nv == 2 && NV > 2) tile_kernel(2, kc, a, b, c, ldc, m, n, accumulate, bias);
    else tile_kernel(NV, kc, a, b, c, ldc, m, n, accumulate, bias);
}

// Packing spaces, kept between calls and grown on demand: a slice borrows a
// free one and gives it back, so there are as many as slices ever ran at
// once. (Per-thread storage would be simpler, but OpenMP may end a pool
// thread, and its space would be lost.)
enum { MAX_SPACES = 256 };
static struct { real *p; size_t n; int busy; } spaces[MAX_SPACES];

static int borrow_space(size_t n) {
    int i;
    #pragma omp critical(matmul_spaces)
    {
        for (i = 0; i < MAX_SPACES && spaces[i].busy; i++) {}
        if (i < MAX_SPACES) spaces[i].busy = 1;
    }
    if (i == MAX_SPACES) die("more than %d matrix products at once: raise MAX_SPACES in matmul.c", MAX_SPACES);
    if (n > spaces[i].n) {
        free(spaces[i].p);
        size_t bytes = (n * sizeof(real) + ALIGN - 1) / ALIGN * ALIGN;
        spaces[i].p = aligned_alloc(ALIGN, bytes);
        if (!spaces[i].p) die("out of memory allocating %zu bytes of matmul packing space", bytes);
        spaces[i].n = n;
    }
    return i;
}

static void return_space(int i) {
    #pragma omp critical(matmul_spaces)
    spaces[i].busy = 0;
}

void matmul_release(void) {
    for (int i = 0; i < MAX_SPACES; i++) {
        free(spaces[i].p);
        spaces[i].p = NULL;
        spaces[i].n = 0;
    }
}

// dbias += column sums of dout. Each thread owns a strip of columns and adds
// the rows in order, so the sums do not depend on the thread count.
static void bias_backward(real *dbias, const real *dout, int BT, int OC) {
    enum { STRIP = 64 };
    #pragma omp parallel for schedule(static)
    for (int o0 = 0; o0 < OC; o0 += STRIP) {
        int n = OC - o0 < STRIP ? OC - o0 : STRIP;
        real sum[STRIP] = {0};
        for (int r = 0; r < BT; r++)
            for (int j = 0; j < n; j++) sum[j] += dout[(size_t)r * OC + o0 + j];
        for (int j = 0; j < n; j++) dbias[o0 + j] += sum[j];
    }
}

// C (M,N) = A (M,K) · Bᵀ where bt is B seen as (N,K), plus bias (N), or plus C
// itself when accumulating, on the calling thread with a borrowed packing space.
// Every C element is summed over the same fixed k-blocks in order, so the
// result does not depend on how the product was cut into slices.
static void gemm_slice(real *C, size_t ldc, View a, View bt, const real *bias,
                       int M, int N, int K, int accumulate) {
    int kcap = K < 1 ? 1 : imin(K, KC), ncap = imin((N + NR - 1) / NR * NR, NC);
    int space = borrow_space((size_t)kcap * (ncap + MC));
    real *bp = spaces[space].p, *ap = bp + (size_t)kcap * ncap;
    for (int jc = 0; jc < N; jc += NC) {
        int nc = imin(NC, N - jc), npan = (nc + NR - 1) / NR;
        // pc == 0 runs even when K == 0, so the output still gets its bias.
        for (int pc = 0; pc == 0 || pc < K; pc += KC) {
            int kc = imin(KC, K - pc), acc = accumulate || pc > 0;
            for (int ic = 0; ic < M; ic += MC) {
                int mc = imin(MC, M - ic), mpan = (mc + MR - 1) / MR;
                pack_panels(ap, a, ic, mc, pc, kc, MR);
                // One B panel at a time (72 KiB, more than L1: read from L1
                // and L2), packed on first use, while the A block streams
                // from L2. (Prefetching the next panel's source does not
                // help: docs/performance.md.)
                // With one A block, no panel is used twice: all go through
                // the same space, which stays in cache (a fresh one each
                // time would be fetched from memory only to be overwritten).
                for (int jp = 0; jp < npan; jp++) {
                    int j = jc + jp * NR;
                    real *b = bp + (M <= MC ? 0 : (size_t)jp * NR * kc);
                    if (ic == 0) pack_panels(b, bt, j, imin(NR, N - j), pc, kc, NR);
                    for (int ip = 0; ip < mpan; ip++) {
                        int i = ic + ip * MR;
                        if (a.cs != 1 && ic + MC < M) {
                            // A not contiguous along k (the weight gradient's
                            // doutᵀ: rows a whole row of dout apart, from memory):
                            // part (jp, ip) of the next A block's source into L2,
                            // so that packing it does not wait on memory.
                            int part = jp * mpan + ip, parts = npan * mpan, rows = imin(MC, M - ic - MC);
                            const real *src = a.p + (size_t)(ic + MC) * a.rs + (size_t)pc * a.cs;
                            for (int k = part * kc / parts; k < (part + 1) * kc / parts; k++)
                                for (int e = 0; e < rows; e += 64 / (int)sizeof(real))
                                    PREFETCH_L2(src + (size_t)k * a.cs + (size_t)e * a.rs);
                        }
                        micro_kernel(kc, ap + (size_t)ip * MR * kc, b, C + (size_t)i * ldc + j, ldc,
                                     imin(MR, M - i), imin(NR, N - j), acc, bias ? bias + j : NULL);
                    }
                }
            }
        }
    }
    return_space(space);
}

// The product cut into one slice per thread along the longer of M and N, in
// whole micro-tiles. Each thread packs what its slice needs (the shorter
// side's operand is packed by every thread, the cheaper duplicate) and runs
// without waiting for the others: no barriers, no packed block shared
// between cores' caches.
static void gemm(real *C, size_t ldc, View a, View bt, const real *bias,
                 int M, int N, int K, int accumulate) {
    int parts = n_threads(), by_cols = N >= M;
#ifdef _OPENMP
    if (omp_in_parallel()) parts = 1;   // a caller's thread: it has the others busy already
#endif
    int tile = by_cols ? NR : MR, tiles = ((by_cols ? N : M) + tile - 1) / tile;
    if (parts > tiles) parts = tiles;
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < parts; t++) {
        int lo = tiles * t / parts * tile, hi = imin(tiles * (t + 1) / parts * tile, by_cols ? N : M);
        if (by_cols)
            gemm_slice(C + lo, ldc, a, (View){bt.p + (size_t)lo * bt.rs, bt.rs, bt.cs}, bias ? bias + lo : NULL,
                       M, hi - lo, K, accumulate);
        else
            gemm_slice(C + (size_t)lo * ldc, ldc, (View){a.p + (size_t)lo * a.rs, a.rs, a.cs}, bt, bias,
                       hi - lo, N, K, accumulate);
    }
}

static void mat_product(Mat c, Mat a, Mat b, int accumulate) {
    if (a.rows != c.rows || b.cols != c.cols || a.cols != b.rows || c.cs != 1)
        die("matrix product: C (%d×%d) = A (%d×%d) · B (%d×%d) has mismatched shapes or a strided C", c.rows, c.cols,
            a.rows, a.cols, b.rows, b.cols);
    gemm(c.p, c.rs, (View){a.p, a.rs, a.cs}, (View){b.p, b.cs, b.rs}, NULL, c.rows, c.cols, a.cols, accumulate);
}

void mat_mul(Mat c, Mat a, Mat b) { mat_product(c, a, b, 0); }
void mat_mul_add(Mat c, Mat a, Mat b) { mat_product(c, a, b, 1); }

void matmul_forward(real *out, const real *inp, const real *weight, const real *bias,
                    int BT, int C, int OC) {
    double t0 = now_seconds();
    gemm(out, (size_t)OC, (View){inp, (size_t)C, 1}, (View){weight, (size_t)C, 1}, bias, BT, OC, C, 0);
    prof_add(PROF_MATMUL_FWD, t0);
}

void matmul_input_grad(real *dinp, const real *dout, const real *weight, int BT, int C, int OC) {
    gemm(dinp, (size_t)C, (View){dout, (size_t)OC, 1}, (View){weight, 1, (size_t)C}, NULL, BT, C, OC, 1);
}

void matmul_weight_grad(real *dweight, real *dbias, const real *dout, const real *inp,
                        int BT, int C, int OC) {
    gemm(dweight, (size_t)C, (View){dout, 1, (size_t)OC}, (View){inp, 1, (size_t)C}, NULL, OC, C, BT, 1);
    if (dbias) bias_backward(dbias, dout, BT, OC);
}

void matmul_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                     const real *inp, const real *weight, int BT, int C, int OC) {
    double t0 = now_seconds();
    matmul_input_grad(dinp, dout, weight, BT, C, OC);
    if (dweight) matmul_weight_grad(dweight, dbias, dout, inp, BT, C, OC);
    prof_add(PROF_MATMUL_BWD, t0);
}
