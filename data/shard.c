// data/shard.c — llm.c-format token shards: write, read, glob. See shard.h.
#include "shard.h"
#include "../common.h"

#include <glob.h>
#include <stdlib.h>
#include <string.h>

static void write_header(FILE *f, const char *path, size_t n) {
    int32_t header[SHARD_HEADER_INTS] = {0};
    header[0] = SHARD_MAGIC;
    header[1] = SHARD_VERSION;
    header[2] = (int32_t)n;
    xfwrite(header, sizeof(int32_t), SHARD_HEADER_INTS, f, path);
}

void shard_write(const char *path, const uint16_t *tokens, size_t n) {
    if (n > INT32_MAX) die("shard '%s' would hold %zu tokens; the format allows at most %d", path, n, INT32_MAX);
    char tmp[4200];
    FILE *f = replace_open(path, "wb", tmp, sizeof tmp);
    write_header(f, tmp, n);
    xfwrite(tokens, sizeof(uint16_t), n, f, tmp);
    replace_commit(f, tmp, path);
}

void shard_writer_open(ShardWriter *w, const char *prefix, size_t max_tokens) {
    if (max_tokens == 0) die("shard size must be at least one token");
    if (strlen(prefix) + 16 >= sizeof w->prefix) die("shard prefix '%s' is too long", prefix);
    strcpy(w->prefix, prefix);
    w->max_tokens = max_tokens;
    w->n_buf = w->n_total = 0;
    w->n_shards = 0;
    w->buf = xmalloc(max_tokens * sizeof(uint16_t), "shard buffer");
}

static void flush_shard(ShardWriter *w) {
    char path[4200];
    snprintf(path, sizeof path, "%s_%06d.bin", w->prefix, w->n_shards++);
    shard_write(path, w->buf, w->n_buf);
    w->n_total += w->n_buf;
    w->n_buf = 0;
}

void shard_writer_add(ShardWriter *w, const uint16_t *tokens, size_t n) {
    while (n > 0) {
        size_t take = w->max_tokens - w->n_buf;
        if (take > n) take = n;
        memcpy(w->buf + w->n_buf, tokens, take * sizeof(uint16_t));
        w->n_buf += take;
        tokens += take;
        n -= take;
        if (w->n_buf == w->max_tokens) flush_shard(w);
    }
}

void shard_writer_close(ShardWriter *w) {
    if (w->n_buf > 0 || w->n_shards == 0) flush_shard(w);
    free(w->buf);
    w->buf = NULL;
}

uint16_t *shard_read(const char *path, size_t *n_tokens, int vocab_size) {
    FILE *f = xfopen(path, "rb");
    long size = xfsize(f, path);
    if (size < (long)(SHARD_HEADER_INTS * sizeof(int32_t)))
        die("'%s' is not a token shard: %ld bytes is shorter than the 1024-byte header", path, size);
    int32_t header[SHARD_HEADER_INTS];
    xfread(header, sizeof(int32_t), SHARD_HEADER_INTS, f, path);
    if (header[0] != SHARD_MAGIC)
        die("'%s' is not a token shard: magic %d, expected %d (make shards with data/prepare)", path, header[0], SHARD_MAGIC);
    if (header[1] != SHARD_VERSION)
        die("'%s': shard version %d is not supported (expected %d)", path, header[1], SHARD_VERSION);
    if (header[2] < 0) die("'%s': negative token count %d in header", path, header[2]);
    size_t n = (size_t)header[2];
    size_t payload = (size_t)size - SHARD_HEADER_INTS * sizeof(int32_t);
    if (n * sizeof(uint16_t) != payload)
        die("'%s': header says %zu tokens but the file holds %zu bytes of tokens (truncated or corrupt)", path, n, payload);
    if (n == 0) die("'%s' holds no tokens", path);
    uint16_t *tok = xmalloc(n * sizeof(uint16_t), path);
    xfread(tok, sizeof(uint16_t), n, f, path);
    xfclose(f, path);
    if (vocab_size > 0)
        for (size_t i = 0; i < n; i++)
            if (tok[i] >= vocab_size) {
                unsigned bad = tok[i];
                free(tok);  // nothing leaks on a rejection (fuzz/harness.h)
                die("'%s': token %u at position %zu is >= vocab_size %d (wrong tokenizer or vocab_size?)", path, bad, i, vocab_size);
            }
    *n_tokens = n;
    return tok;
}

char **expand_paths(const char *pattern, int *n) {
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0))
        die("no file matches '%s' (prepare the data first: see README.md)", pattern);
    if (rc != 0) die("cannot expand '%s': glob failed", pattern);
    char **paths = xmalloc(g.gl_pathc * sizeof(char *), "path list");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        paths[i] = xmalloc(strlen(g.gl_pathv[i]) + 1, "path");
        strcpy(paths[i], g.gl_pathv[i]);
    }
    *n = (int)g.gl_pathc;
    globfree(&g);
    return paths;
}

void free_paths(char **paths, int n) {
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
}
