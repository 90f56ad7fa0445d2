// test/test_tokenizer.c — the GPT-2 and byte tokenizers, the Brown detagger
// and the WikiText splitter. GPT-2 tests need encoder.json + vocab.bpe from
// data/cache/gpt2 (make data) or ../shared/data/gpt2-bpe ($HH_SHARED overrides
// ../shared/data); the conformance tests need ../shared/data. Without them
// those tests are skipped, and say so.
#include "../common.h"
#include "../data/corpus.h"
#include "../data/tokenizer.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_IDS 32

static const char *shared_dir(void) {
    const char *env = getenv("HH_SHARED");
    return env && *env ? env : "../shared/data";
}

static void encode_all(Tokenizer *t, const char *text, size_t len, int special, TokenBuf *b) {
    b->n = 0;
    tokenizer_encode(t, text, len, special, b);
}

static int ids_equal(const TokenBuf *b, const uint16_t *ids, size_t n) {
    return b->n == n && (n == 0 || memcmp(b->ids, ids, n * sizeof *ids) == 0);
}

// Decode ids and compare with the text they came from.
static int round_trips(const Tokenizer *t, const TokenBuf *b, const char *text, size_t len) {
    char piece[TOKEN_MAX_BYTES];
    size_t at = 0;
    for (size_t i = 0; i < b->n; i++) {
        size_t k = tokenizer_decode(t, b->ids[i], piece);
        if (at + k > len || memcmp(text + at, piece, k) != 0) return 0;
        at += k;
    }
    return at == len;
}

// ---------------------------------------------------------------- vectors

typedef struct {
    const char *text;
    int special;
    size_t n;
    uint16_t ids[MAX_IDS];
} Vector;

// From reference_vectors.json, an independent GPT-2 encoder (gpt-3-encoder's
// Encoder.js) and the byte table of bytes_to_unicode.
static const Vector vectors[] = {
    {"", 0, 0, {0}},
    {"a", 0, 1, {64}},
    {" ", 0, 1, {220}},
    {"\n", 0, 1, {198}},
    {"!", 0, 1, {0}},
    {"\xff", 0, 1, {187}},      // invalid UTF-8: the byte's own token
    {"\xad", 0, 1, {255}},      // the last byte in bytes_to_unicode's order
    {" the", 0, 1, {262}},
    {"the", 0, 1, {1169}},
    {"The", 0, 1, {464}},
    {"Hello world", 0, 2, {15496, 995}},
    {"don't", 0, 2, {9099, 470}},
    {"I'm", 0, 2, {40, 1101}},
    {"we'll", 0, 2, {732, 1183}},
    {"they've", 0, 2, {9930, 1053}},
    {"you're", 0, 2, {5832, 821}},
    {"he'd", 0, 2, {258, 1549}},
    {"It's", 0, 2, {1026, 338}},
    {"'S", 0, 2, {6, 50}},      // contractions are lower case only
    {"   ", 0, 3, {220, 220, 220}},
    {"a   b", 0, 4, {64, 220, 220, 275}},
    {"\n\n\n", 0, 2, {628, 198}},
    {" \n ", 0, 3, {220, 198, 220}},
    {"\t\t", 0, 2, {197, 197}},
    {"123456", 0, 2, {10163, 29228}},
    {"3.14159", 0, 4, {18, 13, 1415, 19707}},
    {" 2024", 0, 1, {48609}},
    {"\xc3\xa9", 0, 1, {2634}},                       // é
    {"caf\xc3\xa9", 0, 3, {66, 1878, 2634}},
    {"na\xc3\xafve", 0, 2, {2616, 38776}},            // naïve
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 0, 6, {33768, 98, 17312, 105, 45739, 252}},   // 日本語
    {"\xe4\xb8\xad\xe6\x96\x87", 0, 3, {40792, 23877, 229}},                               // 中文
    {"\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac", 0, 11,
     {138, 243, 39377, 39377, 138, 115, 26180, 29945, 43000, 138, 105}},                   // Ελληνικά
    {"\xf0\x9f\xa4\x96", 0, 3, {8582, 97, 244}},                                           // 🤖
    {"\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", 0, 5, {41840, 235, 8582, 237, 121}},              // 👍🏽
    {"@-@", 0, 3, {31, 12, 31}},
    {"x\xc2\xa0y", 0, 3, {87, 1849, 88}},             // no-break space is \s
    {"x\xe3\x80\x80y", 0, 4, {87, 5099, 222, 88}},    // ideographic space is \s
    {"\xe2\x85\xab\xc2\xbd", 0, 4, {158, 227, 104, 23141}},   // Ⅻ½: \p{N}
    {"hello!!!", 0, 2, {31373, 10185}},
    {" \xc2\xabquote\xc2\xbb", 0, 3, {21110, 22708, 17730}},  // « »
    {"<|endoftext|>", 1, 1, {50256}},
    {"<|endoftext|>", 0, 7, {27, 91, 437, 1659, 5239, 91, 29}},
    {"a<|endoftext|>b", 1, 3, {64, 50256, 65}},
    {"a<|endoftext|>b", 0, 9, {64, 27, 91, 437, 1659, 5239, 91, 29, 65}},
    {"<|endoftext|><|endoftext|>", 1, 2, {50256, 50256}},
};

static void test_vectors(Tokenizer *t) {
    TokenBuf b = {0};
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const Vector *v = &vectors[i];
        size_t len = strlen(v->text);
        encode_all(t, v->text, len, v->special, &b);
        CHECK(ids_equal(&b, v->ids, v->n), "vector %zu (\"%s\", special %d): got %zu ids, first %d", i, v->text,
              v->special, b.n, b.n ? b.ids[0] : -1);
        CHECK(round_trips(t, &b, v->text, len), "vector %zu (\"%s\") does not decode to itself", i, v->text);
    }
    // Every byte alone is one token, the one bytes_to_unicode gives it.
    int all_bytes = 1;
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        encode_all(t, &ch, 1, 0, &b);
        all_bytes &= b.n == 1 && round_trips(t, &b, &ch, 1);
    }
    CHECK(all_bytes, "some single byte is not one token that decodes to itself");
    CHECK(tokenizer_vocab_size(t) == 50257 && tokenizer_eot(t) == 50256, "gpt2 vocab %d eot %d",
          tokenizer_vocab_size(t), tokenizer_eot(t));
    free(b.ids);
}

// ---------------------------------------------------------------- reference files

// reference_vectors.json: [{"text": "...", "ids": [..], "note": ".."}, ...].
// Just enough JSON for that file: the strings in it use \n \t \r \" \\ and
// \uXXXX escapes of BMP characters.
static size_t parse_json_string(const char *s, size_t *pos, char *out) {
    size_t o = 0, i = *pos + 1;   // s[*pos] is the opening quote
    while (s[i] != '"') {
        if (s[i] != '\\') { out[o++] = s[i++]; continue; }
        char e = s[i + 1];
        i += 2;
        if (e == 'u') {
            unsigned cp = (unsigned)strtoul((char[5]){s[i], s[i + 1], s[i + 2], s[i + 3], 0}, NULL, 16);
            i += 4;
            if (cp < 0x80) out[o++] = (char)cp;
            else if (cp < 0x800) { out[o++] = (char)(0xC0 | cp >> 6); out[o++] = (char)(0x80 | (cp & 0x3F)); }
            else {
                out[o++] = (char)(0xE0 | cp >> 12); out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            }
        } else {
            out[o++] = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        }
    }
    *pos = i + 1;
    return o;
}

static void test_reference_vectors(Tokenizer *t, const char *shared) {
    char path[4200];
    snprintf(path, sizeof path, "%s/gpt2-bpe/reference_vectors.json", shared);
    if (!file_exists(path)) { SKIP("reference vectors: '%s' not found", path); return; }
    char *json = read_file(path, NULL);
    TokenBuf b = {0};
    int n_cases = 0, n_ok = 0;
    for (char *p = json; (p = strstr(p, "\"text\"")) != NULL; n_cases++) {
        size_t pos = (size_t)(strchr(p + 6, '"') - json);
        char text[4096];
        size_t len = parse_json_string(json, &pos, text);
        char *ids = strchr(json + pos, '[');
        char *close = strchr(ids, ']');
        char *next = strstr(json + pos, "\"text\"");
        char *note = strstr(json + pos, "\"note\"");
        int special = note && (!next || note < next);   // the one case noted "as special token"
        uint16_t want[MAX_IDS * 4];
        size_t n = 0;
        for (char *q = ids + 1; q < close && n < sizeof want / sizeof want[0];) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) { q++; continue; }
            want[n++] = (uint16_t)v;
            q = end;
        }
        encode_all(t, text, len, special, &b);
        int ok = ids_equal(&b, want, n) && round_trips(t, &b, text, len);
        CHECK(ok, "reference vector %d (\"%.*s\"): got %zu ids, expected %zu", n_cases, (int)len, text, b.n, n);
        n_ok += ok;
        p = close;
    }
    CHECK(n_cases == 15, "reference_vectors.json: found %d cases, expected 15", n_cases);
    printf("reference_vectors.json: %d of %d cases exact\n", n_ok, n_cases);
    free(b.ids);
    free(json);
}

// All 258,659 ids of WikiText-2's validation split, whole and article by article.
static void test_wikitext_conformance(Tokenizer *t, const char *shared) {
    char text_path[4200], ids_path[4200];
    snprintf(text_path, sizeof text_path, "%s/wikitext-2/wiki.valid.tokens", shared);
    snprintf(ids_path, sizeof ids_path, "%s/wikitext-2/wiki.valid.tokens.gpt2.u16", shared);
    if (!file_exists(text_path) || !file_exists(ids_path)) {
        SKIP("WikiText-2 conformance: '%s' or its .gpt2.u16 not found", text_path);
        return;
    }
    size_t len, id_bytes;
    char *text = read_file(text_path, &len);
    uint16_t *want = (uint16_t *)read_file(ids_path, &id_bytes);   // little-endian, as is every target
    size_t n_want = id_bytes / 2;
    TokenBuf b = {0};
    double t0 = now_seconds();
    encode_all(t, text, len, 0, &b);
    double dt = now_seconds() - t0;
    size_t first_diff = 0;
    while (first_diff < b.n && first_diff < n_want && b.ids[first_diff] == want[first_diff]) first_diff++;
    CHECK(b.n == n_want && first_diff == n_want, "WikiText-2 valid: %zu ids vs %zu expected, first difference at id %zu",
          b.n, n_want, first_diff);
    CHECK(round_trips(t, &b, text, len), "WikiText-2 valid does not decode to itself");
    printf("WikiText-2 valid: %zu of %zu ids identical (%.1f MB/s)\n", first_diff, n_want, len / 1e6 / dt);

    // Article by article (as data/prepare --wikitext encodes) gives the same ids.
    b.n = 0;
    int articles = 0;
    for (size_t start = 0; start < len; articles++) {
        size_t end = wikitext_article_end(text, len, start);
        tokenizer_encode(t, text + start, end - start, 0, &b);
        start = end;
    }
    CHECK(ids_equal(&b, want, n_want), "WikiText-2 valid encoded article by article differs (%zu ids)", b.n);
    CHECK(articles == 60, "WikiText-2 valid: %d articles, expected 60", articles);
    free(b.ids);
    free(want);
    free(text);

    // The test split has two formula lines that look like titles; still 60 articles.
    snprintf(text_path, sizeof text_path, "%s/wikitext-2/wiki.test.tokens", shared);
    if (!file_exists(text_path)) return;
    text = read_file(text_path, &len);
    articles = 0;
    for (size_t start = 0; start < len; articles++) start = wikitext_article_end(text, len, start);
    CHECK(articles == 60, "WikiText-2 test: %d articles, expected 60", articles);
    free(text);
}

// ---------------------------------------------------------------- round trips

static const char *const pieces[] = {
    "the", " the", "'s", "'ll", "'", " ", "  ", "\t", "\n", "\r\n", "\xc2\xa0", "\xe3\x80\x80", "123", " 45",
    "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\xa4\x96", "!!", "@-@", "<|endoftext|>", "<|end",
    "\xff", "\xc3", "\xe6\x97", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "\x80", "Z",
};

// Random text: uniform bytes, or a mix of the pieces above (words, spaces,
// numbers, Unicode, special-token text and invalid UTF-8).
static size_t random_text(Rng *r, char *out, size_t cap) {
    size_t len = (size_t)rng_below(r, cap / 2);
    if (rng_below(r, 2) == 0) {
        for (size_t i = 0; i < len; i++) out[i] = (char)rng_below(r, 256);
        return len;
    }
    size_t n = 0, n_pieces = sizeof pieces / sizeof pieces[0];
    while (n < len) {
        size_t k = (size_t)rng_below(r, n_pieces);
        size_t m = strlen(pieces[k]);
        if (n + m > cap) break;
        memcpy(out + n, pieces[k], m);
        n += m;
    }
    return n;
}

static void test_round_trip(Tokenizer *t) {
    Rng r;
    rng_seed(&r, 2024);
    char text[4096];
    TokenBuf whole = {0}, parts = {0};
    int failures = 0, cut_failures = 0, cuts = 0;
    for (int iter = 0; iter < 400; iter++) {
        size_t len = random_text(&r, text, sizeof text);
        int special = iter % 2;
        encode_all(t, text, len, special, &whole);
        failures += !round_trips(t, &whole, text, len);
        size_t cut = tokenizer_safe_cut(text, len);
        if (cut == 0) continue;
        cuts++;
        encode_all(t, text, cut, special, &parts);
        tokenizer_encode(t, text + cut, len - cut, special, &parts);
        cut_failures += !(parts.n == whole.n && memcmp(parts.ids, whole.ids, whole.n * sizeof *whole.ids) == 0);
    }
    CHECK(failures == 0, "%s: %d of 400 random texts do not decode to themselves", tokenizer_name(t), failures);
    CHECK(cut_failures == 0 && cuts > 50, "%s: %d of %d safe cuts change the ids", tokenizer_name(t), cut_failures, cuts);
    free(whole.ids);
    free(parts.ids);
}

static void test_byte_tokenizer(void) {
    Tokenizer *t = tokenizer_load("byte", "ignored");
    CHECK(tokenizer_vocab_size(t) == 256 && tokenizer_eot(t) == -1, "byte: vocab %d eot %d", tokenizer_vocab_size(t),
          tokenizer_eot(t));
    const char text[] = "A\xff\x00<|endoftext|>";
    TokenBuf b = {0};
    encode_all(t, text, sizeof text - 1, 1, &b);
    int same = b.n == sizeof text - 1;
    for (size_t i = 0; same && i < b.n; i++) same = b.ids[i] == (uint8_t)text[i];
    CHECK(same, "byte: ids are not the byte values (special text must stay bytes)");
    test_round_trip(t);
    free(b.ids);
    tokenizer_free(t);
}

// ---------------------------------------------------------------- corpora

static void test_brown_detag(void) {
    const char tagged[] = "\n\n\tThe/at Fulton/np-tl County's/nn$ 1-1/2/cd ``/`` yes/rb ''/'' ./.\n\n\n"
                          "\tMerger/nn-hl proposed/vbn-hl \n  \t \n\tend/nn\n";
    const char want[] = "The Fulton County's 1-1/2 `` yes '' .\nMerger proposed \nend\n";
    char out[sizeof tagged];
    size_t n = brown_detag(tagged, sizeof tagged - 1, out);
    CHECK(n == sizeof want - 1 && memcmp(out, want, n) == 0, "detag gave \"%.*s\"", (int)n, out);
}

static void test_wikitext_split(void) {
    CHECK(wikitext_is_title(" = Alpha Beta = ", 16), "a title");
    CHECK(!wikitext_is_title(" = = Section = = ", 17), "a section is not a title");
    CHECK(!wikitext_is_title(" = = = Sub = = = ", 17), "a subsection is not a title");
    CHECK(!wikitext_is_title("= Alpha =", 9) && !wikitext_is_title(" = Alpha =", 10), "titles have spaces outside");
    CHECK(!wikitext_is_title(" Alpha = 3 = ", 13), "text with '=' is not a title");
    const char text[] = " \n = Alpha = \n \n Text a .\n \n = = Section = = \n \n More :\n = 1 / s = \n and .\n \n"
                        " = Beta = \n \n Text b .\n \n = Gamma = ";
    size_t len = sizeof text - 1;
    size_t beta = (size_t)(strstr(text, " = Beta") - text);
    CHECK(wikitext_article_end(text, len, 0) == beta, "a formula is not a title: the first article (with the blank line before it) ends at Beta");
    CHECK(wikitext_article_end(text, len, beta) == len, "an unfinished last line is not yet a title");
    CHECK(wikitext_article_end(text, beta, 0) == beta, "text without a next title runs to its end");
}

// ---------------------------------------------------------------- load errors

// Run tokenizer_load in a child process; the errors it reports go through
// die(), which exits. Returns the exit status; err gets what it printed.
static int load_in_child(const char *name, const char *dir, char *err, size_t cap) {
    int fds[2];
    if (pipe(fds) != 0) die("pipe failed");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        tokenizer_free(tokenizer_load(name, dir));
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(fds[0], err + n, cap - 1 - n)) > 0) n += (size_t)got;
    err[n] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void write_text(const char *path, const char *text) {
    FILE *f = xfopen(path, "wb");
    xfwrite(text, 1, strlen(text), f, path);
    xfclose(f, path);
}

static void expect_load_error(const char *name, const char *dir, const char *needle, const char *what) {
    char err[2048];
    int rc = load_in_child(name, dir, err, sizeof err);
    CHECK(rc == 1 && strstr(err, needle), "%s: exit %d, message \"%s\" lacks \"%s\"", what, rc, err, needle);
}

static void test_load_errors(const char *bpe_dir) {
    char dir[] = "/tmp/hh_tokenizer_XXXXXX";
    if (!mkdtemp(dir)) die("cannot make a temporary directory");
    char enc[4200], bpe[4200];
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", dir);

    expect_load_error("gpt3", dir, "unknown tokenizer 'gpt3'", "unknown name");
    expect_load_error("gpt2", "/nonexistent/dir", "/nonexistent/dir/encoder.json", "missing files");
    write_text(bpe, "#version: 0.2\n");
    static const struct { const char *json, *needle; } bad[] = {
        {"{\"a\": 0, \"b\" 1}", "expected ':'"},
        {"{\"a\": 0,", "expected '\"'"},
        {"{\"abc", "unterminated string"},
        {"[1, 2]", "expected '{'"},
        {"{\"\\q\": 0}", "unknown escape"},
        {"{\"\\ud800\": 0}", "high surrogate"},
        {"{\"a\": 0} x", "after the closing"},
        {"{\"a\": 0, \"b\": 1}", "has 2 entries, expected 50257"},
        {"{\"a\": 0, \"b\": 0}", "appears twice"},
        {"{\"a\": 99999}", "out of range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(enc, bad[i].json);
        expect_load_error("gpt2", dir, bad[i].needle, bad[i].json);
    }
    // Merges: the real encoder.json with a truncated or foreign vocab.bpe.
    if (bpe_dir) {
        char source[4300];
        snprintf(source, sizeof source, "%s/encoder.json", bpe_dir);
        size_t len;
        char *json = read_file(source, &len);
        FILE *f = xfopen(enc, "wb");
        xfwrite(json, 1, len, f, enc);
        xfclose(f, enc);
        free(json);
        write_text(bpe, "#version: 0.2\n\xc4\xa0 t\n\xc4\xa0 a\n");
        expect_load_error("gpt2", dir, "has 2 merges, expected 50000", "truncated vocab.bpe");
        write_text(bpe, "#version: 0.2\nqqqqqq zzzzzz\n");
        expect_load_error("gpt2", dir, "not in encoder.json", "unknown merge");
        write_text(bpe, "#version: 0.2\nnospace\n");
        expect_load_error("gpt2", dir, "line 2 is not a merge", "malformed merge");
    } else {
        SKIP("vocab.bpe error cases: no GPT-2 encoder.json to pair them with");
    }
    unlink(enc);
    unlink(bpe);
    rmdir(dir);
}

int main(void) {
    const char *shared = shared_dir();
    char shared_bpe[4200];
    snprintf(shared_bpe, sizeof shared_bpe, "%s/gpt2-bpe", shared);
    const char *bpe_dir = file_exists("data/cache/gpt2/encoder.json")  ? "data/cache/gpt2"
                          : file_exists(shared_bpe)                      ? shared_bpe
                                                                         : NULL;
    test_byte_tokenizer();
    test_brown_detag();
    test_wikitext_split();
    test_load_errors(bpe_dir);
    if (bpe_dir) {
        Tokenizer *t = tokenizer_load("gpt2", bpe_dir);
        test_vectors(t);
        test_round_trip(t);
        test_reference_vectors(t, shared);
        test_wikitext_conformance(t, shared);
        tokenizer_free(t);
    } else {
        SKIP("GPT-2 tests: no encoder.json + vocab.bpe in data/cache/gpt2 (run `make data`) or '%s'", shared_bpe);
    }
    return test_summary("test_tokenizer");
}
