// data/loader.h — batches of (inputs, targets) from token shards.
#ifndef LOADER_H
#define LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "../common.h"

// All tokens of the shards a path or glob names, concatenated in file order;
// optionally a loss mask beside them, one 0/1 per token: mask[i] = 1 when
// token i is a target the loss scores (NULL: every token is; batches give
// the others as NO_TARGET).
typedef struct {
    uint16_t *tokens, *mask;
    size_t n;
    int n_files;
} TokenSet;

void tokens_load(TokenSet *s, const char *pattern, int vocab_size);
// The mask shards (token shards of 0s and 1s, ./recall make writes them) for
// a loaded set; exits when they hold a different number of values.
void tokens_load_mask(TokenSet *s, const char *pattern);
void tokens_free(TokenSet *s);

// A training batch: B windows of T+1 tokens at offsets drawn from rng, each
// a multiple of align (1: any offset; a task's sequence length: windows
// start where its sequences do), so the sequence of batches is a function of
// the seed alone (and the RNG state is all a checkpoint needs to continue it).
void batch_random(const TokenSet *s, Rng *rng, int B, int T, int align, int *inputs, int *targets);
// Validation batch k: B consecutive windows starting at (k*B)*T, wrapping
// around the set; the same windows at every evaluation.
void batch_sequential(const TokenSet *s, long k, int B, int T, int *inputs, int *targets);

#endif
