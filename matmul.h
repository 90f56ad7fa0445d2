// matmul.h — the three products a linear layer needs, in one place so they
// can be made fast without touching the model.
//
//   forward:          out (BT,OC) = inp (BT,C) · weightᵀ (C,OC) + bias (OC)
//   input gradient:   dinp (BT,C)  += dout (BT,OC) · weight (OC,C)
//   weight gradient:  dweight (OC,C) += doutᵀ (OC,BT) · inp (BT,C);  dbias (OC) += Σ_rows dout
//
// weight is stored (OC, C) row-major as in GPT-2 / llm.c. bias and dbias may
// be NULL. Every output element is computed by exactly one thread with a fixed
// summation order, so results are bitwise identical for any thread count.
#ifndef MATMUL_H
#define MATMUL_H

#include "common.h"

void matmul_forward(real *out, const real *inp, const real *weight, const real *bias,
                    int BT, int C, int OC);
void matmul_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                     const real *inp, const real *weight, int BT, int C, int OC);

// The two halves of matmul_backward, for callers (and benchmarks) that need
// only one: dinp += dout · weight, and dweight += doutᵀ · inp with dbias.
void matmul_input_grad(real *dinp, const real *dout, const real *weight, int BT, int C, int OC);
void matmul_weight_grad(real *dweight, real *dbias, const real *dout, const real *inp,
                        int BT, int C, int OC);

// The general product behind the three above, for operands given by strides:
// C (M,N) = A (M,K) · B (K,N), or C += that when `accumulate`, where A's
// element (i,k) is a[i·a_rs + k·a_cs], B's (k,j) is b[k·b_rs + j·b_cs] and C's
// rows are ldc apart (columns contiguous). Same kernel, same fixed summation
// order. Called from inside a parallel region it runs on the calling thread.
void matmul_strided(real *C, size_t ldc, const real *a, size_t a_rs, size_t a_cs,
                    const real *b, size_t b_rs, size_t b_cs, int M, int N, int K, int accumulate);

// The fast kernels keep their packing spaces between calls; this frees them
// all (call it before exit, outside any product, to leave nothing allocated).
void matmul_release(void);

// The plain triple loops: the reference the fast kernels are tested against.
void matmul_forward_ref(real *out, const real *inp, const real *weight, const real *bias,
                        int BT, int C, int OC);
void matmul_backward_ref(real *dinp, real *dweight, real *dbias, const real *dout,
                         const real *inp, const real *weight, int BT, int C, int OC);

#endif
