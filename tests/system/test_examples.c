/* SPDX-License-Identifier: MIT */
/*
 * Suite `examples`: every program in docs/examples/ runs against the Linux
 * kernel's TCP, so the examples cannot rot.
 *
 * Each test (its own process under Criterion) enters a fresh network
 * namespace, creates a TUN device (kernel 198.18.0.1 / fd00::1, jktcp
 * 198.18.0.2 / fd00::2), starts kernel servers in threads, and runs the
 * example built by `make examples` ($(B)/examples/X, found next to this
 * binary's directory) as a child process in that namespace. The transport
 * reaches it as an inherited fd ("fd:100"), as the name of a persistent TUN
 * device ("tun:jktex0"), or as a Unix socket path ("unix:PATH", relayed to
 * a TUN <-> byte stream bridge). Tests check the example's exit status and
 * output, and what the kernel side saw (bytes, clean ends of stream).
 *
 * Skipped without network namespaces or /dev/net/tun; a missing example
 * binary fails (make test builds them).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jktcp.h"
#include "bridge.h"
#include "kserver.h"
#include "netns.h"
#include "tuntest.h"

extern char **environ;

#define EX_FD 100        /* the fd number a passed transport gets in the example */
#define EX_TUN "jktex0"
#define EX_OUT (256 * 1024)

static struct jkt_tun g_tun = {.fd = -1};

static void ex_up(unsigned mtu, int family_flags)
{
    jkt_tun_up_or_skip("examples", EX_TUN, mtu, family_flags, &g_tun);
}

/* Make the TUN device persistent and let go of it: an example then
 * attaches to it by name ("tun:jktex0"), as to a device made with
 * `ip tuntap add`. It goes with the namespace. */
static void ex_tun_detach(void)
{
    cr_assert_eq(ioctl(g_tun.fd, TUNSETPERSIST, 1), 0, "TUNSETPERSIST: %s", strerror(errno));
    jkt_tun_close(&g_tun);
}

/* Undo ex_tun_detach: attach, clear persistence, let go: the device goes. */
static void ex_tun_delete(void)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    cr_assert(fd >= 0);
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", EX_TUN);
    cr_expect_eq(ioctl(fd, TUNSETIFF, &ifr), 0, "reattach %s: %s", EX_TUN, strerror(errno));
    cr_expect_eq(ioctl(fd, TUNSETPERSIST, 0), 0);
    close(fd);
}

static void ex_server(struct jkt_server *s, int kind, int family)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->family = family;
    int rc = jkt_server_start(s);
    cr_assert_eq(rc, 0, "kernel server: %s", strerror(-rc));
}

/* $(B)/examples/<name>, from this binary's path $(B)/tests/jktcp_tests. */
static void ex_path(const char *name, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
    self[n] = 0;
    for (int i = 0; i < 2; i++) { /* strip "/jktcp_tests", then "/tests" */
        char *sl = strrchr(self, '/');
        cr_assert_not_null(sl);
        *sl = 0;
    }
    int w = snprintf(out, cap, "%s/examples/%s", self, name);
    cr_assert(w > 0 && (size_t)w < cap, "path too long");
    cr_assert_eq(access(out, X_OK), 0, "example %s not built (make examples): %s", out,
                 strerror(errno));
}

/* A running example: its pid and merged stdout/stderr. */
struct ex_proc {
    pid_t pid;
    int out;
    char text[EX_OUT];
    size_t len;
};

/* Start docs/examples/<name> with args; pass_fd (>= 0) becomes its fd EX_FD. */
static void ex_spawn(struct ex_proc *p, const char *name, const char *const args[], int pass_fd)
{
    char path[PATH_MAX];
    ex_path(name, path, sizeof path);
    char *argv[16];
    int argc = 0;
    argv[argc++] = path;
    for (; args[argc - 1] && argc < 15; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;

    int pfd[2];
    cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    if (pass_fd >= 0) /* dup2 to another number clears close-on-exec */
        posix_spawn_file_actions_adddup2(&fa, pass_fd, EX_FD);
    memset(p, 0, sizeof *p);
    int rc = posix_spawn(&p->pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    cr_assert_eq(rc, 0, "spawn %s: %s", path, strerror(rc));
    p->out = pfd[0];
}

/* Read output until `text` shows up (true) or the output ends / time runs out. */
static bool ex_wait_text(struct ex_proc *p, const char *text, int timeout_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)timeout_ms * 1000u;
    while (!(text && strstr(p->text, text))) {
        int64_t left = (int64_t)(end - jkt_now_us()) / 1000;
        if (left <= 0 || p->out < 0)
            return false;
        struct pollfd pf = {.fd = p->out, .events = POLLIN};
        if (poll(&pf, 1, (int)left) <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(p->out, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(p->out);
            p->out = -1;
            return text == NULL;
        }
        size_t room = sizeof p->text - 1 - p->len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(p->text + p->len, buf, take);
        p->len += take;
        p->text[p->len] = 0;
    }
    return true;
}

/* Read the rest of the output and reap the example: its exit status
 * (killed and failed if it runs past timeout_ms). */
static int ex_finish(struct ex_proc *p, int timeout_ms)
{
    bool ended = ex_wait_text(p, NULL, timeout_ms);
    if (!ended)
        kill(p->pid, SIGKILL);
    int st;
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (p->out >= 0)
        close(p->out);
    p->out = -1;
    if (!ended || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || getenv("JKT_EXAMPLES_VERBOSE"))
        fprintf(stderr, "----- example output -----\n%s--------------------------\n", p->text);
    cr_assert(ended, "the example ran longer than %d ms and was killed", timeout_ms);
    cr_assert(WIFEXITED(st), "the example died with signal %d", WTERMSIG(st));
    return WEXITSTATUS(st);
}

static int ex_run(struct ex_proc *p, const char *name, const char *const args[], int pass_fd,
                  int timeout_ms)
{
    ex_spawn(p, name, args, pass_fd);
    return ex_finish(p, timeout_ms);
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *q = text; (q = strstr(q, needle)) != NULL; q += strlen(needle))
        n++;
    return n;
}

/* After the example, the kernel server must have seen what it should. */
static void server_saw(struct jkt_server *s, unsigned long conns, unsigned long bytes)
{
    cr_assert_eq(jkt_server_wait_done(s, conns, 5000), 0, "kernel server: %lu of %lu connections done",
                 atomic_load(&s->done), conns);
    char d[512];
    jkt_server_describe(s, d, sizeof d);
    cr_expect_eq(atomic_load(&s->accepted), conns, "%s", d);
    cr_expect_eq(atomic_load(&s->eofs), conns, "clean ends of stream: %s", d);
    cr_expect_eq(atomic_load(&s->resets), 0, "%s", d);
    cr_expect_eq(atomic_load(&s->bytes_in), bytes, "%s", d);
    if (s->kind == JKT_SRV_ECHO)
        cr_expect_eq(atomic_load(&s->bytes_out), bytes, "%s", d);
    cr_expect_eq(s->error, 0, "%s", d);
}

static void port_text(const struct jkt_server *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "%u", s->port);
}

/* ---------------------------------------------------------------------- */
/* adapter_echo: the single-threaded API                                  */
/* ---------------------------------------------------------------------- */

static void case_adapter(int family, bool by_name)
{
    ex_up(1500, 0);
    struct jkt_server s;
    ex_server(&s, JKT_SRV_ECHO, family);
    char port[16], want[128];
    port_text(&s, port, sizeof port);
    const char *msg = "a message from the adapter example";
    if (by_name)
        ex_tun_detach();
    const char *args[] = {by_name ? "tun:" EX_TUN : "fd:100", jkt_local_ip(family),
                          jkt_kernel_ip(family), port, msg, NULL};
    struct ex_proc p;
    int st = ex_run(&p, "adapter_echo", args, g_tun.fd, 20000);
    cr_assert_eq(st, 0, "adapter_echo exited %d", st);
    snprintf(want, sizeof want, "echoed %zu bytes: \"%s\"", strlen(msg), msg);
    cr_assert_not_null(strstr(p.text, want), "output lacks: %s\n%s", want, p.text);
    cr_assert_not_null(strstr(p.text, "state after shutdown and end of stream: TIME_WAIT"));
    server_saw(&s, 1, strlen(msg));
    jkt_server_stop(&s);
    if (by_name)
        ex_tun_delete();
    jkt_tun_close(&g_tun);
}

Test(examples, adapter_tun_by_name_v4, .timeout = 60) { case_adapter(AF_INET, true); }
Test(examples, adapter_fd_v6, .timeout = 60) { case_adapter(AF_INET6, false); }

/* The example fails, and says why, when nothing listens. */
Test(examples, adapter_refused_v4, .timeout = 60)
{
    ex_up(1500, JKT_FAM_IPV4);
    const char *args[] = {"fd:100", JKT_LOCAL_IP4, JKT_KERNEL_IP4, "9", NULL};
    struct ex_proc p;
    int st = ex_run(&p, "adapter_echo", args, g_tun.fd, 20000);
    cr_assert_eq(st, 1, "adapter_echo exited %d against a closed port", st);
    cr_assert_not_null(strstr(p.text, "connection refused"), "no reason given");
    jkt_tun_close(&g_tun);
}

/* ---------------------------------------------------------------------- */
/* handle_workers: a worker pool sharing streams                          */
/* ---------------------------------------------------------------------- */

static void case_workers(int family, int streams, int workers, int records)
{
    ex_up(1500, 0);
    struct jkt_server s;
    ex_server(&s, JKT_SRV_ECHO, family);
    char port[16], ns[16], nw[16], nr[16], want[128];
    port_text(&s, port, sizeof port);
    snprintf(ns, sizeof ns, "%d", streams);
    snprintf(nw, sizeof nw, "%d", workers);
    snprintf(nr, sizeof nr, "%d", records);
    const char *args[] = {"fd:100", jkt_local_ip(family), jkt_kernel_ip(family), port, ns, nw,
                          nr, NULL};
    struct ex_proc p;
    int st = ex_run(&p, "handle_workers", args, g_tun.fd, 40000);
    cr_assert_eq(st, 0, "handle_workers exited %d", st);
    snprintf(want, sizeof want, ": %d records from %d workers, whole and in each worker's order",
             workers * records, workers);
    cr_assert_eq(count_lines_with(p.text, want), streams, "want %d lines with: %s\n%s", streams, want, p.text);
    cr_assert_not_null(strstr(p.text, "\nOK\n"));
    server_saw(&s, (unsigned long)streams, (unsigned long)streams * workers * records * 512);
    jkt_server_stop(&s);
    jkt_tun_close(&g_tun);
}

Test(examples, handle_workers_v4, .timeout = 60) { case_workers(AF_INET, 3, 4, 300); }
Test(examples, handle_workers_v6, .timeout = 60) { case_workers(AF_INET6, 2, 8, 200); }

/* ---------------------------------------------------------------------- */
/* listener_echo: the kernel connects to jktcp                            */
/* ---------------------------------------------------------------------- */

#define LISTEN_PORT 8080
#define CLIENT_BYTES (256u * 1024u)

struct client {
    int family, idx;
    pthread_t th;
    int err;        /* 0, or errno / -1 (data differed) */
    size_t got;
};

/* A kernel TCP client: send CLIENT_BYTES of pattern, half-close, read the
 * echo to end of stream and check it. */
static void *client_run(void *arg)
{
    struct client *c = arg;
    uint32_t seed = 0xE0 + (uint32_t)c->idx;
    int fd = socket(c->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (c->family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(LISTEN_PORT);
        inet_pton(AF_INET6, JKT_LOCAL_IP6, &a->sin6_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(LISTEN_PORT);
        inet_pton(AF_INET, JKT_LOCAL_IP4, &a->sin_addr);
        sl = sizeof *a;
    }
    struct timeval tv = {15, 0};
    uint8_t *buf = malloc(CLIENT_BYTES);
    if (fd < 0 || !buf || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        c->err = errno ? errno : ENOMEM;
        goto out;
    }
    jkt_pattern_fill(buf, CLIENT_BYTES, 0, seed);
    for (size_t off = 0; off < CLIENT_BYTES;) {
        ssize_t n = send(fd, buf + off, CLIENT_BYTES - off, MSG_NOSIGNAL);
        if (n <= 0) {
            c->err = n < 0 ? errno : EIO;
            goto out;
        }
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t n = recv(fd, buf, CLIENT_BYTES, 0);
        if (n < 0) {
            c->err = errno;
            goto out;
        }
        if (n == 0)
            break;
        if (jkt_pattern_check(buf, (size_t)n, c->got, seed) != (size_t)n) {
            c->err = -1;
            goto out;
        }
        c->got += (size_t)n;
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void case_listener(int family)
{
    ex_up(1500, 0);
    enum { N = 3 };
    char port[16], want[128];
    snprintf(port, sizeof port, "%d", LISTEN_PORT);
    const char *args[] = {"fd:100", jkt_local_ip(family), jkt_kernel_ip(family), port, "3", NULL};
    struct ex_proc p;
    ex_spawn(&p, "listener_echo", args, g_tun.fd);
    bool up = ex_wait_text(&p, "listening on", 10000);
    struct client cl[N];
    memset(cl, 0, sizeof cl);
    for (int i = 0; up && i < N; i++) {
        cl[i].family = family;
        cl[i].idx = i;
        cr_assert_eq(pthread_create(&cl[i].th, NULL, client_run, &cl[i]), 0);
    }
    for (int i = 0; up && i < N; i++)
        pthread_join(cl[i].th, NULL);
    int st = ex_finish(&p, 20000);
    cr_assert(up, "listener_echo never said it was listening");
    for (int i = 0; i < N; i++) {
        cr_expect_eq(cl[i].err, 0, "client %d: %s", i,
                     cl[i].err < 0 ? "echo differs" : strerror(cl[i].err));
        cr_expect_eq(cl[i].got, CLIENT_BYTES, "client %d: %zu bytes back", i, cl[i].got);
    }
    cr_assert_eq(st, 0, "listener_echo exited %d", st);
    snprintf(want, sizeof want, ": echoed %u bytes, peer closed", CLIENT_BYTES);
    cr_assert_eq(count_lines_with(p.text, want), N, "want %d lines with: %s\n%s", N, want, p.text);
    jkt_tun_close(&g_tun);
}

Test(examples, listener_v4, .timeout = 60) { case_listener(AF_INET); }
Test(examples, listener_v6, .timeout = 60) { case_listener(AF_INET6); }

/* ---------------------------------------------------------------------- */
/* stream_framing: packets back to back on a Unix stream socket           */
/* ---------------------------------------------------------------------- */

/* unix:PATH for the example: accept one connection on PATH and relay its
 * bytes to and from the bridge's stream end (TUN <-> byte stream). */
struct relay {
    int lfd, user_fd, stopfd;
    pthread_t th;
    atomic_int err;
    char dir[64], path[128];
};

static bool relay_copy(int from, int to)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static void *relay_run(void *arg)
{
    struct relay *r = arg;
    struct pollfd a[2] = {{.fd = r->lfd, .events = POLLIN}, {.fd = r->stopfd, .events = POLLIN}};
    while (poll(a, 2, -1) < 0 && errno == EINTR) {
    }
    if (!(a[0].revents & POLLIN))
        return NULL;
    int c = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
        atomic_store(&r->err, errno);
        return NULL;
    }
    struct pollfd p[3] = {{.fd = c, .events = POLLIN},
                          {.fd = r->user_fd, .events = POLLIN},
                          {.fd = r->stopfd, .events = POLLIN}};
    for (;;) {
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[2].revents)
            break;
        if (p[0].revents && !relay_copy(c, r->user_fd))
            break; /* the example closed its end */
        if (p[1].revents && !relay_copy(r->user_fd, c))
            break;
    }
    close(c);
    return NULL;
}

static void relay_start(struct relay *r, int user_fd)
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/jktex.XXXXXX");
    cr_assert_not_null(mkdtemp(r->dir));
    snprintf(r->path, sizeof r->path, "%s/tunnel.sock", r->dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int w = snprintf(sa.sun_path, sizeof sa.sun_path, "%s", r->path);
    cr_assert(w > 0 && (size_t)w < sizeof sa.sun_path);
    r->user_fd = user_fd;
    r->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(r->lfd >= 0);
    cr_assert_eq(bind(r->lfd, (struct sockaddr *)&sa, sizeof sa), 0, "bind %s: %s", r->path,
                 strerror(errno));
    cr_assert_eq(listen(r->lfd, 1), 0);
    r->stopfd = eventfd(0, EFD_CLOEXEC);
    cr_assert(r->stopfd >= 0);
    cr_assert_eq(pthread_create(&r->th, NULL, relay_run, r), 0);
}

static void relay_stop(struct relay *r)
{
    uint64_t one = 1;
    cr_assert_eq(write(r->stopfd, &one, sizeof one), (ssize_t)sizeof one);
    pthread_join(r->th, NULL);
    close(r->lfd);
    close(r->stopfd);
    unlink(r->path);
    rmdir(r->dir);
    cr_expect_eq(atomic_load(&r->err), 0, "relay: %s", strerror(atomic_load(&r->err)));
}

static void case_stream(int family, unsigned mtu, bool via_path, long bytes)
{
    ex_up(mtu, 0);
    struct jkt_server s;
    ex_server(&s, JKT_SRV_ECHO, family);
    /* The bridge writes frames to the socket in random pieces (split
     * headers, several frames at once): the framer must cope. */
    struct jkt_bridge br;
    int rc = jkt_bridge_start(&br, g_tun.fd, JKT_BRIDGE_RANDOM_CHUNKS, 0xC0DE);
    cr_assert_eq(rc, 0, "bridge: %s", strerror(-rc));
    struct relay r;
    char spec[160], port[16], nbytes[32], smtu[16], want[128];
    if (via_path) {
        relay_start(&r, br.user_fd);
        snprintf(spec, sizeof spec, "unix:%s", r.path);
    } else {
        snprintf(spec, sizeof spec, "fd:%d", EX_FD);
    }
    port_text(&s, port, sizeof port);
    snprintf(nbytes, sizeof nbytes, "%ld", bytes);
    snprintf(smtu, sizeof smtu, "%u", mtu);
    const char *args[] = {spec, jkt_local_ip(family), jkt_kernel_ip(family), port, nbytes, smtu,
                          NULL};
    struct ex_proc p;
    int st = ex_run(&p, "stream_framing", args, via_path ? -1 : br.user_fd, 40000);
    if (via_path)
        relay_stop(&r);
    int berr = atomic_load(&br.error);
    unsigned long frames = atomic_load(&br.frames_to_tun);
    jkt_bridge_stop(&br);
    cr_assert_eq(st, 0, "stream_framing exited %d", st);
    cr_expect_eq(berr, 0, "bridge: %s (bad framing from jktcp?)", strerror(-berr));
    snprintf(want, sizeof want, "echoed %ld of %ld bytes", bytes, bytes);
    cr_assert_not_null(strstr(p.text, want), "output lacks: %s\n%s", want, p.text);
    cr_assert_gt(frames, 0);
    server_saw(&s, 1, (unsigned long)bytes);
    jkt_server_stop(&s);
    jkt_tun_close(&g_tun);
}

Test(examples, stream_framing_unix_path_v6, .timeout = 60) { case_stream(AF_INET6, 1500, true, 4 << 20); }
Test(examples, stream_framing_fd_v4_mtu16000, .timeout = 60) { case_stream(AF_INET, 16000, false, 8 << 20); }

/* ---------------------------------------------------------------------- */
/* packet_port: the host pushes and pulls frames                          */
/* ---------------------------------------------------------------------- */

static void case_port(int family, bool by_name)
{
    ex_up(1500, 0);
    struct jkt_server s;
    ex_server(&s, JKT_SRV_ECHO, family);
    char port[16];
    port_text(&s, port, sizeof port);
    if (by_name)
        ex_tun_detach();
    const char *args[] = {by_name ? "tun:" EX_TUN : "fd:100", jkt_local_ip(family),
                          jkt_kernel_ip(family), port, "1000000", NULL};
    struct ex_proc p;
    int st = ex_run(&p, "packet_port", args, g_tun.fd, 30000);
    cr_assert_eq(st, 0, "packet_port exited %d", st);
    cr_assert_not_null(strstr(p.text, "application: echoed 1000000 bytes through the port, verified"));
    unsigned long in = 0, out = 0, dropped = 0;
    const char *q = strstr(p.text, "pump: ");
    cr_assert(q && sscanf(q, "pump: %lu frames pushed in, %lu pulled out, %lu dropped", &in, &out,
                          &dropped) == 3, "no pump line");
    cr_expect_gt(in, 100, "frames pushed");
    cr_expect_gt(out, 100, "frames pulled");
    server_saw(&s, 1, 1000000);
    jkt_server_stop(&s);
    if (by_name)
        ex_tun_delete();
    jkt_tun_close(&g_tun);
}

Test(examples, packet_port_fd_v4, .timeout = 60) { case_port(AF_INET, false); }
Test(examples, packet_port_tun_by_name_v6, .timeout = 60) { case_port(AF_INET6, true); }

/* ---------------------------------------------------------------------- */
/* epoll_streams: readiness fds in one event loop                         */
/* ---------------------------------------------------------------------- */

static void case_epoll(int family, int streams, long bytes)
{
    ex_up(1500, 0);
    struct jkt_server s;
    ex_server(&s, JKT_SRV_ECHO, family);
    char port[16], n[16], b[32], want[128];
    port_text(&s, port, sizeof port);
    snprintf(n, sizeof n, "%d", streams);
    snprintf(b, sizeof b, "%ld", bytes);
    const char *args[] = {"fd:100", jkt_local_ip(family), jkt_kernel_ip(family), port, n, b, NULL};
    struct ex_proc p;
    int st = ex_run(&p, "epoll_streams", args, g_tun.fd, 40000);
    cr_assert_eq(st, 0, "epoll_streams exited %d", st);
    snprintf(want, sizeof want, "OK: %d of %d streams echoed %ld bytes each", streams, streams,
             bytes);
    cr_assert_not_null(strstr(p.text, want), "output lacks: %s\n%s", want, p.text);
    snprintf(want, sizeof want, ": %ld bytes echoed and verified", bytes);
    cr_assert_eq(count_lines_with(p.text, want), streams);
    cr_assert_eq(count_lines_with(p.text, " connected\n"), streams);
    server_saw(&s, (unsigned long)streams, (unsigned long)streams * (unsigned long)bytes);
    jkt_server_stop(&s);
    jkt_tun_close(&g_tun);
}

/* 2 MiB each: more than a send buffer's worth in flight, so writes hit -EAGAIN. */
Test(examples, epoll_v4, .timeout = 60) { case_epoll(AF_INET, 8, 2 << 20); }
Test(examples, epoll_v6, .timeout = 60) { case_epoll(AF_INET6, 16, 300000); }
