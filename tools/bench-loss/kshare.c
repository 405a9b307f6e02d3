/* SPDX-License-Identifier: MIT */
/*
 * jktcp-bench-loss: a Linux kernel flow sharing the bottleneck with jktcp
 * (issue 12: jktcp "does not starve a kernel flow sharing the link").
 *
 *   jktcp's adapter --socket pair--+                        +--> jkt0 (TUN): the kernel
 *   198.18.0.2                     +--> switch thread ----> |    sinks, 198.18.0.1, the
 *   kernel client --jkt1 (TUN)-----+    faulty(fd(jkt0)):   |    caller's namespace
 *   198.18.1.2, a namespace             the one link        |
 *   of its own                     <--- by destination <----+
 *
 * The link is one jktcp_transport_faulty over the sinks' TUN with the
 * bottleneck configuration of the jktcp-only cases (link_out: rate, queue
 * and delay; link_in: the ACKs' delay). No adapter owns it: a switch thread
 * sends into it every frame from jktcp's adapter (the other end of a
 * SOCK_SEQPACKET pair) and from the kernel client's TUN, one from each
 * source in turn (so neither comes first at a full queue by construction),
 * and hands what comes out of it toward the senders to jktcp (to
 * 198.18.0.2) or to the client's TUN (to 198.18.1.2). Both uploads wait in
 * the same drop-tail queue; both flows' ACKs in the same delay line.
 *
 * Why lib/transport.h: the public API (include/jktcp.h) has no call that
 * sends a frame into, or takes one out of, a transport; a transport's only
 * user is the adapter (or handle) that owns it. A faulty wrapper's "out"
 * direction, the one with the bottleneck (link_out), takes only its own
 * adapter's frames, and its "in" direction (link_in) delivers only to that
 * adapter; so no public construction puts a second sender's frames into the
 * same queue. The internal transport interface (jk_transport_send, _recv,
 * _flush, _poll_fd, _poll_events), through which the unit tests drive the
 * fault transport too (tests/unit/test_fault_transport.c), can; the bench is
 * built like the tests (-Ilib, the static archive) and changes nothing in
 * lib/.
 *
 * The kernel client lives in a thread that unshares a network namespace of
 * its own (its socket and TUN belong to it); its route has the same 20 ms
 * rto_min as the sinks' side, TCP_CONGESTION is set on its socket, and it
 * uploads the pattern (seed KS_SEED) that its sink verifies.
 */
#include "loss.h"

#include "kserver.h"
#include "lossylink.h"
#include "netns.h"
#include "netprobe.h"
#include "transport.h" /* lib/: the internal transport calls, see above */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define KS_CLIENT_IP "198.18.1.2"
#define KS_CLIENT_NET "198.18.1.0/24"
#define KS_TUN "jkt1"              /* the client's TUN, in its namespace */
#define KS_SEED 43                 /* the pattern the kernel client uploads */
#define KS_CHUNK (64u * 1024u)
#define KS_FRAME 65536
#define KS_WAIT_MS 10000           /* for each set-up step of the client */
#define KS_USER_TIMEOUT_MS 3600000u

/* main -> client */
enum { PH_SETUP, PH_CONNECT, PH_GO, PH_STOP, PH_EXIT };
/* client -> main */
enum { CL_FAILED = -1, CL_BUSY, CL_READY, CL_CONNECTED, CL_DONE };

struct lb_kshare {
    jktcp_transport *link;       /* faulty(fd(the sinks' TUN)): the one link */
    int sv;                      /* the switch's end of the adapter's socket pair */
    struct jkt_tun tun2;         /* the client's TUN (its fd: the switch's) */
    struct jkt_server sink;      /* the kernel flow's, in the caller's namespace */
    bool sink_on, sw_on, cl_on;
    pthread_t sw, cl;
    char cc[16];
    struct in_addr jk_ip, k_ip;
    atomic_int phase, cstate;
    atomic_bool sw_stop;
    /* the switch's (read after it is joined) */
    int sw_err;
    struct lb_switch_counts n;
    /* the client's (read once cstate says so) */
    int cfd;
    int cl_status;               /* LB_OK, or LB_NA / LB_ERR with cl_why */
    char cl_why[112];
    uint32_t retrans, rtos;
    /* srtt samples, taken in the caller's thread */
    double srtt_sum_ms, srtt_max_ms;
    unsigned samples;
};

/* ---- the kernel client (its own thread and namespace) ---------------- */

static int wait_phase(struct lb_kshare *k, int want)
{
    int p;
    while ((p = atomic_load(&k->phase)) < want)
        jkt_sleep_ms(1);
    return p;
}

static int client_fail(struct lb_kshare *k, int status, const char *what, int err)
{
    k->cl_status = status;
    snprintf(k->cl_why, sizeof k->cl_why, "kernel client: %s: %s", what, strerror(err));
    return -1;
}

/* The namespace and its TUN: KS_CLIENT_IP, the sinks' network on the TUN
 * with the sinks' rto_min and RTO ceiling (lossylink.c). */
static int client_net(struct lb_kshare *k)
{
    int rc = jkt_netns_enter();
    if (rc < 0)
        return client_fail(k, LB_ERR, "network namespace", -rc);
    rc = jkt_tun_open(KS_TUN, 1500, JKT_FAM_IPV4, &k->tun2);
    if (rc < 0)
        return client_fail(k, LB_ERR, "TUN", -rc);
    char cmd[512], out[160] = "";
    /* jkt_tun_open gave this end the sinks' address: it is the client's */
    snprintf(cmd, sizeof cmd,
             "sysctl -qw net.ipv4.tcp_rto_max_ms=1000 2>&1; ip addr del %s/24 dev %s 2>&1 && "
             "ip addr add %s/24 dev %s 2>&1 && "
             "ip route replace 198.18.0.0/24 dev %s src %s rto_min %dms 2>&1",
             JKT_KERNEL_IP4, KS_TUN, KS_CLIENT_IP, KS_TUN, KS_TUN, KS_CLIENT_IP,
             JKT_LOSSY_RTO_MIN_MS);
    rc = jkt_sh(cmd, out, sizeof out);
    if (rc != 0) {
        k->cl_status = LB_ERR;
        snprintf(k->cl_why, sizeof k->cl_why, "kernel client: addresses (status %d): %.60s", rc,
                 out);
        return -1;
    }
    int fl = fcntl(k->tun2.fd, F_GETFL);
    if (fl < 0 || fcntl(k->tun2.fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return client_fail(k, LB_ERR, "TUN O_NONBLOCK", errno);
    return 0;
}

static int client_connect(struct lb_kshare *k)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return client_fail(k, LB_ERR, "socket", errno);
    k->cfd = fd;
    if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, k->cc, (socklen_t)strlen(k->cc)) < 0)
        return client_fail(k, errno == ENOENT ? LB_NA : LB_ERR, "TCP_CONGESTION", errno);
    char got[16] = "";
    socklen_t gl = sizeof got;
    if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, got, &gl) < 0 ||
        strncmp(got, k->cc, sizeof got) != 0)
        return client_fail(k, LB_NA, "TCP_CONGESTION does not read back", EINVAL);
    unsigned ut = KS_USER_TIMEOUT_MS;
    struct timeval tv = {.tv_sec = 5}; /* bounds the connect */
    if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return client_fail(k, LB_ERR, "setsockopt", errno);
    struct sockaddr_storage ss;
    socklen_t sl = jkt_sockaddr(AF_INET, JKT_KERNEL_IP4, k->sink.port, &ss);
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0)
        return client_fail(k, LB_ERR, "connect", errno);
    tv = (struct timeval){.tv_usec = 50000}; /* the sends look at the phase this often */
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return client_fail(k, LB_ERR, "SO_SNDTIMEO", errno);
    return 0;
}

/* The pattern, as fast as the socket takes it, until the phase moves on. */
static void client_send(struct lb_kshare *k)
{
    uint8_t *buf = malloc(KS_CHUNK);
    uint64_t sent = 0, filled = UINT64_MAX;
    if (!buf) {
        client_fail(k, LB_ERR, "buffer", ENOMEM);
        return;
    }
    while (atomic_load(&k->phase) == PH_GO) {
        if (filled != sent)
            jkt_pattern_fill(buf, KS_CHUNK, sent, KS_SEED), filled = sent;
        ssize_t w = send(k->cfd, buf, KS_CHUNK, MSG_NOSIGNAL);
        if (w > 0)
            sent += (uint64_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            if (atomic_load(&k->phase) == PH_GO)
                client_fail(k, LB_ERR, "send", errno);
            break;
        }
    }
    free(buf);
}

static void *client_main(void *arg)
{
    struct lb_kshare *k = arg;
    bool ok = client_net(k) == 0;
    if (ok) {
        atomic_store(&k->cstate, CL_READY);
        ok = wait_phase(k, PH_CONNECT) == PH_CONNECT && client_connect(k) == 0;
    }
    if (ok) {
        atomic_store(&k->cstate, CL_CONNECTED);
        if (wait_phase(k, PH_GO) == PH_GO)
            client_send(k);
        wait_phase(k, PH_STOP);
        struct tcp_info ti;
        socklen_t tl = sizeof ti;
        if (getsockopt(k->cfd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0)
            k->retrans = ti.tcpi_total_retrans;
        long t = jkt_kernel_stat_in("/proc/thread-self/net/netstat", "TcpExt", "TCPTimeouts");
        k->rtos = t > 0 ? (uint32_t)t : 0;
    }
    if (k->cfd >= 0) { /* the time is up: a reset, as jktcp's flows get */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(k->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(k->cfd);
    }
    atomic_store(&k->cstate, ok ? CL_DONE : CL_FAILED);
    /* The TUN must go while this thread still holds its namespace: the
     * caller closes it once the switch has stopped, then says PH_EXIT. */
    wait_phase(k, PH_EXIT);
    return NULL;
}

/* ---- the switch --------------------------------------------------------- */

/* A frame from a sender into the shared link. */
static void up(struct lb_kshare *k, const uint8_t *p, ssize_t n, uint64_t *count)
{
    if (n < 20 || p[0] >> 4 != 4) {
        k->n.stray++;
        return;
    }
    int r = jk_transport_send(k->link, p, (size_t)n);
    if (r == 0)
        ++*count;
    else if (r == -EAGAIN) /* the TUN write would block: lost before the queue */
        k->n.lost++;
    else
        k->sw_err = r;
}

/* A frame out of the link (a sink's ACK) to its sender; sv < 0 once the
 * adapter is gone. */
static void down(struct lb_kshare *k, int sv, const uint8_t *p, size_t n)
{
    struct in_addr dst;
    if (n < 20 || p[0] >> 4 != 4) {
        k->n.stray++;
        return;
    }
    memcpy(&dst, p + 16, sizeof dst);
    if (dst.s_addr == k->jk_ip.s_addr && sv >= 0) {
        if (send(sv, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n)
            k->n.down_jk++;
        else
            k->n.lost++;
    } else if (dst.s_addr == k->k_ip.s_addr) {
        if (write(k->tun2.fd, p, n) == (ssize_t)n)
            k->n.down_k++;
        else
            k->n.lost++;
    } else if (dst.s_addr != k->jk_ip.s_addr) {
        k->n.stray++;
    }
}

static void *switch_main(void *arg)
{
    struct lb_kshare *k = arg;
    uint8_t *buf = malloc(KS_FRAME);
    int sv = k->sv;
    if (!buf)
        k->sw_err = -ENOMEM;
    while (!k->sw_err && !atomic_load(&k->sw_stop)) {
        struct pollfd pf[3] = {
            {.fd = jk_transport_poll_fd(k->link), .events = jk_transport_poll_events(k->link)},
            {.fd = sv, .events = POLLIN},
            {.fd = k->tun2.fd, .events = POLLIN},
        };
        if (poll(pf, 3, 10) < 0 && errno != EINTR) {
            k->sw_err = -errno;
            break;
        }
        /* into the link: a frame from each sender in turn */
        for (bool more = true; more && !k->sw_err;) {
            more = false;
            ssize_t n = sv >= 0 ? recv(sv, buf, KS_FRAME, MSG_DONTWAIT) : -1;
            if (n > 0)
                up(k, buf, n, &k->n.up_jk), more = true;
            else if (sv >= 0 && (n == 0 || (errno != EAGAIN && errno != EINTR)))
                sv = -1; /* the adapter has closed its end */
            n = read(k->tun2.fd, buf, KS_FRAME);
            if (n > 0)
                up(k, buf, n, &k->n.up_k), more = true;
        }
        int r = jk_transport_flush(k->link);
        if (r < 0 && r != -EAGAIN)
            k->sw_err = r;
        /* out of it (and the link's departures, which recv sends on) */
        const uint8_t *p;
        size_t len;
        while (!k->sw_err && (r = jk_transport_recv(k->link, &p, &len)) == 1)
            down(k, sv, p, len);
        if (r < 0 && !k->sw_err)
            k->sw_err = r;
    }
    free(buf);
    return NULL;
}

/* ---- set-up and teardown (the caller's thread) ------------------------ */

static int wait_client(struct lb_kshare *k, int want, char *why, size_t cap)
{
    uint64_t end = jkt_now_us() + KS_WAIT_MS * 1000ull;
    int s;
    while ((s = atomic_load(&k->cstate)) != CL_FAILED && s < want) {
        if (jkt_now_us() > end)
            return snprintf(why, cap, "the kernel client %s in %d s",
                            want == CL_READY ? "had no namespace and TUN" : "did not connect",
                            KS_WAIT_MS / 1000),
                   LB_ERR;
        jkt_sleep_ms(1);
    }
    if (s == CL_FAILED)
        return snprintf(why, cap, "%s", k->cl_why), k->cl_status ? k->cl_status : LB_ERR;
    return LB_OK;
}

/* Stop the client (its reset goes through the switch), the switch and the
 * sink; the client's TUN before its thread ends. */
static void stop_all(struct lb_kshare *k)
{
    if (atomic_load(&k->phase) < PH_STOP)
        atomic_store(&k->phase, PH_STOP);
    if (k->cl_on) /* its sends wait 50 ms at most; set-up steps are bounded */
        while (atomic_load(&k->cstate) != CL_DONE && atomic_load(&k->cstate) != CL_FAILED)
            jkt_sleep_ms(1);
    if (k->sw_on) {
        atomic_store(&k->sw_stop, true);
        pthread_join(k->sw, NULL);
        k->sw_on = false;
    }
    if (k->sink_on) {
        jkt_server_stop(&k->sink);
        k->sink_on = false;
    }
    jkt_tun_close(&k->tun2);
    atomic_store(&k->phase, PH_EXIT);
    if (k->cl_on) {
        pthread_join(k->cl, NULL);
        k->cl_on = false;
    }
}

static void free_all(struct lb_kshare *k)
{
    if (k->link)
        jktcp_transport_free(k->link); /* and its inner transport; the TUN fd is the caller's */
    if (k->sv >= 0)
        close(k->sv);
    free(k);
}

/* jktcp's adapter over a socket pair whose other end the switch reads. */
static int make_adapter(struct lb_kshare *k, jktcp_adapter **a, char *why, size_t cap)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        return snprintf(why, cap, "socketpair: %s", strerror(errno)), -1;
    k->sv = sp[1];
    /* the ACKs toward jktcp are not to be lost here (the kernel client's
     * are written into its TUN, which takes them at once) */
    int big = 1 << 20;
    setsockopt(sp[1], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
    jktcp_transport *t;
    int rc = jktcp_transport_fd(sp[0], JKTCP_FRAMING_PACKET, &t);
    if (rc == 0 && (rc = jktcp_transport_set_flags(t, JKTCP_TRANSPORT_CLOSE_FD)) < 0)
        jktcp_transport_free(t);
    if (rc < 0) {
        close(sp[0]);
        return snprintf(why, cap, "adapter transport: %s", jktcp_strerror(rc)), -1;
    }
    rc = jktcp_adapter_new(t, JKT_LOCAL_IP4, JKT_KERNEL_IP4, a); /* owns t (and sp[0]) */
    if (rc == 0)
        rc = jkt_fast_rto(*a, JKT_LOSSY_RTO_MIN_MS, JKT_LOSSY_RETRIES, JKT_LOSSY_RTO_MAX_MS);
    if (rc < 0)
        return snprintf(why, cap, "adapter: %s", jktcp_strerror(rc)), -1;
    return 0;
}

static int build(struct lb_kshare *k, const struct jkt_tun *tun, const jktcp_fault_config *cfg,
                 jktcp_adapter **a, char *why, size_t cap)
{
    char cmd[256], out[160] = "";
    /* the sinks answer the client's network through the same TUN */
    snprintf(cmd, sizeof cmd, "ip route replace %s dev %s src %s rto_min %dms 2>&1",
             KS_CLIENT_NET, tun->name, JKT_KERNEL_IP4, JKT_LOSSY_RTO_MIN_MS);
    int rc = jkt_sh(cmd, out, sizeof out);
    if (rc != 0)
        return snprintf(why, cap, "route to the client (status %d): %.80s", rc, out), LB_ERR;
    jktcp_transport *inner;
    rc = jktcp_transport_fd(tun->fd, JKTCP_FRAMING_PACKET, &inner);
    if (rc == 0)
        rc = jktcp_transport_faulty(inner, cfg, sizeof *cfg, &k->link); /* owns inner */
    if (rc < 0)
        return snprintf(why, cap, "the link: %s", jktcp_strerror(rc)), LB_ERR;
    if (make_adapter(k, a, why, cap) < 0)
        return LB_ERR;
    k->sink = (struct jkt_server){.kind = JKT_SRV_SINK, .family = AF_INET, .verify = true,
                                  .in_seed = KS_SEED, .user_timeout_ms = KS_USER_TIMEOUT_MS};
    rc = jkt_server_start(&k->sink);
    if (rc < 0)
        return snprintf(why, cap, "kernel flow's sink: %s", strerror(-rc)), LB_ERR;
    k->sink_on = true;
    if ((rc = pthread_create(&k->cl, NULL, client_main, k)) != 0)
        return snprintf(why, cap, "client thread: %s", strerror(rc)), LB_ERR;
    k->cl_on = true;
    int st = wait_client(k, CL_READY, why, cap);
    if (st != LB_OK)
        return st;
    if ((rc = pthread_create(&k->sw, NULL, switch_main, k)) != 0)
        return snprintf(why, cap, "switch thread: %s", strerror(rc)), LB_ERR;
    k->sw_on = true;
    atomic_store(&k->phase, PH_CONNECT);
    return wait_client(k, CL_CONNECTED, why, cap);
}

int lb_kshare_open(const struct jkt_tun *tun, const jktcp_fault_config *cfg,
                   const char *kernel_cc, struct lb_kshare **out, jktcp_adapter **a, char *why,
                   size_t cap)
{
    *out = NULL;
    *a = NULL;
    struct lb_kshare *k = calloc(1, sizeof *k);
    if (!k)
        return snprintf(why, cap, "out of memory"), LB_ERR;
    k->sv = k->cfd = k->tun2.fd = -1;
    snprintf(k->cc, sizeof k->cc, "%s", kernel_cc);
    inet_pton(AF_INET, JKT_LOCAL_IP4, &k->jk_ip);
    inet_pton(AF_INET, KS_CLIENT_IP, &k->k_ip);
    int st = build(k, tun, cfg, a, why, cap);
    if (st != LB_OK) {
        stop_all(k);
        if (*a)
            jktcp_adapter_free(*a);
        *a = NULL;
        free_all(k);
        return st;
    }
    *out = k;
    return LB_OK;
}

void lb_kshare_go(struct lb_kshare *k)
{
    atomic_store(&k->phase, PH_GO);
}

void lb_kshare_sample(struct lb_kshare *k)
{
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    if (getsockopt(k->cfd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_rtt) {
        double ms = ti.tcpi_rtt / 1000.0;
        k->srtt_sum_ms += ms;
        k->samples++;
        if (ms > k->srtt_max_ms)
            k->srtt_max_ms = ms;
    }
}

void lb_kshare_result(struct lb_kshare *k, double secs, struct lb_flow_result *f)
{
    f->bytes = atomic_load(&k->sink.bytes_in);
    f->mbit_s = secs > 0 ? (double)f->bytes * 8 / secs / 1e6 : 0;
    f->srtt_mean_ms = k->samples ? k->srtt_sum_ms / k->samples : 0;
    f->srtt_max_ms = k->srtt_max_ms;
}

void lb_kshare_link(struct lb_kshare *k, jktcp_fault_link_stats *l)
{
    jktcp_fault_stats st;
    if (jktcp_transport_fault_stats(k->link, &st, sizeof st) == 0)
        *l = st.link_out;
}

int lb_kshare_close(struct lb_kshare *k, struct lb_flow_result *f, struct lb_switch_counts *sw,
                    char *why, size_t cap)
{
    stop_all(k);
    f->retransmits = k->retrans;
    f->timeouts = k->rtos;
    f->bad_data = atomic_load(&k->sink.mismatches) != 0;
    *sw = k->n;
    int st = LB_OK;
    if (f->bad_data)
        st = LB_ERR, snprintf(why, cap, "DATA CORRUPTION: the kernel flow, byte %" PRIu64,
                              k->sink.first_mismatch);
    else if (k->cl_status != LB_OK)
        st = k->cl_status, snprintf(why, cap, "%s", k->cl_why);
    else if (k->sw_err)
        st = LB_ERR, snprintf(why, cap, "the switch: %s", jktcp_strerror(k->sw_err));
    free_all(k);
    return st;
}
