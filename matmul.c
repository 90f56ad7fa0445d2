// matmul.c — linear-layer products. See matmul.h for shapes and contracts.
#include "matmul.h"

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

void matmul_forward(real *out, const real *inp, const real *weight, const real *bias,
                    int BT, int C, int OC) {
    matmul_forward_ref(out, inp, weight, bias, BT, C, OC);
}

void matmul_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                     const real *inp, const real *weight, int BT, int C, int OC) {
    matmul_backward_ref(dinp, dweight, dbias, dout, inp, weight, BT, C, OC);
}
