// data/loader.c — token sets and batches. See loader.h.
#include "loader.h"
#include "shard.h"

#include <stdlib.h>
#include <string.h>

void tokens_load(TokenSet *s, const char *pattern, int vocab_size) {
    int n_files;
    char **paths = expand_paths(pattern, &n_files);
    memset(s, 0, sizeof *s);
    for (int i = 0; i < n_files; i++) {
        size_t n;
        uint16_t *tok = shard_read(paths[i], &n, vocab_size);
        s->tokens = realloc(s->tokens, (s->n + n) * sizeof(uint16_t));
        if (!s->tokens) die("out of memory loading '%s' (%zu tokens so far)", paths[i], s->n);
        memcpy(s->tokens + s->n, tok, n * sizeof(uint16_t));
        s->n += n;
        free(tok);
    }
    s->n_files = n_files;
    free_paths(paths, n_files);
}

void tokens_load_mask(TokenSet *s, const char *pattern) {
    TokenSet m;
    tokens_load(&m, pattern, 0);
    if (m.n != s->n)
        die("loss mask '%s' holds %zu values but its data hold %zu tokens: make them together (./recall make)", pattern, m.n, s->n);
    for (size_t i = 0; i < m.n; i++)
        if (m.tokens[i] > 1) die("loss mask '%s': value %u at position %zu is not 0 or 1", pattern, m.tokens[i], i);
    s->mask = m.tokens;
}

void tokens_free(TokenSet *s) {
    free(s->tokens);
    free(s->mask);
    memset(s, 0, sizeof *s);
}

static void window(const TokenSet *s, size_t off, int T, int *inp, int *tgt) {
    for (int t = 0; t < T; t++) {
        inp[t] = s->tokens[off + t];
        tgt[t] = s->mask && !s->mask[off + t + 1] ? NO_TARGET : s->tokens[off + t + 1];
    }
}

static void need_tokens(const TokenSet *s, int T) {
    if (s->n < (size_t)T + 1)
        die("the data holds %zu tokens, fewer than seq_len + 1 = %d: use more data or a shorter seq_len", s->n, T + 1);
}

void batch_random(const TokenSet *s, Rng *rng, int B, int T, int align, int *inputs, int *targets) {
    need_tokens(s, T);
    size_t starts = (s->n - (size_t)T - 1) / (size_t)align + 1;   // offsets a·j with a·j + T < n
    for (int b = 0; b < B; b++) {
        size_t off = (size_t)align * rng_below(rng, starts);
        window(s, off, T, inputs + (size_t)b * T, targets + (size_t)b * T);
    }
}

void batch_sequential(const TokenSet *s, long k, int B, int T, int *inputs, int *targets) {
    need_tokens(s, T);
    size_t n_windows = (s->n - 1) / (size_t)T;
    for (int b = 0; b < B; b++) {
        size_t w = ((size_t)k * B + b) % n_windows;
        window(s, w * T, T, inputs + (size_t)b * T, targets + (size_t)b * T);
    }
}
