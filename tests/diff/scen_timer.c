/* SPDX-License-Identifier: MIT */
/*
 * Differential scenarios: timers (RFC 6298 retransmission timeout and
 * back-off, RFC 8985 tail-loss probe, RFC 5681 fast retransmit, RFC 9293
 * §3.8.6.1 zero-window probing, RFC 1122 §4.2.3.6 keepalive).
 *
 * Timing is recorded only in coarse buckets (span, ratio) wide enough for
 * both systems' timer granularity; the segments themselves are recorded in
 * order. The kernel's RTO is about 200 ms + SRTT after a fast handshake,
 * jktcp's max(200 ms, SRTT + 4 RTTVAR); a single unacknowledged segment
 * is probed again after ~200 ms by the kernel (PTO = 2 SRTT + 200 ms,
 * capped by the RTO) and after 2 SRTT + 42 ms by jktcp: both fall in the
 * same buckets.
 */
#include "diff.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char zeros[8192];

/* "within lo-hi s" for ms in [lo, hi], else which side it fell. */
static const char *span(double ms, double lo, double hi)
{
    static __thread char b[64];
    if (ms < lo)
        snprintf(b, sizeof b, "before %.2f s", lo / 1000);
    else if (ms > hi)
        snprintf(b, sizeof b, "after %.2f s", hi / 1000);
    else
        snprintf(b, sizeof b, "within %.2f-%.2f s", lo / 1000, hi / 1000);
    return b;
}

/* A ratio of two gaps, bucketed wide enough that a loaded machine's
 * jitter (a late first resend shortens the ratio) keeps a doubling a
 * doubling: the question is only "constant, or doubling?". */
static const char *ratio(double r)
{
    if (r < 0.8)
        return "shrinks";
    if (r < 1.4)
        return "about 1x";
    return r <= 3.0 ? "about 2x" : "over 3x";
}

/* Passive open whose handshake takes rtt_ms: both systems time their
 * SYN-ACK, so the estimate puts the tail-loss probe ~2 RTT out and the
 * scenario has that long to act before any timer. */
static void open_slow(struct dx *x, int rtt_ms, const struct dx_opt *o)
{
    struct dx_opt d = dx_syn_opts(x);
    dx_listen(x, 16);
    dx_send(x, JK_SYN, 0, 0, NULL, 0, o ? o : &d);
    const struct dx_seg *g = dx_next(x, 2000);
    if (!g || g->s.flags != (JK_SYN | JK_ACK))
        dx_fail(x, "no SYN-ACK (%s)", g ? dx_str(g) : "none");
    dx_sleep_ms(rtt_ms);
    dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    int r = dx_accept(x, 2000);
    if (r)
        dx_fail(x, "accept: %s", dx_errname(r));
}

/* The n segments a write of n full segments sends: "n x len" if they are
 * consecutive, else what came. */
static void note_burst(struct dx *x, const char *key, int n, uint32_t len)
{
    char acc[512] = "";
    size_t k = 0;
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const struct dx_seg *g = dx_next(x, 1000);
        if (!g) {
            ok = false;
            k += (size_t)snprintf(acc + k, sizeof acc - k, "%snone", k ? " | " : "");
            break;
        }
        if (g->seq != 1 + (uint32_t)i * len || g->s.len != len)
            ok = false;
        k += (size_t)snprintf(acc + k, sizeof acc - k, "%s%s", k ? " | " : "", dx_str(g));
    }
    if (ok)
        dx_out(x, key, "%d x %u bytes from 1", n, len);
    else
        dx_out(x, key, "%s", acc);
}

/* RFC 6298 §5.4 (RFC 8985 §7.3 may come first): a segment nobody
 * acknowledges is sent again, the same bytes, within a fraction of a
 * second; acknowledged, nothing more comes. */
DX(timer, resend_unacked, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_write(x, zeros, 100);
    const struct dx_seg *g = dx_note(x, "sent", 1000);
    if (!g)
        return;
    double t0 = g->t_ms;
    g = dx_note(x, "resent", 2000);
    if (g)
        dx_out(x, "resent after", "%s", span(g->t_ms - t0, 20, 700));
    dx_send(x, JK_ACK, 1, 101, NULL, 0, NULL);
    dx_note_all(x, "after the ack", 300);
}

/* RFC 8985 §7.3 then RFC 6298 §5.4: with three segments out and no ACK,
 * the tail-loss probe resends the last segment within ~2 RTT; the RTO
 * that follows resends the head. */
DX(timer, tail_probe_then_head, NULL, NULL, NULL)
{
    struct dx_opt o = dx_syn_opts(x);
    o.mss = 1000; /* 988 bytes of payload beside the timestamp */
    dx_open_passive(x, &o);
    dx_write(x, zeros, 3 * 988);
    note_burst(x, "sent", 3, 988);
    double t0 = dx_ms(x);
    const struct dx_seg *g = dx_note(x, "first resend", 1500);
    if (!g)
        return;
    dx_out(x, "first resend after", "%s", span(g->t_ms - t0, 0, 150));
    double t1 = g->t_ms;
    g = dx_note(x, "second resend", 1500);
    if (g)
        dx_out(x, "second resend after", "%s", span(g->t_ms - t1, 150, 700));
}

/* RFC 6298 §5.5: each timeout doubles the RTO. One segment, never
 * acknowledged: the same bytes again and again, each gap about twice the
 * one before. */
DX(timer, backoff_doubles, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_write(x, zeros, 100);
    const struct dx_seg *g = dx_note(x, "sent", 1000);
    if (!g)
        return;
    char first[128];
    snprintf(first, sizeof first, "%s", dx_str(g));
    double t[3];
    bool same = true;
    for (int i = 0; i < 3; i++) {
        g = dx_next(x, 3000);
        if (!g) {
            dx_out(x, "resend", "none after %d", i);
            return;
        }
        same = same && strcmp(dx_str(g), first) == 0;
        t[i] = g->t_ms;
    }
    dx_out(x, "resends", "%s", same ? "3, each the sent segment" : "differ from the sent one");
    dx_out(x, "gap 1", "%s", span(t[1] - t[0], 150, 700));
    dx_out(x, "gap 2 / gap 1", "%s", ratio((t[2] - t[1]) / (t[1] - t[0])));
}

/* RFC 6298 §5 (note after 5.7): a new RTT sample after the timeouts
 * collapses the backed-off RTO: new data that is lost again is resent at
 * the normal pace, not at the doubled one. */
DX(timer, backoff_undone_by_ack, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_write(x, zeros, 100);
    const struct dx_seg *g = dx_next(x, 1000);
    for (int i = 0; g && i < 2; i++) /* the probe, then one timeout */
        g = dx_next(x, 3000);
    if (!g) {
        dx_out(x, "resends", "fewer than 2");
        return;
    }
    dx_send(x, JK_ACK, 1, 101, NULL, 0, NULL); /* echoes the resend's TSval */
    dx_sleep_ms(20);
    dx_write(x, zeros, 100);
    dx_note(x, "new data", 1000);
    const struct dx_seg *a = dx_next(x, 3000);
    double ta = a ? a->t_ms : 0;
    const struct dx_seg *b = a ? dx_next(x, 3000) : NULL;
    dx_out(x, "resends", "%s", b ? "2" : "fewer than 2");
    if (b)
        dx_out(x, "gap between them", "%s", span(b->t_ms - ta, 150, 330));
}

/* RFC 9293 §3.8.3 (R2): after the retransmissions the user allowed, the
 * connection is given up and the application sees ETIMEDOUT. By design
 * jktcp tells the peer with a RST; the kernel goes silent. */
DX(timer, retries_exhausted, NULL, "reset", "jktcp sends a RST when retransmissions run out")
{
    dx_option(x, DX_O_RETRIES, 2);
    dx_open_passive(x, NULL);
    dx_write(x, zeros, 100);
    const struct dx_seg *g = dx_note(x, "sent", 1000);
    if (!g)
        return;
    char first[128], rst[128] = "none", app[64] = "alive";
    snprintf(first, sizeof first, "%s", dx_str(g));
    double t0 = g->t_ms;
    bool same = true, dead = false;
    int resends = 0;
    uint8_t buf[256];
    while (dx_ms(x) < t0 + 4000 && !dead) {
        g = dx_next(x, 20);
        if (g && (g->s.flags & JK_RST))
            snprintf(rst, sizeof rst, "%s", dx_str(g));
        else if (g && ++resends)
            same = same && strcmp(dx_str(g), first) == 0;
        long r = dx_read(x, buf, sizeof buf, 0);
        if (r != -EAGAIN) {
            dead = true;
            snprintf(app, sizeof app, "%s %s", r < 0 ? dx_errname(r) : "data",
                     span(dx_ms(x) - t0, 1000, 3000));
        }
    }
    while ((g = dx_next(x, 300)) != NULL)
        if (g->s.flags & JK_RST)
            snprintf(rst, sizeof rst, "%s", dx_str(g));
    dx_out(x, "resends", "%s", resends >= 2 && same ? "2 or more, the sent segment" : "other");
    dx_out(x, "app", "%s", app);
    dx_out(x, "reset", "%s", rst);
}

/* RFC 5681 §3.2: the third duplicate ACK (not the first two) makes the
 * sender resend the head at once, long before any timer. No SACK, so the
 * duplicates alone decide; a 100 ms handshake keeps the tail-loss probe
 * ~200 ms away. */
DX(timer, fast_retransmit, NULL, NULL, NULL)
{
    struct dx_opt o = dx_syn_opts(x);
    o.mss = 1000;
    o.sack_perm = false;
    open_slow(x, 100, &o);
    dx_write(x, zeros, 5 * 988);
    note_burst(x, "sent", 5, 988);
    dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    dx_note_all(x, "after 2 duplicates", 40);
    dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    dx_note(x, "after 3 duplicates", 120);
}

/* RFC 9293 §3.10.4 / RFC 6298: a FIN is retransmitted like data until it
 * is acknowledged; then nothing more comes. */
DX(timer, fin_resend, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_shutdown(x);
    const struct dx_seg *g = dx_note(x, "fin", 1000);
    if (!g)
        return;
    double t0 = g->t_ms;
    g = dx_note(x, "fin again", 2000);
    if (g)
        dx_out(x, "fin again after", "%s", span(g->t_ms - t0, 20, 700));
    dx_send(x, JK_ACK, 1, 2, NULL, 0, NULL);
    dx_note_all(x, "after the ack", 300);
}

/* The peer takes the SUT's first 100 bytes and closes its window (ACK
 * 101, window 0); the application writes 100 more. */
static void fill_window(struct dx *x)
{
    struct dx_opt z;
    memset(&z, 0, sizeof z);
    z.raw_wnd = true;
    z.wnd = 0;
    dx_open_passive(x, NULL);
    dx_write(x, zeros, 100);
    dx_note(x, "data", 500);
    dx_send(x, JK_ACK, 1, 101, NULL, 0, &z);
    dx_sleep_ms(20);
    dx_write(x, zeros, 100);
}

/* RFC 9293 §3.8.6.1: with data queued behind a zero window the sender
 * probes after about an RTO; the probe carries nothing new (Linux and
 * jktcp: no data, seq snd_una - 1, which the receiver must answer). When
 * the answer opens the window, the data goes. */
DX(timer, persist_probe, NULL, NULL, NULL)
{
    fill_window(x);
    double t0 = dx_ms(x);
    const struct dx_seg *g = dx_note(x, "probe", 2000);
    if (!g)
        return;
    dx_out(x, "probe after", "%s", span(g->t_ms - t0, 100, 700));
    dx_send(x, JK_ACK, 1, 101, NULL, 0, NULL); /* the answer: the window is open */
    dx_note(x, "after the window opens", 500);
}

/* RFC 9293 §3.8.6.1 (SHLD-30): unanswered zero-window probes back off
 * exponentially; the connection stays open. */
DX(timer, persist_backoff, NULL, NULL, NULL)
{
    fill_window(x);
    double t0 = dx_ms(x), t[3];
    char form[128] = "";
    bool same = true;
    for (int i = 0; i < 3; i++) {
        const struct dx_seg *g = dx_next(x, 3000);
        if (!g) {
            dx_out(x, "probes", "none after %d", i);
            return;
        }
        if (!i)
            snprintf(form, sizeof form, "%s", dx_str(g));
        same = same && strcmp(form, dx_str(g)) == 0;
        t[i] = g->t_ms;
    }
    dx_out(x, "probes", "%s%s", form, same ? ", 3 alike" : ", not alike");
    dx_out(x, "first after", "%s", span(t[0] - t0, 100, 700));
    dx_out(x, "gap 2 / gap 1", "%s", ratio((t[2] - t[1]) / (t[1] - t[0])));
    dx_note_read(x, "app", 0);
}

/* RFC 9293 §3.8.6.1: the peer offers a zero window in the handshake's
 * ACK and the application writes at once: nothing may go before the
 * first probe, about an RTO later. (A write's wake-up is no read: it
 * sends no window update.) */
DX(timer, persist_from_open, NULL, NULL, NULL)
{
    struct dx_opt z;
    memset(&z, 0, sizeof z);
    z.raw_wnd = true;
    z.wnd = 0;
    dx_listen(x, 16);
    struct dx_opt o = dx_syn_opts(x);
    dx_send(x, JK_SYN, 0, 0, NULL, 0, &o);
    if (!dx_next(x, 1000))
        dx_fail(x, "no SYN-ACK");
    dx_send(x, JK_ACK, 1, 1, NULL, 0, &z);
    if (dx_accept(x, 1000))
        dx_fail(x, "no accept");
    dx_write(x, zeros, 100);
    dx_note_all(x, "before the probe", 100);
    dx_note(x, "probe", 1000);
}

/* RFC 1122 §4.2.3.6: after the idle time a keepalive probe comes (no
 * data, seq snd_una - 1, so that the peer must answer); answered, the
 * connection lives on and carries data. */
DX(timer, keepalive_answered, NULL, NULL, NULL)
{
    dx_option(x, DX_O_KEEPALIVE, 1);
    dx_open_passive(x, NULL);
    double t0 = dx_ms(x);
    const struct dx_seg *g = dx_note(x, "probe", 2500);
    if (!g)
        return;
    dx_out(x, "probe after", "%s", span(g->t_ms - t0, 700, 1600));
    dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    dx_note_all(x, "after the answer", 300);
    dx_write(x, "hello", 5);
    dx_note(x, "data", 500);
    dx_note_read(x, "app", 0);
}

/* RFC 1122 §4.2.3.6: unanswered keepalive probes end the connection: the
 * application sees ETIMEDOUT and both send a RST (Linux's
 * tcp_keepalive_timer, jktcp's on_keepalive). The kernel gives up after
 * its user timeout (DX_O_RETRIES 1), jktcp after 9 probes 250 ms apart:
 * both within 1.5-4 s. */
DX(timer, keepalive_unanswered, NULL, NULL, NULL)
{
    dx_option(x, DX_O_KEEPALIVE, 1);
    dx_option(x, DX_O_RETRIES, 1);
    dx_open_passive(x, NULL);
    double t0 = dx_ms(x);
    char form[128] = "none", rst[128] = "none", app[64] = "alive";
    bool same = true, dead = false;
    uint8_t buf[256];
    const struct dx_seg *g;
    while (dx_ms(x) < t0 + 4500 && !dead) {
        g = dx_next(x, 20);
        if (g && (g->s.flags & JK_RST)) {
            snprintf(rst, sizeof rst, "%s", dx_str(g));
        } else if (g) {
            if (!strcmp(form, "none"))
                snprintf(form, sizeof form, "%s", dx_str(g));
            same = same && strcmp(form, dx_str(g)) == 0;
        }
        long r = dx_read(x, buf, sizeof buf, 0);
        if (r != -EAGAIN) {
            dead = true;
            snprintf(app, sizeof app, "%s %s", r < 0 ? dx_errname(r) : "data",
                     span(dx_ms(x) - t0, 1500, 4000));
        }
    }
    while ((g = dx_next(x, 300)) != NULL)
        if (g->s.flags & JK_RST)
            snprintf(rst, sizeof rst, "%s", dx_str(g));
    dx_out(x, "probes", "%s%s", form, same ? "" : ", not alike");
    dx_out(x, "app", "%s", app);
    dx_out(x, "reset", "%s", rst);
}
