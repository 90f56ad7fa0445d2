// data/tokenizer.c — GPT-2 byte-level BPE and the byte tokenizer. See
// tokenizer.h for the interface and docs/data.md for the algorithm.
#include "tokenizer.h"
#include "unicode_tables.h"
#include "../common.h"

#include <stdlib.h>
#include <string.h>

#define GPT2_VOCAB 50257
#define GPT2_MERGES 50000
#define GPT2_EOT 50256
static const char EOT_TEXT[] = "<|endoftext|>";
#define EOT_LEN (sizeof EOT_TEXT - 1)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

// ---------------------------------------------------------------- characters

// Code point given to a byte that does not start a valid UTF-8 sequence: it
// is in no Unicode class, so it tokenises as a one-byte "other symbol".
#define NOT_A_CHAR 0xFFFFFFFFu

// Decode the character at s[0..n), n >= 1; returns its length in bytes.
// Overlong forms, surrogates and values past U+10FFFF are invalid.
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b = s[0];
    size_t len;
    uint32_t c, min;
    if (b < 0x80) { *cp = b; return 1; }
    if (b >= 0xC2 && b <= 0xDF) { len = 2; c = b & 0x1Fu; min = 0x80; }
    else if ((b & 0xF0) == 0xE0) { len = 3; c = b & 0x0Fu; min = 0x800; }
    else if (b >= 0xF0 && b <= 0xF4) { len = 4; c = b & 0x07u; min = 0x10000; }
    else { *cp = NOT_A_CHAR; return 1; }
    if (len > n) { *cp = NOT_A_CHAR; return 1; }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) { *cp = NOT_A_CHAR; return 1; }
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) { *cp = NOT_A_CHAR; return 1; }
    *cp = c;
    return len;
}

static size_t utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

enum { C_LETTER, C_NUMBER, C_SPACE, C_OTHER };

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static int is_ascii_letter(uint32_t c) { return (c | 32) - 'a' < 26; }

// The classes of GPT-2's pattern: \p{L}, \p{N}, \s (Unicode White_Space, as
// in the regex engines GPT-2 tokenizers use) and everything else.
static int classify(uint32_t cp) {
    if (cp < 0x80) {   // fast path: most text is ASCII
        if (is_ascii_letter(cp)) return C_LETTER;
        if (cp - '0' < 10) return C_NUMBER;
        return cp == ' ' || (cp >= 9 && cp <= 13) ? C_SPACE : C_OTHER;
    }
    if (in_ranges(unicode_letters, COUNT(unicode_letters), cp)) return C_LETTER;
    if (in_ranges(unicode_numbers, COUNT(unicode_numbers), cp)) return C_NUMBER;
    if (in_ranges(unicode_spaces, COUNT(unicode_spaces), cp)) return C_SPACE;
    return C_OTHER;
}

// End of the pre-token that starts at s[i] (i < n), by GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with its alternatives tried in order, as a backtracking regex engine does.
static size_t pretoken_end(const uint8_t *s, size_t n, size_t i) {
    static const char *const contractions[] = {"s", "t", "re", "ve", "m", "ll", "d"};
    uint32_t cp;
    size_t j = i + utf8_next(s + i, n - i, &cp);
    int cls = classify(cp);
    if (cp == '\'')
        for (size_t k = 0; k < COUNT(contractions); k++) {
            size_t m = strlen(contractions[k]);
            if (n - j >= m && memcmp(s + j, contractions[k], m) == 0) return j + m;
        }
    if (cp == ' ' && j < n) {   // " ?" joins a space to a following letter, number or symbol run
        uint32_t next;
        size_t k = j + utf8_next(s + j, n - j, &next);
        int next_cls = classify(next);
        if (next_cls != C_SPACE) { cls = next_cls; j = k; }
    }
    if (cls != C_SPACE) {
        while (j < n) {
            size_t k = j + utf8_next(s + j, n - j, &cp);
            if (classify(cp) != cls) break;
            j = k;
        }
        return j;
    }
    // A whitespace run. Before a non-space, \s+(?!\S) backtracks by one
    // character so that the last space can start the next pre-token (" word");
    // a run of one character is then taken whole by \s+.
    size_t last = i;
    while (j < n) {
        size_t k = j + utf8_next(s + j, n - j, &cp);
        if (classify(cp) != C_SPACE) break;
        last = j;
        j = k;
    }
    return j < n && last > i ? last : j;
}

// ---------------------------------------------------------------- tokenizer

// Merge table: open addressing from an id pair (a << 16 | b) to the rank of
// the merge (its line in vocab.bpe) and the id it produces.
#define MERGE_SLOTS (1u << 17)
#define NO_PAIR 0xFFFFFFFFu
#define MERGED_AWAY 0xFFFFFFFFu   // bpe(): id of a position merged into its left neighbour
typedef struct { uint32_t pair; uint16_t rank, id; } MergeSlot;

// Cache of recently encoded pre-tokens, direct-mapped: real text repeats
// its words, and a hit costs one hash and one memcmp instead of a BPE run.
#define CACHE_SLOTS (1u << 15)
#define CACHE_KEY_MAX 24
typedef struct {
    uint8_t key_len, n_ids;   // key_len 0: empty (pre-tokens are never empty)
    char key[CACHE_KEY_MAX];
    uint16_t ids[CACHE_KEY_MAX];   // BPE never gives more ids than bytes
} CacheSlot;

struct Tokenizer {
    const char *name;
    int vocab_size, eot;
    // gpt2 only:
    uint16_t byte_id[256];    // the single-byte token of each byte value
    MergeSlot *merges;
    char *tok_bytes;          // the bytes of token id: tok_bytes[tok_off[id] .. tok_off[id + 1])
    uint32_t *tok_off;
    CacheSlot *cache;
    // scratch for bpe(), grown as needed
    size_t scratch_cap;
    uint32_t *ids;
    int32_t *prev, *next;
    uint64_t *heap;
};

static uint32_t hash32(uint32_t x) { return (x * 2654435761u) >> 15; }   // 17 bits: MERGE_SLOTS

static uint32_t hash_bytes(const char *s, size_t n) {   // FNV-1a
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static MergeSlot *merge_slot(MergeSlot *m, uint32_t a, uint32_t b) {
    uint32_t pair = a << 16 | b;
    uint32_t h = hash32(pair);
    while (m[h].pair != NO_PAIR && m[h].pair != pair) h = (h + 1) & (MERGE_SLOTS - 1);
    return &m[h];
}

// Rank of merging a then b, or -1 when vocab.bpe has no such merge.
static int64_t merge_rank(const Tokenizer *t, uint32_t a, uint32_t b) {
    const MergeSlot *m = merge_slot(t->merges, a, b);
    return m->pair == NO_PAIR ? -1 : m->rank;
}

static void tokbuf_reserve(TokenBuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + extra) cap *= 2;
    uint16_t *ids = realloc(b->ids, cap * sizeof *ids);
    if (!ids) die("out of memory growing a token buffer to %zu ids", cap);
    b->ids = ids;
    b->cap = cap;
}

static void grow_scratch(Tokenizer *t, size_t n) {
    if (n <= t->scratch_cap) return;
    free(t->ids); free(t->prev); free(t->next); free(t->heap);
    t->scratch_cap = n * 2;
    t->ids = xmalloc(t->scratch_cap * sizeof *t->ids, "BPE scratch");
    t->prev = xmalloc(t->scratch_cap * sizeof *t->prev, "BPE scratch");
    t->next = xmalloc(t->scratch_cap * sizeof *t->next, "BPE scratch");
    t->heap = xmalloc(3 * t->scratch_cap * sizeof *t->heap, "BPE scratch");   // n-1 pairs + 2 per merge
}

// A min-heap of candidate merges keyed rank << 32 | position, so that the
// lowest rank pops first and, among equal ranks, the leftmost.
static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) { h[i] = h[(i - 1) / 2]; i = (i - 1) / 2; }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
    return top;
}

static void push_pair(const Tokenizer *t, uint64_t *heap, size_t *n_heap, int32_t pos) {
    int64_t rank = merge_rank(t, t->ids[pos], t->ids[t->next[pos]]);
    if (rank >= 0) heap_push(heap, n_heap, (uint64_t)rank << 32 | (uint32_t)pos);
}

// Byte-pair encoding of one pre-token: one id per byte, then apply the merge
// of lowest rank (leftmost among equals) until none applies. Tokens live in a
// linked list over positions; a heap entry is stale when its left token was
// merged away or its pair changed, which the rank check detects because each
// rank belongs to exactly one pair.
static void bpe(Tokenizer *t, const uint8_t *w, size_t len, TokenBuf *out) {
    grow_scratch(t, len);
    uint32_t *ids = t->ids;
    int32_t *prev = t->prev, *next = t->next;
    uint64_t *heap = t->heap;
    size_t n_heap = 0;
    for (size_t i = 0; i < len; i++) {
        ids[i] = t->byte_id[w[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < len ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < len; i++) push_pair(t, heap, &n_heap, (int32_t)i);
    while (n_heap > 0) {
        uint64_t top = heap_pop(heap, &n_heap);
        int32_t pos = (int32_t)(uint32_t)top, right = next[pos];
        if (ids[pos] == MERGED_AWAY || right < 0 || merge_rank(t, ids[pos], ids[right]) != (int64_t)(top >> 32)) continue;
        ids[pos] = merge_slot(t->merges, ids[pos], ids[right])->id;
        ids[right] = MERGED_AWAY;
        next[pos] = next[right];
        if (next[pos] >= 0) { prev[next[pos]] = pos; push_pair(t, heap, &n_heap, pos); }
        if (prev[pos] >= 0) push_pair(t, heap, &n_heap, prev[pos]);
    }
    tokbuf_reserve(out, len);
    for (int32_t i = 0; i >= 0; i = next[i]) out->ids[out->n++] = (uint16_t)ids[i];
}

static void encode_pretoken(Tokenizer *t, const uint8_t *w, size_t len, TokenBuf *out) {
    CacheSlot *slot = NULL;
    if (len <= CACHE_KEY_MAX) {
        slot = &t->cache[hash_bytes((const char *)w, len) & (CACHE_SLOTS - 1)];
        if (slot->key_len == len && memcmp(slot->key, w, len) == 0) {
            tokbuf_reserve(out, slot->n_ids);
            memcpy(out->ids + out->n, slot->ids, slot->n_ids * sizeof(uint16_t));
            out->n += slot->n_ids;
            return;
        }
    }
    size_t start = out->n;
    bpe(t, w, len, out);
    if (slot) {
        slot->key_len = (uint8_t)len;
        slot->n_ids = (uint8_t)(out->n - start);
        memcpy(slot->key, w, len);
        memcpy(slot->ids, out->ids + start, slot->n_ids * sizeof(uint16_t));
    }
}

static size_t find_eot(const uint8_t *s, size_t n, size_t from) {
    for (const uint8_t *p = s + from; (p = memchr(p, '<', n - (size_t)(p - s))) != NULL; p++)
        if ((size_t)(s + n - p) >= EOT_LEN && memcmp(p, EOT_TEXT, EOT_LEN) == 0) return (size_t)(p - s);
    return n;
}

size_t tokenizer_encode(Tokenizer *t, const char *text, size_t len, int special, TokenBuf *out) {
    const uint8_t *s = (const uint8_t *)text;
    size_t before = out->n;
    if (!t->merges) {   // byte tokenizer
        tokbuf_reserve(out, len);
        for (size_t i = 0; i < len; i++) out->ids[out->n++] = s[i];
        return len;
    }
    for (size_t i = 0; i < len;) {
        // Text on either side of a special token is encoded on its own.
        size_t stop = special ? find_eot(s, len, i) : len;
        while (i < stop) {
            size_t end = pretoken_end(s, stop, i);
            encode_pretoken(t, s + i, end - i, out);
            i = end;
        }
        if (stop < len) {
            tokbuf_reserve(out, 1);
            out->ids[out->n++] = GPT2_EOT;
            i = stop + EOT_LEN;
        }
    }
    return out->n - before;
}

size_t tokenizer_decode(const Tokenizer *t, int id, char *out) {
    if (id < 0 || id >= t->vocab_size)
        die("token id %d is not in the %s vocabulary (0..%d): wrong tokenizer for these tokens?", id, t->name, t->vocab_size - 1);
    if (!t->merges) { out[0] = (char)id; return 1; }
    size_t n = t->tok_off[id + 1] - t->tok_off[id];
    memcpy(out, t->tok_bytes + t->tok_off[id], n);
    return n;
}

size_t tokenizer_safe_cut(const char *text, size_t len) {
    // Before a space that follows an ASCII letter: the letter ends its
    // pre-token (a letter run or a contraction) whatever comes next, the regex
    // looks no further back than that, and no special token contains a space.
    for (size_t p = len; p-- > 1;)
        if (text[p] == ' ' && is_ascii_letter((uint8_t)text[p - 1])) return p;
    return 0;
}

const char *tokenizer_name(const Tokenizer *t) { return t->name; }
int tokenizer_vocab_size(const Tokenizer *t) { return t->vocab_size; }
int tokenizer_eot(const Tokenizer *t) { return t->eot; }

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    free(t->merges); free(t->tok_bytes); free(t->tok_off); free(t->cache);
    free(t->ids); free(t->prev); free(t->next); free(t->heap);
    free(t);
}

// ---------------------------------------------------------------- loading

// encoder.json, parsed in place: keys are unescaped over the text they came
// from (an escape is never shorter than what it stands for).
typedef struct { const char *s; uint32_t len; } Str;

typedef struct {
    const char *path;
    char *text;
    size_t pos, len;
} Json;

NORETURN static void json_fail(const Json *j, const char *what) {
    size_t line = 1;
    for (size_t i = 0; i < j->pos && i < j->len; i++) line += j->text[i] == '\n';
    die("'%s' is not a valid GPT-2 encoder.json: %s at byte %zu (line %zu); re-fetch it (make data)",
        j->path, what, j->pos, line);
}

static void json_space(Json *j) {
    while (j->pos < j->len && j->text[j->pos] && strchr(" \t\r\n", j->text[j->pos])) j->pos++;
}

static void json_expect(Json *j, char c) {
    json_space(j);
    if (j->pos >= j->len || j->text[j->pos] != c) {
        char what[40];
        snprintf(what, sizeof what, "expected '%c'", c);
        json_fail(j, what);
    }
    j->pos++;
}

static uint32_t json_hex4(Json *j) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++, j->pos++) {
        char c = j->pos < j->len ? j->text[j->pos] : 0;
        int d = c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
        if (d < 0) json_fail(j, "bad \\u escape (expected 4 hex digits)");
        v = v << 4 | (uint32_t)d;
    }
    return v;
}

static Str json_string(Json *j) {
    json_expect(j, '"');
    char *out = j->text + j->pos, *start = out;
    for (;;) {
        if (j->pos >= j->len) json_fail(j, "unterminated string");
        char c = j->text[j->pos++];
        if (c == '"') break;
        if ((uint8_t)c < 0x20) json_fail(j, "control character inside a string");
        if (c != '\\') { *out++ = c; continue; }
        char e = j->pos < j->len ? j->text[j->pos++] : 0;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = e ? strchr(from, e) : NULL;
        if (hit) { *out++ = to[hit - from]; continue; }
        if (e != 'u') json_fail(j, "unknown escape in a string");
        uint32_t cp = json_hex4(j);
        if (cp >= 0xD800 && cp <= 0xDBFF) {   // a surrogate pair encodes one character past U+FFFF
            if (j->pos + 2 > j->len || j->text[j->pos] != '\\' || j->text[j->pos + 1] != 'u')
                json_fail(j, "high surrogate \\u escape without its low half");
            j->pos += 2;
            uint32_t lo = json_hex4(j);
            if (lo < 0xDC00 || lo > 0xDFFF) json_fail(j, "high surrogate followed by a non-low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            json_fail(j, "lone low surrogate \\u escape");
        }
        out += utf8_put(cp, out);
    }
    return (Str){start, (uint32_t)(out - start)};
}

static long json_int(Json *j) {
    json_space(j);
    size_t start = j->pos;
    long v = 0;
    while (j->pos < j->len && j->text[j->pos] >= '0' && j->text[j->pos] <= '9' && v < 1000000000)
        v = v * 10 + (j->text[j->pos++] - '0');
    if (j->pos == start) json_fail(j, "expected a non-negative integer token id");
    return v;
}

// Token strings by id, from a JSON object of string -> id with ids 0..n-1.
static Str *read_encoder(const char *path, char **text_out, size_t *len_out) {
    Json j = {path, NULL, 0, 0};
    j.text = read_file(path, &j.len);
    Str *tok = xcalloc(GPT2_VOCAB, sizeof *tok, "GPT-2 vocabulary");
    long count = 0;
    json_expect(&j, '{');
    json_space(&j);
    if (j.pos < j.len && j.text[j.pos] == '}') json_fail(&j, "the object is empty");
    for (;;) {
        Str key = json_string(&j);
        json_expect(&j, ':');
        long id = json_int(&j);
        if (id >= GPT2_VOCAB)
            die("'%s': token id %ld is out of range: GPT-2 has %d tokens (wrong file?)", path, id, GPT2_VOCAB);
        if (tok[id].s) die("'%s': token id %ld appears twice", path, id);
        tok[id] = key;
        count++;
        json_space(&j);
        if (j.pos < j.len && j.text[j.pos] == '}') break;
        json_expect(&j, ',');
    }
    j.pos++;
    json_space(&j);
    if (j.pos != j.len) json_fail(&j, "unexpected text after the closing '}'");
    if (count != GPT2_VOCAB)
        die("'%s' has %ld entries, expected %d (GPT-2's vocabulary): wrong or truncated file", path, count, GPT2_VOCAB);
    *text_out = j.text;
    *len_out = j.len;
    return tok;
}

// A string -> id index over the vocabulary, needed only while reading merges.
#define STR_SLOTS (1u << 17)

static int32_t *str_slot(int32_t *index, const Str *tok, const char *s, size_t n) {
    uint32_t h = hash_bytes(s, n) & (STR_SLOTS - 1);
    while (index[h] >= 0 && !(tok[index[h]].len == n && memcmp(tok[index[h]].s, s, n) == 0))
        h = (h + 1) & (STR_SLOTS - 1);
    return &index[h];
}

// GPT-2 writes each byte as a printable character so that vocabulary files
// are text: printable Latin-1 bytes stand for themselves, the other 68 bytes
// for U+0100.. in byte order (bytes_to_unicode in OpenAI's encoder.py).
static void bytes_to_unicode(uint32_t cp_of_byte[256]) {
    uint32_t extra = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        cp_of_byte[b] = printable ? (uint32_t)b : extra++;
    }
}

static void load_gpt2(Tokenizer *t, const char *dir) {
    char enc_path[4200], bpe_path[4200];
    snprintf(enc_path, sizeof enc_path, "%s/encoder.json", dir);
    snprintf(bpe_path, sizeof bpe_path, "%s/vocab.bpe", dir);
    if (!file_exists(enc_path) || !file_exists(bpe_path))
        die("GPT-2 tokenizer files not found: need '%s' and '%s' (run `make data`, or pass the directory that holds them)",
            enc_path, bpe_path);
    char *enc_text;
    size_t enc_len;
    Str *tok = read_encoder(enc_path, &enc_text, &enc_len);

    int32_t *index = xmalloc(STR_SLOTS * sizeof *index, "vocabulary index");
    memset(index, 0xFF, STR_SLOTS * sizeof *index);
    for (int id = 0; id < GPT2_VOCAB; id++) *str_slot(index, tok, tok[id].s, tok[id].len) = id;

    // Decoding table: each token's characters mapped back to bytes.
    uint32_t cp_of_byte[256];
    int byte_of_cp[324];   // the mapped characters are all below U+0144
    bytes_to_unicode(cp_of_byte);
    memset(byte_of_cp, 0xFF, sizeof byte_of_cp);
    for (int b = 0; b < 256; b++) byte_of_cp[cp_of_byte[b]] = b;
    t->tok_off = xmalloc((GPT2_VOCAB + 1) * sizeof *t->tok_off, "token offsets");
    t->tok_bytes = xmalloc(enc_len, "token bytes");
    uint32_t off = 0;
    for (int id = 0; id < GPT2_VOCAB; id++) {
        t->tok_off[id] = off;
        const uint8_t *s = (const uint8_t *)tok[id].s;
        for (size_t i = 0; i < tok[id].len;) {
            uint32_t cp;
            i += utf8_next(s + i, tok[id].len - i, &cp);
            if (cp >= COUNT(byte_of_cp) || byte_of_cp[cp] < 0)
                die("'%s': token %d contains U+%04X, which is not one of GPT-2's 256 byte characters", enc_path, id, cp);
            t->tok_bytes[off++] = (char)byte_of_cp[cp];
        }
        if (off - t->tok_off[id] > TOKEN_MAX_BYTES)
            die("'%s': token %d is longer than %d bytes (not a GPT-2 vocabulary?)", enc_path, id, TOKEN_MAX_BYTES);
    }
    t->tok_off[GPT2_VOCAB] = off;
    for (int b = 0; b < 256; b++) {
        char ch[4];
        int32_t id = *str_slot(index, tok, ch, utf8_put(cp_of_byte[b], ch));
        if (id < 0) die("'%s' has no token for byte %d (not a GPT-2 vocabulary?)", enc_path, b);
        t->byte_id[b] = (uint16_t)id;
    }

    // Merges: "A B" per line after a "#version" line; rank = order in the file.
    size_t len;
    char *text = read_file(bpe_path, &len);
    t->merges = xmalloc(MERGE_SLOTS * sizeof *t->merges, "merge table");
    for (size_t i = 0; i < MERGE_SLOTS; i++) t->merges[i].pair = NO_PAIR;
    int rank = 0, line_no = 0;
    for (char *line = text, *end; line < text + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(text + len - line));
        if (!end) end = text + len;
        line_no++;
        size_t n = (size_t)(end - line);
        if (n > 0 && line[n - 1] == '\r') n--;
        if (n == 0 || (line_no == 1 && line[0] == '#')) continue;
        char *space = memchr(line, ' ', n);
        if (!space || space == line || space == line + n - 1)
            die("'%s' line %d is not a merge \"A B\": wrong or corrupt file", bpe_path, line_no);
        char joined[2 * TOKEN_MAX_BYTES * 4];
        size_t na = (size_t)(space - line), nb = n - na - 1;
        if (na + nb > sizeof joined) die("'%s' line %d: merge is too long", bpe_path, line_no);
        memcpy(joined, line, na);
        memcpy(joined + na, space + 1, nb);
        int32_t a = *str_slot(index, tok, line, na), b = *str_slot(index, tok, space + 1, nb);
        int32_t ab = *str_slot(index, tok, joined, na + nb);
        if (a < 0 || b < 0 || ab < 0)
            die("'%s' line %d: merge '%.*s' uses or makes a token that is not in encoder.json (mismatched files?)",
                bpe_path, line_no, (int)n, line);
        if (rank >= GPT2_MERGES)
            die("'%s' has more than %d merges: wrong file (GPT-2 has exactly %d)", bpe_path, GPT2_MERGES, GPT2_MERGES);
        MergeSlot *m = merge_slot(t->merges, (uint32_t)a, (uint32_t)b);
        if (m->pair != NO_PAIR) die("'%s' line %d: merge '%.*s' appears twice", bpe_path, line_no, (int)n, line);
        *m = (MergeSlot){(uint32_t)a << 16 | (uint32_t)b, (uint16_t)rank++, (uint16_t)ab};
    }
    if (rank != GPT2_MERGES)
        die("'%s' has %d merges, expected %d (GPT-2's): wrong or truncated file", bpe_path, rank, GPT2_MERGES);
    free(text);
    free(index);
    free(tok);
    free(enc_text);
    t->cache = xcalloc(CACHE_SLOTS, sizeof *t->cache, "tokenizer cache");
}

Tokenizer *tokenizer_load(const char *name, const char *dir) {
    Tokenizer *t = xcalloc(1, sizeof *t, "tokenizer");
    if (strcmp(name, "byte") == 0) {
        *t = (Tokenizer){.name = "byte", .vocab_size = 256, .eot = -1};
    } else if (strcmp(name, "gpt2") == 0) {
        *t = (Tokenizer){.name = "gpt2", .vocab_size = GPT2_VOCAB, .eot = GPT2_EOT};
        load_gpt2(t, dir);
    } else {
        die("unknown tokenizer '%s': use gpt2 or byte", name);
    }
    return t;
}
