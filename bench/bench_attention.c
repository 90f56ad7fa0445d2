// bench/bench_attention.c — attention alone at long context.
//
//   bench/bench_attention [--min-T N] [--max-T N] [--softmax-max-T N] [--kinds a,b,...]
//                         [--forms quadratic,chunked] [--reps R]
//
// One layer, 12 heads, d = 64, B = 1: forward + backward of every kind and
// form for T = min-T, 2·min-T, ..., max-T (softmax up to softmax-max-T: its
// cost grows as T², so long contexts take minutes). With --reps 1 there is no
// warm-up run. Prints the median time per token and
// the peak resident memory of the process that ran the point (each point
// runs in its own child process, so peaks do not mix).
#include "../attention.h"
#include "../config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { NH = 12, HS = 64, C = NH * HS };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Median seconds of forward + backward for one kind/form at length T.
static double time_point(const AttnKind *k, Config *cfg, int T, int reps) {
    AttnLayer a = {.kind = k, .cfg = cfg, .layer = 0, .C = C, .NH = NH, .hs = HS};
    a.params = xcalloc(attn_n_params(k, cfg) + 1, sizeof(real), "params");
    a.grads = xcalloc(attn_n_params(k, cfg) + 1, sizeof(real), "grads");
    a.buffers = xcalloc(attn_n_buffers(k, cfg) + 1, sizeof(real), "buffers");
    a.acts = xcalloc(attn_act_size(k, cfg, 1, T) + 1, sizeof(real), "acts");
    a.scratch = xcalloc(attn_scratch_size(k, cfg, 1, T) + 1, sizeof(real), "scratch");
    Rng rng;
    rng_seed(&rng, 1);
    attn_init(&a, &rng);
    size_t n = (size_t)T * 3 * C;
    real *qkv = xmalloc(n * sizeof(real), "qkv"), *dqkv = xcalloc(n, sizeof(real), "dqkv");
    real *y = xmalloc((size_t)T * C * sizeof(real), "y"), *dy = xmalloc((size_t)T * C * sizeof(real), "dy");
    for (size_t i = 0; i < n; i++) qkv[i] = (real)rng_normal(&rng);
    for (size_t i = 0; i < (size_t)T * C; i++) dy[i] = (real)rng_normal(&rng);
    double *t = xmalloc((size_t)reps * sizeof(double), "timings");
    for (int r = reps > 1 ? -1 : 0; r < reps; r++) {
        double t0 = now_seconds();
        attn_forward(&a, y, qkv, 1, T);
        attn_backward(&a, dqkv, dy, qkv, y, 1, T, 0);
        if (r >= 0) t[r] = now_seconds() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    return t[reps / 2];
}

int main(int argc, char **argv) {
    int min_T = 512, max_T = 16384, softmax_max_T = 4096, reps = 3;
    const char *only = NULL, *only_forms = NULL;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) die("%s needs a value", argv[i]);
        if (strcmp(argv[i], "--min-T") == 0) min_T = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--max-T") == 0) max_T = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--forms") == 0) only_forms = argv[i + 1];
        else if (strcmp(argv[i], "--softmax-max-T") == 0) softmax_max_T = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0) reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--kinds") == 0) only = argv[i + 1];
        else die("unknown option '%s' (--min-T, --max-T, --softmax-max-T, --kinds, --forms, --reps)", argv[i]);
    }
    if (reps < 1 || min_T < 1) die("--reps and --min-T must be at least 1");
    printf("attention forward+backward, B=1, %d heads, d=%d, %d threads, %s; median of %d\n", NH, HS, n_threads(), REAL_NAME, reps);
    printf("%-18s %-10s %7s %12s %12s\n", "kind", "form", "T", "us/token", "peak MiB");
    const AttnKind *const *kinds;
    int n_kinds = attn_kinds(&kinds);
    for (int k = 0; k < n_kinds; k++) {
        if (only && !strstr(only, kinds[k]->name)) continue;
        int is_softmax = strcmp(kinds[k]->name, "softmax") == 0;
        // Hedgehog's map variants are rows of their own: "hedgehog/joint".
        char label[64];
        snprintf(label, sizeof label, "%s%s%s", kinds[k]->name, kinds[k]->variant ? "/" : "",
                 kinds[k]->variant ? kinds[k]->variant : "");
        const char *forms[] = {"quadratic", "chunked"};
        for (int f = 0; f < (is_softmax ? 1 : 2); f++) {
            if (!is_softmax && only_forms && !strstr(only_forms, forms[f])) continue;
            for (int T = min_T; T <= (is_softmax ? softmax_max_T : max_T); T *= 2) {
                Config cfg;
                config_defaults(&cfg);
                strcpy(cfg.attention, kinds[k]->name);
                strcpy(cfg.attention_form, forms[f]);
                if (kinds[k]->variant) strcpy(cfg.hedgehog_map, kinds[k]->variant);
                cfg.n_head = NH; cfg.n_embd = C; cfg.n_layer = 1; cfg.seq_len = T;
                fflush(stdout);
                int fd[2];
                if (pipe(fd) != 0) die("pipe failed");
                pid_t pid = fork();
                if (pid == 0) {  // child: time the point, report seconds and its own peak RSS
                    double out[2] = {time_point(kinds[k], &cfg, T, reps), 0};
                    struct rusage ru;
                    getrusage(RUSAGE_SELF, &ru);
                    out[1] = ru.ru_maxrss / 1024.0;
                    if (write(fd[1], out, sizeof out) != sizeof out) _exit(1);
                    _exit(0);
                }
                close(fd[1]);
                double res[2] = {-1, -1};
                ssize_t got = read(fd[0], res, sizeof res);
                close(fd[0]);
                int status;
                waitpid(pid, &status, 0);
                if (got != sizeof res || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                    printf("%-18s %-10s %7d   (failed)\n", label, is_softmax ? "flash" : forms[f], T);
                else
                    printf("%-18s %-10s %7d %12.2f %12.1f\n", label, is_softmax ? "flash" : forms[f], T,
                           1e6 * res[0] / T, res[1]);
            }
        }
    }
    return 0;
}
