// common.c — checked I/O and allocation, RNG, clock. See common.h.
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// The .tmp of a replacement in progress, removed if the program dies first.
static char pending_tmp[4200];

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (pending_tmp[0]) remove(pending_tmp);
    fflush(stdout);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

// Every block starts on a cache line. malloc's large blocks start 16 bytes
// into a page, so a row of a (T, C) array would straddle one more cache line
// than it needs and each vector load or store of it split across two
// (docs/performance.md, "Alignment").
enum { LINE = 64 };

void *xmalloc(size_t bytes, const char *what) {
    size_t rounded = bytes / LINE * LINE + LINE;   // aligned_alloc wants a multiple; never 0
    void *p = rounded > bytes ? aligned_alloc(LINE, rounded) : NULL;
    if (!p) die("out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *xcalloc(size_t n, size_t size, const char *what) {
    if (size && n > SIZE_MAX / size) die("out of memory allocating %zu x %zu bytes for %s", n, size, what);
    void *p = xmalloc(n * size, what);
    memset(p, 0, n * size);
    return p;
}

FILE *xfopen(const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (!f) die("cannot open '%s' for %s: %s", path, mode[0] == 'r' ? "reading" : "writing", strerror(errno));
    // Linux opens a directory for reading; its "size" is then nonsense.
    struct stat st;
    if (mode[0] == 'r' && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        die("cannot read '%s': it is a directory, not a file", path);
    }
    return f;
}

void xfread(void *ptr, size_t size, size_t n, FILE *f, const char *path) {
    if (n == 0) return;
    size_t got = fread(ptr, size, n, f);
    if (got != n) {
        if (ferror(f)) die("read error in '%s': %s", path, strerror(errno));
        die("'%s' is truncated: expected %zu more bytes, found %zu", path, size * n, size * got);
    }
}

void xfwrite(const void *ptr, size_t size, size_t n, FILE *f, const char *path) {
    if (n == 0) return;
    if (fwrite(ptr, size, n, f) != n)
        die("cannot write to '%s': %s (is the disk full?)", path, strerror(errno));
}

void xfclose(FILE *f, const char *path) {
    if (fclose(f) != 0) die("cannot close '%s': %s (is the disk full?)", path, strerror(errno));
}

FILE *replace_open(const char *path, const char *mode, char *tmp, size_t tmp_size) {
    if ((size_t)snprintf(tmp, tmp_size, "%s.tmp", path) >= tmp_size || strlen(tmp) >= sizeof pending_tmp)
        die("path '%s' is too long", path);
    FILE *f = xfopen(tmp, mode);
    strcpy(pending_tmp, tmp);
    return f;
}

// Make a rename durable: the directory entry itself must reach the disk.
static void fsync_parent_dir(const char *path) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);  // best effort: some file systems refuse fsync on directories
        close(fd);
    }
}

void replace_commit(FILE *f, const char *tmp, const char *path) {
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) die("cannot write '%s': %s (is the disk full?)", tmp, strerror(errno));
    xfclose(f, tmp);
    if (rename(tmp, path) != 0) die("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    pending_tmp[0] = '\0';
    fsync_parent_dir(path);
}

void xfseek(FILE *f, long offset, int whence, const char *path) {
    if (fseek(f, offset, whence) != 0) die("cannot seek in '%s': %s", path, strerror(errno));
}

long xfsize(FILE *f, const char *path) {
    long here = ftell(f);
    xfseek(f, 0, SEEK_END, path);
    long size = ftell(f);
    if (size < 0) die("cannot tell the size of '%s': %s", path, strerror(errno));
    xfseek(f, here, SEEK_SET, path);
    return size;
}

char *read_file(const char *path, size_t *len) {
    FILE *f = xfopen(path, "rb");
    long size = xfsize(f, path);
    char *buf = xmalloc((size_t)size + 1, path);
    xfread(buf, 1, (size_t)size, f, path);
    xfclose(f, path);
    buf[size] = '\0';
    if (len) *len = (size_t)size;
    return buf;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

void make_dirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) die("directory path '%s' is empty or too long", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            die("cannot create directory '%s': %s", buf, strerror(errno));
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) die("'%s' exists but is not a directory", path);
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(Rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_u64(Rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(Rng *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }

double rng_normal(Rng *r) {
    // Box–Muller; 1 - u keeps the log argument in (0, 1].
    double u1 = 1.0 - rng_uniform(r), u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

uint64_t rng_below(Rng *r, uint64_t n) {
    // Rejection sampling removes modulo bias.
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng_u64(r); while (x >= limit);
    return x % n;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double prof_seconds[N_PROF];
const char *const prof_names[N_PROF] = {"matmul fwd", "matmul bwd", "attention fwd", "attention bwd", "layernorm",
                                        "gelu", "loss", "optimizer", "other"};

// The first number on the line of `path` that starts with `key` (0 if none).
static double read_number(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    double x = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) {
            x = atof(line + strlen(key));
            break;
        }
    fclose(f);
    return x;
}

double memory_available(void) {
    double avail = read_number("/proc/meminfo", "MemAvailable:") * 1024;   // kB
    double limit = read_number("/sys/fs/cgroup/memory.max", ""), used = read_number("/sys/fs/cgroup/memory.current", "");
    if (limit > 0 && limit - used < avail) avail = limit - used;           // "max" (no limit) reads as 0
    return avail > 0 ? avail : 0;
}

void memory_check(double bytes, const char *what, const char *advice) {
    double avail = memory_available();
    if (avail > 0 && bytes > avail)
        die("%s needs an estimated %.2f GB of memory, but only %.2f GB is available: %s", what, bytes / 1e9,
            avail / 1e9, advice);
}

int run_captured(void (*fn)(void *), void *arg, char *msg, size_t n) {
    int fd[2];
    if (pipe(fd) != 0) die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1);
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t k;
    char sink[256];
    while ((k = read(fd[0], len + 1 < n ? msg + len : sink, len + 1 < n ? n - 1 - len : sizeof sink)) > 0)
        if (len + 1 < n) len += (size_t)k;   // past n: drained, so the child never blocks
    if (n) msg[len] = '\0';
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid: %s", strerror(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int n_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
