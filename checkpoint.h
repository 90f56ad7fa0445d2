// checkpoint.h — saving and loading models (docs/checkpoint-format.md gives
// the format field by field). Also reads llm.c's GPT-2 checkpoints.
#ifndef CHECKPOINT_H
#define CHECKPOINT_H

#include "model.h"

// What a checkpoint keeps of the trainer besides the model: the data RNG.
typedef struct { uint64_t data_rng[4]; } TrainState;

// Write the model (weights, attention buffers, the config it was built
// from, its step, and with_optimizer: AdamW's moments) and ts (NULL: zeros).
// Atomic: temporary file, fsync, rename.
void model_save(const GPT2 *m, const char *path, const TrainState *ts, int with_optimizer);
// The same with AdamW's moments given for every parameter (n_params each):
// data-parallel ranks each hold a share, gathered for the one that saves.
void model_save_gathered(const GPT2 *m, const char *path, const TrainState *ts, const real *full_m, const real *full_v);
// Load weights (and, when ts != NULL, optimizer moments — of the model's
// share, model_set_shard — step and trainer state) into a model already built from a matching config. Accepts llm.c's
// GPT-2 checkpoints (weights only). Exits with a clear message on mismatch.
void model_load(GPT2 *m, const char *path, TrainState *ts);
// The configuration a checkpoint was trained with (saved inside it; for an
// llm.c checkpoint, a softmax GPT-2 of its shape on the GPT-2 tokenizer).
void checkpoint_config(const char *path, Config *c);
// A model rebuilt from a checkpoint alone, ready to run forward or generate:
// the sampler's, the analysis's and the recall evaluation's way in.
void model_from_checkpoint(GPT2 *m, const char *path);

#endif
