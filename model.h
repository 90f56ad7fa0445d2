// model.h — GPT-2: parameter layout, activations, forward/backward, AdamW,
// generation. The maths of every layer is in model.c (docs/gpt2.md derives
// it), attention in attention.c, checkpoints in checkpoint.c.
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#include "attention.h"
#include "common.h"
#include "config.h"

// The parameter tensors, in checkpoint order (the first 16 are llm.c's order).
enum {
    P_WTE,      // (Vp, C)    token embedding, tied to the LM head
    P_WPE,      // (seq_len, C) learned positions
    P_LN1W,     // (L, C)
    P_LN1B,     // (L, C)
    P_QKVW,     // (L, 3C, C)
    P_QKVB,     // (L, 3C)
    P_ATTPROJW, // (L, C, C)
    P_ATTPROJB, // (L, C)
    P_LN2W,     // (L, C)
    P_LN2B,     // (L, C)
    P_FCW,      // (L, 4C, C)
    P_FCB,      // (L, 4C)
    P_FCPROJW,  // (L, C, 4C)
    P_FCPROJB,  // (L, C)
    P_LNFW,     // (C)
    P_LNFB,     // (C)
    P_ATTN,     // (L, n_attn)  the attention kind's own parameters
    N_PARAM_TENSORS
};
// Their names, as error messages and docs/checkpoint-format.md spell them.
extern const char *const param_names[N_PARAM_TENSORS];

enum { ACC_MAX = 32 };   // gradient accumulation: up to 2^31 micro-batches a step

typedef struct {
    Config cfg;
    const AttnKind *attn;
    int L, C, NH, hs, V, Vp, maxT;

    // One buffer per role, the same layout in each; tensors carved by pointer.
    size_t n_params, sizes[N_PARAM_TENSORS], n_attn;
    real *params, *grads, *m, *v;
    real *p[N_PARAM_TENSORS], *g[N_PARAM_TENSORS];
    // The parameters the optimizer updates (all, or with trainable =
    // feature_maps the attention's own tensor): [train_lo, train_hi), as runs
    // with one weight-decay setting each (a few dozen), so the optimizer
    // streams through them with no per-parameter mask.
    size_t train_lo, train_hi;
    struct DecayRun { size_t off, n; int decay; } *runs;
    int n_runs;
    // The optimizer's share [opt_lo, opt_hi) of the trainable range: all of
    // it in one process, a slice per rank in data-parallel training. AdamW's
    // moments m, v hold this share only (m[i − opt_lo] for parameter i).
    size_t opt_lo, opt_hi;
    // Gradient accumulation (model_accumulate): partial sums of 1, 2, 4, ...
    // micro-batches' gradients, and zeroed buffers to reuse.
    real *acc[ACC_MAX], *spare[ACC_MAX + 1];
    long acc_count[ACC_MAX];
    int n_acc, n_spare;
    size_t n_buffers;               // untrained attention state, L blocks
    real *buffers;
    long step;                      // optimizer steps taken

    // Activations for a (B, T) batch, allocated on first forward (N = B·T).
    // Per-layer arrays hold L blocks; block_acts() views one layer's.
    int B, T;
    real *encoded;                  // (N,C)     embeddings: the first block's input
    real *ln1, *ln1_mean, *ln1_rstd;// (L,N,C), (L,N), (L,N)
    real *qkv;                      // (L,N,3C)
    real *atty;                     // (L,N,C)   attention output, before its projection
    real *attn_acts;                // (L, attn_act_size)
    real *residual2;                // (L,N,C)   after attention's residual
    real *ln2, *ln2_mean, *ln2_rstd;
    real *fch, *fch_gelu;           // (L,N,4C)
    real *residual3;                // (L,N,C)   after the MLP's residual: the block's output
    real *lnf, *lnf_mean, *lnf_rstd;// (N,C), (N), (N)
    real *logits;                   // (N,Vp): logits, then probabilities, then their gradient
    real *losses;                   // (N)
    real *attn_scratch;             // shared by all layers
    real *ln_partial;               // layernorm backward's per-chunk partial sums
    // Backward temporaries, reused by every layer: the gradients of the
    // residual stream, of a layernorm's output, of the MLP's hidden layer
    // before and after GELU, of qkv and of the attention output.
    real *dresidual, *dln, *dfch, *dfch_gelu, *dqkv, *datty;
    int *tokens, *targets;          // of the last forward (N each), for backward

    double loss, lm_loss, distill_loss;  // of the last forward
    int n_scored;                   // its targets other than NO_TARGET: lm_loss's denominator
    AttnLayer *alayer;              // L views, rebuilt when activations move
} GPT2;

// Build a freshly initialised model from cfg (weights from cfg->seed).
void model_init(GPT2 *m, const Config *cfg);
void model_free(GPT2 *m);

// Forward: tokens (B,T) -> m->loss = lm_weight·lm_loss + distill_weight·distill_loss
// (lm_loss: the mean cross-entropy over the positions whose target is not
// NO_TARGET — a loss mask's unscored positions; 0 when there are none).
// targets may be NULL (logits only, loss not computed).
void model_forward(GPT2 *m, const int *tokens, const int *targets, int B, int T);
// Backward of the last forward, accumulating into m->grads scaled by
// grad_scale (1/grad_accum for gradient accumulation).
void model_backward(GPT2 *m, double grad_scale);
void model_zero_grad(GPT2 *m);
// Allocate AdamW's moments now (the first update or a resume does it anyway).
void model_need_moments(GPT2 *m);
// Start of a training step: the attention kind's per-step hook (Performer's
// feature redraw), before the step's first forward.
void model_begin_step(GPT2 *m);
// With grad_accum > 1: after each micro-batch's backward (into gradients
// that were zero before it) file its gradient into the step's sum; after the
// last, model_accumulate_finish leaves the sum in m->grads. The order of the
// additions depends on the number of micro-batches alone (model.c).
void model_accumulate(GPT2 *m);
void model_accumulate_finish(GPT2 *m);
// Global L2 norm of the trainable parameters' gradients (fixed summation order).
double model_grad_norm(const GPT2 *m);
// The same in parts: the squared norm of each 65536-parameter chunk of
// [lo, hi) (a share from model_shard), in order; returns their count (parts
// NULL: only that). The norm is the root of all chunks' parts summed in
// order, so ranks can each compute their share's.
size_t model_grad_norm_parts(const GPT2 *m, size_t lo, size_t hi, double *parts);
// Part r of n of the trainable range, cut at those chunks' boundaries: the
// share of rank r of n; model_set_shard makes it this model's (before its
// moments exist: before the first update or a resume).
void model_shard(const GPT2 *m, int n, int r, size_t *lo, size_t *hi);
void model_set_shard(GPT2 *m, size_t lo, size_t hi);
// Learning rate at `step`: linear warm-up, cosine decay to min_lr at max_steps.
double model_lr(const Config *c, long step);
// One AdamW update with learning rate lr, the gradients first scaled down to
// cfg.grad_clip when grad_norm (from model_grad_norm) is larger. Leaves the
// gradients zeroed for the next step; increments m->step.
void model_adamw(GPT2 *m, double lr, double grad_norm);

// Generation, one sequence, one token at a time: a GenState from
// model_state_alloc (a fresh one per sequence; model_state_free it) holds
// each layer's recurrent attention state. model_step takes the token at
// position pos (0, 1, 2, ... < seq_len); logits (Vp) get the next-token logits.
typedef struct GenState GenState;
GenState *model_state_alloc(GPT2 *m);
void model_state_free(GenState *s);
void model_step(GPT2 *m, GenState *s, int token, int pos, real *logits);

// Peak memory of a model of this config, in bytes, before allocating it:
// parameters and (when training) gradients and AdamW moments, the
// activations of a (B, T) batch and attention's scratch.
typedef struct { double params, grads, moments, activations, attention, total; } MemoryEstimate;
MemoryEstimate model_memory(const Config *c, int B, int T, int training);

// The layers, exposed for the gradient-check tests. Shapes in model.c.
void encoder_forward(real *out, const int *tokens, const real *wte, const real *wpe, int B, int T, int C);
void encoder_backward(real *dwte, real *dwpe, const real *dout, const int *tokens, int B, int T, int C);
void layernorm_forward(real *out, real *mean, real *rstd, const real *inp, const real *w, const real *b, int N, int C);
size_t layernorm_scratch_size(int N, int C);
void layernorm_backward(real *dinp, real *dw, real *db, real *partial, const real *dout, const real *inp,
                        const real *w, const real *mean, const real *rstd, int N, int C);
void gelu_forward(real *out, const real *inp, size_t N);
void gelu_backward(real *dinp, const real *inp, const real *dout, size_t N);
void residual_forward(real *out, const real *a, const real *b, size_t N);
void softmax_xent_forward(real *losses, real *logits, const int *targets, int N, int V, int Vp);
void softmax_xent_backward(real *probs, const int *targets, real dloss, int N, int Vp);

#endif
