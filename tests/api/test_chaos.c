/* SPDX-License-Identifier: MIT */
/*
 * Suite `chaos`: 16 threads call the threaded API at random on ids they
 * share and pass around — connect, listen, accept, read, write, shutdown,
 * close, abort, info, readiness, forged ids, and closing and restarting
 * the handles under everyone's feet — for JKTCP_CHAOS_SECONDS (default 5;
 * 30 for the long run under the sanitizers). Two worlds:
 *   - b2b: two handles back to back over a lossy, reordering fault
 *     transport (a SOCK_SEQPACKET socketpair underneath);
 *   - kernel: one handle against the kernel's echo server in a private
 *     namespace, plus kernel clients connecting to the handle's listeners.
 * Every call must return a documented code within its timeout plus 100 ms
 * (more under a sanitizer), and nothing may crash, hang or leak (ASan,
 * LSan, TSan). The seed is printed; JKTCP_CHAOS_SEED=N replays a run's
 * choices (thread timing aside).
 */
#include "kserver.h"
#include "minitest.h"
#include "netns.h"
#include "tuntest.h"

#include "jktcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(JKT_PLAIN) || defined(__SANITIZE_ADDRESS__)
#define SLACK_MS 600.0 /* sanitizers slow every call down */
#else
/* 16 threads on 2 cores, beside whatever test `make test -j2` runs next to
 * this one (the kernel's softirqs, a differential run): a thread waits for
 * a core up to ~100 ms. A hang is seconds. */
#define SLACK_MS 250.0
#endif

#define THREADS 16
#define NSTREAMS 64
#define NLISTENERS 8
#define LPORT0 7000 /* listen ports LPORT0 .. LPORT0 + NLISTENERS - 1 */
#define E(x) jktcp_strerror((int)(x))

enum world_kind { WORLD_B2B, WORLD_KERNEL };

struct world {
    int kind;
    pthread_mutex_t restart_mu; /* only the restart itself is serialised */
    _Atomic uint64_t client, server; /* handle ids (server == client in kernel) */
    _Atomic uint64_t streams[NSTREAMS];
    _Atomic uint64_t listeners[NLISTENERS];
    _Atomic uint64_t stale; /* some id that was closed */
    int sv[2];              /* b2b: the socketpair under the handles */
    struct jkt_tun tun;     /* kernel */
    struct jkt_server echo;
    uint16_t echo_port;
    atomic_bool stop;
    atomic_ulong calls, restarts, max_over_ms_x100;
    _Atomic double next_restart_ms; /* when a thread next pulls the handles away */
    atomic_ulong op_ok[32], op_calls[32];
    atomic_ulong op_err[32][160]; /* by -errno, for the summary */
    atomic_int failed;
    char fail_msg[512];
    uint64_t seed;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void fail(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct world *w, const char *fmt, ...)
{
    if (atomic_exchange(&w->failed, 1))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->fail_msg, sizeof w->fail_msg, fmt, ap);
    va_end(ap);
    atomic_store(&w->stop, true);
}

static uint64_t rnd(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int pick_timeout(uint64_t *x)
{
    static const int t[] = {0, 0, 0, 1, 5, 20, 50, 100};
    return t[rnd(x) % 8];
}

/* ---------------------------------------------------------------------- */
/* Worlds                                                                  */
/* ---------------------------------------------------------------------- */

static jktcp_handle start_handle(jktcp_transport *t, const char *local, const char *peer)
{
    jktcp_adapter *a = NULL;
    jktcp_handle h = {0};
    int rc = jktcp_adapter_new(t, local, peer, &a);
    JT_ASSERT(rc == 0, "adapter: %s", E(rc));
    jktcp_adapter_set_option(a, JKTCP_OPT_RTO_MIN_MS, 5);
    jktcp_adapter_set_option(a, JKTCP_OPT_RTO_INIT_MS, 50);
    jktcp_adapter_set_option(a, JKTCP_OPT_MAX_RETRIES, 6);
    jktcp_adapter_set_option(a, JKTCP_OPT_TIMEWAIT_MS, 50);
    jktcp_adapter_set_option(a, JKTCP_OPT_SNDBUF, 256 * 1024);
    jktcp_adapter_set_option(a, JKTCP_OPT_RCVBUF, 256 * 1024);
    rc = jktcp_handle_start(a, &h);
    JT_ASSERT(rc == 0, "handle: %s", E(rc));
    return h;
}

static void b2b_open(struct world *w)
{
    JT_ASSERT(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, w->sv) == 0, "socketpair");
    jktcp_fault_config cfg = {.seed = w->seed};
    cfg.out.drop = 0.02;
    cfg.out.reorder = 0.02;
    cfg.out.duplicate = 0.01;
    cfg.out.reorder_frames = 3;
    jktcp_handle h[2];
    for (int i = 0; i < 2; i++) {
        jktcp_transport *inner = NULL, *t = NULL;
        JT_ASSERT(jktcp_transport_fd(w->sv[i], JKTCP_FRAMING_PACKET, &inner) == 0, "fd");
        cfg.seed++;
        JT_ASSERT(jktcp_transport_faulty(inner, &cfg, sizeof cfg, &t) == 0, "faulty");
        h[i] = start_handle(t, i ? "198.18.0.2" : "198.18.0.1", i ? "198.18.0.1" : "198.18.0.2");
    }
    atomic_store(&w->server, h[0].id);
    atomic_store(&w->client, h[1].id);
}

static void kernel_open(struct world *w)
{
    jktcp_transport *t = NULL;
    JT_ASSERT(jktcp_transport_fd(w->tun.fd, JKTCP_FRAMING_PACKET, &t) == 0, "fd");
    jktcp_handle h = start_handle(t, JKT_LOCAL_IP4, JKT_KERNEL_IP4);
    atomic_store(&w->server, h.id);
    atomic_store(&w->client, h.id);
}

static void world_close(struct world *w)
{
    jktcp_handle c = {atomic_exchange(&w->client, 0)}, s = {atomic_exchange(&w->server, 0)};
    jktcp_handle_close(c, 0); /* -EBADF if a thread closed it already */
    if (s.id != c.id)
        jktcp_handle_close(s, 0);
    if (w->kind == WORLD_B2B) {
        close(w->sv[0]);
        close(w->sv[1]);
    }
}

/* Close the handles and start new ones while the other threads go on
 * calling with the old ids. */
static void restart(struct world *w)
{
    pthread_mutex_lock(&w->restart_mu);
    world_close(w);
    if (w->kind == WORLD_B2B)
        b2b_open(w);
    else
        kernel_open(w);
    atomic_fetch_add(&w->restarts, 1);
    pthread_mutex_unlock(&w->restart_mu);
}

/* ---------------------------------------------------------------------- */
/* Operations                                                              */
/* ---------------------------------------------------------------------- */

enum op {
    OP_CONNECT, OP_LISTEN, OP_ACCEPT, OP_READ, OP_WRITE, OP_WRITE_ALL, OP_SHUTDOWN, OP_CLOSE,
    OP_ABORT, OP_INFO, OP_ERROR, OP_POLLFD, OP_LCLOSE, OP_LPOLLFD, OP_STATS, OP_HERROR,
    OP_FORGE, OP_HCLOSE, OP_RESTART, OP_COUNT
};
static const char *const op_name[] = {
    "connect", "listen", "accept", "read", "write", "write_all", "shutdown", "close", "abort",
    "info", "error", "poll_fd", "listener_close", "listener_poll_fd", "stats", "handle_error",
    "forge", "handle_close", "restart"};

/* Codes each call may return besides success (jktcp.h). */
static bool stream_err_ok(long r)
{
    return r == -EAGAIN || r == -EINTR || r == -ECONNRESET || r == -ETIMEDOUT ||
           r == -ECONNREFUSED || r == -ENETDOWN || r == -EBADF || r == -ESHUTDOWN ||
           r == -EPIPE || r == -ENOTCONN;
}

/* A stream id from the table, preferring slots that hold one. */
static uint64_t any_stream(struct world *w, uint64_t *x)
{
    unsigned i = (unsigned)(rnd(x) % NSTREAMS);
    for (unsigned k = 0; k < NSTREAMS; k++) {
        uint64_t id = atomic_load(&w->streams[(i + k) % NSTREAMS]);
        if (id)
            return id;
    }
    return 0;
}

/* Put a new id in a slot; the id it displaces is closed (so nothing leaks). */
static void slot_put(_Atomic uint64_t *slot, uint64_t id, bool listener)
{
    uint64_t old = atomic_exchange(slot, id);
    if (old)
        listener ? (void)jktcp_listener_close((jktcp_listener){old})
                 : (void)jktcp_stream_close((jktcp_stream){old});
}

static long do_op(struct world *w, int op, uint64_t *x, int *timeout)
{
    static uint8_t junk[64 * 1024];
    uint8_t buf[4096];
    jktcp_stream s = {any_stream(w, x)};
    jktcp_listener l = {atomic_load(&w->listeners[rnd(x) % NLISTENERS])};
    jktcp_handle hc = {atomic_load(&w->client)}, hs = {atomic_load(&w->server)};
    *timeout = pick_timeout(x);
    long r = 0;
    switch (op) {
    case OP_CONNECT: {
        jktcp_stream out = {0};
        int port = w->kind == WORLD_KERNEL && rnd(x) % 2 ? w->echo_port
                                                           : LPORT0 + (int)(rnd(x) % NLISTENERS);
        *timeout = rnd(x) % 4 ? *timeout : 1000;
        r = jktcp_handle_connect(hc, port, *timeout, &out);
        if ((r == 0 || r == -EINPROGRESS) && out.id)
            slot_put(&w->streams[rnd(x) % NSTREAMS], out.id, false);
        else if (out.id)
            fail(w, "connect returned %ld with *out set", r);
        if (r == -EINPROGRESS)
            r = 0;
        break;
    }
    case OP_LISTEN: {
        jktcp_listener out = {0};
        int i = (int)(rnd(x) % NLISTENERS);
        r = jktcp_handle_listen(hs, LPORT0 + i, 16, &out);
        if (r == 0)
            slot_put(&w->listeners[i], out.id, true);
        if (r == -EADDRINUSE)
            r = 0;
        break;
    }
    case OP_ACCEPT: {
        jktcp_stream out = {0};
        r = jktcp_listener_accept(l, *timeout, &out);
        if (r == 0)
            slot_put(&w->streams[rnd(x) % NSTREAMS], out.id, false);
        break;
    }
    case OP_READ: r = jktcp_stream_read(s, buf, sizeof buf, *timeout); break;
    case OP_WRITE: r = jktcp_stream_write(s, junk, 1 + rnd(x) % sizeof junk, *timeout); break;
    case OP_WRITE_ALL: r = jktcp_stream_write_all(s, junk, 1 + rnd(x) % 8192, *timeout); break;
    case OP_SHUTDOWN: r = jktcp_stream_shutdown(s); break;
    case OP_CLOSE:
    case OP_ABORT:
        r = op == OP_CLOSE ? jktcp_stream_close(s) : jktcp_stream_abort(s);
        if (r == 0)
            atomic_store(&w->stale, s.id);
        break;
    case OP_INFO: {
        jktcp_info info;
        r = jktcp_stream_info(s, &info, sizeof info);
        break;
    }
    case OP_ERROR: r = jktcp_stream_error(s); r = r == -EINPROGRESS ? 0 : r; break;
    case OP_POLLFD: {
        r = jktcp_stream_poll_fd(s, rnd(x) % 2 ? JKTCP_POLL_READ : JKTCP_POLL_WRITE);
        if (r >= 0) { /* a moment later the fd may belong to nobody: poll, never read */
            struct pollfd p = {(int)r, POLLIN, 0};
            poll(&p, 1, 0);
            r = 0;
        }
        break;
    }
    case OP_LCLOSE: r = jktcp_listener_close(l); break;
    case OP_LPOLLFD: r = jktcp_listener_poll_fd(l); r = r >= 0 ? 0 : r; break;
    case OP_STATS: {
        jktcp_stats st;
        r = jktcp_handle_stats(rnd(x) % 2 ? hc : hs, &st, sizeof st);
        break;
    }
    case OP_HERROR: r = jktcp_handle_error(hc); r = r > 0 ? -EINVAL : 0; break;
    case OP_FORGE: {
        uint64_t id = rnd(x) % 3 == 0 ? atomic_load(&w->stale) : rnd(x);
        uint8_t b[8];
        r = jktcp_stream_read((jktcp_stream){id}, b, sizeof b, 0);
        if (r == -EBADF)
            r = jktcp_listener_accept((jktcp_listener){id}, 0, &s);
        r = r == -EBADF || r == -ESHUTDOWN || r == -EAGAIN || r >= 0 ? 0 : r;
        break;
    }
    case OP_HCLOSE:
        *timeout = 0;
        r = jktcp_handle_close(rnd(x) % 2 ? hc : hs, 0);
        r = r == -EBADF ? 0 : r;
        atomic_store(&w->next_restart_ms, now_ms() + 20); /* back soon */
        break;
    case OP_RESTART: *timeout = 1000; restart(w); break;
    }
    return r;
}

static bool ok_result(int op, long r)
{
    if (r >= 0)
        return true;
    switch (op) {
    case OP_CONNECT:
        return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -ECONNRESET || r == -ENETDOWN ||
               r == -EMFILE || r == -EADDRNOTAVAIL || r == -ESHUTDOWN || r == -EBADF ||
               r == -EINTR;
    case OP_LISTEN: return r == -ENETDOWN || r == -ESHUTDOWN || r == -EBADF;
    case OP_ACCEPT: return r == -EAGAIN || r == -EINTR || r == -EBADF || r == -ESHUTDOWN;
    case OP_LCLOSE: return r == -EBADF;
    case OP_LPOLLFD:
    case OP_STATS: return r == -EBADF || r == -ESHUTDOWN;
    case OP_CLOSE:
    case OP_ABORT: return r == -EBADF;
    default: return stream_err_ok(r);
    }
}

static int pick_op(struct world *w, uint64_t *x)
{
    static const unsigned char weight[OP_COUNT] = {
        [OP_CONNECT] = 12, [OP_LISTEN] = 3, [OP_ACCEPT] = 8, [OP_READ] = 20, [OP_WRITE] = 12,
        [OP_WRITE_ALL] = 5, [OP_SHUTDOWN] = 2, [OP_CLOSE] = 6, [OP_ABORT] = 3, [OP_INFO] = 4,
        [OP_ERROR] = 3, [OP_POLLFD] = 4, [OP_LCLOSE] = 1, [OP_LPOLLFD] = 2, [OP_STATS] = 2,
        [OP_HERROR] = 2, [OP_FORGE] = 4, [OP_HCLOSE] = 0, [OP_RESTART] = 0};
    unsigned total = 0, k;
    for (int i = 0; i < OP_COUNT; i++)
        total += weight[i];
    /* every 0.3-1 s one thread closes a handle or restarts both under
     * everyone's feet (a closed handle is restarted at the next turn) */
    double now = now_ms(), due = atomic_load(&w->next_restart_ms);
    if (now >= due &&
        atomic_compare_exchange_strong(&w->next_restart_ms, &due, now + 300 + rnd(x) % 700))
        return rnd(x) % 3 ? OP_RESTART : OP_HCLOSE;
    k = (unsigned)(rnd(x) % total);
    for (int i = 0; i < OP_COUNT; i++) {
        if (k < weight[i])
            return i;
        k -= weight[i];
    }
    return OP_READ;
}

struct worker {
    struct world *w;
    uint64_t rng;
    pthread_t th;
};

static void *worker_main(void *arg)
{
    struct worker *me = arg;
    struct world *w = me->w;
    while (!atomic_load(&w->stop)) {
        int op = pick_op(w, &me->rng), timeout = 0;
        double t0 = now_ms();
        long r = do_op(w, op, &me->rng, &timeout);
        double over = now_ms() - t0 - (timeout > 0 ? timeout : 0);
        atomic_fetch_add(&w->calls, 1);
        atomic_fetch_add(&w->op_calls[op], 1);
        if (r >= 0)
            atomic_fetch_add(&w->op_ok[op], 1);
        else if (-r < 160)
            atomic_fetch_add(&w->op_err[op][-r], 1);
        if (!ok_result(op, r))
            fail(w, "%s returned %ld (%s), not a documented code", op_name[op], r, E(r));
        unsigned long o = over > 0 && op != OP_RESTART ? (unsigned long)(over * 100) : 0, m;
        while (o > (m = atomic_load(&w->max_over_ms_x100)) &&
               !atomic_compare_exchange_weak(&w->max_over_ms_x100, &m, o)) {
        }
        if (over > SLACK_MS && op != OP_RESTART && op != OP_HCLOSE)
            fail(w, "%s (timeout %d ms) took %.1f ms too long", op_name[op], timeout, over);
        if (r == -EBADF && (op == OP_CONNECT || op == OP_LISTEN))
            usleep(200); /* the handle is being restarted: do not just spin */
    }
    return NULL;
}

/* Kernel clients for the handle's listeners: connect, write a little, close. */
static void *kclient_main(void *arg)
{
    struct world *w = arg;
    uint64_t x = w->seed ^ 0xc11e47;
    while (!atomic_load(&w->stop)) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)(LPORT0 + rnd(&x) % NLISTENERS))};
        inet_pton(AF_INET, JKT_LOCAL_IP4, &sa.sin_addr);
        connect(fd, (struct sockaddr *)&sa, sizeof sa);
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 50) == 1 && (p.revents & POLLOUT))
            (void)!write(fd, "hello from the kernel", 21);
        usleep(2000);
        close(fd);
    }
    return NULL;
}

static int chaos_seconds(void)
{
    const char *e = getenv("JKTCP_CHAOS_SECONDS");
    int s = e ? atoi(e) : 5;
    return s > 0 ? s : 5;
}

static void run(int kind)
{
    static struct world w;
    memset(&w, 0, sizeof w);
    w.kind = kind;
    const char *e = getenv("JKTCP_CHAOS_SEED");
    w.seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    pthread_mutex_init(&w.restart_mu, NULL);
    int secs = chaos_seconds();
    JT_LOG("chaos %s: seed %#llx (JKTCP_CHAOS_SEED replays it), %d threads, %d s",
           kind == WORLD_B2B ? "b2b" : "kernel", (unsigned long long)w.seed, THREADS, secs);
    pthread_t kc;
    if (kind == WORLD_KERNEL) {
        jkt_tun_up_or_skip("chaos", "jkt0", 1500, JKT_FAM_IPV4, &w.tun);
        w.echo.kind = JKT_SRV_ECHO;
        w.echo.family = AF_INET;
        JT_ASSERT(jkt_server_start(&w.echo) == 0, "echo server");
        w.echo_port = w.echo.port;
        kernel_open(&w);
        JT_ASSERT(pthread_create(&kc, NULL, kclient_main, &w) == 0, "kernel client");
    } else {
        b2b_open(&w);
    }
    static struct worker wk[THREADS];
    for (int i = 0; i < THREADS; i++) {
        wk[i] = (struct worker){.w = &w, .rng = w.seed + (uint64_t)i * 7919};
        JT_ASSERT(pthread_create(&wk[i].th, NULL, worker_main, &wk[i]) == 0, "worker");
    }
    double t0 = now_ms();
    atomic_store(&w.next_restart_ms, t0 + 300);
    while (!atomic_load(&w.stop) && now_ms() - t0 < secs * 1000.0)
        usleep(10000);
    atomic_store(&w.stop, true);
    for (int i = 0; i < THREADS; i++) {
        /* a worker is at most one call (timeout 1 s + slack) from noticing */
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 15;
        int rc = pthread_timedjoin_np(wk[i].th, NULL, &dl);
        JT_ASSERT(rc == 0, "worker %d hung (seed %#llx)", i, (unsigned long long)w.seed);
    }
    if (kind == WORLD_KERNEL)
        pthread_join(kc, NULL);
    char line[1024];
    int n = 0;
    for (int i = 0; i < OP_COUNT; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s %lu/%lu ", op_name[i],
                      (unsigned long)atomic_load(&w.op_ok[i]),
                      (unsigned long)atomic_load(&w.op_calls[i]));
    JT_LOG("chaos: %lu calls in %.1f s, %lu restarts, worst overrun %.1f ms; ok/calls: %s",
           (unsigned long)atomic_load(&w.calls), (now_ms() - t0) / 1e3,
           (unsigned long)atomic_load(&w.restarts),
           (double)atomic_load(&w.max_over_ms_x100) / 100, line);
    if (getenv("JKTCP_CHAOS_VERBOSE"))
        for (int i = 0; i < OP_COUNT; i++)
            for (int e = 1; e < 160; e++)
                if (atomic_load(&w.op_err[i][e]))
                    JT_LOG("  %s: %lu x %s", op_name[i], (unsigned long)atomic_load(&w.op_err[i][e]),
                           E(-e));
    JT_ASSERT(!atomic_load(&w.failed), "%s (seed %#llx)", w.fail_msg, (unsigned long long)w.seed);
    /* close what is left; every id closes once */
    for (int i = 0; i < NSTREAMS; i++)
        jktcp_stream_close((jktcp_stream){atomic_load(&w.streams[i])});
    for (int i = 0; i < NLISTENERS; i++)
        jktcp_listener_close((jktcp_listener){atomic_load(&w.listeners[i])});
    world_close(&w);
    JT_ASSERT(atomic_load(&w.op_ok[OP_CONNECT]) > 0 && atomic_load(&w.op_ok[OP_ACCEPT]) > 0 &&
                  atomic_load(&w.op_ok[OP_READ]) > 0,
              "the run never connected, accepted and read (seed %#llx)",
              (unsigned long long)w.seed);
    if (kind == WORLD_KERNEL) {
        jkt_server_stop(&w.echo);
        jkt_tun_close(&w.tun);
    }
}

JT_TEST(chaos, b2b_faulty_16_threads, 240)
{
    run(WORLD_B2B);
}

JT_TEST(chaos, kernel_16_threads, 240)
{
    run(WORLD_KERNEL);
}
