// train.c — the training program: config → model → loop → eval → checkpoints.
//
//   ./train CONFIG [key=value ...]      train (./train --help lists the keys)
//   ./train CONFIG init_from=CKPT max_steps=0
//                                       evaluate a checkpoint and exit
//   mpirun -np N ./train CONFIG ...     data parallel (make MPI=1): N ranks,
//                                       bitwise the run of one process with
//                                       grad_accum × N (docs/distributed.md)
//
// out_dir receives model.ckpt (the latest checkpoint, written atomically),
// config.txt (the effective configuration) and metrics.csv.
#include "checkpoint.h"
#include "data/loader.h"
#include "dist.h"
#include "matmul.h"

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
    // Data parallel: this rank of `ranks`; the optimizer's shares of the
    // parameters, rank q's being [shard[q], shard[q+1]).
    int rank, ranks;
    size_t *shard;
    // A step's scratch: each micro-batch's three losses, and the parts of
    // the gradient norm (this rank's, everyone's, how many per rank). Held
    // here, not in main, so that finish() frees them on every way out.
    double *micro_loss, *parts, *my_parts;
    size_t *part_counts;
} Run;

// values[0..n) each rank holding its block [n·rank/ranks, n·(rank+1)/ranks)
// (the rest ignored) -> every value on every rank.
static void gather_blocks(const Run *r, double *values, int n) {
    size_t *counts = xmalloc((size_t)r->ranks * sizeof(size_t), "counts");
    for (int q = 0; q < r->ranks; q++) counts[q] = (size_t)(n * (q + 1) / r->ranks - n * q / r->ranks);
    double *mine = xmalloc(counts[r->rank] * sizeof(double) + 1, "block");
    memcpy(mine, values + n * r->rank / r->ranks, counts[r->rank] * sizeof(double));
    dist_allgather_doubles(mine, values, counts);
    free(mine);
    free(counts);
}

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

// Mean validation loss (language modelling only, no distillation) over
// eval_batches; each rank evaluates a block of the batches, and every rank
// adds all of them up in batch order.
static double evaluate(Run *r) {
    const Config *c = &r->cfg;
    int n = c->eval_batches;
    double *loss = xcalloc((size_t)n, sizeof(double), "validation losses"), sum = 0;
    for (int k = n * r->rank / r->ranks; k < n * (r->rank + 1) / r->ranks; k++) {
        batch_sequential(&r->val, k, c->batch_size, c->seq_len, r->inputs, r->targets);
        model_forward(&r->model, r->inputs, r->targets, c->batch_size, c->seq_len);
        loss[k] = r->model.lm_loss;
    }
    gather_blocks(r, loss, n);
    for (int k = 0; k < n; k++) sum += loss[k];
    free(loss);
    return sum / n;
}

// The checkpoint: one file, written by rank 0, the same a single process
// writes (every rank's share of AdamW's moments gathered into it).
static void save(Run *r) {
    TrainState ts;
    memcpy(ts.data_rng, r->data_rng.s, sizeof ts.data_rng);
    GPT2 *m = &r->model;
    if (r->ranks == 1) {
        model_save(m, r->ckpt_path, &ts, 1);
        return;
    }
    model_need_moments(m);
    real *full = r->rank == 0 ? xcalloc(2 * m->n_params, sizeof(real), "gathered moments") : NULL;
    dist_gather_slices(m->m, full, r->shard, 0);
    dist_gather_slices(m->v, full ? full + m->n_params : NULL, r->shard, 0);
    if (r->rank == 0) model_save_gathered(m, r->ckpt_path, &ts, full, full + m->n_params);
    free(full);
    dist_barrier();   // no rank goes on (or exits) before the file is whole
}

// "train: N tokens in F file(s)", and how many of them a loss mask scores.
static void describe_set(const char *name, const TokenSet *s) {
    printf("%s: %zu tokens in %d file(s)", name, s->n, s->n_files);
    size_t scored = 0;
    for (size_t i = 0; s->mask && i < s->n; i++) scored += s->mask[i];
    if (s->mask) printf(", loss on %zu (mask)", scored);
}

// Ranks must train one model on one data set: rank 0's configuration and
// data fingerprint to every rank, which stops, naming the difference, if
// its own differ. (threads may differ: results do not depend on it.)
static void check_ranks_agree(Run *r) {
    char *mine = NULL, *theirs;
    size_t len = 0;
    FILE *f = open_memstream(&mine, &len);
    if (!f) die("cannot format the config");
    Config c = r->cfg;
    c.threads = 0;
    config_write(&c, f);
    fclose(f);
    size_t len0 = len;
    dist_bcast(&len0, sizeof len0, 0);
    theirs = xcalloc(len0 + 1, 1, "rank 0's config");
    if (r->rank == 0) memcpy(theirs, mine, len);
    dist_bcast(theirs, len0, 0);
    char diff[2 * CONFIG_STR + 64] = "";
    for (char *a = mine, *b = theirs; *a || *b;) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        if (la != lb || memcmp(a, b, la) != 0) {
            snprintf(diff, sizeof diff, "its configuration has '%.*s' where rank 0's has '%.*s'", (int)la, a, (int)lb, b);
            break;
        }
        a += la + (a[la] != 0);
        b += lb + (b[lb] != 0);
    }
    uint64_t fp[4] = {r->train.n, 1469598103934665603ull, r->val.n, 1469598103934665603ull}, fp0[4];
    for (int s = 0; s < 2; s++) {   // FNV-1a over each set's tokens and mask
        const TokenSet *t = s ? &r->val : &r->train;
        for (size_t i = 0; i < t->n; i++) fp[2 * s + 1] = (fp[2 * s + 1] ^ t->tokens[i]) * 1099511628211ull;
        for (size_t i = 0; t->mask && i < t->n; i++) fp[2 * s + 1] = (fp[2 * s + 1] ^ t->mask[i]) * 1099511628211ull;
    }
    memcpy(fp0, fp, sizeof fp);
    dist_bcast(fp0, sizeof fp0, 0);
    if (!diff[0] && memcmp(fp, fp0, sizeof fp) != 0)
        snprintf(diff, sizeof diff, "its %s data differ from rank 0's (%llu tokens against %llu, or other tokens)",
                 fp[0] != fp0[0] || fp[1] != fp0[1] ? "training" : "validation",
                 (unsigned long long)(fp[0] != fp0[0] || fp[1] != fp0[1] ? fp[0] : fp[2]),
                 (unsigned long long)(fp[0] != fp0[0] || fp[1] != fp0[1] ? fp0[0] : fp0[2]));
    int any = dist_max_int(diff[0] != 0);
    if (diff[0]) fprintf(stderr, "error: rank %d: %s\n", r->rank, diff);
    free(mine);
    free(theirs);
    if (any) die("the ranks disagree (above): every rank must run the same configuration on the same data");
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
        // Tensors P_LN1W..P_FCPROJB and P_ATTN hold one block per layer (model.h).
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
    matmul_release();
    free(r->shard);
    tokens_free(&r->train);
    tokens_free(&r->val);
    free(r->inputs);
    free(r->targets);
    free(r->micro_loss);
    free(r->parts);
    free(r->my_parts);
    free(r->part_counts);
    free(r);
    dist_finish();
    return status;
}

int main(int argc, char **argv) {
    dist_init(&argc, &argv);
    Run *r = xcalloc(1, sizeof *r, "run");
    r->rank = dist_rank();
    r->ranks = dist_size();
    if (r->rank > 0 && !freopen("/dev/null", "w", stdout)) die("cannot silence rank %d's output", r->rank);
    parse_args(r, argc, argv);
    Config *c = &r->cfg;
#ifdef _OPENMP
    if (c->threads > 0) omp_set_num_threads(c->threads);
#endif
    printf("hedgehog.c train | %s | %d threads", r->config_path ? r->config_path : "(no config file)", n_threads());
    if (r->ranks > 1) printf(" per rank | %d ranks", r->ranks);
    printf("\n");
    printf("---- configuration ----\n");
    config_write(c, stdout);
    printf("-----------------------\n");

    int eval_only = c->max_steps == 0;
    if (eval_only && !c->init_from[0] && !c->resume) die("max_steps = 0 evaluates a checkpoint: give init_from=PATH");
    if (r->rank == 0) make_dirs(c->out_dir);
    snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s/model.ckpt", c->out_dir);
    snprintf(r->csv_path, sizeof r->csv_path, "%s/metrics.csv", c->out_dir);

    if (!eval_only) tokens_load(&r->train, c->train_data, c->vocab_size);
    tokens_load(&r->val, c->val_data, c->vocab_size);
    if (!eval_only && c->train_mask[0]) tokens_load_mask(&r->train, c->train_mask);
    if (c->val_mask[0]) tokens_load_mask(&r->val, c->val_mask);
    if (!eval_only) describe_set("train", &r->train), printf(" | ");
    describe_set("val", &r->val);
    printf("\n");
    // Everything this run will hold, before any of it is allocated.
    MemoryEstimate e = model_memory(c, c->batch_size, c->seq_len, !eval_only);
    double data = (double)(r->train.n * (1 + !!r->train.mask) + r->val.n * (1 + !!r->val.mask)) * sizeof(uint16_t);
    double total = e.total + data;
    printf("memory: %.1f MB estimated peak (parameters %.1f, gradients %.1f, AdamW moments %.1f, activations %.1f, "
           "attention %.1f, data %.1f)\n", total / 1e6, e.params / 1e6, e.grads / 1e6, e.moments / 1e6,
           e.activations / 1e6, e.attention / 1e6, data / 1e6);
    memory_check(total, "this run", "reduce batch_size or seq_len (grad_accum keeps the tokens per step), or n_layer / n_embd");
    if (r->ranks > 1) check_ranks_agree(r);

    GPT2 *m = &r->model;
    model_init(m, c);
    // Each rank's share of the optimizer (ZeRO stage 1): its moments only.
    r->shard = xmalloc(((size_t)r->ranks + 1) * sizeof(size_t), "shares");
    for (int q = 0; q < r->ranks; q++) model_shard(m, r->ranks, q, &r->shard[q], &r->shard[q + 1]);
    model_set_shard(m, r->shard[r->rank], r->shard[r->rank + 1]);
    if (r->ranks > 1)
        printf("optimizer: this rank holds the AdamW moments of %zu of %zu trainable parameters (ZeRO stage 1)\n",
               m->opt_hi - m->opt_lo, m->train_hi - m->train_lo);
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
    if (r->rank == 0) {   // rank 0 writes the files; the others only compute
        FILE *cf = replace_open(cfg_path, "w", cfg_tmp, sizeof cfg_tmp);
        config_write(c, cf);
        replace_commit(cf, cfg_tmp, cfg_path);
        if (c->resume) trim_csv(r->csv_path, m->step);
        else {
            FILE *f = xfopen(r->csv_path, "w");
            fprintf(f, "step,train_loss,lm_loss,val_loss,lr,tokens_per_s,grad_norm,distill_loss,ms_per_step\n");
            xfclose(f, r->csv_path);
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    // A step is G = grad_accum × ranks micro-batches, drawn from the data
    // generator in order; rank q computes micro-batches q·A .. q·A + A − 1
    // (A = grad_accum), every rank drawing them all to keep the generator in
    // step. Gradients add up in the order model_accumulate and the
    // reduce-scatter define (docs/distributed.md).
    int A = c->grad_accum, G = A * r->ranks;
    if (r->ranks > 1 && (A & (A - 1)) != 0)
        warn("grad_accum = %d is not a power of two: this run is deterministic, but not bitwise the run of one process "
             "with grad_accum = %d (docs/distributed.md)", A, G);
    size_t tokens_per_step = BT * (size_t)G;
    printf("tokens per step: %zu (batch %d × seq %d × accum %d", tokens_per_step, c->batch_size, c->seq_len, A);
    if (r->ranks > 1) printf(" × %d ranks", r->ranks);
    printf(")\n");
    double *micro_loss = r->micro_loss = xcalloc(3 * (size_t)G, sizeof(double), "micro-batch losses");
    size_t n_parts = 0, *part_counts = r->part_counts = xmalloc((size_t)r->ranks * sizeof(size_t), "counts");
    for (int q = 0; q < r->ranks; q++) n_parts += part_counts[q] = model_grad_norm_parts(m, r->shard[q], r->shard[q + 1], NULL);
    double *parts = r->parts = xcalloc(n_parts + 1, sizeof(double), "norm parts");
    double *my_parts = r->my_parts = xcalloc(part_counts[r->rank] + 1, sizeof(double), "norm parts");
    double total_time = 0, val_loss = NAN;
    long steps_timed = 0;
    while (m->step < c->max_steps) {
        long step = m->step;
        double t0 = now_seconds();
        model_begin_step(m);
        for (int k = 0; k < G; k++) {
            batch_random(&r->train, &r->data_rng, c->batch_size, c->seq_len, c->window_align, r->inputs, r->targets);
            if (k / A != r->rank) continue;
            model_forward(m, r->inputs, r->targets, c->batch_size, c->seq_len);
            model_backward(m, 1.0 / G);
            if (A > 1) model_accumulate(m);
            micro_loss[k] = m->loss, micro_loss[G + k] = m->lm_loss, micro_loss[2 * G + k] = m->distill_loss;
        }
        if (A > 1) model_accumulate_finish(m);
        // The ranks' gradients summed into each one's share; the norm from
        // every share's parts, in order; every micro-batch's losses, in order.
        // comm: the time in collectives, waiting for slower ranks included.
        double t_comm = now_seconds();
        dist_reduce_scatter(m->grads, r->shard);
        model_grad_norm_parts(m, r->shard[r->rank], r->shard[r->rank + 1], my_parts);
        dist_allgather_doubles(my_parts, parts, part_counts);
        double sq = 0, loss = 0, lm = 0, distill = 0;
        for (size_t k = 0; k < n_parts; k++) sq += parts[k];
        double norm = sqrt(sq);
        for (int q = 0; q < 3; q++) gather_blocks(r, micro_loss + (size_t)q * G, G);
        for (int k = 0; k < G; k++) {
            loss += micro_loss[k] / G;
            lm += micro_loss[G + k] / G;
            distill += micro_loss[2 * G + k] / G;
        }
        t_comm = now_seconds() - t_comm;
        if (!isfinite(loss) || !isfinite(norm)) die_nonfinite(r, step, loss, norm);
        double lr = model_lr(c, step);
        // On this rank's share; zeroes the gradients for the next step, and
        // counts the step: from here m->step is the steps done, step + 1.
        model_adamw(m, lr, norm);
        double t_gather = now_seconds();
        dist_allgather_slices(m->params, r->shard);
        t_comm += now_seconds() - t_gather;
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
            printf(" | lr %.2e | norm %.3f | %.0f ms", lr, norm, dt * 1e3);
            if (r->ranks > 1) printf(" (comm %.0f)", t_comm * 1e3);
            printf(" | %.0f tok/s | ETA %s\n", tok_s, eta);
            fflush(stdout);
        }
        if (r->rank == 0) csv_row(r, m->step, loss, lm, val_loss, lr, tok_s, norm, distill, dt * 1e3);
        int stop = dist_max_int((int)stop_signal);   // a signal to any rank stops them all, at the same step
        if (last || (c->checkpoint_every > 0 && m->step % c->checkpoint_every == 0) || stop) save(r);
        if (stop) {
            printf("stopped by signal %d after step %ld; checkpoint saved to %s\n", stop, m->step, r->ckpt_path);
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
