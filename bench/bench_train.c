// bench/bench_train.c — full training-step throughput and where the time goes.
//
//   bench/bench_train [--preset gpt2s|small|all] [--attention KIND] [--steps N] [key=value ...]
//
// For each preset: median ms per step (forward + backward + AdamW) after a
// warm-up step, tokens/s, achieved GFLOP/s and MFU against the FMA peak this
// program measures on this machine in the same run, and the median time per
// layer type. key=value arguments override the preset (any ./train key).
#include "../model.h"
#include "peak.h"

#include <stdlib.h>
#include <string.h>

typedef struct { const char *name, *desc; int L, NH, C, T, B, V; } Preset;
static const Preset PRESETS[] = {
    {"gpt2s", "GPT-2 small", 12, 12, 768, 64, 4, 50257},
    {"small", "small reproduction", 4, 4, 256, 256, 4, 50257},
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

// Model FLOPs of one step (the PaLM convention): every matmul counts 2·m·n·k
// forward and twice that backward; causal softmax attention counts its two
// T×T×d products (half of each, by causality), forward and backward alike.
// The same figure is used for every attention kind, so MFU compares speed.
static double step_flops(const GPT2 *m, int B, int T) {
    double BT = (double)B * T, C = m->C, L = m->L;
    double mm = L * (2 * BT * C * 3 * C + 2 * BT * C * C + 2 * 2 * BT * C * 4 * C) + 2 * BT * C * m->Vp;
    double attn = L * B * m->NH * 2.0 * (2.0 * T * (T + 1) / 2 * m->hs);
    return 3 * (mm + attn);
}

// Bytes the optimizer must move per parameter: the norm reads g; AdamW reads
// θ, g, m, v and writes them back (g as zeros for the next step).
enum { OPT_BYTES_PER_PARAM = 4 + 16 + 16 };

static void run(const Preset *p, const char *attention, int steps, int argc, char **argv, double peak, double bw) {
    Config c;
    config_defaults(&c);
    strcpy(c.attention, attention);
    c.n_layer = p->L; c.n_head = p->NH; c.n_embd = p->C; c.seq_len = p->T; c.vocab_size = p->V;
    c.batch_size = p->B;
    for (int i = 0; i < argc; i++) config_set_arg(&c, argv[i]);
    int B = c.batch_size, T = c.seq_len;
    GPT2 m;
    model_init(&m, &c);
    int *in = xmalloc((size_t)B * T * sizeof(int), "tokens"), *tgt = xmalloc((size_t)B * T * sizeof(int), "targets");
    Rng rng;
    rng_seed(&rng, 1);
    for (int i = 0; i < B * T; i++) { in[i] = (int)rng_below(&rng, (uint64_t)m.V); tgt[i] = (int)rng_below(&rng, (uint64_t)m.V); }
    double *total = xmalloc((size_t)steps * sizeof(double), "timings"), *parts = xmalloc((size_t)steps * N_PROF * sizeof(double), "timings");
    for (int s = -1; s < steps; s++) {  // step -1 warms caches and allocates activations
        memset(prof_seconds, 0, sizeof prof_seconds);
        double t0 = now_seconds();
        model_begin_step(&m);   // as train.c does (Performer redraws here)
        model_forward(&m, in, tgt, B, T);
        model_backward(&m, 1.0);
        model_adamw(&m, 1e-4, model_grad_norm(&m));
        if (s < 0) continue;
        total[s] = now_seconds() - t0;
        for (int k = 0; k < N_PROF; k++) parts[k * steps + s] = prof_seconds[k];
    }
    double ms = 1e3 * median(total, steps), flops = step_flops(&m, B, T);
    printf("\n%s (%d layers, %d heads, %d wide, vocab %d), B=%d, T=%d | attention %s | %zu parameters | %d threads\n",
           p->desc, m.L, m.NH, m.C, m.V, B, T, attention, m.n_params, n_threads());
    printf("  step: %.1f ms (median of %d) | %.0f tokens/s | %.1f GFLOP/s | MFU %.1f%% of %.1f GFLOP/s measured peak\n",
           ms, steps, B * T / (ms / 1e3), flops / (ms / 1e3) / 1e9, 100 * flops / (ms / 1e3) / 1e9 / peak, peak);
    printf("  %-16s %10s %7s\n", "layer type", "ms", "share");
    for (int k = 0; k < N_PROF; k++) {
        double t = 1e3 * median(parts + (size_t)k * steps, steps);
        printf("  %-16s %10.2f %6.1f%%\n", prof_names[k], t, 100 * t / ms);
    }
    // What this machine allows at best: every FLOP at the FMA peak and the
    // optimizer's bytes at the measured memory bandwidth.
    double opt_ms = 1e3 * OPT_BYTES_PER_PARAM * (double)m.n_params / (bw * 1e9);
    double best_ms = 1e3 * flops / (peak * 1e9) + opt_ms;
    printf("  bounds: optimizer >= %.1f ms (%d B/param at %.1f GB/s measured); step >= %.1f ms, so MFU <= %.1f%%\n",
           opt_ms, OPT_BYTES_PER_PARAM, bw, best_ms, 100 * (1e3 * flops / (peak * 1e9)) / best_ms);
    free(in); free(tgt); free(total); free(parts);
    model_free(&m);
}

int main(int argc, char **argv) {
    const char *preset = "all", *attention = "softmax";
    int steps = 5, i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc) die("%s needs a value (see the comment at the top of bench/bench_train.c)", argv[i]);
        if (strcmp(argv[i], "--preset") == 0) preset = argv[i + 1];
        else if (strcmp(argv[i], "--attention") == 0) attention = argv[i + 1];
        else if (strcmp(argv[i], "--steps") == 0) steps = atoi(argv[i + 1]);
        else die("unknown option '%s' (use --preset, --attention, --steps, then key=value)", argv[i]);
    }
    if (steps < 1) die("--steps must be at least 1");
    double peak = measure_fma_peak_gflops(n_threads());
    double bw = measure_update_gbps(n_threads());
    printf("measured FMA peak: %.1f GFLOP/s with %d threads (%s) | memory bandwidth (in-place update): %.1f GB/s\n", peak,
           n_threads(), REAL_NAME, bw);
    int ran = 0;
    for (size_t k = 0; k < sizeof PRESETS / sizeof PRESETS[0]; k++)
        if (strcmp(preset, "all") == 0 || strcmp(preset, PRESETS[k].name) == 0) {
            run(&PRESETS[k], attention, steps, argc - i, argv + i, peak, bw);
            ran = 1;
        }
    if (!ran) die("unknown preset '%s' (gpt2s, small or all)", preset);
    return 0;
}
