// model.c — GPT-2, layer by layer. Each layer's forward sits beside its
// backward, shapes in the comment above them; docs/gpt2.md derives the maths.
//
// Conventions: N = B*T rows; a backward ADDS (+=) into the gradients of its
// inputs and parameters, so the caller zeroes what must start at zero. Every
// reduction runs in an order fixed by the shapes alone, never by the thread
// count, so a run is bitwise identical with 1 or 2 (or 64) threads. Each
// layer's function adds its own time to prof_seconds (bench_train's table).
#include "model.h"
#include "matmul.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-5
#define LN_CHUNK 32   // rows per partial sum in layernorm_backward

// ---------------------------------------------------------------------------
// Embedding: out[b,t] = wte[tokens[b,t]] + wpe[t]
// tokens (B,T), wte (Vp,C), wpe (maxT,C) -> out (B,T,C)
void encoder_forward(real *out, const int *tokens, const real *wte, const real *wpe, int B, int T, int C) {
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const real *te = wte + (size_t)tokens[bt] * C, *pe = wpe + (size_t)(bt % T) * C;
        real *o = out + (size_t)bt * C;
        for (int c = 0; c < C; c++) o[c] = te[c] + pe[c];
    }
    prof_add(PROF_OTHER, t0);
}

// dout (B,T,C) -> dwte (Vp,C) +=, dwpe (maxT,C) +=.
// Threads split the channels, so two tokens with the same id never race and
// each row is summed in token order.
void encoder_backward(real *dwte, real *dwpe, const real *dout, const int *tokens, int B, int T, int C) {
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int bt = 0; bt < B * T; bt++) {
            real d = dout[(size_t)bt * C + c];
            dwte[(size_t)tokens[bt] * C + c] += d;
            dwpe[(size_t)(bt % T) * C + c] += d;
        }
    prof_add(PROF_OTHER, t0);
}

// ---------------------------------------------------------------------------
// LayerNorm over channels: out = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps)
// inp (N,C), w (C), b (C) -> out (N,C), mean (N), rstd (N)
void layernorm_forward(real *out, real *mean, real *rstd, const real *inp, const real *w, const real *b, int N, int C) {
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        double mu = row_sum(x, C, 0, 0) / C;
        real r = (real)(1.0 / sqrt(row_sum(x, C, (real)mu, 1) / C + LN_EPS));
        real *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = ((x[c] - (real)mu) * r) * w[c] + b[c];
        mean[n] = (real)mu;
        rstd[n] = r;
    }
    prof_add(PROF_LAYERNORM, t0);
}

// Scratch floats layernorm_backward needs for N rows of C channels.
size_t layernorm_scratch_size(int N, int C) { return (size_t)((N + LN_CHUNK - 1) / LN_CHUNK) * 2 * C; }

// With x̂ = (x - mean)·rstd and g = dout·w:
//   dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)),  dw += Σ_n dout·x̂,  db += Σ_n dout
// dout (N,C) -> dinp (N,C) +=, dw (C) +=, db (C) +=. partial: layernorm_scratch_size.
void layernorm_backward(real *dinp, real *dw, real *db, real *partial, const real *dout, const real *inp,
                        const real *w, const real *mean, const real *rstd, int N, int C) {
    double t0 = now_seconds();
    int n_chunks = (N + LN_CHUNK - 1) / LN_CHUNK;
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < n_chunks; k++) {
        real *pw = partial + (size_t)k * 2 * C, *pb = pw + C;
        memset(pw, 0, 2 * (size_t)C * sizeof(real));
        for (int n = k * LN_CHUNK; n < N && n < (k + 1) * LN_CHUNK; n++) {
            const real *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            real *dx = dinp + (size_t)n * C;
            real mu = mean[n], r = rstd[n];
            real ga[CHAINS] = {0}, gxa[CHAINS] = {0};   // Σ g and Σ g·x̂ in CHAINS chains (common.h)
            double g_mean = 0, gx_mean = 0;
            int i = 0;
            for (; i + CHAINS <= C; i += CHAINS)
                for (int l = 0; l < CHAINS; l++) {
                    real g = d[i + l] * w[i + l];
                    ga[l] += g;
                    gxa[l] += g * (x[i + l] - mu) * r;
                }
            for (; i < C; i++) {
                g_mean += d[i] * w[i];
                gx_mean += d[i] * w[i] * (x[i] - mu) * r;
            }
            for (int l = 0; l < CHAINS; l++) g_mean += ga[l], gx_mean += gxa[l];
            g_mean /= C;
            gx_mean /= C;
            for (int c = 0; c < C; c++) {
                real xh = (x[c] - mu) * r;
                dx[c] += r * (d[c] * w[c] - (real)g_mean - xh * (real)gx_mean);
                pw[c] += d[c] * xh;
                pb[c] += d[c];
            }
        }
    }
    // Combine the per-chunk partials in chunk order: the same sum for any
    // thread count. (dw NULL: a frozen layernorm, only dinp wanted.)
    if (dw) {
        #pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            real sw = 0, sb = 0;
            for (int k = 0; k < n_chunks; k++) {
                sw += partial[(size_t)k * 2 * C + c];
                sb += partial[(size_t)k * 2 * C + C + c];
            }
            dw[c] += sw;
            db[c] += sb;
        }
    }
    prof_add(PROF_LAYERNORM, t0);
}

// ---------------------------------------------------------------------------
// GELU, tanh approximation (GPT-2): gelu(x) = x/2 · (1 + tanh(u)), u = √(2/π)(x + 0.044715 x³)
// inp (N) -> out (N)
#define GELU_K 0.7978845608028654  // √(2/π)

// tanh u = 1 − 2/(e^{2u} + 1), through the vectorisable exp_r: libm's tanhf
// is a scalar call, which keeps the loop from vectorising.
static inline real tanh_r(real u) { return 1 - 2 / (exp_r(2 * u) + 1); }
void gelu_forward(real *out, const real *inp, size_t N) {
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        real x = inp[i];
        out[i] = (real)0.5 * x * (1 + tanh_r((real)GELU_K * (x + (real)0.044715 * x * x * x)));
    }
    prof_add(PROF_GELU, t0);
}

// d gelu/dx = (1 + tanh u)/2 + x/2 · (1 − tanh² u) · √(2/π)(1 + 3·0.044715 x²)
// dout (N) -> dinp (N) =  (overwrites: the MLP's hidden gradient has no other source)
void gelu_backward(real *dinp, const real *inp, const real *dout, size_t N) {
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        real x = inp[i];
        real th = tanh_r((real)GELU_K * (x + (real)0.044715 * x * x * x));
        real du = (real)GELU_K * (1 + 3 * (real)0.044715 * x * x);
        dinp[i] = dout[i] * ((real)0.5 * (1 + th) + (real)0.5 * x * (1 - th * th) * du);
    }
    prof_add(PROF_GELU, t0);
}

// ---------------------------------------------------------------------------
// Residual: out = a + b. Its backward is the identity into both inputs, so the
// model keeps one gradient stream (dresidual) that each branch reads and the
// layernorm below adds into; no copy is needed.
// a (N), b (N) -> out (N)
void residual_forward(real *out, const real *a, const real *b, size_t N) {
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
    prof_add(PROF_OTHER, t0);
}

// ---------------------------------------------------------------------------
// Softmax + cross-entropy, fused. Only the first V of Vp columns are real
// tokens: padding gets probability 0 and no gradient.
// logits (N,Vp) -> probs (N,Vp) in place, losses (N) = −log probs[target]
// (0 where the target is NO_TARGET: a position the loss does not score)
void softmax_xent_forward(real *losses, real *logits, const int *targets, int N, int V, int Vp) {
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        real *z = logits + (size_t)n * Vp;
        real mx = row_max(z, V);
        // −log p_t = log Σ exp(z − max) − (z_t − max): finite even when p_t underflows.
        real zt = targets[n] == NO_TARGET ? 0 : z[targets[n]] - mx;
        double sum = exp_shift_sum(z, V, mx);
        real inv = (real)(1.0 / sum);
        for (int i = 0; i < V; i++) z[i] *= inv;
        for (int i = V; i < Vp; i++) z[i] = 0;
        losses[n] = targets[n] == NO_TARGET ? 0 : (real)(log(sum) - zt);
    }
    prof_add(PROF_LOSS, t0);
}

// dlogits = (probs − onehot(target)) · dloss, in place over probs; dloss is
// the same for every row (the mean's 1/N times the caller's scale); 0 for
// the rows whose target is NO_TARGET.
void softmax_xent_backward(real *probs, const int *targets, real dloss, int N, int Vp) {
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        real *p = probs + (size_t)n * Vp;
        if (targets[n] == NO_TARGET) {
            memset(p, 0, (size_t)Vp * sizeof *p);
            continue;
        }
        p[targets[n]] -= 1;
        for (int i = 0; i < Vp; i++) p[i] *= dloss;
    }
    prof_add(PROF_LOSS, t0);
}

// ---------------------------------------------------------------------------
// Parameters: sizes, carving, initialisation

const char *const param_names[N_PARAM_TENSORS] = {"wte", "wpe", "ln1.w", "ln1.b", "qkv.w", "qkv.b", "attproj.w",
    "attproj.b", "ln2.w", "ln2.b", "fc.w", "fc.b", "fcproj.w", "fcproj.b", "lnf.w", "lnf.b", "attention"};

static int padded_vocab(int V) { return (V + 127) / 128 * 128; }  // as llm.c: a faster LM head, and its checkpoints load

static void param_sizes(const Config *c, const AttnKind *k, size_t *s, int Vp) {
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd;
    s[P_WTE] = (size_t)Vp * C;
    s[P_WPE] = (size_t)c->seq_len * C;
    s[P_LN1W] = s[P_LN1B] = s[P_ATTPROJB] = s[P_LN2W] = s[P_LN2B] = s[P_FCPROJB] = L * C;
    s[P_QKVW] = L * 3 * C * C;
    s[P_QKVB] = L * 3 * C;
    s[P_ATTPROJW] = L * C * C;
    s[P_FCW] = s[P_FCPROJW] = L * 4 * C * C;
    s[P_FCB] = L * 4 * C;
    s[P_LNFW] = s[P_LNFB] = C;
    s[P_ATTN] = L * attn_n_params(k, c);
}

// Fill n reals with N(0, std²), in order, from rng.
static void fill_normal(real *x, size_t n, double std, Rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = (real)(std * rng_normal(rng));
}

static void fill_const(real *x, size_t n, real v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

static void bind_attention(GPT2 *m) {
    for (int l = 0; l < m->L; l++) {
        AttnLayer *a = &m->alayer[l];
        a->kind = m->attn;
        a->cfg = &m->cfg;
        a->layer = l;
        a->C = m->C;
        a->NH = m->NH;
        a->hs = m->hs;
        a->params = m->p[P_ATTN] + (size_t)l * m->n_attn;
        a->grads = m->g[P_ATTN] ? m->g[P_ATTN] + (size_t)l * m->n_attn : NULL;
        a->buffers = m->buffers + (size_t)l * attn_n_buffers(m->attn, &m->cfg);
        a->acts = m->attn_acts ? m->attn_acts + (size_t)l * attn_act_size(m->attn, &m->cfg, m->B, m->T) : NULL;
        a->scratch = m->attn_scratch;
    }
}

// AdamW decays 2-D weight matrices (embeddings and linear weights), as nanoGPT
// does, and the first n_decay parameters of each layer's attention block;
// biases and layernorm gains/shifts are left alone. Adjacent tensors with the
// same setting merge into one run.
static void add_run(GPT2 *m, size_t off, size_t n, int decay) {
    if (n == 0) return;
    struct DecayRun *last = m->n_runs ? &m->runs[m->n_runs - 1] : NULL;
    if (last && last->decay == decay && last->off + last->n == off) {
        last->n += n;
        return;
    }
    m->runs[m->n_runs++] = (struct DecayRun){off, n, decay};
}

static int maps_only(const GPT2 *m) { return strcmp(m->cfg.trainable, "feature_maps") == 0; }

static void build_decay_runs(GPT2 *m) {
    size_t n_decay = attn_n_decay(m->attn, &m->cfg);
    m->runs = xcalloc(N_PARAM_TENSORS + 2 * (size_t)m->L, sizeof *m->runs, "weight-decay runs");
    m->train_lo = maps_only(m) ? (size_t)(m->p[P_ATTN] - m->params) : 0;
    m->train_hi = m->n_params;
    m->opt_lo = m->train_lo;
    m->opt_hi = m->train_hi;
    for (int i = maps_only(m) ? P_ATTN : 0; i < N_PARAM_TENSORS; i++) {
        size_t off = (size_t)(m->p[i] - m->params);
        if (i == P_ATTN)
            for (int l = 0; l < m->L; l++, off += m->n_attn) {
                add_run(m, off, n_decay, 1);
                add_run(m, off + n_decay, m->n_attn - n_decay, 0);
            }
        else
            add_run(m, off, m->sizes[i], i == P_WTE || i == P_WPE || i == P_QKVW || i == P_ATTPROJW || i == P_FCW || i == P_FCPROJW);
    }
}

static const char *const SHRINK_MODEL = "reduce n_layer, n_embd or seq_len (or vocab_size)";

void model_init(GPT2 *m, const Config *cfg) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    const Config *c = &m->cfg;
    config_validate(c);
    m->attn = attn_find(c);
    m->L = c->n_layer;
    m->C = c->n_embd;
    m->NH = c->n_head;
    m->hs = c->n_embd / c->n_head;
    m->V = c->vocab_size;
    m->Vp = padded_vocab(c->vocab_size);
    m->maxT = c->seq_len;
    m->n_attn = attn_n_params(m->attn, c);
    param_sizes(c, m->attn, m->sizes, m->Vp);
    m->n_params = 0;
    for (int i = 0; i < N_PARAM_TENSORS; i++) m->n_params += m->sizes[i];
    m->n_buffers = (size_t)m->L * attn_n_buffers(m->attn, c);
    if (strcmp(c->trainable, "feature_maps") == 0 && m->n_attn == 0)
        die("config: trainable = feature_maps, but attention = %s has no trained feature map (hedgehog and t2r do)",
            c->attention);
    memory_check((double)(m->n_params + m->n_buffers) * sizeof(real), "the model's parameters", SHRINK_MODEL);
    m->params = xcalloc(m->n_params, sizeof(real), "parameters");
    size_t off = 0;
    for (int i = 0; i < N_PARAM_TENSORS; i++) {
        m->p[i] = m->params + off;
        off += m->sizes[i];
    }
    build_decay_runs(m);
    m->buffers = xcalloc(m->n_buffers, sizeof(real), "attention buffers");
    m->alayer = xcalloc((size_t)m->L, sizeof(AttnLayer), "attention layers");

    // GPT-2 initialisation: N(0, 0.02²) weights, residual projections scaled
    // by 1/√(2L) so the residual stream's variance does not grow with depth.
    Rng rng;
    rng_seed(&rng, (uint64_t)c->seed);
    size_t C = (size_t)m->C;
    double std = 0.02, std_proj = 0.02 / sqrt(2.0 * m->L);
    fill_normal(m->p[P_WTE], (size_t)m->V * C, std, &rng);  // padding rows stay 0
    fill_normal(m->p[P_WPE], m->sizes[P_WPE], std, &rng);
    fill_normal(m->p[P_QKVW], m->sizes[P_QKVW], std, &rng);
    fill_normal(m->p[P_ATTPROJW], m->sizes[P_ATTPROJW], std_proj, &rng);
    fill_normal(m->p[P_FCW], m->sizes[P_FCW], std, &rng);
    fill_normal(m->p[P_FCPROJW], m->sizes[P_FCPROJW], std_proj, &rng);
    fill_const(m->p[P_LN1W], m->sizes[P_LN1W], 1);
    fill_const(m->p[P_LN2W], m->sizes[P_LN2W], 1);
    fill_const(m->p[P_LNFW], m->sizes[P_LNFW], 1);
    bind_attention(m);
    for (int l = 0; l < m->L; l++) attn_init(&m->alayer[l], &rng);
}

// Gradients are allocated by the first backward, not by model_init: a model
// that only runs forward (sampling, evaluation, analysis) never needs them.
static void need_grads(GPT2 *m) {
    if (m->grads) return;
    memory_check((double)m->n_params * sizeof(real), "the gradients", SHRINK_MODEL);
    m->grads = xcalloc(m->n_params, sizeof(real), "gradients");
    size_t off = 0;
    for (int i = 0; i < N_PARAM_TENSORS; i++) {
        m->g[i] = m->grads + off;
        off += m->sizes[i];
    }
    bind_attention(m);
}

// AdamW's moments likewise, for the optimizer's share of the parameters only.
void model_need_moments(GPT2 *m) {
    if (m->m) return;
    size_t n = m->opt_hi - m->opt_lo;
    memory_check(2.0 * n * sizeof(real), "the AdamW moments", SHRINK_MODEL);
    m->m = xcalloc(n, sizeof(real), "AdamW first moments");
    m->v = xcalloc(n, sizeof(real), "AdamW second moments");
}

// ---------------------------------------------------------------------------
// Gradient accumulation over micro-batches. A step's gradient is the sum of
// its micro-batches' gradients, added in an order fixed by their count G
// alone: S(0, G), where S(lo, n) = S(lo, p) + S(lo + p, n − p) with p the
// largest power of two below n (a leaf when n = 1). A binary counter builds
// it on the fly — each micro-batch's gradient a new entry, equal-sized
// neighbours merged, the rest folded right to left at the end — so it needs
// at most log2(G) + 1 gradient buffers. The order matters beyond one
// process: data-parallel ranks of A micro-batches each (A a power of two)
// hold whole subtrees of it, and combining their sums by the same rule over
// ranks gives bitwise the sum one process with G = A·N would have
// (docs/distributed.md).

static real *take_buffer(GPT2 *m) {
    if (m->n_spare) return m->spare[--m->n_spare];
    memory_check((double)m->n_params * sizeof(real), "a gradient-accumulation buffer", SHRINK_MODEL);
    return xcalloc(m->n_params, sizeof(real), "gradient accumulation");
}

// left += right over the trainable range; right is zeroed and kept for reuse.
static void merge_into(GPT2 *m, real *left, real *right) {
    size_t lo = m->train_lo, hi = m->train_hi;
    #pragma omp parallel for schedule(static)
    for (size_t i = lo; i < hi; i++) left[i] += right[i];
    memset(right + lo, 0, (hi - lo) * sizeof(real));
    m->spare[m->n_spare++] = right;
}

static void set_grads(GPT2 *m, real *g) {
    m->grads = g;
    size_t off = 0;
    for (int i = 0; i < N_PARAM_TENSORS; i++) {
        m->g[i] = m->grads + off;
        off += m->sizes[i];
    }
    bind_attention(m);
}

void model_accumulate(GPT2 *m) {
    need_grads(m);
    if (m->n_acc == ACC_MAX) die("gradient accumulation: more than 2^%d micro-batches", ACC_MAX - 1);
    m->acc[m->n_acc] = m->grads;
    m->acc_count[m->n_acc++] = 1;
    set_grads(m, take_buffer(m));
    while (m->n_acc >= 2 && m->acc_count[m->n_acc - 1] == m->acc_count[m->n_acc - 2]) {
        merge_into(m, m->acc[m->n_acc - 2], m->acc[m->n_acc - 1]);
        m->acc_count[m->n_acc - 2] *= 2;
        m->n_acc--;
    }
}

void model_accumulate_finish(GPT2 *m) {
    if (!m->n_acc) return;
    while (m->n_acc >= 2) {
        merge_into(m, m->acc[m->n_acc - 2], m->acc[m->n_acc - 1]);
        m->n_acc--;
    }
    m->spare[m->n_spare++] = m->grads;   // zero: nothing went into it since the last entry
    set_grads(m, m->acc[0]);
    m->n_acc = 0;
}

// ---------------------------------------------------------------------------
// Activations: every buffer, its size for N = B·T rows, in one table that
// allocating, freeing and the memory estimate all read.

enum { ROWS_C, ROWS, ROWS_VOCAB, ATTN_ACTS, ATTN_SCRATCH, LN_PARTIAL };
static const struct {
    size_t field;   // offsetof(GPT2, the buffer)
    int layers;     // 1: one block per layer
    int shape, mult;
    const char *what;
} ACTS[] = {
    {offsetof(GPT2, encoded), 0, ROWS_C, 1, "embeddings"},
    {offsetof(GPT2, ln1), 1, ROWS_C, 1, "ln1"},
    {offsetof(GPT2, ln1_mean), 1, ROWS, 1, "ln1 mean"},
    {offsetof(GPT2, ln1_rstd), 1, ROWS, 1, "ln1 rstd"},
    {offsetof(GPT2, qkv), 1, ROWS_C, 3, "qkv"},
    {offsetof(GPT2, atty), 1, ROWS_C, 1, "attention output"},
    {offsetof(GPT2, attn_acts), 1, ATTN_ACTS, 1, "attention internals"},
    {offsetof(GPT2, residual2), 1, ROWS_C, 1, "residual 2"},
    {offsetof(GPT2, ln2), 1, ROWS_C, 1, "ln2"},
    {offsetof(GPT2, ln2_mean), 1, ROWS, 1, "ln2 mean"},
    {offsetof(GPT2, ln2_rstd), 1, ROWS, 1, "ln2 rstd"},
    {offsetof(GPT2, fch), 1, ROWS_C, 4, "MLP hidden"},
    {offsetof(GPT2, fch_gelu), 1, ROWS_C, 4, "MLP GELU"},
    {offsetof(GPT2, residual3), 1, ROWS_C, 1, "residual 3"},
    {offsetof(GPT2, lnf), 0, ROWS_C, 1, "final layernorm"},
    {offsetof(GPT2, lnf_mean), 0, ROWS, 1, "lnf mean"},
    {offsetof(GPT2, lnf_rstd), 0, ROWS, 1, "lnf rstd"},
    {offsetof(GPT2, logits), 0, ROWS_VOCAB, 1, "logits"},
    {offsetof(GPT2, losses), 0, ROWS, 1, "losses"},
    {offsetof(GPT2, attn_scratch), 0, ATTN_SCRATCH, 1, "attention scratch"},
    {offsetof(GPT2, ln_partial), 0, LN_PARTIAL, 1, "layernorm partial sums"},
    {offsetof(GPT2, dresidual), 0, ROWS_C, 1, "gradient: residual stream"},
    {offsetof(GPT2, dln), 0, ROWS_C, 1, "gradient: layernorm output"},
    {offsetof(GPT2, dfch), 0, ROWS_C, 4, "gradient: MLP hidden"},
    {offsetof(GPT2, dfch_gelu), 0, ROWS_C, 4, "gradient: MLP GELU"},
    {offsetof(GPT2, dqkv), 0, ROWS_C, 3, "gradient: qkv"},
    {offsetof(GPT2, datty), 0, ROWS_C, 1, "gradient: attention output"},
};
enum { N_ACTS = sizeof ACTS / sizeof ACTS[0] };

// Reals in activation buffer i for a (B, T) batch of a model of config c.
static size_t act_reals(int i, const Config *c, const AttnKind *k, int B, int T) {
    size_t N = (size_t)B * T, C = (size_t)c->n_embd, n = 0;
    switch (ACTS[i].shape) {
    case ROWS_C: n = N * C; break;
    case ROWS: n = N; break;
    case ROWS_VOCAB: n = N * (size_t)padded_vocab(c->vocab_size); break;
    case ATTN_ACTS: n = attn_act_size(k, c, B, T); break;
    case ATTN_SCRATCH: n = attn_scratch_size(k, c, B, T); break;
    case LN_PARTIAL: n = layernorm_scratch_size((int)N, (int)C); break;
    }
    return n * (size_t)ACTS[i].mult * (ACTS[i].layers ? (size_t)c->n_layer : 1);
}

static real **act_field(GPT2 *m, int i) { return (real **)((char *)m + ACTS[i].field); }

static void free_activations(GPT2 *m) {
    for (int i = 0; i < N_ACTS; i++) {
        free(*act_field(m, i));
        *act_field(m, i) = NULL;
    }
    free(m->tokens);
    free(m->targets);
    m->tokens = m->targets = NULL;
}

void model_free(GPT2 *m) {
    free_activations(m);
    free(m->params);
    free(m->grads);
    free(m->m);
    free(m->v);
    for (int i = 0; i < m->n_acc; i++) free(m->acc[i]);
    for (int i = 0; i < m->n_spare; i++) free(m->spare[i]);
    free(m->runs);
    free(m->buffers);
    free(m->alayer);
    memset(m, 0, sizeof *m);
}

static void alloc_activations(GPT2 *m, int B, int T) {
    if (T > m->maxT) die("sequence length %d exceeds the model's seq_len %d", T, m->maxT);
    free_activations(m);
    m->B = B;
    m->T = T;
    double bytes = 0;
    for (int i = 0; i < N_ACTS; i++) bytes += (double)act_reals(i, &m->cfg, m->attn, B, T) * sizeof(real);
    memory_check(bytes, "the activations", "reduce batch_size or seq_len (or the model's size)");
    for (int i = 0; i < N_ACTS; i++) {
        char what[64];
        snprintf(what, sizeof what, "activations: %s", ACTS[i].what);
        *act_field(m, i) = xcalloc(act_reals(i, &m->cfg, m->attn, B, T), sizeof(real), what);
    }
    m->tokens = xcalloc((size_t)B * T, sizeof(int), "tokens");
    m->targets = xcalloc((size_t)B * T, sizeof(int), "targets");
    bind_attention(m);
}

MemoryEstimate model_memory(const Config *c, int B, int T, int training) {
    const AttnKind *k = attn_find(c);
    size_t sizes[N_PARAM_TENSORS], n = 0;
    param_sizes(c, k, sizes, padded_vocab(c->vocab_size));
    for (int i = 0; i < N_PARAM_TENSORS; i++) n += sizes[i];
    MemoryEstimate e = {0};
    e.params = (double)(n + (size_t)c->n_layer * attn_n_buffers(k, c)) * sizeof(real);
    // Gradient accumulation's binary counter (model_accumulate) holds up to
    // floor(log2 A) + 1 gradient-sized buffers besides the gradients.
    int accum = 0;
    if (c->grad_accum > 1)
        for (accum = 1; (1L << accum) <= c->grad_accum; accum++) {}
    e.grads = training ? (1.0 + accum) * n * sizeof(real) : 0;
    e.moments = training ? 2.0 * n * sizeof(real) : 0;
    for (int i = 0; i < N_ACTS; i++) {
        double bytes = (double)act_reals(i, c, k, B, T) * sizeof(real);
        if (ACTS[i].shape == ATTN_ACTS || ACTS[i].shape == ATTN_SCRATCH) e.attention += bytes;
        else e.activations += bytes;
    }
    e.activations += 2.0 * B * T * sizeof(int);
    e.total = e.params + e.grads + e.moments + e.activations + e.attention;
    return e;
}

// ---------------------------------------------------------------------------
// The whole model, as docs/gpt2.md §9 draws it:
//
//   x = embed(tokens)
//   for each block:  x = x + attproj(attention(qkv(ln1(x))))     (residual2)
//                    x = x + fcproj(gelu(fc(ln2(x))))             (residual3)
//   logits = lnf(x) · wteᵀ,  loss = mean(xent(logits, targets)) + λ·distill

// One block's parameters — or, viewed in m->g, their gradients.
typedef struct {
    real *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
} BlockParams;

static BlockParams block_params(real *const t[N_PARAM_TENSORS], int l, int C) {
    size_t lc = (size_t)l * C;
    return (BlockParams){t[P_LN1W] + lc, t[P_LN1B] + lc, t[P_QKVW] + 3 * lc * C, t[P_QKVB] + 3 * lc,
                         t[P_ATTPROJW] + lc * C, t[P_ATTPROJB] + lc, t[P_LN2W] + lc, t[P_LN2B] + lc,
                         t[P_FCW] + 4 * lc * C, t[P_FCB] + 4 * lc, t[P_FCPROJW] + 4 * lc * C, t[P_FCPROJB] + lc};
}

// One block's activations for the current batch (N rows).
typedef struct {
    const real *in;                   // (N,C)  the block's input: embeddings, or the previous block's out
    real *ln1, *ln1_mean, *ln1_rstd;  // (N,C), (N), (N)
    real *qkv, *atty;                 // (N,3C), (N,C)
    real *res2;                       // (N,C)  in + the attention branch
    real *ln2, *ln2_mean, *ln2_rstd;
    real *fch, *fch_gelu;             // (N,4C)
    real *out;                        // (N,C)  res2 + the MLP branch
    AttnLayer *attn;
} BlockActs;

static BlockActs block_acts(GPT2 *m, int l) {
    size_t N = (size_t)m->B * m->T, NC = N * m->C, ln = (size_t)l * N;
    return (BlockActs){l == 0 ? m->encoded : m->residual3 + (l - 1) * NC,
                       m->ln1 + l * NC, m->ln1_mean + ln, m->ln1_rstd + ln, m->qkv + 3 * l * NC, m->atty + l * NC,
                       m->residual2 + l * NC, m->ln2 + l * NC, m->ln2_mean + ln, m->ln2_rstd + ln,
                       m->fch + 4 * l * NC, m->fch_gelu + 4 * l * NC, m->residual3 + l * NC, &m->alayer[l]};
}

void model_forward(GPT2 *m, const int *tokens, const int *targets, int B, int T) {
    if (B != m->B || T != m->T || !m->encoded) alloc_activations(m, B, T);
    int N = B * T, C = m->C, L = m->L;
    size_t NC = (size_t)N * C;
    for (int i = 0; i < N; i++) {   // kept for backward
        if (tokens[i] < 0 || tokens[i] >= m->V) die("token id %d at position %d is outside the vocabulary [0, %d)", tokens[i], i, m->V);
        if (targets && targets[i] != NO_TARGET && (targets[i] < 0 || targets[i] >= m->V))
            die("target id %d at position %d is outside the vocabulary [0, %d)", targets[i], i, m->V);
        m->tokens[i] = tokens[i];
        m->targets[i] = targets ? targets[i] : 0;
    }
    encoder_forward(m->encoded, m->tokens, m->p[P_WTE], m->p[P_WPE], B, T, C);
    double distill = 0;
    for (int l = 0; l < L; l++) {
        BlockParams w = block_params(m->p, l, C);
        BlockActs a = block_acts(m, l);
        // res2 = in + attproj(attention(qkv(ln1(in))))
        layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, a.in, w.ln1w, w.ln1b, N, C);
        matmul_forward(a.qkv, a.ln1, w.qkvw, w.qkvb, N, C, 3 * C);
        distill += attn_forward(a.attn, a.atty, a.qkv, B, T);
        matmul_forward(a.res2, a.atty, w.attprojw, w.attprojb, N, C, C);
        residual_forward(a.res2, a.in, a.res2, NC);
        // out = res2 + fcproj(gelu(fc(ln2(res2))))
        layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.res2, w.ln2w, w.ln2b, N, C);
        matmul_forward(a.fch, a.ln2, w.fcw, w.fcb, N, C, 4 * C);
        gelu_forward(a.fch_gelu, a.fch, 4 * NC);
        matmul_forward(a.out, a.fch_gelu, w.fcprojw, w.fcprojb, N, 4 * C, C);
        residual_forward(a.out, a.res2, a.out, NC);
    }
    const real *x = m->residual3 + (size_t)(L - 1) * NC;
    layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, x, m->p[P_LNFW], m->p[P_LNFB], N, C);
    matmul_forward(m->logits, m->lnf, m->p[P_WTE], NULL, N, C, m->Vp);   // the tied LM head
    m->loss = m->lm_loss = m->distill_loss = 0;
    m->n_scored = 0;
    if (!targets) return;
    softmax_xent_forward(m->losses, m->logits, m->targets, N, m->V, m->Vp);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        sum += m->losses[i];
        m->n_scored += m->targets[i] != NO_TARGET;
    }
    m->lm_loss = m->n_scored ? sum / m->n_scored : 0;
    m->distill_loss = distill / ((double)L * B * m->NH * T);
    m->loss = m->cfg.lm_weight * m->lm_loss + m->cfg.distill_weight * m->distill_loss;
}

void model_zero_grad(GPT2 *m) {
    need_grads(m);
    memset(m->grads, 0, m->n_params * sizeof(real));
}

static void zero(real *x, size_t n) { memset(x, 0, n * sizeof(real)); }

// The forward's list in reverse. dresidual carries the gradient of the
// residual stream down the blocks; each branch adds its share into it.
// Frozen tensors (trainable = feature_maps) get no gradient: their weight
// products are skipped (NULL).
void model_backward(GPT2 *m, double grad_scale) {
    need_grads(m);
    int B = m->B, T = m->T, N = B * T, C = m->C, L = m->L;
    size_t NC = (size_t)N * C;
    double distill_scale = grad_scale * m->cfg.distill_weight / ((double)L * B * m->NH * T);
    if (m->cfg.lm_weight == 0 && !m->cfg.distill_qk_grad) {
        // Distillation alone, into the feature maps only: each layer's
        // attention takes it from its own q and k; nothing else moves.
        for (int l = 0; l < L; l++) {
            BlockActs a = block_acts(m, l);
            attn_backward(a.attn, NULL, NULL, a.qkv, a.atty, B, T, distill_scale);
        }
        return;
    }
    int frozen = maps_only(m);
    real *no_grad[N_PARAM_TENSORS] = {0};              // NULL: skip that weight gradient
    real *const *g = frozen ? no_grad : m->g;
    // LM head and final layernorm: dresidual = d(the last block's out)
    zero(m->dresidual, NC);
    if (m->cfg.lm_weight != 0) {
        softmax_xent_backward(m->logits, m->targets, (real)(m->n_scored ? grad_scale * m->cfg.lm_weight / m->n_scored : 0), N, m->Vp);
        zero(m->dln, NC);
        matmul_backward(m->dln, g[P_WTE], NULL, m->logits, m->lnf, m->p[P_WTE], N, C, m->Vp);
        layernorm_backward(m->dresidual, g[P_LNFW], g[P_LNFB], m->ln_partial, m->dln,
                           m->residual3 + (size_t)(L - 1) * NC, m->p[P_LNFW], m->lnf_mean, m->lnf_rstd, N, C);
    }
    for (int l = L - 1; l >= 0; l--) {
        BlockParams w = block_params(m->p, l, C), dw = frozen ? (BlockParams){0} : block_params(m->g, l, C);
        BlockActs a = block_acts(m, l);
        // MLP branch: dresidual is d(out), out = res2 + fcproj(gelu(fc(ln2(res2))))
        zero(m->dfch_gelu, 4 * NC);
        matmul_backward(m->dfch_gelu, dw.fcprojw, dw.fcprojb, m->dresidual, a.fch_gelu, w.fcprojw, N, 4 * C, C);
        gelu_backward(m->dfch, a.fch, m->dfch_gelu, 4 * NC);
        zero(m->dln, NC);
        matmul_backward(m->dln, dw.fcw, dw.fcb, m->dfch, a.ln2, w.fcw, N, C, 4 * C);
        layernorm_backward(m->dresidual, dw.ln2w, dw.ln2b, m->ln_partial, m->dln, a.res2, w.ln2w, a.ln2_mean,
                           a.ln2_rstd, N, C);
        // Attention branch: dresidual is now d(res2), res2 = in + attproj(attention(qkv(ln1(in))))
        zero(m->datty, NC);
        matmul_backward(m->datty, dw.attprojw, dw.attprojb, m->dresidual, a.atty, w.attprojw, N, C, C);
        zero(m->dqkv, 3 * NC);
        attn_backward(a.attn, m->dqkv, m->datty, a.qkv, a.atty, B, T, distill_scale);
        if (l == 0 && frozen) break;   // nothing below the first attention trains
        zero(m->dln, NC);
        matmul_backward(m->dln, dw.qkvw, dw.qkvb, m->dqkv, a.ln1, w.qkvw, N, C, 3 * C);
        layernorm_backward(m->dresidual, dw.ln1w, dw.ln1b, m->ln_partial, m->dln, a.in, w.ln1w, a.ln1_mean,
                           a.ln1_rstd, N, C);
    }
    if (!frozen) encoder_backward(m->g[P_WTE], m->g[P_WPE], m->dresidual, m->tokens, B, T, C);
}

// ---------------------------------------------------------------------------
// Optimisation

#define NORM_CHUNK 65536  // fixed summation blocks: the same norm for any thread count
#define NORM_BLOCK 1024

void model_begin_step(GPT2 *m) {
    for (int l = 0; l < m->L; l++) attn_before_step(&m->alayer[l], m->step);
}

void model_shard(const GPT2 *m, int n, int r, size_t *lo, size_t *hi) {
    size_t chunks = (m->train_hi - m->train_lo + NORM_CHUNK - 1) / NORM_CHUNK;
    *lo = m->train_lo + chunks * (size_t)r / (size_t)n * NORM_CHUNK;
    *hi = m->train_lo + chunks * (size_t)(r + 1) / (size_t)n * NORM_CHUNK;
    if (*hi > m->train_hi) *hi = m->train_hi;
    if (*lo > *hi) *lo = *hi;
}

void model_set_shard(GPT2 *m, size_t lo, size_t hi) {
    if (m->m) die("internal: the optimizer's share is set before its moments exist");
    m->opt_lo = lo;
    m->opt_hi = hi;
}

size_t model_grad_norm_parts(const GPT2 *m, size_t lo, size_t hi, double *parts) {
    size_t n_chunks = (hi - lo + NORM_CHUNK - 1) / NORM_CHUNK;
    if (!parts) return n_chunks;
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n_chunks; k++) {
        // Squares by row_sum's float chains over blocks of NORM_BLOCK (so each
        // chain adds NORM_BLOCK / CHAINS terms); blocks summed in double.
        size_t start = lo + k * NORM_CHUNK, end = start + NORM_CHUNK < hi ? start + NORM_CHUNK : hi;
        double s = 0;
        for (size_t i = start; i < end; i += NORM_BLOCK)
            s += m->grads ? row_sum(m->grads + i, (int)(end - i < NORM_BLOCK ? end - i : NORM_BLOCK), 0, 1) : 0;
        parts[k] = s;
    }
    prof_add(PROF_OPTIMIZER, t0);
    return n_chunks;
}

double model_grad_norm(const GPT2 *m) {
    size_t n = model_grad_norm_parts(m, m->train_lo, m->train_hi, NULL);
    double *parts = xcalloc(n + 1, sizeof(double), "gradient norm partials"), total = 0;
    model_grad_norm_parts(m, m->train_lo, m->train_hi, parts);
    for (size_t k = 0; k < n; k++) total += parts[k];
    free(parts);
    return sqrt(total);
}

double model_lr(const Config *c, long step) {
    if (step < c->warmup_steps) return c->lr * (double)(step + 1) / c->warmup_steps;
    if (step >= c->max_steps) return c->min_lr;
    double ratio = (double)(step - c->warmup_steps) / (double)(c->max_steps - c->warmup_steps);
    return c->min_lr + 0.5 * (1.0 + cos(3.14159265358979323846 * ratio)) * (c->lr - c->min_lr);
}

// AdamW (Loshchilov & Hutter): the decay shrinks the weight directly, outside
// the adaptive step:  θ ← θ − lr·( m̂/(√v̂ + ε) + wd·θ ).
// The step is memory-bound (every parameter's θ, g, m, v read and written
// once), so clipping and zeroing ride along in the same pass instead of
// costing two more sweeps over the gradients.
void model_adamw(GPT2 *m, double lr, double grad_norm) {
    need_grads(m);
    model_need_moments(m);
    const Config *c = &m->cfg;
    long t = m->step + 1;
    double b1 = c->beta1, b2 = c->beta2;
    real c1 = (real)(1.0 / (1.0 - pow(b1, (double)t))), c2 = (real)(1.0 / (1.0 - pow(b2, (double)t)));
    real rlr = (real)lr, eps = (real)c->adam_eps;
    real clip = (real)(c->grad_clip > 0 && grad_norm > c->grad_clip ? c->grad_clip / grad_norm : 1.0);
    // The moments cover [opt_lo, opt_hi) only: mo[i], vo[i] for parameter i.
    real *restrict p = m->params, *restrict g = m->grads, *restrict mo = m->m - m->opt_lo, *restrict vo = m->v - m->opt_lo;
    double t0 = now_seconds();
    #pragma omp parallel
    for (int r = 0; r < m->n_runs; r++) {
        size_t lo = m->runs[r].off, hi = lo + m->runs[r].n;
        lo = lo > m->opt_lo ? lo : m->opt_lo;
        hi = hi < m->opt_hi ? hi : m->opt_hi;
        real wd = m->runs[r].decay ? (real)c->weight_decay : 0;
        #pragma omp for schedule(static) nowait
        for (size_t i = lo; i < hi; i++) {
            real gi = g[i] * clip;
            real mi = (real)b1 * mo[i] + (real)(1 - b1) * gi;
            real vi = (real)b2 * vo[i] + (real)(1 - b2) * gi * gi;
            mo[i] = mi;
            vo[i] = vi;
            g[i] = 0;
            p[i] -= rlr * ((mi * c1) / (sqrt_r(vi * c2) + eps) + wd * p[i]);
        }
    }
    // With a share of the parameters (data parallel), the rest of the
    // gradient was someone else's to use: zero it for the next step.
    memset(g + m->train_lo, 0, (m->opt_lo - m->train_lo) * sizeof(real));
    memset(g + m->opt_hi, 0, (m->train_hi - m->opt_hi) * sizeof(real));
    m->step = t;
    prof_add(PROF_OPTIMIZER, t0);
}

// ---------------------------------------------------------------------------
// Generation: the same layers on one row at a time, attention in its
// recurrent form (a KV cache for softmax, the (S, z) state for linear kinds).

struct GenState {
    real *x, *ln, *qkv, *y, *h, *hg;   // the current token's rows: C, C, 3C, C, 4C, 4C
    real mean, rstd;                   // layernorm's statistics (not needed again)
    real *attn;                        // each layer's attention state, attn_per_layer reals
    size_t attn_per_layer;
};

GenState *model_state_alloc(GPT2 *m) {
    size_t C = (size_t)m->C, per_layer = attn_state_size(m->attn, &m->cfg, m->maxT);
    // One token attends to up to seq_len positions: scratch sized for (1, seq_len).
    size_t need = attn_scratch_size(m->attn, &m->cfg, 1, m->maxT);
    memory_check((double)(need + 14 * C + (size_t)m->L * per_layer) * sizeof(real), "generation's state",
                 "use a checkpoint with a shorter seq_len");
    if (m->attn_scratch && attn_scratch_size(m->attn, &m->cfg, m->B, m->T) < need) {
        free(m->attn_scratch);
        m->attn_scratch = NULL;
    }
    if (!m->attn_scratch) m->attn_scratch = xcalloc(need, sizeof(real), "attention scratch");
    bind_attention(m);
    GenState *s = xcalloc(1, sizeof *s, "generation state");
    s->x = xcalloc(14 * C + (size_t)m->L * per_layer, sizeof(real), "generation state");
    s->ln = s->x + C;
    s->qkv = s->ln + C;
    s->y = s->qkv + 3 * C;
    s->h = s->y + C;
    s->hg = s->h + 4 * C;
    s->attn = s->hg + 4 * C;
    s->attn_per_layer = per_layer;
    return s;
}

void model_state_free(GenState *s) {
    if (s) free(s->x);
    free(s);
}

void model_step(GPT2 *m, GenState *s, int token, int pos, real *logits) {
    int C = m->C;
    if (token < 0 || token >= m->V) die("token id %d is outside the vocabulary [0, %d)", token, m->V);
    if (pos >= m->maxT) die("position %d is beyond the model's seq_len %d", pos, m->maxT);
    int tok[1] = {token};
    // The embedding of one token at position pos: wpe row pos, via a shifted base.
    encoder_forward(s->x, tok, m->p[P_WTE], m->p[P_WPE] + (size_t)pos * C, 1, 1, C);
    for (int l = 0; l < m->L; l++) {
        BlockParams w = block_params(m->p, l, C);
        layernorm_forward(s->ln, &s->mean, &s->rstd, s->x, w.ln1w, w.ln1b, 1, C);
        matmul_forward(s->qkv, s->ln, w.qkvw, w.qkvb, 1, C, 3 * C);
        attn_step(&m->alayer[l], s->attn + (size_t)l * s->attn_per_layer, s->y, s->qkv, pos);
        matmul_forward(s->h, s->y, w.attprojw, w.attprojb, 1, C, C);
        residual_forward(s->x, s->x, s->h, (size_t)C);
        layernorm_forward(s->ln, &s->mean, &s->rstd, s->x, w.ln2w, w.ln2b, 1, C);
        matmul_forward(s->h, s->ln, w.fcw, w.fcb, 1, C, 4 * C);
        gelu_forward(s->hg, s->h, 4 * (size_t)C);
        matmul_forward(s->h, s->hg, w.fcprojw, w.fcprojb, 1, 4 * C, C);
        residual_forward(s->x, s->x, s->h, (size_t)C);
    }
    layernorm_forward(s->ln, &s->mean, &s->rstd, s->x, m->p[P_LNFW], m->p[P_LNFB], 1, C);
    matmul_forward(logits, s->ln, m->p[P_WTE], NULL, 1, C, m->Vp);
}
