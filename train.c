// train.c — the training program: config → model → loop → eval → checkpoints.
//
//   ./train CONFIG [key=value ...]      train (./train --help lists the keys)
//   ./train CONFIG init_from=CKPT max_steps=0
//                                       evaluate a checkpoint and exit
//
// out_dir receives model.ckpt (the latest checkpoint, written atomically),
// config.txt (the effective configuration) and metrics.csv.
#include "data/loader.h"
#include "checkpoint.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static volatile sig_atomic_t stop_signal = 0;
static void on_signal(int sig) { stop_signal = sig; }

typedef struct {
    Config cfg;
    const char *config_path;
    GPT2 model;
    TokenSet train, val;
    Rng data_rng;
    int *inputs, *targets;
    char ckpt_path[CONFIG_STR + 32], csv_path[CONFIG_STR + 32];
} Run;

static void parse_args(Run *r, int argc, char **argv) {
    config_defaults(&r->cfg);
    int i = 1;
    if (i < argc && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
        config_help(stdout);
        exit(0);
    }
    if (i < argc && !strchr(argv[i], '=')) {
        r->config_path = argv[i++];
        config_load_file(&r->cfg, r->config_path);
    }
    for (; i < argc; i++) {
        if (!strchr(argv[i], '=')) die("argument '%s': expected key=value (a config file may only come first)", argv[i]);
        config_set_arg(&r->cfg, argv[i]);
    }
    config_validate(&r->cfg);
}

// Mean validation loss (language modelling only, no distillation) over eval_batches.
static double evaluate(Run *r) {
    const Config *c = &r->cfg;
    double sum = 0;
    for (int k = 0; k < c->eval_batches; k++) {
        batch_sequential(&r->val, k, c->batch_size, c->seq_len, r->inputs, r->targets);
        model_forward(&r->model, r->inputs, r->targets, c->batch_size, c->seq_len);
        sum += r->model.lm_loss;
    }
    return sum / c->eval_batches;
}

static void save(Run *r) {
    TrainState ts;
    memcpy(ts.data_rng, r->data_rng.s, sizeof ts.data_rng);
    model_save(&r->model, r->ckpt_path, &ts, 1);
}

// Keep metrics.csv rows up to `step` (the resumed checkpoint's): later rows
// belong to work the crash lost and will be written again.
static void trim_csv(const char *path, long step) {
    if (!file_exists(path)) return;
    size_t len;
    char *text = read_file(path, &len);
    // A new file renamed over the old, so a crash here loses no rows.
    char tmp[CONFIG_STR + 40];
    FILE *f = replace_open(path, "w", tmp, sizeof tmp);
    int first = 1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), first = 0)
        if (first || atol(line) <= step) fprintf(f, "%s\n", line);
    replace_commit(f, tmp, path);
    free(text);
}

// One row of metrics.csv. train_loss is the objective (lm_weight·lm +
// distill_weight·distill); lm_loss and distill_loss are its two terms.
static void csv_row(Run *r, long step, double train_loss, double lm, double val_loss, double lr, double tok_s,
                    double norm, double distill, double ms) {
    FILE *f = xfopen(r->csv_path, "a");
    fprintf(f, "%ld,", step);
    if (isnan(train_loss)) fprintf(f, ","); else fprintf(f, "%.9g,", train_loss);
    fprintf(f, "%.9g,", lm);
    if (isnan(val_loss)) fprintf(f, ","); else fprintf(f, "%.9g,", val_loss);
    fprintf(f, "%.6e,%.1f,%.9g,%.9g,%.2f\n", lr, tok_s, norm, distill, ms);
    xfclose(f, r->csv_path);
}

static void format_eta(char *buf, size_t n, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, n, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
}

// The first layer whose output (residual stream) holds a NaN or inf, or -1.
static int first_nonfinite_layer(const GPT2 *m) {
    size_t per_layer = (size_t)m->B * m->T * m->C;
    for (int l = 0; l < m->L; l++)
        for (size_t i = 0; i < per_layer; i++)
            if (!isfinite(m->residual3[(size_t)l * per_layer + i])) return l;
    return -1;
}

// Stop with a message naming the first layer whose activations, or else the
// first tensor whose gradient, is not finite.
static void die_nonfinite(Run *r, long step, double loss, double norm) {
    int layer = first_nonfinite_layer(&r->model);
    if (layer >= 0)
        die("step %ld: non-finite loss %g: the output of layer %d (attention %s) is NaN or inf; the last checkpoint in %s is intact",
            step + 1, loss, layer, r->cfg.attention, r->cfg.out_dir);
    const GPT2 *m = &r->model;
    for (int t = 0; t < N_PARAM_TENSORS; t++) {
        size_t per_layer = (t >= P_LN1W && t <= P_FCPROJB) || t == P_ATTN ? m->sizes[t] / (size_t)m->L : m->sizes[t];
        for (size_t i = 0; i < m->sizes[t]; i++)
            if (!isfinite(m->g[t][i]))
                die("step %ld: non-finite %s (loss %g, grad norm %g), first in %s of layer %zu; the last checkpoint in %s is intact",
                    step + 1, isfinite(loss) ? "gradient" : "loss", loss, norm, param_names[t], i / per_layer, r->cfg.out_dir);
    }
    die("step %ld: non-finite loss %g (grad norm %g); the last checkpoint in %s is intact", step + 1, loss, norm, r->cfg.out_dir);
}

// Free everything and return the exit status: every way out of main goes
// through here, so the sanitizer and valgrind builds see no leak.
static int finish(Run *r, int status) {
    model_free(&r->model);
    tokens_free(&r->train);
    tokens_free(&r->val);
    free(r->inputs);
    free(r->targets);
    free(r);
    return status;
}

int main(int argc, char **argv) {
    Run *r = xcalloc(1, sizeof *r, "run");
    parse_args(r, argc, argv);
    Config *c = &r->cfg;
#ifdef _OPENMP
    if (c->threads > 0) omp_set_num_threads(c->threads);
#endif
    printf("hedgehog.c train | %s | %d threads\n", r->config_path ? r->config_path : "(no config file)", n_threads());
    printf("---- configuration ----\n");
    config_write(c, stdout);
    printf("-----------------------\n");

    int eval_only = c->max_steps == 0;
    if (eval_only && !c->init_from[0] && !c->resume) die("max_steps = 0 evaluates a checkpoint: give init_from=PATH");
    make_dirs(c->out_dir);
    snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s/model.ckpt", c->out_dir);
    snprintf(r->csv_path, sizeof r->csv_path, "%s/metrics.csv", c->out_dir);

    if (!eval_only) tokens_load(&r->train, c->train_data, c->vocab_size);
    tokens_load(&r->val, c->val_data, c->vocab_size);
    if (!eval_only) printf("train: %zu tokens in %d file(s) | ", r->train.n, r->train.n_files);
    printf("val: %zu tokens in %d file(s)\n", r->val.n, r->val.n_files);
    // Everything this run will hold, before any of it is allocated.
    MemoryEstimate e = model_memory(c, c->batch_size, c->seq_len, !eval_only);
    double data = (double)(r->train.n + r->val.n) * sizeof(uint16_t), total = e.total + data;
    printf("memory: %.1f MB estimated peak (parameters %.1f, gradients %.1f, AdamW moments %.1f, activations %.1f, "
           "attention %.1f, data %.1f)\n", total / 1e6, e.params / 1e6, e.grads / 1e6, e.moments / 1e6,
           e.activations / 1e6, e.attention / 1e6, data / 1e6);
    memory_check(total, "this run", "reduce batch_size or seq_len (grad_accum keeps the tokens per step), or n_layer / n_embd");

    GPT2 *m = &r->model;
    model_init(m, c);
    rng_seed(&r->data_rng, (uint64_t)c->seed ^ 0xD1B54A32D192ED03ull);  // a stream apart from the weights'
    if (c->resume) {
        if (!file_exists(r->ckpt_path)) die("resume = 1 but there is no checkpoint at '%s'", r->ckpt_path);
        TrainState ts;
        model_load(m, r->ckpt_path, &ts);
        memcpy(r->data_rng.s, ts.data_rng, sizeof ts.data_rng);
        printf("resumed from %s at step %ld\n", r->ckpt_path, m->step);
    } else if (c->init_from[0]) {
        model_load(m, c->init_from, NULL);
        printf("weights from %s\n", c->init_from);
    }
    printf("model: %d layers, %d heads, width %d, context %d, vocab %d (padded %d), attention %s\n",
           m->L, m->NH, m->C, m->maxT, m->V, m->Vp, m->attn->name);
    printf("parameters: %zu (%.2fM)\n", m->n_params, m->n_params / 1e6);
    size_t BT = (size_t)c->batch_size * c->seq_len;
    r->inputs = xmalloc(BT * sizeof(int), "batch inputs");
    r->targets = xmalloc(BT * sizeof(int), "batch targets");

    if (eval_only) {
        double vl = evaluate(r);
        printf("val_loss=%.9g val_ppl=%.9g\n", vl, exp(vl));
        return finish(r, 0);
    }

    // Writing config.txt first proves out_dir is writable before any work.
    // Temporary file + rename: the resume command names config.txt, so a
    // crash must never leave it half written.
    char cfg_path[CONFIG_STR + 32], cfg_tmp[CONFIG_STR + 40];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.txt", c->out_dir);
    FILE *cf = replace_open(cfg_path, "w", cfg_tmp, sizeof cfg_tmp);
    config_write(c, cf);
    replace_commit(cf, cfg_tmp, cfg_path);
    if (c->resume) trim_csv(r->csv_path, m->step);
    else {
        FILE *f = xfopen(r->csv_path, "w");
        fprintf(f, "step,train_loss,lm_loss,val_loss,lr,tokens_per_s,grad_norm,distill_loss,ms_per_step\n");
        xfclose(f, r->csv_path);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    size_t tokens_per_step = BT * c->grad_accum;
    printf("tokens per step: %zu (batch %d × seq %d × accum %d)\n", tokens_per_step, c->batch_size, c->seq_len, c->grad_accum);
    double total_time = 0, val_loss = NAN;
    long steps_timed = 0;
    while (m->step < c->max_steps) {
        long step = m->step;
        double t0 = now_seconds();
        model_begin_step(m);
        double loss = 0, lm = 0, distill = 0;
        for (int micro = 0; micro < c->grad_accum; micro++) {
            batch_random(&r->train, &r->data_rng, c->batch_size, c->seq_len, r->inputs, r->targets);
            model_forward(m, r->inputs, r->targets, c->batch_size, c->seq_len);
            model_backward(m, 1.0 / c->grad_accum);
            loss += m->loss / c->grad_accum;
            lm += m->lm_loss / c->grad_accum;
            distill += m->distill_loss / c->grad_accum;
        }
        double norm = model_grad_norm(m);
        if (!isfinite(loss) || !isfinite(norm)) die_nonfinite(r, step, loss, norm);
        double lr = model_lr(c, step);
        model_adamw(m, lr, norm);  // and zeroes the gradients for the next step
        double dt = now_seconds() - t0;
        total_time += dt;
        steps_timed++;
        double tok_s = tokens_per_step / dt;

        int last = m->step == c->max_steps;
        val_loss = NAN;
        if (last || (c->eval_every > 0 && m->step % c->eval_every == 0)) {
            val_loss = evaluate(r);
            printf("step %6ld | val loss %.9g | val ppl %.4f\n", m->step, val_loss, exp(val_loss));
        }
        if (c->log_every > 0 && (m->step % c->log_every == 0 || last || step == 0)) {
            char eta[32];
            format_eta(eta, sizeof eta, (c->max_steps - m->step) * (total_time / steps_timed));
            printf("step %6ld/%d | loss %.4f", m->step, c->max_steps, loss);
            if (c->distill_weight > 0 || c->lm_weight != 1) printf(" (lm %.4f, distill %.4f)", lm, distill);
            printf(" | lr %.2e | norm %.3f | %.0f ms | %.0f tok/s | ETA %s\n", lr, norm, dt * 1e3, tok_s, eta);
            fflush(stdout);
        }
        csv_row(r, m->step, loss, lm, val_loss, lr, tok_s, norm, distill, dt * 1e3);
        if (last || (c->checkpoint_every > 0 && m->step % c->checkpoint_every == 0) || stop_signal) save(r);
        if (stop_signal) {
            printf("stopped by signal %d after step %ld; checkpoint saved to %s\n", (int)stop_signal, m->step, r->ckpt_path);
            // config.txt holds every setting of this run, command-line overrides included.
            printf("resume with: ./train %s/config.txt resume=1\n", c->out_dir);
            return finish(r, 130);
        }
    }
    if (isnan(val_loss)) val_loss = evaluate(r);
    printf("done: %ld steps in %.1f s\n", m->step, total_time);
    printf("val_loss=%.9g val_ppl=%.9g\n", val_loss, exp(val_loss));
    return finish(r, 0);
}
