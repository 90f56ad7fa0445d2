// test_config.c — the config table: defaults, files, overrides, and every
// rejection with a message that names the place and the key.
#include "test.h"
#include "../config.h"
#include "../common.h"

#include <stdlib.h>

static void load_text(void *text) {
    Config c;
    config_defaults(&c);
    config_load_text(&c, (const char *)text, "test.conf");
    config_validate(&c);
}

static void set_arg(void *arg) {
    Config c;
    config_defaults(&c);
    config_set_arg(&c, (const char *)arg);
    config_validate(&c);
}

static void load_missing(void *path) {
    Config c;
    config_defaults(&c);
    config_load_file(&c, (const char *)path);
}

// Each bad input and a fragment of the one line it must produce.
static const struct { const char *text, *expect; } BAD_TEXT[] = {
    {"n_layer = 4\nfoo = 3\n", "test.conf:2: unknown key 'foo'"},
    {"n_layer = four\n", "test.conf:1: n_layer = 'four' is not a number"},
    {"n_layer = 2.5\n", "n_layer = '2.5' must be a whole number"},
    {"n_layer = 0\n", "test.conf:1: n_layer = 0 is out of range"},
    {"lr = -1\n", "lr = -1 is out of range"},
    {"lr = nan\n", "lr = 'nan' is not a number"},
    {"lr = 1e999\n", "lr = '1e999' is not a number"},
    {"n_layer = 2\nn_layer = 3\n", "test.conf:2: key 'n_layer' is set twice"},
    {"attention = quantum\n", "attention = 'quantum' is not one of softmax|elu|taylor|performer|hedgehog"},
    {"just words\n", "test.conf:1: expected 'key = value'"},
    {"\n# only a comment\n", "sets no keys"},
    {"", "sets no keys"},
    {"n_layer = \x01\x02\n", "binary data"},
    {"n_layer =\n", "n_layer has no value"},
    {"n_embd = 100\nn_head = 3\n", "n_embd = 100 is not divisible by n_head = 3"},
    {"lr = 1e-4\nmin_lr = 1e-3\n", "min_lr"},
};

static void test_rejections(void) {
    for (size_t i = 0; i < sizeof BAD_TEXT / sizeof BAD_TEXT[0]; i++)
        CHECK(expect_die(load_text, (void *)BAD_TEXT[i].text, BAD_TEXT[i].expect), "bad config #%zu: %s", i, BAD_TEXT[i].expect);
    CHECK(expect_die(set_arg, "n_head", "expected key=value"), "override without =");
    CHECK(expect_die(set_arg, "nope=1", "argument 'nope=1': unknown key 'nope'"), "unknown override");
    CHECK(expect_die(set_arg, "seq_len=-5", "seq_len = -5 is out of range"), "out-of-range override");
    CHECK(expect_die(load_missing, "/nonexistent/x.conf", "cannot open '/nonexistent/x.conf'"), "missing file");
}

static void test_parse_and_echo(void) {
    Config c, d;
    config_defaults(&c);
    CHECK(c.n_layer == 4 && c.vocab_size == 50257 && c.lr == 6e-4, "defaults from the table");
    config_load_text(&c, "# a comment\n attention = hedgehog  # trailing\nn_layer=2\r\nlr = 1e-3\nout_dir = a b/c\n", "t.conf");
    config_set_arg(&c, "seed=7");
    CHECK(strcmp(c.attention, "hedgehog") == 0, "choice value");
    CHECK(c.n_layer == 2 && c.lr == 1e-3 && c.seed == 7, "numbers and override");
    CHECK(strcmp(c.out_dir, "a b/c") == 0, "strings keep inner spaces");
    // The echoed config loads back to the same settings, field for field.
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_write(&c, f);
    fclose(f);
    config_defaults(&d);
    config_load_text(&d, text, "echo");
    CHECK(memcmp(&c, &d, sizeof c) == 0, "config_write output reloads identically");
    free(text);
    config_defaults(&c);
    CHECK(config_performer_m(&c) == 266, "Performer m = round(64 ln 64) = 266 for d = 64, got %d", config_performer_m(&c));
}

int main(void) {
    test_parse_and_echo();
    test_rejections();
    return test_summary("test_config");
}
