// sample.c — generate text from a checkpoint.
//
//   ./sample CKPT [-n TOKENS] [-t TEMPERATURE] [-k TOP_K] [-s SEED] [-p PROMPT] [-i IDS]
//
// Text is encoded and decoded with the tokenizer the checkpoint's config
// names (`tokenizer`, `tokenizer_dir`); -i prints ids instead of text.
// The model is rebuilt from the configuration saved in the checkpoint and
// runs one token at a time: attention in its recurrent form (KV cache for
// softmax, the (S, z) state for linear kinds), so each token costs the same
// however long the context is. The model has seq_len learned positions; when
// the text outgrows them, generation continues from the last seq_len/2
// tokens, re-read at positions 0.. (a sliding window).
#include "data/tokenizer.h"
#include "checkpoint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: ./sample CKPT [-n TOKENS] [-t TEMPERATURE] [-k TOP_K] [-s SEED] [-p PROMPT] [-i 0|1]\n"
           "  -n  tokens to generate (default 200; beyond seq_len the context slides)\n"
           "  -t  temperature (default 0.8; 0 = greedy)\n"
           "  -k  sample among the k most likely tokens (default 40; 0 = all)\n"
           "  -s  random seed (default 1)\n"
           "  -p  prompt text (default: <|endoftext|> for GPT-2, a newline for bytes)\n"
           "  -i  1: read -p as comma-separated ids and print ids, not text (no tokenizer needed)\n");
}

// Sample an id from logits[0..V) with temperature and top-k.
static int pick(const real *logits, int V, double temperature, int top_k, Rng *rng, double *prob) {
    if (temperature <= 0) {
        int best = 0;
        for (int i = 1; i < V; i++) best = logits[i] > logits[best] ? i : best;
        return best;
    }
    // Threshold = the k-th largest logit (a partial selection over a copy).
    real threshold = -INFINITY;
    if (top_k > 0 && top_k < V) {
        real *tmp = xmalloc((size_t)V * sizeof(real), "top-k");
        memcpy(tmp, logits, (size_t)V * sizeof(real));
        for (int k = 0; k < top_k; k++) {
            int best = k;
            for (int i = k + 1; i < V; i++) best = tmp[i] > tmp[best] ? i : best;
            real t = tmp[k]; tmp[k] = tmp[best]; tmp[best] = t;
        }
        threshold = tmp[top_k - 1];
        free(tmp);
    }
    real mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < V; i++) prob[i] = logits[i] >= threshold ? exp((logits[i] - mx) / temperature) : 0;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += prob[i];
    double u = rng_uniform(rng) * sum;
    for (int i = 0; i < V; i++) {
        u -= prob[i];
        if (u < 0) return i;
    }
    return V - 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage();
        return argc < 2;
    }
    const char *ckpt = argv[1], *prompt = NULL;
    int n = 200, top_k = 40;
    double temperature = 0.8;
    long seed = 1;
    int ids_only = 0;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc || argv[i][0] != '-' || strlen(argv[i]) != 2) { usage(); die("bad argument '%s'", argv[i]); }
        const char *v = argv[++i];
        switch (argv[i - 1][1]) {
        case 'n': n = atoi(v); break;
        case 't': temperature = atof(v); break;
        case 'k': top_k = atoi(v); break;
        case 's': seed = atol(v); break;
        case 'p': prompt = v; break;
        case 'i': ids_only = atoi(v); break;
        default: usage(); die("unknown option '%s'", argv[i - 1]);
        }
    }
    GPT2 m;
    model_from_checkpoint(&m, ckpt);
    const Config c = m.cfg;
    if (n < 1) die("-n %d: give a positive number of tokens to generate", n);

    Tokenizer *tok = ids_only ? NULL : tokenizer_load(c.tokenizer, c.tokenizer_dir);
    if (tok && tokenizer_vocab_size(tok) != m.V)
        die("the checkpoint's vocab_size is %d but tokenizer '%s' has %d ids: sample with -i 1", m.V, c.tokenizer,
            tokenizer_vocab_size(tok));
    // The prompt (its last seq_len tokens at most), then n generated ones.
    int cap = m.maxT + n, n_prompt = 0;
    int *tokens = xmalloc((size_t)cap * sizeof(int), "tokens");
    if (prompt && ids_only) {
        for (const char *p = prompt; *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p)) {
            if (n_prompt == m.maxT) memmove(tokens, tokens + 1, (size_t)--n_prompt * sizeof(int));
            tokens[n_prompt++] = atoi(p);
        }
    } else if (prompt) {
        TokenBuf buf = {0};
        tokenizer_encode(tok, prompt, strlen(prompt), 1, &buf);
        size_t skip = buf.n > (size_t)m.maxT ? buf.n - (size_t)m.maxT : 0;
        for (size_t i = skip; i < buf.n; i++) tokens[n_prompt++] = buf.ids[i];
        free(buf.ids);
    }
    if (n_prompt == 0) tokens[n_prompt++] = m.V == 50257 ? 50256 : '\n';
    for (int i = 0; i < n_prompt; i++)
        if (tokens[i] < 0 || tokens[i] >= m.V) die("prompt id %d is outside the vocabulary [0, %d)", tokens[i], m.V);
    Rng rng;
    rng_seed(&rng, (uint64_t)seed);
    real *logits = xmalloc((size_t)m.Vp * sizeof(real), "logits");
    GenState *state = model_state_alloc(&m);
    double *prob = xmalloc((size_t)m.V * sizeof(double), "probabilities");
    int total = n_prompt + n, start = 0;   // tokens[start..] are at positions 0..
    char text[TOKEN_MAX_BYTES];
    for (int t = 0; t < total; t++) {
        if (t - start == m.maxT) {   // out of positions: re-read the last half at 0..
            start = t - m.maxT / 2;
            model_state_free(state);
            state = model_state_alloc(&m);
            for (int u = start; u < t; u++) model_step(&m, state, tokens[u], u - start, logits);
        }
        if (tok) fwrite(text, 1, tokenizer_decode(tok, tokens[t], text), stdout);
        else printf(t ? ",%d" : "%d", tokens[t]);
        model_step(&m, state, tokens[t], t - start, logits);
        if (t + 1 < total && t + 1 >= n_prompt) tokens[t + 1] = pick(logits, m.V, temperature, top_k, &rng, prob);
        fflush(stdout);
    }
    printf("\n");
    free(tokens); free(logits); free(prob);
    model_state_free(state);
    if (tok) tokenizer_free(tok);
    model_free(&m);
    return 0;
}
