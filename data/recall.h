// data/recall.h — the associative-recall task (the paper's Table 2).
//
// Vocabulary: id 0 is BOS (a sequence starts), ids 1..n_keys are keys, the
// next n_values ids are values. One sequence is
//
//   BOS k1 v1 k2 v2 ... kP vP  q1 a1 q2 a2 ... qQ aQ
//
// with P distinct keys drawn without replacement, each bound to a value drawn
// uniformly (values may repeat), then Q queries: each q is one of the P keys
// (uniform, with replacement) and a is the value it was bound to. A model
// reading q must put the highest logit on a: the only way is to look back for
// q's earlier occurrence and copy what followed it — the recall that linear
// attentions with flat (high-entropy) weights do poorly.
//
// Training data is sequences concatenated; the trainer takes windows at random
// offsets, so a window may start mid-sequence (its queries before the next BOS
// are then unanswerable noise); with seq_len ≥ 2 × recall_len every window
// holds at least one whole sequence. Evaluation feeds whole sequences only.
#ifndef RECALL_H
#define RECALL_H

#include <stddef.h>
#include <stdint.h>

#include "../common.h"

typedef struct {
    int n_keys, n_values, n_pairs, n_queries;
} RecallTask;

// The task the configs and docs use: 8 keys, 8 values, 4 pairs, 16 queries
// (41 tokens, 17 ids; chance 1/8, and 1/4..1/2 for a model that copies some
// value from the context without matching the key). The first choice,
// 32/32/16/16 queries, stayed at chance after 300 steps of softmax, and
// 16/16/8/8 after 2500: too slow to learn on a 2-core CPU. Many queries per
// pair make the answers, the only tokens that reward recall, 16 of 40 targets.
RecallTask recall_default(void);
int recall_vocab(const RecallTask *t);   // 1 + n_keys + n_values
int recall_len(const RecallTask *t);     // tokens per sequence: 1 + 2P + 2Q
// n sequences, deterministic from seed, into out (n * recall_len tokens).
void recall_generate(const RecallTask *t, uint64_t seed, int n, uint16_t *out);
// Accuracy over every query of n sequences: logits (n, recall_len, Vp) are the
// model's next-token logits at each position; a query counts as right when its
// answer has the largest logit among the vocabulary's real ids.
double recall_accuracy(const RecallTask *t, const uint16_t *seqs, int n, const real *logits, int Vp);

#endif
