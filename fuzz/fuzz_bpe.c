// fuzz/fuzz_bpe.c — GPT-2 BPE encode/decode on arbitrary bytes.
// Oracles: no crash or sanitizer report; decode(encode(x)) == x byte for byte
// (with and without <|endoftext|> as a special token); every id is in the
// vocabulary; and tokenizer_safe_cut's promise: encoding the two sides of the
// cut separately gives the same ids as encoding the whole.
// The vocabulary comes from $FUZZ_BPE_DIR, else ../shared/data/gpt2-bpe, else
// data/cache/gpt2 (the byte tokenizer is used, and said, when none exists).
#include "harness.h"
#include "../common.h"
#include "../data/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static Tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    const char *dirs[] = {getenv("FUZZ_BPE_DIR"), "../shared/data/gpt2-bpe", "data/cache/gpt2"};
    for (int i = 0; i < 3 && !tok; i++) {
        char p[1024];
        if (!dirs[i]) continue;
        snprintf(p, sizeof p, "%s/vocab.bpe", dirs[i]);
        if (file_exists(p)) tok = tokenizer_load("gpt2", dirs[i]);
    }
    if (!tok) {
        fprintf(stderr, "fuzz_bpe: no GPT-2 vocabulary found: fuzzing the byte tokenizer\n");
        tok = tokenizer_load("byte", NULL);
    }
    return 0;
}

static size_t decode_all(const TokenBuf *b, size_t from, char *out) {
    size_t n = 0;
    for (size_t i = from; i < b->n; i++) {
        FUZZ_ASSERT(b->ids[i] < tokenizer_vocab_size(tok), "encode produced an id outside the vocabulary");
        n += tokenizer_decode(tok, b->ids[i], out + n);
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    char *back = malloc(size + TOKEN_MAX_BYTES);
    TokenBuf whole[2] = {{0}};
    for (int special = 0; special < 2; special++) {
        tokenizer_encode(tok, text, size, special, &whole[special]);
        size_t n = decode_all(&whole[special], 0, back);
        FUZZ_ASSERT(n == size && memcmp(back, text, size) == 0, "decode(encode(x)) != x");
    }
    size_t cut = tokenizer_safe_cut(text, size);
    FUZZ_ASSERT(cut <= size, "safe cut beyond the text");
    if (cut > 0) {
        TokenBuf parts = {0};
        tokenizer_encode(tok, text, cut, 0, &parts);
        tokenizer_encode(tok, text + cut, size - cut, 0, &parts);
        FUZZ_ASSERT(parts.n == whole[0].n && memcmp(parts.ids, whole[0].ids, parts.n * sizeof *parts.ids) == 0,
                    "encoding the two sides of tokenizer_safe_cut differs from encoding the whole");
        free(parts.ids);
    }
    free(whole[0].ids);
    free(whole[1].ids);
    free(back);
    return 0;
}
