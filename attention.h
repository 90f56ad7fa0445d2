// attention.h — the interface every attention kind implements.
//
// The model hands one layer's fused projections qkv (B,T,3C) — per token the
// C query, C key and C value channels, head h at [h*hs, (h+1)*hs) of each —
// to a kind, and gets back y (B,T,C), the heads' outputs side by side. A kind
// owns its parameters (possibly none), untrained saved buffers (Performer's
// random features), the activations it saves for its backward, and scratch.
// The model allocates all of that from the sizes the kind reports and calls
// only through the table; adding a kind is one new section in attention.c and
// one row in the table.
#ifndef ATTENTION_H
#define ATTENTION_H

#include "common.h"
#include "config.h"

typedef struct {
    const Config *cfg;
    int layer;       // 0-based, used to derive per-layer random streams
    int C, NH, hs;   // width, heads, head size
    real *params;    // this layer's trained parameters (kind-private layout)
    real *grads;     // their gradients, same layout (accumulated with +=)
    real *buffers;   // untrained state saved in checkpoints
    real *acts;      // activations saved by forward for backward
    real *scratch;   // temporaries, shared by all layers, valid during one call
} AttnLayer;

typedef struct {
    const char *name;
    // Sizes, per layer. Parameters are laid out with the n_decay entries that
    // are 2-D weight matrices first (they get AdamW weight decay), then the rest.
    size_t (*n_params)(const Config *c);
    size_t (*n_decay)(const Config *c);
    size_t (*n_buffers)(const Config *c);
    size_t (*act_size)(const Config *c, int B, int T);
    size_t (*scratch_size)(const Config *c, int B, int T);
    // Initialise params and buffers (deterministically from rng / cfg->seed).
    void (*init)(AttnLayer *a, Rng *rng);
    // qkv (B,T,3C) -> y (B,T,C). Returns the distillation loss summed over
    // (b, h, i), or 0 for kinds without one / when distill_weight = 0.
    double (*forward)(AttnLayer *a, real *y, const real *qkv, int B, int T);
    // dy (B,T,C) -> dqkv (B,T,3C) (+=) and parameter gradients (+=).
    // distill_scale is dL/d(sum of distillation terms) (0 when off).
    void (*backward)(AttnLayer *a, real *dqkv, const real *dy, const real *qkv,
                     const real *y, int B, int T, double distill_scale);
    // Generation, one sequence: state_size(c, max_T) reals per layer, zeroed
    // before position 0; step takes the token at position pos: qkv (3C) -> y (C).
    size_t (*state_size)(const Config *c, int max_T);
    void (*step)(AttnLayer *a, real *state, real *y, const real *qkv, int pos);
    // Called at the start of every training step, step = optimizer steps
    // taken so far (e.g. Performer's redraw); may be NULL. At the start, not
    // after the update: evaluations and checkpoints between steps then see
    // the state the weights were trained with.
    void (*before_step)(AttnLayer *a, long step);
    // For analysis: the attention matrix of head h of sequence b, A (T,T)
    // row-major, A_ij for j <= i and 0 above the diagonal, from a forward's
    // qkv (B,T,3C). Slow and simple: it allocates what it needs.
    void (*weights)(AttnLayer *a, const real *qkv, int B, int T, int b, int h, real *A);
} AttnKind;

// The kind named by the config; exits with the list of kinds when unknown.
const AttnKind *attn_find(const char *name);
// All kinds, for tests and benchmarks: returns the count, sets *kinds.
int attn_kinds(const AttnKind *const **kinds);

#endif
