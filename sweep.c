// sweep.c — run a grid of training runs and tabulate and plot their results.
//
//   ./sweep FILE.sweep [--train PATH] [--dry-run]
//
// A sweep file is `key = value` lines with # comments:
//
//   base  = configs/small-softmax.conf   the config every run starts from (required)
//   out   = out/sweeps/small             where runs and results go (required)
//   train = ./train                      the trainer (optional; --train overrides)
//   attention = softmax, elu, taylor     a grid axis: any config key, values
//   seed = 1, 2                           separated by commas (one value = fixed)
//   point = attention=hedgehog distill_weight=1
//                                        one explicit variant: key=value pairs
//
// The runs are every variant (each `point` line; one empty variant when there
// are none) crossed with every combination of the grid axes. So `point` lines
// give combinations a grid cannot (distillation only for hedgehog) and the
// axes multiply them (seeds). A key may not be both an axis and in a point.
//
// Every run gets out/<name>, where <name> joins the keys whose value differs
// between runs as key-value with `_` (e.g. attention-elu_seed-2). The runs go
// one after another: the trainer is run as `TRAIN BASE key=value... out_dir=DIR`
// with its output in DIR/train.log. A run that exits 0 gets a DIR/done marker;
// a rerun of the sweep skips those, and continues an interrupted one from its
// checkpoint (resume=1). After every run out/results.csv, out/results.md and
// out/val_loss.svg are rewritten from what the finished runs left on disk.
//
// Every value is checked by the config parser, and every run's whole
// configuration (cross-field rules, data files) before anything runs.
#include "common.h"
#include "config.h"
#include "data/shard.h"
#include "plot.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_OVERRIDES 64
#define MAX_RUNS 4096

typedef struct {
    char key[64];
    char value[CONFIG_STR];
} Override;

typedef struct {
    Override o[MAX_OVERRIDES];
    int n;
    int line;  // of its `point` line (0 for the implicit empty variant)
} Variant;

typedef struct {
    char key[64];
    char **values;
    int n, line;
} Axis;

typedef struct {
    Variant v;       // the overrides, variant's first
    char name[1024];
} RunSpec;

typedef struct {
    const char *path;
    char base[CONFIG_STR], out[CONFIG_STR], train[CONFIG_STR];
    Variant *variants;
    int n_variants;
    Axis axes[MAX_OVERRIDES];
    int n_axes;
    RunSpec *runs;
    int n_runs;
} Sweep;

// What a finished run left on disk.
typedef struct {
    int done;
    long steps, params;
    double val_loss, val_ppl, tok_s, train_s, wall_s;
    double *eval_step, *eval_loss;  // the validation curve
    int n_evals;
} Result;

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) *--e = '\0';
    return s;
}

// Check one key = value with the config parser, so that the message names the
// sweep file and line: the text is padded with line-1 empty lines, which makes
// the parser's own "file:line" point at the sweep file's line.
static void check_value(const char *path, int line, const char *key, const char *value) {
    if (strcmp(key, "out_dir") == 0 || strcmp(key, "resume") == 0)
        die("%s:%d: '%s' is set by the sweep itself (use 'out = DIR' for where runs go)", path, line, key);
    size_t len = (size_t)line + strlen(key) + strlen(value) + 8;
    char *text = xmalloc(len, "config line");
    memset(text, '\n', (size_t)line - 1);
    snprintf(text + line - 1, len - (size_t)(line - 1), "%s = %s\n", key, value);
    Config c;
    config_defaults(&c);
    config_load_text(&c, text, path);
    free(text);
}

static void copy_field(char *dst, size_t n, const char *src, const char *path, int line, const char *what) {
    if (strlen(src) >= n) die("%s:%d: %s '%.40s...' is too long", path, line, what, src);
    strcpy(dst, src);
}

static void add_override(Variant *v, const char *key, const char *value, const char *path, int line) {
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->o[i].key, key) == 0) die("%s:%d: key '%s' appears twice in this point", path, line, key);
    if (v->n == MAX_OVERRIDES) die("%s:%d: more than %d overrides in one run", path, line, MAX_OVERRIDES);
    copy_field(v->o[v->n].key, sizeof v->o[v->n].key, key, path, line, "key");
    copy_field(v->o[v->n].value, sizeof v->o[v->n].value, value, path, line, "value");
    v->n++;
}

static void parse_point(Sweep *s, char *text, int line) {
    s->variants = realloc(s->variants, (size_t)(s->n_variants + 1) * sizeof *s->variants);
    if (!s->variants) die("out of memory reading %s", s->path);
    Variant *v = &s->variants[s->n_variants++];
    memset(v, 0, sizeof *v);
    v->line = line;
    for (char *tok = strtok(text, " \t"); tok; tok = strtok(NULL, " \t")) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok) die("%s:%d: point: expected key=value pairs separated by spaces, got '%s'", s->path, line, tok);
        *eq = '\0';
        check_value(s->path, line, tok, eq + 1);
        add_override(v, tok, eq + 1, s->path, line);
    }
    if (v->n == 0) die("%s:%d: point has no key=value pairs", s->path, line);
}

static void parse_axis(Sweep *s, const char *key, char *text, int line) {
    for (int i = 0; i < s->n_axes; i++)
        if (strcmp(s->axes[i].key, key) == 0) die("%s:%d: key '%s' is already set on line %d", s->path, line, key, s->axes[i].line);
    if (s->n_axes == MAX_OVERRIDES) die("%s:%d: more than %d grid keys", s->path, line, MAX_OVERRIDES);
    Axis *a = &s->axes[s->n_axes++];
    memset(a, 0, sizeof *a);
    copy_field(a->key, sizeof a->key, key, s->path, line, "key");
    a->line = line;
    for (char *p = text;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        char *v = trim(p);
        if (!*v) die("%s:%d: %s has an empty value in its list", s->path, line, key);
        check_value(s->path, line, key, v);
        a->values = realloc(a->values, (size_t)(a->n + 1) * sizeof *a->values);
        if (!a->values) die("out of memory reading %s", s->path);
        a->values[a->n] = xmalloc(strlen(v) + 1, "sweep value");
        strcpy(a->values[a->n++], v);
        if (!comma) break;
        p = comma + 1;
    }
}

static void parse_file(Sweep *s, const char *path) {
    s->path = path;
    size_t len;
    char *text = read_file(path, &len);
    if (strlen(text) != len) die("%s: binary data in a sweep file (NUL byte)", path);
    int line = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        line++;
        char *hash = strchr(p, '#');
        if (hash) *hash = '\0';
        char *l = trim(p);
        p = nl ? nl + 1 : p + strlen(p);
        if (!*l) continue;
        char *eq = strchr(l, '=');
        if (!eq) die("%s:%d: expected 'key = value', got '%s'", path, line, l);
        *eq = '\0';
        char *key = trim(l), *val = trim(eq + 1);
        if (!*val) die("%s:%d: %s has no value", path, line, key);
        if (strcmp(key, "base") == 0 || strcmp(key, "out") == 0 || strcmp(key, "train") == 0) {
            char *dst = key[0] == 'b' ? s->base : key[0] == 'o' ? s->out : s->train;
            if (*dst) die("%s:%d: '%s' is set twice", path, line, key);
            copy_field(dst, CONFIG_STR, val, path, line, key);
        } else if (strcmp(key, "point") == 0) {
            parse_point(s, val, line);
        } else {
            parse_axis(s, key, val, line);
        }
    }
    free(text);
    if (!s->base[0]) die("%s: no 'base = CONFIG' line (the config every run starts from)", path);
    if (!s->out[0]) die("%s: no 'out = DIR' line (where the runs and results go)", path);
    for (int a = 0; a < s->n_axes; a++)
        for (int v = 0; v < s->n_variants; v++)
            for (int i = 0; i < s->variants[v].n; i++)
                if (strcmp(s->variants[v].o[i].key, s->axes[a].key) == 0)
                    die("%s:%d: key '%s' is a grid line and also in the point on line %d: set it in one place",
                        path, s->axes[a].line, s->axes[a].key, s->variants[v].line);
}

static const char *lookup(const Variant *v, const char *key) {
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->o[i].key, key) == 0) return v->o[i].value;
    return NULL;
}

// Does key take more than one value over the runs (counting "unset" as one)?
static int varies(const Sweep *s, const char *key) {
    const char *first = lookup(&s->runs[0].v, key);
    for (int r = 1; r < s->n_runs; r++) {
        const char *v = lookup(&s->runs[r].v, key);
        if ((v == NULL) != (first == NULL) || (v && strcmp(v, first) != 0)) return 1;
    }
    return 0;
}

static void name_run(const Sweep *s, RunSpec *r) {
    size_t n = 0;
    r->name[0] = '\0';
    for (int i = 0; i < r->v.n; i++) {
        if (!varies(s, r->v.o[i].key)) continue;
        char part[CONFIG_STR + 80];
        snprintf(part, sizeof part, "%s%s-%s", n ? "_" : "", r->v.o[i].key, r->v.o[i].value);
        // Only characters that are safe in any shell and file system.
        for (char *c = part; *c; c++)
            if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_')) *c = '_';
        if (n + strlen(part) >= sizeof r->name) die("%s: run name '%.60s...' is too long", s->path, r->name);
        strcpy(r->name + n, part);
        n += strlen(part);
    }
    if (!n) strcpy(r->name, "run");
}

// Variants × the cartesian product of the axes, in file order (last axis fastest).
static void expand(Sweep *s) {
    Variant empty = {.n = 0};
    int nv = s->n_variants ? s->n_variants : 1;
    long total = nv;
    for (int a = 0; a < s->n_axes; a++) total *= s->axes[a].n;
    if (total > MAX_RUNS) die("%s: the sweep has %ld runs, more than %d", s->path, total, MAX_RUNS);
    s->runs = xcalloc((size_t)total, sizeof *s->runs, "sweep runs");
    for (long r = 0; r < total; r++) {
        long rest = r;
        int idx[MAX_OVERRIDES];
        for (int a = s->n_axes - 1; a >= 0; a--) {
            idx[a] = (int)(rest % s->axes[a].n);
            rest /= s->axes[a].n;
        }
        RunSpec *run = &s->runs[r];
        run->v = s->n_variants ? s->variants[rest] : empty;
        for (int a = 0; a < s->n_axes; a++) add_override(&run->v, s->axes[a].key, s->axes[a].values[idx[a]], s->path, s->axes[a].line);
    }
    s->n_runs = (int)total;
    for (int r = 0; r < s->n_runs; r++) {
        name_run(s, &s->runs[r]);
        for (int q = 0; q < r; q++)
            if (strcmp(s->runs[q].name, s->runs[r].name) == 0)
                die("%s: two runs have the same settings (%s): remove the duplicate point", s->path, s->runs[r].name);
    }
}

static void run_dir(const Sweep *s, const RunSpec *r, char *buf, size_t n) {
    if ((size_t)snprintf(buf, n, "%s/%s", s->out, r->name) >= n) die("%s: output path for run %s is too long", s->path, r->name);
}

// The run's whole configuration, as the trainer will see it. Dies (config
// messages) on any problem.
static void load_run_config(const Sweep *s, const RunSpec *r, Config *c) {
    char dir[CONFIG_STR], arg[CONFIG_STR + 80];
    config_defaults(c);
    config_load_file(c, s->base);
    for (int i = 0; i < r->v.n; i++) {
        snprintf(arg, sizeof arg, "%s=%s", r->v.o[i].key, r->v.o[i].value);
        config_set_arg(c, arg);
    }
    run_dir(s, r, dir, sizeof dir);
    snprintf(arg, sizeof arg, "out_dir=%s", dir);
    config_set_arg(c, arg);
    config_validate(c);
}

// Validate every run in a child process whose stderr we read, so that a
// failure is reported as one line that also names the run.
static void validate_runs(const Sweep *s) {
    for (int r = 0; r < s->n_runs; r++) {
        int fd[2];
        if (pipe(fd) != 0) die("pipe: %s", strerror(errno));
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(fd[0]);
            dup2(fd[1], 2);
            Config c;
            load_run_config(s, &s->runs[r], &c);
            const char *data[2] = {c.train_data, c.val_data};
            for (int i = 0; i < 2; i++) {  // exits naming the pattern when nothing matches
                int n;
                char **paths = expand_paths(data[i], &n);
                free_paths(paths, n);
            }
            _exit(0);
        }
        close(fd[1]);
        char msg[2048];
        size_t len = 0;
        ssize_t k;
        while (len < sizeof msg - 1 && (k = read(fd[0], msg + len, sizeof msg - 1 - len)) > 0) len += (size_t)k;
        msg[len] = '\0';
        close(fd[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char *m = strncmp(msg, "error: ", 7) == 0 ? msg + 7 : msg;
            m[strcspn(m, "\n")] = '\0';
            die("%s: run %s: %s", s->path, s->runs[r].name, *m ? m : "invalid configuration");
        }
    }
}

static double metrics_field(char **fields, int n, int col) {
    return col >= 0 && col < n && *fields[col] ? atof(fields[col]) : NAN;
}

// Steps, tokens/s, training seconds and the validation curve from metrics.csv.
static void read_metrics(const char *path, Result *res) {
    size_t len;
    char *text = read_file(path, &len);
    int col_step = -1, col_val = -1, col_tok = -1, col_ms = -1;
    double tokens = 0, seconds = 0;
    int header = 1;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        char *fields[32];
        int n = 0;
        for (char *f = p; n < 32;) {  // split on every comma: empty fields matter
            fields[n++] = f;
            char *c = strchr(f, ',');
            if (!c) break;
            *c = '\0';
            f = c + 1;
        }
        p = nl ? nl + 1 : p + strlen(p);
        if (header) {
            for (int i = 0; i < n; i++) {
                if (strcmp(fields[i], "step") == 0) col_step = i;
                if (strcmp(fields[i], "val_loss") == 0) col_val = i;
                if (strcmp(fields[i], "tokens_per_s") == 0) col_tok = i;
                if (strcmp(fields[i], "ms_per_step") == 0) col_ms = i;
            }
            if (col_step < 0 || col_val < 0 || col_tok < 0 || col_ms < 0)
                die("%s: header lacks step, val_loss, tokens_per_s or ms_per_step", path);
            header = 0;
            continue;
        }
        double step = metrics_field(fields, n, col_step), val = metrics_field(fields, n, col_val);
        double ms = metrics_field(fields, n, col_ms), tok_s = metrics_field(fields, n, col_tok);
        if (isnan(step)) continue;
        res->steps = (long)step;
        if (isfinite(ms) && isfinite(tok_s)) {  // tokens of this step = rate × time
            seconds += ms / 1e3;
            tokens += tok_s * ms / 1e3;
        }
        if (isfinite(val)) {
            res->eval_step = realloc(res->eval_step, (size_t)(res->n_evals + 1) * sizeof(double));
            res->eval_loss = realloc(res->eval_loss, (size_t)(res->n_evals + 1) * sizeof(double));
            if (!res->eval_step || !res->eval_loss) die("out of memory reading %s", path);
            res->eval_step[res->n_evals] = step;
            res->eval_loss[res->n_evals++] = val;
        }
    }
    res->train_s = seconds;
    res->tok_s = seconds > 0 ? tokens / seconds : NAN;
    free(text);
}

// The last "val_loss=" and "parameters:" lines of the run's log.
static void read_log(const char *path, Result *res) {
    size_t len;
    char *text = read_file(path, &len);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        double vl, vp;
        long params;
        if (sscanf(line, "val_loss=%lf val_ppl=%lf", &vl, &vp) == 2) res->val_loss = vl, res->val_ppl = vp;
        if (sscanf(line, "parameters: %ld", &params) == 1) res->params = params;
    }
    free(text);
}

static void read_result(const Sweep *s, const RunSpec *r, Result *res) {
    memset(res, 0, sizeof *res);
    res->val_loss = res->val_ppl = res->tok_s = res->train_s = res->wall_s = NAN;
    char dir[CONFIG_STR], path[CONFIG_STR + 32];
    run_dir(s, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/done", dir);
    if (!file_exists(path)) return;
    res->done = 1;
    size_t len;
    char *text = read_file(path, &len);
    if (sscanf(text, "wall_s=%lf", &res->wall_s) != 1) die("%s: expected 'wall_s=<seconds>'", path);
    free(text);
    snprintf(path, sizeof path, "%s/train.log", dir);
    read_log(path, res);
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    if (file_exists(path)) read_metrics(path, res);  // absent for max_steps = 0
}

static void write_results(const Sweep *s) {
    Result *res = xcalloc((size_t)s->n_runs, sizeof *res, "results");
    for (int r = 0; r < s->n_runs; r++) read_result(s, &s->runs[r], &res[r]);
    // The keys that vary, as columns; those that do not are in the base config.
    const char *cols[MAX_OVERRIDES * 2];
    int n_cols = 0;
    for (int r = 0; r < s->n_runs; r++)
        for (int i = 0; i < s->runs[r].v.n; i++) {
            const char *k = s->runs[r].v.o[i].key;
            int seen = 0;
            for (int c = 0; c < n_cols; c++) seen |= strcmp(cols[c], k) == 0;
            if (!seen && varies(s, k) && n_cols < MAX_OVERRIDES * 2) cols[n_cols++] = k;
        }
    char path[CONFIG_STR + 32];
    snprintf(path, sizeof path, "%s/results.csv", s->out);
    FILE *f = xfopen(path, "w");
    fprintf(f, "run");
    for (int c = 0; c < n_cols; c++) fprintf(f, ",%s", cols[c]);
    fprintf(f, ",status,steps,val_loss,val_ppl,tokens_per_s,train_s,wall_s,params\n");
    for (int r = 0; r < s->n_runs; r++) {
        fprintf(f, "%s", s->runs[r].name);
        for (int c = 0; c < n_cols; c++) {
            const char *v = lookup(&s->runs[r].v, cols[c]);
            fprintf(f, ",%s", v ? v : "");
        }
        if (!res[r].done) fprintf(f, ",pending,,,,,,,\n");
        else fprintf(f, ",done,%ld,%.9g,%.9g,%.1f,%.1f,%.1f,%ld\n", res[r].steps, res[r].val_loss, res[r].val_ppl,
                     res[r].tok_s, res[r].train_s, res[r].wall_s, res[r].params);
    }
    xfclose(f, path);

    snprintf(path, sizeof path, "%s/results.md", s->out);
    f = xfopen(path, "w");
    fprintf(f, "# Sweep %s\n\nBase config `%s`; made by `./sweep %s`. Final validation loss (mean token\n"
               "cross-entropy, nats) and perplexity exp(loss); tokens/s over training steps only;\n"
               "wall time of the run's last invocation, evaluation included.\n\n",
            s->path, s->base, s->path);
    fprintf(f, "| run |");
    for (int c = 0; c < n_cols; c++) fprintf(f, " %s |", cols[c]);
    fprintf(f, " steps | val loss | val ppl | tokens/s | wall s | params |\n|---|");
    for (int c = 0; c < n_cols; c++) fprintf(f, "---|");
    fprintf(f, "--:|--:|--:|--:|--:|--:|\n");
    for (int r = 0; r < s->n_runs; r++) {
        fprintf(f, "| %s |", s->runs[r].name);
        for (int c = 0; c < n_cols; c++) {
            const char *v = lookup(&s->runs[r].v, cols[c]);
            fprintf(f, " %s |", v ? v : "");
        }
        if (!res[r].done) fprintf(f, " not run | | | | | |\n");
        else fprintf(f, " %ld | %.4f | %.2f | %.0f | %.0f | %ld |\n", res[r].steps, res[r].val_loss, res[r].val_ppl,
                     res[r].tok_s, res[r].wall_s, res[r].params);
    }
    fprintf(f, "\n![validation loss against steps](val_loss.svg)\n");
    xfclose(f, path);

    PlotSeries *series = xcalloc((size_t)s->n_runs, sizeof *series, "plot series");
    int n_series = 0;
    for (int r = 0; r < s->n_runs; r++)
        if (res[r].done && res[r].n_evals)
            series[n_series++] = (PlotSeries){s->runs[r].name, res[r].eval_step, res[r].eval_loss, res[r].n_evals};
    snprintf(path, sizeof path, "%s/val_loss.svg", s->out);
    char title[CONFIG_STR + 64];
    snprintf(title, sizeof title, "Validation loss: %s", s->path);
    plot_lines_svg(path, title, "optimizer step", "validation loss (nats/token)", series, n_series);
    free(series);
    for (int r = 0; r < s->n_runs; r++) {
        free(res[r].eval_step);
        free(res[r].eval_loss);
    }
    free(res);
}

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { interrupted = sig; }

// Build the trainer's argv for run r; returns the count. resume continues an
// interrupted run from its checkpoint.
static int build_argv(const Sweep *s, const RunSpec *r, const char *dir, int resume, char **argv, char store[][CONFIG_STR + 80]) {
    int n = 0;
    argv[n++] = (char *)s->train;
    argv[n++] = (char *)s->base;
    for (int i = 0; i < r->v.n; i++) {
        snprintf(store[i], CONFIG_STR + 80, "%s=%s", r->v.o[i].key, r->v.o[i].value);
        argv[n++] = store[i];
    }
    snprintf(store[r->v.n], CONFIG_STR + 80, "out_dir=%s", dir);
    argv[n++] = store[r->v.n];
    if (resume) argv[n++] = "resume=1";
    argv[n] = NULL;
    return n;
}

// Run one point; returns the trainer's exit status (128+signal when killed).
static int run_one(const Sweep *s, const RunSpec *r, int dry_run) {
    char dir[CONFIG_STR], path[CONFIG_STR + 32];
    run_dir(s, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    int resume = file_exists(path);
    char *argv[MAX_OVERRIDES + 8];
    static char store[MAX_OVERRIDES + 1][CONFIG_STR + 80];
    int argc = build_argv(s, r, dir, resume, argv, store);
    printf("%s:", r->name);
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    fflush(stdout);
    if (dry_run) return 0;
    make_dirs(dir);
    snprintf(path, sizeof path, "%s/train.log", dir);
    FILE *log = xfopen(path, "a");  // appended: a resumed run keeps its history
    double t0 = now_seconds();
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fileno(log), 1);
        dup2(fileno(log), 2);
        execv(argv[0], argv);
        fprintf(stderr, "error: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    xfclose(log, path);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid: %s", strerror(errno));
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/done", dir);
        FILE *f = xfopen(path, "w");
        fprintf(f, "wall_s=%.1f\n", now_seconds() - t0);
        xfclose(f, path);
        printf("  done in %.0f s\n", now_seconds() - t0);
    } else {
        printf("  FAILED with status %d: see %s/train.log\n", rc, dir);
    }
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv) {
    const char *file = NULL, *train_opt = NULL;
    int dry_run = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) dry_run = 1;
        else if (strcmp(argv[i], "--train") == 0 && i + 1 < argc) train_opt = argv[++i];
        else if (argv[i][0] != '-' && !file) file = argv[i];
        else die("usage: ./sweep FILE.sweep [--train PATH] [--dry-run] (unexpected '%s')", argv[i]);
    }
    if (!file) die("usage: ./sweep FILE.sweep [--train PATH] [--dry-run]");
    Sweep *s = xcalloc(1, sizeof *s, "sweep");
    parse_file(s, file);
    if (train_opt) copy_field(s->train, sizeof s->train, train_opt, file, 0, "--train");
    if (!s->train[0]) strcpy(s->train, "./train");
    if (access(s->train, X_OK) != 0) die("%s: trainer '%s' is not an executable file (build it with make, or set train = PATH)", file, s->train);
    expand(s);
    validate_runs(s);
    printf("sweep %s: %d runs into %s\n", file, s->n_runs, s->out);
    if (!dry_run) make_dirs(s->out);
    // The trainer saves a checkpoint on SIGINT/SIGTERM; we outlive it to say so.
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int failed = 0;
    for (int r = 0; r < s->n_runs && !interrupted; r++) {
        char dir[CONFIG_STR], marker[CONFIG_STR + 32];
        run_dir(s, &s->runs[r], dir, sizeof dir);
        snprintf(marker, sizeof marker, "%s/done", dir);
        if (file_exists(marker)) {
            printf("%s: already done, skipped\n", s->runs[r].name);
            continue;
        }
        failed += run_one(s, &s->runs[r], dry_run) != 0;
        if (!dry_run) write_results(s);
    }
    if (!dry_run) write_results(s);
    if (interrupted) {
        printf("interrupted: run `./sweep %s` again to continue where it stopped\n", file);
        return 130;
    }
    if (failed) die("%s: %d of %d runs failed (their train.log says why)", file, failed, s->n_runs);
    if (!dry_run) printf("results: %s/results.md, %s/results.csv, %s/val_loss.svg\n", s->out, s->out, s->out);
    return 0;
}
