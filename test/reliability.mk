# test/reliability.mk — sanitizer, fuzzing and valgrind targets (included by
# the Makefile; docs/reliability.md explains each and what it found).
#
#   make test-sanitize          the whole suite built with ASan + UBSan (gcc) in build/san
#   make fuzz                   libFuzzer targets in build/fuzz (clang)
#   make fuzz-run FUZZ_SECONDS=30   each target on its seed corpus, one after another
#   make fuzz-seeds             rewrite the binary seeds in fuzz/corpus (committed)
#   make valgrind               memcheck: a short training run and ./sample (build/vg)

SAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_ENV   = ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

test-sanitize:
	$(SAN_ENV) $(MAKE) test BUILD=build/san BIN=build/san OPT="$(SAN_FLAGS)" EXTRA_LDFLAGS="-fsanitize=address,undefined"

FUZZ_CC      ?= clang
FUZZ_TARGETS  = config shard ckpt bpe
FUZZ_SECONDS ?= 30
FUZZ_FLAGS    = $(WARN) -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ      = $(LIB_SRC:%.c=build/fuzz/%.o) build/fuzz/fuzz/harness.o
# die() -> exit(): inside fuzz_call, exit longjmps back (fuzz/harness.h).
FUZZ_WRAP     = -Wl,--wrap=exit,--wrap=fopen,--wrap=fclose

build/fuzz/%.o: %.c $(HDRS) fuzz/harness.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/harness.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) $(FUZZ_WRAP) -o $@ -lm

fuzz: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
.SECONDARY: $(FUZZ_OBJ)

# New inputs go to build/fuzz/corpus_<target>; fuzz/corpus/<target> (the
# committed seeds) is only read. A finding is saved in build/fuzz/artifacts/.
fuzz-run: fuzz
	@mkdir -p build/fuzz/artifacts
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p build/fuzz/corpus_$$t; \
	    echo "== fuzz_$$t for $(FUZZ_SECONDS) s (log: build/fuzz/$$t.log)"; \
	    build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -close_fd_mask=3 -print_final_stats=1 \
	        -artifact_prefix=build/fuzz/artifacts/ build/fuzz/corpus_$$t fuzz/corpus/$$t > build/fuzz/$$t.log 2>&1 \
	        || { tail -n 60 build/fuzz/$$t.log; echo "!! fuzz_$$t found a problem"; exit 1; }; \
	    grep -E '^Done [0-9]+ runs' build/fuzz/$$t.log; \
	done

fuzz-seeds: $(LIB_F)
	@mkdir -p build/seeds
	$(CC) $(ALL_CFLAGS) fuzz/make_seeds.c $(LIB_F) $(ALL_LDFLAGS) -o build/seeds/make_seeds $(LDLIBS)
	build/seeds/make_seeds

valgrind:
	$(MAKE) BUILD=build/vg BIN=build/vg NO_OMP=1 OPT="-O1 -g" build/vg/train build/vg/sample
	test/valgrind.sh build/vg

.PHONY: test-sanitize fuzz fuzz-run fuzz-seeds valgrind
