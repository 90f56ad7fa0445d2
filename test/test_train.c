// test_train.c — training as a whole: overfitting one batch, resume and
// thread-count bitwise identity, llm.c checkpoint import, generation against
// the full forward pass, and a short run per attention kind on real text.
//
// Run from the repository root (make test does): it drives ./train.
#define _DEFAULT_SOURCE  // wait4
#include "test.h"
#include "../data/shard.h"
#include "../model.h"
#include "ckpt.h"
#include "kinds.h"
#include "text.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static char dir[256];
static int have_text;  // real text shards were made in dir

static Config tiny_config(const char *kind) {
    Config c;
    config_defaults(&c);
    strcpy(c.attention, kind);
    c.n_layer = 2; c.n_head = 2; c.n_embd = 32; c.seq_len = 32; c.vocab_size = 256;
    c.chunk_size = 8;
    c.seed = 7;
    return c;
}

static Config tiny_config_of(const AttnKind *k) {
    Config c = tiny_config(k->name);
    kind_config(&c, k);
    return c;
}

static void make_text_shards(void) {
    char train[512], val[512];
    snprintf(train, sizeof train, "%s/train.bin", dir);
    snprintf(val, sizeof val, "%s/val.bin", dir);
    have_text = make_byte_shards(train, val, 400000);
    if (!have_text) SKIP("no real text found (run `make data`, or put ../shared/data beside the repo): runs on text are skipped");
}

// One training step on a fixed batch, as train.c takes it; returns its loss.
static double train_step(GPT2 *m, const int *in, const int *tgt, int B, int T, double lr) {
    model_begin_step(m);
    model_forward(m, in, tgt, B, T);
    double loss = m->loss;
    model_backward(m, 1.0);
    model_adamw(m, lr, model_grad_norm(m));
    return loss;
}

static void test_overfit_one_batch(void) {
    Config c = tiny_config("softmax");
    c.weight_decay = 0;
    GPT2 m;
    model_init(&m, &c);
    enum { B = 2, T = 32 };
    int in[B * T], tgt[B * T];
    const char *s = "the hedgehog and the porcupine learn to attend, softly and sharply!";
    for (int i = 0; i < B * T; i++) {
        in[i] = (unsigned char)s[i % 60];
        tgt[i] = (unsigned char)s[(i + 1) % 60];
    }
    double first = 0;
    for (int step = 0; step < 150; step++) {
        double loss = train_step(&m, in, tgt, B, T, 1e-2);
        if (step == 0) first = loss;
    }
    model_forward(&m, in, tgt, B, T);
    CHECK(m.loss < 0.1, "overfit one batch: loss %.4f (from %.4f) should fall below 0.1", m.loss, first);
    model_free(&m);
}

// The gradient norm that clipping uses: its blocked, chained sum against a
// plain one in double, and the same bits for any thread count.
static void test_grad_norm(void) {
    Config c = tiny_config("softmax");
    GPT2 m;
    model_init(&m, &c);
    enum { B = 2, T = 32 };
    int in[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) in[i] = (i * 37) % 256, tgt[i] = (i * 11 + 3) % 256;
    model_forward(&m, in, tgt, B, T);
    model_backward(&m, 1.0);
    double plain = 0;
    for (size_t i = 0; i < m.n_params; i++) plain += (double)m.grads[i] * m.grads[i];
    plain = sqrt(plain);
    double norm = model_grad_norm(&m), tol = sizeof(real) == sizeof(float) ? 1e-5 : 1e-12;
    CHECK(m.n_params % 1024 != 0 && fabs(norm - plain) <= tol * plain,
          "gradient norm %.9g, plain double sum %.9g (%zu parameters)", norm, plain, m.n_params);
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    for (int t = 1; t <= 3; t += 2) {
        omp_set_num_threads(t);
        double other = model_grad_norm(&m);
        CHECK(memcmp(&other, &norm, sizeof norm) == 0, "gradient norm with %d threads %.17g, with %d %.17g", t, other,
              threads, norm);
    }
    omp_set_num_threads(threads);
#endif
    model_free(&m);
}

// Run ./train on the text shards; returns its exit status.
static int run_train(const char *out, const char *extra) {
    char cmd[4096];
    const char *train = getenv("TRAIN_BIN");  // the sanitizer build's own ./train (Makefile)
    snprintf(cmd, sizeof cmd,
             "%s vocab_size=256 n_layer=2 n_head=2 n_embd=32 seq_len=32 batch_size=4 chunk_size=8 "
             "train_data=%s/train.bin val_data=%s/val.bin out_dir=%s/%s eval_every=0 eval_batches=2 "
             "log_every=0 seed=3 lr=3e-3 warmup_steps=2 %s > %s/%s.log 2>&1",
             train ? train : "./train", dir, dir, dir, out, extra, dir, out);
    return system(cmd);
}

#if !defined(__SANITIZE_ADDRESS__)  // only the memory test uses it, and ASan skips that
// The same, measuring the run's peak resident memory (KiB) through wait4.
static int run_train_measured(const char *out, const char *extra, long *peak_kb) {
    char cmd[2048];
    const char *train = getenv("TRAIN_BIN");
    snprintf(cmd, sizeof cmd,
             "exec %s vocab_size=256 train_data=%s/train.bin val_data=%s/val.bin out_dir=%s/%s eval_every=0 "
             "eval_batches=1 log_every=0 seed=3 %s > %s/%s.log 2>&1",
             train ? train : "./train", dir, dir, dir, out, extra, dir, out);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int status = -1;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) return -1;
    *peak_kb = ru.ru_maxrss;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
#endif

// Parameters, optimizer moments and step of a run's checkpoint.
static GPT2 *load_run(const char *out, const AttnKind *kind) {
    Config c = tiny_config_of(kind);
    c.seed = 3;
    char p[512];
    snprintf(p, sizeof p, "%s/%s/model.ckpt", dir, out);
    return load_state(&c, p);
}

static void compare_runs(const char *a, const char *b, const AttnKind *kind, const char *what) {
    GPT2 *x = load_run(a, kind), *y = load_run(b, kind);
    char label[48];
    CHECK(same_state(x, y), "%s (%s): weights, moments and step must be bitwise identical", what,
          kind_label(kind, label, sizeof label));
    model_free(x);
    model_free(y);
    free(x);
    free(y);
}

// Runs `args` to 16 steps straight, and to 8 then resumed to 16; the two
// must end bitwise identical.
static void check_resume(const char *name, const char *args, const AttnKind *kind, const char *what) {
    char straight[64], resumed[64], extra[512];
    snprintf(straight, sizeof straight, "%s_straight", name);
    snprintf(resumed, sizeof resumed, "%s_resumed", name);
    snprintf(extra, sizeof extra, "%s max_steps=16", args);
    CHECK(run_train(straight, extra) == 0, "%s: uninterrupted run", what);
    snprintf(extra, sizeof extra, "%s max_steps=8", args);
    CHECK(run_train(resumed, extra) == 0, "%s: first half", what);
    snprintf(extra, sizeof extra, "%s max_steps=16 resume=1", args);
    CHECK(run_train(resumed, extra) == 0, "%s: resumed second half", what);
    compare_runs(straight, resumed, kind, what);
}

static void test_resume_bitwise(void) {
    // A constant schedule after warm-up (min_lr = lr), so a run stopped at
    // step 8 and resumed to 16 follows the very same learning rates.
    Config c = tiny_config("softmax");
    check_resume("plain", "min_lr=3e-3 grad_accum=2", attn_find(&c), "resume");
    // Performer redrawing every 4 steps: the resume point (8) is a redraw.
    strcpy(c.attention, "performer");
    check_resume("performer", "min_lr=3e-3 grad_accum=2 attention=performer performer_redraw=4", attn_find(&c),
                 "resume across a feature redraw");
}

// Performer's features are redrawn at the start of step k·R, not after the
// update that ends step k·R: a model evaluated or saved after R steps holds
// the features those steps trained with.
static void test_performer_redraw_timing(void) {
    Config c = tiny_config("performer");
    c.performer_redraw = 3;
    GPT2 m;
    model_init(&m, &c);
    enum { B = 1, T = 8 };
    int in[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) in[i] = i % 7, tgt[i] = (i + 1) % 7;
    size_t n = m.n_buffers * sizeof(real);
    real *initial = xmalloc(n, "features");
    memcpy(initial, m.buffers, n);
    for (int step = 0; step < 3; step++) train_step(&m, in, tgt, B, T, 1e-3);
    CHECK(m.step == 3 && memcmp(initial, m.buffers, n) == 0,
          "performer: after %ld steps (= performer_redraw) the features are still those the steps used", m.step);
    model_begin_step(&m);
    CHECK(memcmp(initial, m.buffers, n) != 0, "performer: step 3 starts with a fresh draw");
    free(initial);
    model_free(&m);
}

static void test_threads_bitwise(void) {
#ifdef _OPENMP
    const AttnKind *const *kinds;
    int n = attn_kinds(&kinds);
    for (int k = 0; k < n; k++) {
        char extra[256], a[64], b[64], label[48], args[96];
        kind_label(kinds[k], label, sizeof label);
        kind_args(kinds[k], args, sizeof args);
        snprintf(a, sizeof a, "t1_%s", label);
        snprintf(b, sizeof b, "t2_%s", label);
        snprintf(extra, sizeof extra, "%s max_steps=4 threads=1", args);
        CHECK(run_train(a, extra) == 0, "1-thread run");
        snprintf(extra, sizeof extra, "%s max_steps=4 threads=2", args);
        CHECK(run_train(b, extra) == 0, "2-thread run");
        compare_runs(a, b, kinds[k], "1 vs 2 threads");
    }
#else
    SKIP("built without OpenMP: thread-count identity is trivially true");
#endif
}

static void load_llmc_into(void *cfg) {
    Config *c = cfg;
    GPT2 m;
    char p[512];
    snprintf(p, sizeof p, "%s/llmc.bin", dir);
    model_init(&m, c);
    model_load(&m, p, NULL);
}

// An llm.c GPT-2 checkpoint is our first 16 tensors, float32, behind its own
// header; write one from a model and check that loading it gives the same loss.
static void test_llmc_import(void) {
    Config c = tiny_config("softmax");
    GPT2 a, b;
    model_init(&a, &c);
    c.seed = 99;
    model_init(&b, &c);
    char p[512];
    snprintf(p, sizeof p, "%s/llmc.bin", dir);
    int32_t h[256] = {20240326, 3, a.maxT, a.V, a.L, a.NH, a.C, a.Vp};
    FILE *f = xfopen(p, "wb");
    xfwrite(h, 4, 256, f, p);
    xfwrite(a.params, sizeof(real), (size_t)(a.p[P_ATTN] - a.params), f, p);
    xfclose(f, p);
    model_load(&b, p, NULL);
    int in[32], tgt[32];
    for (int i = 0; i < 32; i++) { in[i] = (i * 7) % 256; tgt[i] = (i * 13) % 256; }
    model_forward(&a, in, tgt, 1, 32);
    double la = a.loss;
    model_forward(&b, in, tgt, 1, 32);
    CHECK(la == b.loss, "llm.c checkpoint import reproduces the loss exactly (%.9f vs %.9f)", la, b.loss);
    // llm.c's model is a softmax GPT-2: another kind starts from it only by conversion.
    strcpy(c.attention, "hedgehog");
    CHECK(expect_die(load_llmc_into, &c, "add convert=1"), "llm.c -> hedgehog is refused without convert = 1");
    c.convert = 1;
    strcpy(c.init_from, p);
    GPT2 hh;
    model_init(&hh, &c);
    model_load(&hh, p, NULL);
    int same = 1;
    for (int i = 0; i < P_ATTN; i++) same &= memcmp(hh.p[i], a.p[i], a.sizes[i] * sizeof(real)) == 0;
    CHECK(same, "llm.c -> hedgehog with convert = 1 copies every GPT-2 tensor");
    model_free(&hh);
    model_free(&a);
    model_free(&b);
}

// Generation runs attention in its recurrent form, one token at a time; its
// logits must match the full forward pass over the same tokens.
static void test_generation_matches_forward(void) {
    const AttnKind *const *kinds;
    int n = attn_kinds(&kinds);
    for (int k = 0; k < n; k++) {
        Config c = tiny_config_of(kinds[k]);
        char label[48];
        kind_label(kinds[k], label, sizeof label);
        GPT2 m;
        model_init(&m, &c);
        enum { T = 29 };  // not a multiple of chunk_size
        int tok[T] = {65};
        real *logits = xmalloc((size_t)m.Vp * sizeof(real), "logits");
        GenState *state = model_state_alloc(&m);
        real *seq = xmalloc((size_t)T * m.Vp * sizeof(real), "logits");
        for (int t = 0; t < T; t++) {
            model_step(&m, state, tok[t], t, logits);
            memcpy(seq + (size_t)t * m.Vp, logits, (size_t)m.Vp * sizeof(real));
            int best = 0;
            for (int v = 1; v < m.V; v++) best = logits[v] > logits[best] ? v : best;
            if (t + 1 < T) tok[t + 1] = (best + 3 * t) % m.V;  // vary the input beyond greedy loops
        }
        model_forward(&m, tok, NULL, 1, T);
        double worst = 0;
        for (size_t i = 0; i < (size_t)T * m.Vp; i++) {
            double d = fabs(seq[i] - m.logits[i]) / (1 + fabs(m.logits[i]));
            worst = d > worst ? d : worst;
        }
        CHECK(worst < 1e-4, "%s: recurrent generation vs full forward, worst logit difference %.2e", label, worst);
        free(logits);
        model_state_free(state);
        free(seq);
        model_free(&m);
    }
}

// The estimate ./train prints before allocating ("memory: X MB estimated
// peak") against the peak RSS the kernel measured, for a few shapes.
static void test_memory_estimate(void) {
#if defined(__SANITIZE_ADDRESS__)
    SKIP("memory estimate: AddressSanitizer's shadow memory inflates the RSS");
#else
    static const char *const shapes[] = {
        "attention=softmax batch_size=16 seq_len=512 n_embd=128 n_head=4 n_layer=4",
        "attention=hedgehog distill_weight=1 batch_size=8 seq_len=256 n_embd=128 n_head=4 n_layer=4",
        "attention=taylor attention_form=chunked batch_size=4 seq_len=512 n_embd=128 n_head=4 n_layer=4",
        "attention=softmax vocab_size=50257 batch_size=4 seq_len=128 n_embd=128 n_head=4 n_layer=2",
        // gradient accumulation's buffers dominate (5 gradient-sized)
        "attention=softmax grad_accum=16 batch_size=1 seq_len=64 n_embd=384 n_head=4 n_layer=4",
    };
    for (int i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); i++) {
        char out[64], extra[512];
        snprintf(out, sizeof out, "mem_%d", i);
        snprintf(extra, sizeof extra, "%s max_steps=1 threads=2", shapes[i]);
        long peak_kb = 0;
        int status = run_train_measured(out, extra, &peak_kb);
        char p[1024], line[512];
        snprintf(p, sizeof p, "%s/%s.log", dir, out);
        FILE *f = fopen(p, "r");
        double est = 0;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "memory: %lf MB estimated peak", &est) == 1) break;
        if (f) fclose(f);
        double rss = peak_kb * 1024.0 / 1e6;
        CHECK(status == 0 && est > 0 && fabs(rss / est - 1) < 0.2,
              "memory estimate %.1f MB vs measured peak RSS %.1f MB (within 20%%): %s", est, rss, shapes[i]);
    }
#endif
}

// Conversion (docs/conversion.md): a checkpoint of one kind starts a run of
// another only with convert = 1; the tensors both have are copied; with
// trainable = feature_maps every other tensor stays bitwise as it was.
static int tensor_equal(const GPT2 *a, const GPT2 *b, int t) {
    return a->sizes[t] == b->sizes[t] && memcmp(a->p[t], b->p[t], a->sizes[t] * sizeof(real)) == 0;
}

static int run_tool(const char *cmd_fmt, const char *arg1, const char *arg2) {
    char cmd[2048], tool[600];
    const char *train = getenv("TRAIN_BIN");
    const char *slash = train ? strrchr(train, '/') : NULL;
    snprintf(tool, sizeof tool, "%.*s", slash ? (int)(slash - train + 1) : 2, slash ? train : "./");
    snprintf(cmd, sizeof cmd, cmd_fmt, tool, arg1, arg2);
    return system(cmd);
}

static void test_conversion(void) {
    Config c = tiny_config("softmax");
    c.seed = 3;
    const AttnKind *soft = attn_find(&c);
    CHECK(run_train("conv_teacher", "attention=softmax max_steps=4") == 0, "a softmax teacher trains");
    char teacher[512], extra[1024];
    snprintf(teacher, sizeof teacher, "%s/conv_teacher/model.ckpt", dir);
    snprintf(extra, sizeof extra, "attention=hedgehog max_steps=1 init_from=%s", teacher);
    CHECK(run_train("conv_refused", extra) != 0, "another kind's checkpoint is refused without convert = 1");
    // Stage 1: the maps alone, by distillation alone.
    snprintf(extra, sizeof extra, "attention=hedgehog convert=1 trainable=feature_maps lm_weight=0 distill_weight=1 "
             "max_steps=3 lr=1e-2 init_from=%s", teacher);
    CHECK(run_train("conv_stage1", extra) == 0, "stage 1: softmax -> hedgehog, maps only, distillation only");
    GPT2 *t = load_run("conv_teacher", soft);
    strcpy(c.attention, "hedgehog");
    GPT2 *s1 = load_run("conv_stage1", attn_find(&c)), *fresh = xmalloc(sizeof *fresh, "model");
    model_init(fresh, &c);
    int frozen = 1;
    for (int i = 0; i < P_ATTN; i++) frozen &= tensor_equal(t, s1, i);
    CHECK(frozen, "trainable = feature_maps: every GPT-2 tensor is bitwise the teacher's after 3 steps");
    CHECK(!tensor_equal(s1, fresh, P_ATTN), "trainable = feature_maps: the maps themselves moved");
    model_free(fresh);
    free(fresh);
    // Back to softmax, and across Hedgehog's variants (their maps are the same tensors).
    char s1path[512];
    snprintf(s1path, sizeof s1path, "%s/conv_stage1/model.ckpt", dir);
    snprintf(extra, sizeof extra, "attention=softmax convert=1 max_steps=1 lr=0 min_lr=0 init_from=%s", s1path);
    CHECK(run_train("conv_back", extra) == 0, "hedgehog -> softmax");
    GPT2 *back = load_run("conv_back", soft);
    int same = 1;
    for (int i = 0; i < P_ATTN; i++) same &= tensor_equal(back, s1, i);
    CHECK(same, "hedgehog -> softmax copies every GPT-2 tensor (lr 0 keeps them)");
    snprintf(extra, sizeof extra, "attention=hedgehog hedgehog_map=joint convert=1 max_steps=1 lr=0 min_lr=0 init_from=%s", s1path);
    CHECK(run_train("conv_joint", extra) == 0, "hedgehog exp -> joint");
    strcpy(c.hedgehog_map, "joint");
    GPT2 *joint = load_run("conv_joint", attn_find(&c));
    CHECK(tensor_equal(joint, s1, P_ATTN), "hedgehog exp -> joint keeps the learned maps");
    snprintf(extra, sizeof extra, "attention=hedgehog hedgehog_map=joint max_steps=1 init_from=%s", s1path);
    CHECK(run_train("conv_joint_refused", extra) != 0, "another hedgehog_map is another kind: refused without convert");
    static const char *const others[] = {"t2r", "performer", "elu", "taylor"};
    for (int i = 0; i < 4; i++) {
        char out[64];
        snprintf(out, sizeof out, "conv_%s", others[i]);
        snprintf(extra, sizeof extra, "attention=%s convert=1 max_steps=2 init_from=%s", others[i], teacher);
        CHECK(run_train(out, extra) == 0, "softmax -> %s converts and trains", others[i]);
    }
    snprintf(extra, sizeof extra, "attention=elu trainable=feature_maps max_steps=1");
    CHECK(run_train("conv_nomaps", extra) != 0, "trainable = feature_maps with a kind without maps is refused");
    // The converted model samples and is analysed like any other.
    CHECK(run_tool("%ssample %s -i 1 -n 40 -p 1,2,3 > /dev/null", s1path, "") == 0, "./sample reads a converted checkpoint");
    char an[600];
    snprintf(an, sizeof an, "%s/val.bin --seqs 1 --out %s/conv_analysis > /dev/null", dir, dir);
    CHECK(run_tool("%sanalyze %s %s", s1path, an) == 0, "./analyze reads a converted checkpoint");
    GPT2 *models[] = {t, s1, back, joint};
    for (int i = 0; i < 4; i++) {
        model_free(models[i]);
        free(models[i]);
    }
}

static double read_val_loss(const char *out) {
    char p[1024], line[512];
    snprintf(p, sizeof p, "%s/%s.log", dir, out);
    FILE *f = fopen(p, "r");
    double v = NAN;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "val_loss=", 9) == 0) v = atof(line + 9);
    if (f) fclose(f);
    return v;
}

// A loss mask beside the text shards: mask[i] = keep(i).
static void write_mask(const char *set, const char *name, int (*keep)(size_t)) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s.bin", dir, set);
    size_t n;
    uint16_t *m = shard_read(p, &n, 0);
    for (size_t i = 0; i < n; i++) m[i] = (uint16_t)keep(i);
    snprintf(p, sizeof p, "%s/%s_%s.mask", dir, set, name);
    shard_write(p, m, n);
    free(m);
}
static int keep_all(size_t i) { return (void)i, 1; }
static int keep_some(size_t i) { return i % 4 == 1; }

// A mask of ones is no mask, bitwise. A real one changes what training
// learns (train_mask) and what evaluation scores (val_mask), and a run with
// it, aligned windows and accumulation resumes bitwise. A micro-batch with
// nothing to score has loss 0 and no gradient.
static void test_loss_mask(void) {
    Config c = tiny_config("softmax");
    const char *sets[2] = {"train", "val"};
    for (int s = 0; s < 2; s++) write_mask(sets[s], "all", keep_all), write_mask(sets[s], "some", keep_some);
    char extra[1024];
    CHECK(run_train("nomask", "max_steps=6") == 0, "run without a mask");
    snprintf(extra, sizeof extra, "max_steps=6 train_mask=%s/train_all.mask val_mask=%s/val_all.mask", dir, dir);
    CHECK(run_train("allmask", extra) == 0, "run with a mask of ones");
    compare_runs("nomask", "allmask", attn_find(&c), "a loss mask of ones changes nothing");
    CHECK(read_val_loss("nomask") == read_val_loss("allmask"), "a mask of ones: the same validation loss");
    snprintf(extra, sizeof extra, "max_steps=6 train_mask=%s/train_some.mask", dir);
    CHECK(run_train("trainmask", extra) == 0, "run with a training mask");
    GPT2 *a = load_run("nomask", attn_find(&c)), *b = load_run("trainmask", attn_find(&c));
    CHECK(memcmp(a->params, b->params, a->n_params * sizeof(real)) != 0, "train_mask changes the weights training reaches");
    model_free(a), model_free(b), free(a), free(b);
    snprintf(extra, sizeof extra, "max_steps=0 init_from=%s/nomask/model.ckpt val_mask=%s/val_some.mask", dir, dir);
    CHECK(run_train("valmask", extra) == 0, "evaluation with a validation mask");
    CHECK(read_val_loss("valmask") != read_val_loss("nomask"), "val_mask changes the validation loss of the same weights "
          "(%.6f, unmasked %.6f)", read_val_loss("valmask"), read_val_loss("nomask"));
    snprintf(extra, sizeof extra, "min_lr=3e-3 grad_accum=2 window_align=8 train_mask=%s/train_some.mask val_mask=%s/val_some.mask",
             dir, dir);
    check_resume("mask", extra, attn_find(&c), "resume with a loss mask, aligned windows and accumulation");

    GPT2 m;
    model_init(&m, &c);
    enum { B = 2, T = 8 };
    int in[B * T], none[B * T], nonzero = 0;
    for (int i = 0; i < B * T; i++) in[i] = i % 11, none[i] = NO_TARGET;
    model_zero_grad(&m);
    model_forward(&m, in, none, B, T);
    model_backward(&m, 1.0);
    for (size_t i = 0; i < m.n_params; i++) nonzero += m.grads[i] != 0;
    CHECK(m.n_scored == 0 && m.loss == 0 && nonzero == 0, "nothing to score: loss %g, %d nonzero gradients", m.loss, nonzero);
    model_free(&m);
}

static void test_each_kind_learns(void) {
    const AttnKind *const *kinds;
    int n = attn_kinds(&kinds);
    for (int k = 0; k < n; k++) {
        char out[64], extra[256];
        // Before: one step at learning rate 0 leaves the initial weights.
        char label[48], args[96];
        kind_label(kinds[k], label, sizeof label);
        kind_args(kinds[k], args, sizeof args);
        snprintf(out, sizeof out, "init_%s", label);
        snprintf(extra, sizeof extra, "%s max_steps=1 lr=0 min_lr=0 eval_batches=8", args);
        CHECK(run_train(out, extra) == 0, "%s evaluates", label);
        double before = read_val_loss(out);
        snprintf(out, sizeof out, "learn_%s", label);
        snprintf(extra, sizeof extra, "%s max_steps=40 eval_batches=8", args);
        CHECK(run_train(out, extra) == 0, "%s trains", label);
        double after = read_val_loss(out);
        CHECK(after < before - 1.0, "%s: validation loss on real text %.3f -> %.3f after 40 steps (should fall by > 1 nat)",
              label, before, after);
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/hh_test_train_%d", (int)getpid());
    make_dirs(dir);
    test_overfit_one_batch();
    test_grad_norm();
    test_performer_redraw_timing();
    test_llmc_import();
    test_generation_matches_forward();
    make_text_shards();
    if (have_text) {
        test_memory_estimate();
        test_conversion();
        test_resume_bitwise();
        test_loss_mask();
        test_threads_bitwise();
        test_each_kind_learns();
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (!test_failed) CHECK(system(cmd) == 0, "clean up");
    else printf("kept %s for inspection\n", dir);
    return test_summary("test_train");
}
