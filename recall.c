// recall.c — the associative-recall experiment (task defined in data/recall.h).
//
//   ./recall make DIR [--sequences N]      DIR/train.bin (N sequences, seed 1,
//                                          default 20000) and DIR/val.bin
//                                          (1000 sequences, seed 2)
//   ./recall eval CKPT [--sequences N]     accuracy on N fresh sequences
//                                          (seed 3, default 1000); prints
//                                          recall_accuracy=<x> as its last line
//
// Train with ./train configs/recall-<kind>.conf, or all kinds with
// ./sweep configs/recall.sweep, then evaluate each run's model.ckpt.
#include "data/recall.h"
#include "data/shard.h"
#include "checkpoint.h"

#include <stdlib.h>
#include <string.h>

enum { TRAIN_SEED = 1, VAL_SEED = 2, EVAL_SEED = 3, EVAL_BATCH = 32 };

static void write_set(const RecallTask *t, const char *dir, const char *name, uint64_t seed, int n) {
    size_t len = (size_t)n * recall_len(t);
    uint16_t *tok = xmalloc(len * sizeof *tok, "recall tokens");
    recall_generate(t, seed, n, tok);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    shard_write(path, tok, len);
    printf("%s: %d sequences, %zu tokens\n", path, n, len);
    free(tok);
}

static void evaluate(const RecallTask *t, const char *ckpt, int n) {
    Config c;
    checkpoint_config(ckpt, &c);
    int L = recall_len(t);
    if (c.vocab_size != recall_vocab(t))
        die("%s: vocab_size = %d, but the recall task has %d ids: was it trained on ./recall make data?", ckpt, c.vocab_size, recall_vocab(t));
    if (c.seq_len < L) die("%s: seq_len = %d is shorter than one recall sequence (%d tokens)", ckpt, c.seq_len, L);
    GPT2 m;
    model_from_checkpoint(&m, ckpt);
    uint16_t *seqs = xmalloc((size_t)n * L * sizeof *seqs, "recall sequences");
    recall_generate(t, EVAL_SEED, n, seqs);
    int *in = xmalloc((size_t)EVAL_BATCH * L * sizeof *in, "recall batch");
    double right = 0;
    for (int s = 0; s < n; s += EVAL_BATCH) {
        int B = n - s < EVAL_BATCH ? n - s : EVAL_BATCH;
        for (size_t i = 0; i < (size_t)B * L; i++) in[i] = seqs[(size_t)s * L + i];
        model_forward(&m, in, NULL, B, L);
        right += recall_accuracy(t, seqs + (size_t)s * L, B, m.logits, m.Vp) * B;
    }
    printf("%s: attention %s, %d sequences × %d queries\n", ckpt, c.attention, n, t->n_queries);
    printf("recall_accuracy=%.4f\n", right / n);
    free(in);
    free(seqs);
    model_free(&m);
}

int main(int argc, char **argv) {
    const char *usage = "usage: ./recall make DIR [--sequences N] | ./recall eval CKPT [--sequences N]";
    if (argc < 3) die("%s", usage);
    int n = 0;
    for (int i = 3; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--sequences") == 0 && i + 1 < argc && (n = (int)strtol(argv[i + 1], &end, 10)) > 0 && !*end) i++;
        else die("argument '%s': %s", argv[i], usage);
    }
    RecallTask t = recall_default();
    if (strcmp(argv[1], "make") == 0) {
        make_dirs(argv[2]);
        write_set(&t, argv[2], "train", TRAIN_SEED, n ? n : 20000);
        write_set(&t, argv[2], "val", VAL_SEED, 1000);
    } else if (strcmp(argv[1], "eval") == 0) {
        evaluate(&t, argv[2], n ? n : 1000);
    } else {
        die("unknown command '%s': %s", argv[1], usage);
    }
    return 0;
}
