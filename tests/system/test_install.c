/* SPDX-License-Identifier: MIT */
/*
 * Suite `install`: `make install` / `make uninstall` as a user runs them.
 *
 * Into a temporary PREFIX: the header, both libraries (soname links), a
 * jktcp.pc written for that prefix, jktcp-cat and its man page when the tree
 * has them. A C and a C++ program are built from the installed files only,
 * with `pkg-config --cflags --libs jktcp` (shared) and `pkg-config --static`
 * (a fully static binary: Libs.private must be complete and in link order),
 * and run: version, an adapter over a packet port, a handle started and
 * closed (liburcu's id table), and which libjktcp is mapped (the installed
 * one, or none when static). A second install with DESTDIR and another
 * PREFIX must get its own jktcp.pc. `make uninstall` must leave no file
 * behind. When lib/python/jktcp exists, the installed package is imported
 * from the installed location with JKTCP_LIBRARY (and LD_LIBRARY_PATH)
 * unset and must load the installed library.
 *
 * Runs make on this tree (JKT_SRCDIR) with the build's SANITIZE; `make test`
 * builds what install needs first (TEST_DEPS), so install only copies.
 * No network, no root.
 */
#include "minitest.h"

#include <jktcp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef JKT_SRCDIR
#define JKT_SRCDIR "."
#endif
#ifndef JKT_SANITIZE
#define JKT_SANITIZE ""
#endif

#define OUT_MAX 65536

/* The environment every command runs in: no make state of an outer make
 * (jobserver fds, command-line variables such as SANITIZE or TEST_ARGS), no
 * user overrides of the install directories, no library override. */
#define CLEAN_ENV                                                                                \
    "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u DESTDIR -u PREFIX -u bindir "   \
    "-u libdir -u includedir -u mandir -u pkgconfigdir -u PYTHONDIR -u JKTCP_LIBRARY "           \
    "-u LD_LIBRARY_PATH -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR "

static char out[OUT_MAX];
static char last_cmd[8192];

/* Runs a shell command (stdout and stderr into out); returns its exit status
 * (-1 when it did not exit). */
__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd - 8, fmt, ap);
    va_end(ap);
    JT_ASSERT(n > 0 && (size_t)n < sizeof cmd - 8, "command too long");
    memcpy(last_cmd, cmd, (size_t)n + 1);
    strcat(cmd, " 2>&1");
    FILE *p = popen(cmd, "r");
    JT_ASSERT(p != NULL, "popen: %s", strerror(errno));
    size_t len = 0, r;
    while ((r = fread(out + len, 1, sizeof out - 1 - len, p)) > 0)
        len += r;
    out[len] = 0;
    char sink[4096]; /* drain anything beyond the buffer */
    while (fread(sink, 1, sizeof sink, p) > 0)
        ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs a command that must succeed. */
#define MUST(...)                                                                                \
    do {                                                                                         \
        int rc_ = sh(__VA_ARGS__);                                                               \
        JT_ASSERT(rc_ == 0, "exit %d: %s\n%s", rc_, last_cmd, out);                              \
    } while (0)

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    JT_ASSERT(f != NULL, "%s: %s", path, strerror(errno));
    JT_ASSERT(fputs(text, f) >= 0 && fclose(f) == 0, "%s: write failed", path);
}

static bool sanitized(void)
{
    return JKT_SANITIZE[0] != 0;
}

/* make in the source tree with the build's SANITIZE. */
#define MAKE_FMT CLEAN_ENV "make --no-print-directory -C '" JKT_SRCDIR "' SANITIZE='" JKT_SANITIZE "' "

/* The same program as C and as C++: everything through the installed header
 * and library. Prints the version and the path of the mapped libjktcp file. */
#define PROGRAM_BODY                                                                             \
    "#include <jktcp.h>\n"                                                                       \
    "#include <errno.h>\n"                                                                       \
    "#include <stdio.h>\n"                                                                       \
    "#include <string.h>\n"                                                                      \
    "static int fail(const char *what, int rc)\n"                                                \
    "{\n"                                                                                        \
    "    fprintf(stderr, \"%s: %s\\n\", what, jktcp_strerror(rc));\n"                            \
    "    return 1;\n"                                                                            \
    "}\n"                                                                                        \
    "int main(void)\n"                                                                           \
    "{\n"                                                                                        \
    "    if (jktcp_version_number() != JKTCP_VERSION_NUMBER) {\n"                                \
    "        fprintf(stderr, \"library %#x, header %#x\\n\", jktcp_version_number(),\n"          \
    "                (unsigned)JKTCP_VERSION_NUMBER);\n"                                         \
    "        return 1;\n"                                                                        \
    "    }\n"                                                                                    \
    "    jktcp_port *port = 0;\n"                                                                \
    "    jktcp_transport *t = 0;\n"                                                              \
    "    jktcp_adapter *a = 0;\n"                                                                \
    "    jktcp_handle h;\n"                                                                      \
    "    int rc = jktcp_port_new(0, &port);\n"                                                   \
    "    if (rc) return fail(\"port_new\", rc);\n"                                               \
    "    if ((rc = jktcp_port_transport(port, &t))) return fail(\"port_transport\", rc);\n"      \
    "    if ((rc = jktcp_adapter_new(t, \"fd00::2\", \"fd00::1\", &a)))\n"                       \
    "        return fail(\"adapter_new\", rc);\n"                                                \
    "    if ((rc = jktcp_handle_start(a, &h))) return fail(\"handle_start\", rc);\n"             \
    "    if ((rc = jktcp_handle_close(h, 0))) return fail(\"handle_close\", rc);\n"              \
    "    if (jktcp_handle_close(h, 0) != -EBADF) return fail(\"second close\", 0);\n"            \
    "    jktcp_port_free(port);\n"                                                               \
    "    char line[4096], lib[4096] = \"none\";\n"                                               \
    "    FILE *m = fopen(\"/proc/self/maps\", \"r\");\n"                                         \
    "    if (!m) return fail(\"/proc/self/maps\", -errno);\n"                                    \
    "    while (fgets(line, sizeof line, m))\n"                                                  \
    "        if (strstr(line, \"libjktcp\") && strchr(line, '/'))\n"                             \
    "            snprintf(lib, sizeof lib, \"%s\", strchr(line, '/'));\n"                        \
    "    fclose(m);\n"                                                                           \
    "    lib[strcspn(lib, \"\\n\")] = 0;\n"                                                      \
    "    printf(\"%s lib=%s\\n\", jktcp_version(), lib);\n"                                      \
    "    return 0;\n"                                                                            \
    "}\n"

static const char c_program[] = PROGRAM_BODY;

static const char cxx_program[] =
    "#include <jktcp.h>\n"
    "#include <string>\n"
    "#include <type_traits>\n"
    "static_assert(std::is_standard_layout<jktcp_handle>::value && sizeof(jktcp_stream) == 8,\n"
    "              \"ids are plain 64-bit values in C++ too\");\n"
    "static std::string cxx_marker = \"c++\";\n"
    "#define main c_main\n" PROGRAM_BODY "#undef main\n"
    "int main() { return cxx_marker.size() == 3 ? c_main() : 1; }\n";

/* Builds src (C or C++) against the install found through pc_path and runs
 * it; checks which library it mapped. */
static void build_and_run(const char *dir, const char *prefix, const char *pc_path,
                          const char *name, bool cxx, bool static_link)
{
    char src[512], bin[512], san[256] = "";
    snprintf(src, sizeof src, "%s/%s.%s", dir, name, cxx ? "cc" : "c");
    snprintf(bin, sizeof bin, "%s/%s", dir, name);
    write_file(src, cxx ? cxx_program : c_program);
    if (sanitized())
        snprintf(san, sizeof san, "-fsanitize=%s -fno-omit-frame-pointer", JKT_SANITIZE);
    const char *compiler = cxx ? "g++ -std=c++17" : "cc -std=c11";
    const char *warn = "-Wall -Wextra -Werror -pedantic";
    if (!static_link) {
        MUST(CLEAN_ENV "PKG_CONFIG_PATH='%s' sh -c '%s %s %s -o %s %s $(pkg-config --cflags --libs "
                       "jktcp)'",
             pc_path, compiler, warn, san, bin, src);
    } else if (!sanitized()) {
        /* Fully static: every private library must be listed, in order. */
        MUST(CLEAN_ENV "PKG_CONFIG_PATH='%s' sh -c '%s %s -static -o %s %s $(pkg-config --static "
                       "--cflags --libs jktcp)'",
             pc_path, compiler, warn, bin, src);
    } else {
        /* Sanitizer runtimes cannot be linked -static: libjktcp.a only. */
        MUST(CLEAN_ENV "PKG_CONFIG_PATH='%s' sh -c '%s %s %s -o %s %s $(pkg-config --cflags jktcp) "
                       "$(pkg-config --libs-only-L jktcp) -Wl,--as-needed -Wl,-Bstatic -ljktcp "
                       "-Wl,-Bdynamic $(pkg-config --static --libs jktcp)'",
             pc_path, compiler, warn, san, bin, src);
    }

    /* The shared build finds the library through LD_LIBRARY_PATH (what
     * ldconfig does for a system prefix); the static one needs nothing. */
    if (static_link)
        MUST(CLEAN_ENV "%s", bin);
    else
        MUST(CLEAN_ENV "LD_LIBRARY_PATH='%s/lib' %s", prefix, bin);
    char want[1024];
    if (static_link)
        snprintf(want, sizeof want, "jktcp %d.%d.%d lib=none\n", JKTCP_VERSION_MAJOR,
                 JKTCP_VERSION_MINOR, JKTCP_VERSION_PATCH);
    else
        snprintf(want, sizeof want, "jktcp %d.%d.%d lib=%s/lib/libjktcp.so.%d.%d.%d\n",
                 JKTCP_VERSION_MAJOR, JKTCP_VERSION_MINOR, JKTCP_VERSION_PATCH, prefix,
                 JKTCP_VERSION_MAJOR, JKTCP_VERSION_MINOR, JKTCP_VERSION_PATCH);
    JT_ASSERT(strcmp(out, want) == 0, "%s (%s, %s): printed\n%swanted\n%s", name,
              cxx ? "C++" : "C", static_link ? "static" : "shared", out, want);

    if (!static_link) {
        /* Linked by soname, so a new minor release can replace the file. */
        MUST("readelf -d %s", bin);
        JT_ASSERT(strstr(out, "Shared library: [libjktcp.so.1]") != NULL,
                  "%s does not need libjktcp.so.1:\n%s", name, out);
    }
    JT_LOG("install: %s (%s, %s) built from the installed files and ran", name,
           cxx ? "C++" : "C", static_link ? "static" : "shared");
}

/* No file or link left under root (directories may stay: they can be shared). */
static void assert_empty(const char *root)
{
    MUST("find '%s' ! -type d", root);
    JT_ASSERT(out[0] == 0, "make uninstall left behind:\n%s", out);
}

static void check_link(const char *path, const char *target)
{
    char buf[512];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    JT_ASSERT(n > 0, "%s: not a link (%s)", path, strerror(errno));
    buf[n] = 0;
    JT_ASSERT(strcmp(buf, target) == 0, "%s -> %s, want %s", path, buf, target);
}

static void check_pc(const char *pc_dir, const char *want_prefix)
{
    MUST(CLEAN_ENV "PKG_CONFIG_PATH='%s' pkg-config --variable=prefix jktcp", pc_dir);
    chomp(out);
    JT_ASSERT(strcmp(out, want_prefix) == 0, "jktcp.pc in %s: prefix=%s, want %s", pc_dir, out,
              want_prefix);
    MUST(CLEAN_ENV "PKG_CONFIG_PATH='%s' pkg-config --modversion jktcp", pc_dir);
    chomp(out);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", JKTCP_VERSION_MAJOR, JKTCP_VERSION_MINOR,
             JKTCP_VERSION_PATCH);
    JT_ASSERT(strcmp(out, v) == 0, "jktcp.pc: version %s, header %s", out, v);
    MUST(CLEAN_ENV "PKG_CONFIG_PATH='%s' pkg-config --static --libs jktcp", pc_dir);
    JT_ASSERT(strstr(out, "-ljktcp -lurcu-bp -lurcu-cds -lurcu-common -pthread") != NULL,
              "pkg-config --static --libs jktcp: %s", out);
}

static void check_python(const char *dir, const char *prefix)
{
    if (!exists(JKT_SRCDIR "/lib/python/jktcp/__init__.py")) {
        JT_LOG("install: lib/python/jktcp/__init__.py not in the tree: Python part skipped");
        return;
    }
    if (sanitized()) {
        JT_LOG("install: SANITIZE=%s: a sanitized libjktcp.so cannot load into python3: "
               "Python part skipped", JKT_SANITIZE);
        return;
    }
    if (sh("command -v python3") != 0) {
        JT_LOG("install: no python3: Python part skipped");
        return;
    }
    MUST("find '%s' -path '*/jktcp/__init__.py'", prefix);
    chomp(out);
    JT_ASSERT(out[0] && !strchr(out, '\n'), "installed Python package: %s", out[0] ? out : "none");
    char pydir[1024];
    snprintf(pydir, sizeof pydir, "%s", out);
    *strrchr(pydir, '/') = 0; /* .../jktcp */
    *strrchr(pydir, '/') = 0; /* the directory on sys.path */
    /* From an empty directory (not the source tree), nothing but PYTHONPATH. */
    MUST("cd '%s' && " CLEAN_ENV "-u PYTHONHOME PYTHONPATH='%s' python3 -c '"
         "import os, jktcp, jktcp._ffi as f; "
         "print(os.path.dirname(jktcp.__file__)); "
         "print(os.path.realpath(f.LIBRARY_PATH)); "
         "print(hex(f.lib.jktcp_version_number()))'",
         dir, pydir);
    char want[2048];
    snprintf(want, sizeof want, "%s/jktcp\n%s/lib/libjktcp.so.%d.%d.%d\n%#x\n", pydir, prefix,
             JKTCP_VERSION_MAJOR, JKTCP_VERSION_MINOR, JKTCP_VERSION_PATCH,
             (unsigned)JKTCP_VERSION_NUMBER);
    JT_ASSERT(strcmp(out, want) == 0, "import jktcp from the install printed\n%swanted\n%s", out,
              want);
    JT_LOG("install: import jktcp from %s loaded %s/lib/libjktcp.so.1", pydir, prefix);
}

JT_TEST(install, prefix_destdir_uninstall, 60)
{
    char tmpl[] = "/tmp/jktcp-install-XXXXXX";
    char *dir = mkdtemp(tmpl);
    JT_ASSERT(dir != NULL, "mkdtemp: %s", strerror(errno));
    char prefix[512], stage[512], path[1024], pc[1024];
    snprintf(prefix, sizeof prefix, "%s/prefix", dir);
    snprintf(stage, sizeof stage, "%s/stage", dir);
    JT_LOG("install: into %s (kept if the test fails)", dir);

    const char *tools[] = {"make", "cc", "g++", "pkg-config", "readelf"};
    for (size_t i = 0; i < sizeof tools / sizeof *tools; i++)
        JT_ASSERT(sh("command -v %s", tools[i]) == 0, "%s is not installed (make deps)", tools[i]);

    /* 1. PREFIX install. */
    MUST(MAKE_FMT "install PREFIX='%s'", prefix);
    char real[64]; /* libjktcp.so.MAJOR.MINOR.PATCH, the file the links name */
    snprintf(real, sizeof real, "libjktcp.so.%d.%d.%d", JKTCP_VERSION_MAJOR, JKTCP_VERSION_MINOR,
             JKTCP_VERSION_PATCH);
    char real_rel[80];
    snprintf(real_rel, sizeof real_rel, "lib/%s", real);
    const char *files[] = {"include/jktcp.h", "lib/libjktcp.a",   real_rel,
                           "lib/libjktcp.so.1", "lib/libjktcp.so", "lib/pkgconfig/jktcp.pc"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", prefix, files[i]);
        JT_ASSERT(exists(path), "make install did not install %s", files[i]);
    }
    MUST("cmp '" JKT_SRCDIR "/include/jktcp.h' '%s/include/jktcp.h'", prefix);
    snprintf(path, sizeof path, "%s/lib/libjktcp.so.1", prefix);
    check_link(path, real);
    snprintf(path, sizeof path, "%s/lib/libjktcp.so", prefix);
    check_link(path, real);
    MUST("readelf -d '%s/lib/%s'", prefix, real);
    JT_ASSERT(strstr(out, "Library soname: [libjktcp.so.1]") != NULL, "soname:\n%s", out);
    JT_ASSERT(strstr(out, "[liburcu-bp.so") && strstr(out, "[liburcu-cds.so") &&
                  strstr(out, "[liburcu-common.so"),
              "libjktcp.so must link liburcu (LGPL-2.1) as shared libraries:\n%s", out);
    if (exists(JKT_SRCDIR "/tools/jktcp-cat.c")) {
        snprintf(path, sizeof path, "%s/bin/jktcp-cat", prefix);
        JT_ASSERT(access(path, X_OK) == 0, "jktcp-cat not installed: %s", strerror(errno));
        MUST(CLEAN_ENV "'%s' --help", path);
        JT_ASSERT(strstr(out, "usage") != NULL, "jktcp-cat --help: %s", out);
    }
    if (exists(JKT_SRCDIR "/tools/jktcp-cat.1")) {
        snprintf(path, sizeof path, "%s/share/man/man1/jktcp-cat.1", prefix);
        JT_ASSERT(exists(path), "jktcp-cat.1 not installed");
    }
    snprintf(pc, sizeof pc, "%s/lib/pkgconfig", prefix);
    check_pc(pc, prefix);

    /* 2. Programs from the installed files. */
    build_and_run(dir, prefix, pc, "prog_c_shared", false, false);
    build_and_run(dir, prefix, pc, "prog_c_static", false, true);
    build_and_run(dir, prefix, pc, "prog_cxx_shared", true, false);
    build_and_run(dir, prefix, pc, "prog_cxx_static", true, true);

    /* 3. The Python package from its installed location. */
    check_python(dir, prefix);

    /* 4. DESTDIR staging with another PREFIX: its own jktcp.pc. */
    MUST(MAKE_FMT "install DESTDIR='%s' PREFIX=/opt/jktcp-test", stage);
    snprintf(path, sizeof path, "%s/opt/jktcp-test/lib/%s", stage, real);
    JT_ASSERT(exists(path), "DESTDIR install: no %s", path);
    snprintf(pc, sizeof pc, "%s/opt/jktcp-test/lib/pkgconfig", stage);
    check_pc(pc, "/opt/jktcp-test");
    /* DESTDIR is only where files go: no installed text names it. */
    int rc = sh("grep -rIl '%s' '%s'", stage, stage);
    JT_ASSERT(rc == 1, "files naming DESTDIR (grep exit %d):\n%s", rc, out);
    /* The first install's jktcp.pc is untouched by the second. */
    snprintf(pc, sizeof pc, "%s/lib/pkgconfig", prefix);
    check_pc(pc, prefix);

    /* 5. Uninstall removes every file of both. */
    MUST(MAKE_FMT "uninstall PREFIX='%s'", prefix);
    assert_empty(prefix);
    MUST(MAKE_FMT "uninstall DESTDIR='%s' PREFIX=/opt/jktcp-test", stage);
    assert_empty(stage);

    MUST("rm -rf '%s'", dir);
}
