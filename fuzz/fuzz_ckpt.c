// fuzz/fuzz_ckpt.c — the checkpoint loader (ours and llm.c's format) on
// arbitrary files, into a tiny model built once.
// Oracle: no crash or sanitizer report; an accepted file leaves only finite
// weights (model_load's promise) and, when resuming, a step >= 0 and
// finite moments (v >= 0).
#include "harness.h"
#include "../checkpoint.h"

#include <math.h>

static GPT2 model;
static int ready;

// The tiny model the seeds in fuzz/corpus/ckpt/ were saved from (fuzz/seeds.c).
void fuzz_tiny_config(Config *c);
void fuzz_tiny_config(Config *c) {
    config_defaults(c);
    c->n_layer = 1; c->n_head = 2; c->n_embd = 8; c->seq_len = 8; c->vocab_size = 16;
}

typedef struct { const char *path; int resume; } Job;

static void load(void *arg) {
    Job *j = arg;
    TrainState ts;
    model_load(&model, j->path, j->resume ? &ts : NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ready) {
        Config c;
        fuzz_tiny_config(&c);
        model_init(&model, &c);
        ready = 1;
    }
    Job j = {fuzz_scratch_file(data, size), 0};
    for (j.resume = 0; j.resume < 2; j.resume++) {
        if (!fuzz_call(load, &j)) continue;
        for (size_t i = 0; i < model.n_params; i++) FUZZ_ASSERT(isfinite(model.params[i]), "accepted checkpoint holds a non-finite weight");
        if (!j.resume) continue;
        FUZZ_ASSERT(model.step >= 0, "accepted checkpoint has a negative step");
        for (size_t i = 0; i < model.n_params; i++)
            FUZZ_ASSERT(isfinite(model.m[i]) && isfinite(model.v[i]) && model.v[i] >= 0, "accepted checkpoint holds a bad optimizer moment");
    }
    return 0;
}
