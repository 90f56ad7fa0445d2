// attention.h — what the model asks of an attention layer, whatever its kind.
//
// The model hands one layer's fused projections qkv (B,T,3C) — per token the
// C query, C key and C value channels, head h at [h*hs, (h+1)*hs) of each —
// to the layer and gets back y (B,T,C), the heads' outputs side by side. A
// kind owns its trained parameters (possibly none), untrained buffers saved
// in checkpoints (Performer's random features), the activations its backward
// needs, and scratch. The model allocates all of that from the sizes below
// and never asks which kind it has.
//
// Where the code is (start reading at attention.c):
//   attention.c           the table of kinds, and these functions
//   attention_softmax.c   the softmax engine (flash-style, no T×T matrix)
//   attention_linear.c    the linear engine: quadratic, chunked and recurrent
//                         forms, and the distillation loss
//   feature_maps.c        the linear kinds' feature maps, one section each
//
// Adding a linear kind (docs/attention.md walks through one):
//   1. a section in feature_maps.c: its map, the map's backward, and, when it
//      has parameters or buffers, their sizes and initialisation — filled
//      into one `const FeatureMap NAME_MAP` (feature_maps.h lists the fields);
//   2. `extern const FeatureMap NAME_MAP;` in feature_maps.h;
//   3. one row {"name", NULL, &LINEAR_ENGINE, &NAME_MAP} in attention.c's KINDS.
// The name then works everywhere: config validation and --help take the list
// of kinds from the table, and so do the tests that run every kind.
#ifndef ATTENTION_H
#define ATTENTION_H

#include "common.h"
#include "config.h"

typedef struct AttnKind AttnKind;

// One layer's attention: its kind, shapes, and where its memory lives.
typedef struct {
    const AttnKind *kind;
    const Config *cfg;
    int layer;       // 0-based, used to derive per-layer random streams
    int C, NH, hs;   // width, heads, head size
    real *params;    // this layer's trained parameters (kind-private layout)
    real *grads;     // their gradients, same layout (accumulated with +=)
    real *buffers;   // untrained state saved in checkpoints
    real *acts;      // activations saved by forward for backward
    real *scratch;   // temporaries, shared by all layers, valid during one call
} AttnLayer;

// An engine computes attention for every kind built on it (softmax has its
// own; the linear kinds share one and differ only in their feature map).
typedef struct {
    // Per layer, in reals: what forward saves for backward, and scratch.
    size_t (*act_size)(const AttnKind *k, const Config *c, int B, int T);
    size_t (*scratch_size)(const AttnKind *k, const Config *c, int B, int T);
    double (*forward)(AttnLayer *a, real *y, const real *qkv, int B, int T);
    void (*backward)(AttnLayer *a, real *dqkv, const real *dy, const real *qkv, const real *y, int B, int T,
                     double distill_scale);
    size_t (*state_size)(const AttnKind *k, const Config *c, int max_T);
    void (*step)(AttnLayer *a, real *state, real *y, const real *qkv, int pos);
    void (*weights)(AttnLayer *a, const real *qkv, int B, int T, int b, int h, real *A);
} AttnEngine;

typedef struct FeatureMap FeatureMap;   // feature_maps.h

// The two engines (attention_softmax.c, attention_linear.c).
extern const AttnEngine SOFTMAX_ENGINE, LINEAR_ENGINE;

// A row of the table of kinds (attention.c).
struct AttnKind {
    const char *name;           // the value of `attention`
    const char *variant;        // the value of `hedgehog_map` this row is for, or NULL
    const AttnEngine *engine;
    const FeatureMap *map;      // linear kinds: the feature map; softmax: NULL
};

// The kind a config asks for; exits with the list of kinds when unknown.
const AttnKind *attn_find(const Config *c);
// All rows of the table, for tests and benchmarks: returns the count.
int attn_kinds(const AttnKind *const **kinds);
// The kind names as "softmax|elu|..." (the config's choices for `attention`).
const char *attn_kind_names(void);
// NULL when configs a and b give the same attention: the same kind and the
// same values of the settings its parameters' meaning depends on. Else the
// first difference, as "key = a's value", in buf.
const char *attn_difference(const Config *a, const Config *b, char *buf, size_t n);

// Sizes, per layer, in reals. Parameters are laid out with the n_decay
// entries that are 2-D weight matrices first (they get AdamW weight
// decay), then the rest.
size_t attn_n_params(const AttnKind *k, const Config *c);
size_t attn_n_decay(const AttnKind *k, const Config *c);
size_t attn_n_buffers(const AttnKind *k, const Config *c);
size_t attn_act_size(const AttnKind *k, const Config *c, int B, int T);
size_t attn_scratch_size(const AttnKind *k, const Config *c, int B, int T);

// Initialise params and buffers (deterministically from rng / cfg->seed).
void attn_init(AttnLayer *a, Rng *rng);
// qkv (B,T,3C) -> y (B,T,C). Returns the distillation loss summed over
// (b, h, i) when distill_weight > 0 (linear kinds), else 0.
double attn_forward(AttnLayer *a, real *y, const real *qkv, int B, int T);
// dy (B,T,C) -> dqkv (B,T,3C) += and parameter gradients +=. distill_scale
// is dL/d(sum of distillation terms) (0 when off). dy may be NULL: then only
// the distillation's gradient is taken (dqkv is then not written unless
// distill_qk_grad = 1).
void attn_backward(AttnLayer *a, real *dqkv, const real *dy, const real *qkv, const real *y, int B, int T,
                   double distill_scale);
// Generation, one sequence: attn_state_size(k, c, max_T) reals per layer,
// zeroed before position 0; step takes the token at position pos:
// qkv (3C) -> y (C).
size_t attn_state_size(const AttnKind *k, const Config *c, int max_T);
void attn_step(AttnLayer *a, real *state, real *y, const real *qkv, int pos);
// At the start of every training step, step = optimizer steps taken so far
// (Performer's redraw). At the start, not after the update: evaluations and
// checkpoints between steps then see the state the weights were trained with.
void attn_before_step(AttnLayer *a, long step);
// For analysis: the attention matrix of head h of sequence b, A (T,T)
// row-major, A_ij for j <= i and 0 above the diagonal, from a forward's qkv
// (B,T,3C). Slow and simple: it allocates what it needs.
void attn_weights(AttnLayer *a, const real *qkv, int B, int T, int b, int h, real *A);

// One head of one sequence inside the (B,T,3C) and (B,T,C) arrays: row t of
// its queries is q + t·ld (hs reals), likewise its keys and values; row t of
// its output is y + t·ldy. The same view of dqkv and dy gives the rows of
// the gradients. The engines read and write heads only through views.
typedef struct {
    real *q, *k, *v, *y;
    size_t ld, ldy;
} HeadView;

static inline HeadView head_view(const real *qkv, const real *y, int b, int h, int T, int C, int hs) {
    if (!qkv) return (HeadView){NULL, NULL, NULL, NULL, 3 * (size_t)C, (size_t)C};   // no gradient wanted
    real *q = (real *)qkv + (size_t)b * T * 3 * C + (size_t)h * hs;
    real *yh = y ? (real *)y + (size_t)b * T * C + (size_t)h * hs : NULL;
    return (HeadView){q, q + C, q + 2 * (size_t)C, yh, 3 * (size_t)C, (size_t)C};
}

#endif
