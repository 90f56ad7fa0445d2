// data/recall.h — associative recall, two forms.
//
// pairs (this project's first form, the paper's Table 2 in spirit): ids:
// 0 = BOS, then n_keys keys, then n_values values. One sequence is
//
//   BOS k1 v1 k2 v2 ... kP vP  q1 a1 q2 a2 ... qQ aQ
//
// with P distinct keys drawn without replacement, each bound to a value drawn
// uniformly (values may repeat), then Q queries: each q is one of the P keys
// (uniform, with replacement) and a is the value it was bound to.
//
// mqar (multi-query associative recall, the Zoology benchmark's standard
// form, Arora et al. 2023): vocabulary V; keys from [1, V/2), values from
// [V/2, V), P distinct keys bound to P distinct values. One sequence of
// seq_len tokens (even) is
//
//   k1 v1 ... kP vP  then, in the (seq_len − 2P)/2 slots of two tokens that
//   follow, each key once more as a query followed by its value, in the slot
//   at gap g (0-based) drawn without replacement with p(g) ∝ (g + 1)^(a − 1),
//   a = power_a (0.01: most queries close to the pairs); every other token 0.
//
// Either way a model reading a query must put the highest logit on its
// value: the only way is to look back for the key's earlier occurrence and
// copy what followed it — the recall that linear attentions with flat
// (high-entropy) weights do poorly. Accuracy counts only those positions.
//
// Training data is sequences concatenated. By default the trainer takes
// windows at random offsets, so a window may start mid-sequence (its queries
// before the next sequence are then unanswerable noise); with seq_len ≥
// 2 × recall_len every window holds at least one whole sequence, and the loss
// covers every position (the pairs task's configs). Zoology's training is
// the other way, and configs/mqar-softmax.conf's: window_align = seq_len =
// recall_len puts one whole sequence in each window, and the loss mask
// ./recall make writes (train.mask, val.mask; config train_mask, val_mask)
// scores the answers alone. Evaluation feeds whole sequences and scores the
// answers alone.
#ifndef RECALL_H
#define RECALL_H

#include <stddef.h>
#include <stdint.h>

#include "../common.h"

typedef enum { RECALL_PAIRS, RECALL_MQAR } RecallForm;

typedef struct {
    RecallForm form;
    int n_keys, n_values, n_pairs, n_queries;   // pairs
    int vocab, seq_len;                          // mqar (n_pairs too)
    double power_a;
} RecallTask;

// The task the configs and docs use: 8 keys, 8 values, 4 pairs, 16 queries
// (41 tokens, 17 ids; chance 1/8, and 1/4..1/2 for a model that copies some
// value from the context without matching the key). The first choice,
// 32/32/16/16 queries, stayed at chance after 300 steps of softmax, and
// 16/16/8/8 after 2500: too slow to learn on a 2-core CPU. Many queries per
// pair make the answers, the only tokens that reward recall, 16 of 40 targets.
RecallTask recall_default(void);
// Zoology's MQAR at a size meant for a 2-core CPU: vocabulary 256, 64
// tokens, 8 pairs, power_a 0.01. Zoology's own sweeps use a 8192-id
// vocabulary and 4-64 pairs in 64-512 tokens. With the trainer's loss on
// every position and windows at random offsets, softmax stayed at chance
// after 4000 steps (docs/results.md §5.4), hence the loss mask above.
RecallTask recall_mqar(void);
int recall_vocab(const RecallTask *t);   // pairs: 1 + n_keys + n_values; mqar: vocab
int recall_len(const RecallTask *t);     // tokens per sequence: pairs 1 + 2P + 2Q; mqar seq_len
// Checks the parameters; exits naming the one that does not fit.
void recall_check(const RecallTask *t);
// n sequences, deterministic from seed, into out (n * recall_len tokens).
void recall_generate(const RecallTask *t, uint64_t seed, int n, uint16_t *out);
// Accuracy over every query of n sequences: logits (n, recall_len, Vp) are the
// model's next-token logits at each position; a query counts as right when its
// answer has the largest logit among the vocabulary's real ids.
double recall_accuracy(const RecallTask *t, const uint16_t *seqs, int n, const real *logits, int Vp);
// The loss mask for n sequences: mask[i] = 1 when token i answers a query
// (the only targets recall_accuracy scores), else 0. ./recall make writes it
// beside the data, for the trainer's train_mask and val_mask.
void recall_answer_mask(const RecallTask *t, const uint16_t *seqs, int n, uint16_t *mask);
// The task as `key = value` lines (saved beside the data; recall_read loads it).
void recall_write(const RecallTask *t, const char *path);
RecallTask recall_read(const char *path);

#endif
