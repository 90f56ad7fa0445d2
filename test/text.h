// test/text.h — byte-level train/val shards from the first real text found,
// for the tests that train: the project's own Brown data (`make data`), else
// ../shared/data. Never committed text; tests skip when there is none.
#ifndef TEST_TEXT_H
#define TEST_TEXT_H

#include <stdlib.h>

#include "../common.h"
#include "../data/shard.h"

// Write the first max_bytes of the text as train (90%) and val (10%) shards.
// Returns 1 when real text was found, 0 otherwise.
static inline int make_byte_shards(const char *train_path, const char *val_path, size_t max_bytes) {
    const char *candidates[] = {"data/brown/brown_detagged.txt", "../shared/data/tinyshakespeare/input.txt",
                                "../shared/data/brown/brown_detagged.txt"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        if (!file_exists(candidates[i])) continue;
        size_t len;
        char *text = read_file(candidates[i], &len);
        if (len > max_bytes) len = max_bytes;
        uint16_t *tok = xmalloc(len * sizeof(uint16_t), "tokens");
        for (size_t k = 0; k < len; k++) tok[k] = (unsigned char)text[k];
        size_t n_val = len / 10;
        shard_write(train_path, tok, len - n_val);
        shard_write(val_path, tok + len - n_val, n_val);
        free(tok);
        free(text);
        printf("real text: %s (%zu bytes)\n", candidates[i], len);
        return 1;
    }
    return 0;
}

#endif
