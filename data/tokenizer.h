// data/tokenizer.h — text to token ids and back, with one of two tokenizers
// chosen by name:
//   "gpt2"  GPT-2's byte-level BPE (50,257 ids; <|endoftext|> = 50256), loaded
//           from encoder.json + vocab.bpe in a directory;
//   "byte"  256 ids, id = byte value, no special token.
// Both are lossless: decoding the ids of any byte string gives it back exactly,
// invalid UTF-8 included. docs/data.md explains the GPT-2 algorithm step by step.
#ifndef TOKENIZER_H
#define TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct Tokenizer Tokenizer;

// A growable array of ids that encode appends to. Start it zeroed; free(ids).
typedef struct {
    uint16_t *ids;
    size_t n, cap;
} TokenBuf;

// name is "gpt2" or "byte"; dir holds encoder.json and vocab.bpe (gpt2 only).
// Exits with a message naming the file and the problem on any error.
Tokenizer *tokenizer_load(const char *name, const char *dir);
void tokenizer_free(Tokenizer *t);
const char *tokenizer_name(const Tokenizer *t);
int tokenizer_vocab_size(const Tokenizer *t);
int tokenizer_eot(const Tokenizer *t);      // <|endoftext|> id, or -1 when there is none

// Append the ids of text[0..len) to out; returns how many were appended. With
// special != 0 each "<|endoftext|>" in the text becomes the single eot id;
// with special == 0 it is ordinary text. (The byte tokenizer ignores special.)
// A Tokenizer keeps a cache and scratch space: one per thread.
size_t tokenizer_encode(Tokenizer *t, const char *text, size_t len, int special, TokenBuf *out);

// Write the bytes of one id to out (room for TOKEN_MAX_BYTES) and return
// their count. Exits when id is not in the vocabulary.
#define TOKEN_MAX_BYTES 256
size_t tokenizer_decode(const Tokenizer *t, int id, char *out);

// A length n <= len such that encoding text[0..n) and text[n..len) separately
// gives the same ids as encoding text[0..len) at once (for both tokenizers), so
// that big files can be encoded in pieces; 0 when there is no such cut in text
// that this function can prove safe (then read more text and ask again).
size_t tokenizer_safe_cut(const char *text, size_t len);

#endif
