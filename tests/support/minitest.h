/* SPDX-License-Identifier: MIT */
/*
 * Tiny test shim: the same test source builds as Criterion tests (default)
 * or, with -DJKT_PLAIN, as plain self-registering tests run by
 * tests/support/tsan_main.c (Criterion aborts at start-up under
 * ThreadSanitizer).
 *
 *   JT_TEST(suite, name, timeout_s) { ... }   define a test
 *   JT_ASSERT(cond, fmt, ...)                 fail the test unless cond
 *   JT_SKIP(fmt, ...)                         skip the test
 *   JT_LOG(fmt, ...)                          informational line
 *
 * Only call JT_ASSERT / JT_SKIP from the test's own thread (Criterion
 * unwinds that thread); worker threads record failures and the test thread
 * asserts on them after joining.
 */
#ifndef JKT_MINITEST_H
#define JKT_MINITEST_H

#ifndef JKT_PLAIN

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdarg.h>
#include <stdio.h>

#define JT_TEST(suite, name, timeout_s) Test(suite, name, .timeout = (timeout_s))
#define JT_ASSERT(cond, ...) cr_assert(cond, __VA_ARGS__)
#define JT_SKIP(...) cr_skip_test(__VA_ARGS__)
/* Straight to stderr (one write per line), so figures show without
 * --verbose; cr_log_info would hide them at the default verbosity. */
#define JT_LOG(...) jt_log_stderr(__VA_ARGS__)

__attribute__((format(printf, 1, 2), unused)) static void jt_log_stderr(const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)(sizeof line - 2);
    line[n++] = '\n';
    line[n] = 0;
    fprintf(stderr, "[----] %s", line);
}

#else /* JKT_PLAIN */

struct jt_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    int timeout_s;
};

/* Defined in tests/support/tsan_main.c. */
void jt_register(const struct jt_test *t);
__attribute__((noreturn, format(printf, 4, 5))) void jt_fail(const char *file, int line,
                                                             const char *cond, const char *fmt,
                                                             ...);
__attribute__((noreturn, format(printf, 1, 2))) void jt_skip(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void jt_log(const char *fmt, ...);

#define JT_TEST(suite, name, timeout_s)                                                          \
    static void jt_fn_##suite##__##name(void);                                                   \
    __attribute__((constructor)) static void jt_reg_##suite##__##name(void)                      \
    {                                                                                            \
        static const struct jt_test t = {#suite, #name, jt_fn_##suite##__##name, (timeout_s)};   \
        jt_register(&t);                                                                         \
    }                                                                                            \
    static void jt_fn_##suite##__##name(void)

#define JT_ASSERT(cond, ...)                                                                     \
    do {                                                                                         \
        if (!(cond))                                                                             \
            jt_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                     \
    } while (0)
#define JT_SKIP(...) jt_skip(__VA_ARGS__)
#define JT_LOG(...) jt_log(__VA_ARGS__)

#endif /* JKT_PLAIN */

#endif
