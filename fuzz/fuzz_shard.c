// fuzz/fuzz_shard.c — the token shard reader on arbitrary files.
// Oracle: no crash or sanitizer report; an accepted shard holds exactly
// (file size - header) / 2 tokens, each below the vocabulary size.
#include "harness.h"
#include "../data/shard.h"

#include <stdlib.h>

enum { VOCAB = 300 };

typedef struct { const char *path; uint16_t *tok; size_t n; } Job;

static void read_shard(void *arg) {
    Job *j = arg;
    j->tok = shard_read(j->path, &j->n, VOCAB);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Job j = {fuzz_scratch_file(data, size), NULL, 0};
    if (fuzz_call(read_shard, &j)) {
        FUZZ_ASSERT(size >= 4 * SHARD_HEADER_INTS && j.n == (size - 4 * SHARD_HEADER_INTS) / 2 && j.n > 0,
                    "accepted shard: token count does not match the file size");
        for (size_t i = 0; i < j.n; i++) FUZZ_ASSERT(j.tok[i] < VOCAB, "accepted shard holds a token >= vocab_size");
        free(j.tok);
    }
    return 0;
}
