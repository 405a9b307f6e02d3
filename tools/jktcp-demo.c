/* SPDX-License-Identifier: MIT */
/*
 * jktcp-demo: the threaded handle against the Linux kernel's TCP.
 *
 * Everything happens in a private network namespace this process creates
 * (it goes when the process ends): two TUN devices, and kernel TCP servers
 * (echo, a sink that checks the data, a source) on Linux sockets.
 *
 *   1. Several streams at once over one handle: uploads and downloads in
 *      parallel, one thread each, every byte checked, MB/s per stream.
 *   2. One stream shared by worker threads: request/response, writers
 *      share the stream and one reader hands each answer to its worker;
 *      requests/s and latency percentiles, 1 worker vs 4.
 *   3. The CDTunnel shape: IPv6 packets back to back on a Unix stream
 *      socket (JKTCP_FRAMING_STREAM, MTU 16000) through a forwarder, as an
 *      iOS device's tunnel carries them; latency and MB/s.
 *   Then everything is closed and the kernel's own socket table shows that
 *   every connection finished.
 *
 *   usage: jktcp-demo [--pcap PATH]
 *     --pcap PATH  also capture every frame (two files: PATH's name plus
 *                  -ipv4-tun / -ipv6-cdtunnel, transfers 1/8 the size);
 *                  the demo says where.
 *
 * The kernel side is tests/support/'s, Criterion-free and linked as the
 * bench links it: netns.h (namespace, TUN devices set up with ioctls, data
 * pattern, clock), kserver.h (the servers), bridge.h (the forwarder),
 * netprobe.h (the kernel's sockets in /proc/net).
 *
 * Needs root (namespaces, /dev/net/tun); runs no external program.
 * Exit status: 0 success (or skipped: no namespaces / TUN), 1 failure.
 */
#include "jktcp.h"
#include "bridge.h"   /* tests/support/, Criterion-free (Makefile SUPPORT_NET_OBJ) */
#include "kserver.h"
#include "netns.h"
#include "netprobe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024u * 1024u)
#define TUN_MTU 1500     /* jkdemo0: IPv4, packet framing, a typical link */
#define TUNNEL_MTU 16000 /* jkdemo1: IPv6, stream framing, what iOS tunnels use */
#define BULK_STREAMS 8
#define BULK_MIB 24   /* per stream in part 1 */
#define TUNNEL_MIB 48 /* each way in part 3 */
#define PCAP_DIVISOR 8 /* smaller transfers while capturing */
#define RPC_SIZE 256             /* request = response size in part 2 */
#define RPC_SECONDS 1.5
#define RPC_MAX_WORKERS 8
#define IO_TIMEOUT 15000

/* The kernel's servers (kserver.h), on both of its addresses (netns.h), at
 * the classic service ports: */
#define PORT_ECHO 7    /* echo */
#define PORT_SINK 9    /* "discard", but it checks the data and answers a verdict */
#define PORT_SOURCE 19 /* "chargen": sends what is asked for */

static double t0;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int failures;

/* A line of output, with the time since the start. Any thread. */
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&out_lock);
    printf("  [%6.2f s] ", jkt_now_s() - t0);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    va_end(ap);
}

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&out_lock);
    printf("  FAILED: ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    va_end(ap);
    atomic_fetch_add(&failures, 1);
}

static void heading(const char *text)
{
    pthread_mutex_lock(&out_lock);
    printf("\n%s\n", text);
    pthread_mutex_unlock(&out_lock);
}

#define E(rc) jktcp_strerror((int)(rc))

/* Read exactly len bytes (0), or the error / 1 at an early end of stream. */
static long read_full(jktcp_stream s, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = jktcp_stream_read(s, (char *)buf + got, len - got, IO_TIMEOUT);
        if (n <= 0)
            return n == 0 ? 1 : n;
        got += (size_t)n;
    }
    return 0;
}

/* A handle on fd (framing: JKTCP_FRAMING_*) from jktcp's address of family
 * to the kernel's; mtu caps every frame. */
static int start_handle(int fd, int framing, int family, unsigned mtu, const char *pcap,
                        jktcp_handle *h)
{
    jktcp_transport *t;
    jktcp_adapter *a;
    int rc = jktcp_transport_fd(fd, framing, &t);
    if (rc == 0)
        rc = jktcp_adapter_new(t, jkt_local_ip(family), jkt_kernel_ip(family), &a);
    if (rc == 0 && (rc = jktcp_adapter_set_mtu(a, mtu)) != 0)
        jktcp_adapter_free(a);
    if (rc == 0)
        rc = jktcp_handle_start(a, h); /* the adapter moves onto its own I/O thread */
    if (rc == 0 && pcap && (rc = jktcp_handle_pcap(*h, pcap)) != 0)
        jktcp_handle_close(*h, 0);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Bulk transfers: one thread per stream                                  */
/* ---------------------------------------------------------------------- */

struct bulk {
    jktcp_handle h;
    const char *label;
    int upload;    /* 1: to the sink, 0: from the source */
    uint32_t seed;
    uint64_t bytes;
    double secs;   /* connect to last byte */
    int ok;
    pthread_t th;
};

static void *bulk_run(void *arg)
{
    struct bulk *b = arg;
    jktcp_stream s;
    uint8_t *buf = malloc(256 * 1024);
    uint8_t hdr[12] = {b->seed >> 24, b->seed >> 16, b->seed >> 8, b->seed};
    for (int i = 0; i < 8; i++)
        hdr[4 + i] = (uint8_t)(b->bytes >> (56 - 8 * i));
    double t = jkt_now_s();
    int rc = jktcp_handle_connect(b->h, b->upload ? PORT_SINK : PORT_SOURCE, 5000, &s);
    if (rc != 0) {
        fail("%s: connect: %s", b->label, E(rc));
        free(buf);
        return NULL;
    }
    long r = buf ? jktcp_stream_write_all(s, hdr, b->upload ? 4 : 12, IO_TIMEOUT) : -ENOMEM;
    uint64_t off = 0;
    if (b->upload) {
        /* Send, FIN, and read the sink's verdict on what it received. */
        for (; r > 0 && off < b->bytes; off += 256 * 1024) {
            size_t n = b->bytes - off < 256 * 1024 ? (size_t)(b->bytes - off) : 256 * 1024;
            jkt_pattern_fill(buf, n, off, b->seed);
            r = jktcp_stream_write_all(s, buf, n, IO_TIMEOUT);
        }
        char verdict[64] = "";
        size_t got = 0;
        if (r > 0 && (r = jktcp_stream_shutdown(s)) == 0)
            while ((r = jktcp_stream_read(s, verdict + got, sizeof verdict - 1 - got, IO_TIMEOUT)) > 0)
                got += (size_t)r;
        b->secs = jkt_now_s() - t;
        char want[64];
        snprintf(want, sizeof want, "OK %llu\n", (unsigned long long)b->bytes);
        b->ok = r == 0 && strcmp(verdict, want) == 0;
        if (b->ok)
            say("%s  %3u MiB up    in %5.2f s  %6.1f MB/s   kernel checked every byte: %.*s",
                b->label, (unsigned)(b->bytes / MiB), b->secs, b->bytes / b->secs / 1e6,
                (int)strcspn(verdict, "\n"), verdict);
        else
            fail("%s: upload: %s, kernel said \"%.*s\"", b->label, r < 0 ? E(r) : "ended early",
                 (int)strcspn(verdict, "\n"), verdict);
    } else {
        /* Read what the source sends, check it, expect its FIN at the end. */
        while (r > 0 && (r = jktcp_stream_read(s, buf, 256 * 1024, IO_TIMEOUT)) > 0) {
            if (jkt_pattern_check(buf, (size_t)r, off, b->seed) != (size_t)r) {
                r = -EILSEQ;
                break;
            }
            off += (uint64_t)r;
        }
        b->secs = jkt_now_s() - t;
        b->ok = r == 0 && off == b->bytes;
        if (b->ok)
            say("%s  %3u MiB down  in %5.2f s  %6.1f MB/s   every byte checked here", b->label,
                (unsigned)(b->bytes / MiB), b->secs, b->bytes / b->secs / 1e6);
        else
            fail("%s: download: %s after %llu bytes", b->label,
                 r == -EILSEQ ? "data differs" : r < 0 ? E(r) : "short", (unsigned long long)off);
    }
    jktcp_stream_close(s);
    free(buf);
    return NULL;
}

/* Run n bulk transfers at once; prints each as it ends, then the total. */
static void bulk_all(struct bulk *b, int n)
{
    double t = jkt_now_s();
    for (int i = 0; i < n; i++)
        if (pthread_create(&b[i].th, NULL, bulk_run, &b[i]) != 0) {
            fail("thread: %s", strerror(errno));
            b[i].th = 0;
        }
    for (int i = 0; i < n; i++)
        if (b[i].th)
            pthread_join(b[i].th, NULL);
    double secs = jkt_now_s() - t, up = 0, down = 0;
    int ok = 0;
    for (int i = 0; i < n; i++) {
        ok += b[i].ok;
        *(b[i].upload ? &up : &down) += (double)b[i].bytes;
    }
    say("all %d at once: %.0f MiB in %.2f s = %.1f MB/s (up %.1f, down %.1f); %d of %d verified",
        n, (up + down) / MiB, secs, (up + down) / secs / 1e6, up / secs / 1e6, down / secs / 1e6,
        ok, n);
}

/* ---------------------------------------------------------------------- */
/* One stream, several worker threads: request / response                 */
/* ---------------------------------------------------------------------- */

struct rpc {
    jktcp_stream s;
    int workers;
    double until;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint32_t answered[RPC_MAX_WORKERS]; /* seq of each worker's last answer */
    int reader_ok;
    double *lat;  /* latencies, microseconds */
    size_t nlat, cap;
};

struct rpc_worker {
    struct rpc *r;
    uint32_t id;
    pthread_t th;
};

/* The reader: every answer to the worker whose id it carries. */
static void *rpc_reader(void *arg)
{
    struct rpc *r = arg;
    uint8_t msg[RPC_SIZE];
    long rc;
    while ((rc = read_full(r->s, msg, sizeof msg)) == 0) {
        uint32_t id, seq;
        memcpy(&id, msg, 4);
        memcpy(&seq, msg + 4, 4);
        if (id >= (uint32_t)r->workers || msg[RPC_SIZE - 1] != (uint8_t)(id + seq))
            break; /* not an answer any worker is waiting for: the stream is corrupt */
        pthread_mutex_lock(&r->lock);
        r->answered[id] = seq;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
    }
    r->reader_ok = rc == 1; /* end of stream (after our FIN) */
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->workers; i++)
        r->answered[i] = UINT32_MAX; /* wake the workers whatever happened */
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* A worker: write a request (writers share the stream: each write_all
 * goes out whole), wait for its answer, note the round trip. */
static void *rpc_worker_run(void *arg)
{
    struct rpc_worker *w = arg;
    struct rpc *r = w->r;
    uint8_t msg[RPC_SIZE] = {0};
    for (uint32_t seq = 1; jkt_now_s() < r->until; seq++) {
        memcpy(msg, &w->id, 4);
        memcpy(msg + 4, &seq, 4);
        msg[RPC_SIZE - 1] = (uint8_t)(w->id + seq);
        double t = jkt_now_s();
        if (jktcp_stream_write_all(r->s, msg, sizeof msg, IO_TIMEOUT) != (ssize_t)sizeof msg)
            return (void *)1;
        pthread_mutex_lock(&r->lock);
        while (r->answered[w->id] != seq && r->answered[w->id] != UINT32_MAX)
            pthread_cond_wait(&r->cond, &r->lock);
        int ok = r->answered[w->id] == seq;
        if (ok && r->nlat < r->cap)
            r->lat[r->nlat++] = (jkt_now_s() - t) * 1e6;
        pthread_mutex_unlock(&r->lock);
        if (!ok)
            return (void *)1;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    return n ? v[(size_t)(p / 100.0 * (double)(n - 1))] : 0;
}

static void rpc_run(jktcp_handle h, int workers)
{
    struct rpc r = {.workers = workers, .cap = 2000000};
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.cond, NULL);
    r.lat = malloc(r.cap * sizeof *r.lat);
    int rc = r.lat ? jktcp_handle_connect(h, PORT_ECHO, 5000, &r.s) : -ENOMEM;
    if (rc != 0) {
        fail("rpc connect: %s", E(rc));
        free(r.lat);
        return;
    }
    pthread_t rd;
    struct rpc_worker w[RPC_MAX_WORKERS];
    double t = jkt_now_s();
    r.until = t + RPC_SECONDS;
    int reader = pthread_create(&rd, NULL, rpc_reader, &r) == 0, bad = !reader, started = 0;
    for (; !bad && started < workers; started++) {
        w[started] = (struct rpc_worker){.r = &r, .id = (uint32_t)started};
        if (pthread_create(&w[started].th, NULL, rpc_worker_run, &w[started]) != 0)
            break;
    }
    for (int i = 0; i < started; i++) {
        void *res;
        pthread_join(w[i].th, &res);
        bad |= res != NULL;
    }
    double secs = jkt_now_s() - t;
    jktcp_stream_shutdown(r.s); /* the echo server closes: the reader sees the end */
    if (reader)
        pthread_join(rd, NULL);
    bad |= !r.reader_ok || started < workers;
    jktcp_stream_close(r.s);
    qsort(r.lat, r.nlat, sizeof *r.lat, cmp_double);
    if (bad)
        fail("%d worker%s on one stream: a request or answer went wrong", workers,
             workers > 1 ? "s" : "");
    else
        say("%d worker%s on one stream: %6zu round trips in %.2f s = %6.0f req/s; latency "
            "p50 %4.0f us  p99 %5.0f us  max %5.0f us",
            workers, workers > 1 ? "s" : " ", r.nlat, secs, (double)r.nlat / secs,
            pct(r.lat, r.nlat, 50), pct(r.lat, r.nlat, 99), pct(r.lat, r.nlat, 100));
    free(r.lat);
    pthread_cond_destroy(&r.cond);
    pthread_mutex_destroy(&r.lock);
}

/* ---------------------------------------------------------------------- */
/* Part 3: ping-pong latency on one stream                                 */
/* ---------------------------------------------------------------------- */

static void pingpong(jktcp_handle h, int rounds)
{
    jktcp_stream s;
    double t = jkt_now_s();
    int rc = jktcp_handle_connect(h, PORT_ECHO, 5000, &s);
    if (rc != 0) {
        fail("connect through the tunnel: %s", E(rc));
        return;
    }
    double tc = (jkt_now_s() - t) * 1e3;
    jktcp_info in;
    jktcp_stream_info(s, &in, sizeof in);
    say("connected [%s]:%u -> [%s]:%u in %.2f ms: mss %u, window scale %u/%u, SACK %s, "
        "timestamps %s",
        JKT_LOCAL_IP6, in.local_port, JKT_KERNEL_IP6, in.remote_port, tc, in.mss, in.snd_wscale,
        in.rcv_wscale, in.sack ? "yes" : "no", in.timestamps ? "yes" : "no");
    double *lat = malloc((size_t)rounds * sizeof *lat);
    uint8_t msg[64], back[64];
    int i = 0;
    for (; lat && i < rounds; i++) {
        jkt_pattern_fill(msg, sizeof msg, (uint64_t)i * 64, 0x9191);
        double ti = jkt_now_s();
        if (jktcp_stream_write_all(s, msg, sizeof msg, IO_TIMEOUT) != (ssize_t)sizeof msg ||
            read_full(s, back, sizeof back) != 0 || memcmp(msg, back, sizeof msg) != 0)
            break;
        lat[i] = (jkt_now_s() - ti) * 1e6;
    }
    if (i < rounds) {
        fail("ping-pong %d went wrong", i);
    } else {
        qsort(lat, (size_t)rounds, sizeof *lat, cmp_double);
        say("%d ping-pongs of 64 bytes through the tunnel: latency p50 %.0f us, p99 %.0f us, "
            "max %.0f us",
            rounds, pct(lat, (size_t)rounds, 50), pct(lat, (size_t)rounds, 99),
            pct(lat, (size_t)rounds, 100));
    }
    free(lat);
    jktcp_stream_shutdown(s);
    char b;
    if (jktcp_stream_read(s, &b, 1, IO_TIMEOUT) != 0)
        fail("no end of stream from the echo server");
    jktcp_stream_close(s);
}

static void print_stats(jktcp_handle h, const char *what)
{
    jktcp_stats st;
    if (jktcp_handle_stats(h, &st, sizeof st) != 0)
        return;
    say("%s: frames in/out %llu/%llu (%.1f/%.1f MB), retransmits %llu, connections %llu, "
        "I/O thread wake-ups %llu",
        what, (unsigned long long)st.frames_in, (unsigned long long)st.frames_out,
        st.bytes_in / 1e6, st.bytes_out / 1e6, (unsigned long long)st.retransmits,
        (unsigned long long)st.conns_opened, (unsigned long long)st.io_wakeups);
}

/* ---------------------------------------------------------------------- */
/* The kernel's servers: one jkt_server per family and kind               */
/* ---------------------------------------------------------------------- */

enum { KINDS = 3 };
static const int server_kind[KINDS] = {JKT_SRV_ECHO, JKT_SRV_SINK_VERDICT, JKT_SRV_SOURCE_ASKED};
static const uint16_t server_port[KINDS] = {PORT_ECHO, PORT_SINK, PORT_SOURCE};

static int servers_start(struct jkt_server sv[2][KINDS])
{
    for (int f = 0; f < 2; f++)
        for (int k = 0; k < KINDS; k++) {
            struct jkt_server *s = &sv[f][k];
            memset(s, 0, sizeof *s);
            s->kind = server_kind[k];
            s->family = f ? AF_INET6 : AF_INET;
            s->port = server_port[k];
            s->count_only = true; /* echo: no checksum of what goes by */
            int rc = jkt_server_start(s);
            if (rc != 0)
                return rc;
        }
    return 0;
}

/* Connections accepted, and those that saw an error, over every server. */
static unsigned long servers_count(struct jkt_server sv[2][KINDS], int errors)
{
    unsigned long n = 0;
    for (int i = 0; i < 2 * KINDS; i++) {
        struct jkt_server *s = &sv[i / KINDS][i % KINDS];
        n += errors ? atomic_load(&s->resets) + (s->error != 0) : atomic_load(&s->accepted);
    }
    return n;
}

/* Wait (up to timeout_ms in all) for the connection threads, which end
 * when their peers close, then stop every server. Returns how many
 * connection threads had not ended by then. */
static unsigned long servers_stop(struct jkt_server sv[2][KINDS], int timeout_ms)
{
    double end = jkt_now_s() + timeout_ms / 1e3;
    unsigned long left = 0;
    for (int i = 0; i < 2 * KINDS; i++) {
        struct jkt_server *s = &sv[i / KINDS][i % KINDS];
        int ms = (int)((end - jkt_now_s()) * 1e3);
        unsigned long accepted = atomic_load(&s->accepted);
        if (jkt_server_wait_done(s, accepted, ms > 0 ? ms : 0) != 0)
            left += accepted - atomic_load(&s->done);
        jkt_server_stop(s);
    }
    return left;
}

/* PATH -> PATH with `tag` before its extension: /tmp/x.pcap -> /tmp/x-tag.pcap */
static void pcap_name(char *out, size_t cap, const char *path, const char *tag)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
    snprintf(out, cap, "%.*s-%s%s", (int)stem, path, tag, path + stem);
}

int main(int argc, char **argv)
{
    const char *pcap = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pcap") == 0 && i + 1 < argc)
            pcap = argv[++i];
        else if (strncmp(argv[i], "--pcap=", 7) == 0)
            pcap = argv[i] + 7;
        else {
            fprintf(stderr, "usage: %s [--pcap PATH]\n", argv[0]);
            return 2;
        }
    }
    char pcap4[4096], pcap6[4096];
    uint64_t bulk_bytes = BULK_MIB * MiB, tunnel_bytes = TUNNEL_MIB * MiB;
    if (pcap) {
        bulk_bytes /= PCAP_DIVISOR;
        tunnel_bytes /= PCAP_DIVISOR;
        pcap_name(pcap4, sizeof pcap4, pcap, "ipv4-tun");
        pcap_name(pcap6, sizeof pcap6, pcap, "ipv6-cdtunnel");
        for (int i = 0; i < 2; i++) { /* say so now rather than halfway through */
            FILE *f = fopen(i ? pcap6 : pcap4, "wb");
            if (!f) {
                fprintf(stderr, "--pcap: cannot write %s: %s\n", i ? pcap6 : pcap4, strerror(errno));
                return 2;
            }
            fclose(f);
        }
    }
    t0 = jkt_now_s();
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%s demo: the threaded handle against the Linux kernel's TCP, in a private network "
           "namespace\n",
           jktcp_version());

    heading("setup");
    int rc = jkt_netns_enter();
    if (rc != 0) {
        printf("skipped: cannot create a network namespace (%s); run as root\n", strerror(-rc));
        return 0;
    }
    say("private network namespace: only loopback; nothing outside it is touched, and it goes "
        "with this process");
    struct jkt_tun tun4, tun6;
    rc = jkt_tun_open("jkdemo0", TUN_MTU, JKT_FAM_IPV4, &tun4);
    if (rc == -ENOENT || rc == -ENODEV || rc == -EPERM || rc == -EACCES || rc == -ENXIO) {
        printf("skipped: no usable /dev/net/tun (%s)\n", strerror(-rc));
        return 0;
    }
    if (rc == 0 && (rc = jkt_tun_open("jkdemo1", TUNNEL_MTU, JKT_FAM_IPV6, &tun6)) != 0)
        jkt_tun_close(&tun4);
    if (rc != 0) {
        printf("FAILED: setting up the TUN devices: %s\n", strerror(-rc));
        return 1;
    }
    say("jkdemo0: TUN, MTU %u, kernel %s/24  <->  jktcp %s (packet framing)", TUN_MTU,
        JKT_KERNEL_IP4, JKT_LOCAL_IP4);
    say("jkdemo1: TUN, MTU %u, kernel %s/64  <->  forwarder  <->  Unix stream socket  <->  "
        "jktcp %s (stream framing)",
        TUNNEL_MTU, JKT_KERNEL_IP6, JKT_LOCAL_IP6);
    struct jkt_server sv[2][KINDS];
    struct jkt_bridge fw; /* the forwarder: stream socketpair, whole frames, no loss */
    if ((rc = servers_start(sv)) != 0 || (rc = jkt_bridge_start(&fw, tun6.fd, 0, 0)) != 0) {
        printf("FAILED: kernel servers / forwarder: %s\n", strerror(-rc));
        return 1;
    }
    say("kernel servers on Linux sockets, both addresses: echo :%d, sink :%d (checks the data), "
        "source :%d",
        PORT_ECHO, PORT_SINK, PORT_SOURCE);

    /* Handle 1: IPv4 over the TUN fd, one packet per read/write. */
    jktcp_handle h4, h6;
    rc = start_handle(tun4.fd, JKTCP_FRAMING_PACKET, AF_INET, TUN_MTU, pcap ? pcap4 : NULL, &h4);
    if (rc != 0) {
        printf("FAILED: handle over jkdemo0: %s\n", E(rc));
        return 1;
    }
    say("handle 1 started: its adapter (%s) runs on its own I/O thread; handle and stream ids "
        "are plain values any thread may use",
        JKT_LOCAL_IP4);
    if (pcap)
        say("capturing every frame to %s and %s (transfers 1/%d of the usual size)", pcap4, pcap6,
            PCAP_DIVISOR);

    heading("1. several streams at once over one handle (IPv4, MTU 1500)");
    say("%d streams, one thread each: %d uploads to the kernel's sink, %d downloads from its "
        "source, %u MiB each",
        BULK_STREAMS, BULK_STREAMS / 2, BULK_STREAMS / 2, (unsigned)(bulk_bytes / MiB));
    struct bulk b[BULK_STREAMS];
    char labels[BULK_STREAMS][24];
    for (int i = 0; i < BULK_STREAMS; i++) {
        snprintf(labels[i], sizeof labels[i], "stream %d", i + 1);
        b[i] = (struct bulk){.h = h4, .label = labels[i], .upload = i % 2 == 0,
                             .seed = 0x5EED0000u + (uint32_t)i, .bytes = bulk_bytes};
    }
    bulk_all(b, BULK_STREAMS);

    heading("2. one stream shared by worker threads (IPv4, request/response to the kernel's echo)");
    say("each worker writes %d-byte requests on the same stream; one reader thread hands every "
        "answer to the worker waiting for it; %.1f s per run",
        RPC_SIZE, RPC_SECONDS);
    rpc_run(h4, 1);
    rpc_run(h4, 4);
    print_stats(h4, "handle 1");

    heading("3. the CDTunnel shape: IPv6 packets back to back on a byte stream (MTU 16000)");
    say("a forwarder thread pair plays the device's side: TUN packets onto a Unix stream socket "
        "one after another, and back");
    rc = start_handle(fw.user_fd, JKTCP_FRAMING_STREAM, AF_INET6, TUNNEL_MTU, pcap ? pcap6 : NULL,
                      &h6);
    if (rc != 0) {
        printf("FAILED: handle over the tunnel: %s\n", E(rc));
        return 1;
    }
    pingpong(h6, 2000);
    say("upload and download at once through the tunnel, %u MiB each way",
        (unsigned)(tunnel_bytes / MiB));
    struct bulk tb[2] = {
        {.h = h6, .label = "tunnel up  ", .upload = 1, .seed = 0x7A11, .bytes = tunnel_bytes},
        {.h = h6, .label = "tunnel down", .upload = 0, .seed = 0x7A12, .bytes = tunnel_bytes},
    };
    bulk_all(tb, 2);
    print_stats(h6, "handle 2");
    say("forwarder: %lu packets (%.1f MB) tunnel -> TUN, %lu packets (%.1f MB) TUN -> tunnel",
        atomic_load(&fw.frames_to_tun), atomic_load(&fw.bytes_to_tun) / 1e6,
        atomic_load(&fw.frames_to_sock), atomic_load(&fw.bytes_to_sock) / 1e6);
    if ((rc = atomic_load(&fw.error)) != 0)
        fail("forwarder: %s", rc == -EPROTO ? "the byte stream lost its framing" : strerror(-rc));

    heading("closing");
    /* Every stream is closed already. The kernel's table shows whether each
     * connection finished: nothing but TIME_WAIT may remain. */
    int open_ = 0, tw = 0;
    for (int i = 0; i < 300; i++) {
        jkt_kernel_tcp_sockets(&open_, &tw);
        if (open_ == 0)
            break;
        usleep(10000);
    }
    if (open_)
        fail("%d kernel connections still open after every stream was closed", open_);
    else
        say("kernel: %lu connections served, none left open (/proc/net/tcp, tcp6), %d in "
            "TIME_WAIT",
            servers_count(sv, 0), tw);
    jktcp_stats s4 = {0}, s6 = {0};
    jktcp_handle_stats(h4, &s4, sizeof s4);
    jktcp_handle_stats(h6, &s6, sizeof s6);
    say("segments sent again: jktcp %llu, the kernel %ld (jktcp sent %llu frames in all)",
        (unsigned long long)(s4.retransmits + s6.retransmits), jkt_kernel_retransmits(),
        (unsigned long long)(s4.frames_out + s6.frames_out));
    double tc = jkt_now_s();
    jktcp_handle_close(h4, 1000); /* stops the I/O threads, frees the adapters */
    jktcp_handle_close(h6, 1000);
    say("handles closed in %.1f ms", (jkt_now_s() - tc) * 1e3);
    jkt_bridge_stop(&fw);
    unsigned long left = servers_stop(sv, 2000), errors = servers_count(sv, 1);
    if (left)
        fail("%lu kernel server threads still running", left);
    if (errors)
        fail("%lu kernel server connections saw an error", errors);
    jkt_tun_close(&tun4);
    jkt_tun_close(&tun6);
    say("forwarder and kernel servers stopped, TUN devices closed; the namespace goes with "
        "the process");
    if (pcap) {
        struct stat st4 = {0}, st6 = {0};
        stat(pcap4, &st4);
        stat(pcap6, &st6);
        printf("\nevery frame was captured (Wireshark opens these):\n  %s  (%.1f MB)\n  %s  "
               "(%.1f MB)\n",
               pcap4, st4.st_size / 1e6, pcap6, st6.st_size / 1e6);
    }
    int bad = atomic_load(&failures);
    printf("\ndemo %s in %.1f s\n", bad ? "FAILED (see above)" : "OK", jkt_now_s() - t0);
    return bad ? 1 : 0;
}
