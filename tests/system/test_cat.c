/* SPDX-License-Identifier: MIT */
/*
 * Suite `cat`: tools/jktcp-cat, run as a child process over a TUN device in
 * the test's private network namespace (kernel 198.18.0.1 / fd00::1, jktcp
 * 198.18.0.2 / fd00::2), against kernel servers and clients of this
 * process. No traffic leaves the namespace: the kernel side of every
 * connection is an address of the TUN or loopback.
 *
 * The TUN device is made persistent and our fd closed, so that jktcp-cat
 * can attach to it with --tun (a single-queue TUN takes one open at a
 * time). The device goes away with the namespace when the test ends.
 *
 * The tool is found next to the test binary (<build>/tools/jktcp-cat, made
 * by `make test`) or at $JKTCP_CAT. Skipped (not failed) without namespaces
 * or /dev/net/tun; the SOCKS test also without curl or python3.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge.h"
#include "kserver.h"
#include "netns.h"
#include "tuntest.h"

#define MiB (1024u * 1024u)
#define TUN_NAME "jkt0"
#define CHUNK (256u * 1024u)
#define IO_TIMEOUT_MS 20000 /* a stalled transfer fails the test instead of hanging it */

/* ---- Namespace, tool, child processes ------------------------------------ */

static const char *tool_path(void)
{
    static char path[PATH_MAX + 32];
    const char *env = getenv("JKTCP_CAT");
    if (env && *env)
        return env;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
    exe[n] = 0;
    for (int i = 0; i < 2; i++) { /* <build>/tests/jktcp_tests -> <build> */
        char *slash = strrchr(exe, '/');
        cr_assert_not_null(slash);
        *slash = 0;
    }
    snprintf(path, sizeof path, "%s/tools/jktcp-cat", exe);
    cr_assert(access(path, X_OK) == 0, "%s: %s (make %s)", path, strerror(errno), path);
    return path;
}

/* A namespace with TUN_NAME (both families) at mtu, owned by nobody. */
static void ns_up(unsigned mtu)
{
    struct jkt_tun tun;
    jkt_tun_up_or_skip("cat", TUN_NAME, mtu, 0, &tun);
    cr_assert_eq(ioctl(tun.fd, TUNSETPERSIST, 1), 0, "TUNSETPERSIST: %s", strerror(errno));
    jkt_tun_close(&tun);
}

struct args {
    char *v[48];
    int n;
};

static void push(struct args *a, const char *word)
{
    cr_assert_lt(a->n, 46);
    a->v[a->n++] = strdup(word);
    a->v[a->n] = NULL;
}

/* Append the space-separated words of fmt (printf-formatted). */
static void args(struct args *a, const char *fmt, ...)
{
    char buf[512], *save;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
        push(a, w);
}

/* jktcp-cat --tun jkt0 --local <jktcp> --peer <kernel> <more> */
#define tool_args(a, family, ...)                                                                  \
    do {                                                                                           \
        (a)->n = 0;                                                                                \
        args(a, "%s --tun " TUN_NAME " --local %s --peer %s", tool_path(), jkt_local_ip(family),   \
             jkt_kernel_ip(family));                                                               \
        args(a, __VA_ARGS__);                                                                      \
    } while (0)

struct child {
    pid_t pid;
    int in, out;      /* our ends of its stdin / stdout pipes, -1: /dev/null */
    char errpath[64]; /* its stderr, a file */
    int status;       /* after child_wait */
};

enum { PIPE_IN = 1, PIPE_OUT = 2 };

/* In the child, between fork and exec: async-signal-safe calls only (the
 * test has threads). PR_SET_PDEATHSIG: a test that fails or times out
 * takes its children (a forwarder runs until told) along. */
static void child_exec(int in, int out, int err, int fd3, pid_t parent, struct args *a)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int null = open("/dev/null", O_RDWR);
    dup2(in >= 0 ? in : null, 0);
    dup2(out >= 0 ? out : null, 1);
    dup2(err, 2);
    if (fd3 == 3)
        fcntl(3, F_SETFD, 0);
    else if (fd3 >= 0)
        dup2(fd3, 3);
    execvp(a->v[0], a->v);
    _exit(127);
}

/* Start a->v with its stdin / stdout from pipes (or /dev/null) and its
 * stderr into a file; fd3 >= 0 is passed as its fd 3 (--fd 3). */
static void child_start_fd(struct child *c, unsigned pipes, struct args *a, int fd3)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    memset(c, 0, sizeof *c);
    c->in = c->out = -1;
    snprintf(c->errpath, sizeof c->errpath, "/tmp/jktcp-cat-err-XXXXXX");
    int efd = mkostemp(c->errpath, O_CLOEXEC);
    cr_assert(efd >= 0, "mkstemp: %s", strerror(errno));
    if (pipes & PIPE_IN)
        cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    if (pipes & PIPE_OUT)
        cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    pid_t parent = getpid();
    c->pid = fork();
    cr_assert(c->pid >= 0, "fork: %s", strerror(errno));
    if (c->pid == 0)
        child_exec(in[0], out[1], efd, fd3, parent, a);
    close(efd);
    if (pipes & PIPE_IN) {
        close(in[0]);
        c->in = in[1];
    }
    if (pipes & PIPE_OUT) {
        close(out[1]);
        c->out = out[0];
    }
}

static void child_start(struct child *c, unsigned pipes, struct args *a)
{
    child_start_fd(c, pipes, a, -1);
}

/* Its exit status (0..255; 128 + signal), or -1 if it is still running
 * after timeout_ms (then it is killed). */
static int child_wait(struct child *c, int timeout_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)timeout_ms * 1000u;
    int st;
    for (;;) {
        pid_t p = waitpid(c->pid, &st, WNOHANG);
        if (p == c->pid)
            break;
        if (jkt_now_us() > end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            return c->status = -1;
        }
        usleep(2000);
    }
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return c->status;
}

static bool child_running(struct child *c)
{
    int st;
    return waitpid(c->pid, &st, WNOHANG) == 0;
}

/* Everything it wrote to stderr so far (malloc'd, NUL-terminated). */
static char *child_stderr(struct child *c)
{
    FILE *f = fopen(c->errpath, "r");
    cr_assert_not_null(f);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void child_done(struct child *c)
{
    if (c->in >= 0)
        close(c->in);
    if (c->out >= 0)
        close(c->out);
    unlink(c->errpath);
}

/* Occurrences of `what` in s. */
static int count_lines(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++)
        n++;
    return n;
}

/* Wait until its stderr shows `what` n times (-v announces listeners and
 * closed connections). */
static void wait_stderr_n(struct child *c, const char *what, int n, int timeout_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)timeout_ms * 1000u;
    for (;;) {
        char *e = child_stderr(c);
        bool found = count_lines(e, what) >= n;
        cr_assert(found || child_running(c), "jktcp-cat exited early: %s", e);
        free(e);
        if (found)
            return;
        cr_assert(jkt_now_us() < end, "not %d x '%s' from jktcp-cat in %d ms", n, what, timeout_ms);
        usleep(5000);
    }
}

static void wait_stderr(struct child *c, const char *what, int timeout_ms)
{
    wait_stderr_n(c, what, 1, timeout_ms);
}

static void server_up(struct jkt_server *s, int kind, int family)
{
    s->kind = kind;
    s->family = family;
    int rc = jkt_server_start(s);
    cr_assert_eq(rc, 0, "kernel server: %s", strerror(-rc));
}

/* ---- Data through pipes -------------------------------------------------- */

/* 0 or -errno; no assertions (feeder threads use it too). */
static int write_pattern(int fd, uint64_t total, uint32_t seed)
{
    uint8_t *buf = malloc(CHUNK);
    int rc = 0;
    for (uint64_t off = 0; off < total && !rc;) {
        size_t n = total - off < CHUNK ? (size_t)(total - off) : CHUNK;
        jkt_pattern_fill(buf, n, off, seed);
        for (size_t done = 0; done < n && !rc;) {
            ssize_t w = write(fd, buf + done, n - done);
            if (w > 0)
                done += (size_t)w;
            else if (errno != EINTR)
                rc = -errno;
        }
        off += n;
    }
    free(buf);
    return rc;
}

/* Read fd to EOF checking the pattern; the byte count. *bad: the offset
 * of the first wrong byte, or UINT64_MAX. */
static uint64_t read_pattern(int fd, uint32_t seed, uint64_t *bad)
{
    uint8_t *buf = malloc(CHUNK);
    uint64_t off = 0;
    *bad = UINT64_MAX;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, IO_TIMEOUT_MS);
        cr_assert(r > 0, "no data for %d ms at offset %llu", IO_TIMEOUT_MS,
                  (unsigned long long)off);
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        cr_assert(n >= 0, "read: %s", strerror(errno));
        if (n == 0)
            break;
        size_t at = jkt_pattern_check(buf, (size_t)n, off, seed);
        if (at != (size_t)n && *bad == UINT64_MAX)
            *bad = off + at;
        off += (uint64_t)n;
    }
    free(buf);
    return off;
}

struct feeder {
    int fd;
    uint64_t total;
    uint32_t seed;
    bool close_after;
    pthread_t th;
};

static void *feeder_main(void *arg)
{
    struct feeder *f = arg;
    write_pattern(f->fd, f->total, f->seed);
    if (f->close_after) {
        close(f->fd);
        f->fd = -1;
    }
    return NULL;
}

/* ---- Cat mode ------------------------------------------------------------ */

/* 100 MiB from stdin through jktcp-cat to a kernel sink that checks every
 * byte; stdin's EOF becomes our FIN, the sink's close ends the tool. */
Test(cat, upload_100mib_v4, .timeout = 60)
{
    const uint64_t total = 100ull * MiB;
    ns_up(16000);
    struct jkt_server srv = {.verify = true, .in_seed = 0xca7};
    server_up(&srv, JKT_SRV_SINK, AF_INET);
    struct args a;
    tool_args(&a, AF_INET, "%u", srv.port);
    struct child c;
    double t0 = jkt_now_s();
    child_start(&c, PIPE_IN, &a);
    int wr = write_pattern(c.in, total, 0xca7);
    close(c.in);
    c.in = -1;
    int st = child_wait(&c, 40000);
    double secs = jkt_now_s() - t0;
    char *err = child_stderr(&c);
    jkt_server_stop(&srv);
    char desc[512];
    jkt_server_describe(&srv, desc, sizeof desc);
    cr_assert_eq(st, 0, "jktcp-cat exit %d: %s", st, err);
    cr_assert_eq(wr, 0, "stdin: %s", strerror(-wr));
    cr_expect_str_empty(err, "stderr: %s", err);
    cr_assert_eq(atomic_load(&srv.bytes_in), total, "%s", desc);
    cr_assert_eq(atomic_load(&srv.mismatches), 0, "%s", desc);
    cr_assert_eq(atomic_load(&srv.eofs), 1, "%s", desc);
    fprintf(stderr, "[cat] upload 100 MiB v4 mtu 16000: %.3f s = %.1f MB/s (process start to exit)\n",
            secs, (double)total / secs / 1e6);
    free(err);
    child_done(&c);
}

/* Both directions at once through a kernel echo server, IPv6; -v prints
 * the connection's info at close. */
Test(cat, echo_8mib_v6_verbose, .timeout = 60)
{
    const uint64_t total = 8ull * MiB;
    ns_up(1500);
    struct jkt_server srv = {0};
    server_up(&srv, JKT_SRV_ECHO, AF_INET6);
    struct args a;
    tool_args(&a, AF_INET6, "-v %u", srv.port);
    struct child c;
    child_start(&c, PIPE_IN | PIPE_OUT, &a);
    struct feeder f = {.fd = c.in, .total = total, .seed = 0xec0, .close_after = true};
    pthread_create(&f.th, NULL, feeder_main, &f);
    uint64_t bad;
    uint64_t got = read_pattern(c.out, 0xec0, &bad);
    pthread_join(f.th, NULL);
    c.in = -1;
    int st = child_wait(&c, 10000);
    char *err = child_stderr(&c);
    jkt_server_stop(&srv);
    cr_assert_eq(st, 0, "jktcp-cat exit %d: %s", st, err);
    cr_assert_eq(got, total, "stdout: %llu bytes", (unsigned long long)got);
    cr_assert_eq(bad, UINT64_MAX, "stdout differs at %llu", (unsigned long long)bad);
    cr_assert_eq(count_lines(err, "\n"), 1, "one -v line expected: %s", err);
    cr_assert(strstr(err, "[fd00::2]:") && strstr(err, "[fd00::1]:") &&
                  strstr(err, " closed, 8388608 bytes up, 8388608 down;") &&
                  strstr(err, "8388608 bytes acked, 8388608 received"),
              "-v line: %s", err);
    free(err);
    child_done(&c);
}

/* The peer closes first: stdout ends while stdin is still open, and the
 * tool waits for stdin's EOF before it exits (both directions done). */
Test(cat, peer_closes_first, .timeout = 30)
{
    const uint64_t total = 4ull * MiB;
    ns_up(1500);
    struct jkt_server srv = {.nbytes = total, .seed = 0x5eed};
    server_up(&srv, JKT_SRV_SOURCE, AF_INET);
    struct args a;
    tool_args(&a, AF_INET, "%u", srv.port);
    struct child c;
    child_start(&c, PIPE_IN | PIPE_OUT, &a);
    uint64_t bad;
    uint64_t got = read_pattern(c.out, 0x5eed, &bad);
    cr_assert_eq(got, total, "stdout: %llu bytes", (unsigned long long)got);
    cr_assert_eq(bad, UINT64_MAX, "stdout differs at %llu", (unsigned long long)bad);
    usleep(300 * 1000);
    cr_assert(child_running(&c), "exited before stdin's EOF");
    close(c.in); /* now our FIN */
    c.in = -1;
    int st = child_wait(&c, 10000);
    char *err = child_stderr(&c);
    jkt_server_stop(&srv);
    cr_assert_eq(st, 0, "exit %d: %s", st, err);
    cr_expect_str_empty(err, "stderr: %s", err);
    free(err);
    child_done(&c);
}

/* --listen: a kernel client connects to jktcp's address; data both ways. */
Test(cat, listen_v4, .timeout = 30)
{
    ns_up(1500);
    struct args a;
    tool_args(&a, AF_INET, "-v --listen 6000");
    struct child c;
    child_start(&c, PIPE_IN | PIPE_OUT, &a);
    wait_stderr(&c, "listening", 5000);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(6000)};
    inet_pton(AF_INET, JKT_LOCAL_IP4, &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
    const char hello_k[] = "hello from the kernel\n", hello_s[] = "hello from stdin\n";
    cr_assert_eq(write(fd, hello_k, strlen(hello_k)), (ssize_t)strlen(hello_k));
    shutdown(fd, SHUT_WR);
    cr_assert_eq(write(c.in, hello_s, strlen(hello_s)), (ssize_t)strlen(hello_s));
    close(c.in);
    c.in = -1;

    char got_k[64] = "", got_s[64] = "";
    size_t nk = 0, ns = 0;
    ssize_t n;
    while ((n = read(fd, got_s + ns, sizeof got_s - 1 - ns)) > 0)
        ns += (size_t)n;
    while ((n = read(c.out, got_k + nk, sizeof got_k - 1 - nk)) > 0)
        nk += (size_t)n;
    close(fd);
    int st = child_wait(&c, 10000);
    char *err = child_stderr(&c);
    cr_assert_eq(st, 0, "exit %d: %s", st, err);
    cr_assert_str_eq(got_s, hello_s);
    cr_assert_str_eq(got_k, hello_k);
    cr_assert(strstr(err, "connection from 198.18.0.1:"), "%s", err);
    free(err);
    child_done(&c);
}

/* ---- Transports other than --tun: --fd, --unix, --tcp -------------------- */

/* The TUN stays the test's; netns.h's bridge turns it into a socketpair
 * (stream framing cut into random pieces, or seqpacket). --unix and --tcp
 * reach that socketpair through a gateway: a listener of ours whose one
 * connection is pumped both ways to the bridge. */
enum { VIA_FD_STREAM, VIA_FD_SEQPACKET, VIA_UNIX, VIA_TCP };

#define GW_TCP_PORT 7100
#define GW_UNIX_NAME "@jktcp-cat-test" /* abstract: private to the namespace */

struct pump {
    int from, to;
    atomic_bool *stop;
    pthread_t th;
};

/* from -> to until EOF, an error or *stop (polled, so it can be stopped). */
static void *pump_main(void *arg)
{
    struct pump *p = arg;
    char buf[65536];
    while (!atomic_load(p->stop)) {
        struct pollfd pf = {.fd = p->from, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        ssize_t n = read(p->from, buf, sizeof buf);
        if (n <= 0 || send(p->to, buf, (size_t)n, MSG_NOSIGNAL) != n)
            break;
    }
    return NULL;
}

struct gateway {
    int lfd, conn, bridge_fd;
    atomic_bool stop;
    struct pump a, b;
    pthread_t th;
};

static void *gateway_main(void *arg)
{
    struct gateway *g = arg;
    g->conn = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (g->conn < 0)
        return NULL;
    g->a = (struct pump){.from = g->conn, .to = g->bridge_fd, .stop = &g->stop};
    g->b = (struct pump){.from = g->bridge_fd, .to = g->conn, .stop = &g->stop};
    pthread_create(&g->a.th, NULL, pump_main, &g->a);
    pthread_create(&g->b.th, NULL, pump_main, &g->b);
    pthread_join(g->a.th, NULL);
    pthread_join(g->b.th, NULL);
    close(g->conn);
    return NULL;
}

static void gateway_start(struct gateway *g, int via, int bridge_fd)
{
    memset(g, 0, sizeof *g);
    g->bridge_fd = bridge_fd;
    g->conn = -1;
    if (via == VIA_UNIX) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        memcpy(sa.sun_path, GW_UNIX_NAME, strlen(GW_UNIX_NAME));
        sa.sun_path[0] = 0;
        g->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_eq(bind(g->lfd, (struct sockaddr *)&sa,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(GW_UNIX_NAME))),
                     0, "bind: %s", strerror(errno));
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(GW_TCP_PORT)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        g->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_eq(bind(g->lfd, (struct sockaddr *)&sa, sizeof sa), 0, "bind: %s",
                     strerror(errno));
    }
    cr_assert_eq(listen(g->lfd, 1), 0);
    cr_assert_eq(pthread_create(&g->th, NULL, gateway_main, g), 0);
}

static void gateway_stop(struct gateway *g)
{
    atomic_store(&g->stop, true);
    shutdown(g->lfd, SHUT_RDWR); /* wakes accept if nobody came */
    pthread_join(g->th, NULL);
    close(g->lfd);
}

/* 2 MiB through a kernel echo server over the transport `via`, stdout
 * checked byte for byte; --fd stream also captures a pcap. */
static void transport_echo(int via)
{
    const uint64_t total = 2ull * MiB;
    struct jkt_tun tun;
    jkt_tun_up_or_skip("cat", TUN_NAME, 1500, 0, &tun);
    struct jkt_bridge br;
    int rc = jkt_bridge_start(&br, tun.fd,
                          via == VIA_FD_SEQPACKET ? JKT_BRIDGE_SEQPACKET : JKT_BRIDGE_RANDOM_CHUNKS,
                          0xb41d);
    cr_assert_eq(rc, 0, "bridge: %s", strerror(-rc));
    struct gateway gw;
    if (via == VIA_UNIX || via == VIA_TCP)
        gateway_start(&gw, via, br.user_fd);
    struct jkt_server srv = {0};
    server_up(&srv, JKT_SRV_ECHO, AF_INET);

    char pcap[] = "/tmp/jktcp-cat-pcap-XXXXXX";
    close(mkstemp(pcap));
    struct args a = {0};
    if (via == VIA_UNIX)
        args(&a, "%s --unix " GW_UNIX_NAME, tool_path());
    else if (via == VIA_TCP)
        args(&a, "%s --tcp 127.0.0.1:%d", tool_path(), GW_TCP_PORT);
    else
        args(&a, "%s --fd 3 --pcap %s", tool_path(), pcap);
    args(&a, "--local " JKT_LOCAL_IP4 " --peer " JKT_KERNEL_IP4 " %u", srv.port);
    struct child c;
    child_start_fd(&c, PIPE_IN | PIPE_OUT, &a, via <= VIA_FD_SEQPACKET ? br.user_fd : -1);
    struct feeder f = {.fd = c.in, .total = total, .seed = 0x7a, .close_after = true};
    pthread_create(&f.th, NULL, feeder_main, &f);
    uint64_t bad;
    uint64_t got = read_pattern(c.out, 0x7a, &bad);
    pthread_join(f.th, NULL);
    c.in = -1;
    int st = child_wait(&c, 10000);
    char *err = child_stderr(&c);
    jkt_server_stop(&srv);
    if (via == VIA_UNIX || via == VIA_TCP)
        gateway_stop(&gw);
    int berr = atomic_load(&br.error);
    jkt_bridge_stop(&br);
    jkt_tun_close(&tun);
    struct stat sb;
    bool pcap_ok = stat(pcap, &sb) == 0 && sb.st_size > 24 + 40 * 100;
    unlink(pcap);
    cr_assert_eq(st, 0, "exit %d: %s", st, err);
    cr_assert_eq(got, total, "stdout: %llu bytes", (unsigned long long)got);
    cr_assert_eq(bad, UINT64_MAX, "stdout differs at %llu", (unsigned long long)bad);
    cr_assert_eq(berr, 0, "bridge: %s", strerror(-berr));
    cr_assert(via != VIA_FD_STREAM || pcap_ok, "--pcap wrote %lld bytes", (long long)sb.st_size);
    free(err);
    child_done(&c);
}

Test(cat, fd_stream, .timeout = 30) { transport_echo(VIA_FD_STREAM); }
Test(cat, fd_seqpacket, .timeout = 30) { transport_echo(VIA_FD_SEQPACKET); }
Test(cat, unix_stream, .timeout = 30) { transport_echo(VIA_UNIX); }
Test(cat, tcp_stream, .timeout = 30) { transport_echo(VIA_TCP); }

/* ---- --forward ----------------------------------------------------------- */

#define FWD_CLIENTS 16
#define FWD_BYTES (16ull * MiB)
#define FWD_LPORT 7001

struct fwd_client {
    int idx;
    uint64_t sent, got, bad;
    int err; /* errno of a failure, 0 */
    pthread_t th;
};

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* One step of a client: send what the socket takes, read what came,
 * checking it against the pattern. false when the client is done. */
static bool fwd_step(struct fwd_client *c, int fd, uint8_t *buf)
{
    uint32_t seed = 0xf00 + (uint32_t)c->idx;
    struct pollfd p = {.fd = fd, .events = POLLIN | (c->sent < FWD_BYTES ? POLLOUT : 0)};
    if (poll(&p, 1, IO_TIMEOUT_MS) <= 0) {
        c->err = ETIMEDOUT;
        return false;
    }
    if (p.revents & POLLOUT) {
        size_t n = FWD_BYTES - c->sent < CHUNK ? (size_t)(FWD_BYTES - c->sent) : CHUNK;
        jkt_pattern_fill(buf, n, c->sent, seed);
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0 && (c->sent += (uint64_t)w) == FWD_BYTES)
            shutdown(fd, SHUT_WR);
        if (w < 0 && errno != EAGAIN)
            return c->err = errno, false;
    }
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
        return true;
    ssize_t n = recv(fd, buf, CHUNK, MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN ? true : (c->err = errno, false);
    size_t at = jkt_pattern_check(buf, (size_t)n, c->got, seed);
    if (at != (size_t)n && c->bad == UINT64_MAX)
        c->bad = c->got + at;
    c->got += (uint64_t)n;
    return n > 0;
}

static void *fwd_client_main(void *arg)
{
    struct fwd_client *c = arg;
    c->bad = UINT64_MAX;
    int fd = connect_loopback(FWD_LPORT);
    if (fd < 0) {
        c->err = -fd;
        return NULL;
    }
    uint8_t *buf = malloc(CHUNK);
    while (fwd_step(c, fd, buf)) {
    }
    free(buf);
    close(fd);
    return NULL;
}

/* 16 kernel clients at once through --forward to a kernel echo server,
 * each 16 MiB its own pattern: every byte back, on its own connection. */
Test(cat, forward_16_clients_16mib, .timeout = 60)
{
    ns_up(16000);
    struct jkt_server srv = {0};
    server_up(&srv, JKT_SRV_ECHO, AF_INET);
    struct args a;
    tool_args(&a, AF_INET, "-v --forward %d:%u", FWD_LPORT, srv.port);
    struct child c;
    child_start(&c, 0, &a);
    wait_stderr(&c, "forwarding 127.0.0.1:7001", 5000);

    struct fwd_client cl[FWD_CLIENTS] = {{0}};
    double t0 = jkt_now_s();
    for (int i = 0; i < FWD_CLIENTS; i++) {
        cl[i].idx = i;
        cr_assert_eq(pthread_create(&cl[i].th, NULL, fwd_client_main, &cl[i]), 0);
    }
    uint64_t up = 0, down = 0;
    for (int i = 0; i < FWD_CLIENTS; i++) {
        pthread_join(cl[i].th, NULL);
        up += cl[i].sent;
        down += cl[i].got;
    }
    double secs = jkt_now_s() - t0;
    int done = jkt_server_wait_done(&srv, FWD_CLIENTS, 5000);
    wait_stderr_n(&c, " closed, ", FWD_CLIENTS, 5000); /* the -v lines, before SIGTERM */
    kill(c.pid, SIGTERM);
    int st = child_wait(&c, 10000);
    char *err = child_stderr(&c);
    jkt_server_stop(&srv);
    for (int i = 0; i < FWD_CLIENTS; i++) {
        cr_assert_eq(cl[i].err, 0, "client %d: %s (sent %llu got %llu); %s", i,
                     strerror(cl[i].err), (unsigned long long)cl[i].sent,
                     (unsigned long long)cl[i].got, err);
        cr_assert_eq(cl[i].got, FWD_BYTES, "client %d got %llu", i, (unsigned long long)cl[i].got);
        cr_assert_eq(cl[i].bad, UINT64_MAX, "client %d: wrong byte at %llu", i,
                     (unsigned long long)cl[i].bad);
    }
    cr_assert_eq(done, 0, "echo server: %lu of %d done", atomic_load(&srv.done), FWD_CLIENTS);
    cr_assert_eq(atomic_load(&srv.accepted), FWD_CLIENTS);
    cr_assert_eq(atomic_load(&srv.bytes_in), FWD_CLIENTS * FWD_BYTES);
    cr_assert_eq(st, 0, "jktcp-cat exit %d after SIGTERM: %s", st, err);
    cr_assert_eq(count_lines(err, " closed, 16777216 bytes up, 16777216 down;"), FWD_CLIENTS,
                 "-v lines: %s", err);
    fprintf(stderr,
            "[cat] forward %d clients x 16 MiB echo v4 mtu 16000: %.1f MiB up + %.1f MiB down "
            "in %.3f s = %.1f MB/s each way\n",
            FWD_CLIENTS, (double)up / MiB, (double)down / MiB, secs, (double)up / secs / 1e6);
    free(err);
    child_done(&c);
}

/* --forward to a closed port, and to a server that resets after 1000
 * bytes: each kernel client is reset in turn, each failure is one line,
 * and the forwarder goes on serving. */
Test(cat, forward_refused_and_reset, .timeout = 30)
{
    ns_up(1500);
    struct jkt_server srv = {.reset_after = 1000};
    server_up(&srv, JKT_SRV_RESET, AF_INET);
    struct args a;
    tool_args(&a, AF_INET, "-v --forward 7001:9 --forward 7002:%u", srv.port);
    struct child c;
    child_start(&c, 0, &a);
    wait_stderr(&c, "forwarding 127.0.0.1:7002", 5000);
    char buf[65536] = {0};
    int e[2];
    for (int i = 0; i < 2; i++) {
        int fd = connect_loopback(7001 + i);
        cr_assert(fd >= 0, "connect: %s", strerror(-fd));
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (i == 1)
            cr_assert_eq(send(fd, buf, sizeof buf, MSG_NOSIGNAL), (ssize_t)sizeof buf);
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        e[i] = n < 0 ? errno : 0;
        close(fd);
    }
    wait_stderr(&c, "connection reset by peer", 5000);
    kill(c.pid, SIGTERM);
    int st = child_wait(&c, 10000);
    char *err = child_stderr(&c);
    jkt_server_stop(&srv);
    cr_assert_eq(e[0], ECONNRESET, "closed port: client got %s", strerror(e[0]));
    cr_assert_eq(e[1], ECONNRESET, "reset: client got %s", strerror(e[1]));
    cr_assert(strstr(err, ": connect to 198.18.0.1 port 9: connection refused\n"), "%s", err);
    cr_assert(strstr(err, " tunnel: connection reset by peer, 65536 bytes up, 0 down;"), "%s", err);
    cr_assert_eq(st, 0, "exit %d after SIGTERM: %s", st, err);
    free(err);
    child_done(&c);
}

/* ---- --socks ------------------------------------------------------------- */

#define SOCKS_PORT 1080
#define HTTP_PORT 8080

/* A raw SOCKS5 CONNECT; the reply code (0 = succeeded), or -1. */
static int socks_connect(uint8_t atyp, const void *addr, size_t alen, int port, uint8_t cmd)
{
    int fd = connect_loopback(SOCKS_PORT);
    cr_assert(fd >= 0, "connect to the SOCKS port: %s", strerror(-fd));
    uint8_t m[300] = {5, 1, 0}, r[32];
    cr_assert_eq(write(fd, m, 3), 3);
    cr_assert_eq(read(fd, r, 2), 2);
    cr_assert(r[0] == 5 && r[1] == 0, "method reply %u %u", r[0], r[1]);
    size_t n = 0;
    m[n++] = 5;
    m[n++] = cmd;
    m[n++] = 0;
    m[n++] = atyp;
    if (atyp == 3)
        m[n++] = (uint8_t)alen;
    memcpy(m + n, addr, alen);
    n += alen;
    m[n++] = (uint8_t)(port >> 8);
    m[n++] = (uint8_t)port;
    cr_assert_eq(write(fd, m, n), (ssize_t)n);
    ssize_t got = read(fd, r, sizeof r);
    close(fd);
    return got >= 10 && r[0] == 5 ? r[1] : -1;
}

static void write_file(const char *path, uint64_t total, uint32_t seed)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write_pattern(fd, total, seed), 0, "%s", path);
    close(fd);
}

static void wait_kernel_listening(const char *ip, int port, int timeout_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)timeout_ms * 1000u;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        close(fd);
        if (rc == 0)
            return;
        cr_assert(jkt_now_us() < end, "nothing listens on %s:%d", ip, port);
        usleep(20000);
    }
}

/* curl through --socks fetches a file from a kernel HTTP server on the
 * peer's address; other addresses, commands and a closed port get the
 * SOCKS errors jktcp-cat documents. */
Test(cat, socks5_curl, .timeout = 60)
{
    if (!jkt_have_program("curl") || !jkt_have_program("python3"))
        cr_skip_test("cat: needs curl and python3");
    ns_up(1500);
    char dir[] = "/tmp/jktcp-cat-www-XXXXXX", file[96], out[96], url[128], cmd[512];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/data.bin", dir);
    snprintf(out, sizeof out, "%s/fetched.bin", dir);
    const uint64_t total = 3ull * MiB + 12345;
    write_file(file, total, 0x50c5);

    struct args h = {0};
    args(&h, "python3 -m http.server %d --bind " JKT_KERNEL_IP4 " --directory %s", HTTP_PORT, dir);
    struct child http;
    child_start(&http, 0, &h);
    wait_kernel_listening(JKT_KERNEL_IP4, HTTP_PORT, 10000);

    struct args a;
    tool_args(&a, AF_INET, "-v --socks 127.0.0.1:%d", SOCKS_PORT);
    struct child c;
    child_start(&c, 0, &a);
    wait_stderr(&c, "SOCKS5 on 127.0.0.1:1080", 5000);

    snprintf(url, sizeof url, "http://%s:%d/data.bin", JKT_KERNEL_IP4, HTTP_PORT);
    snprintf(cmd, sizeof cmd,
             "curl -sS --fail --max-time 20 --noproxy '' -x socks5://127.0.0.1:%d -o %s %s",
             SOCKS_PORT, out, url);
    char cout[1024] = "";
    int curl_st = jkt_sh(cmd, cout, sizeof cout);
    /* The same through an address other than the peer's: refused by us. */
    snprintf(cmd, sizeof cmd,
             "curl -sS --max-time 10 --noproxy '' -x socks5://127.0.0.1:%d -o /dev/null "
             "http://198.18.0.3:%d/",
             SOCKS_PORT, HTTP_PORT);
    char cout2[1024] = "";
    int curl_other = jkt_sh(cmd, cout2, sizeof cout2);

    uint8_t peer[4], other[4] = {198, 18, 0, 3};
    inet_pton(AF_INET, JKT_KERNEL_IP4, peer);
    int rep_ok = socks_connect(1, peer, 4, HTTP_PORT, 1);
    int rep_name = socks_connect(3, JKT_KERNEL_IP4, strlen(JKT_KERNEL_IP4), HTTP_PORT, 1);
    int rep_other = socks_connect(1, other, 4, HTTP_PORT, 1);
    int rep_refused = socks_connect(1, peer, 4, HTTP_PORT + 1, 1);
    int rep_bind = socks_connect(1, peer, 4, HTTP_PORT, 2);
    int rep_dns = socks_connect(3, "peer.invalid", 12, HTTP_PORT, 1);

    kill(c.pid, SIGTERM);
    int st = child_wait(&c, 10000);
    char *err = child_stderr(&c);
    kill(http.pid, SIGTERM);
    child_wait(&http, 5000);
    child_done(&http);

    struct stat sb;
    int fd = open(out, O_RDONLY | O_CLOEXEC);
    uint64_t bad = UINT64_MAX, got = 0;
    if (fd >= 0) {
        got = read_pattern(fd, 0x50c5, &bad);
        close(fd);
    }
    unlink(file);
    bool fetched = stat(out, &sb) == 0;
    unlink(out);
    rmdir(dir);
    cr_assert_eq(curl_st, 0, "curl: exit %d: %s; jktcp-cat: %s", curl_st, cout, err);
    cr_assert(fetched && got == total && bad == UINT64_MAX,
              "fetched %llu of %llu bytes, first wrong at %lld", (unsigned long long)got,
              (unsigned long long)total, bad == UINT64_MAX ? -1LL : (long long)bad);
    cr_assert_neq(curl_other, 0, "curl through 198.18.0.3 succeeded");
    cr_assert_eq(rep_ok, 0);
    cr_assert_eq(rep_name, 0, "an address literal as a domain name");
    cr_assert_eq(rep_other, 2, "not the peer: not allowed by ruleset");
    cr_assert_eq(rep_refused, 5, "closed port: connection refused");
    cr_assert_eq(rep_bind, 7, "BIND: command not supported");
    cr_assert_eq(rep_dns, 4, "a name: host unreachable (no resolver)");
    cr_assert_eq(st, 0, "jktcp-cat exit %d after SIGTERM: %s", st, err);
    free(err);
    child_done(&c);
}

/* ---- Errors: one line on stderr, exit != 0 ------------------------------- */

/* jktcp-cat with the space-separated arguments in line, to its end: its
 * exit status must be `status` and its stderr one line with `needle`. */
static void expect_error(int status, const char *needle, const char *line)
{
    struct args a = {0};
    args(&a, "%s %s", tool_path(), line);
    struct child c;
    child_start(&c, 0, &a);
    int st = child_wait(&c, 15000);
    char *err = child_stderr(&c);
    child_done(&c);
    cr_expect_eq(st, status, "jktcp-cat %s: exit %d, want %d (%s)", line, st, status, err);
    cr_expect(strncmp(err, "jktcp-cat: ", 11) == 0 && count_lines(err, "\n") == 1 &&
                  err[strlen(err) - 1] == '\n',
              "jktcp-cat %s: not one line: '%s'", line, err);
    cr_expect(strstr(err, needle), "jktcp-cat %s: '%s' lacks '%s'", line, err, needle);
    fprintf(stderr, "[cat] jktcp-cat %s -> %d: %s", line, st, err);
    free(err);
}

#define TUN4 "--tun " TUN_NAME " --local " JKT_LOCAL_IP4 " --peer " JKT_KERNEL_IP4

/* Bad flags (status 2), then a refused port, a peer nobody answers for (the
 * namespace does not forward: SYNs go unanswered until --timeout) and
 * transports that cannot be opened (status 1). */
Test(cat, errors_one_line, .timeout = 60)
{
    ns_up(1500);
    expect_error(2, "unknown option --bogus", TUN4 " --bogus");
    expect_error(2, "option --mtu needs a value", TUN4 " --mtu");
    expect_error(2, "give exactly one of", TUN4);
    expect_error(2, "PORT: 70000 is out of range (1..65535)", TUN4 " 70000");
    expect_error(2, "PORT: 'http' is not a number", TUN4 " http");
    expect_error(2, "exactly one transport", TUN4 " --fd 0 80");
    expect_error(2, "--forward 7000: expected LPORT:PORT", TUN4 " --forward 7000");
    expect_error(2, "--local IP and --peer IP are required", "--tun " TUN_NAME " 80");
    expect_error(2, "not the same IP version", "--tun jkt0 --local 198.18.0.2 --peer fd00::1 80");
    expect_error(1, "connect to 198.18.0.1 port 9: connection refused", TUN4 " 9");
    double t0 = jkt_now_s();
    expect_error(1, "connect to 198.18.0.9 port 80: connection timed out",
                 "--tun jkt0 --local 198.18.0.2 --peer 198.18.0.9 --timeout 1000 80");
    cr_expect_lt(jkt_now_s() - t0, 5.0, "--timeout 1000 took %.1f s", jkt_now_s() - t0);
    expect_error(1, "--tun nosuchtun0: no such network device",
                 "--tun nosuchtun0 --local 198.18.0.2 --peer 198.18.0.1 80");
    expect_error(1, "--tcp 127.0.0.1:1: Connection refused",
                 "--tcp 127.0.0.1:1 --local 198.18.0.2 --peer 198.18.0.1 80");
    expect_error(1, "--unix @jktcp-cat-nobody: Connection refused",
                 "--unix @jktcp-cat-nobody --local 198.18.0.2 --peer 198.18.0.1 80");
}
