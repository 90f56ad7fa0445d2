// attention.c — where reading about attention starts: the table of kinds.
//
// Every kind computes, per head, causal weights A_ij (j <= i) and outputs
// y_i = Σ_j A_ij v_j (docs/attention.md has the definitions and derives every
// forward and backward):
//
//   softmax    A_ij ∝ exp(q_i·k_j/√d)                     attention_softmax.c
//   linear     A_ij ∝ phi(q_i)·phi(k_j), for a feature     attention_linear.c
//              map phi (the map is the kind):              feature_maps.c
//     elu        phi(x) = elu(x) + 1
//     taylor     phi(x) = [1, x', x'⊗x'/√2], x' = x/d^¼  (phi·phi = 1 + s + s²/2;
//                the d(d+1)/2 distinct products are stored, F = 2145 for d = 64)
//     performer  random features m^-½ exp(W x' − ‖x'‖²/2)
//     hedgehog   a learned map [exp(Ux + b), exp(−(Ux + b))], or its two
//                softmax forms (hedgehog_map = softmax | joint)
//     t2r        a learned map relu(Wx + b) (the earlier conversion method)
//
// A row of the table names the kind, its engine and, for the linear kinds,
// its feature map. The model calls only the attn_* functions below, which
// pass each call to the layer's engine.
#include "attention.h"
#include "feature_maps.h"

#include <string.h>

static const AttnKind KINDS[] = {
    {"softmax", NULL, &SOFTMAX_ENGINE, NULL},
    {"elu", NULL, &LINEAR_ENGINE, &ELU_MAP},
    {"taylor", NULL, &LINEAR_ENGINE, &TAYLOR_MAP},
    {"performer", NULL, &LINEAR_ENGINE, &PERFORMER_MAP},
    {"hedgehog", "exp", &LINEAR_ENGINE, &HEDGEHOG_MAP},
    {"hedgehog", "softmax", &LINEAR_ENGINE, &HEDGEHOG_SOFTMAX_MAP},
    {"hedgehog", "joint", &LINEAR_ENGINE, &HEDGEHOG_JOINT_MAP},
    {"t2r", NULL, &LINEAR_ENGINE, &T2R_MAP},
};
enum { N_KINDS = sizeof KINDS / sizeof KINDS[0] };

int attn_kinds(const AttnKind *const **kinds) {
    static const AttnKind *rows[N_KINDS];
    for (int i = 0; i < N_KINDS; i++) rows[i] = &KINDS[i];
    *kinds = rows;
    return N_KINDS;
}

const char *attn_kind_names(void) {
    static char names[256];
    if (!names[0])
        for (int i = 0; i < N_KINDS; i++) {
            if (i && strcmp(KINDS[i].name, KINDS[i - 1].name) == 0) continue;   // variants of one kind
            if (i) strcat(names, "|");
            strcat(names, KINDS[i].name);
        }
    return names;
}

const AttnKind *attn_find(const Config *c) {
    for (int i = 0; i < N_KINDS; i++)
        if (strcmp(KINDS[i].name, c->attention) == 0 && (!KINDS[i].variant || strcmp(KINDS[i].variant, c->hedgehog_map) == 0))
            return &KINDS[i];
    die("attention '%s' is not implemented in this build (available: %s)", c->attention, attn_kind_names());
}

const char *attn_difference(const Config *a, const Config *b, char *buf, size_t n) {
    const AttnKind *k = attn_find(a);
    if (strcmp(a->attention, b->attention) != 0) {
        snprintf(buf, n, "attention = %s", a->attention);
        return buf;
    }
    const char *keys = k->map && k->map->settings ? k->map->settings : "";
    while (*keys) {
        char key[64], va[CONFIG_STR], vb[CONFIG_STR];
        size_t len = strcspn(keys, " ");
        snprintf(key, sizeof key, "%.*s", (int)len, keys);
        keys += len + (keys[len] == ' ');
        config_value(a, key, va, sizeof va);
        config_value(b, key, vb, sizeof vb);
        if (strcmp(va, vb) != 0) {
            snprintf(buf, n, "%s = %s", key, va);
            return buf;
        }
    }
    return NULL;
}

static size_t opt_size(size_t (*f)(const Config *c), const Config *c) { return f ? f(c) : 0; }

size_t attn_n_params(const AttnKind *k, const Config *c) { return k->map ? opt_size(k->map->n_params, c) : 0; }
size_t attn_n_decay(const AttnKind *k, const Config *c) { return k->map ? opt_size(k->map->n_decay, c) : 0; }
size_t attn_n_buffers(const AttnKind *k, const Config *c) { return k->map ? opt_size(k->map->n_buffers, c) : 0; }
size_t attn_act_size(const AttnKind *k, const Config *c, int B, int T) { return k->engine->act_size(k, c, B, T); }
size_t attn_scratch_size(const AttnKind *k, const Config *c, int B, int T) { return k->engine->scratch_size(k, c, B, T); }
size_t attn_state_size(const AttnKind *k, const Config *c, int max_T) { return k->engine->state_size(k, c, max_T); }

void attn_init(AttnLayer *a, Rng *rng) {
    if (a->kind->map && a->kind->map->init) a->kind->map->init(a, rng);
}

void attn_before_step(AttnLayer *a, long step) {
    if (a->kind->map && a->kind->map->before_step) a->kind->map->before_step(a, step);
}

double attn_forward(AttnLayer *a, real *y, const real *qkv, int B, int T) {
    double t0 = now_seconds(), distill = a->kind->engine->forward(a, y, qkv, B, T);
    prof_add(PROF_ATTN_FWD, t0);
    return distill;
}

void attn_backward(AttnLayer *a, real *dqkv, const real *dy, const real *qkv, const real *y, int B, int T,
                   double distill_scale) {
    double t0 = now_seconds();
    a->kind->engine->backward(a, dqkv, dy, qkv, y, B, T, distill_scale);
    prof_add(PROF_ATTN_BWD, t0);
}

void attn_step(AttnLayer *a, real *state, real *y, const real *qkv, int pos) {
    a->kind->engine->step(a, state, y, qkv, pos);
}

void attn_weights(AttnLayer *a, const real *qkv, int B, int T, int b, int h, real *A) {
    a->kind->engine->weights(a, qkv, B, T, b, h, A);
}
