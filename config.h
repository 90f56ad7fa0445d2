// config.h — every run setting, and the one table that describes them.
//
// A config file is lines of `key = value` with `#` comments; the command line
// adds `key=value` overrides after the file. The table in config.c (name,
// type, default, range, help) drives parsing, validation, --help and the text
// saved in checkpoints: adding a setting is one field here and one row there.
#ifndef CONFIG_H
#define CONFIG_H

#include <stdio.h>

#define CONFIG_STR 512

typedef struct {
    // model
    char attention[32];          // a kind of attention.c's table
    char attention_form[16];     // auto | quadratic | chunked
    int chunk_size;
    int n_layer, n_head, n_embd, seq_len, vocab_size;
    int performer_features;      // 0 = round(d ln d)
    int performer_redraw;        // optimizer steps between redraws, 0 = never
    char hedgehog_map[16];       // exp | softmax | joint
    int hedgehog_per_head;       // 1: one map per head; 0: one per layer
    int t2r_features;            // T2R's F (0 = the head size)
    double distill_weight;       // weight of the attention distillation loss
    int distill_qk_grad;         // 1: the distillation gradient reaches q and k
    double lm_weight;            // weight of the language-modelling loss
    // optimisation
    int batch_size, grad_accum, max_steps, warmup_steps;
    double lr, min_lr, weight_decay, beta1, beta2, adam_eps, grad_clip;
    long seed;
    // data and evaluation
    char train_data[CONFIG_STR], val_data[CONFIG_STR];
    char train_mask[CONFIG_STR], val_mask[CONFIG_STR];  // loss masks ("" = score every target)
    int window_align;            // training windows start at multiples of this
    char tokenizer[16];          // gpt2 | byte: how sample decodes ids
    char tokenizer_dir[CONFIG_STR];
    int eval_every, eval_batches;
    // run management
    int log_every, checkpoint_every;
    char out_dir[CONFIG_STR], init_from[CONFIG_STR];
    int convert;                 // 1: init_from may hold another attention kind
    char trainable[16];          // all | feature_maps
    int resume;
    int threads;                 // 0 = OpenMP's default
} Config;

// Defaults from the table.
void config_defaults(Config *c);
// Apply a config file; errors name the file, line and key. May be NULL.
void config_load_file(Config *c, const char *path);
// Apply one "key=value" (from argv); errors name the argument.
void config_set_arg(Config *c, const char *arg);
// Parse `key = value` text (whole file contents) as if from file `origin`.
void config_load_text(Config *c, const char *text, const char *origin);
// Cross-field checks (e.g. n_embd divisible by n_head) after all overrides.
void config_validate(const Config *c);
// The effective configuration as `key = value` lines, loadable again.
void config_write(const Config *c, FILE *f);
// Key `key`'s value as the echo writes it, into buf; exits on an unknown key.
void config_value(const Config *c, const char *key, char *buf, size_t n);
// Print every key with its default and meaning (./train --help).
void config_help(FILE *f);
// Derived: Performer feature count m (resolves performer_features = 0).
int config_performer_m(const Config *c);
// Derived: T2R's feature count (resolves t2r_features = 0).
int config_t2r_features(const Config *c);

#endif
