// model.c — GPT-2, layer by layer. Each layer's forward sits beside its
// backward, shapes in the comment above them; docs/gpt2.md derives the maths.
//
// Conventions: N = B*T rows; a backward ADDS (+=) into the gradients of its
// inputs and parameters, so the caller zeroes what must start at zero. Every
// reduction runs in an order fixed by the shapes alone, never by the thread
// count, so a run is bitwise identical with 1 or 2 (or 64) threads.
#include "model.h"
#include "matmul.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double model_prof[N_PROF];
const char *const model_prof_names[N_PROF] = {
    "matmul fwd", "matmul bwd", "attention fwd", "attention bwd", "layernorm",
    "gelu", "loss", "optimizer", "other"};
// Time the statement and add the seconds to model_prof[kind].
#define TIMED(kind, stmt) do { double t0_ = now_seconds(); stmt; model_prof[kind] += now_seconds() - t0_; } while (0)

#define LN_EPS 1e-5
#define LN_CHUNK 32   // rows per partial sum in layernorm_backward

// ---------------------------------------------------------------------------
// Embedding: out[b,t] = wte[tokens[b,t]] + wpe[t]
// tokens (B,T), wte (Vp,C), wpe (maxT,C) -> out (B,T,C)
void encoder_forward(real *out, const int *tokens, const real *wte, const real *wpe, int B, int T, int C) {
    #pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const real *te = wte + (size_t)tokens[bt] * C, *pe = wpe + (size_t)(bt % T) * C;
        real *o = out + (size_t)bt * C;
        for (int c = 0; c < C; c++) o[c] = te[c] + pe[c];
    }
}

// dout (B,T,C) -> dwte (Vp,C) +=, dwpe (maxT,C) +=.
// Threads split the channels, so two tokens with the same id never race and
// each row is summed in token order.
void encoder_backward(real *dwte, real *dwpe, const real *dout, const int *tokens, int B, int T, int C) {
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int bt = 0; bt < B * T; bt++) {
            real d = dout[(size_t)bt * C + c];
            dwte[(size_t)tokens[bt] * C + c] += d;
            dwpe[(size_t)(bt % T) * C + c] += d;
        }
}

// ---------------------------------------------------------------------------
// LayerNorm over channels: out = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps)
// inp (N,C), w (C), b (C) -> out (N,C), mean (N), rstd (N)
void layernorm_forward(real *out, real *mean, real *rstd, const real *inp, const real *w, const real *b, int N, int C) {
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
}

// Scratch floats layernorm_backward needs for N rows of C channels.
size_t layernorm_scratch_size(int N, int C) { return (size_t)((N + LN_CHUNK - 1) / LN_CHUNK) * 2 * C; }

// With x̂ = (x - mean)·rstd and g = dout·w:
//   dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)),  dw += Σ_n dout·x̂,  db += Σ_n dout
// dout (N,C) -> dinp (N,C) +=, dw (C) +=, db (C) +=. partial: layernorm_scratch_size.
void layernorm_backward(real *dinp, real *dw, real *db, real *partial, const real *dout, const real *inp,
                        const real *w, const real *mean, const real *rstd, int N, int C) {
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
    // Combine the per-chunk partials in chunk order: the same sum for any thread count.
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

// ---------------------------------------------------------------------------
// GELU, tanh approximation (GPT-2): gelu(x) = x/2 · (1 + tanh(u)), u = √(2/π)(x + 0.044715 x³)
// inp (N) -> out (N)
#define GELU_K 0.7978845608028654  // √(2/π)

// tanh u = 1 − 2/(e^{2u} + 1), through the vectorisable exp_r: libm's tanhf
// is a scalar call and made GELU a third of a small model's step.
static inline real tanh_r(real u) { return 1 - 2 / (exp_r(2 * u) + 1); }
void gelu_forward(real *out, const real *inp, size_t N) {
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        real x = inp[i];
        out[i] = (real)0.5 * x * (1 + tanh_r((real)GELU_K * (x + (real)0.044715 * x * x * x)));
    }
}

// d gelu/dx = (1 + tanh u)/2 + x/2 · (1 − tanh² u) · √(2/π)(1 + 3·0.044715 x²)
// dout (N) -> dinp (N) =  (overwrites: the MLP's hidden gradient has no other source)
void gelu_backward(real *dinp, const real *inp, const real *dout, size_t N) {
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        real x = inp[i];
        real th = tanh_r((real)GELU_K * (x + (real)0.044715 * x * x * x));
        real du = (real)GELU_K * (1 + 3 * (real)0.044715 * x * x);
        dinp[i] = dout[i] * ((real)0.5 * (1 + th) + (real)0.5 * x * (1 - th * th) * du);
    }
}

// ---------------------------------------------------------------------------
// Residual: out = a + b. Its backward is the identity into both inputs, so the
// model keeps one gradient stream (dresidual) that each branch reads and the
// layernorm below adds into; no copy is needed.
// a (N), b (N) -> out (N)
void residual_forward(real *out, const real *a, const real *b, size_t N) {
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}

// ---------------------------------------------------------------------------
// Softmax + cross-entropy, fused. Only the first V of Vp columns are real
// tokens: padding gets probability 0 and no gradient.
// logits (N,Vp) -> probs (N,Vp) in place, losses (N) = −log probs[target]
void softmax_xent_forward(real *losses, real *logits, const int *targets, int N, int V, int Vp) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        real *z = logits + (size_t)n * Vp;
        real mx = row_max(z, V);
        // −log p_t = log Σ exp(z − max) − (z_t − max): finite even when p_t underflows.
        real zt = z[targets[n]] - mx;
        double sum = exp_shift_sum(z, V, mx);
        real inv = (real)(1.0 / sum);
        for (int i = 0; i < V; i++) z[i] *= inv;
        for (int i = V; i < Vp; i++) z[i] = 0;
        losses[n] = (real)(log(sum) - zt);
    }
}

// dlogits = (probs − onehot(target)) · dloss, in place over probs; dloss is
// the same for every row (the mean's 1/N times the caller's scale).
void softmax_xent_backward(real *probs, const int *targets, real dloss, int N, int Vp) {
    #pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        real *p = probs + (size_t)n * Vp;
        p[targets[n]] -= 1;
        for (int i = 0; i < Vp; i++) p[i] *= dloss;
    }
}

// ---------------------------------------------------------------------------
// Parameters: sizes, carving, initialisation

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
    s[P_ATTN] = L * k->n_params(c);
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
        a->cfg = &m->cfg;
        a->layer = l;
        a->C = m->C;
        a->NH = m->NH;
        a->hs = m->hs;
        a->params = m->p[P_ATTN] + (size_t)l * m->n_attn;
        a->grads = m->g[P_ATTN] + (size_t)l * m->n_attn;
        a->buffers = m->buffers + (size_t)l * m->attn->n_buffers(&m->cfg);
        a->acts = m->attn_acts ? m->attn_acts + (size_t)l * m->attn->act_size(&m->cfg, m->B, m->T) : NULL;
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

static void build_decay_runs(GPT2 *m) {
    size_t n_decay = m->attn->n_decay(&m->cfg);
    m->runs = xcalloc(N_PARAM_TENSORS + 2 * (size_t)m->L, sizeof *m->runs, "weight-decay runs");
    for (int i = 0; i < N_PARAM_TENSORS; i++) {
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

void model_init(GPT2 *m, const Config *cfg) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    const Config *c = &m->cfg;
    config_validate(c);
    m->attn = attn_find(c->attention);
    m->L = c->n_layer;
    m->C = c->n_embd;
    m->NH = c->n_head;
    m->hs = c->n_embd / c->n_head;
    m->V = c->vocab_size;
    m->Vp = (c->vocab_size + 127) / 128 * 128;  // as llm.c: faster LM head, and its checkpoints load
    m->maxT = c->seq_len;
    m->n_attn = m->attn->n_params(c);
    param_sizes(c, m->attn, m->sizes, m->Vp);
    m->n_params = 0;
    for (int i = 0; i < N_PARAM_TENSORS; i++) m->n_params += m->sizes[i];
    m->params = xcalloc(m->n_params, sizeof(real), "parameters");
    m->grads = xcalloc(m->n_params, sizeof(real), "gradients");
    m->m = xcalloc(m->n_params, sizeof(real), "AdamW first moments");
    m->v = xcalloc(m->n_params, sizeof(real), "AdamW second moments");
    size_t off = 0;
    for (int i = 0; i < N_PARAM_TENSORS; i++) {
        m->p[i] = m->params + off;
        m->g[i] = m->grads + off;
        off += m->sizes[i];
    }
    build_decay_runs(m);
    m->n_buffers = (size_t)m->L * m->attn->n_buffers(c);
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
    for (int l = 0; l < m->L; l++) m->attn->init(&m->alayer[l], &rng);
}

static void free_activations(GPT2 *m) {
    real **bufs[] = {&m->encoded, &m->ln1, &m->ln1_mean, &m->ln1_rstd, &m->qkv, &m->atty, &m->attn_acts,
                     &m->residual2, &m->ln2, &m->ln2_mean, &m->ln2_rstd, &m->fch, &m->fch_gelu, &m->residual3,
                     &m->lnf, &m->lnf_mean, &m->lnf_rstd, &m->logits, &m->losses, &m->attn_scratch,
                     &m->ln_partial, &m->dresidual, &m->dln, &m->dbig, &m->dbig2, &m->dqkv, &m->datty};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
    free((void *)m->targets_seen);
    m->targets_seen = NULL;
}

void model_free(GPT2 *m) {
    free_activations(m);
    free(m->params);
    free(m->grads);
    free(m->m);
    free(m->v);
    free(m->runs);
    free(m->buffers);
    free(m->alayer);
    memset(m, 0, sizeof *m);
}

static real *act(size_t n, const char *what) { return xcalloc(n, sizeof(real), what); }

static void alloc_activations(GPT2 *m, int B, int T) {
    if (T > m->maxT) die("sequence length %d exceeds the model's seq_len %d", T, m->maxT);
    free_activations(m);
    m->B = B;
    m->T = T;
    size_t N = (size_t)B * T, L = (size_t)m->L, C = (size_t)m->C;
    m->encoded = act(N * C, "activations: embeddings");
    m->ln1 = act(L * N * C, "activations: ln1");
    m->ln1_mean = act(L * N, "activations: ln1 mean");
    m->ln1_rstd = act(L * N, "activations: ln1 rstd");
    m->qkv = act(L * N * 3 * C, "activations: qkv");
    m->atty = act(L * N * C, "activations: attention output");
    m->attn_acts = act(L * m->attn->act_size(&m->cfg, B, T), "activations: attention internals");
    m->residual2 = act(L * N * C, "activations: residual 2");
    m->ln2 = act(L * N * C, "activations: ln2");
    m->ln2_mean = act(L * N, "activations: ln2 mean");
    m->ln2_rstd = act(L * N, "activations: ln2 rstd");
    m->fch = act(L * N * 4 * C, "activations: MLP hidden");
    m->fch_gelu = act(L * N * 4 * C, "activations: MLP GELU");
    m->residual3 = act(L * N * C, "activations: residual 3");
    m->lnf = act(N * C, "activations: final layernorm");
    m->lnf_mean = act(N, "activations: lnf mean");
    m->lnf_rstd = act(N, "activations: lnf rstd");
    m->logits = act(N * (size_t)m->Vp, "activations: logits");
    m->losses = act(N, "activations: losses");
    m->attn_scratch = act(m->attn->scratch_size(&m->cfg, B, T), "attention scratch");
    m->ln_partial = act(layernorm_scratch_size((int)N, m->C), "layernorm partial sums");
    m->dresidual = act(N * C, "gradient: residual stream");
    m->dln = act(N * C, "gradient: layernorm output");
    m->dbig = act(N * 4 * C, "gradient: MLP hidden");
    m->dbig2 = act(N * 4 * C, "gradient: MLP GELU");
    m->dqkv = act(N * 3 * C, "gradient: qkv");
    m->datty = act(N * C, "gradient: attention output");
    m->targets_seen = xcalloc(2 * N, sizeof(int), "tokens");
    bind_attention(m);
}

// ---------------------------------------------------------------------------
// The whole model

void model_forward(GPT2 *m, const int *tokens, const int *targets, int B, int T) {
    if (B != m->B || T != m->T || !m->encoded) alloc_activations(m, B, T);
    int N = B * T, C = m->C, L = m->L;
    size_t NC = (size_t)N * C;
    int *tok = (int *)m->targets_seen, *tgt = tok + N;  // kept for backward
    for (int i = 0; i < N; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->V) die("token id %d at position %d is outside the vocabulary [0, %d)", tokens[i], i, m->V);
        if (targets && (targets[i] < 0 || targets[i] >= m->V)) die("target id %d at position %d is outside the vocabulary [0, %d)", targets[i], i, m->V);
        tok[i] = tokens[i];
        tgt[i] = targets ? targets[i] : 0;
    }
    TIMED(PROF_OTHER, encoder_forward(m->encoded, tok, m->p[P_WTE], m->p[P_WPE], B, T, C));
    double distill = 0;
    for (int l = 0; l < L; l++) {
        const real *res = l == 0 ? m->encoded : m->residual3 + (size_t)(l - 1) * NC;
        real *ln1 = m->ln1 + l * NC, *qkv = m->qkv + l * 3 * NC, *atty = m->atty + l * NC;
        real *res2 = m->residual2 + l * NC, *ln2 = m->ln2 + l * NC, *res3 = m->residual3 + l * NC;
        real *fch = m->fch + l * 4 * NC, *fchg = m->fch_gelu + l * 4 * NC;
        size_t lc = (size_t)l * C;
        TIMED(PROF_LAYERNORM, layernorm_forward(ln1, m->ln1_mean + (size_t)l * N, m->ln1_rstd + (size_t)l * N, res,
                                                m->p[P_LN1W] + lc, m->p[P_LN1B] + lc, N, C));
        TIMED(PROF_MATMUL_FWD, matmul_forward(qkv, ln1, m->p[P_QKVW] + lc * 3 * C, m->p[P_QKVB] + 3 * lc, N, C, 3 * C));
        TIMED(PROF_ATTN_FWD, distill += m->attn->forward(&m->alayer[l], atty, qkv, B, T));
        TIMED(PROF_MATMUL_FWD, matmul_forward(res2, atty, m->p[P_ATTPROJW] + lc * C, m->p[P_ATTPROJB] + lc, N, C, C));
        TIMED(PROF_OTHER, residual_forward(res2, res, res2, NC));
        TIMED(PROF_LAYERNORM, layernorm_forward(ln2, m->ln2_mean + (size_t)l * N, m->ln2_rstd + (size_t)l * N, res2,
                                                m->p[P_LN2W] + lc, m->p[P_LN2B] + lc, N, C));
        TIMED(PROF_MATMUL_FWD, matmul_forward(fch, ln2, m->p[P_FCW] + lc * 4 * C, m->p[P_FCB] + 4 * lc, N, C, 4 * C));
        TIMED(PROF_GELU, gelu_forward(fchg, fch, 4 * NC));
        TIMED(PROF_MATMUL_FWD, matmul_forward(res3, fchg, m->p[P_FCPROJW] + lc * 4 * C, m->p[P_FCPROJB] + lc, N, 4 * C, C));
        TIMED(PROF_OTHER, residual_forward(res3, res2, res3, NC));
    }
    TIMED(PROF_LAYERNORM, layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, m->residual3 + (size_t)(L - 1) * NC,
                                            m->p[P_LNFW], m->p[P_LNFB], N, C));
    TIMED(PROF_MATMUL_FWD, matmul_forward(m->logits, m->lnf, m->p[P_WTE], NULL, N, C, m->Vp));
    m->loss = m->lm_loss = m->distill_loss = 0;
    if (!targets) return;
    TIMED(PROF_LOSS, softmax_xent_forward(m->losses, m->logits, tgt, N, m->V, m->Vp));
    double sum = 0;
    for (int i = 0; i < N; i++) sum += m->losses[i];
    m->lm_loss = sum / N;
    m->distill_loss = distill / ((double)L * B * m->NH * T);
    m->loss = m->lm_loss + m->cfg.distill_weight * m->distill_loss;
}

void model_zero_grad(GPT2 *m) { memset(m->grads, 0, m->n_params * sizeof(real)); }

static void zero(real *x, size_t n) { memset(x, 0, n * sizeof(real)); }

void model_backward(GPT2 *m, double grad_scale) {
    int B = m->B, T = m->T, N = B * T, C = m->C, L = m->L;
    size_t NC = (size_t)N * C;
    const int *tok = m->targets_seen, *tgt = tok + N;
    double distill_scale = grad_scale * m->cfg.distill_weight / ((double)L * B * m->NH * T);
    TIMED(PROF_LOSS, softmax_xent_backward(m->logits, tgt, (real)(grad_scale / N), N, m->Vp));
    zero(m->dln, NC);
    TIMED(PROF_MATMUL_BWD, matmul_backward(m->dln, m->g[P_WTE], NULL, m->logits, m->lnf, m->p[P_WTE], N, C, m->Vp));
    zero(m->dresidual, NC);
    TIMED(PROF_LAYERNORM, layernorm_backward(m->dresidual, m->g[P_LNFW], m->g[P_LNFB], m->ln_partial, m->dln,
                                             m->residual3 + (size_t)(L - 1) * NC, m->p[P_LNFW], m->lnf_mean, m->lnf_rstd, N, C));
    for (int l = L - 1; l >= 0; l--) {
        const real *res = l == 0 ? m->encoded : m->residual3 + (size_t)(l - 1) * NC;
        size_t lc = (size_t)l * C;
        // MLP branch: dresidual is the gradient of residual3 = residual2 + fcproj(gelu(fc(ln2)))
        zero(m->dbig2, 4 * NC);
        TIMED(PROF_MATMUL_BWD, matmul_backward(m->dbig2, m->g[P_FCPROJW] + lc * 4 * C, m->g[P_FCPROJB] + lc, m->dresidual,
                                               m->fch_gelu + l * 4 * NC, m->p[P_FCPROJW] + lc * 4 * C, N, 4 * C, C));
        TIMED(PROF_GELU, gelu_backward(m->dbig, m->fch + l * 4 * NC, m->dbig2, 4 * NC));
        zero(m->dln, NC);
        TIMED(PROF_MATMUL_BWD, matmul_backward(m->dln, m->g[P_FCW] + lc * 4 * C, m->g[P_FCB] + 4 * lc, m->dbig,
                                               m->ln2 + l * NC, m->p[P_FCW] + lc * 4 * C, N, C, 4 * C));
        TIMED(PROF_LAYERNORM, layernorm_backward(m->dresidual, m->g[P_LN2W] + lc, m->g[P_LN2B] + lc, m->ln_partial, m->dln,
                                                 m->residual2 + l * NC, m->p[P_LN2W] + lc, m->ln2_mean + (size_t)l * N,
                                                 m->ln2_rstd + (size_t)l * N, N, C));
        // Attention branch: dresidual is now the gradient of residual2 = res + attproj(attn(qkv(ln1)))
        zero(m->datty, NC);
        TIMED(PROF_MATMUL_BWD, matmul_backward(m->datty, m->g[P_ATTPROJW] + lc * C, m->g[P_ATTPROJB] + lc, m->dresidual,
                                               m->atty + l * NC, m->p[P_ATTPROJW] + lc * C, N, C, C));
        zero(m->dqkv, 3 * NC);
        TIMED(PROF_ATTN_BWD, m->attn->backward(&m->alayer[l], m->dqkv, m->datty, m->qkv + l * 3 * NC, m->atty + l * NC,
                                               B, T, distill_scale));
        zero(m->dln, NC);
        TIMED(PROF_MATMUL_BWD, matmul_backward(m->dln, m->g[P_QKVW] + lc * 3 * C, m->g[P_QKVB] + 3 * lc, m->dqkv,
                                               m->ln1 + l * NC, m->p[P_QKVW] + lc * 3 * C, N, C, 3 * C));
        TIMED(PROF_LAYERNORM, layernorm_backward(m->dresidual, m->g[P_LN1W] + lc, m->g[P_LN1B] + lc, m->ln_partial, m->dln,
                                                 res, m->p[P_LN1W] + lc, m->ln1_mean + (size_t)l * N,
                                                 m->ln1_rstd + (size_t)l * N, N, C));
    }
    TIMED(PROF_OTHER, encoder_backward(m->g[P_WTE], m->g[P_WPE], m->dresidual, tok, B, T, C));
}

// ---------------------------------------------------------------------------
// Optimisation

#define NORM_CHUNK 65536  // fixed summation blocks: the same norm for any thread count
#define NORM_BLOCK 1024

void model_begin_step(GPT2 *m) {
    if (m->attn->before_step)
        for (int l = 0; l < m->L; l++) m->attn->before_step(&m->alayer[l], m->step);
}

double model_grad_norm(const GPT2 *m) {
    size_t n = m->n_params, n_chunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double *part = xcalloc(n_chunks, sizeof(double), "gradient norm partials");
    double t0 = now_seconds();
    #pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n_chunks; k++) {
        // Squares by row_sum's float chains over blocks of NORM_BLOCK (so each
        // chain adds NORM_BLOCK / CHAINS terms); blocks summed in double.
        size_t end = (k + 1) * NORM_CHUNK < n ? (k + 1) * NORM_CHUNK : n;
        double s = 0;
        for (size_t i = k * NORM_CHUNK; i < end; i += NORM_BLOCK)
            s += row_sum(m->grads + i, (int)(end - i < NORM_BLOCK ? end - i : NORM_BLOCK), 0, 1);
        part[k] = s;
    }
    double total = 0;
    for (size_t k = 0; k < n_chunks; k++) total += part[k];
    free(part);
    model_prof[PROF_OPTIMIZER] += now_seconds() - t0;
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
    const Config *c = &m->cfg;
    long t = m->step + 1;
    double b1 = c->beta1, b2 = c->beta2;
    real c1 = (real)(1.0 / (1.0 - pow(b1, (double)t))), c2 = (real)(1.0 / (1.0 - pow(b2, (double)t)));
    real rlr = (real)lr, eps = (real)c->adam_eps;
    real clip = (real)(c->grad_clip > 0 && grad_norm > c->grad_clip ? c->grad_clip / grad_norm : 1.0);
    real *restrict p = m->params, *restrict g = m->grads, *restrict mo = m->m, *restrict vo = m->v;
    double t0 = now_seconds();
    #pragma omp parallel
    for (int r = 0; r < m->n_runs; r++) {
        size_t lo = m->runs[r].off, hi = lo + m->runs[r].n;
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
    m->step = t;
    model_prof[PROF_OPTIMIZER] += now_seconds() - t0;
}

// ---------------------------------------------------------------------------
// Generation: the same layers on one row at a time, attention in its
// recurrent form (a KV cache for softmax, the (S, z) state for linear kinds).

// Working rows at the front of the state, then each layer's attention state.
enum { ROW_X, ROW_LN, ROW_QKV = ROW_LN + 1, ROW_Y = ROW_QKV + 3, ROW_H = ROW_Y + 1, ROW_HG = ROW_H + 4, N_ROWS = ROW_HG + 4 };

real *model_state_alloc(GPT2 *m) {
    size_t per_layer = m->attn->state_size(&m->cfg, m->maxT);
    // One token attends to up to seq_len positions: scratch sized for (1, seq_len).
    size_t need = m->attn->scratch_size(&m->cfg, 1, m->maxT);
    if (m->attn_scratch && m->attn->scratch_size(&m->cfg, m->B, m->T) < need) {
        free(m->attn_scratch);
        m->attn_scratch = NULL;
    }
    if (!m->attn_scratch) m->attn_scratch = act(need, "attention scratch");
    bind_attention(m);
    return xcalloc((size_t)N_ROWS * m->C + 2 + (size_t)m->L * per_layer, sizeof(real), "generation state");
}

void model_step(GPT2 *m, real *state, int token, int pos, real *logits) {
    int C = m->C;
    if (token < 0 || token >= m->V) die("token id %d is outside the vocabulary [0, %d)", token, m->V);
    if (pos >= m->maxT) die("position %d is beyond the model's seq_len %d", pos, m->maxT);
    real *x = state + ROW_X * C, *ln = state + ROW_LN * C, *qkv = state + ROW_QKV * C;
    real *y = state + ROW_Y * C, *h = state + ROW_H * C, *hg = state + ROW_HG * C;
    real *mean = state + N_ROWS * C, *rstd = mean + 1;
    real *astate = state + (size_t)N_ROWS * C + 2;
    size_t per_layer = m->attn->state_size(&m->cfg, m->maxT);
    int tok[1] = {token};
    // The embedding of one token at position pos: wpe row pos, via a shifted base.
    encoder_forward(x, tok, m->p[P_WTE], m->p[P_WPE] + (size_t)pos * C, 1, 1, C);
    for (int l = 0; l < m->L; l++) {
        size_t lc = (size_t)l * C;
        layernorm_forward(ln, mean, rstd, x, m->p[P_LN1W] + lc, m->p[P_LN1B] + lc, 1, C);
        matmul_forward(qkv, ln, m->p[P_QKVW] + lc * 3 * C, m->p[P_QKVB] + 3 * lc, 1, C, 3 * C);
        m->attn->step(&m->alayer[l], astate + (size_t)l * per_layer, y, qkv, pos);
        matmul_forward(h, y, m->p[P_ATTPROJW] + lc * C, m->p[P_ATTPROJB] + lc, 1, C, C);
        residual_forward(x, x, h, (size_t)C);
        layernorm_forward(ln, mean, rstd, x, m->p[P_LN2W] + lc, m->p[P_LN2B] + lc, 1, C);
        matmul_forward(h, ln, m->p[P_FCW] + lc * 4 * C, m->p[P_FCB] + 4 * lc, 1, C, 4 * C);
        gelu_forward(hg, h, 4 * (size_t)C);
        matmul_forward(h, hg, m->p[P_FCPROJW] + lc * 4 * C, m->p[P_FCPROJB] + lc, 1, 4 * C, C);
        residual_forward(x, x, h, (size_t)C);
    }
    layernorm_forward(ln, mean, rstd, x, m->p[P_LNFW], m->p[P_LNFB], 1, C);
    matmul_forward(logits, ln, m->p[P_WTE], NULL, 1, C, m->Vp);
}

// ---------------------------------------------------------------------------
// Checkpoints. docs/checkpoint-format.md documents every field.

#define CKPT_MAGIC 20241124
#define CKPT_VERSION 1
#define LLMC_MAGIC 20240326
#define LLMC_VERSION_FP32 3
enum { H_MAGIC, H_VERSION, H_REAL_BYTES, H_LAYER, H_HEAD, H_EMBD, H_SEQ, H_VOCAB, H_PVOCAB, H_OPTIM,
       H_CONFIG_LEN, H_ATTN_PARAMS, H_ATTN_BUFFERS, H_STEP_LO, H_STEP_HI, H_NPARAM_LO, H_NPARAM_HI,
       H_ATTN_NAME = 32, H_DATA_RNG = 40, H_INTS = 256 };

static void split64(int32_t *h, int at, uint64_t x) {
    uint32_t lo = (uint32_t)x, hi = (uint32_t)(x >> 32);
    memcpy(&h[at], &lo, 4);
    memcpy(&h[at + 1], &hi, 4);
}

static uint64_t join64(const int32_t *h, int at) {
    uint32_t lo, hi;
    memcpy(&lo, &h[at], 4);
    memcpy(&hi, &h[at + 1], 4);
    return (uint64_t)hi << 32 | lo;
}

void model_save(const GPT2 *m, const char *path, const TrainState *ts, int with_optimizer) {
    char tmp[4200];
    char *cfg_text = NULL;
    size_t cfg_len = 0;
    FILE *mem = open_memstream(&cfg_text, &cfg_len);
    if (!mem) die("cannot format the config for '%s': %s", path, strerror(errno));
    config_write(&m->cfg, mem);
    fclose(mem);

    int32_t h[H_INTS] = {0};
    h[H_MAGIC] = CKPT_MAGIC;
    h[H_VERSION] = CKPT_VERSION;
    h[H_REAL_BYTES] = (int32_t)sizeof(real);
    h[H_LAYER] = m->L;
    h[H_HEAD] = m->NH;
    h[H_EMBD] = m->C;
    h[H_SEQ] = m->maxT;
    h[H_VOCAB] = m->V;
    h[H_PVOCAB] = m->Vp;
    h[H_OPTIM] = with_optimizer;
    h[H_CONFIG_LEN] = (int32_t)cfg_len;
    h[H_ATTN_PARAMS] = (int32_t)m->n_attn;
    h[H_ATTN_BUFFERS] = (int32_t)(m->n_buffers / (size_t)m->L);
    split64(h, H_STEP_LO, (uint64_t)m->step);
    split64(h, H_NPARAM_LO, m->n_params);
    strncpy((char *)&h[H_ATTN_NAME], m->attn->name, 31);
    for (int i = 0; i < 4; i++) split64(h, H_DATA_RNG + 2 * i, ts ? ts->data_rng[i] : 0);

    FILE *f = replace_open(path, "wb", tmp, sizeof tmp);
    xfwrite(h, sizeof(int32_t), H_INTS, f, tmp);
    xfwrite(cfg_text, 1, cfg_len, f, tmp);
    xfwrite(m->params, sizeof(real), m->n_params, f, tmp);
    xfwrite(m->buffers, sizeof(real), m->n_buffers, f, tmp);
    if (with_optimizer) {
        xfwrite(m->m, sizeof(real), m->n_params, f, tmp);
        xfwrite(m->v, sizeof(real), m->n_params, f, tmp);
    }
    replace_commit(f, tmp, path);
    free(cfg_text);
}

// Read n values stored with `bytes` bytes each (4 or 8) into real.
static void read_reals(real *dst, size_t n, int bytes, FILE *f, const char *path) {
    if (bytes == (int)sizeof(real)) {
        xfread(dst, sizeof(real), n, f, path);
        return;
    }
    enum { BLOCK = 4096 };
    unsigned char buf[BLOCK * 8];
    for (size_t i = 0; i < n; i += BLOCK) {
        size_t k = n - i < BLOCK ? n - i : BLOCK;
        xfread(buf, (size_t)bytes, k, f, path);
        for (size_t j = 0; j < k; j++) {
            if (bytes == 4) { float x; memcpy(&x, buf + 4 * j, 4); dst[i + j] = (real)x; }
            else { double x; memcpy(&x, buf + 8 * j, 8); dst[i + j] = (real)x; }
        }
    }
}

static void check_dim(const char *path, const char *what, long file, long cfg) {
    if (file != cfg)
        die("checkpoint '%s' has %s = %ld but the config says %ld: use the checkpoint's config (saved in out_dir/config.txt) or a matching one",
            path, what, file, cfg);
}

static void check_finite(const GPT2 *m, const char *path) {
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->params[i])) die("checkpoint '%s' holds a non-finite weight (NaN or inf) at index %zu: it is corrupt", path, i);
}

// llm.c's GPT-2 checkpoint: header [magic, version, maxT, V, L, NH, C, Vp],
// then the 16 GPT-2 tensors in our order, float32, with its own Vp and maxT.
static void load_llmc(GPT2 *m, FILE *f, const int32_t *h, const char *path, long size) {
    if (h[1] != LLMC_VERSION_FP32) die("llm.c checkpoint '%s' has version %d; only fp32 (version 3) is supported", path, h[1]);
    int maxT = h[2], V = h[3], L = h[4], NH = h[5], C = h[6], Vp = h[7];
    if (Vp < V || maxT < 1) die("llm.c checkpoint '%s': corrupt header (padded vocab %d < vocab %d, or context %d)", path, Vp, V, maxT);
    check_dim(path, "n_layer", L, m->L);
    check_dim(path, "n_head", NH, m->NH);
    check_dim(path, "n_embd", C, m->C);
    check_dim(path, "vocab_size", V, m->V);
    if (maxT < m->maxT) die("llm.c checkpoint '%s' has %d positions; the config asks for seq_len %d", path, maxT, m->maxT);
    size_t expect = 0;
    for (int i = 0; i < P_ATTN; i++) expect += m->sizes[i];
    expect += (size_t)(Vp - m->Vp) * C + (size_t)(maxT - m->maxT) * C;
    if ((size_t)size != H_INTS * 4 + expect * 4)
        die("llm.c checkpoint '%s' is %ld bytes; its header implies %zu (truncated or not fp32)", path, size, H_INTS * 4 + expect * 4);
    for (int i = 0; i < P_ATTN; i++) {
        if (i == P_WTE || i == P_WPE) {
            // Copy the rows we have room for (real vocabulary / our positions), skip the rest.
            int rows = i == P_WTE ? V : m->maxT, file_rows = i == P_WTE ? Vp : maxT;
            memset(m->p[i], 0, m->sizes[i] * sizeof(real));
            read_reals(m->p[i], (size_t)rows * C, 4, f, path);
            xfseek(f, (long)(file_rows - rows) * C * 4, SEEK_CUR, path);
        } else {
            read_reals(m->p[i], m->sizes[i], 4, f, path);
        }
    }
    if (m->attn->n_params(&m->cfg) > 0)
        warn("'%s' is an llm.c GPT-2 checkpoint: the %s attention parameters keep their initial values", path, m->attn->name);
}

void model_load(GPT2 *m, const char *path, TrainState *ts) {
    FILE *f = xfopen(path, "rb");
    long size = xfsize(f, path);
    int32_t h[H_INTS];
    if (size < (long)sizeof h) die("'%s' is not a checkpoint: %ld bytes is shorter than the header", path, size);
    xfread(h, sizeof(int32_t), H_INTS, f, path);
    if (h[H_MAGIC] == LLMC_MAGIC) {
        if (ts) die("'%s' is an llm.c checkpoint: it has weights only and can start a run (init_from) but not resume one", path);
        load_llmc(m, f, h, path, size);
        xfclose(f, path);
        check_finite(m, path);
        return;
    }
    if (h[H_MAGIC] != CKPT_MAGIC) die("'%s' is not a checkpoint: magic %d, expected %d (ours) or %d (llm.c)", path, h[H_MAGIC], CKPT_MAGIC, LLMC_MAGIC);
    if (h[H_VERSION] != CKPT_VERSION) die("checkpoint '%s' has version %d; this build reads version %d", path, h[H_VERSION], CKPT_VERSION);
    int rb = h[H_REAL_BYTES];
    if (rb != 4 && rb != 8) die("checkpoint '%s': element size %d is neither 4 nor 8 (corrupt header)", path, rb);
    char name[33] = {0};
    memcpy(name, &h[H_ATTN_NAME], 32);
    if (strcmp(name, m->attn->name) != 0)
        die("checkpoint '%s' was trained with attention = %s but the config says %s", path, name, m->attn->name);
    check_dim(path, "n_layer", h[H_LAYER], m->L);
    check_dim(path, "n_head", h[H_HEAD], m->NH);
    check_dim(path, "n_embd", h[H_EMBD], m->C);
    check_dim(path, "seq_len", h[H_SEQ], m->maxT);
    check_dim(path, "vocab_size", h[H_VOCAB], m->V);
    check_dim(path, "attention parameters per layer", h[H_ATTN_PARAMS], (long)m->n_attn);
    check_dim(path, "attention buffers per layer", h[H_ATTN_BUFFERS], (long)(m->n_buffers / (size_t)m->L));
    if (h[H_PVOCAB] != m->Vp || join64(h, H_NPARAM_LO) != m->n_params) die("checkpoint '%s': parameter count does not match this build's layout", path);
    if (ts && !h[H_OPTIM]) die("checkpoint '%s' has no optimizer state: it can start a run (init_from) but not resume one", path);
    if (ts && (int64_t)join64(h, H_STEP_LO) < 0) die("checkpoint '%s': step %lld is negative: the header is corrupt", path, (long long)join64(h, H_STEP_LO));
    size_t expect = sizeof h + (size_t)h[H_CONFIG_LEN] +
                    (m->n_params * (h[H_OPTIM] ? 3 : 1) + m->n_buffers) * (size_t)rb;
    if (h[H_CONFIG_LEN] < 0 || (size_t)size != expect)
        die("checkpoint '%s' is %ld bytes but its header implies %zu: it is truncated or corrupt", path, size, expect);
    xfseek(f, h[H_CONFIG_LEN], SEEK_CUR, path);
    read_reals(m->params, m->n_params, rb, f, path);
    read_reals(m->buffers, m->n_buffers, rb, f, path);
    if (ts) {
        read_reals(m->m, m->n_params, rb, f, path);
        read_reals(m->v, m->n_params, rb, f, path);
        m->step = (long)join64(h, H_STEP_LO);
        for (int i = 0; i < 4; i++) ts->data_rng[i] = join64(h, H_DATA_RNG + 2 * i);
    }
    xfclose(f, path);
    check_finite(m, path);
    if (ts)  // AdamW's moments: finite, and the second one never negative
        for (size_t i = 0; i < m->n_params; i++)
            if (!isfinite(m->m[i]) || !(m->v[i] >= 0 && m->v[i] < INFINITY))
                die("checkpoint '%s' holds a non-finite or negative optimizer moment at index %zu: it is corrupt", path, i);
}

void checkpoint_config(const char *path, Config *c) {
    FILE *f = xfopen(path, "rb");
    int32_t h[H_INTS];
    if (xfsize(f, path) < (long)sizeof h) die("'%s' is not a checkpoint: shorter than the header", path);
    xfread(h, sizeof(int32_t), H_INTS, f, path);
    if (h[H_MAGIC] != CKPT_MAGIC) die("'%s' is not a hedgehog.c checkpoint (magic %d, expected %d)", path, h[H_MAGIC], CKPT_MAGIC);
    if (h[H_CONFIG_LEN] <= 0 || h[H_CONFIG_LEN] > (1 << 20)) die("checkpoint '%s': config length %d is corrupt", path, h[H_CONFIG_LEN]);
    char *text = xmalloc((size_t)h[H_CONFIG_LEN] + 1, "checkpoint config");
    xfread(text, 1, (size_t)h[H_CONFIG_LEN], f, path);
    text[h[H_CONFIG_LEN]] = '\0';
    xfclose(f, path);
    config_defaults(c);
    config_load_text(c, text, path);
    free(text);
}
