// test/test.h — our whole test harness: checks that count, never abort, and a
// closing line "NAME: N passed, N failed, N skipped" that test/run.sh adds up.
//
// Use: call CHECK/CHECK_CLOSE inside test functions, SKIP(reason) for a test
// that cannot run here (it is announced, and counted), and finish main() with
// `return test_summary("name");` — the exit code is 1 when anything failed.
#ifndef TEST_H
#define TEST_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int test_passed, test_failed, test_skipped;

#define CHECK(cond, ...) do { \
    if (cond) test_passed++; \
    else { test_failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
} while (0)

// |a - b| <= tol * max(1, |a|, |b|): relative for large values, absolute near zero.
#define CHECK_CLOSE(a, b, tol, ...) do { \
    double ca_ = (double)(a), cb_ = (double)(b), m_ = fabs(ca_) > fabs(cb_) ? fabs(ca_) : fabs(cb_); \
    if (m_ < 1) m_ = 1; \
    CHECK(fabs(ca_ - cb_) <= (tol) * m_ && ca_ == ca_ && cb_ == cb_, \
          "%s = %.12g vs %s = %.12g (tol %g): ", #a, ca_, #b, cb_, (double)(tol)); \
    if (!(fabs(ca_ - cb_) <= (tol) * m_)) { printf("  "); printf(__VA_ARGS__); printf("\n"); } \
} while (0)

#define SKIP(...) do { test_skipped++; printf("SKIP: "); printf(__VA_ARGS__); printf("\n"); } while (0)

// Relative error used by the gradient checks: |a-b| / max(|a|+|b|, floor).
static inline double rel_err(double a, double b, double floor_) {
    double d = fabs(a) + fabs(b);
    return fabs(a - b) / (d > floor_ ? d : floor_);
}

// Run fn(arg) in a child process and check that it exits non-zero with
// `expect` somewhere in its stderr: how we test the paths that call die().
// Returns 1 when it did.
static inline int expect_die(void (*fn)(void *), void *arg, const char *expect) {
    int fd[2];
    if (pipe(fd) != 0) return 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1);
        fn(arg);
        _exit(0);
    }
    close(fd[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 && (k = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)k;
    buf[n] = '\0';
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int ok = WIFEXITED(status) && WEXITSTATUS(status) != 0 && strstr(buf, expect) != NULL;
    if (!ok) printf("  expected a clean failure mentioning '%s'; got %s %d, stderr: %s\n", expect,
                    WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), buf);
    return ok;
}

static inline int test_summary(const char *name) {
    printf("%s: %d passed, %d failed, %d skipped\n", name, test_passed, test_failed, test_skipped);
    return test_failed ? 1 : 0;
}

#endif
