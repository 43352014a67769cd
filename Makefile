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
	tests/tools/run-tests.sh --unit $(UNIT_BINS) --bats tests/bats

demo: deps
	$(MAKE) --no-print-directory $(BUILD)/pgprelude
	tests/tools/demo.sh

clean:
	rm -rf $(BUILD)
