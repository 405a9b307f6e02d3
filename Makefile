# jktcp — build, test, demo, bench.
#   make                 lib/libjktcp.a and lib/libjktcp.so (soname libjktcp.so.0)
#   make test            install missing packages, build, run every Criterion test
#   make test SANITIZE=address,undefined   same under ASan/UBSan (build in build-*/)
#   make test-tsan       threaded tests under ThreadSanitizer
#   make demo            real connection to the Linux kernel in a private netns
#   make install PREFIX=/usr/local
CC       ?= cc
PREFIX   ?= /usr/local
SANITIZE ?=
comma    := ,
DEBIAN_PACKAGES := liburcu-dev libcriterion-dev tshark iproute2 pkg-config

SOVERSION := 0
VERSION   := 0.1.0

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
LDLIBS      := -pthread -lurcu-common -lurcu

LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(patsubst lib/%.c,$(B)/lib/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard tests/*.c)
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

$(B)/tests/%.o: tests/%.c $(wildcard tests/*.h) $(wildcard lib/*.h) include/jktcp.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c $< -o $@

# Tests link the static archive so they can reach internal (hidden) symbols.
$(B)/tests/jktcp_tests: $(TEST_OBJ) $(STATIC)
	$(CC) $(SANFLAGS) -o $@ $(TEST_OBJ) $(STATIC) -lcriterion $(LDLIBS)

$(B)/tools/%: tools/%.c $(STATIC) include/jktcp.h
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
test: deps
	$(MAKE) --no-print-directory $(B)/tests/jktcp_tests
	$(B)/tests/jktcp_tests -j$(JOBS) $(TEST_ARGS)

test-tsan: deps
	$(MAKE) --no-print-directory test SANITIZE=thread TEST_ARGS="--filter 'thread*/*' $(TEST_ARGS)"

demo: deps
	$(MAKE) --no-print-directory $(B)/tools/jktcp-demo
	$(B)/tools/jktcp-demo

bench: deps
	$(MAKE) --no-print-directory OPT=-O3 $(B)/tools/jktcp-bench
	$(B)/tools/jktcp-bench $(BENCH_ARGS)

jktcp.pc: Makefile
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: jktcp\nDescription: userspace TCP/IP over raw IP packet pipes\nVersion: %s\nLibs: -L$${libdir} -ljktcp\nLibs.private: -lurcu -lurcu-common -pthread\nCflags: -I$${includedir}\n' '$(PREFIX)' '$(VERSION)' > $@

install: $(STATIC) $(SHARED) jktcp.pc
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/jktcp.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libjktcp.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libjktcp.so.$(SOVERSION)
	ln -sf libjktcp.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libjktcp.so
	install -m 644 jktcp.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

clean:
	rm -rf build build-* lib/*.a lib/*.so lib/*.so.* jktcp.pc
