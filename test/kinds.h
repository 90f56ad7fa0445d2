// test/kinds.h — the rows of the attention table as the tests run them.
#ifndef TEST_KINDS_H
#define TEST_KINDS_H

#include <stdio.h>
#include <string.h>

#include "../attention.h"

// A config's attention keys set to table row k.
static inline void kind_config(Config *c, const AttnKind *k) {
    snprintf(c->attention, sizeof c->attention, "%s", k->name);
    if (k->variant) snprintf(c->hedgehog_map, sizeof c->hedgehog_map, "%s", k->variant);
}

// "hedgehog:softmax", or the bare name for rows without a variant.
static inline const char *kind_label(const AttnKind *k, char *buf, size_t n) {
    snprintf(buf, n, "%s%s%s", k->name, k->variant ? ":" : "", k->variant ? k->variant : "");
    return buf;
}

// The same row as ./train arguments.
static inline const char *kind_args(const AttnKind *k, char *buf, size_t n) {
    snprintf(buf, n, "attention=%s%s%s", k->name, k->variant ? " hedgehog_map=" : "", k->variant ? k->variant : "");
    return buf;
}

#endif
