// fuzz/harness.c — see harness.h: exit() inside fuzz_call longjmps back.
#include "harness.h"

#include <sanitizer/common_interface_defs.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static jmp_buf jump;
static volatile int active;
enum { MAX_OPEN = 64 };
static FILE *open_files[MAX_OPEN];
static int n_open;

void __real_exit(int code) __attribute__((noreturn));
FILE *__real_fopen(const char *path, const char *mode);
int __real_fclose(FILE *f);

void __wrap_exit(int code) {
    if (active) {
        active = 0;
        longjmp(jump, 1);
    }
    __real_exit(code);
}

FILE *__wrap_fopen(const char *path, const char *mode) {
    FILE *f = __real_fopen(path, mode);
    if (f && active) {
        if (n_open == MAX_OPEN) fuzz_fail("more than 64 files open at once", __FILE__, __LINE__);
        open_files[n_open++] = f;
    }
    return f;
}

int __wrap_fclose(FILE *f) {
    for (int i = 0; i < n_open; i++)
        if (open_files[i] == f) { open_files[i] = open_files[--n_open]; break; }
    return __real_fclose(f);
}

static void close_leftovers(void) {
    while (n_open > 0) __real_fclose(open_files[--n_open]);
}

int fuzz_call(void (*fn)(void *), void *arg) {
    if (setjmp(jump)) {
        close_leftovers();
        return 0;
    }
    active = 1;
    fn(arg);
    active = 0;
    close_leftovers();
    return 1;
}

static char path[256];
static void remove_scratch(void) { unlink(path); }

const char *fuzz_scratch_file(const uint8_t *data, size_t size) {
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/hh_fuzz_%d.bin", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
        atexit(remove_scratch);
    }
    FILE *f = __real_fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || __real_fclose(f) != 0) fuzz_fail("cannot write the scratch file", __FILE__, __LINE__);
    return path;
}

void fuzz_fail(const char *what, const char *file, int line) {
    char msg[512];
    snprintf(msg, sizeof msg, "FUZZ FINDING %s:%d: %s", file, line, what);
    fprintf(stderr, "%s\n", msg);
    __sanitizer_report_error_summary(msg);  // reaches the log even with -close_fd_mask=2
    abort();
}
