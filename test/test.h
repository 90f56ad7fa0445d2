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

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common.h"

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
    char buf[4096];
    int status = run_captured(fn, arg, buf, sizeof buf);
    int ok = status != 0 && strstr(buf, expect) != NULL;
    if (!ok) printf("  expected a clean failure mentioning '%s'; got status %d, stderr: %s\n", expect, status, buf);
    return ok;
}

static inline int test_summary(const char *name) {
    printf("%s: %d passed, %d failed, %d skipped\n", name, test_passed, test_failed, test_skipped);
    return test_failed ? 1 : 0;
}

#endif
