// test_shard.c — the llm.c shard format: round trip, splitting writer, globs,
// batches, and every way a shard can be broken.
#include "test.h"
#include "shards.h"
#include "../common.h"
#include "../data/loader.h"
#include "../data/shard.h"

#include <stdlib.h>

static char dir[256];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

// A shard with a chosen header and payload, in the test directory.
static void write_raw(const char *name, int magic, int version, int count, const uint16_t *tok, size_t n) {
    char p[512];
    path_in(p, sizeof p, name);
    write_raw_shard(p, magic, version, count, tok, n);
}

static void read_vocab10(void *name) {
    char p[512];
    path_in(p, sizeof p, (const char *)name);
    size_t n;
    free(shard_read(p, &n, 10));
}

static void test_round_trip_and_writer(void) {
    uint16_t tok[1000];
    for (int i = 0; i < 1000; i++) tok[i] = (uint16_t)(i * 37 % 50257);
    char prefix[512], p[512];
    path_in(prefix, sizeof prefix, "split");
    ShardWriter w;
    shard_writer_open(&w, prefix, 300);
    shard_writer_add(&w, tok, 250);
    shard_writer_add(&w, tok + 250, 750);
    shard_writer_close(&w);
    CHECK(w.n_shards == 4 && w.n_total == 1000, "1000 tokens in shards of 300 -> 4 files, got %d", w.n_shards);
    path_in(p, sizeof p, "split_*.bin");
    TokenSet s;
    tokens_load(&s, p, 50257);
    CHECK(s.n == 1000 && s.n_files == 4, "glob loads all shards in order");
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= s.tokens[i] == tok[i];
    CHECK(same, "tokens survive the round trip in order");

    // Batches: targets are inputs shifted by one; the same seed gives the same batch.
    int in[2 * 8], tg[2 * 8], in2[2 * 8], tg2[2 * 8];
    Rng a, b;
    rng_seed(&a, 5);
    rng_seed(&b, 5);
    batch_random(&s, &a, 2, 8, 1, in, tg);
    batch_random(&s, &b, 2, 8, 1, in2, tg2);
    CHECK(memcmp(in, in2, sizeof in) == 0 && memcmp(tg, tg2, sizeof tg) == 0, "batches are a function of the seed");
    CHECK(in[1] == tg[0] && in[9] == tg[8], "targets are the next tokens");
    batch_sequential(&s, 3, 2, 8, in, tg);
    CHECK(in[0] == tok[48] && tg[15] == tok[64], "validation batch k=3 starts at window 6");
    tokens_free(&s);
}

// A loss mask turns the targets it leaves out into NO_TARGET; window_align
// puts every training window at a multiple of it; align 1 draws the offsets
// it always drew (rng_below(n − T)), so old runs' batches do not change.
static void test_mask_and_align(void) {
    enum { NT = 1000, T = 20, B = 6 };
    uint16_t tok[NT], mask[NT];
    for (int i = 0; i < NT; i++) tok[i] = (uint16_t)i, mask[i] = i % 3 == 0;
    char p[512], q[512];
    path_in(p, sizeof p, "masked.bin");
    path_in(q, sizeof q, "masked.mask");
    shard_write(p, tok, NT);
    shard_write(q, mask, NT);
    TokenSet s;
    tokens_load(&s, p, 1000);
    tokens_load_mask(&s, q);
    int in[B * T], tg[B * T], bad_mask = 0, bad_align = 0, bad_input = 0;
    Rng rng, copy;
    rng_seed(&rng, 3);
    batch_random(&s, &rng, B, T, 10, in, tg);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int i = in[b * T] + t + 1;   // the target's position in the set (tokens are their positions)
            bad_align += in[b * T] % 10 != 0;
            bad_input += in[b * T + t] != i - 1;
            bad_mask += tg[b * T + t] != (mask[i] ? i : NO_TARGET);
        }
    CHECK(bad_align == 0 && bad_input == 0, "window_align = 10: windows start at multiples of 10 (%d off)", bad_align);
    CHECK(bad_mask == 0, "loss mask: %d targets not NO_TARGET exactly where the mask is 0", bad_mask);
    rng_seed(&rng, 4);
    rng_seed(&copy, 4);
    batch_random(&s, &rng, B, T, 1, in, tg);
    int same = 1;
    for (int b = 0; b < B; b++) same &= in[b * T] == (int)rng_below(&copy, NT - T);
    CHECK(same, "window_align = 1 draws offsets as rng_below(n - T), as before it existed");
    // The last aligned start: n = T + 1 + 3·10 tokens leave starts 0, 10, 20
    // and 30 (30 + T + 1 = n); every one is drawn, none reads past the end.
    TokenSet small = {.tokens = tok, .n = T + 1 + 30};
    int hit[4] = {0}, past = 0;
    for (int k = 0; k < 100; k++) {
        batch_random(&small, &rng, 1, T, 10, in, tg);
        if (in[0] % 10 == 0 && in[0] / 10 < 4) hit[in[0] / 10]++;
        past += in[0] % 10 != 0 || in[0] + T + 1 > (int)small.n;
    }
    CHECK(past == 0 && hit[0] && hit[1] && hit[2] && hit[3], "window_align = 10 in 51 tokens: starts 0, 10, 20, 30 all drawn "
          "(%d %d %d %d times), none past the end (%d)", hit[0], hit[1], hit[2], hit[3], past);
    tokens_free(&s);
}

static void test_broken(void) {
    uint16_t tok[4] = {1, 2, 3, 12};
    write_raw("magic.bin", 1234, 1, 4, tok, 4);
    write_raw("version.bin", SHARD_MAGIC, 7, 4, tok, 4);
    write_raw("long.bin", SHARD_MAGIC, 1, 9, tok, 4);
    write_raw("empty.bin", SHARD_MAGIC, 1, 0, tok, 0);
    write_raw("vocab.bin", SHARD_MAGIC, 1, 4, tok, 4);
    write_raw("short.bin", SHARD_MAGIC, 1, 4, tok, 0);
    char p[512];
    path_in(p, sizeof p, "header.bin");
    FILE *f = xfopen(p, "wb");
    fputs("not a shard", f);
    xfclose(f, p);
    CHECK(expect_die(read_vocab10, "magic.bin", "magic 1234, expected 20240520"), "wrong magic");
    CHECK(expect_die(read_vocab10, "version.bin", "shard version 7 is not supported"), "wrong version");
    CHECK(expect_die(read_vocab10, "long.bin", "header says 9 tokens"), "count larger than the file");
    CHECK(expect_die(read_vocab10, "short.bin", "truncated"), "truncated payload");
    CHECK(expect_die(read_vocab10, "empty.bin", "holds no tokens"), "empty shard");
    CHECK(expect_die(read_vocab10, "vocab.bin", "token 12 at position 3 is >= vocab_size 10"), "token beyond the vocabulary");
    CHECK(expect_die(read_vocab10, "header.bin", "shorter than the 1024-byte header"), "no header");
    CHECK(expect_die(read_vocab10, "missing.bin", "cannot open"), "missing file");
}

static void glob_nothing(void *unused) {
    (void)unused;
    char p[512];
    path_in(p, sizeof p, "nothing_*.bin");
    int n;
    expand_paths(p, &n);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/hh_test_shard_%d", (int)getpid());
    make_dirs(dir);
    test_round_trip_and_writer();
    test_mask_and_align();
    test_broken();
    CHECK(expect_die(glob_nothing, NULL, "no file matches"), "a glob that matches nothing");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "clean up");
    return test_summary("test_shard");
}
