/* SPDX-License-Identifier: MIT */
/*
 * Plain test runner for tests written against tests/support/minitest.h, used
 * where Criterion cannot run (ThreadSanitizer: `make test-tsan`). Compiles
 * to nothing unless JKT_PLAIN is defined, so the Criterion build ignores it.
 *
 * Like Criterion, every test runs in its own forked process (the kernel-peer
 * tests unshare a private network namespace per process), with alarm() as
 * the timeout. A child that exits with TSan's report status (66), dies of a
 * signal or exits non-zero counts as failed.
 *
 *   jktcp_tsan_tests [-l] [FILTER...]   run tests whose "suite::name"
 *                                       contains any FILTER (all if none);
 *                                       -l lists them instead
 *   JT_TIMEOUT_SCALE=N                  multiply every timeout (default 4:
 *                                       sanitizer builds are slow)
 */
#ifdef JKT_PLAIN

#include "minitest.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define JT_MAX_TESTS 512
#define JT_EXIT_SKIP 77
#define JT_EXIT_TSAN 66

static const struct jt_test *jt_tests[JT_MAX_TESTS];
static int jt_ntests;

void jt_register(const struct jt_test *t)
{
    if (jt_ntests < JT_MAX_TESTS)
        jt_tests[jt_ntests++] = t;
    else
        fprintf(stderr, "minitest: too many tests, %s::%s dropped\n", t->suite, t->name);
}

void jt_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: Assertion failed: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stdout);
    fflush(stderr);
    _exit(1);
}

void jt_skip(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "skipped: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stdout);
    fflush(stderr);
    _exit(JT_EXIT_SKIP);
}

void jt_log(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "[----] ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

static int cmp_test(const void *a, const void *b)
{
    const struct jt_test *x = *(const struct jt_test *const *)a;
    const struct jt_test *y = *(const struct jt_test *const *)b;
    int c = strcmp(x->suite, y->suite);
    return c ? c : strcmp(x->name, y->name);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool matches(const struct jt_test *t, int nfilt, char **filt)
{
    if (nfilt == 0)
        return true;
    char full[256];
    snprintf(full, sizeof full, "%s::%s", t->suite, t->name);
    for (int i = 0; i < nfilt; i++)
        if (strstr(full, filt[i]))
            return true;
    return false;
}

/* 0 passed, 1 failed, 2 skipped */
static int run_one(const struct jt_test *t, int scale)
{
    double t0 = mono_s();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);
        alarm((unsigned)(t->timeout_s > 0 ? t->timeout_s * scale : 0));
        t->fn();
        fflush(stdout);
        fflush(stderr);
        exit(0); /* exit, not _exit: TSan turns the status into 66 if it reported */
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "waitpid: %s\n", strerror(errno));
            return 1;
        }
    }
    double dt = mono_s() - t0;
    const char *tag = "FAIL";
    char why[96] = "";
    int res = 1;
    if (WIFEXITED(st)) {
        int code = WEXITSTATUS(st);
        if (code == 0) {
            tag = "PASS";
            res = 0;
        } else if (code == JT_EXIT_SKIP) {
            tag = "SKIP";
            res = 2;
        } else if (code == JT_EXIT_TSAN) {
            snprintf(why, sizeof why, " (exit %d: sanitizer report)", code);
        } else {
            snprintf(why, sizeof why, " (exit %d)", code);
        }
    } else if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        if (sig == SIGALRM)
            snprintf(why, sizeof why, " (timed out after %ds)", t->timeout_s * scale);
        else
            snprintf(why, sizeof why, " (signal %d: %s)", sig, strsignal(sig));
    }
    printf("[%s] %s::%s: %.2fs%s\n", tag, t->suite, t->name, dt, why);
    fflush(stdout);
    return res;
}

int main(int argc, char **argv)
{
    bool list = false;
    int nfilt = 0;
    char **filt = calloc((size_t)argc + 1, sizeof *filt);
    if (!filt)
        return 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-l") == 0 || strcmp(argv[i], "--list") == 0)
            list = true;
        else if (argv[i][0])
            filt[nfilt++] = argv[i];
    }
    int scale = 4;
    const char *e = getenv("JT_TIMEOUT_SCALE");
    if (e && atoi(e) > 0)
        scale = atoi(e);
    qsort(jt_tests, (size_t)jt_ntests, sizeof jt_tests[0], cmp_test);
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < jt_ntests; i++) {
        const struct jt_test *t = jt_tests[i];
        if (!matches(t, nfilt, filt))
            continue;
        if (list) {
            printf("%s::%s\n", t->suite, t->name);
            continue;
        }
        int r = run_one(t, scale);
        if (r == 0)
            passed++;
        else if (r == 1)
            failed++;
        else
            skipped++;
    }
    free(filt);
    if (list)
        return 0;
    if (skipped)
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else
        printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int jt_tsan_main_unused;
#endif /* JKT_PLAIN */
