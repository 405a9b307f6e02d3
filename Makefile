# jktcp — build, test, demo, bench.
#   make                 lib/libjktcp.a and lib/libjktcp.so (soname libjktcp.so.1)
#   make test            install missing packages, build, run every Criterion test
#   make test SANITIZE=address,undefined   same under ASan/UBSan (build in build-*/)
#   make test-tsan       threaded tests under ThreadSanitizer
#   make demo            real connection to the Linux kernel in a private netns
#   make install PREFIX=/usr/local
CC       ?= cc
PREFIX   ?= /usr/local
SANITIZE ?=
comma    := ,
DEBIAN_PACKAGES := liburcu-dev libcriterion-dev tshark iproute2 pkg-config clang libclang-rt-14-dev

SOVERSION := 1
VERSION   := 0.2.0

ifeq ($(SANITIZE),)
  B       := build
  LIBDIR  := lib
  OPT     ?= -O2
  SANFLAGS :=
else
  B       := build-$(subst $(comma),-,$(SANITIZE))
  LIBDIR  := $(B)
  OPT     ?= -O1
  SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) -pthread $(SANFLAGS)
LIB_CFLAGS  := $(CFLAGS_BASE) -fPIC -fvisibility=hidden -Iinclude -Ilib
TEST_CFLAGS := $(CFLAGS_BASE) -Iinclude -Ilib -Itests -Wno-unused-parameter
LDLIBS      := -pthread -lurcu-bp -lurcu-cds -lurcu-common

LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(patsubst lib/%.c,$(B)/lib/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard tests/*.c tests/diff/*.c)
TEST_OBJ := $(patsubst tests/%.c,$(B)/tests/%.o,$(TEST_SRC))
TOOL_SRC := $(wildcard tools/*.c)
TOOLS    := $(patsubst tools/%.c,$(B)/tools/%,$(TOOL_SRC))

STATIC := $(LIBDIR)/libjktcp.a
SHARED := $(LIBDIR)/libjktcp.so.$(VERSION)

.PHONY: all deps test test-tsan demo bench install clean tools
all: $(STATIC) $(SHARED) tools

$(B)/lib/%.o: lib/%.c $(wildcard lib/*.h) include/jktcp.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libjktcp.so.$(SOVERSION) $(SANFLAGS) -o $@ $^ $(LDLIBS)
	ln -sf libjktcp.so.$(VERSION) $(LIBDIR)/libjktcp.so.$(SOVERSION)
	ln -sf libjktcp.so.$(VERSION) $(LIBDIR)/libjktcp.so

$(B)/tests/%.o: tests/%.c $(wildcard tests/*.h tests/diff/*.h) $(wildcard lib/*.h) include/jktcp.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c $< -o $@

# Tests link the static archive so they can reach internal (hidden) symbols.
$(B)/tests/jktcp_tests: $(TEST_OBJ) $(STATIC)
	$(CC) $(SANFLAGS) -o $@ $(TEST_OBJ) $(STATIC) -lcriterion $(LDLIBS)

$(B)/tools/%: tools/%.c $(STATIC) include/jktcp.h tests/netns.c tests/netns.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

tools: $(TOOLS)

# Installs what is missing (Debian, as root); harmless when all is there.
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Criterion runs each test in its own process; kernel-peer tests unshare a
# private network namespace inside it. JOBS bounds parallel tests.
JOBS ?= 2
export LSAN_OPTIONS := suppressions=$(CURDIR)/tests/lsan.supp
# TEST_DEPS: what the Criterion tests run besides themselves (tools, example
# programs, ...); each section below that adds a test adds its target here.
TEST_DEPS :=
test: deps
	$(MAKE) --no-print-directory fuzz-regress
	$(MAKE) --no-print-directory $(B)/tests/jktcp_tests $(TEST_DEPS)
	$(B)/tests/jktcp_tests -j$(JOBS) $(TEST_ARGS)

# Threaded-handle tests (TSAN_TEST_SRC) under ThreadSanitizer. Criterion
# aborts at start-up under TSan, so they are built with -DJKT_PLAIN against
# the plain runner tests/tsan_main.c (one forked process per test, as with
# Criterion). TEST_ARGS: substrings of "suite::name" selecting tests. Any
# TSan report (exit 66 in a test's process) fails the run.
TSAN_TEST_BIN    := build-thread/tests/jktcp_tsan_tests
TSAN_TEST_SRC    := tests/test_thread.c tests/test_ids.c tests/test_nonblock.c tests/test_readiness.c \
                    tests/test_eintr.c tests/test_chaos.c tests/test_abi.c tests/test_errors.c
TSAN_TEST_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -g -O1 \
                    -pthread -fsanitize=thread -fno-omit-frame-pointer -DJKT_PLAIN \
                    -Iinclude -Ilib -Itests
test-tsan: deps
	$(MAKE) --no-print-directory SANITIZE=thread build-thread/libjktcp.a
	@mkdir -p $(dir $(TSAN_TEST_BIN))
	$(CC) $(TSAN_TEST_CFLAGS) -o $(TSAN_TEST_BIN) $(TSAN_TEST_SRC) tests/netns.c tests/rig.c \
	  tests/tsan_main.c build-thread/libjktcp.a $(LDLIBS)
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1 exitcode=66" \
	  $(TSAN_TEST_BIN) $(TEST_ARGS)

demo: deps
	$(MAKE) --no-print-directory $(B)/tools/jktcp-demo
	$(B)/tools/jktcp-demo

bench: deps
	$(MAKE) --no-print-directory OPT=-O3 $(B)/tools/jktcp-bench
	$(B)/tools/jktcp-bench $(BENCH_ARGS)

jktcp.pc: Makefile
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: jktcp\nDescription: userspace TCP/IP over raw IP packet pipes\nVersion: %s\nLibs: -L$${libdir} -ljktcp\nLibs.private: -lurcu-bp -lurcu-cds -lurcu-common -pthread\nCflags: -I$${includedir}\n' '$(PREFIX)' '$(VERSION)' > $@

install: $(STATIC) $(SHARED) jktcp.pc
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/jktcp.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libjktcp.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libjktcp.so.$(SOVERSION)
	ln -sf libjktcp.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libjktcp.so
	install -m 644 jktcp.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

# ---- libFuzzer targets (tests/fuzz/) --------------------------------------
#   make fuzz [FUZZ_SECONDS=60]  build build-fuzz/fuzz_* with clang and run each
#                                for FUZZ_SECONDS on tests/fuzz/corpus/<target>/
#                                (new inputs go to build-fuzz/corpus/<target>/,
#                                crashes to build-fuzz/artifacts/<target>/)
#   make fuzz-run-<target>       just one of them
#   make fuzz-regress            run each target once over its corpus (seconds);
#                                fails on any crash, leak or invariant
# The library sources are compiled straight into each fuzzer (no hidden
# visibility) with the same sanitizers. FUZZ_SRC=<dir> builds against another
# checkout's lib/ and include/ (e.g. a `git archive HEAD` snapshot).
FUZZ_CC      ?= clang
FUZZ_SRC     ?= .
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz_parse fuzz_reasm fuzz_framer fuzz_adapter_conn fuzz_adapter_listen fuzz_api_threads
FUZZ_DIR     ?= build-fuzz
FUZZ_LIB_SRC := $(wildcard $(FUZZ_SRC)/lib/*.c)
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -I$(FUZZ_SRC)/include -I$(FUZZ_SRC)/lib -Itests/fuzz -pthread
FUZZ_BINS    := $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
FUZZ_MAXLEN_fuzz_parse          := 70000
FUZZ_MAXLEN_fuzz_reasm          := 200000
FUZZ_MAXLEN_fuzz_framer         := 200000
FUZZ_MAXLEN_fuzz_adapter_conn   := 20000
FUZZ_MAXLEN_fuzz_adapter_listen := 20000
FUZZ_MAXLEN_fuzz_api_threads    := 514

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(FUZZ_LIB_SRC) \
                    $(wildcard $(FUZZ_SRC)/lib/*.h) $(FUZZ_SRC)/include/jktcp.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRC) $(LDLIBS)

$(FUZZ_DIR)/gen_corpus: tests/fuzz/gen_corpus.c tests/fuzz/fuzz_common.h $(FUZZ_SRC)/lib/packet.c \
                        $(FUZZ_SRC)/lib/packet.h $(FUZZ_SRC)/lib/icmp.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -I$(FUZZ_SRC)/include -I$(FUZZ_SRC)/lib -Itests/fuzz \
	  -o $@ $< $(FUZZ_SRC)/lib/packet.c $(FUZZ_SRC)/lib/icmp.c

.PHONY: fuzz fuzz-build fuzz-regress fuzz-corpus
fuzz-build: $(FUZZ_BINS)

# Regenerate the seed corpora (tests/fuzz/corpus/<target>/seed-*).
fuzz-corpus: $(FUZZ_DIR)/gen_corpus
	$(FUZZ_DIR)/gen_corpus tests/fuzz/corpus

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do $(MAKE) --no-print-directory fuzz-run-$$t; done

# One target: make fuzz-run-fuzz_parse FUZZ_SECONDS=600
fuzz-run-%: $(FUZZ_DIR)/%
	@mkdir -p $(FUZZ_DIR)/corpus/$* $(FUZZ_DIR)/artifacts/$*
	@echo "== $*: $(FUZZ_SECONDS)s"
	$(FUZZ_DIR)/$* -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -max_len=$(FUZZ_MAXLEN_$*) \
	  -artifact_prefix=$(FUZZ_DIR)/artifacts/$*/ $(FUZZ_DIR)/corpus/$* tests/fuzz/corpus/$*

# Every corpus file runs once (seconds); any crash, leak or invariant fails.
fuzz-regress: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  files=$$(ls tests/fuzz/corpus/$$t/* 2>/dev/null); \
	  [ -n "$$files" ] || { echo "$$t: empty corpus" >&2; exit 1; }; \
	  echo "== $$t: $$(echo $$files | wc -w) inputs"; \
	  $(FUZZ_DIR)/$$t -runs=1 $$files >$(FUZZ_DIR)/$$t.regress.log 2>&1 || \
	    { tail -n 40 $(FUZZ_DIR)/$$t.regress.log >&2; echo "$$t: FAILED" >&2; exit 1; }; \
	done

clean:
	rm -rf build build-* lib/*.a lib/*.so lib/*.so.* jktcp.pc
