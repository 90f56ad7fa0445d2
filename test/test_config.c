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

// The echo shows numbers as written: the shortest form that reads back to
// the same double (min_lr = 0.0002, not 0.00020000000000000001), and every
// value of every key survives the round trip.
static void test_echo_digits(void) {
    Config c, d;
    config_defaults(&c);
    config_load_text(&c, "lr = 3e-4\nmin_lr = 0.0002\nweight_decay = 0.1\nbeta2 = 0.999\ngrad_clip = 0.30000000000000004\n"
                         "adam_eps = 1e-8\ndistill_weight = 2.5\n", "t.conf");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_write(&c, f);
    fclose(f);
    CHECK(strstr(text, "min_lr = 0.0002\n") && strstr(text, "lr = 0.0003\n") && strstr(text, "weight_decay = 0.1\n") &&
          strstr(text, "beta2 = 0.999\n") && strstr(text, "adam_eps = 1e-08\n"), "values as written:\n%s", text);
    CHECK(strstr(text, "grad_clip = 0.30000000000000004\n") != NULL, "a value that needs 17 digits keeps them");
    int long_tail = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const char *v = strstr(line, " = ");
        if (v && strncmp(line, "grad_clip", 9) != 0 && strspn(v + 3, "0123456789.e+-") == strlen(v + 3) && strlen(v + 3) > 12)
            long_tail = 1, printf("  long number: %s\n", line);
    }
    CHECK(!long_tail, "no number in the echo has a long float tail");
    free(text);
    text = NULL;
    f = open_memstream(&text, &len);
    config_write(&c, f);
    fclose(f);
    config_defaults(&d);
    config_load_text(&d, text, "echo");
    CHECK(memcmp(&c, &d, sizeof c) == 0, "every key's value reads back identically");
    free(text);
}

int main(void) {
    test_echo_digits();
    test_parse_and_echo();
    test_rejections();
    return test_summary("test_config");
}
