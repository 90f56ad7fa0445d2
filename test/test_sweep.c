// test_sweep.c — the experiment configs and the sweep runner: every config in
// configs/ parses, each full-scale GPT-2 small config builds (one block of)
// the 124M model and takes one step, ./sweep runs, resumes, tabulates and
// plots a tiny grid, and rejects bad sweep files with one line naming file and line before running
// anything; plot.c's ticks and SVG are checked too.
//
// Run from the repository root (make test does): it drives ./sweep and ./train
// (SWEEP_BIN and TRAIN_BIN override their paths).
#include "test.h"
#include "svg_check.h"
#include "../data/shard.h"
#include "../checkpoint.h"
#include "../plot.h"

#include <stdlib.h>

static char dir[256];
static const char *sweep_bin, *train_bin;

static int has_kind(const char *name) {
    const AttnKind *const *kinds;
    int n = attn_kinds(&kinds);
    for (int i = 0; i < n; i++)
        if (strcmp(kinds[i]->name, name) == 0) return 1;
    return 0;
}

// 1 when fn(arg), run in a child, exits 0 (die() would exit 1 with a message).
static int runs_clean(void (*fn)(void *), void *arg) {
    char msg[1024];
    return run_captured(fn, arg, msg, sizeof msg) == 0;
}

static void load_config(void *path) {
    Config c;
    config_defaults(&c);
    config_load_file(&c, path);
    config_validate(&c);
}

static void test_configs_parse(void) {
    int n;
    char **paths = expand_paths("configs/*.conf", &n);
    for (int i = 0; i < n; i++) CHECK(runs_clean(load_config, paths[i]), "%s does not parse (see the error above)", paths[i]);
    CHECK(n >= 6 + 5 + 5, "configs/: %d .conf files, expected gpt2-small-*, small-* and recall-* for every kind", n);
    free_paths(paths, n);
}

// Each GPT-2 small config on a slice of 8 tokens: builds, takes one optimizer
// step, and the loss starts near ln(V). At 124M parameters one step took
// 11 s on an idle 2-core machine and 50-67 s on a loaded one, too slow for every
// `make test`: by default the model keeps the real width, heads, context and
// vocabulary but one of its 12 identical blocks; FULL_CONFIG_TEST=1 builds all 12.
static void test_full_scale_one_step(void) {
    int full = getenv("FULL_CONFIG_TEST") && strcmp(getenv("FULL_CONFIG_TEST"), "1") == 0;
    int n;
    char **paths = expand_paths("configs/gpt2-small-*.conf", &n);
    Config ref;
    config_defaults(&ref);
    config_load_file(&ref, "configs/gpt2-small-softmax.conf");
    for (int i = 0; i < n; i++) {
        Config c;
        config_defaults(&c);
        config_load_file(&c, paths[i]);
        CHECK(c.n_layer == 12 && c.n_head == 12 && c.n_embd == 768 && c.seq_len == 1024 && c.vocab_size == 50257,
              "%s is not GPT-2 small", paths[i]);
        // The variants differ in attention only: same recipe, same data, same seed.
        Config same = c;
        memcpy(same.attention, ref.attention, sizeof same.attention);  // whole fields: no bytes left past the NUL
        same.distill_weight = ref.distill_weight;
        memcpy(same.out_dir, ref.out_dir, sizeof same.out_dir);
        CHECK(memcmp(&same, &ref, sizeof same) == 0, "%s differs from gpt2-small-softmax.conf beyond attention", paths[i]);
        if (!has_kind(c.attention)) {
            SKIP("%s: attention '%s' is not in attention.c yet", paths[i], c.attention);
            continue;
        }
        c.seq_len = 8;
        c.batch_size = 1;
        if (!full) c.n_layer = 1;
        double t0 = now_seconds();
        GPT2 m;
        model_init(&m, &c);
        size_t per_layer = m.sizes[P_QKVW] + m.sizes[P_QKVB] + m.sizes[P_ATTPROJW] + m.sizes[P_ATTPROJB] + m.sizes[P_FCW] +
                           m.sizes[P_FCB] + m.sizes[P_FCPROJW] + m.sizes[P_FCPROJB] + m.sizes[P_LN1W] + m.sizes[P_LN1B] +
                           m.sizes[P_LN2W] + m.sizes[P_LN2B] + m.sizes[P_ATTN];
        per_layer /= (size_t)c.n_layer;
        // At seq_len 1024 and 12 blocks: GPT-2 small's 124M (plus the kind's own few).
        size_t real_size = m.n_params + (size_t)(1024 - 8) * 768 + (size_t)(12 - c.n_layer) * per_layer;
        CHECK(real_size > 124000000 && real_size < 126000000, "%s: %zu parameters at full size, expected ~124M", paths[i], real_size);
        int in[8], tgt[8];
        for (int t = 0; t < 8; t++) in[t] = (t * 7919) % 50257, tgt[t] = (t * 104729 + 1) % 50257;
        model_forward(&m, in, tgt, 1, 8);
        double loss = m.loss;
        model_backward(&m, 1.0);
        double norm = model_grad_norm(&m);
        model_adamw(&m, model_lr(&c, 0), norm);
        CHECK(isfinite(loss) && fabs(m.lm_loss - log(50257.0)) < 1.5 && isfinite(norm) && m.step == 1,
              "%s: first step loss %g (ln V = %.2f), grad norm %g", paths[i], m.lm_loss, log(50257.0), norm);
        printf("%s: one step with %d block(s) in %.1f s\n", paths[i], c.n_layer, now_seconds() - t0);
        model_free(&m);
    }
    CHECK(n == 6, "expected 6 configs/gpt2-small-*.conf (5 kinds + hedgehog with distillation), found %d", n);
    free_paths(paths, n);
}

// The GPT-2 conversion recipe (configs/convert-gpt2-stage{1,2}.conf) on a
// randomly initialised GPT-2-small-shaped llm.c checkpoint written here
// (one block unless FULL_CONFIG_TEST=1, as above): each stage loads it
// through the conversion and takes one step.
static void test_gpt2_conversion_recipe(void) {
    int full = getenv("FULL_CONFIG_TEST") && strcmp(getenv("FULL_CONFIG_TEST"), "1") == 0;
    Config c;
    config_defaults(&c);
    config_load_file(&c, "configs/convert-gpt2-stage1.conf");
    if (!full) c.n_layer = 1;
    strcpy(c.attention, "softmax");   // the llm.c model itself
    strcpy(c.trainable, "all");
    c.convert = 0;
    c.init_from[0] = '\0';
    GPT2 g;
    model_init(&g, &c);
    char path[300];
    snprintf(path, sizeof path, "%s/gpt2_124M_random.bin", dir);
    int32_t h[256] = {20240326, 3, g.maxT, g.V, g.L, g.NH, g.C, g.Vp};
    FILE *f = xfopen(path, "wb");
    xfwrite(h, 4, 256, f, path);
    xfwrite(g.params, sizeof(real), (size_t)(g.p[P_ATTN] - g.params), f, path);
    xfclose(f, path);
    model_free(&g);
    const char *stages[2] = {"configs/convert-gpt2-stage1.conf", "configs/convert-gpt2-stage2.conf"};
    for (int s = 0; s < 2; s++) {
        config_defaults(&c);
        config_load_file(&c, stages[s]);
        config_validate(&c);
        CHECK(c.n_layer == 12 && c.n_embd == 768 && c.seq_len == 1024 && c.vocab_size == 50257 && c.batch_size == 8 &&
              c.convert == 1 && strcmp(c.attention, "hedgehog") == 0, "%s: GPT-2 small to hedgehog, 8 × 1024 a step", stages[s]);
        CHECK(s == 0 ? c.lm_weight == 0 && strcmp(c.trainable, "feature_maps") == 0 : c.lr == 6e-4 && strcmp(c.trainable, "all") == 0,
              "%s: %s", stages[s], s == 0 ? "the maps alone, by distillation alone" : "everything, at the paper's 6e-4");
        if (!full) c.n_layer = 1;
        c.seq_len = 8;
        c.batch_size = 1;
        snprintf(c.init_from, sizeof c.init_from, "%s", path);
        double t0 = now_seconds();
        GPT2 m;
        model_init(&m, &c);
        model_load(&m, path, NULL);
        int in[8], tgt[8];
        for (int t = 0; t < 8; t++) in[t] = (t * 7919) % 50257, tgt[t] = (t * 104729 + 1) % 50257;
        real *wte = xmalloc(m.sizes[P_WTE] * sizeof(real), "wte");
        memcpy(wte, m.p[P_WTE], m.sizes[P_WTE] * sizeof(real));
        model_begin_step(&m);
        model_forward(&m, in, tgt, 1, 8);
        model_backward(&m, 1.0);
        double norm = model_grad_norm(&m);
        model_adamw(&m, model_lr(&c, 0), norm);
        int frozen = memcmp(wte, m.p[P_WTE], m.sizes[P_WTE] * sizeof(real)) == 0;
        CHECK(isfinite(m.loss) && isfinite(norm) && norm > 0 && m.step == 1 && frozen == (s == 0),
              "%s: one step (loss %g, grad norm %g), wte %s", stages[s], m.loss, norm, frozen ? "frozen" : "trained");
        printf("%s: one step with %d block(s) in %.1f s\n", stages[s], c.n_layer, now_seconds() - t0);
        free(wte);
        model_free(&m);
    }
    remove(path);
}

static void write_file(const char *path, const char *text) {
    FILE *f = xfopen(path, "w");
    fputs(text, f);
    xfclose(f, path);
}

// Run the sweep binary on file; its output goes to dir/sweep.out. Returns the exit status.
static int run_sweep(const char *file, const char *extra) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s --train %s %s > %s/sweep.out 2>&1", sweep_bin, file, train_bin, extra, dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *sweep_output(void) {
    char p[300];
    snprintf(p, sizeof p, "%s/sweep.out", dir);
    size_t len;
    return read_file(p, &len);
}

static int count_lines_with(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) n++;
    return n;
}

// The tiny grid every sweep test shares: 2 variants × 2 seeds, 2 steps each,
// into out_line's directory, with extra_lines added.
static void write_grid_to(const char *path, const char *out_line, const char *extra_lines) {
    char text[4096];
    snprintf(text, sizeof text,
             "# a tiny sweep for the tests\n"
             "base = configs/default.conf\n"
             "%s"
             "train_data = %s/train.bin\nval_data = %s/val.bin\n"
             "n_layer = 1\nn_head = 2\nn_embd = 16\nseq_len = 16\nbatch_size = 2\n"
             "max_steps = 2\neval_every = 1\neval_batches = 1\nlog_every = 0\ncheckpoint_every = 1\nwarmup_steps = 1\n"
             "point = attention=softmax\n"
             "point = attention=softmax lr=1e-3\n"
             "seed = 1, 2\n%s",
             out_line, dir, dir, extra_lines);
    write_file(path, text);
}

static void write_grid(const char *path, const char *extra_lines) {
    char out_line[400];
    snprintf(out_line, sizeof out_line, "out = %s/out\n", dir);
    write_grid_to(path, out_line, extra_lines);
}

static void test_sweep_runs_and_resumes(void) {
    char file[300], p[400];
    snprintf(file, sizeof file, "%s/grid.sweep", dir);
    write_grid(file, "");
    CHECK(run_sweep(file, "") == 0, "sweep failed: %s", sweep_output());
    const char *names[4] = {"seed-1", "seed-2", "lr-1e-3_seed-1", "lr-1e-3_seed-2"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/out/%s/done", dir, names[i]);
        CHECK(file_exists(p), "no done marker %s", p);
    }
    size_t len;
    snprintf(p, sizeof p, "%s/out/results.csv", dir);
    char *csv = read_file(p, &len);
    const char *header = "run,seed,lr,status,steps,val_loss,val_ppl,tokens_per_s,train_s,wall_s,params,variant,variant_n,"
                         "variant_mean,variant_std,variant_min,variant_max,diff_mean,diff_std\n";
    CHECK(strncmp(csv, header, strlen(header)) == 0,
          "results.csv header: %.80s", csv);
    CHECK(count_lines_with(csv, ",done,2,") == 4, "results.csv should list 4 finished 2-step runs:\n%s", csv);
    CHECK(strstr(csv, "lr-1e-3_seed-2,2,1e-3,done,") != NULL, "results.csv rows name their overrides:\n%s", csv);
    free(csv);
    snprintf(p, sizeof p, "%s/out/results.md", dir);
    char *md = read_file(p, &len);
    CHECK(count_lines_with(md, "\n| ") == 8 && strstr(md, "val_loss.svg"),
          "results.md: a table of 2 variants and one of 4 runs, and the plot:\n%s", md);
    free(md);
    snprintf(p, sizeof p, "%s/out/val_loss.svg", dir);
    char *svg = read_file(p, &len);
    CHECK(svg_well_formed(svg) && count_lines_with(svg, "<polyline") == 2 && count_lines_with(svg, "<polygon") == 2,
          "val_loss.svg: 2 variants' mean curves with their bands, well-formed");
    free(svg);

    // Done runs are skipped; a run without its marker continues from its checkpoint.
    snprintf(p, sizeof p, "%s/out/seed-2/done", dir);
    remove(p);
    CHECK(run_sweep(file, "") == 0, "second sweep failed");
    char *out = sweep_output();
    CHECK(count_lines_with(out, "already done, skipped") == 3 && strstr(out, "seed-2: ") && strstr(out, "resume=1"),
          "rerun: 3 skipped and seed-2 resumed:\n%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/out/seed-2/train.log", dir);
    char *log = read_file(p, &len);
    CHECK(strstr(log, "resumed from") != NULL, "seed-2 should resume from its checkpoint");
    free(log);
}

typedef struct {
    const char *lines, *expect;
} BadSweep;

// Each bad sweep fails with one line naming the problem, and runs nothing.
// The grid again, into another out, with --jobs 2 (each run on its share of
// the threads): bitwise the same runs as one at a time. Then an eval line,
// added after the runs: every finished run is evaluated, none retrained.
static void test_jobs_and_eval(void) {
    char file[300], p[400], q[400], out_line[400];
    snprintf(file, sizeof file, "%s/jobs.sweep", dir);
    snprintf(out_line, sizeof out_line, "out = %s/out_jobs\n", dir);
    write_grid_to(file, out_line, "");
    CHECK(run_sweep(file, "--jobs 2") == 0, "sweep --jobs 2 failed: %s", sweep_output());
    char *out = sweep_output();
    CHECK(strstr(out, "2 at once") != NULL, "--jobs 2 says so:\n%s", out);
    free(out);
    const char *names[4] = {"seed-1", "seed-2", "lr-1e-3_seed-1", "lr-1e-3_seed-2"};
    int same = 1;
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/out/%s/model.ckpt", dir, names[i]);
        snprintf(q, sizeof q, "%s/out_jobs/%s/model.ckpt", dir, names[i]);
        size_t la, lb;
        char *a = read_file(p, &la), *b = read_file(q, &lb);
        // past the header and the saved config (whose out_dir differs): the weights and moments
        int32_t ca, cb;
        memcpy(&ca, a + 40, 4);
        memcpy(&cb, b + 40, 4);
        size_t skip_a = 1024 + (size_t)ca, skip_b = 1024 + (size_t)cb;
        same &= la - skip_a == lb - skip_b && memcmp(a + skip_a, b + skip_b, la - skip_a) == 0;
        free(a);
        free(b);
    }
    CHECK(same, "--jobs 2 gives bitwise the runs of one at a time");
    char evalline[600];
    snprintf(evalline, sizeof evalline, "eval = again:%s/val.bin, train:%s/train.bin\n", dir, dir);
    write_grid_to(file, out_line, evalline);
    // --no-train with one run unfinished: the other three evaluated, nothing trained.
    snprintf(p, sizeof p, "%s/out_jobs/seed-2/done", dir);
    size_t marker_len;
    char *marker = read_file(p, &marker_len);
    remove(p);
    CHECK(run_sweep(file, "--jobs 2 --no-train") == 0, "sweep --no-train failed: %s", sweep_output());
    out = sweep_output();
    CHECK(count_lines_with(out, "again_loss=") == 3 && count_lines_with(out, "train_loss=") == 3 &&
              strstr(out, "seed-2: not finished, not trained (--no-train)") && !strstr(out, "done in") &&
              !strstr(out, "resume=1"),
          "--no-train: 3 finished runs evaluated on 2 sets, the unfinished one left alone:\n%s", out);
    free(out);
    write_file(p, marker);
    free(marker);
    CHECK(run_sweep(file, "--jobs 2") == 0, "sweep with eval failed: %s", sweep_output());
    out = sweep_output();
    CHECK(count_lines_with(out, "again_loss=") == 1 && count_lines_with(out, "train_loss=") == 1 && !strstr(out, "done in"),
          "then the fourth run evaluated on both sets, none retrained:\n%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/out_jobs/results.csv", dir);
    size_t len;
    char *csv = read_file(p, &len);
    CHECK(strstr(csv, ",params,again_loss,train_loss,variant,") != NULL, "results.csv has the eval columns:\n%s", csv);
    free(csv);
    snprintf(p, sizeof p, "%s/out_jobs/summary.csv", dir);
    csv = read_file(p, &len);
    CHECK(strstr(csv, "again_loss_mean") && count_lines_with(csv, "\n") == 3, "summary.csv: 2 variants:\n%s", csv);
    free(csv);
}

// --only: part of a sweep, under the names the whole sweep gives its runs;
// the tables still list every run. Globs that match nothing are an error.
static void test_only(void) {
    char file[300], p[400], out_line[400];
    snprintf(file, sizeof file, "%s/only.sweep", dir);
    snprintf(out_line, sizeof out_line, "out = %s/out_only\n", dir);
    write_grid_to(file, out_line, "");
    CHECK(run_sweep(file, "--only '*seed-2'") == 0, "sweep --only failed: %s", sweep_output());
    char *out = sweep_output();
    CHECK(strstr(out, "4 runs into") && strstr(out, "2 of them selected by --only") && count_lines_with(out, "done in") == 2 &&
              strstr(out, "lr-1e-3_seed-2: done in"),
          "--only '*seed-2': the 2 seed-2 runs trained:\n%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/out_only/seed-1", dir);
    CHECK(!file_exists(p), "--only '*seed-2' trained seed-1");
    snprintf(p, sizeof p, "%s/out_only/results.csv", dir);
    size_t len;
    char *csv = read_file(p, &len);
    CHECK(count_lines_with(csv, ",done,") == 2 && count_lines_with(csv, ",pending,") == 2,
          "results.csv: 2 runs done, 2 pending:\n%s", csv);
    free(csv);
    CHECK(run_sweep(file, "--only 'seed-1,lr-1e-3_seed-1'") == 0, "sweep --only with two globs failed: %s", sweep_output());
    out = sweep_output();
    CHECK(count_lines_with(out, "done in") == 2 && !strstr(out, "skipped"), "two globs: the 2 seed-1 runs trained:\n%s", out);
    free(out);
    CHECK(run_sweep(file, "--only 'seed-9'") == 1, "--only matching nothing should fail");
    out = sweep_output();
    CHECK(strstr(out, "--only seed-9: matches none of the 4 runs' names") && count_lines_with(out, "\n") == 1,
          "--only matching nothing: one line saying so, got: %s", out);
    free(out);
}

// Aggregation on hand-made results: runs whose done markers and logs the test
// writes itself, so the statistics have known values.
static void test_aggregation(void) {
    char file[300], p[400], text[2048];
    snprintf(file, sizeof file, "%s/agg.sweep", dir);
    snprintf(text, sizeof text,
             "base = configs/default.conf\nout = %s/agg\ntrain_data = %s/train.bin\nval_data = %s/val.bin\n"
             "point = attention=softmax\npoint = attention=elu\nseed = 1, 2, 3\nbaseline = attention=softmax\n",
             dir, dir, dir);
    write_file(file, text);
    // val losses: softmax 2.0, 2.2, 2.4; elu 2.5, 2.6, 3.0, so the paired differences are 0.5, 0.4, 0.6
    const double loss[2][3] = {{2.0, 2.2, 2.4}, {2.5, 2.6, 3.0}};
    const char *kind[2] = {"softmax", "elu"};
    for (int k = 0; k < 2; k++)
        for (int sd = 0; sd < 3; sd++) {
            snprintf(p, sizeof p, "%s/agg/attention-%s_seed-%d", dir, kind[k], sd + 1);
            make_dirs(p);
            char f[500];
            snprintf(f, sizeof f, "%s/done", p);
            write_file(f, "wall_s=1.0\n");
            snprintf(f, sizeof f, "%s/train.log", p);
            snprintf(text, sizeof text, "parameters: 100 (0.00M)\nval_loss=%.17g val_ppl=%.17g\n", loss[k][sd], exp(loss[k][sd]));
            write_file(f, text);
            snprintf(f, sizeof f, "%s/metrics.csv", p);
            snprintf(text, sizeof text, "step,train_loss,lm_loss,val_loss,lr,tokens_per_s,grad_norm,distill_loss,ms_per_step\n"
                     "1,3,3,%.17g,1e-3,1000,1,0,10\n", loss[k][sd]);
            write_file(f, text);
        }
    CHECK(run_sweep(file, "") == 0, "aggregation sweep failed: %s", sweep_output());
    snprintf(p, sizeof p, "%s/agg/summary.csv", dir);
    size_t len;
    char *csv = read_file(p, &len);
    // elu: mean 2.7, sample std sqrt(((−.2)² + (−.1)² + .3²)/2) = sqrt(.07), min 2.5, max 3;
    // differences 0.5, 0.4, 0.6: mean 0.5, std 0.1. softmax: mean 2.2, std 0.2, differences 0 ± 0.
    double v[6] = {0};
    char *line = strstr(csv, "attention-elu,");
    int ok = line && sscanf(line, "attention-elu,3,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6;
    CHECK(ok && fabs(v[0] - 2.7) < 1e-9 && fabs(v[1] - sqrt(0.07)) < 1e-9 && v[2] == 2.5 && v[3] == 3 &&
          fabs(v[4] - 0.5) < 1e-9 && fabs(v[5] - 0.1) < 1e-9, "elu: mean, std, min, max, paired difference; summary.csv:\n%s", csv);
    line = strstr(csv, "attention-softmax,");
    ok = line && sscanf(line, "attention-softmax,3,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6;
    CHECK(ok && fabs(v[0] - 2.2) < 1e-9 && fabs(v[1] - 0.2) < 1e-9 && v[4] == 0 && v[5] == 0, "softmax, the baseline:\n%s", csv);
    free(csv);
    snprintf(p, sizeof p, "%s/agg/results.md", dir);
    char *md = read_file(p, &len);
    CHECK(strstr(md, "| attention-elu | 3 | 2.7000 ± 0.2646 | 2.5000–3.0000 | 0.5000 ± 0.1000 |") != NULL,
          "results.md's variant row:\n%s", md);
    free(md);
}

static void test_sweep_rejects(void) {
    char file[300], p[400];
    snprintf(file, sizeof file, "%s/bad.sweep", dir);
    const BadSweep cases[] = {
        {"atention = softmax\n", "bad.sweep:20: unknown key 'atention'"},
        {"attention = softmax, softmaxx\n", "bad.sweep:20: attention = 'softmaxx' is not one of"},
        {"lr = 1e-3, -1\n", "bad.sweep:20: lr = -1 is out of range"},
        {"dropout\n", "bad.sweep:20: expected 'key = value'"},
        {"attention = softmax,\n", "bad.sweep:20: attention has an empty value"},
        {"point = attention=softmax seed=3\n", "bad.sweep:19: key 'seed' is a grid line and also in the point on line 20"},
        {"point = attention softmax\n", "bad.sweep:20: point: expected key=value pairs"},
        {"out_dir = x\n", "bad.sweep:20: 'out_dir' is set by the sweep itself"},
        {"base = configs/default.conf\n", "bad.sweep:20: 'base' is set twice"},
        {"point = attention=softmax lr=1e-5\n", "run lr-1e-5_seed-1: config: min_lr = 0.0002 is larger than lr = 1e-05"},
        {"point = attention=softmax lr=1e-3\n", "two runs have the same settings"},
        {"baseline = attention\n", "bad.sweep:20: baseline: expected one key=value"},
        {"eval = justaname\n", "bad.sweep:20: eval: expected NAME:GLOB"},
        {"eval = a b:x.bin\n", "bad.sweep:20: eval name 'a b': use letters"},
    };
    snprintf(p, sizeof p, "%s/out", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_grid(file, cases[i].lines);
        CHECK(run_sweep(file, "") == 1, "case %zu should fail", i);
        char *out = sweep_output();
        CHECK(strstr(out, cases[i].expect) && count_lines_with(out, "\n") == 1 && strncmp(out, "error: ", 7) == 0,
              "case %zu: expected one line with '%s', got: %s", i, cases[i].expect, out);
        CHECK(!file_exists(p), "case %zu ran something: %s exists", i, p);
        free(out);
    }
    // Missing data and a missing trainer are caught before any run.
    char text[1024];
    snprintf(text, sizeof text, "base = configs/default.conf\nout = %s/out2\ntrain_data = %s/nothing_*.bin\n", dir, dir);
    write_file(file, text);
    CHECK(run_sweep(file, "") == 1, "missing data should fail");
    char *out = sweep_output();
    CHECK(strstr(out, "run run: no file matches") != NULL, "missing data: %s", out);
    free(out);
    write_grid(file, "train = ./no-such-trainer\n");
    snprintf(text, sizeof text, "%s %s > %s/sweep.out 2>&1", sweep_bin, file, dir);
    CHECK(system(text) != 0, "a missing trainer should fail");
    out = sweep_output();
    CHECK(strstr(out, "trainer './no-such-trainer' is not an executable file") != NULL, "missing trainer: %s", out);
    free(out);
}

static void test_plot(void) {
    double t[16];
    int n = plot_ticks(0, 1000, 8, t);
    CHECK(n == 6 && t[0] == 0 && t[1] == 200 && t[5] == 1000, "ticks for [0,1000]: %d, %g %g", n, t[0], t[1]);
    n = plot_ticks(2.13, 2.87, 8, t);
    CHECK(n == 4 && fabs(t[0] - 2.2) < 1e-12 && fabs(t[3] - 2.8) < 1e-12, "ticks for [2.13,2.87]: %d from %g", n, t[0]);
    n = plot_ticks(-0.3, 0.3, 5, t);
    CHECK(n == 3 && t[1] == 0, "ticks across zero print a clean 0: %d, %g", n, t[1]);
    CHECK(plot_ticks(3, 3, 8, t) == 1 && t[0] == 3, "a flat range gets one tick");

    double x[5] = {0, 1, 2, 3, 4}, y1[5] = {3, 2.5, NAN, 2, 1.9}, y2[5] = {3, 2.8, 2.6, 2.5, 2.45};
    PlotSeries s[12];
    for (int i = 0; i < 12; i++) s[i] = (PlotSeries){.label = i % 2 ? "b <&> \"q\"" : "a", .x = x, .y = i % 2 ? y2 : y1, .n = 5};
    double lo[5] = {2.9, 2.4, NAN, 1.9, 1.8}, hi[5] = {3.1, 2.6, NAN, 2.1, 2.0};
    s[0].lo = lo;
    s[0].hi = hi;
    char p[300];
    snprintf(p, sizeof p, "%s/lines.svg", dir);
    plot_lines_svg(p, "title & <more>", "x", "y's", s, 12);
    size_t len;
    char *svg = read_file(p, &len);
    CHECK(svg_well_formed(svg), "line plot is not well-formed XML");
    CHECK(count_lines_with(svg, "<polyline") == 12 && strstr(svg, "stroke-dasharray") && strstr(svg, "b &lt;&amp;&gt; &quot;q&quot;"),
          "12 series, dashed after 10, escaped labels");
    CHECK(count_lines_with(svg, "<polygon") == 1, "one series with a band draws one band");
    free(svg);
    plot_lines_svg(p, "empty", "x", "y", NULL, 0);
    svg = read_file(p, &len);
    CHECK(svg_well_formed(svg), "an empty plot is still well-formed");
    free(svg);

    double a[6] = {0, 0.5, 1, NAN, 0.25, 2};
    PlotPanel panels[2] = {{"left", a, 2, 3, 0, 1}, {"right <2>", a, 3, 2, 0, 2}};
    snprintf(p, sizeof p, "%s/heat.svg", dir);
    plot_heatmaps_svg(p, "heat", panels, 2);
    svg = read_file(p, &len);
    CHECK(svg_well_formed(svg), "heatmap is not well-formed XML");
    CHECK(strstr(svg, "#cccccc") && strstr(svg, "fill=\"#08306b\""), "NaN grey and the top of the range dark blue");
    free(svg);
    CHECK(!svg_well_formed("<svg><g></svg>") && !svg_well_formed("<svg a=b/>") && !svg_well_formed("<svg>&x</svg>") &&
          !svg_well_formed("<svg/><svg/>"), "the checker itself rejects broken XML");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/hh_test_sweep_%d", (int)getpid());
    make_dirs(dir);
    sweep_bin = getenv("SWEEP_BIN") ? getenv("SWEEP_BIN") : "./sweep";
    train_bin = getenv("TRAIN_BIN") ? getenv("TRAIN_BIN") : "./train";
    // Tiny byte-level shards: the sweep tests need data files, not meaning.
    Rng rng;
    rng_seed(&rng, 3);
    uint16_t tok[4000];
    for (int i = 0; i < 4000; i++) tok[i] = (uint16_t)rng_below(&rng, 256);
    char p[300];
    snprintf(p, sizeof p, "%s/train.bin", dir);
    shard_write(p, tok, 3000);
    snprintf(p, sizeof p, "%s/val.bin", dir);
    shard_write(p, tok + 3000, 1000);

    test_plot();
    test_configs_parse();
    test_sweep_rejects();
    test_gpt2_conversion_recipe();
    test_sweep_runs_and_resumes();
    test_jobs_and_eval();
    test_only();
    test_aggregation();
    test_full_scale_one_step();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    return test_summary("test_sweep");
}
