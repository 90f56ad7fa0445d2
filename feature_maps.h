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

// How the engine turns a map's output z (F reals) into the features phi.
typedef enum {
    PHI_Z,              // phi = z
    PHI_EXP,            // phi = exp(z), under shifts that cancel in A ("Features, stabilised")
    PHI_RELU,           // phi = max(z, 0)
    PHI_SOFTMAX_HALVES, // phi = [softmax(z[:F/2]), softmax(z[F/2:])]
    PHI_SOFTMAX,        // phi = softmax(z) over all F
} PhiOfZ;

struct FeatureMap {
    int (*n_features)(const Config *c);  // F
    // x (hs), a query or key of head h -> z (F), which `z_to_phi` below turns
    // into the features.
    void (*map)(const AttnLayer *a, Role role, int h, const real *x, real *z);
    // dz (F) at x -> dx (hs) += (skipped when dx is NULL) and dp += (parameter
    // gradients in the params layout; only maps with parameters use it).
    void (*map_backward)(const AttnLayer *a, Role role, int h, const real *x, const real *dz, real *dx, real *dp);
    // Optional: the same for n rows at once (x and dx rows ld apart, z and dz
    // n×F; dz is overwritten), as matrix products; the chunked form uses them.
    void (*map_rows)(const AttnLayer *a, Role role, int h, const real *x, size_t ld, int n, real *z);
    void (*map_backward_rows)(const AttnLayer *a, Role role, int h, const real *x, size_t ld, int n, real *dz,
                              real *dx, real *dp);
    PhiOfZ z_to_phi;
    // The config keys whose values change what the map's parameters and
    // buffers mean (space-separated): a checkpoint trained with other values
    // is another kind, loaded only by conversion.
    const char *settings;
    // Added to every row's denominator, in every form (T2R: its features can
    // all be zero). 0 for the maps whose features are positive.
    real den_eps;
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
extern const FeatureMap ELU_MAP, TAYLOR_MAP, PERFORMER_MAP, HEDGEHOG_MAP, HEDGEHOG_SOFTMAX_MAP, HEDGEHOG_JOINT_MAP,
    T2R_MAP;

// Head size d of a config.
static inline int head_size(const Config *c) { return c->n_embd / c->n_head; }

#endif
