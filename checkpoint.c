// checkpoint.c — the checkpoint format (docs/checkpoint-format.md) and
// llm.c's GPT-2 format, read and written. See checkpoint.h.
#include "checkpoint.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

static void save(const GPT2 *m, const char *path, const TrainState *ts, int with_optimizer, const real *full_m,
                 const real *full_v) {
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
        // The file holds every parameter's moments; this model holds those
        // of [lo, hi) (its share), or full-size ones gathered for it, or none
        // before the first update: the rest are zero.
        const real *moment[2] = {full_m ? full_m : m->m, full_m ? full_v : m->v};
        size_t lo = full_m ? 0 : m->opt_lo, hi = full_m ? m->n_params : m->opt_hi;
        real *zeros = xcalloc(m->n_params, sizeof(real), "zero moments");
        for (int k = 0; k < 2; k++) {
            xfwrite(zeros, sizeof(real), moment[k] ? lo : m->n_params, f, tmp);
            if (moment[k]) {
                xfwrite(moment[k], sizeof(real), hi - lo, f, tmp);
                xfwrite(zeros, sizeof(real), m->n_params - hi, f, tmp);
            }
        }
        free(zeros);
    }
    replace_commit(f, tmp, path);
    free(cfg_text);
}

// Read n values stored with `bytes` bytes each (4 or 8) into real.
void model_save(const GPT2 *m, const char *path, const TrainState *ts, int with_optimizer) {
    save(m, path, ts, with_optimizer, NULL, NULL);
}

void model_save_gathered(const GPT2 *m, const char *path, const TrainState *ts, const real *full_m, const real *full_v) {
    save(m, path, ts, 1, full_m, full_v);
}

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
    if (strcmp(m->cfg.attention, "softmax") != 0)
        printf("converted %s (llm.c's softmax GPT-2) to attention = %s: the GPT-2 tensors copied%s\n", path,
               m->cfg.attention, m->n_attn ? "; the attention's own parameters start fresh" : "");
}

void model_load(GPT2 *m, const char *path, TrainState *ts) {
    FILE *f = xfopen(path, "rb");
    long size = xfsize(f, path);
    int32_t h[H_INTS];
    if (size < (long)sizeof h) die("'%s' is not a checkpoint: %ld bytes is shorter than the header", path, size);
    xfread(h, sizeof(int32_t), H_INTS, f, path);
    if (h[H_MAGIC] == LLMC_MAGIC) {
        if (ts) die("'%s' is an llm.c checkpoint: it has weights only and can start a run (init_from) but not resume one", path);
        if (strcmp(m->cfg.attention, "softmax") != 0 && !m->cfg.convert)
            die("'%s' is llm.c's softmax GPT-2 but this config's attention is %s: add convert=1 to start from its tensors",
                path, m->cfg.attention);
        load_llmc(m, f, h, path, size);
        xfclose(f, path);
        check_finite(m, path);
        return;
    }
    if (h[H_MAGIC] != CKPT_MAGIC) die("'%s' is not a checkpoint: magic %d, expected %d (ours) or %d (llm.c)", path, h[H_MAGIC], CKPT_MAGIC, LLMC_MAGIC);
    if (h[H_VERSION] != CKPT_VERSION) die("checkpoint '%s' has version %d; this build reads version %d", path, h[H_VERSION], CKPT_VERSION);
    int rb = h[H_REAL_BYTES];
    if (rb != 4 && rb != 8) die("checkpoint '%s': element size %d is neither 4 nor 8 (corrupt header)", path, rb);
    check_dim(path, "n_layer", h[H_LAYER], m->L);
    check_dim(path, "n_head", h[H_HEAD], m->NH);
    check_dim(path, "n_embd", h[H_EMBD], m->C);
    check_dim(path, "seq_len", h[H_SEQ], m->maxT);
    check_dim(path, "vocab_size", h[H_VOCAB], m->V);
    if (h[H_CONFIG_LEN] <= 0 || h[H_CONFIG_LEN] > (1 << 20) || h[H_ATTN_PARAMS] < 0 || h[H_ATTN_BUFFERS] < 0)
        die("checkpoint '%s': corrupt header (config length %d, attention sizes %d, %d)", path, h[H_CONFIG_LEN],
            h[H_ATTN_PARAMS], h[H_ATTN_BUFFERS]);
    // The file's own layout: the GPT-2 tensors as ours, then its attention's.
    size_t file_attn = (size_t)h[H_ATTN_PARAMS], file_buffers = (size_t)m->L * (size_t)h[H_ATTN_BUFFERS];
    size_t file_params = m->n_params - m->sizes[P_ATTN] + (size_t)m->L * file_attn;
    if (h[H_PVOCAB] != m->Vp || join64(h, H_NPARAM_LO) != file_params)
        die("checkpoint '%s': parameter count does not match this build's layout", path);
    if (ts && !h[H_OPTIM]) die("checkpoint '%s' has no optimizer state: it can start a run (init_from) but not resume one", path);
    if (ts && (int64_t)join64(h, H_STEP_LO) < 0) die("checkpoint '%s': step %lld is negative: the header is corrupt", path, (long long)join64(h, H_STEP_LO));
    size_t expect = sizeof h + (size_t)h[H_CONFIG_LEN] + (file_params * (h[H_OPTIM] ? 3 : 1) + file_buffers) * (size_t)rb;
    if ((size_t)size != expect)
        die("checkpoint '%s' is %ld bytes but its header implies %zu: it is truncated or corrupt", path, size, expect);

    // Which attention it holds, from the config saved in it. The text's
    // buffer is kept between calls: config_load_text may die() on a corrupt
    // file, and under the fuzz harness (which returns from die) a buffer
    // held only by this frame would be lost.
    static char *text;
    static size_t text_cap;
    if ((size_t)h[H_CONFIG_LEN] + 1 > text_cap) {
        free(text);
        text_cap = (size_t)h[H_CONFIG_LEN] + 1;
        text = xmalloc(text_cap, "checkpoint config");
    }
    xfread(text, 1, (size_t)h[H_CONFIG_LEN], f, path);
    text[h[H_CONFIG_LEN]] = '\0';
    Config saved;
    config_defaults(&saved);
    config_load_text(&saved, text, path);
    char name[33] = {0};
    memcpy(name, &h[H_ATTN_NAME], 32);
    if (strcmp(name, saved.attention) != 0)
        die("checkpoint '%s': its header says attention = %s but its saved config says %s: it is corrupt", path, name,
            saved.attention);
    char why[CONFIG_STR + 64];
    const char *diff = attn_difference(&saved, &m->cfg, why, sizeof why);
    if (diff && (ts || !m->cfg.convert))
        die("checkpoint '%s' was trained with %s, another attention than this config's: %s", path, diff,
            ts ? "a run resumes only with its own attention" : "add convert=1 to start from the tensors both have");
    if (!diff) {
        check_dim(path, "attention parameters per layer", (long)file_attn, (long)m->n_attn);
        check_dim(path, "attention buffers per layer", (long)h[H_ATTN_BUFFERS], (long)(m->n_buffers / (size_t)m->L));
        read_reals(m->params, m->n_params, rb, f, path);
        read_reals(m->buffers, m->n_buffers, rb, f, path);
    } else {
        // Conversion: every GPT-2 tensor, and the attention's own tensors
        // when both kinds have them in the same shape (hedgehog's maps
        // across hedgehog_map variants); the rest keep their fresh values.
        int same_attn = strcmp(saved.attention, m->cfg.attention) == 0 && file_attn == m->n_attn;
        int same_buffers = strcmp(saved.attention, m->cfg.attention) == 0 && file_buffers == m->n_buffers;
        read_reals(m->params, m->n_params - m->sizes[P_ATTN], rb, f, path);
        if (same_attn) read_reals(m->p[P_ATTN], m->sizes[P_ATTN], rb, f, path);
        else xfseek(f, (long)((size_t)m->L * file_attn * (size_t)rb), SEEK_CUR, path);
        if (same_buffers) read_reals(m->buffers, m->n_buffers, rb, f, path);
        printf("converted %s (%s) to attention = %s: the GPT-2 tensors copied%s\n", path, diff, m->cfg.attention,
               same_attn ? ", and the attention's own" : m->n_attn ? "; the attention's own parameters start fresh" : "");
    }
    if (ts) {
        // Every parameter's moments are in the file; this model keeps its share's.
        model_need_moments(m);
        size_t lo = m->opt_lo, n = m->opt_hi - m->opt_lo;
        for (int k = 0; k < 2; k++) {
            xfseek(f, (long)(lo * (size_t)rb), SEEK_CUR, path);
            read_reals(k ? m->v : m->m, n, rb, f, path);
            xfseek(f, (long)((m->n_params - lo - n) * (size_t)rb), SEEK_CUR, path);
        }
        m->step = (long)join64(h, H_STEP_LO);
        for (int i = 0; i < 4; i++) ts->data_rng[i] = join64(h, H_DATA_RNG + 2 * i);
    }
    xfclose(f, path);
    check_finite(m, path);
    if (ts)  // AdamW's moments: finite, and the second one never negative
        for (size_t i = 0; i < m->n_params; i++)
            if (i >= m->opt_lo && i < m->opt_hi && (!isfinite(m->m[i - m->opt_lo]) ||
                                                     !(m->v[i - m->opt_lo] >= 0 && m->v[i - m->opt_lo] < INFINITY)))
                die("checkpoint '%s' holds a non-finite or negative optimizer moment at index %zu: it is corrupt", path, i);
}

void checkpoint_config(const char *path, Config *c) {
    FILE *f = xfopen(path, "rb");
    int32_t h[H_INTS];
    if (xfsize(f, path) < (long)sizeof h) die("'%s' is not a checkpoint: shorter than the header", path);
    xfread(h, sizeof(int32_t), H_INTS, f, path);
    config_defaults(c);
    if (h[H_MAGIC] == LLMC_MAGIC) {  // [magic, version, maxT, V, L, NH, C, Vp]: a softmax GPT-2
        xfclose(f, path);
        if (h[2] < 1 || h[3] < 2 || h[4] < 1 || h[5] < 1 || h[6] < 1 || h[6] % h[5] != 0)
            die("llm.c checkpoint '%s': corrupt header (context %d, vocab %d, %d layers, %d heads, width %d)", path,
                h[2], h[3], h[4], h[5], h[6]);
        char text[512];
        snprintf(text, sizeof text, "attention = softmax\nseq_len = %d\nvocab_size = %d\nn_layer = %d\nn_head = %d\n"
                 "n_embd = %d\ntokenizer = gpt2\n", h[2], h[3], h[4], h[5], h[6]);
        config_load_text(c, text, path);
        return;
    }
    if (h[H_MAGIC] != CKPT_MAGIC)
        die("'%s' is not a checkpoint (magic %d; expected %d, ours, or %d, llm.c's)", path, h[H_MAGIC], CKPT_MAGIC, LLMC_MAGIC);
    if (h[H_CONFIG_LEN] <= 0 || h[H_CONFIG_LEN] > (1 << 20)) die("checkpoint '%s': config length %d is corrupt", path, h[H_CONFIG_LEN]);
    char *text = xmalloc((size_t)h[H_CONFIG_LEN] + 1, "checkpoint config");
    xfread(text, 1, (size_t)h[H_CONFIG_LEN], f, path);
    text[h[H_CONFIG_LEN]] = '\0';
    xfclose(f, path);
    config_load_text(c, text, path);
    free(text);
}

void model_from_checkpoint(GPT2 *m, const char *path) {
    Config c;
    checkpoint_config(path, &c);
    c.init_from[0] = '\0';   // the weights come from path itself
    c.convert = c.resume = 0;
    model_init(m, &c);
    model_load(m, path, NULL);
}
