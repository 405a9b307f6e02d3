/* SPDX-License-Identifier: MIT */
/*
 * One run of jktcp-bench-loss: the link (tests/support/lossylink.h) and one
 * transfer, jktcp uploading to a verifying kernel sink or a kernel source
 * sending to jktcp, which verifies. One single-threaded adapter, driven by
 * this thread only; every wait is bounded by the run's limit.
 */
#include "loss.h"

#include "kserver.h"
#include "lossylink.h"
#include "netns.h"
#include "netprobe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LB_CHUNK (64u * 1024u)
#define LB_SEED_UP 31   /* pattern jktcp uploads */
#define LB_SEED_DOWN 32 /* pattern the kernel sends */
/* Longer than any limit: the kernel must not give up first (lossylink.c). */
#define LB_USER_TIMEOUT_MS 3600000u

#define LB_FAIL(r, st, ...) ((r)->status = (st), snprintf((r)->why, sizeof (r)->why, __VA_ARGS__))

/* What an interface-wide counter of the kernel's says in this namespace
 * (fresh for the run, so they start at 0). */
static void read_kstats(struct lb_kstats *k)
{
    k->retrans = jkt_kernel_stat("Tcp", "RetransSegs");
    k->timeouts = jkt_kernel_stat("TcpExt", "TCPTimeouts");
    k->probes = jkt_kernel_stat("TcpExt", "TCPLossProbes");
    k->recoveries = jkt_kernel_stat("TcpExt", "TCPSackRecovery");
    k->spurious_rto = jkt_kernel_stat("TcpExt", "TCPSpuriousRTOs");
    long u[4] = {jkt_kernel_stat("TcpExt", "TCPLossUndo"), jkt_kernel_stat("TcpExt", "TCPFullUndo"),
                 jkt_kernel_stat("TcpExt", "TCPPartialUndo"), jkt_kernel_stat("TcpExt", "TCPDSACKUndo")};
    k->undo = 0;
    for (int i = 0; i < 4; i++)
        k->undo += u[i] > 0 ? u[i] : 0;
}

static double since_s(uint64_t t0)
{
    return (double)(jkt_now_us() - t0) / 1e6;
}

/* The controller is set on the adapter, so connections made after it get
 * it; read back, because a library that knows only "on" (1) takes any
 * non-zero value as that. 0, or LB_NA in r. */
static int set_cc(jktcp_adapter *a, long v, struct lb_result *r)
{
    long got = -1;
    int rc = jktcp_adapter_set_option(a, JKTCP_OPT_CONGESTION, v);
    if (rc < 0)
        return LB_FAIL(r, LB_NA, "JKTCP_OPT_CONGESTION %ld: %s", v, jktcp_strerror(rc)), -1;
    if (jktcp_adapter_get_option(a, JKTCP_OPT_CONGESTION, &got) == 0 && got != v)
        return LB_FAIL(r, LB_NA, "JKTCP_OPT_CONGESTION %ld reads back as %ld", v, got), -1;
    return 0;
}

int lb_jktcp_cc_check(long v, char *why, size_t cap)
{
    int sv[2];
    jktcp_transport *t;
    jktcp_adapter *a;
    struct lb_result r = {0};
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return snprintf(why, cap, "socketpair: %s", strerror(errno)), -1;
    int rc = jktcp_transport_fd(sv[0], JKTCP_FRAMING_PACKET, &t);
    if (rc == 0)
        rc = jktcp_adapter_new(t, JKT_LOCAL_IP4, JKT_KERNEL_IP4, &a);
    if (rc == 0) {
        rc = set_cc(a, v, &r);
        jktcp_adapter_free(a);
    } else {
        snprintf(r.why, sizeof r.why, "adapter: %s", jktcp_strerror(rc));
    }
    close(sv[0]);
    close(sv[1]);
    if (rc != 0)
        snprintf(why, cap, "%s", r.why);
    return rc ? -1 : 0;
}

/* Write the pattern, then shut down, until the sink has every byte. */
static void upload(jktcp_adapter *a, jktcp_conn *c, struct jkt_server *sink,
                   const struct lb_params *p, uint64_t t0, struct lb_result *r)
{
    uint8_t *buf = malloc(LB_CHUNK);
    uint64_t sent = 0, end = t0 + (uint64_t)p->limit_s * 1000000u;
    bool shut = false;
    int err = buf ? 0 : -ENOMEM;
    while (!err && atomic_load(&sink->bytes_in) < p->bytes) {
        bool progress = false;
        if (sent < p->bytes) {
            size_t n = p->bytes - sent > LB_CHUNK ? LB_CHUNK : (size_t)(p->bytes - sent);
            jkt_pattern_fill(buf, n, sent, LB_SEED_UP);
            ssize_t w = jktcp_conn_write(c, buf, n, 0);
            if (w > 0)
                sent += (uint64_t)w, progress = true;
            else if (w != -EAGAIN)
                err = (int)w;
        } else if (!shut) {
            err = jktcp_conn_shutdown(c);
            shut = true;
        } else {
            err = jktcp_conn_error(c);
        }
        /* once all is sent, the sink's last read is what ends the clock:
         * look more often than the 10 ms that no input would take */
        if (!progress && !err)
            err = jktcp_adapter_poll(a, shut ? 1 : 10) < 0 ? -ENETDOWN : 0;
        if (!err && jkt_now_us() > end)
            err = -ETIME;
    }
    r->secs = since_s(t0);
    r->bytes = atomic_load(&sink->bytes_in);
    if (err == -ETIME)
        r->status = LB_LIMIT;
    else if (err)
        LB_FAIL(r, LB_ERR, "upload: %s after %" PRIu64 " B written", jktcp_strerror(err), sent);
    free(buf);
}

/* Read and check the pattern until every byte is in, then the EOF. */
static void download(jktcp_adapter *a, jktcp_conn *c, const struct lb_params *p, uint64_t t0,
                     struct lb_result *r)
{
    uint8_t *buf = malloc(LB_CHUNK);
    uint64_t got = 0, bad = UINT64_MAX, end = t0 + (uint64_t)p->limit_s * 1000000u;
    int err = buf ? 0 : -ENOMEM;
    bool eof = false;
    while (!err && !eof) {
        if (jkt_now_us() > end) {
            err = -ETIME;
            break;
        }
        ssize_t n = jktcp_conn_read(c, buf, LB_CHUNK, 0);
        if (n > 0) {
            size_t m = jkt_pattern_check(buf, (size_t)n, got, LB_SEED_DOWN);
            if (m != (size_t)n && bad == UINT64_MAX)
                bad = got + m;
            got += (uint64_t)n;
            if (got >= p->bytes && r->secs == 0) /* the clock stops here; the EOF follows */
                r->secs = since_s(t0), r->bytes = got;
            continue;
        }
        if (n == 0)
            eof = true;
        else if (n != -EAGAIN)
            err = (int)n;
        else if (jktcp_adapter_poll(a, 10) < 0)
            err = -ENETDOWN;
    }
    if (r->secs == 0)
        r->secs = since_s(t0), r->bytes = got;
    if (bad != UINT64_MAX)
        LB_FAIL(r, LB_ERR, "DATA CORRUPTION: byte %" PRIu64 " of the download", bad);
    else if (err == -ETIME && got < p->bytes)
        r->status = LB_LIMIT;
    else if (err && err != -ETIME)
        LB_FAIL(r, LB_ERR, "download: %s after %" PRIu64 " B", jktcp_strerror(err), got);
    else if (got != p->bytes)
        LB_FAIL(r, LB_ERR, "download: %" PRIu64 " B, not %" PRIu64, got, p->bytes);
    free(buf);
}

/* What the sink and the source say about the transfer, once stopped (a
 * source that could not take its congestion control sent with another:
 * the run does not count). */
static void check_server(const struct jkt_server *s, const struct lb_params *p,
                         const struct lb_sender *snd, struct lb_result *r)
{
    if (!snd->kernel && atomic_load(&s->mismatches)) /* whatever else happened */
        LB_FAIL(r, LB_ERR, "DATA CORRUPTION: byte %" PRIu64 " of the upload", s->first_mismatch);
    else if (r->status != LB_OK)
        return;
    else if (snd->kernel && s->error == ENOENT)
        LB_FAIL(r, LB_NA, "the kernel has no congestion control %s", snd->k_cc);
    else if (snd->kernel && s->error)
        LB_FAIL(r, LB_ERR, "kernel source: %s (TCP_CONGESTION %s?)", strerror(s->error), snd->k_cc);
    else if (!snd->kernel && atomic_load(&s->bytes_in) != p->bytes)
        LB_FAIL(r, LB_ERR, "sink read %lu B, not %" PRIu64,
                (unsigned long)atomic_load(&s->bytes_in), p->bytes);
}

static void transfer(jktcp_adapter *a, const struct lb_sender *s, const struct lb_params *p,
                     struct lb_result *r)
{
    struct jkt_server srv = {.family = AF_INET, .user_timeout_ms = LB_USER_TIMEOUT_MS};
    if (s->kernel)
        srv.kind = JKT_SRV_SOURCE, srv.nbytes = p->bytes, srv.seed = LB_SEED_DOWN, srv.cc = s->k_cc;
    else
        srv.kind = JKT_SRV_SINK, srv.verify = true, srv.in_seed = LB_SEED_UP;
    int rc = jkt_server_start(&srv);
    if (rc < 0) {
        LB_FAIL(r, LB_ERR, "kernel server: %s", strerror(-rc));
        return;
    }
    jktcp_conn *c;
    uint64_t t0 = jkt_now_us();
    rc = jktcp_conn_connect(a, srv.port, p->limit_s * 1000, &c);
    if (rc < 0) {
        LB_FAIL(r, LB_ERR, "connect: %s", jktcp_strerror(rc));
        jkt_server_stop(&srv);
        return;
    }
    if (s->kernel)
        download(a, c, p, t0, r);
    else
        upload(a, c, &srv, p, t0, r);
    jktcp_conn_info(c, &r->info, sizeof r->info);
    read_kstats(&r->k);
    jktcp_conn_close(c);
    jktcp_adapter_flush(a, 2000); /* a clean close if it comes quickly; not timed */
    jkt_server_stop(&srv);
    check_server(&srv, p, s, r);
}

void lb_run(const struct lb_sender *s, const struct lb_params *p, struct lb_result *r)
{
    memset(r, 0, sizeof *r);
    struct jkt_tun tun;
    char out[512] = "";
    int rc = jkt_tun_open("jkt0", 1500, JKT_FAM_IPV4, &tun);
    if (rc < 0) {
        LB_FAIL(r, LB_ERR, "TUN: %s", strerror(-rc));
        return;
    }
    /* the kernel's default congestion control is left alone: a kernel
     * sender's is set on its socket (jkt_server.cc) */
    rc = jkt_lossy_kernel(&tun, NULL, out, sizeof out);
    jktcp_fault_config cfg = {.in = loss_faults(p->loss), .out = loss_faults(p->loss),
                              .seed = p->seed};
    jktcp_transport *ft;
    jktcp_adapter *a = NULL;
    if (rc != 0)
        LB_FAIL(r, LB_ERR, "kernel tuning (status %d): %.90s", rc, out);
    else if ((rc = jkt_lossy_adapter(tun.fd, &cfg, &ft, &a)) < 0)
        LB_FAIL(r, LB_ERR, "lossy adapter: %s", jktcp_strerror(rc));
    else if (s->kernel || set_cc(a, s->jk_cc, r) == 0)
        transfer(a, s, p, r);
    jktcp_adapter_free(a);
    jkt_tun_close(&tun);
}
