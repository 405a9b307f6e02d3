/* SPDX-License-Identifier: MIT */
/*
 * Suite `python`: the Python package (lib/python/jktcp, pure ctypes) and its
 * pytest suite (lib/python/tests), run against the shared library this tree
 * built ($(SHARED), passed in as JKT_PY_SHARED by the Makefile).
 *
 * The test enters a private network namespace (tests/support/netns.c) and runs
 * `python3 -m pytest` inside it, so that every kernel socket and the TUN
 * device the Python tests create (kernel 198.18.0.1 / fd00::1, jktcp
 * 198.18.0.2 / fd00::2) exist only there. Without root the namespace cannot be
 * made; pytest then skips the tests that need the kernel and runs the rest.
 *
 * The C side also measures what the Python side mirrors: sizeof/offsetof of
 * the structs and the enum values (JKTCP_ABI, JKTCP_ABI_ENUMS), which
 * tests/test_basic.py compares with its ctypes definitions.
 *
 * pytest's output is echoed; its summary line and the measured figures
 * (section "jktcp figures") end the log. The test fails unless pytest exits 0.
 * Skipped under sanitizers: a sanitized libjktcp.so cannot be loaded into an
 * uninstrumented python3.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jktcp.h"
#include "netns.h"

#ifndef JKT_PY_SHARED
#define JKT_PY_SHARED ""
#endif
#ifndef JKT_PY_SRCDIR
#define JKT_PY_SRCDIR "."
#endif
#ifndef JKT_PY_SANITIZE
#define JKT_PY_SANITIZE ""
#endif

#define PYTEST_LIMIT_S 240 /* the run takes well under a minute */
#define TAIL_CAP (256 * 1024)

/* A python3 that has pytest: $JKTCP_PYTHON, Debian's /usr/bin/python3
 * (python3-pytest), or the first python3 in PATH. NULL if none. */
static const char *find_python(void)
{
    static const char *cands[3];
    cands[0] = getenv("JKTCP_PYTHON");
    cands[1] = "/usr/bin/python3";
    cands[2] = "python3";
    for (size_t i = 0; i < 3; i++) {
        if (!cands[i] || !*cands[i])
            continue;
        char *argv[] = {(char *)cands[i], "-c", "import pytest", NULL};
        if (jkt_run(argv, NULL, 0) == 0)
            return cands[i];
    }
    return NULL;
}

static void set_abi_env(void)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "info=%zu,stats=%zu,io_ops=%zu,id=%zu,info.bytes_sent=%zu,info.srtt_us=%zu,"
             "info.snd_wscale=%zu,info.pmtu=%zu,info.soft_error=%zu,stats.io_wakeups=%zu,"
             "stats.frags_reassembled=%zu,io_ops.close=%zu,io_ops.poll_fd=%zu,fault_config=%zu,"
             "fault_config.out=%zu,fault_config.seed=%zu,fault_dir.mtu_icmp=%zu,fault_stats=%zu,"
             "fault_stats.out=%zu",
             sizeof(jktcp_info), sizeof(jktcp_stats), sizeof(jktcp_io_ops), sizeof(jktcp_stream),
             offsetof(jktcp_info, bytes_sent), offsetof(jktcp_info, srtt_us),
             offsetof(jktcp_info, snd_wscale), offsetof(jktcp_info, pmtu),
             offsetof(jktcp_info, soft_error), offsetof(jktcp_stats, io_wakeups),
             offsetof(jktcp_stats, frags_reassembled), offsetof(jktcp_io_ops, close),
             offsetof(jktcp_io_ops, poll_fd), sizeof(jktcp_fault_config),
             offsetof(jktcp_fault_config, out), offsetof(jktcp_fault_config, seed),
             offsetof(jktcp_fault_dir, mtu_icmp), sizeof(jktcp_fault_stats),
             offsetof(jktcp_fault_stats, out));
    setenv("JKTCP_ABI", buf, 1);
    snprintf(buf, sizeof buf,
             "JKTCP_FRAMING_STREAM=%d,JKTCP_FRAMING_PACKET=%d,JKTCP_POLL_READ=%d,"
             "JKTCP_POLL_WRITE=%d,JKTCP_TRANSPORT_CLOSE_FD=%u,JKTCP_OPT_PMTU_PROBE=%d,"
             "JKTCP_OPT_SNDBUF=%d,JKTCP_LAST_ACK=%d,JKTCP_FRAMING_TUN_OFFLOAD=%d",
             JKTCP_FRAMING_STREAM, JKTCP_FRAMING_PACKET, JKTCP_POLL_READ, JKTCP_POLL_WRITE,
             (unsigned)JKTCP_TRANSPORT_CLOSE_FD, JKTCP_OPT_PMTU_PROBE, JKTCP_OPT_SNDBUF,
             JKTCP_LAST_ACK, JKTCP_FRAMING_TUN_OFFLOAD);
    setenv("JKTCP_ABI_ENUMS", buf, 1);
}

/* The last line of text that looks like pytest's summary ("N passed ..."). */
static void summary_line(const char *text, char *out, size_t cap)
{
    out[0] = 0;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0 && n < 512 && (strstr(p, " passed") || strstr(p, " failed") ||
                                 strstr(p, " error") || strstr(p, "no tests ran"))) {
            const char *q = p;
            while (q < p + n && *q == '=')
                q++;
            if (q < p + n && (*q == ' ' || (*q >= '0' && *q <= '9'))) {
                snprintf(out, cap, "%.*s", (int)n, p);
            }
        }
        if (!e)
            break;
        p = e + 1;
    }
}

Test(python, pytest, .timeout = PYTEST_LIMIT_S + 30)
{
    if (JKT_PY_SANITIZE[0])
        cr_skip_test("python: skipped under SANITIZE=%s (a sanitized libjktcp.so cannot be "
                     "loaded into python3)", JKT_PY_SANITIZE);
    cr_assert(JKT_PY_SHARED[0], "built without JKT_PY_SHARED (see the Makefile's Python section)");
    char lib[4096];
    if (!realpath(JKT_PY_SHARED, lib))
        cr_assert_fail("python: %s: %s (build it: make %s)", JKT_PY_SHARED, strerror(errno),
                       JKT_PY_SHARED);
    const char *py = find_python();
    cr_assert(py, "python: no python3 with pytest (apt-get install python3-pytest; "
                  "`make test` installs it)");

    int rc = jkt_netns_enter();
    if (rc != 0)
        cr_log_warn("python: no private network namespace (%s): the kernel tests will skip",
                    strerror(-rc));

    char tests[4096], pypath[4096];
    snprintf(tests, sizeof tests, "%s/lib/python/tests", JKT_PY_SRCDIR);
    snprintf(pypath, sizeof pypath, "%s/lib/python", JKT_PY_SRCDIR);
    setenv("JKTCP_LIBRARY", lib, 1);
    setenv("PYTHONPATH", pypath, 1);
    setenv("PYTHONDONTWRITEBYTECODE", "1", 1); /* nothing written into the source tree */
    setenv("PYTHONUNBUFFERED", "1", 1);
    unsetenv("JKTCP_PY_REPORT");
    set_abi_env();

    int pfd[2];
    cr_assert(pipe(pfd) == 0, "pipe: %s", strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* pytest dies with this test process (Criterion's timeout kills it) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        signal(SIGPIPE, SIG_DFL);
        char *argv[] = {(char *)py, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider",
                        "-W", "error::pytest.PytestUnhandledThreadExceptionWarning",
                        tests, NULL};
        execvp(py, argv);
        fprintf(stderr, "exec %s: %s\n", py, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);

    fprintf(stderr, "python: %s -m pytest %s (JKTCP_LIBRARY=%s)\n", py, tests, lib);
    char *tail = calloc(1, TAIL_CAP + 1);
    cr_assert(tail, "out of memory");
    size_t used = 0;
    double end = jkt_now_s() + PYTEST_LIMIT_S;
    bool timed_out = false;
    for (;;) {
        double left = end - jkt_now_s();
        if (left <= 0) {
            timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        char buf[8192];
        ssize_t n = read(pfd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        fwrite(buf, 1, (size_t)n, stderr);
        if (used + (size_t)n > TAIL_CAP) { /* keep the last TAIL_CAP bytes */
            size_t drop = used + (size_t)n - TAIL_CAP;
            if (drop > used)
                drop = used;
            memmove(tail, tail + drop, used - drop);
            used -= drop;
        }
        size_t take = (size_t)n > TAIL_CAP ? TAIL_CAP : (size_t)n;
        memcpy(tail + used, buf + (size_t)n - take, take);
        used += take;
        tail[used] = 0;
    }
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    char sum[512];
    summary_line(tail, sum, sizeof sum);
    fprintf(stderr, "python: pytest summary: %s\n", sum[0] ? sum : "(none)");
    cr_log_info("python: %s", sum[0] ? sum : "(no pytest summary)");
    free(tail);
    cr_assert(!timed_out, "python: pytest still running after %d s: killed", PYTEST_LIMIT_S);
    cr_assert(WIFEXITED(st), "python: pytest died (signal %d)", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 0, "python: pytest exited %d: %s", WEXITSTATUS(st),
                 sum[0] ? sum : "see its output above");
}
