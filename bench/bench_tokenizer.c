// bench/bench_tokenizer.c — GPT-2 encoding speed on one core, in MB of text
// per second: the median of several runs, each with a freshly loaded
// tokenizer (so its word cache starts empty) and the load not timed.
//
//   bench/bench_tokenizer [TEXT_FILE [BPE_DIR]]
//
// Defaults: WikiText-2's validation text from ../shared/data ($HH_SHARED) and
// the vocabulary from data/cache/gpt2 (make data), else ../shared/data/gpt2-bpe.
#include "../common.h"
#include "../data/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define RUNS 7

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *env = getenv("HH_SHARED");
    const char *shared = env && *env ? env : "../shared/data";
    char text_path[4200], bpe_dir[4200];
    snprintf(text_path, sizeof text_path, "%s/wikitext-2/wiki.valid.tokens", shared);
    snprintf(bpe_dir, sizeof bpe_dir, "%s/gpt2-bpe", shared);
    if (file_exists("data/cache/gpt2/encoder.json")) snprintf(bpe_dir, sizeof bpe_dir, "data/cache/gpt2");
    if (argc > 1) snprintf(text_path, sizeof text_path, "%s", argv[1]);
    if (argc > 2) snprintf(bpe_dir, sizeof bpe_dir, "%s", argv[2]);
    if (!file_exists(text_path)) die("no text to encode: '%s' not found (usage: %s [TEXT_FILE [BPE_DIR]])", text_path, argv[0]);

    size_t len;
    char *text = read_file(text_path, &len);
    double mbps[RUNS];
    size_t n_ids = 0;
    for (int r = 0; r < RUNS; r++) {
        Tokenizer *t = tokenizer_load("gpt2", bpe_dir);
        TokenBuf b = {0};
        double t0 = now_seconds();
        tokenizer_encode(t, text, len, 1, &b);
        mbps[r] = len / 1e6 / (now_seconds() - t0);
        n_ids = b.n;
        free(b.ids);
        tokenizer_free(t);
    }
    qsort(mbps, RUNS, sizeof mbps[0], cmp_double);
    printf("gpt2 encode: %s, %.2f MB -> %zu tokens (%.2f bytes/token)\n", text_path, len / 1e6, n_ids,
           n_ids ? (double)len / (double)n_ids : 0.0);
    printf("gpt2 encode: median %.1f MB/s over %d runs (min %.1f, max %.1f), one thread\n", mbps[RUNS / 2], RUNS,
           mbps[0], mbps[RUNS - 1]);
    free(text);
    return 0;
}
