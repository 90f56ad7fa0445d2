// attention_parts.h — what the two attention engines share (not part of the
// model's interface, which is attention.h).
#ifndef ATTENTION_PARTS_H
#define ATTENTION_PARTS_H

#include "attention.h"

// Which thread runs this iteration (0 without OpenMP): each thread has its
// own slice of the layer's scratch.
#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID omp_get_thread_num()
#else
#define THREAD_ID 0
#endif

// Softmax's scaled scores of query row i against keys 0..i of a head into
// s[0..i]; returns their max. The linear engine's distillation teacher uses it.
real softmax_row_scores(real *s, const HeadView *x, int i, int hs, real scale);

#endif
