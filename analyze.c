// analyze.c — how a trained model attends, against softmax on the same q, k.
//
//   ./analyze CKPT TOKENS.bin [--seqs N] [--heat N] [--out DIR]
//
// Runs the model on the first N (default 4) seq_len windows of TOKENS.bin and,
// for every layer and head, averages over sequences and query rows i ≥ 1:
//   entropy   of the model's attention row (low = spiky), and of softmax's;
//   KL        KL(softmax ‖ model) of the rows (0 for a softmax model);
//   spearman  rank correlation of q·k scores with the model's weights
//             (1 = monotone in the dot product, as softmax always is).
// Prints a table, writes DIR/analysis.csv (default DIR = the checkpoint's
// directory), and DIR/attn_l<L>_h<H>.svg: the first sequence's first --heat
// (default 32) rows, softmax beside the model's own weights.
//
// The model's weights come from its kind's `weights` function (attention.h);
// the softmax teacher is computed here from the same qkv.
#include "analysis.h"
#include "data/shard.h"
#include "checkpoint.h"
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double entropy, entropy_soft, kl, spearman;
    long rows;
} HeadStats;

// Softmax attention of head h, sequence b: A (T,T) row-major, zero above the diagonal.
static void softmax_weights(const real *qkv, int T, int C, int hs, int b, int h, double *A) {
    double scale = 1 / sqrt((double)hs);
    for (int i = 0; i < T; i++) {
        const real *q = qkv + ((size_t)b * T + i) * 3 * C + (size_t)h * hs;
        double *row = A + (size_t)i * T, mx = -INFINITY, sum = 0;
        for (int j = 0; j < T; j++) {
            if (j > i) { row[j] = 0; continue; }
            const real *k = qkv + ((size_t)b * T + j) * 3 * C + C + (size_t)h * hs;
            double s = 0;
            for (int d = 0; d < hs; d++) s += (double)q[d] * k[d];
            row[j] = s * scale;
            mx = row[j] > mx ? row[j] : mx;
        }
        for (int j = 0; j <= i; j++) sum += row[j] = exp(row[j] - mx);
        for (int j = 0; j <= i; j++) row[j] /= sum;
    }
}

static void heatmap(const char *dir, int l, int h, const char *kind, const double *S, const double *A, int T, int n) {
    double *a = xmalloc((size_t)n * n * 2 * sizeof *a, "heatmap"), *s = a + (size_t)n * n, vmax = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            s[i * n + j] = S[(size_t)i * T + j];
            a[i * n + j] = A[(size_t)i * T + j];
            vmax = fmax(vmax, fmax(s[i * n + j], a[i * n + j]));
        }
    char path[4096], title[128], label[64];
    snprintf(path, sizeof path, "%s/attn_l%d_h%d.svg", dir, l, h);
    snprintf(title, sizeof title, "layer %d, head %d: first %d positions (rows = queries)", l, h, n);
    snprintf(label, sizeof label, "%s (the model)", kind);
    PlotPanel p[2] = {{"softmax of the same q, k", s, n, n, 0, vmax}, {label, a, n, n, 0, vmax}};
    plot_heatmaps_svg(path, title, p, 2);
    free(a);
}

int main(int argc, char **argv) {
    const char *usage = "usage: ./analyze CKPT TOKENS.bin [--seqs N] [--heat N] [--out DIR]";
    if (argc < 3) die("%s", usage);
    const char *ckpt = argv[1], *tokens_path = argv[2];
    int n_seqs = 4, heat = 32;
    char out[2048];
    snprintf(out, sizeof out, "%s", ckpt);
    char *slash = strrchr(out, '/');
    if (slash) *slash = '\0';
    else strcpy(out, ".");
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc) die("argument '%s' needs a value: %s", argv[i], usage);
        if (strcmp(argv[i], "--seqs") == 0 && (n_seqs = atoi(argv[i + 1])) > 0) i++;
        else if (strcmp(argv[i], "--heat") == 0 && (heat = atoi(argv[i + 1])) > 0) i++;
        else if (strcmp(argv[i], "--out") == 0 && strlen(argv[i + 1]) < sizeof out) snprintf(out, sizeof out, "%s", argv[++i]);
        else die("argument '%s %s': %s", argv[i], argv[i + 1], usage);
    }
    GPT2 m;
    model_from_checkpoint(&m, ckpt);
    const Config c = m.cfg;
    int T = c.seq_len, B = n_seqs, C = m.C, hs = m.hs;
    if (heat > T) heat = T;
    size_t n_tok;
    uint16_t *tok = shard_read(tokens_path, &n_tok, c.vocab_size);
    if (n_tok < (size_t)B * T) die("%s: %zu tokens, fewer than --seqs %d × seq_len %d", tokens_path, n_tok, B, T);
    int *in = xmalloc((size_t)B * T * sizeof *in, "tokens");
    for (size_t i = 0; i < (size_t)B * T; i++) in[i] = tok[i];
    model_forward(&m, in, NULL, B, T);

    double *S = xmalloc((size_t)T * T * 2 * sizeof *S, "attention matrices"), *A = S + (size_t)T * T;
    real *Ar = xmalloc((size_t)T * T * sizeof *Ar, "kind's attention");
    double *scores = xmalloc((size_t)T * sizeof *scores, "scores");
    HeadStats *st = xcalloc((size_t)m.L * m.NH, sizeof *st, "head stats");
    make_dirs(out);
    for (int l = 0; l < m.L; l++) {
        const real *qkv = m.qkv + (size_t)l * B * T * 3 * C;
        for (int h = 0; h < m.NH; h++) {
            HeadStats *hd = &st[l * m.NH + h];
            for (int b = 0; b < B; b++) {
                softmax_weights(qkv, T, C, hs, b, h, S);
                attn_weights(&m.alayer[l], qkv, B, T, b, h, Ar);
                for (size_t i = 0; i < (size_t)T * T; i++) A[i] = Ar[i];
                for (int i = 1; i < T; i++) {
                    const double *s = S + (size_t)i * T, *a = A + (size_t)i * T;
                    // log of the softmax weights = the scaled scores up to a
                    // per-row constant: the scores' order, without recomputing them.
                    for (int j = 0; j <= i; j++) scores[j] = log(s[j]);
                    double rho = attn_spearman(scores, a, i + 1);
                    hd->entropy += attn_entropy(a, i + 1);
                    hd->entropy_soft += attn_entropy(s, i + 1);
                    hd->kl += attn_kl(s, a, i + 1);
                    hd->spearman += isnan(rho) ? 0 : rho;
                    hd->rows++;
                }
                if (b == 0) heatmap(out, l, h, c.attention, S, A, T, heat);
            }
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/analysis.csv", out);
    FILE *f = xfopen(path, "w");
    fprintf(f, "layer,head,entropy,entropy_softmax,kl_softmax_model,spearman\n");
    printf("%s (%s), %d × %d tokens of %s; means over query rows 1..%d\n", ckpt, c.attention, B, T, tokens_path, T - 1);
    printf("layer head  entropy  softmax-entropy  KL(soft||model)  spearman\n");
    double tot[4] = {0};
    for (int i = 0; i < m.L * m.NH; i++) {
        HeadStats *hd = &st[i];
        double v[4] = {hd->entropy / hd->rows, hd->entropy_soft / hd->rows, hd->kl / hd->rows, hd->spearman / hd->rows};
        fprintf(f, "%d,%d,%.6f,%.6f,%.6f,%.6f\n", i / m.NH, i % m.NH, v[0], v[1], v[2], v[3]);
        printf("%5d %4d  %7.4f  %15.4f  %15.4f  %8.4f\n", i / m.NH, i % m.NH, v[0], v[1], v[2], v[3]);
        for (int k = 0; k < 4; k++) tot[k] += v[k] / (m.L * m.NH);
    }
    printf("mean        %7.4f  %15.4f  %15.4f  %8.4f\n", tot[0], tot[1], tot[2], tot[3]);
    xfclose(f, path);
    printf("wrote %s and %d heatmaps attn_l*_h*.svg in %s\n", path, m.L * m.NH, out);
    free(st);
    free(scores);
    free(Ar);
    free(S);
    free(in);
    free(tok);
    model_free(&m);
    return 0;
}
