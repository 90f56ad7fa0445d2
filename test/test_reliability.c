// test_reliability.c — "nothing lost, nothing crashes" (docs/reliability.md).
//
//  1. A table of bad inputs — configs, token shards, checkpoints, out_dir,
//     a full disk — each run through ./train, ./sample or a library call.
//     Every one must exit with status 1 and exactly one line on stderr,
//     "error: ..." containing the expected words: no signal, no sanitizer
//     report, no second line.
//  2. SIGINT and SIGTERM finish the step, save, print how to resume and exit
//     130; the printed command resumes and finishes the run.
//  3. SIGKILL at seeded random moments: each time at most checkpoint_every
//     steps are lost, and after resuming to the end the weights, AdamW moments
//     and step are bitwise those of an uninterrupted run (cosine schedule).
//  4. A non-finite loss stops the run naming the step and the layer, and
//     leaves the last checkpoint loadable and byte for byte unchanged.
//
// Run from the repository root (make test does). TRAIN_BIN and SAMPLE_BIN
// name the programs under test (default ./train, ./sample), so the sanitizer
// build tests its own instrumented binaries.
#include "test.h"
#include "shards.h"
#include "../data/shard.h"
#include "../checkpoint.h"
#include "ckpt.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

static char dir[256];
static const char *train_bin = "./train", *sample_bin = "./sample";

static void pathf(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static void write_bytes(const char *name, const void *data, size_t n) {
    char p[512];
    pathf(p, sizeof p, name);
    FILE *f = xfopen(p, "wb");
    xfwrite(data, 1, n, f, p);
    xfclose(f, p);
}

static void write_text(const char *name, const char *text) { write_bytes(name, text, strlen(text)); }

static char *slurp(const char *path) {
    if (!file_exists(path)) return NULL;
    return read_file(path, NULL);
}

static void sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

// ---------------------------------------------------------------------------
// Running a program or a library call in a child process.

typedef struct {
    long fsize_limit;        // > 0: RLIMIT_FSIZE in the child, SIGXFSZ ignored
    void (*fn)(void *);      // a library call instead of a program
    void *arg;
} Spawn;

// Split `args` at spaces ('@' becomes the test directory) and run `prog` with
// them, stdout to out_path and stderr to err_path. Returns the child's pid.
static pid_t start(const char *prog, const char *args, const char *out_path, const char *err_path, const Spawn *sp) {
    static char buf[8192];
    char *argv[128];
    int argc = 0;
    size_t n = 0;
    argv[argc++] = (char *)prog;
    for (const char *s = args ? args : ""; *s;) {
        while (*s == ' ') s++;
        if (!*s) break;
        argv[argc++] = buf + n;
        for (; *s && *s != ' '; s++) {
            if (*s == '@') { strcpy(buf + n, dir); n += strlen(dir); }
            else buf[n++] = *s;
        }
        buf[n++] = '\0';
    }
    argv[argc] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        if (sp && sp->fsize_limit > 0) {
            signal(SIGXFSZ, SIG_IGN);  // stays ignored across exec: writes fail with EFBIG
            struct rlimit rl = {(rlim_t)sp->fsize_limit, (rlim_t)sp->fsize_limit};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        if (sp && sp->fn) {
            sp->fn(sp->arg);
            fflush(stdout);
            _exit(0);
        }
        execv(prog, argv);
        fprintf(stderr, "exec %s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    return pid;
}

static int wait_for(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return status;
}

static int run(const char *prog, const char *args, const char *tag, const Spawn *sp) {
    char out[512], err[512];
    snprintf(out, sizeof out, "%s/%s.out", dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", dir, tag);
    return wait_for(start(prog, args, out, err, sp));
}

// The bad-input contract: exit status 1 (die), no signal, and stderr exactly
// one line "error: ..." that contains `expect`.
static int clean_failure(int status, const char *tag, const char *expect) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s.err", dir, tag);
    char *err = slurp(p);
    if (!err) err = strdup("");
    size_t len = strlen(err);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += err[i] == '\n';
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 1 && lines == 1 && err[len - 1] == '\n' &&
             strncmp(err, "error: ", 7) == 0 && strstr(err, expect) != NULL;
    if (!ok)
        printf("  %s: expected exit 1 and one line 'error: ...%s...'; got %s %d and stderr:\n%s\n", tag, expect,
               WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), err);
    free(err);
    return ok;
}

// ---------------------------------------------------------------------------
// 1. The bad-input table.

// A valid tiny run, apart from what each case adds or overrides.
#define BASE "threads=1 vocab_size=256 n_layer=1 n_head=2 n_embd=16 seq_len=16 batch_size=2 max_steps=2 eval_every=0 " \
             "eval_batches=1 log_every=0 tokenizer=byte train_data=@/ok.bin val_data=@/ok.bin"

static Config tiny_config(void) {
    Config c;
    config_defaults(&c);
    c.vocab_size = 256; c.n_layer = 1; c.n_head = 2; c.n_embd = 16; c.seq_len = 16;
    c.batch_size = 2; c.max_steps = 2;
    strcpy(c.tokenizer, "byte");
    return c;
}

static void write_shard(const char *name, int magic, int version, int count, const uint16_t *tok, size_t n) {
    char p[512];
    pathf(p, sizeof p, name);
    write_raw_shard(p, magic, version, count, tok, n);
}

// Header ints of our checkpoint format (model.c): the byte offsets we edit.
enum { H_VERSION = 1, H_STEP_LO = 13, H_STEP_HI = 14, H_ATTN_NAME = 32, H_CONFIG_LEN = 10, H_INTS = 256 };

static long ckpt_step(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int32_t h[H_INTS];
    long step = -1;
    if (fread(h, 4, H_INTS, f) == H_INTS) step = (long)((uint64_t)(uint32_t)h[H_STEP_HI] << 32 | (uint32_t)h[H_STEP_LO]);
    fclose(f);
    return step;
}

// Copy of a checkpoint file with `n` bytes at `offset` replaced.
static void patch_copy(const char *from, const char *to, long offset, const void *bytes, size_t n) {
    char p[512];
    pathf(p, sizeof p, from);
    size_t len;
    char *data = read_file(p, &len);
    memcpy(data + offset, bytes, n);
    write_bytes(to, data, len);
    free(data);
}

static void make_fixtures(void) {
    // Shards: a good one and every way one can be broken.
    uint16_t tok[4000];
    Rng rng;
    rng_seed(&rng, 11);
    for (int i = 0; i < 4000; i++) tok[i] = (uint16_t)rng_below(&rng, 256);
    write_shard("ok.bin", SHARD_MAGIC, SHARD_VERSION, 4000, tok, 4000);
    write_shard("magic.bin", 12345, SHARD_VERSION, 4000, tok, 4000);
    write_shard("version.bin", SHARD_MAGIC, 7, 4000, tok, 4000);
    write_shard("count.bin", SHARD_MAGIC, SHARD_VERSION, 5000, tok, 4000);
    write_shard("negative.bin", SHARD_MAGIC, SHARD_VERSION, -3, tok, 4000);
    write_shard("zero.bin", SHARD_MAGIC, SHARD_VERSION, 0, tok, 0);
    write_shard("few.bin", SHARD_MAGIC, SHARD_VERSION, 10, tok, 10);
    uint16_t big[100];
    memcpy(big, tok, sizeof big);
    big[77] = 300;
    write_shard("vocab.bin", SHARD_MAGIC, SHARD_VERSION, 100, big, 100);
    // Loss masks: one of the wrong length, one with a value that is not 0/1.
    uint16_t ones[4000];
    for (int i = 0; i < 4000; i++) ones[i] = 1;
    write_shard("short.mask", SHARD_MAGIC, SHARD_VERSION, 3999, ones, 3999);
    ones[5] = 2;
    write_shard("two.mask", SHARD_MAGIC, SHARD_VERSION, 4000, ones, 4000);
    char p[512], q[512];
    pathf(p, sizeof p, "ok.bin");
    size_t len;
    char *data = read_file(p, &len);
    write_bytes("truncated.bin", data, len - 1);
    write_bytes("short.bin", data, 600);
    write_bytes("empty.bin", data, 0);
    free(data);

    // Configs.
    write_text("unknown.conf", "n_layer = 1\nfoo = 3\n");
    write_text("number.conf", "n_layer = four\n");
    write_text("range.conf", "n_layer = 0\n");
    write_text("twice.conf", "lr = 1e-3\nlr = 2e-3\n");
    write_text("empty.conf", "");
    write_text("comments.conf", "# nothing but comments\n\n");
    write_text("noeq.conf", "n_layer 2\n");
    unsigned char junk[300];
    for (int i = 0; i < 300; i++) junk[i] = (unsigned char)rng_below(&rng, 256);
    junk[5] = 0;
    write_bytes("binary.conf", junk, sizeof junk);
    write_text("ok.conf", "n_layer = 1\n");
    char longv[700];
    memset(longv, 'x', sizeof longv);
    memcpy(longv, "out_dir = ", 10);
    longv[sizeof longv - 2] = '\n';
    longv[sizeof longv - 1] = '\0';
    write_text("long.conf", longv);

    // Checkpoints from the tiny model, then broken copies.
    Config c = tiny_config();
    GPT2 m;
    model_init(&m, &c);
    TrainState ts = {{1, 2, 3, 4}};
    pathf(p, sizeof p, "good.ckpt");
    model_save(&m, p, &ts, 1);
    pathf(p, sizeof p, "weights.ckpt");
    model_save(&m, p, NULL, 0);
    int32_t h[H_INTS];
    FILE *f = xfopen(p, "rb");
    xfread(h, 4, H_INTS, f, p);
    xfclose(f, p);
    long params_at = H_INTS * 4 + h[H_CONFIG_LEN];
    int32_t bad_magic = 777, bad_version = 9, neg_step[2] = {-5, -1};
    float nan = NAN;
    patch_copy("good.ckpt", "magic.ckpt", 0, &bad_magic, 4);
    patch_copy("good.ckpt", "version.ckpt", 4 * H_VERSION, &bad_version, 4);
    patch_copy("good.ckpt", "nan.ckpt", params_at + 4 * 100, &nan, 4);
    patch_copy("good.ckpt", "step.ckpt", 4 * H_STEP_LO, neg_step, 8);
    patch_copy("good.ckpt", "moment.ckpt", params_at + (long)(4 * m.n_params * 2 + 4 * m.n_buffers) + 8, &nan, 4);
    pathf(p, sizeof p, "good.ckpt");
    data = read_file(p, &len);
    write_bytes("truncated.ckpt", data, len - 100);
    write_bytes("short.ckpt", data, 500);
    free(data);
    c.n_layer = 2;
    GPT2 m2;
    model_init(&m2, &c);
    pathf(p, sizeof p, "layers.ckpt");
    model_save(&m2, p, &ts, 1);
    model_free(&m2);
    c.n_layer = 1;   // the same model with another attention
    strcpy(c.attention, "taylor");
    model_init(&m2, &c);
    pathf(p, sizeof p, "kind.ckpt");
    model_save(&m2, p, &ts, 1);
    model_free(&m2);
    strcpy(c.attention, "softmax");
    // An llm.c checkpoint (weights only) in an out_dir, to try to resume from.
    pathf(p, sizeof p, "llmc");
    make_dirs(p);
    pathf(p, sizeof p, "llmc/model.ckpt");
    int32_t lh[H_INTS] = {20240326, 3, m.maxT, m.V, m.L, m.NH, m.C, m.Vp};
    f = xfopen(p, "wb");
    xfwrite(lh, 4, H_INTS, f, p);
    xfwrite(m.params, sizeof(real), (size_t)(m.p[P_ATTN] - m.params), f, p);
    xfclose(f, p);
    model_free(&m);
    // llm.c headers of models far too large for any machine: refused on the
    // memory estimate before anything is allocated or read past the header.
    int32_t huge[H_INTS] = {20240326, 3, 1 << 20, 50257, 1024, 64, 65536, 50304};
    write_bytes("huge_llmc.bin", (const char *)huge, sizeof huge);
    huge[3] = 17;   // the recall task's vocabulary
    huge[7] = 128;
    write_bytes("huge_recall.bin", (const char *)huge, sizeof huge);

    // out_dir cases: a regular file, and a full disk behind the checkpoint,
    // the metrics file and the saved config (symlinks to /dev/full).
    write_text("afile", "not a directory\n");
    const char *full[][2] = {{"full_ckpt", "model.ckpt.tmp"}, {"full_csv", "metrics.csv"}, {"full_cfg", "config.txt.tmp"}};
    for (int i = 0; i < 3; i++) {
        pathf(p, sizeof p, full[i][0]);
        make_dirs(p);
        snprintf(q, sizeof q, "%s/%s/%s", dir, full[i][0], full[i][1]);
        if (symlink("/dev/full", q) != 0) printf("  symlink %s: %s\n", q, strerror(errno));
    }
    pathf(p, sizeof p, "full_shard.bin.tmp");
    if (symlink("/dev/full", p) != 0) printf("  symlink %s: %s\n", p, strerror(errno));
}

// Library calls for the table.
static void lib_shard_full(void *arg) {
    (void)arg;
    char p[512];
    pathf(p, sizeof p, "full_shard.bin");
    uint16_t tok[10] = {1, 2, 3};
    shard_write(p, tok, 10);
}

static void lib_shard_fsize(void *arg) {
    (void)arg;
    char p[512];
    pathf(p, sizeof p, "fsize_shard.bin");
    static uint16_t tok[100000];
    shard_write(p, tok, 100000);
}

static void lib_save_fsize(void *arg) {
    (void)arg;
    Config c = tiny_config();
    GPT2 m;
    model_init(&m, &c);
    char p[512];
    pathf(p, sizeof p, "fsize.ckpt");
    model_save(&m, p, NULL, 1);
}

static void lib_load_kind(void *arg) {
    (void)arg;
    Config c = tiny_config();
    GPT2 m;
    model_init(&m, &c);
    char p[512];
    pathf(p, sizeof p, "kind.ckpt");
    TrainState ts;
    model_load(&m, p, &ts);
}

static void lib_config_binary(void *arg) {
    (void)arg;
    Config c;
    config_defaults(&c);
    char p[512];
    pathf(p, sizeof p, "binary.conf");
    config_load_file(&c, p);
}

typedef struct {
    const char *tag;          // also names the .out/.err files in the test directory
    const char *prog;         // "train", "sample" or NULL (library call)
    const char *args;         // '@' = the test directory
    const char *expect;       // a fragment of the one error line
    void (*fn)(void *);       // library call when prog is NULL
    long fsize_limit;         // RLIMIT_FSIZE for the child (0 = none)
} BadCase;

static const BadCase BAD[] = {
    // configs
    {"cfg_unknown", "train", "@/unknown.conf " BASE, "unknown.conf:2: unknown key 'foo'", NULL, 0},
    {"cfg_number", "train", "@/number.conf " BASE, "n_layer = 'four' is not a number", NULL, 0},
    {"cfg_range", "train", "@/range.conf", "n_layer = 0 is out of range [1, 1024]", NULL, 0},
    {"cfg_twice", "train", "@/twice.conf " BASE, "twice.conf:2: key 'lr' is set twice", NULL, 0},
    {"cfg_empty", "train", "@/empty.conf " BASE, "sets no keys (empty file?)", NULL, 0},
    {"cfg_comments", "train", "@/comments.conf " BASE, "sets no keys", NULL, 0},
    {"cfg_noeq", "train", "@/noeq.conf " BASE, "noeq.conf:1: expected 'key = value'", NULL, 0},
    {"cfg_binary", "train", "@/binary.conf " BASE, "binary data in a config file", NULL, 0},
    {"cfg_binary_lib", NULL, NULL, "binary data in a config file", lib_config_binary, 0},
    {"cfg_long", "train", "@/long.conf " BASE, "out_dir value is too long", NULL, 0},
    {"cfg_missing", "train", "@/nope.conf " BASE, "cannot open '", NULL, 0},
    {"cfg_directory", "train", "@ " BASE, "is a directory", NULL, 0},
    {"arg_noeq", "train", "@/ok.conf n_layer", "argument 'n_layer': expected key=value", NULL, 0},
    {"arg_unknown", "train", BASE " colour=blue", "argument 'colour=blue': unknown key 'colour'", NULL, 0},
    {"arg_number", "train", BASE " lr=fast", "lr = 'fast' is not a number", NULL, 0},
    {"arg_range", "train", BASE " lr=11", "lr = 11 is out of range", NULL, 0},
    {"arg_int_max", "train", BASE " max_steps=9999999999990", "max_steps = 9999999999990 is out of range [0, 2147483647]", NULL, 0},
    {"arg_whole", "train", BASE " n_layer=1.5", "must be a whole number", NULL, 0},
    {"arg_choice", "train", BASE " attention=quantum", "is not one of softmax|", NULL, 0},
    {"arg_divisible", "train", BASE " n_embd=30 n_head=4", "n_embd = 30 is not divisible by n_head = 4", NULL, 0},
    {"arg_convert", "train", BASE " convert=1", "convert = 1 converts the checkpoint init_from names", NULL, 0},
    // token shards
    {"shard_magic", "train", BASE " train_data=@/magic.bin", "is not a token shard: magic 12345", NULL, 0},
    {"shard_version", "train", BASE " train_data=@/version.bin", "shard version 7 is not supported", NULL, 0},
    {"shard_count", "train", BASE " train_data=@/count.bin", "header says 5000 tokens but the file holds 8000 bytes", NULL, 0},
    {"shard_truncated", "train", BASE " val_data=@/truncated.bin", "truncated or corrupt", NULL, 0},
    {"shard_short", "train", BASE " train_data=@/short.bin", "shorter than the 1024-byte header", NULL, 0},
    {"shard_empty", "train", BASE " train_data=@/empty.bin", "0 bytes is shorter than the 1024-byte header", NULL, 0},
    {"shard_zero", "train", BASE " train_data=@/zero.bin", "holds no tokens", NULL, 0},
    {"shard_negative", "train", BASE " train_data=@/negative.bin", "negative token count -3", NULL, 0},
    {"shard_vocab", "train", BASE " train_data=@/vocab.bin", "token 300 at position 77 is >= vocab_size 256", NULL, 0},
    {"shard_few", "train", BASE " train_data=@/few.bin", "fewer than seq_len + 1 = 17", NULL, 0},
    {"shard_missing", "train", BASE " train_data=@/nothing_*.bin", "no file matches", NULL, 0},
    {"shard_directory", "train", BASE " val_data=@", "is a directory", NULL, 0},
    {"mask_length", "train", BASE " train_mask=@/short.mask", "short.mask' holds 3999 values but its data hold 4000 tokens", NULL, 0},
    {"mask_value", "train", BASE " val_mask=@/two.mask", "two.mask': value 2 at position 5 is not 0 or 1", NULL, 0},
    {"window_align", "train", BASE " window_align=5", "seq_len = 16 is not a multiple of window_align = 5", NULL, 0},
    // checkpoints
    {"ckpt_magic", "train", BASE " init_from=@/magic.ckpt", "is not a checkpoint: magic 777", NULL, 0},
    {"ckpt_version", "train", BASE " init_from=@/version.ckpt", "has version 9; this build reads version 1", NULL, 0},
    {"ckpt_truncated", "train", BASE " init_from=@/truncated.ckpt", "truncated or corrupt", NULL, 0},
    {"ckpt_short", "train", BASE " init_from=@/short.ckpt", "500 bytes is shorter than the header", NULL, 0},
    {"ckpt_shape", "train", BASE " init_from=@/layers.ckpt", "has n_layer = 2 but the config says 1", NULL, 0},
    {"ckpt_kind", "train", BASE " init_from=@/kind.ckpt", "was trained with attention = taylor, another attention than this config's: add convert=1", NULL, 0},
    {"ckpt_kind_lib", NULL, NULL, "was trained with attention = taylor", lib_load_kind, 0},
    {"ckpt_nan", "train", BASE " init_from=@/nan.ckpt", "holds a non-finite weight (NaN or inf) at index 100", NULL, 0},
    {"ckpt_missing", "train", BASE " init_from=@/nope.ckpt", "cannot open '", NULL, 0},
    {"ckpt_eval_only", "train", BASE " max_steps=0", "max_steps = 0 evaluates a checkpoint: give init_from", NULL, 0},
    {"resume_none", "train", BASE " resume=1 out_dir=@/fresh", "resume = 1 but there is no checkpoint", NULL, 0},
    {"resume_llmc", "train", BASE " resume=1 out_dir=@/llmc", "is an llm.c checkpoint", NULL, 0},
    {"sample_nan", "sample", "@/nan.ckpt -n 4", "holds a non-finite weight", NULL, 0},
    {"sample_magic", "sample", "@/magic.ckpt", "is not a checkpoint (magic", NULL, 0},
    {"sample_truncated", "sample", "@/truncated.ckpt -i 1", "truncated or corrupt", NULL, 0},
    {"sample_missing", "sample", "@/nope.ckpt", "cannot open '", NULL, 0},
    {"sample_length", "sample", "@/good.ckpt -n 0 -i 1", "-n 0: give a positive number", NULL, 0},
    // more memory than the machine has: refused at once, with the estimate
    {"mem_train", "train", BASE " seq_len=1000000 batch_size=1000", "needs an estimated", NULL, 0},
    {"mem_sample", "sample", "@/huge_llmc.bin", "GB of memory", NULL, 0},
    {"mem_analyze", "analyze", "@/huge_llmc.bin @/huge_llmc.bin", "GB of memory", NULL, 0},
    {"mem_recall", "recall", "eval @/huge_recall.bin", "GB of memory", NULL, 0},
    {"sample_option", "sample", "@/good.ckpt -z 1", "unknown option '-z'", NULL, 0},
    // out_dir
    {"out_under_file", "train", BASE " out_dir=@/afile/run", "cannot create directory '", NULL, 0},
    {"out_is_file", "train", BASE " out_dir=@/afile", "exists but is not a directory", NULL, 0},
    {"out_proc_new", "train", BASE " out_dir=/proc/hh_no_such_dir", "cannot create directory '/proc/hh_no_such_dir'", NULL, 0},
    {"out_proc_unwritable", "train", BASE " out_dir=/proc/self", "cannot open '/proc/self/config.txt.tmp' for writing", NULL, 0},
    // a full disk: /dev/full behind a file, or RLIMIT_FSIZE (EFBIG)
    {"full_ckpt", "train", BASE " out_dir=@/full_ckpt", "model.ckpt.tmp': No space left on device (is the disk full?)", NULL, 0},
    {"full_csv", "train", BASE " out_dir=@/full_csv", "metrics.csv': No space left on device (is the disk full?)", NULL, 0},
    {"full_cfg", "train", BASE " out_dir=@/full_cfg", "config.txt.tmp': No space left on device (is the disk full?)", NULL, 0},
    {"full_shard_lib", NULL, NULL, "full_shard.bin.tmp': No space left on device (is the disk full?)", lib_shard_full, 0},
    {"fsize_ckpt", "train", BASE " out_dir=@/fsize_run", "model.ckpt.tmp': File too large (is the disk full?)", NULL, 40000},
    {"fsize_save_lib", NULL, NULL, "fsize.ckpt.tmp': File too large (is the disk full?)", lib_save_fsize, 40000},
    {"fsize_shard_lib", NULL, NULL, "fsize_shard.bin.tmp': File too large (is the disk full?)", lib_shard_fsize, 40000},
};

// The other tools live beside the trainer.
static const char *tool_path(char *buf, size_t n, const char *name) {
    const char *slash = strrchr(train_bin, '/');
    snprintf(buf, n, "%.*s%s", slash ? (int)(slash - train_bin + 1) : 0, train_bin, name);
    return buf;
}

static void test_bad_inputs(void) {
    int n = (int)(sizeof BAD / sizeof BAD[0]);
    for (int i = 0; i < n; i++) {
        const BadCase *b = &BAD[i];
        Spawn sp = {b->fsize_limit, b->fn, NULL};
        char tool[512];
        const char *prog = !b->prog ? "(library)" : strcmp(b->prog, "train") == 0 ? train_bin
                         : strcmp(b->prog, "sample") == 0 ? sample_bin : tool_path(tool, sizeof tool, b->prog);
        double t0 = now_seconds();
        int status = run(prog, b->args, b->tag, &sp);
        CHECK(clean_failure(status, b->tag, b->expect), "bad input %s: %s", b->tag, b->expect);
        if (strncmp(b->tag, "mem_", 4) == 0)
            CHECK(now_seconds() - t0 < 10, "%s: refused in %.1f s, before allocating", b->tag, now_seconds() - t0);
    }
    // What a failed save leaves: no checkpoint under the real name.
    char p[512];
    pathf(p, sizeof p, "full_ckpt/model.ckpt");
    CHECK(!file_exists(p), "a checkpoint that could not be written never appears under its real name");
    pathf(p, sizeof p, "fsize_run/model.ckpt");
    CHECK(!file_exists(p), "a checkpoint cut short by the file size limit never appears under its real name");
    pathf(p, sizeof p, "fsize_run/model.ckpt.tmp");
    CHECK(!file_exists(p), "a checkpoint cut short by the file size limit leaves no .tmp behind");
    printf("bad-input table: %d cases\n", n);
}

// ---------------------------------------------------------------------------
// Runs on real text (byte-level shards, as test_train.c makes them).

static int have_text;

static void make_text_shards(void) {
    char train[512], val[512];
    pathf(train, sizeof train, "text_train.bin");
    pathf(val, sizeof val, "text_val.bin");
    have_text = make_byte_shards(train, val, 200000);
    if (!have_text) SKIP("no real text found (run `make data`, or put ../shared/data beside the repo): the signal, crash and NaN tests are skipped");
}

#define TEXT "threads=1 vocab_size=256 n_layer=2 n_head=2 n_embd=32 seq_len=32 batch_size=4 tokenizer=byte " \
             "train_data=@/text_train.bin val_data=@/text_val.bin eval_every=0 eval_batches=2 seed=5"

// The last step in a run's metrics.csv, or -1.
static long last_csv_step(const char *out) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s/metrics.csv", dir, out);
    char *text = slurp(p);
    if (!text) return -1;
    long step = -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] >= '0' && line[0] <= '9') step = atol(line);
    free(text);
    return step;
}

// The train_loss column of metrics.csv, by step (1-based); returns the row
// count, or -1 when a step is missing, repeated or out of order.
static int csv_losses(const char *out, double *loss, int max) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s/metrics.csv", dir, out);
    char *text = slurp(p);
    if (!text) return -1;
    int n = 0, ok = 1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!(line[0] >= '0' && line[0] <= '9')) continue;
        long step = atol(line);
        if (step != n + 1 || n >= max) { ok = 0; break; }
        loss[n++] = atof(strchr(line, ',') + 1);
    }
    free(text);
    return ok ? n : -1;
}

static GPT2 *load_out(const char *out, int n_layer) {
    Config c = tiny_config();
    c.n_layer = n_layer; c.n_embd = 32; c.seq_len = 32; c.seed = 5;
    char p[512];
    snprintf(p, sizeof p, "%s/%s/model.ckpt", dir, out);
    return load_state(&c, p);
}


static void free_model(GPT2 *m) {
    model_free(m);
    free(m);
}

// Wait until the run has logged at least `rows` steps (or exited); 1 when it did.
static int wait_rows(pid_t pid, const char *out, long rows) {
    for (int i = 0; i < 30000; i++) {
        if (last_csv_step(out) >= rows) return 1;
        if (waitpid(pid, NULL, WNOHANG) == pid) return 0;
        sleep_ms(1);
    }
    return 0;
}

// 2. A signal finishes the step, saves, prints the resume command and exits 130.
static void test_signal(int sig, const char *out) {
    char args[1024], tag[64], p[512];
    snprintf(args, sizeof args, TEXT " max_steps=300 checkpoint_every=0 log_every=1 out_dir=@/%s", out);
    snprintf(tag, sizeof tag, "%s_run", out);
    char o[512], e[512];
    snprintf(o, sizeof o, "%s/%s.out", dir, tag);
    snprintf(e, sizeof e, "%s/%s.err", dir, tag);
    pid_t pid = start(train_bin, args, o, e, NULL);
    int logged = wait_rows(pid, out, 3);
    CHECK(logged, "%s: the run logs steps before the signal", out);
    if (!logged) { kill(pid, SIGKILL); wait_for(pid); return; }
    kill(pid, sig);
    int status = wait_for(pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 130, "%s: exit status 130 after signal %d (got %s %d)", out, sig,
          WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    char *text = slurp(o), *err = slurp(e);
    char *line = text ? strstr(text, "resume with: ") : NULL;
    CHECK(line != NULL, "%s: prints 'resume with: ...'", out);
    CHECK(err && err[0] == '\0', "%s: nothing on stderr after a signal (got '%s')", out, err ? err : "");
    long reached = last_csv_step(out);
    snprintf(p, sizeof p, "%s/%s/model.ckpt", dir, out);
    CHECK(ckpt_step(p) == reached && reached > 0, "%s: the checkpoint holds the last finished step (%ld vs %ld)", out,
          ckpt_step(p), reached);
    GPT2 *m = load_out(out, 2);
    CHECK(m->step == reached, "%s: the checkpoint loads, at step %ld", out, m->step);
    free_model(m);
    if (line) {
        // Run the printed command (with this build's ./train) and expect the run to finish.
        line += strlen("resume with: ");
        *strchr(line, '\n') = '\0';
        CHECK(strncmp(line, "./train ", 8) == 0, "%s: the command starts with ./train: '%s'", out, line);
        snprintf(tag, sizeof tag, "%s_resume", out);
        status = run(train_bin, line + 8, tag, NULL);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the printed command '%s' resumes and finishes", out, line);
        CHECK(ckpt_step(p) == 300 && last_csv_step(out) == 300, "%s: resumed to step 300 (checkpoint %ld, csv %ld)", out,
              ckpt_step(p), last_csv_step(out));
    }
    free(text);
    free(err);
}

// 3. SIGKILL at seeded random moments; resume each time; finish; compare.
static void test_kill_resume(void) {
    enum { STEPS = 120, EVERY = 10, KILLS = 6 };
    char args[1024];
    const char *run_args = TEXT " max_steps=120 checkpoint_every=10 warmup_steps=10 lr=3e-3 log_every=0";
    snprintf(args, sizeof args, "%s out_dir=@/straight", run_args);
    double t0 = now_seconds();
    int status = run(train_bin, args, "straight", NULL);
    double t_run = now_seconds() - t0;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "uninterrupted run");

    Rng rng;
    rng_seed(&rng, 2024);
    char p[512], o[512], e[512];
    snprintf(p, sizeof p, "%s/killed/model.ckpt", dir);
    snprintf(o, sizeof o, "%s/killed.out", dir);
    snprintf(e, sizeof e, "%s/killed.err", dir);
    int kills = 0, worst = 0;
    double ms_per_step = 1000 * t_run / STEPS;
    for (int k = 0; k < KILLS; k++) {
        int resume = file_exists(p);
        long before = resume ? ckpt_step(p) : 0;
        // The moment: once the run has logged a random step ahead, plus a
        // random fraction of a step (so kills land in forward, backward,
        // logging and checkpoint writes alike).
        long prev = last_csv_step("killed");  // rows of a killed run stay until the resume trims them
        if (prev < before) prev = before;
        long ahead = (STEPS - prev) / 2 > 1 ? (STEPS - prev) / 2 : 1;
        long target = prev + 1 + (long)rng_below(&rng, (uint64_t)ahead);
        double extra = ms_per_step * rng_uniform(&rng);
        snprintf(args, sizeof args, "%s out_dir=@/killed%s", run_args, resume ? " resume=1" : "");
        pid_t pid = start(train_bin, args, o, e, NULL);
        if (wait_rows(pid, "killed", target)) sleep_ms(extra);
        kill(pid, SIGKILL);
        status = wait_for(pid);
        if (!WIFSIGNALED(status)) { CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a run that ended before its kill"); break; }
        kills++;
        long reached = last_csv_step("killed"), saved = file_exists(p) ? ckpt_step(p) : 0;
        if (reached < 0) reached = before;
        CHECK(reached - saved <= EVERY && saved >= before, "kill %d: reached step %ld, checkpoint at %ld: lost %ld > checkpoint_every %d",
              k, reached, saved, reached - saved, EVERY);
        if (reached - saved > worst) worst = (int)(reached - saved);
    }
    snprintf(args, sizeof args, "%s out_dir=@/killed%s", run_args, file_exists(p) ? " resume=1" : "");
    status = run(train_bin, args, "killed_final", NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the last resume finishes");
    CHECK(kills == KILLS, "all %d kills landed mid-run (%d)", KILLS, kills);
    GPT2 *a = load_out("straight", 2), *b = load_out("killed", 2);
    CHECK(a->step == STEPS && same_state(a, b), "after %d kills: weights, AdamW moments and step bitwise as without", kills);
    free_model(a);
    free_model(b);
    static double la[STEPS + 1], lb[STEPS + 1];
    int na = csv_losses("straight", la, STEPS), nb = csv_losses("killed", lb, STEPS);
    CHECK(na == STEPS && nb == STEPS && memcmp(la, lb, sizeof la) == 0,
          "metrics.csv after the kills: every step once, in order, the same losses (%d and %d rows)", na, nb);
    printf("kill/resume: %d kills over a %.2f s run, at most %d steps lost\n", kills, t_run, worst);
}

// 4. A real non-finite loss: AdamW with beta2 = 0 and a tiny epsilon at lr 10
// blows the weights up; the third step's forward overflows in layer 0.
static void test_nonfinite(void) {
    const char *blowup = TEXT " lr=10 min_lr=10 warmup_steps=0 grad_clip=0 beta2=0 adam_eps=1e-30 checkpoint_every=1 log_every=0";
    char args[1024], p[512];
    snprintf(args, sizeof args, "%s max_steps=2 out_dir=@/nonfinite", blowup);
    int status = run(train_bin, args, "nonfinite_a", NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "two steps at lr 10 still finish");
    snprintf(p, sizeof p, "%s/nonfinite/model.ckpt", dir);
    size_t len_a = 0, len_b = 0;
    char *before = file_exists(p) ? read_file(p, &len_a) : NULL;
    snprintf(args, sizeof args, "%s max_steps=50 resume=1 out_dir=@/nonfinite", blowup);
    status = run(train_bin, args, "nonfinite_b", NULL);
    CHECK(clean_failure(status, "nonfinite_b", "step 3: non-finite loss"), "the non-finite loss stops the run with one error line");
    snprintf(args, sizeof args, "%s/nonfinite_b.err", dir);
    char *err = slurp(args);
    CHECK(err && strstr(err, "layer 0") && strstr(err, "last checkpoint"), "the message names the layer and the checkpoint: %s", err ? err : "");
    free(err);
    char *after = file_exists(p) ? read_file(p, &len_b) : NULL;
    CHECK(before && after && len_a == len_b && memcmp(before, after, len_a) == 0, "the last checkpoint is byte for byte unchanged");
    GPT2 *m = load_out("nonfinite", 2);
    CHECK(m->step == 2, "the last checkpoint loads, at step %ld", m->step);
    free_model(m);
    free(before);
    free(after);
}

int main(void) {
    if (getenv("TRAIN_BIN")) train_bin = getenv("TRAIN_BIN");
    if (getenv("SAMPLE_BIN")) sample_bin = getenv("SAMPLE_BIN");
    snprintf(dir, sizeof dir, "/tmp/hh_test_reliability_%d", (int)getpid());
    make_dirs(dir);
    make_fixtures();
    test_bad_inputs();
    make_text_shards();
    if (have_text) {
        test_signal(SIGINT, "sigint");
        test_signal(SIGTERM, "sigterm");
        test_kill_resume();
        test_nonfinite();
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (!test_failed && !getenv("HH_KEEP")) CHECK(system(cmd) == 0, "clean up");  // HH_KEEP=1: keep the .err files
    else printf("kept %s for inspection\n", dir);
    return test_summary("test_reliability");
}
