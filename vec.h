// vec.h — the vector-extension setup shared by the matmul kernel and the FMA
// peak probe, so both run the same instructions and their ratio is fair.
//
// Include it in a .c file only (it sets floating-point contraction for the
// rest of that file). GCC leaves multiply-adds unfused in ISO C mode and Clang
// splits 512-bit vectors into halves unless told otherwise; both would undo
// the point of a hand-blocked kernel. VEC_BYTES is the widest vector the
// target has; compilers without vector extensions get scalars (VEC_SCALAR).
#ifndef VEC_H
#define VEC_H

#if defined(__clang__)
#pragma clang fp contract(fast)
#define WIDE_VECTORS __attribute__((min_vector_width(512)))
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#define WIDE_VECTORS
#else
#define WIDE_VECTORS
#endif

#if defined(__AVX512F__)
#define VEC_BYTES 64
#elif defined(__AVX__)
#define VEC_BYTES 32
#else
#define VEC_BYTES 16
#endif

#if !defined(__GNUC__)
#define VEC_SCALAR 1
#endif

#endif
