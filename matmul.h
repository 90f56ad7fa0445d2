// matmul.h — the three products a linear layer needs, in one place so they
// can be made fast without touching the model.
//
//   forward:          out (BT,OC) = inp (BT,C) · weightᵀ (C,OC) + bias (OC)
//   input gradient:   dinp (BT,C)  += dout (BT,OC) · weight (OC,C)
//   weight gradient:  dweight (OC,C) += doutᵀ (OC,BT) · inp (BT,C);  dbias (OC) += Σ_rows dout
//
// weight is stored (OC, C) row-major as in GPT-2 / llm.c. bias and dbias may
// be NULL; so may dweight in the backward (a frozen layer: then only dinp).
// Every output element is computed by exactly one thread with a fixed
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

// Matrix views: the products inside attention, written as the maths.
// Element (i, j) of a view is p[i·rs + j·cs]; a view owns nothing, and
// mat_t flips one without moving data, so Aᵀ·B is mat_mul(C, mat_t(A), B).
typedef struct {
    real *p;
    int rows, cols;
    size_t rs, cs;   // strides between rows and between columns
} Mat;

// rows × cols, row-major, rows ld apart. (Read-only operands are viewed
// through the same type; the products never write to A or B.)
static inline Mat mat(const real *p, int rows, int cols, size_t ld) {
    return (Mat){(real *)p, rows, cols, ld, 1};
}
static inline Mat mat_t(Mat a) { return (Mat){a.p, a.cols, a.rows, a.cs, a.rs}; }

// C = A·B and C += A·B, on the linear layers' kernel (the same fixed
// summation order). C's columns must be contiguous (cs = 1). Called inside
// a parallel region, a product runs on the calling thread.
void mat_mul(Mat c, Mat a, Mat b);
void mat_mul_add(Mat c, Mat a, Mat b);

// The fast kernels keep their packing spaces between calls; this frees them
// all (call it before exit, outside any product, to leave nothing allocated).
void matmul_release(void);

// The plain triple loops: the reference the fast kernels are tested against.
void matmul_forward_ref(real *out, const real *inp, const real *weight, const real *bias,
                        int BT, int C, int OC);
void matmul_backward_ref(real *dinp, real *dweight, real *dbias, const real *dout,
                         const real *inp, const real *weight, int BT, int C, int OC);

#endif
