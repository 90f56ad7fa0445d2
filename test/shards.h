// test/shards.h — a token shard with any header the test wants, to build the
// broken files the shard reader must refuse (data/shard.h has the format).
#ifndef TEST_SHARDS_H
#define TEST_SHARDS_H

#include "../data/shard.h"
#include "../common.h"

static inline void write_raw_shard(const char *path, int magic, int version, int count, const uint16_t *tok, size_t n) {
    int32_t h[SHARD_HEADER_INTS] = {magic, version, count};
    FILE *f = xfopen(path, "wb");
    xfwrite(h, 4, SHARD_HEADER_INTS, f, path);
    xfwrite(tok, 2, n, f, path);
    xfclose(f, path);
}

#endif
