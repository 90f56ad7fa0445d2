// fuzz/harness.h — what every libFuzzer target here shares.
//
// The library reports bad input with die(): one "error: ..." line, then
// exit(1). For a fuzzer that is a clean rejection, not a finding, but libFuzzer
// treats any exit as the end of the run. The targets are linked with
//   -Wl,--wrap=exit,--wrap=fopen,--wrap=fclose
// so that, inside fuzz_call() only, exit() longjmps back to fuzz_call (which
// returns 0) and files the library opened and could not close are closed
// there: no library code changes for fuzzing, and no leaked FILE or fd per
// rejected input. Outside fuzz_call, exit/fopen/fclose behave as usual.
// The one thing a die() can still leak is heap memory allocated before it;
// the library frees its buffers before dying where a fuzzer can reach.
#ifndef FUZZ_HARNESS_H
#define FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

// Run fn(arg); 1 when it returned, 0 when it called die() (or exit()).
int fuzz_call(void (*fn)(void *), void *arg);

// Write data to this process's scratch file (in /dev/shm when there is one)
// and return its path, for the loaders that read files.
const char *fuzz_scratch_file(const uint8_t *data, size_t size);

// A finding that is not a crash (a broken round trip): print and abort.
#define FUZZ_ASSERT(cond, what) do { if (!(cond)) fuzz_fail(what, __FILE__, __LINE__); } while (0)
void fuzz_fail(const char *what, const char *file, int line) __attribute__((noreturn));

#endif
