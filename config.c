// config.c — the table of settings and the `key = value` parser. See config.h.
#include "config.h"
#include "attention.h"
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

// T_KIND: a choice among the attention kinds (their names come from the
// table in attention.c, so a new kind needs no change here).
typedef enum { T_INT, T_LONG, T_REAL, T_STR, T_CHOICE, T_KIND } KeyType;

typedef struct {
    const char *name;
    KeyType type;
    size_t offset;
    const char *def;       // default, as text (parsed like a user value)
    double min, max;       // inclusive range for numbers
    const char *choices;   // "a|b|c" for T_CHOICE
    const char *help;
} Key;

#define F(field) offsetof(Config, field)
#define BIG 1e18
static const Key KEYS[] = {
    // model
    {"attention", T_KIND, F(attention), "softmax", 0, 0, NULL, "attention kind used in every layer"},
    {"attention_form", T_CHOICE, F(attention_form), "auto", 0, 0, "auto|quadratic|chunked", "linear attentions: T×T quadratic form, chunked form, or auto (the cheaper for the shape)"},
    {"chunk_size", T_INT, F(chunk_size), "64", 1, 65536, NULL, "tokens per chunk in the chunked form"},
    {"n_layer", T_INT, F(n_layer), "4", 1, 1024, NULL, "number of transformer blocks"},
    {"n_head", T_INT, F(n_head), "4", 1, 1024, NULL, "attention heads per block (n_embd must be divisible by it)"},
    {"n_embd", T_INT, F(n_embd), "256", 1, 65536, NULL, "model width C"},
    {"seq_len", T_INT, F(seq_len), "256", 1, 1 << 20, NULL, "context length T (also the number of learned positions)"},
    {"vocab_size", T_INT, F(vocab_size), "50257", 2, 65536, NULL, "vocabulary size: 50257 for GPT-2 BPE, 256 for bytes"},
    {"performer_features", T_INT, F(performer_features), "0", 0, 1 << 16, NULL, "Performer random features m (0 = round(d ln d))"},
    {"performer_redraw", T_INT, F(performer_redraw), "1000", 0, BIG, NULL, "redraw Performer features every this many steps (0 = never)"},
    {"hedgehog_map", T_CHOICE, F(hedgehog_map), "exp", 0, 0, "exp|softmax|joint", "Hedgehog's map of u = Ux + b: [exp(u), exp(-u)] (the paper), [softmax(u), softmax(-u)] (LoLCATs) or softmax([u, -u]) (flash-linear-attention)"},
    {"hedgehog_per_head", T_INT, F(hedgehog_per_head), "0", 0, 1, NULL, "1: one Hedgehog map per head; 0: one per layer, shared by its heads"},
    {"t2r_features", T_INT, F(t2r_features), "0", 0, 1 << 16, NULL, "T2R's features F (0 = the head size)"},
    {"distill_weight", T_REAL, F(distill_weight), "0", 0, 1e6, NULL, "weight of the attention distillation loss, linear kinds (0 = off)"},
    {"distill_qk_grad", T_INT, F(distill_qk_grad), "0", 0, 1, NULL, "1: distillation gradient also reaches q and k; 0: feature maps only"},
    {"lm_weight", T_REAL, F(lm_weight), "1", 0, 1e6, NULL, "weight of the language-modelling loss (0: distillation only, conversion's stage 1)"},
    // optimisation
    {"batch_size", T_INT, F(batch_size), "4", 1, 1 << 20, NULL, "sequences per micro-batch B"},
    {"grad_accum", T_INT, F(grad_accum), "1", 1, 1 << 20, NULL, "micro-batches accumulated per optimizer step"},
    {"max_steps", T_INT, F(max_steps), "1000", 0, BIG, NULL, "optimizer steps (0 = only evaluate)"},
    {"warmup_steps", T_INT, F(warmup_steps), "100", 0, BIG, NULL, "linear learning-rate warm-up steps"},
    {"lr", T_REAL, F(lr), "6e-4", 0, 10, NULL, "peak learning rate"},
    {"min_lr", T_REAL, F(min_lr), "6e-5", 0, 10, NULL, "learning rate at the end of the cosine decay"},
    {"weight_decay", T_REAL, F(weight_decay), "0.1", 0, 10, NULL, "AdamW decoupled weight decay (2-D weight matrices only)"},
    {"beta1", T_REAL, F(beta1), "0.9", 0, 0.999999, NULL, "AdamW first-moment decay"},
    {"beta2", T_REAL, F(beta2), "0.95", 0, 0.999999999, NULL, "AdamW second-moment decay"},
    {"adam_eps", T_REAL, F(adam_eps), "1e-8", 1e-30, 1, NULL, "AdamW epsilon"},
    {"grad_clip", T_REAL, F(grad_clip), "1.0", 0, 1e9, NULL, "clip gradients to this global L2 norm (0 = off)"},
    {"seed", T_LONG, F(seed), "1337", 0, 9.2e18, NULL, "seed for initialisation, batches and random features"},
    // data and evaluation
    {"train_data", T_STR, F(train_data), "data/brown/gpt2_train_*.bin", 0, 0, NULL, "training shards: a file or a glob"},
    {"val_data", T_STR, F(val_data), "data/brown/gpt2_val_*.bin", 0, 0, NULL, "validation shards: a file or a glob"},
    {"train_mask", T_STR, F(train_mask), "", 0, 0, NULL, "loss mask for train_data: shards of 0/1, one per token, 1 = scored as a target (empty: all)"},
    {"val_mask", T_STR, F(val_mask), "", 0, 0, NULL, "loss mask for val_data (empty: all); ./recall make writes both for its tasks"},
    {"window_align", T_INT, F(window_align), "1", 1, 1 << 20, NULL, "training windows start at multiples of this (a task's sequence length: whole sequences)"},
    {"tokenizer", T_CHOICE, F(tokenizer), "gpt2", 0, 0, "gpt2|byte", "tokenizer the data was made with (sample uses it to print text)"},
    {"tokenizer_dir", T_STR, F(tokenizer_dir), "data/cache/gpt2", 0, 0, NULL, "directory with GPT-2's encoder.json and vocab.bpe"},
    {"eval_every", T_INT, F(eval_every), "100", 0, BIG, NULL, "evaluate every this many steps (0 = only at the end)"},
    {"eval_batches", T_INT, F(eval_batches), "20", 1, 1 << 20, NULL, "validation batches per evaluation"},
    // run management
    {"log_every", T_INT, F(log_every), "1", 0, BIG, NULL, "print a progress line every this many steps (0 = quiet)"},
    {"checkpoint_every", T_INT, F(checkpoint_every), "500", 0, BIG, NULL, "write a checkpoint every this many steps (0 = only at the end)"},
    {"out_dir", T_STR, F(out_dir), "out/run", 0, 0, NULL, "directory for checkpoint, metrics CSV and saved config"},
    {"init_from", T_STR, F(init_from), "", 0, 0, NULL, "start from this checkpoint's weights (ours or llm.c's GPT-2 format)"},
    {"convert", T_INT, F(convert), "0", 0, 1, NULL, "1: init_from may hold another attention kind; the tensors both have are copied"},
    {"trainable", T_CHOICE, F(trainable), "all", 0, 0, "all|feature_maps", "what the optimizer updates: every parameter, or only the attention feature maps"},
    {"resume", T_INT, F(resume), "0", 0, 1, NULL, "1: continue the run saved in out_dir exactly where it stopped (init_from and convert, which said how it started, are then ignored)"},
    {"threads", T_INT, F(threads), "0", 0, 4096, NULL, "OpenMP threads (0 = OpenMP's default)"},
};
#define N_KEYS (int)(sizeof KEYS / sizeof KEYS[0])

static const Key *find_key(const char *name) {
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(KEYS[i].name, name) == 0) return &KEYS[i];
    return NULL;
}

static const char *key_choices(const Key *k) { return k->type == T_KIND ? attn_kind_names() : k->choices; }

static int choice_ok(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return 1;
        p += len + (bar != NULL);
    }
    return 0;
}

// Set one key from text; `where` names the origin ("file:line" or "argument").
static void set_value(Config *c, const Key *k, const char *v, const char *where) {
    char *base = (char *)c + k->offset;
    if (k->type == T_STR || k->type == T_CHOICE || k->type == T_KIND) {
        if (k->type != T_STR && !choice_ok(key_choices(k), v))
            die("%s: %s = '%s' is not one of %s", where, k->name, v, key_choices(k));
        if (strlen(v) >= (k->type == T_STR ? CONFIG_STR : 16))
            die("%s: %s value is too long", where, k->name);
        strcpy(base, v);
        return;
    }
    if (*v == '\0') die("%s: %s has no value", where, k->name);
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(x))
        die("%s: %s = '%s' is not a number", where, k->name, v);
    if (k->type != T_REAL && x != floor(x))
        die("%s: %s = '%s' must be a whole number", where, k->name, v);
    double max = k->type == T_INT && k->max > INT_MAX ? INT_MAX : k->max;  // BIG means "no limit" but an int has one
    if (x < k->min || x > max)
        die("%s: %s = %s is out of range [%.15g, %.15g]", where, k->name, v, k->min, max);
    if (k->type == T_INT) *(int *)base = (int)x;
    else if (k->type == T_LONG) *(long *)base = (long)x;
    else *(double *)base = x;
}

void config_defaults(Config *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_KEYS; i++) set_value(c, &KEYS[i], KEYS[i].def, "default");
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

void config_load_text(Config *c, const char *text, const char *origin) {
    char seen[N_KEYS] = {0};
    int lineno = 0;
    const char *p = text;
    int any = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        char line[2048], where[1024];
        snprintf(where, sizeof where, "%s:%d", origin, lineno);
        if (len >= sizeof line) die("%s: line is longer than %zu characters", where, sizeof line - 1);
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (nl != NULL);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)line[i] < 32 && line[i] != '\t' && line[i] != '\r')
                die("%s: binary data in a config file (control byte 0x%02x)", where, (unsigned char)line[i]);
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (*s == '\0') continue;
        char *eq = strchr(s, '=');
        if (!eq) die("%s: expected 'key = value', got '%s'", where, s);
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        const Key *k = find_key(key);
        if (!k) die("%s: unknown key '%s' (./train --help lists every key)", where, key);
        if (seen[k - KEYS]) die("%s: key '%s' is set twice in this file", where, key);
        seen[k - KEYS] = 1;
        set_value(c, k, val, where);
        any = 1;
    }
    if (!any) die("%s: the config file sets no keys (empty file?)", origin);
}

void config_load_file(Config *c, const char *path) {
    if (!path) return;
    size_t len;
    char *text = read_file(path, &len);
    if (strlen(text) != len) die("%s: binary data in a config file (NUL byte)", path);
    config_load_text(c, text, path);
    free(text);
}

void config_set_arg(Config *c, const char *arg) {
    char buf[2048], where[2100];
    if (strlen(arg) >= sizeof buf) die("argument '%.40s...' is too long", arg);
    strcpy(buf, arg);
    snprintf(where, sizeof where, "argument '%s'", arg);
    char *eq = strchr(buf, '=');
    if (!eq) die("%s: expected key=value", where);
    *eq = '\0';
    char *key = trim(buf);
    const Key *k = find_key(key);
    if (!k) die("%s: unknown key '%s' (./train --help lists every key)", where, key);
    set_value(c, k, trim(eq + 1), where);
}

void config_validate(const Config *c) {
    if (c->n_embd % c->n_head != 0)
        die("config: n_embd = %d is not divisible by n_head = %d", c->n_embd, c->n_head);
    if (c->seq_len % c->window_align != 0)
        die("config: seq_len = %d is not a multiple of window_align = %d (validation windows start at multiples of seq_len)",
            c->seq_len, c->window_align);
    if (c->min_lr > c->lr) die("config: min_lr = %g is larger than lr = %g", c->min_lr, c->lr);
    if (c->convert && !c->init_from[0] && !c->resume) die("config: convert = 1 converts the checkpoint init_from names: give init_from=PATH");
    if (c->lm_weight == 0 && c->distill_weight == 0) die("config: lm_weight = 0 and distill_weight = 0 leave nothing to train");
}

// The shortest %g form that reads back to exactly x (0.0002, not
// 0.00020000000000000001): the echo shows values as they were written.
static const char *format_real(char *buf, size_t n, double x) {
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, n, "%.*g", digits, x);
        if (strtod(buf, NULL) == x) break;
    }
    return buf;
}

static void format_value(const Key *k, const Config *c, char *buf, size_t n) {
    const char *base = (const char *)c + k->offset;
    switch (k->type) {
    case T_INT: snprintf(buf, n, "%d", *(const int *)base); break;
    case T_LONG: snprintf(buf, n, "%ld", *(const long *)base); break;
    case T_REAL: format_real(buf, n, *(const double *)base); break;
    default: snprintf(buf, n, "%s", base); break;
    }
}

void config_value(const Config *c, const char *key, char *buf, size_t n) {
    const Key *k = find_key(key);
    if (!k) die("internal: no config key '%s'", key);
    format_value(k, c, buf, n);
}

void config_write(const Config *c, FILE *f) {
    char value[CONFIG_STR];
    for (int i = 0; i < N_KEYS; i++) {
        format_value(&KEYS[i], c, value, sizeof value);
        fprintf(f, "%s = %s\n", KEYS[i].name, value);
    }
}

void config_help(FILE *f) {
    fprintf(f, "usage: ./train [CONFIG] [key=value ...]\n\n"
               "CONFIG is a file of `key = value` lines (# starts a comment); key=value\n"
               "arguments override it. Keys, defaults and meanings:\n\n");
    for (int i = 0; i < N_KEYS; i++) {
        const Key *k = &KEYS[i];
        char def[64];
        snprintf(def, sizeof def, "%s", k->def[0] ? k->def : "\"\"");
        fprintf(f, "  %-20s %-28s %s", k->name, def, k->help);
        if (k->type == T_CHOICE || k->type == T_KIND) fprintf(f, " [%s]", key_choices(k));
        fputc('\n', f);
    }
}

int config_t2r_features(const Config *c) { return c->t2r_features > 0 ? c->t2r_features : c->n_embd / c->n_head; }

int config_performer_m(const Config *c) {
    if (c->performer_features > 0) return c->performer_features;
    double d = (double)(c->n_embd / c->n_head);
    return (int)lround(d * log(d)) > 0 ? (int)lround(d * log(d)) : 1;
}
