// fuzz/make_seeds.c — writes the binary seeds of fuzz/corpus/ (run once by
// hand: `make fuzz-seeds`; the files are committed). Checkpoints come from
// the tiny model fuzz_ckpt.c loads into; shards are small and valid.
#include "../data/shard.h"
#include "../checkpoint.h"

#include <stdlib.h>
#include <string.h>

int main(void) {
    Config c;
    config_defaults(&c);
    c.n_layer = 1; c.n_head = 2; c.n_embd = 8; c.seq_len = 8; c.vocab_size = 16;  // = fuzz_tiny_config
    GPT2 m;
    model_init(&m, &c);
    TrainState ts = {{1, 2, 3, 4}};
    m.step = 3;
    model_save(&m, "fuzz/corpus/ckpt/full.ckpt", &ts, 1);
    model_save(&m, "fuzz/corpus/ckpt/weights.ckpt", NULL, 0);
    // llm.c's GPT-2 format: header [magic, version 3, maxT, V, L, NH, C, Vp], 16 tensors.
    int32_t h[256] = {20240326, 3, m.maxT, m.V, m.L, m.NH, m.C, m.Vp};
    FILE *f = xfopen("fuzz/corpus/ckpt/llmc.bin", "wb");
    xfwrite(h, 4, 256, f, "llmc.bin");
    xfwrite(m.params, sizeof(real), (size_t)(m.p[P_ATTN] - m.params), f, "llmc.bin");
    xfclose(f, "llmc.bin");
    model_free(&m);

    uint16_t tok[40];
    for (int i = 0; i < 40; i++) tok[i] = (uint16_t)(i * 7 % 300);
    shard_write("fuzz/corpus/shard/small.bin", tok, 40);
    shard_write("fuzz/corpus/shard/one.bin", tok, 1);
    return 0;
}
