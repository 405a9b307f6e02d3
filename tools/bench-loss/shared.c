/* SPDX-License-Identifier: MIT */
/*
 * jktcp-bench-loss's shared-link cases (issue 12): several jktcp flows on
 * one single-threaded adapter, each uploading to a verifying kernel sink of
 * its own over the lossy link of tests/support/lossylink.h, all at once for
 * a fixed time.
 *
 * - bottleneck: the fault transport's link (jktcp_fault_link) caps the
 *   upload at 100 Mbit/s behind a 256 KiB drop-tail queue, 10 ms each way
 *   (RTT 20 ms; the ACK path has the delay but no rate), no random loss.
 *   Alone, a flow should fill the rate with the queue's delay bounded;
 *   two flows with different controllers show each one's share.
 * - bottleneck with a kernel flow (kernel_cc): the same link, shared with
 *   one Linux kernel TCP upload (kshare.c: the link is driven by a switch
 *   thread that both senders' frames pass through); with nflows 0, the
 *   kernel flow alone through it (the reference for what it gets).
 * - fairness: 8 flows with the default controller over loss_faults(p).
 */
#include "loss.h"

#include "kserver.h"
#include "lossylink.h"
#include "netns.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SH_CHUNK (16u * 1024u)
#define SH_SEED 41         /* the pattern every flow uploads (from its offset 0) */
#define SH_SAMPLE_US 50000 /* srtt sampling period */
#define SH_USER_TIMEOUT_MS 3600000u

#define SH_FAIL(r, ...) ((r)->status = LB_ERR, snprintf((r)->why, sizeof (r)->why, __VA_ARGS__))

struct flow {
    struct jkt_server sink;
    jktcp_conn *c;
    uint64_t sent;
    bool failed;
    double srtt_sum_ms;
    unsigned samples;
};

static jktcp_fault_config link_config(const struct lb_shared_case *c)
{
    jktcp_fault_config cfg = {.seed = c->seed};
    if (c->bottleneck) {
        cfg.link_out = (jktcp_fault_link){.rate_bps = LB_BN_RATE_BPS, .delay_us = LB_BN_DELAY_US,
                                          .queue_bytes = LB_BN_QUEUE};
        /* the ACKs come back after the same delay; they are not rate-bound
         * (the 256 KiB default is the delay line's room: 10 ms of ACKs of
         * a 100 Mbit/s flow is well under 100 KiB) */
        cfg.link_in = (jktcp_fault_link){.delay_us = LB_BN_DELAY_US};
    } else {
        cfg.in = loss_faults(c->loss);
        cfg.out = loss_faults(c->loss);
    }
    return cfg;
}

/* Flow i's sink, then its connection with its controller (set on the
 * adapter, so the connection made next takes it). */
static int open_flow(jktcp_adapter *a, const struct lb_shared_case *c, int i, struct flow *f,
                     struct lb_shared_result *r)
{
    f->sink = (struct jkt_server){.kind = JKT_SRV_SINK, .family = AF_INET, .verify = true,
                                  .in_seed = SH_SEED, .user_timeout_ms = SH_USER_TIMEOUT_MS};
    int rc = jkt_server_start(&f->sink);
    if (rc < 0)
        return SH_FAIL(r, "kernel sink %d: %s", i, strerror(-rc)), -1;
    rc = jktcp_adapter_set_option(a, JKTCP_OPT_CONGESTION, c->cc[i]);
    if (rc == 0)
        rc = jktcp_conn_connect(a, f->sink.port, 10000, &f->c);
    if (rc < 0) {
        jkt_server_stop(&f->sink);
        f->c = NULL;
        return SH_FAIL(r, "flow %d: connect: %s", i, jktcp_strerror(rc)), -1;
    }
    return 0;
}

/* Fill flow f's send buffer with the pattern from where it stands. */
static void feed(struct flow *f, uint8_t *buf)
{
    for (int k = 0; k < 64 && !f->failed; k++) { /* bounded: the others' turn comes */
        jkt_pattern_fill(buf, SH_CHUNK, f->sent, SH_SEED);
        ssize_t w = jktcp_conn_write(f->c, buf, SH_CHUNK, 0);
        if (w == -EAGAIN)
            return;
        if (w < 0)
            f->failed = true;
        else
            f->sent += (uint64_t)w;
    }
}

static void sample(struct flow *fl, int n)
{
    for (int i = 0; i < n; i++) {
        jktcp_info in;
        if (jktcp_conn_info(fl[i].c, &in, sizeof in) == 0 && in.srtt_us) {
            fl[i].srtt_sum_ms += in.srtt_us / 1000.0;
            fl[i].samples++;
            if (getenv("LB_TRACE") && fl[i].samples % 10 == 0)
                fprintf(stderr, "flow %d: srtt %.1f ms cwnd %u rate %.1f pace %.1f Mbit/s rexmit %u rec %u q %llu\n", i,
                        in.srtt_us / 1000.0, in.cwnd, in.delivery_rate * 8 / 1e6, in.pacing_rate * 8 / 1e6,
                        in.retransmits, in.recoveries, (unsigned long long)in.bytes_queued);
        }
    }
}

/* Every flow writes as fast as its connection takes it, until secs are up.
 * The srtt samples' maximum is kept in r as they come. */
static void pump(jktcp_adapter *a, struct lb_kshare *ks, const struct lb_shared_case *c,
                 struct flow *fl, struct lb_shared_result *r)
{
    uint8_t *buf = malloc(SH_CHUNK);
    if (!buf) {
        SH_FAIL(r, "out of memory");
        return;
    }
    uint64_t t0 = jkt_now_us(), end = t0 + (uint64_t)c->secs * 1000000u, next = t0;
    if (ks)
        lb_kshare_go(ks);
    while (r->status == LB_OK && jkt_now_us() < end) {
        for (int i = 0; i < c->nflows; i++)
            feed(&fl[i], buf);
        if (jktcp_adapter_poll(a, 5) < 0)
            SH_FAIL(r, "the adapter's transport failed");
        if (jkt_now_us() >= next) {
            sample(fl, c->nflows);
            if (ks)
                lb_kshare_sample(ks);
            for (int i = 0; i < c->nflows; i++) {
                jktcp_info in;
                if (jktcp_conn_info(fl[i].c, &in, sizeof in) == 0 &&
                    in.srtt_us / 1000.0 > r->f[i].srtt_max_ms)
                    r->f[i].srtt_max_ms = in.srtt_us / 1000.0;
            }
            next += SH_SAMPLE_US;
        }
    }
    r->secs = (double)(jkt_now_us() - t0) / 1e6;
    if (ks)
        lb_kshare_result(ks, r->secs, &r->f[c->nflows]);
    for (int i = 0; i < c->nflows; i++) {
        struct lb_flow_result *o = &r->f[i];
        o->bytes = atomic_load(&fl[i].sink.bytes_in);
        o->mbit_s = (double)o->bytes * 8 / r->secs / 1e6;
        o->srtt_mean_ms = fl[i].samples ? fl[i].srtt_sum_ms / fl[i].samples : 0;
        if (fl[i].failed && r->status == LB_OK)
            SH_FAIL(r, "flow %d: write failed: %s", i, jktcp_strerror(jktcp_conn_error(fl[i].c)));
    }
    free(buf);
}

/* Counters, then close everything; what a sink saw is known only once it
 * has stopped. */
static void finish(jktcp_adapter *a, jktcp_transport *ft, struct lb_kshare *ks,
                   struct flow *fl, int opened, struct lb_shared_result *r)
{
    jktcp_fault_stats st;
    if (ks)
        lb_kshare_link(ks, &r->link);
    else if (jktcp_transport_fault_stats(ft, &st, sizeof st) == 0)
        r->link = st.link_out;
    for (int i = 0; i < opened; i++) {
        jktcp_info in;
        if (jktcp_conn_info(fl[i].c, &in, sizeof in) == 0)
            r->f[i].retransmits = in.retransmits, r->f[i].timeouts = in.timeouts;
        jktcp_conn_abort(fl[i].c); /* the time is up: no need to drain the buffers */
    }
    jktcp_adapter_flush(a, 500);
    for (int i = 0; i < opened; i++) {
        jkt_server_stop(&fl[i].sink);
        r->f[i].bad_data = atomic_load(&fl[i].sink.mismatches) != 0;
        if (r->f[i].bad_data && r->status == LB_OK)
            SH_FAIL(r, "DATA CORRUPTION: flow %d, byte %" PRIu64, i, fl[i].sink.first_mismatch);
    }
}

void lb_shared_run(const struct lb_shared_case *c, struct lb_shared_result *r)
{
    memset(r, 0, sizeof *r);
    struct jkt_tun tun;
    char out[512] = "";
    int rc = jkt_tun_open("jkt0", 1500, JKT_FAM_IPV4, &tun);
    if (rc < 0) {
        SH_FAIL(r, "TUN: %s", strerror(-rc));
        return;
    }
    rc = jkt_lossy_kernel(&tun, NULL, out, sizeof out);
    jktcp_fault_config cfg = link_config(c);
    jktcp_transport *ft = NULL;
    jktcp_adapter *a = NULL;
    struct lb_kshare *ks = NULL;
    struct flow fl[LB_MAX_FLOWS];
    int opened = 0;
    memset(fl, 0, sizeof fl);
    if (rc != 0)
        SH_FAIL(r, "kernel tuning (status %d): %.90s", rc, out);
    else if (c->kernel_cc[0])
        r->status = lb_kshare_open(&tun, &cfg, c->kernel_cc, &ks, &a, r->why, sizeof r->why);
    else if ((rc = jkt_lossy_adapter(tun.fd, &cfg, &ft, &a)) < 0)
        SH_FAIL(r, "lossy adapter: %s", jktcp_strerror(rc));
    while (r->status == LB_OK && opened < c->nflows && open_flow(a, c, opened, &fl[opened], r) == 0)
        opened++;
    if (r->status == LB_OK)
        pump(a, ks, c, fl, r);
    if (a)
        finish(a, ft, ks, fl, opened, r);
    jktcp_adapter_free(a);
    if (ks) {
        char why[sizeof r->why];
        int st = lb_kshare_close(ks, &r->f[c->nflows], &r->sw, why, sizeof why);
        if (st != LB_OK && r->status == LB_OK)
            r->status = st, snprintf(r->why, sizeof r->why, "%s", why);
    }
    jkt_tun_close(&tun);
}

int lb_case_flows(const struct lb_shared_case *c)
{
    return c->nflows + (c->kernel_cc[0] ? 1 : 0);
}
