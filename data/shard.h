// data/shard.h — token shards in llm.c's format.
//
// A shard is a header of 256 little-endian int32 followed by uint16 tokens:
//   header[0] = 20240520 (magic), header[1] = 1 (version), header[2] = token count,
//   the rest zero. Tokens are uint16, so a vocabulary may have at most 65536 ids.
#ifndef SHARD_H
#define SHARD_H

#include <stddef.h>
#include <stdint.h>

#define SHARD_MAGIC 20240520
#define SHARD_VERSION 1
#define SHARD_HEADER_INTS 256

// Write n tokens to path as one shard (atomically: temp file + rename).
void shard_write(const char *path, const uint16_t *tokens, size_t n);

// A streaming writer that starts a new shard every max_tokens tokens:
// files are named <prefix>_000000.bin, <prefix>_000001.bin, ...
typedef struct {
    char prefix[4096];
    size_t max_tokens, n_buf, n_total;
    int n_shards;
    uint16_t *buf;
} ShardWriter;
void shard_writer_open(ShardWriter *w, const char *prefix, size_t max_tokens);
void shard_writer_add(ShardWriter *w, const uint16_t *tokens, size_t n);
void shard_writer_close(ShardWriter *w);   // flushes the last partial shard

// Read a whole shard; validates magic, version and that the count matches the
// file size, and that every token is < vocab_size (pass 0 to skip that check).
// Exits with a message naming the file on any problem. Returns a malloc'd array.
uint16_t *shard_read(const char *path, size_t *n_tokens, int vocab_size);

// Expand a path or a glob pattern into a sorted list of existing files.
// Exits with a message when nothing matches. Free with free_paths().
char **expand_paths(const char *pattern, int *n);
void free_paths(char **paths, int n);

#endif
