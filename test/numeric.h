// test/numeric.h — the finite-difference derivative every gradient check uses.
#ifndef TEST_NUMERIC_H
#define TEST_NUMERIC_H

#include "../common.h"

// dL/dx by central differences at steps h and h/2, combined by Richardson
// extrapolation: the h² truncation term cancels, leaving O(h⁴) + rounding.
// loss(ctx) evaluates L with *x as it is; *x is restored.
static inline double numeric_grad(double (*loss)(void *), void *ctx, real *x, double h) {
    real saved = *x;
    double d[2];
    for (int k = 0; k < 2; k++) {
        double step = k ? h / 2 : h;
        *x = saved + (real)step;
        double lp = loss(ctx);
        *x = saved - (real)step;
        double lm = loss(ctx);
        d[k] = (lp - lm) / (2 * step);
    }
    *x = saved;
    return (4 * d[1] - d[0]) / 3;
}

#endif
