# hedgehog.c — build the trainer, tools, benchmarks and tests.
#
#   make              trainer (./train), sampler (./sample), data tools
#   make test         build everything and run the test suite
#   make NO_OMP=1     build without OpenMP (single thread)
#   make CC=clang     any C11 compiler works; gcc is the reference
#   make MPI=1        the same programs with MPI (mpicc; Debian's libopenmpi-dev):
#                     data-parallel training with mpirun (docs/distributed.md);
#                     plain `make` switches back
#   make test-mpi     MPI's own tests (builds its binaries in build/mpi/)
#
#   make test-sanitize   the suite again, built with ASan + UBSan (build/san/)
#   make fuzz            libFuzzer targets (clang); make fuzz-run FUZZ_SECONDS=30
#   make valgrind        memcheck on a short training run and on ./sample
#
# Sources are compiled twice: with real = float for the programs (build/f/)
# and with real = double for the gradient-check tests (build/d/). BUILD moves
# the objects and test binaries, BIN the programs (the tests run $(BIN)/train
# through the TRAIN_BIN and SAMPLE_BIN variables): docs/reliability.md.

CC      ?= gcc
# MPI=1: mpicc, dist.c's MPI collectives, objects apart in build/mpi.
ifdef MPI
  CC     := mpicc
  MPIFLAG = -DHH_MPI
  BUILD  ?= build/mpi
endif
# -fno-math-errno: nothing reads errno after maths, and without it sqrt and
# floor cannot be vectorised.
# On x86-64, GCC and Clang vectorise plain loops 256 bits wide even where
# the CPU has AVX-512; 512 bits halves the time of the exp-bound loops
# (GELU, the loss): docs/performance.md.
ifeq ($(shell uname -m),x86_64)
  WIDE   = -mprefer-vector-width=512
endif
OPT     ?= -O3 -march=native -fno-math-errno $(WIDE)
CFLAGS  ?= $(OPT)
WARN     = -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unknown-pragmas -Wshadow -Wstrict-prototypes
LDLIBS   = -lm
ifndef NO_OMP
  OMPFLAG = -fopenmp
endif
ALL_CFLAGS = $(WARN) $(CFLAGS) $(OMPFLAG) $(MPIFLAG) $(EXTRA_CFLAGS)
ALL_LDFLAGS = $(OMPFLAG) $(LDFLAGS) $(EXTRA_LDFLAGS)
BUILD   ?= build
BIN     ?= .
# Which build the programs in BIN are (plain or MPI): a change relinks them.
FLAVOUR := $(if $(MPI),mpi,plain)
$(shell mkdir -p $(BUILD); [ "$$(cat build/.bin-flavour-$(subst /,_,$(BIN)) 2>/dev/null)" = "$(FLAVOUR)" ] || \
        echo $(FLAVOUR) > build/.bin-flavour-$(subst /,_,$(BIN)))
BIN_FLAVOUR := build/.bin-flavour-$(subst /,_,$(BIN))

# The library every program links: one concern a file.
LIB_SRC = common.c config.c dist.c matmul.c attention.c attention_softmax.c attention_linear.c feature_maps.c \
          model.c checkpoint.c data/shard.c data/loader.c data/tokenizer.c data/corpus.c \
          plot.c analysis.c data/recall.c
LIB_F = $(LIB_SRC:%.c=$(BUILD)/f/%.o)
LIB_D = $(LIB_SRC:%.c=$(BUILD)/d/%.o)
HDRS  = $(wildcard *.h data/*.h test/*.h bench/*.h)

# The experiment tools (docs/results.md): sweeps, recall task, attention analysis.
TOOLS = sweep recall analyze
PROGS = train sample data/prepare $(TOOLS)

# Tests: float-built and double-built binaries, run in this order.
TESTS_F = test_config test_shard test_matmul test_train test_tokenizer test_reliability test_attention_f test_reference_f \
          test_sweep test_analysis
TESTS_D = test_grad test_attention test_reference
TEST_BINS = $(TESTS_D:%=$(BUILD)/t/%) $(TESTS_F:%=$(BUILD)/t/%)

# Benchmarks (make bench): float-built, each linked with the FMA-peak probe.
BENCH = bench/bench_matmul bench/bench_tokenizer bench/bench_train bench/bench_attention

all: $(PROGS:%=$(BIN)/%)

$(BUILD)/f/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/d/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DREAL_DOUBLE -c $< -o $@

$(BIN)/train: $(BUILD)/f/train.o $(LIB_F) $(BIN_FLAVOUR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) -o $@ $(LDLIBS)

$(BIN)/sample: $(BUILD)/f/sample.o $(LIB_F) $(BIN_FLAVOUR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) -o $@ $(LDLIBS)

$(BIN)/data/prepare: $(BUILD)/f/data/prepare.o $(LIB_F) $(BIN_FLAVOUR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) -o $@ $(LDLIBS)

$(TOOLS:%=$(BIN)/%): $(BIN)/%: $(BUILD)/f/%.o $(LIB_F) $(BIN_FLAVOUR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) -o $@ $(LDLIBS)

# Fetch the GPT-2 vocabulary and the Brown Corpus, and tokenize Brown (docs/data.md).
data: data/prepare
	data/fetch.sh

$(TESTS_F:%=$(BUILD)/t/%): $(BUILD)/t/%: $(BUILD)/f/test/%.o $(LIB_F)
	@mkdir -p $(BUILD)/t
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS)

# test_attention_f and test_reference_f are test_attention.c and test_reference.c built with float.
$(BUILD)/f/test/test_attention_f.o: test/test_attention.c
$(BUILD)/f/test/test_reference_f.o: test/test_reference.c

$(TESTS_D:%=$(BUILD)/t/%): $(BUILD)/t/%: $(BUILD)/d/test/%.o $(LIB_D)
	@mkdir -p $(BUILD)/t
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS)

$(BENCH:%=$(BIN)/%): $(BIN)/bench/%: $(BUILD)/f/bench/%.o $(BUILD)/f/bench/peak.o $(LIB_F)
	@mkdir -p $(BIN)/bench
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS)

bench: $(BENCH:%=$(BIN)/%)

# The README's first command: data, then three attentions trained side by
# side for a few minutes (configs/demo.sweep), their table and plot, and a
# sample of each. DEMO_STEPS: training steps per attention.
DEMO_STEPS ?= 300
demo: all data
	./sweep configs/demo.sweep --jobs 2 max_steps=$(DEMO_STEPS)
	@for run in softmax hedgehog_distill_weight-1 elu; do \
	    echo "== a sample from attention-$$run (out/demo/attention-$$run/model.ckpt):"; \
	    ./sample out/demo/attention-$$run/model.ckpt -n 200 -t 0.8 -k 40 -s 1 || exit 1; \
	done

# The benchmarks are built (not run) so that a change that breaks them fails here.
test: $(PROGS:%=$(BIN)/%) $(TEST_BINS) $(BENCH:%=$(BIN)/%)
	@TRAIN_BIN=$(BIN)/train SAMPLE_BIN=$(BIN)/sample test/run.sh $(TEST_BINS) test/docs.sh

# Data-parallel training's tests: MPI binaries apart (build/mpi/bin), the
# plain ./train as the one-process reference (docs/distributed.md).
test-mpi: $(BIN)/train $(BIN)/data/prepare
	$(MAKE) MPI=1 BUILD=build/mpi BIN=build/mpi/bin build/mpi/bin/train
	test/mpi.sh build/mpi/bin/train $(BIN)/train

include test/reliability.mk

clean:
	rm -rf build $(PROGS) $(BENCH)

.PHONY: all test clean bench data demo test-mpi
