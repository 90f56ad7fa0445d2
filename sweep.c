// sweep.c — run a grid of training runs and tabulate and plot their results.
//
//   ./sweep FILE.sweep [--train PATH] [--jobs N] [--only GLOB,...] [--dry-run | --no-train] [key=value ...]
//
// --dry-run lists what would run; --no-train trains nothing but evaluates
// the finished runs on the eval sets and rewrites the tables (for a sweep
// whose other runs are still going, or are left for later). --only trains
// (and evaluates) just the runs whose names match one of the shell globs,
// e.g. --only '*_seed-2,*_seed-3' — part of a sweep, under the names and in
// the directory the whole sweep gives them; the tables still cover every
// finished run.
//
// key=value arguments are added to every run, after the sweep file's own
// settings (e.g. max_steps=30 for a quick try; they are not part of the run
// names, so they must not differ between two invocations of one sweep).
//
// A sweep file is `key = value` lines with # comments:
//
//   base  = configs/small-softmax.conf   the config every run starts from (required)
//   out   = out/sweeps/small             where runs and results go (required)
//   train = ./train                      the trainer (optional; --train overrides)
//   attention = softmax, elu, taylor     a grid axis: any config key, values
//   seed = 1, 2, 3                        separated by commas (one value = fixed)
//   point = attention=hedgehog distill_weight=1
//                                        one explicit variant: key=value pairs
//   baseline = attention=softmax         the variant the others are compared with
//   eval = wt103:data/wikitext-103/byte_val_*.bin
//                                        extra validation sets, NAME:GLOB, comma-separated
//
// The runs are every variant (each `point` line; one empty variant when there
// are none) crossed with every combination of the grid axes. So `point` lines
// give combinations a grid cannot (distillation only for hedgehog) and the
// axes multiply them (seeds). A key may not be both an axis and in a point.
//
// Every run gets out/<name>, where <name> joins the keys whose value differs
// between runs as key-value with `_` (e.g. attention-elu_seed-2). The trainer
// is run as `TRAIN BASE key=value... out_dir=DIR` with its output in
// DIR/train.log; --jobs N runs N at once, each on its share of the threads
// (the results do not depend on threads, so they are the same as one by
// one). A run that exits 0 gets a DIR/done marker; a rerun of the sweep skips
// those, and continues an interrupted one from its checkpoint (resume=1).
// Each finished run's checkpoint is then evaluated on every `eval` set,
// whole (DIR/eval-NAME.log), also when the eval line was added later.
//
// After every run out/results.csv (a row per run), out/results.md and
// out/val_loss.svg are rewritten from what the finished runs left on disk.
// With a seed axis, the runs that differ only in the seed form a variant:
// results.md, out/summary.csv and the rows of results.csv carry each
// variant's mean, standard deviation, n, min and max, and the per-seed
// differences from the baseline's run of the same seed (mean ± std); the
// plot shows each variant's mean curve with a ±1 std band.
//
// Every value is checked by the config parser, and every run's whole
// configuration (cross-field rules, data files) before anything runs.
#include "common.h"
#include "config.h"
#include "data/loader.h"
#include "data/shard.h"
#include "plot.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_OVERRIDES 64
#define MAX_RUNS 4096
#define MAX_EVALS 8
#define MAX_JOBS 64

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

// An extra validation set: its name in the tables, and its shards.
typedef struct {
    char name[64], glob[CONFIG_STR];
    size_t tokens;
} EvalSet;

typedef struct {
    const char *path;
    char base[CONFIG_STR], out[CONFIG_STR], train[CONFIG_STR];
    char baseline_key[64], baseline_value[CONFIG_STR];   // baseline_key[0] = 0: none
    EvalSet evals[MAX_EVALS];
    int n_evals;
    Variant extra;   // key=value from the command line, for every run
    Variant *variants;
    int n_variants;
    Axis axes[MAX_OVERRIDES];
    int n_axes;
    RunSpec *runs;
    int n_runs;
} Sweep;

// What a finished run left on disk. metric[0] is the final validation loss,
// metric[1 + e] its loss on eval set e (NaN until evaluated).
typedef struct {
    int done;
    long steps, params;
    double val_loss, val_ppl, tok_s, train_s, wall_s;
    double metric[1 + MAX_EVALS];
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

// baseline = key=value: the variant every other one is compared with.
static void parse_baseline(Sweep *s, const char *val, int line) {
    const char *eq = strchr(val, '=');
    if (s->baseline_key[0]) die("%s:%d: 'baseline' is set twice", s->path, line);
    if (!eq || eq == val || strchr(eq + 1, ' '))
        die("%s:%d: baseline: expected one key=value naming the variant to compare with, got '%s'", s->path, line, val);
    snprintf(s->baseline_key, sizeof s->baseline_key, "%.*s", (int)(eq - val), val);
    copy_field(s->baseline_value, sizeof s->baseline_value, eq + 1, s->path, line, "baseline value");
    check_value(s->path, line, s->baseline_key, s->baseline_value);
}

// eval = NAME:GLOB, NAME:GLOB: extra validation sets; each must match shards.
static void parse_evals(Sweep *s, char *val, int line) {
    for (char *item = strtok(val, ","); item; item = strtok(NULL, ",")) {
        item = trim(item);
        char *colon = strchr(item, ':');
        if (!colon || colon == item || !colon[1]) die("%s:%d: eval: expected NAME:GLOB, got '%s'", s->path, line, item);
        if (s->n_evals == MAX_EVALS) die("%s:%d: more than %d eval sets", s->path, line, MAX_EVALS);
        EvalSet *e = &s->evals[s->n_evals++];
        *colon = '\0';
        for (const char *c = item; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
                die("%s:%d: eval name '%s': use letters, digits, '-' and '_'", s->path, line, item);
        copy_field(e->name, sizeof e->name, item, s->path, line, "eval name");
        copy_field(e->glob, sizeof e->glob, colon + 1, s->path, line, "eval shards");
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
        } else if (strcmp(key, "baseline") == 0) {
            parse_baseline(s, val, line);
        } else if (strcmp(key, "eval") == 0) {
            parse_evals(s, val, line);
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
    for (int i = 0; i < s->extra.n; i++) {
        snprintf(arg, sizeof arg, "%s=%s", s->extra.o[i].key, s->extra.o[i].value);
        config_set_arg(c, arg);
    }
    run_dir(s, r, dir, sizeof dir);
    snprintf(arg, sizeof arg, "out_dir=%s", dir);
    config_set_arg(c, arg);
    config_validate(c);
}

// One run's whole configuration and data files, checked in a child (a
// problem there ends it with die()'s message, which the parent reports).
typedef struct { const Sweep *s; const RunSpec *r; } RunCheck;

static void check_run(void *arg) {
    const RunCheck *rc = arg;
    Config c;
    load_run_config(rc->s, rc->r, &c);
    const char *data[4] = {c.train_data, c.val_data, c.train_mask, c.val_mask};
    for (int i = 0; i < 4; i++) {  // exits naming the pattern when nothing matches
        if (!data[i][0]) continue;   // no mask
        int n;
        char **paths = expand_paths(data[i], &n);
        free_paths(paths, n);
    }
}

static void validate_runs(const Sweep *s) {
    for (int r = 0; r < s->n_runs; r++) {
        RunCheck rc = {s, &s->runs[r]};
        char msg[2048];
        if (run_captured(check_run, &rc, msg, sizeof msg) != 0) {
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

// The val_loss= a log's last evaluation printed, or NaN.
static double logged_val_loss(const char *path) {
    if (!file_exists(path)) return NAN;
    size_t len;
    char *text = read_file(path, &len);
    double v = NAN, x;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (sscanf(line, "val_loss=%lf", &x) == 1) v = x;
    free(text);
    return v;
}

static void eval_log(const Sweep *s, const RunSpec *r, int e, char *buf, size_t n) {
    char dir[CONFIG_STR];
    run_dir(s, r, dir, sizeof dir);
    snprintf(buf, n, "%s/eval-%s.log", dir, s->evals[e].name);
}

static void read_result(const Sweep *s, const RunSpec *r, Result *res) {
    memset(res, 0, sizeof *res);
    res->val_loss = res->val_ppl = res->tok_s = res->train_s = res->wall_s = NAN;
    for (int m = 0; m <= MAX_EVALS; m++) res->metric[m] = NAN;
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
    res->metric[0] = res->val_loss;
    for (int e = 0; e < s->n_evals; e++) {
        eval_log(s, r, e, path, sizeof path);
        res->metric[1 + e] = logged_val_loss(path);
    }
}

// ---------------------------------------------------------------------------
// Variants: the runs that differ only in their seed.

static int has_seed_axis(const Sweep *s) {
    for (int a = 0; a < s->n_axes; a++)
        if (strcmp(s->axes[a].key, "seed") == 0 && s->axes[a].n > 1) return 1;
    return 0;
}

// Run r's variant label: its name without the seed part ("base" if empty).
static void variant_label(const Sweep *s, const RunSpec *r, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->v.n; i++) {
        if (strcmp(r->v.o[i].key, "seed") == 0 || !varies(s, r->v.o[i].key)) continue;
        k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%s-%s", k ? "_" : "", r->v.o[i].key, r->v.o[i].value);
    }
    if (!buf[0]) snprintf(buf, n, "base");
}

// Statistics of one metric over a variant's finished runs.
typedef struct { int n; double mean, std, min, max; } Stats;

static Stats stats_of(const double *x, int n) {
    Stats st = {0, 0, 0, INFINITY, -INFINITY};
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i])) continue;
        st.n++;
        sum += x[i];
        st.min = fmin(st.min, x[i]);
        st.max = fmax(st.max, x[i]);
    }
    if (!st.n) return (Stats){0, NAN, NAN, NAN, NAN};
    st.mean = sum / st.n;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) sq += (x[i] - st.mean) * (x[i] - st.mean);
    st.std = st.n > 1 ? sqrt(sq / (st.n - 1)) : 0;   // the sample standard deviation
    return st;
}

typedef struct {
    char label[1024];
    int *runs, n_runs;
    Stats metric[1 + MAX_EVALS], diff[1 + MAX_EVALS], tok_s;
} Group;

static const char *seed_of(const RunSpec *r) {
    const char *v = lookup(&r->v, "seed");
    return v ? v : "";
}

// Group the runs into variants; fill each one's statistics. Returns the count.
static int make_variants(const Sweep *s, const Result *res, Group *vs) {
    int nv = 0, n_metrics = 1 + s->n_evals, *var_of = xcalloc((size_t)s->n_runs, sizeof(int), "variants");
    for (int r = 0; r < s->n_runs; r++) {
        char label[1024];
        variant_label(s, &s->runs[r], label, sizeof label);
        int v = 0;
        while (v < nv && strcmp(vs[v].label, label) != 0) v++;
        if (v == nv) {
            memset(&vs[nv], 0, sizeof vs[nv]);
            snprintf(vs[nv].label, sizeof vs[nv].label, "%s", label);
            vs[nv++].runs = xcalloc((size_t)s->n_runs, sizeof(int), "variant runs");
        }
        vs[v].runs[vs[v].n_runs++] = r;
        var_of[r] = v;
    }
    // The baseline: the variant whose runs set baseline_key = baseline_value.
    int base = -1;
    for (int v = 0; v < nv && s->baseline_key[0]; v++) {
        const char *val = lookup(&s->runs[vs[v].runs[0]].v, s->baseline_key);
        if (val && strcmp(val, s->baseline_value) == 0) {
            if (base >= 0) die("%s: baseline %s=%s matches more than one variant (%s, %s)", s->path, s->baseline_key,
                               s->baseline_value, vs[base].label, vs[v].label);
            base = v;
        }
    }
    if (s->baseline_key[0] && base < 0)
        die("%s: baseline %s=%s matches no variant", s->path, s->baseline_key, s->baseline_value);
    double *x = xcalloc((size_t)s->n_runs, sizeof(double), "metric values");
    for (int v = 0; v < nv; v++) {
        for (int m = 0; m < n_metrics; m++) {
            for (int i = 0; i < vs[v].n_runs; i++) x[i] = res[vs[v].runs[i]].done ? res[vs[v].runs[i]].metric[m] : NAN;
            vs[v].metric[m] = stats_of(x, vs[v].n_runs);
            // Paired with the baseline's run of the same seed.
            for (int i = 0; i < vs[v].n_runs; i++) {
                double mine = x[i], theirs = NAN;
                for (int j = 0; base >= 0 && j < vs[base].n_runs; j++) {
                    int rb = vs[base].runs[j];
                    if (strcmp(seed_of(&s->runs[rb]), seed_of(&s->runs[vs[v].runs[i]])) == 0 && res[rb].done)
                        theirs = res[rb].metric[m];
                }
                x[i] = mine - theirs;
            }
            vs[v].diff[m] = base >= 0 ? stats_of(x, vs[v].n_runs) : (Stats){0, NAN, NAN, NAN, NAN};
        }
        for (int i = 0; i < vs[v].n_runs; i++) x[i] = res[vs[v].runs[i]].done ? res[vs[v].runs[i]].tok_s : NAN;
        vs[v].tok_s = stats_of(x, vs[v].n_runs);
    }
    free(x);
    free(var_of);
    return nv;
}

static void metric_name(const Sweep *s, int m, char *buf, size_t n) {
    if (m == 0) snprintf(buf, n, "val_loss");
    else snprintf(buf, n, "%s_loss", s->evals[m - 1].name);
}

static void csv_num(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, ",%.9g", x);
    else fprintf(f, ",");
}

// mean ± std (or just the value when n = 1), or "" when there is none.
static void md_stat(FILE *f, Stats st, int digits) {
    if (st.n == 0) fprintf(f, " |");
    else if (st.n == 1) fprintf(f, " %.*f |", digits, st.mean);
    else fprintf(f, " %.*f ± %.*f |", digits, st.mean, digits, st.std);
}

// A table is written whole to a temporary file and renamed into place, so
// that a reader, or another sweep over the same directory (--only), never
// sees half of one.
static FILE *table_open(const char *path, char *tmp, size_t n) {
    snprintf(tmp, n, "%s.%d.tmp", path, (int)getpid());
    return xfopen(tmp, "w");
}

static void table_close(FILE *f, const char *tmp, const char *path) {
    xfclose(f, tmp);
    if (rename(tmp, path) != 0) die("%s: cannot rename it to %s: %s", tmp, path, strerror(errno));
}

static void write_results(const Sweep *s) {
    Result *res = xcalloc((size_t)s->n_runs, sizeof *res, "results");
    for (int r = 0; r < s->n_runs; r++) read_result(s, &s->runs[r], &res[r]);
    int seeds = has_seed_axis(s), n_metrics = 1 + s->n_evals;
    Group *vs = xcalloc((size_t)s->n_runs, sizeof *vs, "variants");
    int nv = make_variants(s, res, vs);
    int *var_of = xcalloc((size_t)s->n_runs, sizeof(int), "variant of run");
    for (int v = 0; v < nv; v++)
        for (int i = 0; i < vs[v].n_runs; i++) var_of[vs[v].runs[i]] = v;
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
    char path[CONFIG_STR + 32], tmp[CONFIG_STR + 64], name[96];

    // results.csv: a row per run; with seeds, each row also carries its
    // variant's statistics of the final validation loss.
    snprintf(path, sizeof path, "%s/results.csv", s->out);
    FILE *f = table_open(path, tmp, sizeof tmp);
    fprintf(f, "run");
    for (int c = 0; c < n_cols; c++) fprintf(f, ",%s", cols[c]);
    fprintf(f, ",status,steps,val_loss,val_ppl,tokens_per_s,train_s,wall_s,params");
    for (int e = 0; e < s->n_evals; e++) fprintf(f, ",%s_loss", s->evals[e].name);
    if (seeds) fprintf(f, ",variant,variant_n,variant_mean,variant_std,variant_min,variant_max,diff_mean,diff_std");
    fprintf(f, "\n");
    for (int r = 0; r < s->n_runs; r++) {
        fprintf(f, "%s", s->runs[r].name);
        for (int c = 0; c < n_cols; c++) {
            const char *v = lookup(&s->runs[r].v, cols[c]);
            fprintf(f, ",%s", v ? v : "");
        }
        if (!res[r].done) fprintf(f, ",pending,,,,,,,");
        else fprintf(f, ",done,%ld,%.9g,%.9g,%.1f,%.1f,%.1f,%ld", res[r].steps, res[r].val_loss, res[r].val_ppl,
                     res[r].tok_s, res[r].train_s, res[r].wall_s, res[r].params);
        for (int e = 0; e < s->n_evals; e++) csv_num(f, res[r].done ? res[r].metric[1 + e] : NAN);
        if (seeds) {
            Group *v = &vs[var_of[r]];
            fprintf(f, ",%s,%d", v->label, v->metric[0].n);
            csv_num(f, v->metric[0].mean);
            csv_num(f, v->metric[0].std);
            csv_num(f, v->metric[0].min);
            csv_num(f, v->metric[0].max);
            csv_num(f, v->diff[0].mean);
            csv_num(f, v->diff[0].std);
        }
        fprintf(f, "\n");
    }
    table_close(f, tmp, path);

    // summary.csv: a row per variant, every metric's statistics.
    if (seeds) {
        snprintf(path, sizeof path, "%s/summary.csv", s->out);
        f = table_open(path, tmp, sizeof tmp);
        fprintf(f, "variant,n");
        for (int m = 0; m < n_metrics; m++) {
            metric_name(s, m, name, sizeof name);
            fprintf(f, ",%s_mean,%s_std,%s_min,%s_max,%s_diff_mean,%s_diff_std", name, name, name, name, name, name);
        }
        fprintf(f, ",tokens_per_s_mean\n");
        for (int v = 0; v < nv; v++) {
            fprintf(f, "%s,%d", vs[v].label, vs[v].metric[0].n);
            for (int m = 0; m < n_metrics; m++) {
                Stats st = vs[v].metric[m], d = vs[v].diff[m];
                csv_num(f, st.mean);
                csv_num(f, st.std);
                csv_num(f, st.min);
                csv_num(f, st.max);
                csv_num(f, d.mean);
                csv_num(f, d.std);
            }
            csv_num(f, vs[v].tok_s.mean);
            fprintf(f, "\n");
        }
        table_close(f, tmp, path);
    }

    snprintf(path, sizeof path, "%s/results.md", s->out);
    f = table_open(path, tmp, sizeof tmp);
    fprintf(f, "# Sweep %s\n\nBase config `%s`; made by `./sweep %s`. Final validation loss (mean token\n"
               "cross-entropy, nats) and perplexity exp(loss); tokens/s over training steps only;\n"
               "wall time of the run's last invocation, evaluation included.",
            s->path, s->base, s->path);
    for (int e = 0; e < s->n_evals; e++)
        fprintf(f, "%s`%s_loss`: the final checkpoint on every window of `%s`", e ? "; " : "\nExtra sets: ",
                s->evals[e].name, s->evals[e].glob);
    fprintf(f, "\n\n");
    if (seeds) {
        fprintf(f, "## Per variant (over seeds: mean ± sample standard deviation, n, min–max)\n\n| variant | n |");
        for (int m = 0; m < n_metrics; m++) {
            metric_name(s, m, name, sizeof name);
            fprintf(f, " %s | min–max |", name);
            if (s->baseline_key[0]) fprintf(f, " Δ vs %s=%s |", s->baseline_key, s->baseline_value);
        }
        fprintf(f, " ppl (of the mean) | tokens/s |\n|---|--:|");
        for (int m = 0; m < n_metrics; m++) fprintf(f, s->baseline_key[0] ? "--:|--:|--:|" : "--:|--:|");
        fprintf(f, "--:|--:|\n");
        for (int v = 0; v < nv; v++) {
            fprintf(f, "| %s | %d |", vs[v].label, vs[v].metric[0].n);
            for (int m = 0; m < n_metrics; m++) {
                md_stat(f, vs[v].metric[m], 4);
                if (vs[v].metric[m].n) fprintf(f, " %.4f–%.4f |", vs[v].metric[m].min, vs[v].metric[m].max);
                else fprintf(f, " |");
                if (s->baseline_key[0]) md_stat(f, vs[v].diff[m], 4);
            }
            if (vs[v].metric[0].n) fprintf(f, " %.2f | %.0f |\n", exp(vs[v].metric[0].mean), vs[v].tok_s.mean);
            else fprintf(f, " | |\n");
        }
        if (s->baseline_key[0])
            fprintf(f, "\nΔ: each seed's loss minus the %s=%s run's of the same seed, then mean ± std over seeds.\n",
                    s->baseline_key, s->baseline_value);
        fprintf(f, "\n## Per run\n\n");
    }
    fprintf(f, "| run |");
    for (int c = 0; c < n_cols; c++) fprintf(f, " %s |", cols[c]);
    fprintf(f, " steps | val loss | val ppl |");
    for (int e = 0; e < s->n_evals; e++) fprintf(f, " %s loss |", s->evals[e].name);
    fprintf(f, " tokens/s | wall s | params |\n|---|");
    for (int c = 0; c < n_cols; c++) fprintf(f, "---|");
    for (int e = 0; e < s->n_evals; e++) fprintf(f, "--:|");
    fprintf(f, "--:|--:|--:|--:|--:|--:|\n");
    for (int r = 0; r < s->n_runs; r++) {
        fprintf(f, "| %s |", s->runs[r].name);
        for (int c = 0; c < n_cols; c++) {
            const char *v = lookup(&s->runs[r].v, cols[c]);
            fprintf(f, " %s |", v ? v : "");
        }
        if (!res[r].done) {
            fprintf(f, " not run | | |");
            for (int e = 0; e < s->n_evals; e++) fprintf(f, " |");
            fprintf(f, " | | |\n");
            continue;
        }
        fprintf(f, " %ld | %.4f | %.2f |", res[r].steps, res[r].val_loss, res[r].val_ppl);
        for (int e = 0; e < s->n_evals; e++)
            if (isfinite(res[r].metric[1 + e])) fprintf(f, " %.4f |", res[r].metric[1 + e]);
            else fprintf(f, " |");
        fprintf(f, " %.0f | %.0f | %ld |\n", res[r].tok_s, res[r].wall_s, res[r].params);
    }
    fprintf(f, "\n![validation loss against steps](val_loss.svg)\n");
    table_close(f, tmp, path);

    // The plot: every run's curve, or with seeds every variant's mean curve
    // and a ±1 std band (the runs of a variant evaluate at the same steps).
    PlotSeries *series = xcalloc((size_t)s->n_runs, sizeof *series, "plot series");
    double **band = xcalloc(3 * (size_t)nv, sizeof *band, "bands");
    int n_series = 0;
    if (!seeds) {
        for (int r = 0; r < s->n_runs; r++)
            if (res[r].done && res[r].n_evals)
                series[n_series++] = (PlotSeries){.label = s->runs[r].name, .x = res[r].eval_step, .y = res[r].eval_loss,
                                                  .n = res[r].n_evals};
    } else {
        for (int v = 0; v < nv; v++) {
            int n = 0, first = -1;
            for (int i = 0; i < vs[v].n_runs; i++) {
                const Result *rr = &res[vs[v].runs[i]];
                if (!rr->done || !rr->n_evals) continue;
                if (first < 0 || rr->n_evals < n) n = rr->n_evals;
                if (first < 0) first = vs[v].runs[i];
            }
            if (first < 0) continue;
            double *mean = band[3 * v] = xcalloc((size_t)n, sizeof(double), "mean curve");
            double *lo = band[3 * v + 1] = xcalloc((size_t)n, sizeof(double), "band"), *hi = band[3 * v + 2] = xcalloc((size_t)n, sizeof(double), "band");
            double *x = xcalloc((size_t)vs[v].n_runs, sizeof(double), "values");
            for (int k = 0; k < n; k++) {
                int m = 0;
                for (int i = 0; i < vs[v].n_runs; i++) {
                    const Result *rr = &res[vs[v].runs[i]];
                    if (rr->done && rr->n_evals) x[m++] = rr->eval_loss[k];
                }
                Stats st = stats_of(x, m);
                mean[k] = st.mean;
                lo[k] = st.mean - st.std;
                hi[k] = st.mean + st.std;
            }
            free(x);
            series[n_series++] = (PlotSeries){.label = vs[v].label, .x = res[first].eval_step, .y = mean, .n = n, .lo = lo,
                                              .hi = hi};
        }
    }
    snprintf(path, sizeof path, "%s/val_loss.svg", s->out);
    char title[CONFIG_STR + 64];
    snprintf(title, sizeof title, "Validation loss: %s%s", s->path, seeds ? " (mean over seeds, ±1 std)" : "");
    plot_lines_svg(path, title, "optimizer step", "validation loss (nats/token)", series, n_series);
    free(series);
    for (int i = 0; i < 3 * nv; i++) free(band[i]);
    free(band);
    for (int r = 0; r < s->n_runs; r++) {
        free(res[r].eval_step);
        free(res[r].eval_loss);
    }
    for (int v = 0; v < nv; v++) free(vs[v].runs);
    free(vs);
    free(var_of);
    free(res);
}

// ---------------------------------------------------------------------------
// Running: jobs, each a child that runs one point's trainer, then its evals.

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { interrupted = sig; }

// Run argv with stdout and stderr appended to log_path; returns its exit
// status (128 + signal when killed). A signal to us is passed on to it.
static int run_logged(char **argv, const char *log_path, int threads) {
    FILE *log = xfopen(log_path, "a");  // appended: a resumed run keeps its history
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (threads > 0) {
            char t[16];
            snprintf(t, sizeof t, "%d", threads);
            setenv("OMP_NUM_THREADS", t, 1);
        }
        dup2(fileno(log), 1);
        dup2(fileno(log), 2);
        execv(argv[0], argv);
        fprintf(stderr, "error: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    xfclose(log, log_path);
    int status, passed_on = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) die("waitpid: %s", strerror(errno));
        if (interrupted && !passed_on) kill(pid, (int)interrupted), passed_on = 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Evaluate a finished run's checkpoint on eval set e, whole: its config,
// its weights, the set's every window. Returns the trainer's exit status.
static int run_eval(const Sweep *s, const RunSpec *r, int e, int threads) {
    char dir[CONFIG_STR], log[CONFIG_STR + 80];
    run_dir(s, r, dir, sizeof dir);
    Config c;
    load_run_config(s, r, &c);
    size_t windows = (s->evals[e].tokens - 1) / (size_t)c.seq_len, batches = windows / (size_t)c.batch_size;
    if (batches < 1) batches = 1;
    static char store[6][CONFIG_STR + 80];
    snprintf(store[0], sizeof store[0], "%s/config.txt", dir);
    snprintf(store[1], sizeof store[1], "init_from=%s/model.ckpt", dir);
    snprintf(store[2], sizeof store[2], "val_data=%s", s->evals[e].glob);
    snprintf(store[3], sizeof store[3], "eval_batches=%zu", batches);
    snprintf(store[4], sizeof store[4], "out_dir=%s/eval-%s", dir, s->evals[e].name);
    // val_mask belongs to the run's own validation data, not to this set.
    char *argv[] = {(char *)s->train, store[0], "max_steps=0", "resume=0", "convert=0", store[1], store[2], "val_mask=",
                    store[3], store[4], NULL};
    eval_log(s, r, e, log, sizeof log);
    remove(log);
    return run_logged(argv, log, threads);
}

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
    for (int i = 0; i < s->extra.n; i++) {
        snprintf(store[r->v.n + 1 + i], CONFIG_STR + 80, "%s=%s", s->extra.o[i].key, s->extra.o[i].value);
        argv[n++] = store[r->v.n + 1 + i];
    }
    snprintf(store[r->v.n], CONFIG_STR + 80, "out_dir=%s", dir);
    argv[n++] = store[r->v.n];
    if (resume) argv[n++] = "resume=1";
    argv[n] = NULL;
    return n;
}

// Whether a run's name matches one of --only's comma-separated globs.
static int selected(const char *only, const char *name) {
    if (!only) return 1;
    char glob[256];
    for (const char *p = only; *p;) {
        size_t n = strcspn(p, ",");
        snprintf(glob, sizeof glob, "%.*s", (int)n, p);
        if (fnmatch(glob, name, 0) == 0) return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

// One job: train point r (unless it is done), then evaluate it on every set
// it has no result for. Returns 0 when all of it succeeded.
static int run_job(const Sweep *s, const RunSpec *r, int threads, int dry_run, int no_train) {
    char dir[CONFIG_STR], path[CONFIG_STR + 32];
    run_dir(s, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/done", dir);
    if (!file_exists(path) && no_train) {
        printf("%s: not finished, not trained (--no-train)\n", r->name);
        fflush(stdout);   // the job ends in _exit, which flushes nothing
        return 0;
    }
    if (!file_exists(path)) {
        snprintf(path, sizeof path, "%s/model.ckpt", dir);
        int resume = file_exists(path);
        char *argv[2 * MAX_OVERRIDES + 8];
        static char store[2 * MAX_OVERRIDES + 1][CONFIG_STR + 80];
        int argc = build_argv(s, r, dir, resume, argv, store);
        printf("%s:", r->name);
        for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
        printf("\n");
        fflush(stdout);
        if (dry_run) return 0;
        make_dirs(dir);
        double t0 = now_seconds();
        snprintf(path, sizeof path, "%s/train.log", dir);
        int rc = run_logged(argv, path, threads);
        if (rc != 0) {
            printf("%s: FAILED with status %d: see %s/train.log\n", r->name, rc, dir);
            return rc;
        }
        // Atomically: the parent reads every done marker whenever another job
        // ends, and must never see this one empty.
        snprintf(path, sizeof path, "%s/done", dir);
        char tmp[sizeof path + 8];
        FILE *f = replace_open(path, "w", tmp, sizeof tmp);
        fprintf(f, "wall_s=%.1f\n", now_seconds() - t0);
        replace_commit(f, tmp, path);
        printf("%s: done in %.0f s\n", r->name, now_seconds() - t0);
    }
    for (int e = 0; e < s->n_evals && !dry_run; e++) {
        char log[CONFIG_STR + 80];
        eval_log(s, r, e, log, sizeof log);
        if (isfinite(logged_val_loss(log))) continue;
        int rc = run_eval(s, r, e, threads);
        if (rc != 0) {
            printf("%s: evaluation on %s FAILED with status %d: see %s\n", r->name, s->evals[e].name, rc, log);
            return rc;
        }
        printf("%s: %s_loss=%.6f\n", r->name, s->evals[e].name, logged_val_loss(log));
    }
    fflush(stdout);
    return 0;
}

// Is there anything left to do for run r?
static int pending(const Sweep *s, const RunSpec *r) {
    char dir[CONFIG_STR], path[CONFIG_STR + 80];
    run_dir(s, r, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/done", dir);
    if (!file_exists(path)) return 1;
    for (int e = 0; e < s->n_evals; e++) {
        eval_log(s, r, e, path, sizeof path);
        if (!isfinite(logged_val_loss(path))) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *file = NULL, *train_opt = NULL, *only = NULL;
    const char *usage = "usage: ./sweep FILE.sweep [--train PATH] [--jobs N] [--only GLOB,...] [--dry-run | --no-train] [key=value ...]";
    Variant extra = {.n = 0};
    int dry_run = 0, no_train = 0, n_jobs = 1;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--dry-run") == 0) dry_run = 1;
        else if (strcmp(argv[i], "--no-train") == 0) no_train = 1;
        else if (strcmp(argv[i], "--train") == 0 && i + 1 < argc) train_opt = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc) {
            n_jobs = (int)strtol(argv[++i], &end, 10);
            if (*end || n_jobs < 1 || n_jobs > MAX_JOBS) die("--jobs %s: give a number of runs at once, 1 to %d", argv[i], MAX_JOBS);
        } else if (argv[i][0] != '-' && !file) file = argv[i];
        else if (file && strchr(argv[i], '=') && argv[i][0] != '=') {
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)(strchr(argv[i], '=') - argv[i]), argv[i]);
            check_value("command line", 1, key, strchr(argv[i], '=') + 1);
            add_override(&extra, key, strchr(argv[i], '=') + 1, "command line", 0);
        } else die("%s (unexpected '%s')", usage, argv[i]);
    }
    if (!file) die("%s", usage);
    if (dry_run && no_train) die("--dry-run and --no-train: give one (--dry-run lists the runs, --no-train evaluates the finished ones)");
    Sweep *s = xcalloc(1, sizeof *s, "sweep");
    parse_file(s, file);
    s->extra = extra;
    if (train_opt) copy_field(s->train, sizeof s->train, train_opt, file, 0, "--train");
    if (!s->train[0]) strcpy(s->train, "./train");
    if (access(s->train, X_OK) != 0) die("%s: trainer '%s' is not an executable file (build it with make, or set train = PATH)", file, s->train);
    expand(s);
    validate_runs(s);
    for (int e = 0; e < s->n_evals; e++) {   // exits naming the glob when nothing matches
        TokenSet t;
        tokens_load(&t, s->evals[e].glob, 65536);
        s->evals[e].tokens = t.n;
        tokens_free(&t);
    }
    // Each of n_jobs runs at once gets its share of the threads.
    int threads = n_jobs > 1 ? (n_threads() / n_jobs > 1 ? n_threads() / n_jobs : 1) : 0;
    int n_selected = 0;
    for (int r = 0; r < s->n_runs; r++) n_selected += selected(only, s->runs[r].name);
    if (!n_selected) die("--only %s: matches none of the %d runs' names (./sweep %s --dry-run lists them)", only, s->n_runs, file);
    printf("sweep %s: %d runs into %s", file, s->n_runs, s->out);
    if (only) printf(", %d of them selected by --only", n_selected);
    if (n_jobs > 1) printf(", %d at once, %d thread%s each", n_jobs, threads, threads > 1 ? "s" : "");
    printf("\n");
    if (!dry_run) make_dirs(s->out);
    // The trainer saves a checkpoint on SIGINT/SIGTERM; we outlive it to say so.
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    pid_t jobs[MAX_JOBS] = {0};
    int failed = 0, running = 0, next = 0;
    for (;;) {
        while (running < n_jobs && next < s->n_runs && !interrupted) {
            int r = next++;
            if (!selected(only, s->runs[r].name)) continue;
            if (!pending(s, &s->runs[r])) {
                printf("%s: already done, skipped\n", s->runs[r].name);
                continue;
            }
            if (dry_run) {
                run_job(s, &s->runs[r], threads, 1, 0);
                continue;
            }
            fflush(NULL);
            pid_t pid = fork();
            if (pid < 0) die("fork: %s", strerror(errno));
            if (pid == 0) _exit(run_job(s, &s->runs[r], threads, 0, no_train) ? 1 : 0);
            int slot = 0;
            while (jobs[slot]) slot++;
            jobs[slot] = pid;
            running++;
        }
        if (running == 0) break;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno != EINTR) die("waitpid: %s", strerror(errno));
            for (int j = 0; j < n_jobs && interrupted; j++)   // pass a signal on once to every job
                if (jobs[j]) kill(jobs[j], (int)interrupted);
            continue;
        }
        for (int j = 0; j < n_jobs; j++)
            if (jobs[j] == pid) jobs[j] = 0, running--;
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        write_results(s);
    }
    if (!dry_run) write_results(s);
    if (interrupted) {
        printf("interrupted: run `./sweep %s%s%s` again to continue where it stopped\n", file, only ? " --only " : "",
               only ? only : "");
        return 130;
    }
    if (failed) die("%s: %d of %d runs failed (their train.log says why)", file, failed, s->n_runs);
    if (!dry_run) {   // the tables, as results.md has them
        char path[CONFIG_STR + 32];
        snprintf(path, sizeof path, "%s/results.md", s->out);
        size_t len;
        char *md = read_file(path, &len);
        for (char *line = strtok(md, "\n"); line; line = strtok(NULL, "\n"))
            if (line[0] == '|' || line[0] == '#') printf("%s\n", line);
        free(md);
        printf("results: %s/results.md, %s/results.csv, %s/val_loss.svg\n", s->out, s->out, s->out);
    }
    return 0;
}
