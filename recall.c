// recall.c — the associative-recall experiments (tasks defined in data/recall.h).
//
//   ./recall make DIR [--task pairs|mqar] [--sequences N] [task options]
//       DIR/train.bin (N sequences, seed 1; default 20000), DIR/val.bin
//       (1000 sequences, seed 2), their loss masks DIR/train.mask and
//       DIR/val.mask (1 on the answers; the trainer's train_mask and
//       val_mask) and DIR/task.conf (the task's parameters)
//       task options, mqar: --vocab V (256) --seq-len T (64) --pairs P (8)
//                           --power-a A (0.01)
//   ./recall eval CKPT [--task FILE] [--sequences N]
//       accuracy on N fresh sequences (seed 3, default 1000) of the task in
//       FILE (default: task.conf beside the checkpoint's training data);
//       prints recall_accuracy=<x> as its last line
//
// Train with ./train configs/recall-<kind>.conf (MQAR: configs/mqar-softmax.conf
// attention=KIND), or every kind with ./sweep configs/recall-seeds.sweep or
// configs/mqar.sweep, then evaluate each model.ckpt.
#include "checkpoint.h"
#include "data/recall.h"
#include "data/shard.h"

#include <stdlib.h>
#include <string.h>

enum { TRAIN_SEED = 1, VAL_SEED = 2, EVAL_SEED = 3, EVAL_BATCH = 32 };

static const char *const USAGE =
    "usage: ./recall make DIR [--task pairs|mqar] [--sequences N] [--vocab V] [--seq-len T] [--pairs P] [--power-a A]\n"
    "       ./recall eval CKPT [--task FILE] [--sequences N]";

// DIR/NAME.bin, n sequences, and DIR/NAME.mask, its answers (the loss mask).
static void write_set(const RecallTask *t, const char *dir, const char *name, uint64_t seed, int n) {
    size_t len = (size_t)n * recall_len(t);
    uint16_t *tok = xmalloc(len * sizeof *tok, "recall tokens"), *mask = xmalloc(len * sizeof *mask, "recall mask");
    recall_generate(t, seed, n, tok);
    recall_answer_mask(t, tok, n, mask);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    shard_write(path, tok, len);
    printf("%s: %d sequences, %zu tokens\n", path, n, len);
    snprintf(path, sizeof path, "%s/%s.mask", dir, name);
    shard_write(path, mask, len);
    size_t answers = 0;
    for (size_t i = 0; i < len; i++) answers += mask[i];
    printf("%s: loss mask, %zu answers\n", path, answers);
    free(tok);
    free(mask);
}

// The task a checkpoint was trained on: task.conf beside its training data
// (the pairs task when there is none: data made before task.conf existed).
static RecallTask task_of(const Config *c, const char *task_file) {
    char path[CONFIG_STR + 16];
    if (task_file) return recall_read(task_file);
    snprintf(path, sizeof path, "%s", c->train_data);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "task.conf");
    return file_exists(path) ? recall_read(path) : recall_default();
}

static void evaluate(const char *ckpt, const char *task_file, int n) {
    Config c;
    checkpoint_config(ckpt, &c);
    RecallTask t = task_of(&c, task_file);
    int L = recall_len(&t);
    if (c.vocab_size != recall_vocab(&t))
        die("%s: vocab_size = %d, but the recall task has %d ids: was it trained on ./recall make data? (--task FILE names the task)",
            ckpt, c.vocab_size, recall_vocab(&t));
    if (c.seq_len < L) die("%s: seq_len = %d is shorter than one recall sequence (%d tokens)", ckpt, c.seq_len, L);
    GPT2 m;
    model_from_checkpoint(&m, ckpt);
    uint16_t *seqs = xmalloc((size_t)n * L * sizeof *seqs, "recall sequences");
    recall_generate(&t, EVAL_SEED, n, seqs);
    int *in = xmalloc((size_t)EVAL_BATCH * L * sizeof *in, "recall batch");
    double right = 0;
    for (int s = 0; s < n; s += EVAL_BATCH) {
        int B = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
        for (size_t i = 0; i < (size_t)B * L; i++) in[i] = seqs[(size_t)s * L + i];
        model_forward(&m, in, NULL, B, L);
        right += recall_accuracy(&t, seqs + (size_t)s * L, B, m.logits, m.Vp) * B;
    }
    printf("%s: attention %s, %s task, %d sequences\n", ckpt, c.attention, t.form == RECALL_MQAR ? "mqar" : "pairs", n);
    printf("recall_accuracy=%.4f\n", right / n);
    free(in);
    free(seqs);
    model_free(&m);
}

static int positive(const char *arg, const char *v) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 1 || x > 1 << 30) die("%s %s: expected a positive whole number\n%s", arg, v, USAGE);
    return (int)x;
}

int main(int argc, char **argv) {
    if (argc < 3) die("%s", USAGE);
    int n = 0;
    const char *task_file = NULL;
    RecallTask t = recall_default();
    for (int i = 3; i < argc; i += 2) {
        if (i + 1 >= argc) die("argument '%s' needs a value\n%s", argv[i], USAGE);
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--sequences") == 0) n = positive(a, v);
        else if (strcmp(a, "--task") == 0 && strcmp(argv[1], "eval") == 0) task_file = v;
        else if (strcmp(a, "--task") == 0) {
            if (strcmp(v, "mqar") == 0) t = recall_mqar();
            else if (strcmp(v, "pairs") != 0) die("--task %s: expected pairs or mqar", v);
        } else if (strcmp(a, "--vocab") == 0) t.vocab = positive(a, v);
        else if (strcmp(a, "--seq-len") == 0) t.seq_len = positive(a, v);
        else if (strcmp(a, "--pairs") == 0) t.n_pairs = positive(a, v);
        else if (strcmp(a, "--power-a") == 0) t.power_a = atof(v);
        else die("argument '%s': %s", a, USAGE);
    }
    if (strcmp(argv[1], "make") == 0) {
        recall_check(&t);
        make_dirs(argv[2]);
        write_set(&t, argv[2], "train", TRAIN_SEED, n ? n : 20000);
        write_set(&t, argv[2], "val", VAL_SEED, 1000);
        char path[4096];
        snprintf(path, sizeof path, "%s/task.conf", argv[2]);
        recall_write(&t, path);
        printf("%s: the task\n", path);
    } else if (strcmp(argv[1], "eval") == 0) {
        evaluate(argv[2], task_file, n ? n : 1000);
    } else {
        die("unknown command '%s'\n%s", argv[1], USAGE);
    }
    return 0;
}
