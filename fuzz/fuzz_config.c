// fuzz/fuzz_config.c — the config parser on arbitrary text.
// Oracle: no crash or sanitizer report; a text that is accepted echoes
// (config_write) to a text that loads back to the very same settings.
#include "harness.h"
#include "../config.h"

#include <stdlib.h>
#include <string.h>

typedef struct { Config *c; const char *text; } Job;

static void load(void *arg) {
    Job *j = arg;
    config_load_text(j->c, j->text, "fuzz");
    config_validate(j->c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    Config c;
    config_defaults(&c);
    Job j = {&c, text};
    if (fuzz_call(load, &j)) {
        char *echo = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&echo, &len);
        config_write(&c, f);
        fclose(f);
        Config d;
        config_defaults(&d);
        Job k = {&d, echo};
        FUZZ_ASSERT(fuzz_call(load, &k), "the echo of an accepted config is rejected");
        FUZZ_ASSERT(memcmp(&c, &d, sizeof c) == 0, "the echo of an accepted config loads different settings");
        free(echo);
    }
    free(text);
    return 0;
}
