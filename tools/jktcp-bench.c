/* SPDX-License-Identifier: MIT */
/*
 * jktcp-bench: throughput and latency of jktcp against the Linux kernel over
 * a TUN device in private network namespaces, next to two references
 * measured in the same run:
 *   tun-limit   one thread writing MTU-sized frames into a TUN fd (the
 *               transport's ceiling; its CPU per GiB is the floor for one
 *               frame per write);
 *   tun-read-limit  what the kernel pushes into one thread reading a TUN
 *               fd (a UDP sender; the download rows' ceiling);
 *   kernel      the kernel's own TCP over the same kind of pipe: kernel
 *               socket -> TUN -> userspace forwarder -> TUN -> kernel socket
 *               (two namespaces), no offloads, same MTU.
 * Every figure is the median of --runs runs (default 3), each in a fresh
 * namespace. Traffic stays inside namespaces this program creates. "CPU
 * s/GiB" is the process's CPU time (user + system, the kernel's work inside
 * our TUN reads and writes included) less the kernel-side server threads',
 * per GiB moved.
 *
 * usage: jktcp-bench [--runs N] [--mib N] [--mtu 1500,16000] [--quick]
 *   JKTCP_BENCH_ONLY=<substring>  only the table rows whose name contains it
 *   JKTCP_BENCH_ONLY=offload      the TUN offload rows (JKTCP_FRAMING_TUN_OFFLOAD) and
 *                                 what they are read against: tun-limit, plain handle x1
 *   JKTCP_BENCH_ONLY=ids          only the id-lookup comparison
 *   JKTCP_BENCH_ONLY=latency      only ping-pong and connection rate
 *   JKTCP_BENCH_ONLY=scale        only memory and 10,000 streams
 *   JKTCP_BENCH_STREAMS=N         streams of the scale case (default 10000)
 *   JKTCP_BENCH_BUSY_POLL_US=N    JKTCP_OPT_BUSY_POLL_US for the table's rows
 *   JKTCP_BENCH_CC=N              JKTCP_OPT_CONGESTION (a jktcp_cc value) for every
 *                                 adapter made (default: the library's default)
 *   JKTCP_BENCH_KERNEL_CC=name    TCP_CONGESTION of the kernel's sockets (default: the
 *                                 namespace's, inherited from the host: printed)
 */
#include "jktcp.h"

#include "stream.h"   /* jk_stream_*: the pointer-level calls behind the ids */
#include "kserver.h" /* tests/support/: build/tests/libjktsupport.a */
#include "netns.h"
#include "netprobe.h"
#include "bridge.h"
#include "bench/scale.h"
#include "bench/kernel_tun.h"
#include "bench/veth.h"
#include "bench/tun_limits.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/tcp.h>
#include <sys/wait.h>
#include <unistd.h>

#define PORT_SINK 5001
#define PORT_SOURCE 5002
#define PORT_ECHO 5003

static int g_runs = 3;

/* Report why a measurement gave up (to stderr) and yield -1. */
#define FAIL(what) (fprintf(stderr, "jktcp-bench: %s failed at line %d\n", what, __LINE__), -1.0)
static uint64_t g_bytes = 256ull << 20;

/* ------------------------------------------------------------------ */
/* Running a measurement in a child with its own namespace            */
/* ------------------------------------------------------------------ */

typedef double (*bench_fn)(unsigned mtu, int family, void *arg);

/* CPU seconds per GiB moved of the measurement just run in this process
 * (jktcp's side: the process's CPU less the kernel-side server's threads),
 * or -1 where a case does not measure it. run_isolated carries it out. */
static double g_cpu = -1;
static double g_cpu_median = -1; /* of the last median_of */

static double proc_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* cpu: the process's CPU seconds over the transfer; the server stopped. */
static void note_cpu(double cpu, const struct jkt_server *srv, uint64_t bytes)
{
    double server = srv ? (double)atomic_load(&srv->cpu_ns) / 1e9 : 0;
    g_cpu = bytes ? (cpu - server) / ((double)bytes / (1u << 30)) : -1;
}

static double run_isolated(bench_fn fn, unsigned mtu, int family, void *arg)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        double v[2] = {-1, -1};
        g_cpu = -1; /* cases that do not measure it say so */
        if (jkt_netns_enter() == 0)
            v[0] = fn(mtu, family, arg);
        v[1] = g_cpu;
        if (write(p[1], v, sizeof v) != sizeof v)
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    double v = -1, pair[2];
    g_cpu = -1;
    if (read(p[0], pair, sizeof pair) == sizeof pair)
        v = pair[0], g_cpu = pair[1];
    close(p[0]);
    waitpid(pid, NULL, 0);
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(bench_fn fn, unsigned mtu, int family, void *arg, double *all)
{
    double v[16], cpu[16];
    for (int i = 0; i < g_runs; i++) {
        v[i] = all[i] = run_isolated(fn, mtu, family, arg);
        cpu[i] = g_cpu;
    }
    qsort(v, (size_t)g_runs, sizeof v[0], cmp_double);
    qsort(cpu, (size_t)g_runs, sizeof cpu[0], cmp_double);
    g_cpu_median = cpu[g_runs / 2];
    return v[g_runs / 2];
}

/* ------------------------------------------------------------------ */
/* Setup helpers                                                      */
/* ------------------------------------------------------------------ */

static long g_busy_poll_us = -1; /* JKTCP_OPT_BUSY_POLL_US of the adapters made (-1: default) */
static long g_cc = -1;      /* JKTCP_OPT_CONGESTION of the adapters made (-1: default) */
/* The CDTunnel shape: the adapter speaks stream framing over a Unix stream
 * socket whose other end a forwarder bridges to the TUN (tests/support
 * bridge.c: two threads, whole frames). */
static bool g_stream;
static struct jkt_bridge g_bridge;

/* The TUN's transmit queue for the next measurement: 0 = the harness's
 * JKT_TUN_TXQLEN (10,000); the "TUN queue 1000" row sets 1,000. */
static unsigned g_txqlen;

/* The TUN device of a measurement: opened with IFF_VNET_HDR for the
 * offload transport (JKTCP_FRAMING_TUN_OFFLOAD). */
static int open_tun(unsigned mtu, int framing, struct jkt_tun *tun)
{
    int rc = jkt_tun_open(NULL, mtu, framing == JKTCP_FRAMING_TUN_OFFLOAD ? JKT_TUN_VNET_HDR : 0,
                          tun);
    if (rc == 0 && g_txqlen && (rc = jkt_tun_set_txqlen(tun, g_txqlen)) < 0)
        jkt_tun_close(tun);
    return rc;
}

static jktcp_adapter *make_adapter_framed(int tunfd, unsigned mtu, int family, int framing)
{
    jktcp_transport *t;
    jktcp_adapter *a;
    if (g_stream) {
        if (jkt_bridge_start(&g_bridge, tunfd, 0, 0) < 0 ||
            jktcp_transport_fd(g_bridge.user_fd, JKTCP_FRAMING_STREAM, &t) < 0)
            return NULL;
    } else if (jktcp_transport_fd(tunfd, framing, &t) < 0) {
        return NULL;
    }
    if (jktcp_adapter_new(t, jkt_local_ip(family), jkt_kernel_ip(family), &a) < 0)
        return NULL;
    jktcp_adapter_set_mtu(a, mtu);
    if (g_busy_poll_us >= 0)
        jktcp_adapter_set_option(a, JKTCP_OPT_BUSY_POLL_US, g_busy_poll_us);
    if (g_cc >= 0)
        jktcp_adapter_set_option(a, JKTCP_OPT_CONGESTION, g_cc);
    if (getenv("JKTCP_BENCH_PCAP"))
        jktcp_adapter_pcap(a, getenv("JKTCP_BENCH_PCAP"));
    return a;
}

static jktcp_adapter *make_adapter(int tunfd, unsigned mtu, int family)
{
    return make_adapter_framed(tunfd, mtu, family, JKTCP_FRAMING_PACKET);
}

/* Every byte is checked end to end: an upload's writer sends
 * jkt_pattern(SEED_UP) by stream offset and the kernel sink checks it
 * (verify), a download's source sends jkt_pattern(SEED_DOWN) and our reader
 * checks it. The check runs at ~14 GB/s (one multiply per 8 bytes), a few
 * per cent of a core at these rates. Only the row where 8 threads write one
 * stream counts bytes (their chunks interleave in any order). */
enum { SEED_UP = 7, SEED_DOWN = 11 };

static int start_server_v(struct jkt_server *s, int kind, int family, uint16_t port, uint64_t n,
                          bool verify)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->family = family;
    s->port = port;
    s->nbytes = n;
    s->seed = SEED_DOWN;
    s->in_seed = SEED_UP;
    s->verify = verify && kind == JKT_SRV_SINK;
    s->count_only = !s->verify;
    s->cc = getenv("JKTCP_BENCH_KERNEL_CC");
    return jkt_server_start(s);
}

static int start_server(struct jkt_server *s, int kind, int family, uint16_t port, uint64_t n)
{
    return start_server_v(s, kind, family, port, n, true);
}

/* A mismatch in data we read: its offset in the stream, or -1 (none). */
static int64_t check_down(const uint8_t *buf, size_t n, uint64_t at)
{
    size_t m = jkt_pattern_check(buf, n, at, SEED_DOWN);
    return m == n ? -1 : (int64_t)(at + m);
}

/* The kernel sockets' congestion control: JKTCP_BENCH_KERNEL_CC, else what
 * a new namespace inherits from the host (it moves the download rows: a
 * paced bbr sender makes the receiver ACK far more often than cubic). */
static const char *kernel_cc(void)
{
    static char cc[32];
    const char *e = getenv("JKTCP_BENCH_KERNEL_CC");
    if (e)
        return e;
    if (jkt_proc_line("/proc/sys/net/ipv4/tcp_congestion_control", cc, sizeof cc) < 0)
        snprintf(cc, sizeof cc, "?");
    return cc;
}

/* MB/s for n bytes in dt seconds */
static double mbps(uint64_t n, double dt)
{
    return dt > 0 ? (double)n / dt / 1e6 : -1;
}

/* ------------------------------------------------------------------ */
/* jktcp, single-threaded adapter                                     */
/* ------------------------------------------------------------------ */

static double adapter_up(unsigned mtu, int family, void *arg)
{
    (void)arg;
    struct jkt_tun tun;
    struct jkt_server srv;
    if (jkt_tun_open(NULL, mtu, 0, &tun) < 0 ||
        start_server(&srv, JKT_SRV_SINK, family, PORT_SINK, 0) < 0)
        return FAIL("setup");
    jktcp_adapter *a = make_adapter(tun.fd, mtu, family);
    jktcp_conn *c;
    if (!a || jktcp_conn_connect(a, PORT_SINK, 3000, &c) < 0)
        return FAIL("connect");
    static uint8_t buf[1 << 18];
    double t0 = jkt_now_s(), c0 = proc_cpu_s();
    for (uint64_t sent = 0; sent < g_bytes;) {
        jkt_pattern_fill(buf, sizeof buf, sent, SEED_UP);
        ssize_t w = jktcp_conn_write(c, buf, sizeof buf, -1);
        if (w < 0)
            return jktcp_adapter_pcap(a, NULL), fprintf(stderr, "w=%zd sent=%llu\n", w, (unsigned long long)sent), FAIL("write");
        sent += (uint64_t)w;
    }
    jktcp_conn_close(c);
    if (jktcp_adapter_flush(a, 30000) < 0 || jkt_server_wait_done(&srv, 1, 30000) < 0)
        return FAIL("flush");
    double dt = jkt_now_s() - t0, cpu = proc_cpu_s() - c0;
    uint64_t got = atomic_load(&srv.bytes_in);
    jktcp_adapter_free(a);
    jkt_server_stop(&srv);
    note_cpu(cpu, &srv, got);
    if (atomic_load(&srv.mismatches))
        return FAIL("upload data");
    return got == g_bytes ? mbps(got, dt) : -1;
}

static double adapter_down(unsigned mtu, int family, void *arg)
{
    (void)arg;
    struct jkt_tun tun;
    struct jkt_server srv;
    if (jkt_tun_open(NULL, mtu, 0, &tun) < 0 ||
        start_server(&srv, JKT_SRV_SOURCE, family, PORT_SOURCE, g_bytes) < 0)
        return -1;
    jktcp_adapter *a = make_adapter(tun.fd, mtu, family);
    jktcp_conn *c;
    if (!a || jktcp_conn_connect(a, PORT_SOURCE, 3000, &c) < 0)
        return -1;
    static uint8_t buf[1 << 18];
    uint64_t got = 0;
    double t0 = jkt_now_s(), c0 = proc_cpu_s();
    int64_t bad = -1;
    for (;;) {
        ssize_t r = jktcp_conn_read(c, buf, sizeof buf, 10000);
        if (r <= 0)
            break;
        if (bad < 0)
            bad = check_down(buf, (size_t)r, got);
        got += (uint64_t)r;
    }
    double dt = jkt_now_s() - t0, cpu = proc_cpu_s() - c0;
    jktcp_conn_close(c);
    jktcp_adapter_flush(a, 1000);
    jktcp_adapter_free(a);
    jkt_server_stop(&srv);
    note_cpu(cpu, &srv, got);
    if (bad >= 0)
        return FAIL("download data");
    return got == g_bytes ? mbps(got, dt) : -1;
}

/* ------------------------------------------------------------------ */
/* jktcp, threaded handle                                             */
/* ------------------------------------------------------------------ */

/* The public calls take ids, resolved through the id table on every
 * call. With g_ptr_api the same work goes through the pointer-level
 * calls on a stream resolved once: the difference is the cost of the
 * lookup (the "pointer version" of the API). */
static bool g_ptr_api;

static ssize_t b_read(jktcp_stream s, struct jk_stream *p, void *buf, size_t n, int t)
{
    return g_ptr_api ? jk_stream_read(p, buf, n, t) : jktcp_stream_read(s, buf, n, t);
}

static ssize_t b_write_all(jktcp_stream s, struct jk_stream *p, const void *buf, size_t n, int t)
{
    if (!g_ptr_api)
        return jktcp_stream_write_all(s, buf, n, t);
    size_t done = 0;
    while (done < n) {
        ssize_t w = jk_stream_write(p, (const uint8_t *)buf + done, n - done, t);
        if (w < 0)
            return w;
        done += (size_t)w;
    }
    return (ssize_t)n;
}

struct hjob {
    jktcp_stream s;
    struct jk_stream *p; /* g_ptr_api: resolved once, held for the run */
    uint64_t n;
    bool down;
    bool shared; /* one of several writers of s: the caller shuts it down */
    int err;
};

static void *hjob_main(void *arg)
{
    struct hjob *j = arg;
    enum { BUF = 1 << 18 };
    uint8_t *buf = malloc(BUF); /* not TLS: big TLS shrinks every thread's stack */
    uint64_t done = 0;
    if (!buf) {
        j->err = -ENOMEM;
        return NULL;
    }
    if (!j->down) {
        while (done < j->n) {
            size_t k = j->n - done < BUF ? (size_t)(j->n - done) : BUF;
            jkt_pattern_fill(buf, k, done, SEED_UP); /* shared: each writer's own offsets */
            ssize_t w = b_write_all(j->s, j->p, buf, k, 30000);
            if (w < 0) {
                j->err = (int)w;
                free(buf);
                return NULL;
            }
            done += (uint64_t)w;
        }
        if (!j->shared) {
            jktcp_stream_shutdown(j->s);
            while (jktcp_stream_read(j->s, buf, BUF, 30000) > 0) {
            }
        }
    } else {
        for (;;) {
            ssize_t r = b_read(j->s, j->p, buf, BUF, 30000);
            if (r <= 0) {
                j->err = (int)r;
                break;
            }
            if (check_down(buf, (size_t)r, done) >= 0) {
                j->err = -EBADMSG;
                break;
            }
            done += (uint64_t)r;
        }
        if (done != j->n)
            j->err = -EIO;
    }
    free(buf);
    return NULL;
}

/* nstreams streams, g_bytes in total, in the direction given by down,
 * over a TUN fd with this framing */
static double handle_xfer(unsigned mtu, int family, int nstreams, bool down, int framing)
{
    struct jkt_tun tun;
    struct jkt_server srv;
    uint64_t per = g_bytes / (uint64_t)nstreams;
    if (open_tun(mtu, framing, &tun) < 0 ||
        start_server(&srv, down ? JKT_SRV_SOURCE : JKT_SRV_SINK, family,
                     down ? PORT_SOURCE : PORT_SINK, per) < 0)
        return -1;
    jktcp_adapter *a = make_adapter_framed(tun.fd, mtu, family, framing);
    jktcp_handle h;
    if (!a || jktcp_handle_start(a, &h) < 0)
        return -1;
    struct hjob jobs[64];
    pthread_t th[64];
    /* a download's clock starts before the connects: the kernel's source
     * sends from its accept on, and with 64 streams the first buffers would
     * fill before a later start */
    double t0 = jkt_now_s(), c0 = proc_cpu_s();
    for (int i = 0; i < nstreams; i++) {
        jobs[i] = (struct hjob){.n = per, .down = down};
        if (jktcp_handle_connect(h, down ? PORT_SOURCE : PORT_SINK, 3000, &jobs[i].s) < 0)
            return -1;
        jobs[i].p = jk_stream_get(jobs[i].s);
    }
    if (!down)
        t0 = jkt_now_s(), c0 = proc_cpu_s();
    for (int i = 0; i < nstreams; i++)
        pthread_create(&th[i], NULL, hjob_main, &jobs[i]);
    bool ok = true;
    for (int i = 0; i < nstreams; i++) {
        pthread_join(th[i], NULL);
        ok = ok && jobs[i].err == 0;
    }
    if (!down && jkt_server_wait_done(&srv, (unsigned long)nstreams, 30000) < 0)
        ok = false;
    double dt = jkt_now_s() - t0, cpu = proc_cpu_s() - c0;
    if (!down && (atomic_load(&srv.bytes_in) != per * (uint64_t)nstreams ||
                  atomic_load(&srv.mismatches)))
        ok = false;
    if (getenv("JKTCP_BENCH_STATS")) { /* where the frames went (not timed) */
        jktcp_stats st;
        if (jktcp_handle_stats(h, &st, sizeof st) == 0)
            fprintf(stderr, "  stats: frames in %llu out %llu, retransmits %llu, invalid %llu, "
                    "wake-ups %llu\n", (unsigned long long)st.frames_in,
                    (unsigned long long)st.frames_out, (unsigned long long)st.retransmits,
                    (unsigned long long)st.drop_invalid, (unsigned long long)st.io_wakeups);
    }
    for (int i = 0; i < nstreams; i++) {
        jk_stream_put(jobs[i].p);
        jktcp_stream_close(jobs[i].s);
    }
    jktcp_handle_close(h, 1000);
    jkt_server_stop(&srv);
    if (g_stream)
        jkt_bridge_stop(&g_bridge);
    note_cpu(cpu, &srv, per * (uint64_t)nstreams);
    return ok ? mbps(per * (uint64_t)nstreams, dt) : -1;
}

#define PKT JKTCP_FRAMING_PACKET
#define OFF JKTCP_FRAMING_TUN_OFFLOAD
static double handle_up1(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 1, false, PKT); }
static double handle_down1(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 1, true, PKT); }
static double handle_up8(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 8, false, PKT); }
static double handle_down8(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 8, true, PKT); }
/* x8 download on a 1,000-packet TUN queue: what eight kernel BBR senders
 * do to a short queue (docs/api.md, "The TUN's queue") */
static double handle_down8_q1000(unsigned m, int f, void *a)
{
    (void)a;
    g_txqlen = 1000;
    double r = handle_xfer(m, f, 8, true, PKT);
    g_txqlen = 0;
    return r;
}
static double handle_up1_off(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 1, false, OFF); }
static double handle_down1_off(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 1, true, OFF); }
/* One stream, 8 threads writing to it at once (a worker pool sharing a
 * stream): g_bytes in total, the sink verifies the count. */
static double shared_up8(unsigned mtu, int family, void *arg)
{
    (void)arg;
    struct jkt_tun tun;
    struct jkt_server srv;
    enum { W = 8 };
    if (jkt_tun_open(NULL, mtu, 0, &tun) < 0 ||
        start_server_v(&srv, JKT_SRV_SINK, family, PORT_SINK, 0, false) < 0)
        return -1;
    jktcp_adapter *a = make_adapter(tun.fd, mtu, family);
    jktcp_handle h;
    jktcp_stream s;
    if (!a || jktcp_handle_start(a, &h) < 0 || jktcp_handle_connect(h, PORT_SINK, 3000, &s) < 0)
        return -1;
    struct hjob jobs[W];
    pthread_t th[W];
    double t0 = jkt_now_s(), c0 = proc_cpu_s();
    for (int i = 0; i < W; i++) {
        jobs[i] = (struct hjob){.s = s, .n = g_bytes / W, .shared = true};
        jobs[i].p = jk_stream_get(s);
        pthread_create(&th[i], NULL, hjob_main, &jobs[i]);
    }
    bool ok = true;
    for (int i = 0; i < W; i++) {
        pthread_join(th[i], NULL);
        ok = ok && jobs[i].err == 0;
        jk_stream_put(jobs[i].p);
    }
    jktcp_stream_shutdown(s);
    ok = ok && jkt_server_wait_done(&srv, 1, 30000) == 0;
    double dt = jkt_now_s() - t0, cpu = proc_cpu_s() - c0;
    ok = ok && atomic_load(&srv.bytes_in) == g_bytes / W * W;
    jktcp_stream_close(s);
    jktcp_handle_close(h, 1000);
    jkt_server_stop(&srv);
    note_cpu(cpu, &srv, g_bytes);
    return ok ? mbps(g_bytes / W * W, dt) : -1;
}

static double stream_up1(unsigned m, int f, void *a)
{
    g_stream = true;
    return handle_up1(m, f, a);
}
static double stream_down1(unsigned m, int f, void *a)
{
    g_stream = true;
    return handle_down1(m, f, a);
}
static double handle_up64(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 64, false, PKT); }
static double handle_down64(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 64, true, PKT); }
/* the many-stream cases again over the offload transport: how much of
 * their per-frame cost is the one-frame-per-syscall TUN */
static double handle_up8_off(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 8, false, OFF); }
static double handle_down8_off(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 8, true, OFF); }
static double handle_up64_off(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 64, false, OFF); }
static double handle_down64_off(unsigned m, int f, void *a) { (void)a; return handle_xfer(m, f, 64, true, OFF); }

/* A handle over a fresh TUN device, a kernel echo server behind it. */
static int echo_handle(unsigned mtu, int family, struct jkt_server *srv, jktcp_handle *h)
{
    struct jkt_tun tun;
    if (jkt_tun_open(NULL, mtu, 0, &tun) < 0 ||
        start_server(srv, JKT_SRV_ECHO, family, PORT_ECHO, 0) < 0)
        return -1;
    jktcp_adapter *a = make_adapter(tun.fd, mtu, family);
    return a && jktcp_handle_start(a, h) == 0 ? 0 : -1;
}

/* 64-byte ping-pong over the handle; returns p50 in us, p99 through arg */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double handle_pingpong(unsigned mtu, int family, void *arg)
{
    struct jkt_server srv;
    jktcp_handle h;
    jktcp_stream s;
    if (echo_handle(mtu, family, &srv, &h) < 0 || jktcp_handle_connect(h, PORT_ECHO, 3000, &s) < 0)
        return -1;
    enum { N = 5000 };
    static uint64_t rtt[N];
    uint8_t msg[64] = {0}, back[64];
    struct jk_stream *p = jk_stream_get(s);
    for (int i = 0; i < N; i++) {
        uint64_t t0 = jkt_now_us();
        if (b_write_all(s, p, msg, sizeof msg, 1000) != (ssize_t)sizeof msg)
            return -1;
        size_t got = 0;
        while (got < sizeof back) {
            ssize_t r = b_read(s, p, back + got, sizeof back - got, 1000);
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
        rtt[i] = jkt_now_us() - t0;
    }
    qsort(rtt, N, sizeof rtt[0], cmp_u64);
    jk_stream_put(p);
    jktcp_stream_close(s);
    jktcp_handle_close(h, 500);
    jkt_server_stop(&srv);
    /* one double carries both: p99 * 1e6 + p50 (exact below 2^53) */
    (void)arg;
    return (double)(rtt[N * 99 / 100] * 1000000u + rtt[N / 2]);
}

/* Idle wake-ups per second of a handle with 16 open idle streams. */
static double handle_idle(unsigned mtu, int family, void *arg)
{
    (void)arg;
    struct jkt_server srv;
    jktcp_handle h;
    jktcp_stream s[16];
    if (echo_handle(mtu, family, &srv, &h) < 0)
        return -1;
    for (int i = 0; i < 16; i++)
        if (jktcp_handle_connect(h, PORT_ECHO, 3000, &s[i]) < 0)
            return -1;
    usleep(200000);
    jktcp_stats st0, st1;
    jktcp_handle_stats(h, &st0, sizeof st0);
    sleep(2);
    jktcp_handle_stats(h, &st1, sizeof st1);
    for (int i = 0; i < 16; i++)
        jktcp_stream_close(s[i]);
    jktcp_handle_close(h, 500);
    jkt_server_stop(&srv);
    /* minus the stats call's own wake-up */
    return ((double)(st1.io_wakeups - st0.io_wakeups) - 1) / 2.0;
}

/* Connection rate: open CONNS connections one after another (blocking
 * connects), echo 4 KiB on each, then close them all; connections per
 * second from the first connect to the last close. */
enum { CONNS = 256, CONN_ECHO = 4096 };

static double handle_conns(unsigned mtu, int family, void *arg)
{
    (void)arg;
    struct jkt_server srv;
    jktcp_handle h;
    if (echo_handle(mtu, family, &srv, &h) < 0)
        return -1;
    static jktcp_stream s[CONNS];
    static uint8_t msg[CONN_ECHO], back[CONN_ECHO];
    jktcp_stream warm; /* as for the kernel reference: the first connect untimed */
    if (jktcp_handle_connect(h, PORT_ECHO, 3000, &warm) < 0)
        return FAIL("warm-up connect");
    jktcp_stream_close(warm);
    double t0 = jkt_now_s();
    for (int i = 0; i < CONNS; i++) {
        if (jktcp_handle_connect(h, PORT_ECHO, 3000, &s[i]) < 0 ||
            jktcp_stream_write_all(s[i], msg, sizeof msg, 3000) != (ssize_t)sizeof msg)
            return FAIL("connect/echo");
        for (size_t got = 0; got < sizeof back;) {
            ssize_t r = jktcp_stream_read(s[i], back + got, sizeof back - got, 3000);
            if (r <= 0)
                return FAIL("echo read");
            got += (size_t)r;
        }
    }
    for (int i = 0; i < CONNS; i++)
        jktcp_stream_close(s[i]);
    double dt = jkt_now_s() - t0;
    jktcp_handle_close(h, 500);
    jkt_server_stop(&srv);
    return CONNS / dt;
}

/* ------------------------------------------------------------------ */
/* References                                                         */
/* ------------------------------------------------------------------ */

/* The TUN references (tools/bench/tun_limits.c), as rows: MB/s, and the
 * measuring thread's CPU per GiB. */
static double tun_ref_row(int (*fn)(unsigned, int, struct tun_ref *), unsigned mtu, int family)
{
    struct tun_ref r;
    if (fn(mtu, family, &r) < 0)
        return -1;
    note_cpu(r.cpu_s, NULL, r.bytes);
    return mbps(r.bytes, r.secs);
}

/* One thread writing MTU-sized UDP frames into the TUN fd for 1 s. */
static double tun_limit(unsigned mtu, int family, void *arg)
{
    (void)arg;
    return tun_ref_row(bench_tun_write_limit, mtu, family);
}

/* What the kernel pushes into one thread reading the TUN fd, for 1 s. */
static double tun_read_limit(unsigned mtu, int family, void *arg)
{
    (void)arg;
    return tun_ref_row(bench_tun_read_limit, mtu, family);
}

/* The kernel's TCP over TUN: kernel client (this namespace, tun A) ->
 * forwarder -> tun B (child namespace, kernel sink); tools/bench/kernel_tun.c. */
static double kernel_tun(unsigned mtu, int family, void *arg)
{
    (void)arg;
    return bench_kernel_tun(mtu, family, PORT_SINK, g_bytes);
}

/* The kernel's TCP over a veth pair (tools/bench/veth.c), same cases. */
static double kernel_veth(unsigned mtu, int family, void *arg)
{
    double r = bench_kernel_veth(mtu, family, *(int *)arg, PORT_ECHO, CONNS, CONN_ECHO);
    return r < 0 ? FAIL("kernel over veth") : r;
}

/* ------------------------------------------------------------------ */

/* The id API against the pointer version, runs interleaved (id, pointer,
 * id, ...) so that drift in the machine hits both alike. */
static void compare_ids(void)
{
    enum { RUNS = 9 };
    static const struct {
        const char *name;
        bench_fn fn;
    } cases[] = {{"handle upload x1 MB/s", handle_up1},
                 {"handle download x1 MB/s", handle_down1},
                 {"64 B ping-pong p50 us", handle_pingpong}};
    printf("\nid lookup cost (median of %d interleaved runs, MTU 1500; ratio = ids / pointers):\n",
           RUNS);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double v[2][RUNS];
        for (int i = 0; i < RUNS; i++)
            for (int m = 0; m < 2; m++) {
                g_ptr_api = m == 1;
                v[m][i] = run_isolated(cases[c].fn, 1500, AF_INET6, NULL);
                if (cases[c].fn == handle_pingpong && v[m][i] > 0) /* p50 of the packed pair */
                    v[m][i] = (double)((uint64_t)v[m][i] % 1000000u);
            }
        g_ptr_api = false;
        for (int m = 0; m < 2; m++)
            qsort(v[m], RUNS, sizeof v[m][0], cmp_double);
        double id = v[0][RUNS / 2], ptr = v[1][RUNS / 2];
        printf("  %-26s ids %8.1f  pointers %8.1f  ratio %.3f\n", cases[c].name, id, ptr,
               ptr > 0 ? id / ptr : 0);
        fflush(stdout);
    }
}

/* "a / b" to 2 places, "-" for a row not run or failed (a static buffer of
 * several: one printf takes up to 8) */
static const char *ratio(double a, double b)
{
    static char buf[8][16];
    static int k;
    char *p = buf[k++ % 8];
    if (a > 0 && b > 0)
        snprintf(p, 16, "%.2f", a / b);
    else
        snprintf(p, 16, "-");
    return p;
}

static void row(const char *name, bench_fn fn, unsigned mtu, int family, double ref_tun,
                double ref_kernel, double *out)
{
    double all[16];
    const char *only = getenv("JKTCP_BENCH_ONLY");
    /* "offload" also runs what its rows are read against: the tun-limit
     * and the plain handle x1 rows */
    bool ref = only && !strcmp(only, "offload") &&
               (strstr(name, "tun-limit") || strstr(name, "tun-read-limit") ||
                strstr(name, "handle upload x1") ||
                strstr(name, "handle download x1"));
    if (only && !strstr(name, only) && !ref)
        return;
    double m = median_of(fn, mtu, family, NULL, all);
    printf("| %-39s | %5u | %8.1f |", name, mtu, m);
    printf(" %5.2f | %5.2f | ", ref_tun > 0 ? m / ref_tun : 0, ref_kernel > 0 ? m / ref_kernel : 0);
    if (g_cpu_median >= 0)
        printf("%5.2f | ", g_cpu_median);
    else
        printf("    - | ");
    for (int i = 0; i < g_runs; i++)
        printf("%s%.1f", i ? " " : "", all[i]);
    printf(" |\n");
    fflush(stdout);
    if (out)
        *out = m;
}

/* median_of with JKTCP_OPT_BUSY_POLL_US = 0 (no spin), for the rows that
 * show what the default's spin buys. */
static double median_no_spin(bench_fn fn, unsigned mtu, double *all)
{
    long keep = g_busy_poll_us;
    g_busy_poll_us = 0;
    double m = median_of(fn, mtu, AF_INET6, NULL, all);
    g_busy_poll_us = keep;
    return m;
}

/* Ping-pong and connection rate, jktcp's handle next to the kernel's TCP
 * over a veth pair (kernel_veth), in the same run. */
static void latency_and_rate(double *all)
{
    int pp_case = VETH_PINGPONG, conns_case = VETH_CONNS;
    double j = median_of(handle_pingpong, 1500, AF_INET6, NULL, all);
    double k = median_of(kernel_veth, 1500, AF_INET6, &pp_case, all);
    uint64_t jp = j < 0 ? 0 : (uint64_t)j, kp = k < 0 ? 0 : (uint64_t)k;
    double j50 = (double)(jp % 1000000u), j99 = (double)(jp / 1000000u);
    double k50 = (double)(kp % 1000000u), k99 = (double)(kp / 1000000u);
    printf("\n64-byte ping-pong (MTU 1500): jktcp handle p50 %.0f us, p99 %.0f us; "
           "kernel over veth p50 %.0f us, p99 %.0f us; ratio p50 %.2f, p99 %.2f\n",
           j50, j99, k50, k99, k50 > 0 ? j50 / k50 : 0, k99 > 0 ? j99 / k99 : 0);
    double b = median_no_spin(handle_pingpong, 1500, all);
    uint64_t bp = b < 0 ? 0 : (uint64_t)b;
    double b50 = (double)(bp % 1000000u), b99 = (double)(bp / 1000000u);
    printf("  with JKTCP_OPT_BUSY_POLL_US=0 (no spin): p50 %.0f us, p99 %.0f us; ratio p50 %.2f, "
           "p99 %.2f\n",
           b50, b99, k50 > 0 ? b50 / k50 : 0, k99 > 0 ? b99 / k99 : 0);
    char name[64];
    snprintf(name, sizeof name, "%d sequential connects, 4 KiB echo each", CONNS);
    printf("%s, conns/s:\n", name);
    for (unsigned mtu = 1500; mtu <= 16000; mtu = mtu == 1500 ? 16000 : 99999) {
        double jc = median_of(handle_conns, mtu, AF_INET6, NULL, all);
        double kc = median_of(kernel_veth, mtu, AF_INET6, &conns_case, all);
        double bc = median_no_spin(handle_conns, mtu, all);
        printf("  MTU %5u: jktcp handle %7.0f (no spin: %.0f)  kernel over veth %7.0f  "
               "ratio %.2f (%.2f)\n",
               mtu, jc, bc, kc, kc > 0 ? jc / kc : 0, kc > 0 ? bc / kc : 0);
        fflush(stdout);
    }
}

/* Memory: a busy stream's buffers given back once idle, and what each of
 * many idle streams costs (tools/bench/scale.c), in a child process of
 * its own (run_isolated) so RSS is jktcp's and the bench's alone; the
 * child prints its figures. */
static double scale_case(unsigned mtu, int family, void *arg)
{
    int n = *(int *)arg;
    struct scale_result r;
    if (bench_scale(mtu, family, n, 256, &r) < 0)
        return -1;
    printf("scale (MTU %u): a stream that echoed 256 MiB: RSS +%.1f MiB busy, +%.1f MiB once idle; "
           "%d streams opened one after another in %.1f s, 64 B echoed on each, %d verified; "
           "RSS per idle stream %.1f KiB\n",
           mtu, r.busy_mib, r.idle_mib, r.streams, r.open_s, r.verified, r.per_stream_kib);
    fflush(stdout);
    return r.verified;
}

static void scale(double *all)
{
    (void)all;
    const char *e = getenv("JKTCP_BENCH_STREAMS");
    int n = e ? atoi(e) : 10000;
    if (run_isolated(scale_case, 1500, AF_INET6, &n) != n)
        printf("scale: not every stream verified\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"runs", 1, 0, 'r'}, {"mib", 1, 0, 'm'},
                                         {"mtu", 1, 0, 'u'}, {"quick", 0, 0, 'q'}, {0, 0, 0, 0}};
    const char *mtus = "1500,16000";
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'r')
            g_runs = atoi(optarg) < 1 ? 1 : atoi(optarg) > 15 ? 15 : atoi(optarg);
        else if (o == 'm')
            g_bytes = strtoull(optarg, NULL, 0) << 20;
        else if (o == 'u')
            mtus = optarg;
        else if (o == 'q') {
            g_runs = 1;
            g_bytes = 64ull << 20;
        } else
            return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *bp = getenv("JKTCP_BENCH_BUSY_POLL_US");
    g_busy_poll_us = bp ? atol(bp) : -1;
    const char *cc = getenv("JKTCP_BENCH_CC");
    g_cc = cc ? atol(cc) : -1;
    if (run_isolated(tun_limit, 1500, AF_INET6, NULL) < 0) {
        printf("jktcp-bench: skipped: needs root, network namespaces and /dev/net/tun\n");
        return 0;
    }
    const char *only = getenv("JKTCP_BENCH_ONLY");
    double all[16];
    if (only && !strcmp(only, "scale")) {
        scale(all);
        return 0;
    }
    if (only && !strcmp(only, "latency")) { /* just ping-pong and connection rate */
        latency_and_rate(all);
        return 0;
    }
    if (only && !strcmp(only, "ids")) { /* just the id-versus-pointer comparison */
        compare_ids();
        return 0;
    }
    printf("jktcp-bench: %s, %d run(s) per figure (median), %llu MiB per transfer, IPv6; "
           "kernel peers' congestion control: %s\n\n",
           jktcp_version(), g_runs, (unsigned long long)(g_bytes >> 20), kernel_cc());
    printf("| %-39s | %5s | %8s | %5s | %5s | %5s | %s |\n", "case", "MTU", "MB/s", "/tun", "/kern",
           "CPU s/GiB", "runs");
    printf("|-----------------------------------------|-------|----------|-------|-------|-------|------|\n");
    char buf[64];
    snprintf(buf, sizeof buf, "%s", mtus);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned mtu = (unsigned)atoi(tok);
        double tun = 0, kern = 0, rd = 0;
        row("tun-limit (1 writer thread)", tun_limit, mtu, AF_INET6, 0, 0, &tun);
        row("tun-read-limit (kernel -> 1 reader)", tun_read_limit, mtu, AF_INET6, 0, 0, &rd);
        row("kernel TCP over TUN", kernel_tun, mtu, AF_INET6, tun, 0, &kern);
        row("jktcp adapter upload", adapter_up, mtu, AF_INET6, tun, kern, NULL);
        row("jktcp adapter download", adapter_down, mtu, AF_INET6, tun, kern, NULL);
        double up1 = 0, down1 = 0, sup1 = 0, sdown1 = 0;
        row("jktcp handle upload x1", handle_up1, mtu, AF_INET6, tun, kern, &up1);
        row("jktcp handle download x1", handle_down1, mtu, AF_INET6, tun, kern, &down1);
        row("handle up x1, stream fd", stream_up1, mtu, AF_INET6, tun, kern, &sup1);
        row("handle down x1, stream fd", stream_down1, mtu, AF_INET6, tun, kern, &sdown1);
        row("jktcp handle upload x1 (TUN offload)", handle_up1_off, mtu, AF_INET6, tun, kern, NULL);
        double doff = 0, d8 = 0, d64 = 0;
        row("jktcp handle download x1 (TUN offload)", handle_down1_off, mtu, AF_INET6, tun, kern,
            &doff);
        if (up1 > 0 && down1 > 0 && sup1 > 0 && sdown1 > 0)
            printf("|   stream fd / packet fd: upload %.2f, download %.2f (target >= 0.8) |\n",
                   sup1 / up1, sdown1 / down1);
        double sh8 = 0;
        row("handle up x1, 8 threads", shared_up8, mtu, AF_INET6, tun, kern, &sh8);
        if (up1 > 0 && sh8 > 0)
            printf("|   8 threads sharing a stream / 1 thread: %.2f (target >= 0.7) |\n", sh8 / up1);
        row("jktcp handle upload x8", handle_up8, mtu, AF_INET6, tun, kern, NULL);
        row("jktcp handle download x8", handle_down8, mtu, AF_INET6, tun, kern, &d8);
        row("handle download x8, TUN queue 1000", handle_down8_q1000, mtu, AF_INET6, tun, kern,
            NULL);
        row("jktcp handle upload x64", handle_up64, mtu, AF_INET6, tun, kern, NULL);
        row("jktcp handle download x64", handle_down64, mtu, AF_INET6, tun, kern, &d64);
        if (rd > 0)
            printf("|   download / tun-read-limit: x1 %s, stream fd %s, x8 %s, x64 %s, "
                   "offload x1 %s |\n",
                   ratio(down1, rd), ratio(sdown1, rd), ratio(d8, rd), ratio(d64, rd),
                   ratio(doff, rd));
        row("handle upload x8 (TUN offload)", handle_up8_off, mtu, AF_INET6, tun, kern, NULL);
        row("handle download x8 (TUN offload)", handle_down8_off, mtu, AF_INET6, tun, kern, NULL);
        row("handle upload x64 (TUN offload)", handle_up64_off, mtu, AF_INET6, tun, kern, NULL);
        row("handle download x64 (TUN offload)", handle_down64_off, mtu, AF_INET6, tun, kern,
            NULL);
    }
    g_busy_poll_us = -1; /* the library's default; the sections below set 0 where they compare */
    if (getenv("JKTCP_BENCH_ONLY"))
        return 0;
    latency_and_rate(all);
    scale(all);
    double idle = median_of(handle_idle, 1500, AF_INET6, NULL, all);
    printf("idle handle with 16 open streams: %.1f wake-ups/s\n", idle);
    compare_ids();
    return 0;
}
