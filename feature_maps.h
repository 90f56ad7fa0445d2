// feature_maps.h — what a linear attention kind provides to the linear engine.
//
// Every linear kind computes A_ij = phi(q_i)·phi(k_j) / Σ_{j'<=i} phi(q_i)·phi(k_j')
// with its own feature map phi: head vector (hs) -> F non-negative features.
// The engine (attention_linear.c) does everything else — the three forms,
// the backward, generation, distillation — from the fields below, so a kind
// is its map (feature_maps.c) plus one row in attention.c's table.
#ifndef FEATURE_MAPS_H
#define FEATURE_MAPS_H

#include "attention.h"

typedef enum { QUERY, KEY } Role;

struct FeatureMap {
    int (*n_features)(const Config *c);  // F
    // x (hs) -> z (F): phi(x), or log phi(x) when exp_map (the engine then
    // subtracts its stabilising constants and exponentiates).
    void (*map)(const AttnLayer *a, Role role, const real *x, real *z);
    // dz (F) at x -> dx (hs) += (skipped when dx is NULL) and dp += (parameter
    // gradients in the params layout; only maps with parameters use it).
    void (*map_backward)(const AttnLayer *a, Role role, const real *x, const real *dz, real *dx, real *dp);
    // Optional: the same for n rows at once (x and dx rows ld apart, z and dz
    // n×F; dz is overwritten), as matrix products; the chunked form uses them.
    void (*map_rows)(const AttnLayer *a, Role role, const real *x, size_t ld, int n, real *z);
    void (*map_backward_rows)(const AttnLayer *a, Role role, const real *x, size_t ld, int n, real *dz, real *dx,
                              real *dp);
    int exp_map;
    int distill;  // Hedgehog's attention distillation applies
    // Optional shortcut: phi(q)·phi(k) = kernel(q·k/√d) (Taylor), returning
    // the kernel and its derivative in *dk. The quadratic form then scores
    // pairs from q·k (d multiply-adds) instead of from F features.
    real (*kernel)(real s, real *dk);
    // Per-layer sizes (parameters: the n_decay 2-D matrices first; NULL = 0),
    // initialisation, and the hook at the start of every training step (all
    // optional).
    size_t (*n_params)(const Config *c);
    size_t (*n_decay)(const Config *c);
    size_t (*n_buffers)(const Config *c);
    void (*init)(AttnLayer *a, Rng *rng);
    void (*before_step)(AttnLayer *a, long step);
};

// The maps of feature_maps.c.
extern const FeatureMap ELU_MAP, TAYLOR_MAP, PERFORMER_MAP, HEDGEHOG_MAP;

// Head size d of a config.
static inline int head_size(const Config *c) { return c->n_embd / c->n_head; }

#endif
