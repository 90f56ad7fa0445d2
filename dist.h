// dist.h — the few collective operations data-parallel training needs: over
// MPI when built with `make MPI=1`, else their one-process versions (no MPI
// header or library involved). Only train.c calls them; nothing below it
// knows about ranks. docs/distributed.md explains the scheme.
#ifndef DIST_H
#define DIST_H

#include <stddef.h>

#include "common.h"

void dist_init(int *argc, char ***argv);
void dist_finish(void);
int dist_rank(void);   // 0 .. dist_size() − 1
int dist_size(void);
void dist_barrier(void);
// The largest x over the ranks (every rank gets it).
int dist_max_int(int x);
// root's bytes to every rank.
void dist_bcast(void *buf, size_t bytes, int root);
// Every rank's `bytes` bytes, in rank order, into all (size × bytes).
void dist_allgather(const void *mine, void *all, size_t bytes);
// The same for counts[r] doubles from rank r (different counts), in rank order.
void dist_allgather_doubles(const double *mine, double *all, const size_t *counts);

// Slices of a vector x of reals, rank r's being [bounds[r], bounds[r+1]):
// reduce-scatter: rank r gets the sum over ranks of everyone's slice r, in
// its own slice of x, added in a fixed order over ranks (the tree of
// model_accumulate, rank partials as its leaves); all-gather: every rank
// gets every slice; gather: root gets them into full (n = bounds[size]).
void dist_reduce_scatter(real *x, const size_t *bounds);
void dist_allgather_slices(real *x, const size_t *bounds);
void dist_gather_slices(const real *mine, real *full, const size_t *bounds, int root);

#endif
