// dist.c — data-parallel collectives over MPI, or for one process. See dist.h.
#include "dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef HH_MPI
#include <mpi.h>

#ifdef REAL_DOUBLE
#define MPI_REAL_T MPI_DOUBLE
#else
#define MPI_REAL_T MPI_FLOAT
#endif

// Sum of n vectors parts[0..n) of len reals, into parts[0], in the order
// S(0, n) = S(0, p) + S(p, n − p), p the largest power of two below n: the
// order model_accumulate adds micro-batches in, so that rank partials made of
// power-of-two micro-batch counts combine into exactly one process's sum.
static void tree_sum(real *const *parts, int n, size_t len) {
    if (n < 2) return;
    int p = 1;
    while (p * 2 < n) p *= 2;
    tree_sum(parts, p, len);
    tree_sum(parts + p, n - p, len);
    real *left = parts[0];
    const real *right = parts[p];
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < len; i++) left[i] += right[i];
}

static int rank_, size_ = 1;

static int as_int(size_t n, const char *what) {
    if (n > INT_MAX) die("%s: %zu elements, more than one MPI call carries (%d)", what, n, INT_MAX);
    return (int)n;
}

void dist_init(int *argc, char ***argv) {
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

void dist_finish(void) { MPI_Finalize(); }
int dist_rank(void) { return rank_; }
int dist_size(void) { return size_; }
void dist_barrier(void) { MPI_Barrier(MPI_COMM_WORLD); }

int dist_max_int(int x) {
    int y;
    MPI_Allreduce(&x, &y, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return y;
}

void dist_bcast(void *buf, size_t bytes, int root) {
    MPI_Bcast(buf, as_int(bytes, "broadcast"), MPI_BYTE, root, MPI_COMM_WORLD);
}

void dist_allgather(const void *mine, void *all, size_t bytes) {
    MPI_Allgather(mine, as_int(bytes, "all-gather"), MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
}

void dist_allgather_doubles(const double *mine, double *all, const size_t *counts) {
    int *cnt = xmalloc((size_t)size_ * 2 * sizeof(int), "counts"), *off = cnt + size_;
    for (int r = 0, o = 0; r < size_; o += cnt[r], r++) cnt[r] = as_int(counts[r], "all-gather"), off[r] = o;
    MPI_Allgatherv(mine, cnt[rank_], MPI_DOUBLE, all, cnt, off, MPI_DOUBLE, MPI_COMM_WORLD);
    free(cnt);
}

// counts and offsets of the slices, in elements, for the v-collectives
static int *slice_layout(const size_t *bounds, int **off) {
    int *cnt = xmalloc((size_t)size_ * 2 * sizeof(int), "counts");
    *off = cnt + size_;
    for (int r = 0; r < size_; r++) {
        cnt[r] = as_int(bounds[r + 1] - bounds[r], "slice");
        (*off)[r] = as_int(bounds[r], "slice offset");
    }
    return cnt;
}

void dist_reduce_scatter(real *x, const size_t *bounds) {
    if (size_ == 1) return;
    size_t mine = bounds[rank_ + 1] - bounds[rank_];
    // Every rank's copy of my slice, side by side, then summed in tree order.
    real *recv = xmalloc((size_t)size_ * mine * sizeof(real) + 1, "reduce-scatter");
    int *off, *cnt = slice_layout(bounds, &off);
    int *rcnt = xmalloc((size_t)size_ * 2 * sizeof(int), "counts"), *roff = rcnt + size_;
    for (int r = 0; r < size_; r++) rcnt[r] = (int)mine, roff[r] = r * (int)mine;
    as_int((size_t)size_ * mine, "reduce-scatter");
    MPI_Alltoallv(x, cnt, off, MPI_REAL_T, recv, rcnt, roff, MPI_REAL_T, MPI_COMM_WORLD);
    real **parts = xmalloc((size_t)size_ * sizeof(real *), "parts");
    for (int r = 0; r < size_; r++) parts[r] = recv + (size_t)r * mine;
    tree_sum(parts, size_, mine);
    memcpy(x + bounds[rank_], recv, mine * sizeof(real));
    free(parts);
    free(rcnt);
    free(cnt);
    free(recv);
}

void dist_allgather_slices(real *x, const size_t *bounds) {
    if (size_ == 1) return;
    int *off, *cnt = slice_layout(bounds, &off);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, cnt, off, MPI_REAL_T, MPI_COMM_WORLD);
    free(cnt);
}

void dist_gather_slices(const real *mine, real *full, const size_t *bounds, int root) {
    int *off, *cnt = slice_layout(bounds, &off);
    MPI_Gatherv(mine, cnt[rank_], MPI_REAL_T, full, cnt, off, MPI_REAL_T, root, MPI_COMM_WORLD);
    free(cnt);
}

#else  // one process: every collective is a copy, or nothing

void dist_init(int *argc, char ***argv) { (void)argc; (void)argv; }
void dist_finish(void) {}
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
void dist_barrier(void) {}
int dist_max_int(int x) { return x; }
void dist_bcast(void *buf, size_t bytes, int root) { (void)buf; (void)bytes; (void)root; }
void dist_allgather(const void *mine, void *all, size_t bytes) { memmove(all, mine, bytes); }
void dist_allgather_doubles(const double *mine, double *all, const size_t *counts) {
    memmove(all, mine, counts[0] * sizeof(double));
}
void dist_reduce_scatter(real *x, const size_t *bounds) {
    (void)x; (void)bounds;
}
void dist_allgather_slices(real *x, const size_t *bounds) { (void)x; (void)bounds; }
void dist_gather_slices(const real *mine, real *full, const size_t *bounds, int root) {
    (void)root;
    memmove(full + bounds[0], mine, (bounds[1] - bounds[0]) * sizeof(real));
}

#endif
