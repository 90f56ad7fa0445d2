// test/ckpt.h — what the training tests need from checkpoints: load a run's
// full state, and compare two states bit for bit.
#ifndef TEST_CKPT_H
#define TEST_CKPT_H

#include <string.h>

#include "../checkpoint.h"

// A model built from cfg with the full state (weights, AdamW moments, step,
// buffers) of the checkpoint at path. Free with model_free() and free().
static inline GPT2 *load_state(const Config *cfg, const char *path) {
    GPT2 *m = xmalloc(sizeof *m, "model");
    model_init(m, cfg);
    TrainState ts;
    model_load(m, path, &ts);
    return m;
}

// Weights, AdamW moments, step and attention buffers bitwise equal.
static inline int same_state(const GPT2 *a, const GPT2 *b) {
    size_t n = a->n_params * sizeof(real), nm = (a->opt_hi - a->opt_lo) * sizeof(real);
    return a->step == b->step && a->opt_lo == b->opt_lo && a->opt_hi == b->opt_hi && memcmp(a->params, b->params, n) == 0 &&
           memcmp(a->m, b->m, nm) == 0 && memcmp(a->v, b->v, nm) == 0 &&
           memcmp(a->buffers, b->buffers, a->n_buffers * sizeof(real)) == 0;
}

#endif
