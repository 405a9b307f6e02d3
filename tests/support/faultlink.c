/* SPDX-License-Identifier: MIT */
/* The fault suite's back-to-back link (see faultlink.h). */
#include "faultlink.h"

#include "netns.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t seed_or(uint64_t dflt)
{
    const char *e = getenv("JKTCP_FAULT_SEED");
    return e && *e ? strtoull(e, NULL, 0) : dflt;
}

void msleep(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Write send_bytes, shutdown, read recv_bytes and EOF, verifying. */
void run_xfer(jktcp_adapter *a, jktcp_conn *c, struct xfer *x)
{
    uint8_t *wb = malloc(CHUNK), *rb = malloc(CHUNK);
    uint64_t t0 = jkt_now_us(), end = t0 + (uint64_t)x->timeout_ms * 1000u;
    bool shut = false, eof = false;
    x->mismatch = UINT64_MAX;
    x->err = 0;
    while (!(shut && eof)) {
        bool progress = false;
        if (x->sent < x->send_bytes) {
            size_t n = x->send_bytes - x->sent > CHUNK ? CHUNK : (size_t)(x->send_bytes - x->sent);
            jkt_pattern_fill(wb, n, x->sent, x->send_seed);
            ssize_t w = jktcp_conn_write(c, wb, n, 0);
            if (w > 0) {
                x->sent += (uint64_t)w;
                progress = true;
            } else if (w != -EAGAIN) {
                x->err = (int)w;
                break;
            }
        } else if (!shut) {
            int r = jktcp_conn_shutdown(c);
            if (r < 0) {
                x->err = r;
                break;
            }
            shut = true;
        }
        if (!eof) {
            ssize_t n = jktcp_conn_read(c, rb, CHUNK, 0);
            if (n > 0) {
                size_t k = jkt_pattern_check(rb, (size_t)n, x->got, x->recv_seed);
                if (k != (size_t)n && x->mismatch == UINT64_MAX)
                    x->mismatch = x->got + k;
                x->got += (uint64_t)n;
                progress = true;
            } else if (n == 0) {
                eof = true;
            } else if (n != -EAGAIN) {
                x->err = (int)n;
                break;
            }
        }
        if (jkt_now_us() > end) {
            x->err = -ETIME;
            break;
        }
        if (!progress) {
            int r = jktcp_adapter_poll(a, 10);
            if (r < 0) {
                x->err = r;
                break;
            }
        }
    }
    x->secs = (double)(jkt_now_us() - t0) / 1e6;
    jktcp_conn_info(c, &x->info, sizeof x->info);
    free(wb);
    free(rb);
}

void set_fast(jktcp_adapter *a, long rto_min, long retries, long rto_max)
{
    int rc = jkt_fast_rto(a, rto_min, retries, rto_max);
    cr_assert_eq(rc, 0, "set_fast: %s", jktcp_strerror(rc));
}

void print_info(const char *tag, const jktcp_info *n)
{
    fprintf(stderr,
            "  %s conn %u->%u: %s rexmit %u rto %u tlp %u recoveries %u; srtt %u us rto %u us"
            " cwnd %u ssthresh %u snd_wnd %u rcv_wnd %u queued %" PRIu64 "\n",
            tag, n->local_port, n->remote_port, jktcp_state_name(n->state), n->retransmits, n->timeouts, n->tail_probes,
            n->recoveries, n->srtt_us, n->rto_us, n->cwnd, n->ssthresh, n->snd_wnd,
            n->rcv_wnd, n->bytes_queued);
}

void print_fault_stats(const char *tag, jktcp_transport *t)
{
    jktcp_fault_stats s;
    if (jktcp_transport_fault_stats(t, &s, sizeof s) < 0)
        return;
    fprintf(stderr,
            "  %s faults in: frames %" PRIu64 " dropped %" PRIu64 " dup %" PRIu64
            " reord %" PRIu64 " corrupt %" PRIu64 " trunc %" PRIu64 " delay %" PRIu64
            " blackout %" PRIu64 " poolfull %" PRIu64 "\n",
            tag, s.in.frames, s.in.dropped, s.in.duplicated, s.in.reordered, s.in.corrupted,
            s.in.truncated, s.in.delayed, s.in.blackout, s.in.pool_full);
    fprintf(stderr,
            "  %s faults out: frames %" PRIu64 " dropped %" PRIu64 " dup %" PRIu64
            " reord %" PRIu64 " corrupt %" PRIu64 " trunc %" PRIu64 " delay %" PRIu64
            " blackout %" PRIu64 " poolfull %" PRIu64 "\n",
            tag, s.out.frames, s.out.dropped, s.out.duplicated, s.out.reordered, s.out.corrupted,
            s.out.truncated, s.out.delayed, s.out.blackout, s.out.pool_full);
}

void print_adapter(const char *tag, jktcp_adapter *a)
{
    jktcp_stats st;
    if (jktcp_adapter_stats(a, &st, sizeof st) < 0)
        return;
    fprintf(stderr,
            "  %s adapter: frames in %" PRIu64 " out %" PRIu64 " retransmits %" PRIu64
            " drop_checksum %" PRIu64 " drop_length %" PRIu64 " drop_short %" PRIu64
            " drop_invalid %" PRIu64 " rst_sent %" PRIu64 "\n",
            tag, st.frames_in, st.frames_out, st.retransmits, st.drop_checksum, st.drop_length,
            st.drop_short, st.drop_invalid, st.rst_sent);
}

void b2b_fault_link(struct b2b_link *l, const jktcp_fault_config *cfg_s,
                    const jktcp_fault_config *cfg_c, struct b2b_link_flaky *fl_s,
                    struct b2b_link_flaky *fl_c)
{
    struct b2b_link_opts o = {.medium = B2B_LINK_SOCKETPAIR,
                              .a = {.faults = cfg_c, .flaky = fl_c},
                              .b = {.faults = cfg_s, .flaky = fl_s}};
    char ps[512], pc[512];
    const char *pre = getenv("JKTCP_FAULT_PCAP");
    if (pre && *pre) {
        snprintf(ps, sizeof ps, "%s-server.pcap", pre);
        snprintf(pc, sizeof pc, "%s-client.pcap", pre);
        o.b.pcap = ps;
        o.a.pcap = pc;
    }
    int r = b2b_link_up(l, &o);
    cr_assert_eq(r, 0, "link: %s", jktcp_strerror(r));
}

void b2b_up(struct b2b *b, const jktcp_fault_config *cfg_s, const jktcp_fault_config *cfg_c,
            struct b2b_link_flaky *fl_s, struct b2b_link_flaky *fl_c)
{
    memset(b, 0, sizeof *b);
    b2b_fault_link(&b->link, cfg_s, cfg_c, fl_s, fl_c);
    b->s.a = b->link.b.ad;
    b->s.ft = b->link.b.ft;
    b->s.server = true;
    b->c.a = b->link.a.ad;
    b->c.ft = b->link.a.ft;
    cr_assert_eq(jktcp_adapter_listen(b->s.a, B2B_PORT, 16, &b->s.l), 0);
}

static void *b2b_thread(void *arg)
{
    struct b2b_side *sd = arg;
    jktcp_conn *c = NULL;
    int r;
    if (sd->server)
        r = jktcp_adapter_accept(sd->l, 10000, &c);
    else
        r = jktcp_conn_connect(sd->a, B2B_PORT, 10000, &c);
    if (r < 0) {
        sd->setup_err = r;
        atomic_store(&sd->done, true);
        return NULL;
    }
    if (sd->read_block_ms) {
        uint8_t b[100];
        sd->block_result = jktcp_conn_read(c, b, sizeof b, sd->read_block_ms);
    } else {
        run_xfer(sd->a, c, &sd->x);
    }
    jktcp_conn_info(c, &sd->x.info, sizeof sd->x.info);
    jktcp_conn_close(c);
    atomic_store(&sd->done, true);
    /* The other side may still need this one's retransmissions (its data,
     * or the ACKs and FIN it is waiting for): keep the adapter moving. */
    while (!atomic_load(sd->stop))
        if (jktcp_adapter_poll(sd->a, 10) < 0)
            msleep(10);
    return NULL;
}

void b2b_start(struct b2b *b, pthread_t th[2])
{
    atomic_store(&b->stop, false);
    b->s.stop = b->c.stop = &b->stop;
    cr_assert_eq(pthread_create(&th[0], NULL, b2b_thread, &b->s), 0);
    cr_assert_eq(pthread_create(&th[1], NULL, b2b_thread, &b->c), 0);
}

/* Join within limit_ms (the test fails rather than hangs). */
void b2b_join(struct b2b *b, pthread_t th[2], int limit_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)limit_ms * 1000u;
    while ((!atomic_load(&b->s.done) || !atomic_load(&b->c.done)) && jkt_now_us() < end)
        msleep(5);
    bool both = atomic_load(&b->s.done) && atomic_load(&b->c.done);
    atomic_store(&b->stop, true);
    if (both) {
        pthread_join(th[0], NULL);
        pthread_join(th[1], NULL);
    }
    cr_assert(both,
              "seed %" PRIu64 ": adapters still running after %d ms (server sent %" PRIu64
              " got %" PRIu64 ", client sent %" PRIu64 " got %" PRIu64 ")",
              b->seed, limit_ms, b->s.x.sent, b->s.x.got, b->c.x.sent, b->c.x.got);
}

void b2b_down(struct b2b *b)
{
    b2b_link_down(&b->link);
}

void b2b_report(const char *name, struct b2b *b)
{
    fprintf(stderr,
            "fault/%s seed %" PRIu64 ": client->server %" PRIu64 " B, server->client %" PRIu64
            " B in %.2f s; retransmits client %u server %u; srtt %u/%u us\n",
            name, b->seed, b->c.x.sent, b->s.x.sent,
            b->c.x.secs > b->s.x.secs ? b->c.x.secs : b->s.x.secs, b->c.x.info.retransmits,
            b->s.x.info.retransmits, b->c.x.info.srtt_us, b->s.x.info.srtt_us);
    print_info("client", &b->c.x.info);
    print_info("server", &b->s.x.info);
    print_fault_stats("client", b->c.ft);
    print_fault_stats("server", b->s.ft);
    print_adapter("client", b->c.a);
    print_adapter("server", b->s.a);
}

void b2b_check(struct b2b *b, struct b2b_side *sd, const char *who)
{
    cr_assert_eq(sd->setup_err, 0, "seed %" PRIu64 ": %s setup: %s", b->seed, who,
                 jktcp_strerror(sd->setup_err));
    cr_assert_eq(sd->x.err, 0, "seed %" PRIu64 ": %s transfer ended with %s (sent %" PRIu64
                 " got %" PRIu64 ")", b->seed, who, jktcp_strerror(sd->x.err), sd->x.sent, sd->x.got);
    cr_assert_eq(sd->x.mismatch, UINT64_MAX, "seed %" PRIu64 ": %s DATA CORRUPTION at offset %" PRIu64,
                 b->seed, who, sd->x.mismatch);
    cr_assert_eq(sd->x.sent, sd->x.send_bytes);
    cr_assert_eq(sd->x.got, sd->x.recv_bytes, "seed %" PRIu64 ": %s got %" PRIu64 " of %" PRIu64,
                 b->seed, who, sd->x.got, sd->x.recv_bytes);
}

void b2b_xfer_setup(struct b2b *b, uint64_t bytes, int timeout_ms)
{
    b->c.x = (struct xfer){.send_bytes = bytes, .recv_bytes = bytes, .send_seed = 11,
                           .recv_seed = 22, .timeout_ms = timeout_ms};
    b->s.x = (struct xfer){.send_bytes = bytes, .recv_bytes = bytes, .send_seed = 22,
                           .recv_seed = 11, .timeout_ms = timeout_ms};
}

/* Ping-pong through the kernel echo server: write a chunk, read it back. */
static void *hstream_thread(void *arg)
{
    struct hstream *hs = arg;
    jktcp_stream s;
    hs->mismatch = UINT64_MAX;
    hs->err = jktcp_handle_connect(hs->h, hs->port, 20000, &s);
    if (hs->err)
        return NULL;
    uint8_t *wb = malloc(HCHUNK), *rb = malloc(HCHUNK);
    uint64_t off = 0;
    while (off < hs->bytes && !hs->err) {
        size_t n = hs->bytes - off > HCHUNK ? HCHUNK : (size_t)(hs->bytes - off);
        jkt_pattern_fill(wb, n, off, hs->seed);
        ssize_t w = jktcp_stream_write_all(s, wb, n, 30000);
        if (w != (ssize_t)n) {
            hs->err = w < 0 ? (int)w : -EIO;
            break;
        }
        size_t got = 0;
        while (got < n) {
            ssize_t r = jktcp_stream_read(s, rb + got, n - got, 30000);
            if (r <= 0) {
                hs->err = r < 0 ? (int)r : -ECONNRESET;
                break;
            }
            got += (size_t)r;
        }
        if (hs->err)
            break;
        size_t k = jkt_pattern_check(rb, n, off, hs->seed);
        if (k != n && hs->mismatch == UINT64_MAX)
            hs->mismatch = off + k;
        off += n;
        hs->echoed = off;
    }
    jktcp_stream_info(s, &hs->info, sizeof hs->info);
    jktcp_stream_close(s);
    free(wb);
    free(rb);
    return NULL;
}

/* 32 client threads, each echoing `per_stream` bytes through port. */
void run_32_clients(const char *name, jktcp_handle h, uint16_t port, uint64_t per_stream,
                    uint64_t seed, jktcp_transport *ft)
{
    static struct hstream hs[HSTREAMS];
    pthread_t th[HSTREAMS];
    uint64_t t0 = jkt_now_us();
    for (int i = 0; i < HSTREAMS; i++) {
        hs[i] = (struct hstream){.h = h, .port = port, .bytes = per_stream,
                                 .seed = 400u + (uint32_t)i};
        cr_assert_eq(pthread_create(&th[i], NULL, hstream_thread, &hs[i]), 0);
    }
    uint32_t rexmit = 0, rto = 0;
    for (int i = 0; i < HSTREAMS; i++) {
        pthread_join(th[i], NULL);
        rexmit += hs[i].info.retransmits;
        rto += hs[i].info.timeouts;
    }
    double dt = (double)(jkt_now_us() - t0) / 1e6;
    jktcp_stats st;
    jktcp_handle_stats(h, &st, sizeof st);
    fprintf(stderr,
            "fault/%s seed %" PRIu64 ": %d streams x %" PRIu64 " KiB echoed "
            "(%.1f MiB each way) in %.2f s; stream retransmits %u (timeouts %u), adapter "
            "retransmits %" PRIu64 ", io wakeups %" PRIu64 "\n",
            name, seed, HSTREAMS, per_stream / 1024, HSTREAMS * per_stream / 1048576.0, dt,
            rexmit, rto, st.retransmits, st.io_wakeups);
    print_fault_stats("client", ft);
    for (int i = 0; i < HSTREAMS; i++)
        if (hs[i].err) {
            char tag[48];
            snprintf(tag, sizeof tag, "failed stream %d", i);
            print_info(tag, &hs[i].info);
        }
    for (int i = 0; i < HSTREAMS; i++) {
        cr_expect_eq(hs[i].err, 0, "seed %" PRIu64 ": stream %d failed after %" PRIu64 " B: %s",
                     seed, i, hs[i].echoed, jktcp_strerror(hs[i].err));
        cr_expect_eq(hs[i].mismatch, UINT64_MAX, "seed %" PRIu64 ": stream %d DATA CORRUPTION at %" PRIu64,
                     seed, i, hs[i].mismatch);
        cr_expect_eq(hs[i].echoed, per_stream, "seed %" PRIu64 ": stream %d echoed %" PRIu64, seed,
                     i, hs[i].echoed);
    }
}
