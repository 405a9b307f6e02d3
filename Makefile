# SPDX-License-Identifier: MIT
# jktcp — build, test, demo, bench.
#   make                 build/libjktcp.a and build/libjktcp.so (soname libjktcp.so.1)
#   make test            install missing packages, build, run every Criterion test
#   make test SANITIZE=address,undefined   same under ASan/UBSan (build in build-*/)
#   make test-tsan       threaded tests under ThreadSanitizer
#   make test-posix      threaded tests on the plain-POSIX platform layer (make test runs it)
#   make PLATFORM=posix  the library on lib/platform_posix.c instead of lib/platform_linux.c
#   make demo            the threaded handle against the Linux kernel's TCP in a private netns
#   make bench-loss      the loss table: jktcp vs the kernel sending over a lossy link
#   make install PREFIX=/usr/local [DESTDIR=/stage]   (make uninstall: the same variables)
# Build outputs go to build/ (build-<sanitizers>/ with SANITIZE, a -posix
# suffix with PLATFORM=posix). The user's
# CPPFLAGS, CFLAGS and LDFLAGS are appended to ours (CFLAGS=-Wno-error drops -Werror).
CC       ?= cc
PREFIX   ?= /usr/local
SANITIZE ?=
PLATFORM ?= linux
PLATFORMS := linux posix
comma    := ,
ifeq ($(filter $(PLATFORM),$(PLATFORMS)),)
  $(error PLATFORM=$(PLATFORM): one of $(PLATFORMS))
endif
DEBIAN_PACKAGES := liburcu-dev libcriterion-dev tshark iproute2 pkg-config clang libclang-rt-14-dev g++ curl python3-pytest

SOVERSION := 1
VERSION   := 0.2.0

ifeq ($(SANITIZE),)
  B_BASE  := build
  OPT     ?= -O2
  SANFLAGS :=
else
  B_BASE  := build-$(subst $(comma),-,$(SANITIZE))
  OPT     ?= -O1
  SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
# The platform layer's back end (lib/platform.h): lib/platform_$(PLATFORM).c.
B       := $(B_BASE)$(if $(filter posix,$(PLATFORM)),-posix)
B_POSIX := $(B_BASE)-posix
LIBDIR  := $(B)

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) -pthread $(SANFLAGS)
LIB_CFLAGS  := $(CFLAGS_BASE) -fPIC -fvisibility=hidden -Iinclude -Ilib $(CPPFLAGS) $(CFLAGS)
TEST_CFLAGS := $(CFLAGS_BASE) -Iinclude -Ilib -Itests -Itests/support -Wno-unused-parameter \
               $(CPPFLAGS) $(CFLAGS)
LDLIBS      := -pthread -lurcu-bp -lurcu-cds -lurcu-common

PLATFORM_OTHER := $(patsubst %,lib/platform_%.c,$(filter-out $(PLATFORM),$(PLATFORMS)))
LIB_SRC  := $(filter-out $(PLATFORM_OTHER),$(wildcard lib/*.c))
LIB_OBJ  := $(patsubst lib/%.c,$(B)/lib/%.o,$(LIB_SRC))
# tests/support/ (the scripted peer, namespace/TUN, kernel servers, bridge,
# rigs, minitest) is built once into $(SUPPORT); every other .c under tests/
# (one directory deep: tcp/, api/, unit/, system/, diff/, ...) is part of the
# Criterion binary, except the libFuzzer targets (tests/fuzz/) and
# tests/support/tsan_main.c (the runner of `make test-tsan`).
SUPPORT_SRC := $(filter-out tests/support/tsan_main.c,$(wildcard tests/support/*.c))
SUPPORT_OBJ := $(patsubst tests/%.c,$(B)/tests/%.o,$(SUPPORT_SRC))
SUPPORT     := $(B)/tests/libjktsupport.a
TEST_SRC := $(filter-out tests/support/% tests/fuzz/%,$(wildcard tests/*.c tests/*/*.c))
TEST_OBJ := $(patsubst tests/%.c,$(B)/tests/%.o,$(TEST_SRC))
TEST_HDR := $(filter-out tests/fuzz/%,$(wildcard tests/*.h tests/*/*.h))
TOOL_SRC := $(wildcard tools/*.c)
TOOLS    := $(patsubst tools/%.c,$(B)/tools/%,$(TOOL_SRC))

STATIC := $(LIBDIR)/libjktcp.a
SHARED := $(LIBDIR)/libjktcp.so.$(VERSION)

.PHONY: all deps test test-tsan test-posix demo bench install clean tools
all: $(STATIC) $(SHARED) tools

$(B)/lib/%.o: lib/%.c $(wildcard lib/*.h) include/jktcp.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libjktcp.so.$(SOVERSION) $(SANFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	ln -sf libjktcp.so.$(VERSION) $(LIBDIR)/libjktcp.so.$(SOVERSION)
	ln -sf libjktcp.so.$(VERSION) $(LIBDIR)/libjktcp.so

$(B)/tests/%.o: tests/%.c $(TEST_HDR) $(wildcard lib/*.h) include/jktcp.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c $< -o $@

$(SUPPORT): $(SUPPORT_OBJ)
	rm -f $@ && ar rcs $@ $^

# Tests link the static archive so they can reach internal (hidden) symbols.
$(B)/tests/jktcp_tests: $(TEST_OBJ) $(SUPPORT) $(STATIC)
	$(CC) $(SANFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(TEST_OBJ) $(SUPPORT) $(STATIC) -lcriterion $(LDLIBS)

# A tool that uses the test support (the bench and the demo: namespaces, TUN,
# kernel servers, the bridge) links the support objects that need no Criterion
# (SUPPORT_NET_OBJ), named as its prerequisites below, so `make` and `make
# demo` build it without Criterion installed; the other tools need nothing of
# tests/.
SUPPORT_NET_OBJ := $(addprefix $(B)/tests/support/,netns.o kserver.o netprobe.o bridge.o streamio.o)
$(B)/tools/jktcp-bench $(B)/tools/jktcp-demo: $(SUPPORT_NET_OBJ)
# The bench's cases that live in files of their own (tools/bench/).
BENCH_OBJ := $(patsubst tools/bench/%.c,$(B)/tools/bench/%.o,$(wildcard tools/bench/*.c))
$(B)/tools/jktcp-bench: $(BENCH_OBJ)
$(B)/tools/bench/%.o: tools/bench/%.c $(wildcard tools/bench/*.h) include/jktcp.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c $< -o $@
# The loss table (tools/jktcp-bench-loss.c, its parts in tools/bench-loss/):
# the support objects above and the lossy link to the kernel (lossylink.o).
# kshare.o (a kernel flow sharing the bottleneck) drives the fault transport
# through the internal lib/transport.h, as the unit tests do: it links the
# static archive like every tool.
SUPPORT_LOSS_OBJ := $(B)/tests/support/lossylink.o
BENCH_LOSS_OBJ := $(patsubst tools/bench-loss/%.c,$(B)/tools/bench-loss/%.o,$(wildcard tools/bench-loss/*.c))
$(B)/tools/jktcp-bench-loss: $(SUPPORT_NET_OBJ) $(SUPPORT_LOSS_OBJ) $(BENCH_LOSS_OBJ)
$(B)/tools/bench-loss/%.o: tools/bench-loss/%.c $(wildcard tools/bench-loss/*.h) include/jktcp.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c $< -o $@
$(B)/tools/bench-loss/kshare.o: lib/transport.h
TOOL_OBJ := $(SUPPORT_NET_OBJ) $(SUPPORT_LOSS_OBJ) $(BENCH_OBJ) $(BENCH_LOSS_OBJ)
$(B)/tools/%: tools/%.c $(STATIC) include/jktcp.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $< $(filter $(TOOL_OBJ),$^) $(STATIC) $(LDLIBS)

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
test: deps check-structure
	$(MAKE) --no-print-directory fuzz-regress
	$(MAKE) --no-print-directory test-posix
	$(MAKE) --no-print-directory $(B)/tests/jktcp_tests $(TEST_DEPS)
	$(B)/tests/jktcp_tests -j$(JOBS) $(TEST_ARGS)

# The structure rules of docs/design.md: no include cycle in lib/, each
# header declares only its own files' functions (docs/include-graph.sh),
# and no source file in lib/, tests/ or tools/ over MAX_LINES lines.
MAX_LINES ?= 1100
.PHONY: check-structure
check-structure:
	@docs/include-graph.sh --check
	@long=$$(find lib tests tools -name '*.[ch]' -exec wc -l {} + | \
	  awk -v m=$(MAX_LINES) '$$2 != "total" && $$1 > m {print $$2 " (" $$1 " lines)"}'); \
	if [ -n "$$long" ]; then echo "files over $(MAX_LINES) lines: $$long" >&2; exit 1; fi

# Threaded-handle tests (TSAN_TEST_SRC) under ThreadSanitizer. Criterion
# aborts at start-up under TSan, so they are built with -DJKT_PLAIN against
# the plain runner tests/support/tsan_main.c (one forked process per test, as with
# Criterion). TEST_ARGS: substrings of "suite::name" selecting tests. Any
# TSan report (exit 66 in a test's process) fails the run.
TSAN_TEST_BIN    := build-thread/tests/jktcp_tsan_tests
TSAN_TEST_SRC    := $(wildcard tests/api/test_thread_*.c) tests/api/thread_test.c \
                    $(addprefix tests/api/test_,ids.c nonblock.c readiness.c eintr.c chaos.c abi.c errors.c) \
                    tests/unit/test_platform.c tests/unit/test_ring.c
TSAN_TEST_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -g -O1 \
                    -pthread -fsanitize=thread -fno-omit-frame-pointer -DJKT_PLAIN \
                    -Iinclude -Ilib -Itests -Itests/support
# The support files the threaded tests need, built with -DJKT_PLAIN too: all
# but the Criterion-only ones (scripted peer, the fault suite's faultlink.c;
# the link under it, b2blink.c, is in: rig.c builds on it), and the runner.
TSAN_SUPPORT_SRC := $(filter-out tests/support/scripted.c tests/support/faultlink.c,$(SUPPORT_SRC)) \
                    tests/support/tsan_main.c
test-tsan: deps
	$(MAKE) --no-print-directory SANITIZE=thread build-thread/libjktcp.a
	@mkdir -p $(dir $(TSAN_TEST_BIN))
	$(CC) $(TSAN_TEST_CFLAGS) -o $(TSAN_TEST_BIN) $(TSAN_TEST_SRC) $(TSAN_SUPPORT_SRC) \
	  build-thread/libjktcp.a $(LDLIBS)
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1 exitcode=66" \
	  $(TSAN_TEST_BIN) $(TEST_ARGS)

# The same threaded tests on the plain-POSIX platform layer (PLATFORM=posix,
# $(B_POSIX)/), built the same way without ThreadSanitizer (with SANITIZE's
# other sanitizers, if any). `make test` runs them first. POSIX_TEST_ARGS:
# as TEST_ARGS for test-tsan. JKT_EXPECT_PLATFORM makes suite platform check
# that the library really is the POSIX one.
PLAIN_TEST_SRC := $(TSAN_TEST_SRC) $(TSAN_SUPPORT_SRC)
$(B)/tests/jktcp_plain_tests: $(PLAIN_TEST_SRC) $(TEST_HDR) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -DJKT_PLAIN $(LDFLAGS) -o $@ $(PLAIN_TEST_SRC) $(STATIC) $(LDLIBS)
test-posix: deps
	$(MAKE) --no-print-directory PLATFORM=posix $(B_POSIX)/tests/jktcp_plain_tests
	JKT_EXPECT_PLATFORM=posix $(B_POSIX)/tests/jktcp_plain_tests $(POSIX_TEST_ARGS)

# make demo installs only what the demo needs (DEMO_PACKAGES: it runs no
# external program; its namespace and TUN setup in tests/support/netns.c uses
# ioctls and /proc, not iproute2), then builds and runs it. DEMO_ARGS="--pcap /tmp/demo.pcap"
# also captures every frame (the demo says where).
DEMO_PACKAGES := liburcu-dev
demo:
	@$(MAKE) --no-print-directory deps DEBIAN_PACKAGES="$(DEMO_PACKAGES)"
	$(MAKE) --no-print-directory $(B)/tools/jktcp-demo
	$(B)/tools/jktcp-demo $(DEMO_ARGS)

# ---- example programs (docs/examples/) --------------------------------------
# Each docs/examples/X.c is built to $(B)/examples/X against the static
# library with the public header only; tests/system/test_examples.c runs them
# against the kernel, and `make test` builds them (TEST_DEPS).
EXAMPLE_SRC := $(wildcard docs/examples/*.c)
EXAMPLES    := $(patsubst docs/examples/%.c,$(B)/examples/%,$(EXAMPLE_SRC))
.PHONY: examples
examples: $(EXAMPLES)
$(B)/examples/%: docs/examples/%.c $(STATIC) include/jktcp.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Iinclude $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)
TEST_DEPS += $(EXAMPLES)

# ---- jktcp-cat (tools/jktcp-cat.c, man page tools/jktcp-cat.1) -------------
# tests/system/test_cat.c runs $(B)/tools/jktcp-cat (the tools rule above builds it)
# as a child process; its SOCKS5 test fetches with curl (DEBIAN_PACKAGES).
TEST_DEPS += $(B)/tools/jktcp-cat

# ---- Python package (lib/python/: jktcp, pure ctypes) -----------------------
# tests/system/test_python.c runs its pytest suite (lib/python/tests, python3-pytest in
# DEBIAN_PACKAGES) in a private network namespace against $(SHARED).
$(B)/tests/system/test_python.o: TEST_CFLAGS += -DJKT_PY_SHARED='"$(CURDIR)/$(SHARED)"' \
  -DJKT_PY_SRCDIR='"$(CURDIR)"' -DJKT_PY_SANITIZE='"$(SANITIZE)"'
$(B)/tests/system/test_python.o: Makefile
TEST_DEPS += $(SHARED)

# make bench: the C table (tools/jktcp-bench), then the Python package's
# handle upload/download x1 (lib/python/bench.py, same BENCH_ARGS) next to the
# C handle's figure for the same case, measured again in alternation with it.
bench: deps
	$(MAKE) --no-print-directory OPT=-O3 $(B)/tools/jktcp-bench
	$(B)/tools/jktcp-bench $(BENCH_ARGS)
	$(MAKE) --no-print-directory OPT=-O3 $(SHARED)
	JKTCP_LIBRARY=$(CURDIR)/$(SHARED) $(PYTHON) lib/python/bench.py --c-bench $(B)/tools/jktcp-bench $(BENCH_ARGS)

# make bench-loss: issue 12's loss table (tools/jktcp-bench-loss): the time to
# move 64 MiB over the fault suite's lossy link to the kernel at 1%, 5% and 20%
# loss, jktcp sending with each of its congestion controllers against the
# kernel sending with cubic and bbr, 5 seeds each, every transfer verified and
# in a fresh namespace; then a markdown table (docs/benchmarks.md); then the
# shared-link cases: a 100 Mbit/s, 20 ms bottleneck (each controller alone, BBR
# beside NewReno and CUBIC) and 8 streams sharing a lossy link (Jain's index).
# Not part of make test (up to --limit per transfer: with the defaults up to an
# hour at 20%). BENCH_LOSS_ARGS: --seeds N --mib M --loss 1,5,20 --limit S
# --cc newreno,cubic,bbr --kernel-cc cubic,bbr --only loss,bottleneck,fairness
# --secs S.
BENCH_LOSS_ARGS ?=
.PHONY: bench-loss
bench-loss: deps
	$(MAKE) --no-print-directory OPT=-O3 $(B)/tools/jktcp-bench-loss
	$(B)/tools/jktcp-bench-loss $(BENCH_LOSS_ARGS)

# ---- install / uninstall ----------------------------------------------------
#   make install [PREFIX=/usr/local] [DESTDIR=/stage]
#   make uninstall [same variables]   removes exactly what install put there
# Installs (each directory can also be set alone, e.g. libdir=/usr/lib/x86_64-linux-gnu):
#   $(includedir)/jktcp.h
#   $(libdir)/libjktcp.a, libjktcp.so.$(VERSION), links libjktcp.so.$(SOVERSION) (soname) and libjktcp.so
#   $(pkgconfigdir)/jktcp.pc  written by each install for its own directories
#   $(bindir)/jktcp-cat, $(mandir)/man1/jktcp-cat.1   when tools/ has them (the tool is built)
#   $(PYTHONDIR)/jktcp/       the Python package, when lib/python/jktcp/ exists, with a link
#                             libjktcp.so.$(SOVERSION) -> $(libdir)/libjktcp.so.$(SOVERSION), so that
#                             `import jktcp` loads this install's library (no JKTCP_LIBRARY, no ldconfig)
# liburcu (LGPL-2.1) stays a shared library: libjktcp.so has it as NEEDED and
# nothing defines _LGPL_SOURCE, so no liburcu code is inlined into jktcp.
bindir       ?= $(PREFIX)/bin
libdir       ?= $(PREFIX)/lib
includedir   ?= $(PREFIX)/include
mandir       ?= $(PREFIX)/share/man
pkgconfigdir ?= $(libdir)/pkgconfig
# PYTHONDIR: the pure-Python directory of $(PREFIX) for $(PYTHON), where
# `pip install --prefix=$(PREFIX)` puts packages: $(PREFIX)/lib/python3.X/site-packages,
# or with Debian's python3 $(PREFIX)/lib/python3.X/dist-packages (/usr/lib/python3/dist-packages
# for PREFIX=/usr), which its sys.path has for /usr/local and /usr.
PYTHON       ?= python3
PYTHONDIR    ?= $(shell $(PYTHON) -c 'import sys, sysconfig as s; p = sys.argv[1]; \
  print((p + "/lib/python3/dist-packages" if p == "/usr" else p + "/lib/python%d.%d/dist-packages" % sys.version_info[:2]) \
  if "deb_system" in s.get_scheme_names() else s.get_path("purelib", "posix_prefix", {"base": p, "platbase": p}))' \
  '$(PREFIX)' 2>/dev/null)
INSTALL_CAT := $(if $(wildcard tools/jktcp-cat.c),$(B)/tools/jktcp-cat)
INSTALL_MAN := $(wildcard tools/jktcp-cat.1)
INSTALL_PY  := $(wildcard lib/python/jktcp/__init__.py)

# jktcp.pc is written straight into its place by each install (nothing in the
# tree to go stale when PREFIX changes). liburcu ships liburcu-bp.pc and
# liburcu-cds.pc, but they are not Requires.private: jktcp.h exposes nothing of
# liburcu, and through them `pkg-config --cflags jktcp` would need liburcu-dev
# and print -I/usr/include/<multiarch>, and --static would reorder the -lurcu-*
# (-lurcu-common must come after -lurcu-bp and -lurcu-cds for static archives).
.PHONY: install uninstall
install: $(STATIC) $(SHARED) $(INSTALL_CAT)
	install -d $(DESTDIR)$(includedir) $(DESTDIR)$(libdir) $(DESTDIR)$(pkgconfigdir)
	install -m 644 include/jktcp.h $(DESTDIR)$(includedir)/
	install -m 644 $(STATIC) $(DESTDIR)$(libdir)/
	install -m 755 $(SHARED) $(DESTDIR)$(libdir)/
	ln -sf libjktcp.so.$(VERSION) $(DESTDIR)$(libdir)/libjktcp.so.$(SOVERSION)
	ln -sf libjktcp.so.$(VERSION) $(DESTDIR)$(libdir)/libjktcp.so
	printf '%s\n' 'prefix=$(PREFIX)' 'exec_prefix=$${prefix}' \
	  'libdir=$(patsubst $(PREFIX)/%,$${prefix}/%,$(libdir))' \
	  'includedir=$(patsubst $(PREFIX)/%,$${prefix}/%,$(includedir))' '' \
	  'Name: jktcp' 'Description: userspace TCP/IP stack over raw IPv4/IPv6 packet pipes' \
	  'Version: $(VERSION)' 'Libs: -L$${libdir} -ljktcp' \
	  'Libs.private: -lurcu-bp -lurcu-cds -lurcu-common -pthread' 'Cflags: -I$${includedir}' \
	  > $(DESTDIR)$(pkgconfigdir)/jktcp.pc
	chmod 644 $(DESTDIR)$(pkgconfigdir)/jktcp.pc
ifneq ($(INSTALL_CAT),)
	install -d $(DESTDIR)$(bindir)
	install -m 755 $(INSTALL_CAT) $(DESTDIR)$(bindir)/
endif
ifneq ($(INSTALL_MAN),)
	install -d $(DESTDIR)$(mandir)/man1
	install -m 644 $(INSTALL_MAN) $(DESTDIR)$(mandir)/man1/
endif
ifneq ($(INSTALL_PY),)
	@pydir='$(PYTHONDIR)'; [ -n "$$pydir" ] || { echo "install: no PYTHONDIR ($(PYTHON) missing?): set PYTHONDIR=..." >&2; exit 1; }; \
	echo "install: Python package -> $(DESTDIR)$$pydir/jktcp"; \
	rm -rf "$(DESTDIR)$$pydir/jktcp" && \
	(cd lib/python && find jktcp -name __pycache__ -prune -o -type f \( -name '*.py' -o -name py.typed \) -print | \
	  while read -r f; do install -D -m 644 "$$f" "$(DESTDIR)$$pydir/$$f" || exit 1; done) && \
	ln -sf $(libdir)/libjktcp.so.$(SOVERSION) "$(DESTDIR)$$pydir/jktcp/libjktcp.so.$(SOVERSION)"
endif

uninstall:
	rm -f $(DESTDIR)$(includedir)/jktcp.h $(DESTDIR)$(libdir)/libjktcp.a \
	  $(DESTDIR)$(libdir)/libjktcp.so.$(VERSION) $(DESTDIR)$(libdir)/libjktcp.so.$(SOVERSION) \
	  $(DESTDIR)$(libdir)/libjktcp.so $(DESTDIR)$(pkgconfigdir)/jktcp.pc \
	  $(DESTDIR)$(bindir)/jktcp-cat $(DESTDIR)$(mandir)/man1/jktcp-cat.1
	@pydir='$(PYTHONDIR)'; if [ -n "$$pydir" ] && [ -d "$(DESTDIR)$$pydir/jktcp" ]; then \
	  echo "rm -rf $(DESTDIR)$$pydir/jktcp"; rm -rf "$(DESTDIR)$$pydir/jktcp"; fi

# tests/system/test_install.c (suite install) runs make install/uninstall on this tree
# with the same SANITIZE; what install would build is built beforehand.
$(B)/tests/system/test_install.o: TEST_CFLAGS += -DJKT_SRCDIR='"$(CURDIR)"' -DJKT_SANITIZE='"$(SANITIZE)"'
TEST_DEPS += $(SHARED) $(INSTALL_CAT)

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
FUZZ_TARGETS := fuzz_parse fuzz_reasm fuzz_framer fuzz_engine fuzz_adapter_conn fuzz_adapter_listen fuzz_api_threads fuzz_vnet
FUZZ_DIR     ?= build-fuzz
FUZZ_LIB_SRC := $(filter-out $(FUZZ_SRC)/lib/platform_posix.c,$(wildcard $(FUZZ_SRC)/lib/*.c))
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -I$(FUZZ_SRC)/include -I$(FUZZ_SRC)/lib -Itests/fuzz -pthread
FUZZ_BINS    := $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
FUZZ_MAXLEN_fuzz_parse          := 70000
FUZZ_MAXLEN_fuzz_reasm          := 200000
FUZZ_MAXLEN_fuzz_framer         := 200000
FUZZ_MAXLEN_fuzz_engine         := 20000
FUZZ_MAXLEN_fuzz_adapter_conn   := 20000
FUZZ_MAXLEN_fuzz_adapter_listen := 20000
FUZZ_MAXLEN_fuzz_api_threads    := 514
FUZZ_MAXLEN_fuzz_vnet           := 65545

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

# lib/*.a, lib/*.so*, jktcp.pc: stale outputs of older trees, which built them there.
clean:
	rm -rf build build-* lib/*.a lib/*.so lib/*.so.* jktcp.pc
