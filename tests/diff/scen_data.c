/* SPDX-License-Identifier: MIT */
/*
 * Differential scenarios: the data path (RFC 9293 §3.8, §3.10.7.4; RFC
 * 5961; RFC 7323; RFC 5681; RFC 6928; RFC 8985). Receiving: in-order
 * data, the window (its edge, beyond it, zero window, the update after a
 * read), ACK validation, timestamps. Sending: segment sizes, the initial
 * window, the peer's window, duplicate ACKs, probes. SACK is in
 * scen_sack.c.
 */
#include "diff.h"
#include "scen_data.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Helpers (shared with scen_sack.c through scen_data.h)                   */
/* ---------------------------------------------------------------------- */

const uint8_t *dd_bytes(uint32_t off)
{
    static uint8_t b[1 << 17];
    static bool done;
    if (!done) {
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (uint8_t)('a' + i % 26);
        done = true;
    }
    return b + off % (1 << 16);
}

void dd_data(struct dx *x, uint32_t seq, uint32_t len, const struct dx_opt *o)
{
    dx_send(x, JK_ACK | JK_PSH, seq, 1, dd_bytes(seq - 1), len, o);
}

const struct dx_seg *dd_ack_upto(struct dx *x, uint32_t upto, int timeout_ms)
{
    double end = dx_ms(x) + timeout_ms;
    const struct dx_seg *g;
    while (dx_ms(x) < end && (g = dx_next(x, (int)(end - dx_ms(x)) + 1)) != NULL)
        if ((g->s.flags & JK_ACK) && (int32_t)(g->ack - upto) >= 0)
            return g;
    return NULL;
}

void dd_note_ack_upto(struct dx *x, const char *key, uint32_t upto, int timeout_ms)
{
    const struct dx_seg *g = dd_ack_upto(x, upto, timeout_ms);
    dx_out(x, key, "%s", g ? dx_str(g) : "none");
}

void dd_drain(struct dx *x, int quiet_ms)
{
    while (dx_next(x, quiet_ms)) {
    }
}

long dd_read_total(struct dx *x, long want, int timeout_ms)
{
    static uint8_t b[1 << 17];
    long total = 0;
    double end = dx_ms(x) + timeout_ms;
    while (total < want) {
        int left = (int)(end - dx_ms(x));
        if (left <= 0)
            break;
        long r = dx_read(x, b, sizeof b, left);
        if (r <= 0)
            return total ? total : r;
        total += r;
    }
    return total;
}

void dd_note_read_total(struct dx *x, const char *key, long want, int timeout_ms)
{
    long r = dd_read_total(x, want, timeout_ms);
    if (r >= 0)
        dx_out(x, key, "read %ld", r);
    else
        dx_out(x, key, "%s", dx_errname(r));
}

uint32_t dd_open(struct dx *x, const struct dx_opt *syn, int rtt_ms, const struct dx_opt *ack)
{
    struct dx_opt d = dx_syn_opts(x);
    dx_listen(x, 16);
    dx_send(x, JK_SYN, 0, 0, NULL, 0, syn ? syn : &d);
    const struct dx_seg *g = dx_next(x, 2000);
    if (!g || g->s.flags != (JK_SYN | JK_ACK))
        dx_fail(x, "no SYN-ACK to the handshake's SYN (%s)", g ? dx_str(g) : "none");
    uint32_t tsval = g->s.opt.tsval;
    if (rtt_ms)
        dx_sleep_ms(rtt_ms);
    dx_send(x, JK_ACK, 1, 1, NULL, 0, ack);
    int r = dx_accept(x, 2000);
    if (r)
        dx_fail(x, "accept after the handshake: %s", dx_errname(r));
    return tsval;
}

void dd_write(struct dx *x, long n)
{
    static uint8_t b[1 << 17];
    long done = 0;
    double end = dx_ms(x) + 2000;
    while (done < n && dx_ms(x) < end) {
        long r = dx_write(x, b + done % 4096, (size_t)(n - done));
        if (r > 0)
            done += r;
        else if (r == -EAGAIN)
            dx_sleep_ms(1);
        else
            dx_fail(x, "write: %s", dx_errname(r));
    }
    if (done < n)
        dx_fail(x, "the application could queue only %ld of %ld bytes", done, n);
}

int dd_flight(struct dx *x, struct dd_flight *f, long bytes, int timeout_ms)
{
    memset(f, 0, sizeof *f);
    double end = dx_ms(x) + timeout_ms;
    const struct dx_seg *g;
    while (f->bytes < bytes && dx_ms(x) < end &&
           (g = dx_next(x, (int)(end - dx_ms(x)) + 1)) != NULL) {
        if (!g->s.len)
            continue;
        if (f->n < DD_MAX_FLIGHT) {
            f->seq[f->n] = g->seq;
            f->len[f->n] = g->s.len;
        }
        f->n++;
        f->bytes += g->s.len;
        f->end = g->seq + g->s.len;
    }
    return f->n;
}

void dd_note_flight(struct dx *x, const char *key, const struct dd_flight *f)
{
    char b[1024];
    size_t n = 0;
    b[0] = 0;
    for (int i = 0; i < f->n && i < DD_MAX_FLIGHT && n < sizeof b - 32; i++) {
        /* runs of equal sizes folded: "1448x10 1040" */
        int k = 1;
        while (i + k < f->n && i + k < DD_MAX_FLIGHT && f->len[i + k] == f->len[i])
            k++;
        n += (size_t)snprintf(b + n, sizeof b - n, "%s%u", n ? " " : "", f->len[i]);
        if (k > 1)
            n += (size_t)snprintf(b + n, sizeof b - n, "x%d", k);
        i += k - 1;
    }
    dx_out(x, key, "%d segments, %ld bytes: %s", f->n, f->bytes, n ? b : "-");
}

uint32_t dd_smss(struct dx *x, int mss)
{
    (void)x;
    return (uint32_t)mss - 12; /* the timestamp option comes off */
}

/* ---------------------------------------------------------------------- */
/* Receiving                                                              */
/* ---------------------------------------------------------------------- */

/* In-order segments are delivered in order and cumulatively ACKed (RFC
 * 9293 §3.10.7.4 "seventh, process the segment text"). */
DX(data, in_order, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dd_data(x, 1, 1000, NULL);
    dd_data(x, 1001, 1000, NULL);
    dd_data(x, 2001, 1000, NULL);
    dd_note_read_total(x, "app", 3000, 1000);
    dd_note_ack_upto(x, "ack", 3001, 1000);
}

/* A segment wholly beyond the right edge of the window is not acceptable:
 * dropped, answered with an ACK (RFC 9293 §3.10.7.4 first check). */
DX(data, beyond_window, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dd_data(x, 1, 100, NULL);
    const struct dx_seg *g = dd_ack_upto(x, 101, 1000);
    if (!g)
        dx_fail(x, "no ACK for the first 100 bytes");
    uint32_t edge = 101 + dx_sut_window(x, g);
    dd_data(x, edge + 1000, 100, NULL);
    dx_note(x, "reply", 1000);
    dx_note_read(x, "app", 1000);
    dx_note_read(x, "more", 100);
}

/* A segment that starts right at the edge of the window: not acceptable
 * (RFC 9293 §3.10.7.4: RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND). */
DX(data, at_window_edge, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dd_data(x, 1, 100, NULL);
    const struct dx_seg *g = dd_ack_upto(x, 101, 1000);
    if (!g)
        dx_fail(x, "no ACK for the first 100 bytes");
    uint32_t edge = 101 + dx_sut_window(x, g);
    dd_data(x, edge, 100, NULL);
    dx_note(x, "reply", 1000);
}

/* An ACK of data never sent (SEG.ACK > SND.NXT): send an ACK, drop the
 * segment (RFC 9293 §3.10.7.4 "fifth, check the ACK field"; RFC 5961 §5.2
 * keeps that rule). */
DX(data, ack_of_unsent_data, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_send(x, JK_ACK, 1, 5001, NULL, 0, NULL);
    dx_note(x, "reply", 300);
}

/* The same with data: the whole segment is dropped (its data too). */
DX(data, data_with_ack_of_unsent, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dx_send(x, JK_ACK | JK_PSH, 1, 5001, dd_bytes(0), 100, NULL);
    dx_note(x, "reply", 300);
    dx_note_read(x, "app", 200);
}

/* An ACK far below SND.UNA (more than the peer's largest window): RFC 5961
 * §5.2 challenge ACK, segment dropped. */
DX(data, ack_far_below, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dd_write(x, 3000);
    struct dd_flight f;
    dd_flight(x, &f, 3000, 1000);
    dx_send(x, JK_ACK, 1, 3001, NULL, 0, NULL);
    dx_sleep_ms(50);
    dx_send(x, JK_ACK, 1, 3001 - 400000, NULL, 0, NULL);
    dx_note(x, "reply", 300);
}

/* An ACK below SND.UNA by more than every byte ever acknowledged (below
 * the ISS) but within the peer's largest window: RFC 5961 §5.2 bounds it
 * by MAX.SND.WND, Linux by min(MAX.SND.WND, bytes acked). */
DX(data, ack_below_iss, NULL, NULL, NULL)
{
    dx_open_passive(x, NULL);
    dd_write(x, 3000);
    struct dd_flight f;
    dd_flight(x, &f, 3000, 1000);
    dx_send(x, JK_ACK, 1, 3001, NULL, 0, NULL);
    dx_sleep_ms(50);
    dx_send(x, JK_ACK, 1, 3001 - 10000, NULL, 0, NULL);
    dx_note(x, "reply", 300);
}

/* ---------------------------------------------------------------------- */
/* The receive window (the application reads nothing)                      */
/* ---------------------------------------------------------------------- */

/* Both systems size their buffers their own way (by design): a small
 * receive buffer, and the numbers relative to where the window closed. */
#define SMALL_RCVBUF 16384

/* dx_str with the ACK number relative to edge ("ack E+100"). */
static const char *rel_str(const struct dx_seg *g, uint32_t edge);

/* Fill the SUT's receive window: segments of up to 1000 bytes from seq 1
 * on until an ACK offers a zero window (noted as "full"). Returns the edge
 * (the peer's next seq, which that ACK acknowledges); with stop_short,
 * returns that many bytes before it instead (the window still open by
 * that much). */
static uint32_t fill_window(struct dx *x, uint32_t stop_short)
{
    uint32_t seq = 1;
    dx_option(x, DX_O_RCVBUF, SMALL_RCVBUF);
    dx_open_passive(x, NULL);
    dd_data(x, seq, 1000, NULL);
    seq += 1000;
    for (int round = 0; round < 200; round++) {
        const struct dx_seg *g = dd_ack_upto(x, seq, 1000);
        if (!g)
            dx_fail(x, "no ACK of %u while filling the window", seq);
        uint32_t w = dx_sut_window(x, g);
        if (w == 0) {
            dx_out(x, "full", "%s", rel_str(g, seq));
            return seq;
        }
        if (stop_short) {
            if (w <= stop_short)
                dx_fail(x, "a window of %u is too small", w);
            for (uint32_t left = w - stop_short; left;) {
                uint32_t n = left < 1000 ? left : 1000;
                dd_data(x, seq, n, NULL);
                seq += n;
                left -= n;
            }
            g = dd_ack_upto(x, seq, 1000);
            if (!g || dx_sut_window(x, g) != stop_short)
                dx_fail(x, "the window is not %u bytes: %s", stop_short, g ? dx_str(g) : "none");
            return seq;
        }
        while (w) {
            uint32_t n = w < 1000 ? w : 1000;
            dd_data(x, seq, n, NULL);
            seq += n;
            w -= n;
        }
    }
    dx_fail(x, "the window never closed");
    return seq;
}

static const char *rel_str(const struct dx_seg *g, uint32_t edge)
{
    static char b[600];
    const char *s = dx_str(g);
    const char *a = strstr(s, " ack ");
    if (!a || !(g->s.flags & JK_ACK))
        return s;
    const char *rest = a + 5;
    while (*rest >= '0' && *rest <= '9')
        rest++;
    int32_t d = (int32_t)(g->ack - edge);
    snprintf(b, sizeof b, "%.*s ack E%+d%s", (int)(a - s), s, d, rest);
    return b;
}

static void note_rel(struct dx *x, const char *key, uint32_t edge, int timeout_ms)
{
    const struct dx_seg *g = dx_next(x, timeout_ms);
    dx_out(x, key, "%s", g ? rel_str(g, edge) : "none");
}

/* What the application can read, relative to the edge. */
static void note_read_rel(struct dx *x, const char *key, uint32_t edge, int timeout_ms)
{
    long r = dd_read_total(x, 1 << 20, timeout_ms);
    if (r < 0)
        dx_out(x, key, "%s", dx_errname(r));
    else
        dx_out(x, key, "read E%+ld", r - (long)(edge - 1));
}

/* Data that fills the window exactly is taken; the ACK offers a zero
 * window (RFC 9293 §3.8.6). */
DX(data, fill_to_zero_window, NULL, NULL, NULL)
{
    uint32_t e = fill_window(x, 0);
    note_read_rel(x, "app", e, 300);
}

/* A segment straddling the right edge: only the part inside the window is
 * taken, the rest trimmed (RFC 9293 §3.10.7.4: "segments ... trimmed to
 * the window"). */
DX(data, straddles_window_edge, NULL, "reply,app",
   "jktcp takes the part of a segment inside the window and trims the rest (RFC 9293 §3.10.7.4); the kernel drops the whole segment")
{
    uint32_t e = fill_window(x, 300);
    dd_data(x, e, 800, NULL);
    note_rel(x, "reply", e + 300, 1000);
    note_read_rel(x, "app", e + 300, 300);
}

/* Data in a zero window: not acceptable, dropped, answered with an ACK
 * that shows the window still closed (RFC 9293 §3.10.7.4). */
DX(data, data_in_zero_window, NULL, NULL, NULL)
{
    uint32_t e = fill_window(x, 0);
    dd_data(x, e, 100, NULL);
    note_rel(x, "reply", e, 1000);
    note_read_rel(x, "app", e, 300);
}

/* A zero-window probe (SEG.SEQ = RCV.NXT - 1, no data, as Linux and jktcp
 * send them): answered with an ACK of the current window (RFC 9293
 * §3.8.6.1). */
DX(data, zero_window_probe, NULL, NULL, NULL)
{
    uint32_t e = fill_window(x, 0);
    dx_send(x, JK_ACK, e - 1, 1, NULL, 0, NULL);
    note_rel(x, "reply", e, 1000);
}

/* The application reads the full buffer: the SUT announces the reopened
 * window at once (RFC 9293 §3.8.6.2.2), and data flows again. */
DX(data, window_update_after_read, NULL, NULL, NULL)
{
    uint32_t e = fill_window(x, 0);
    note_read_rel(x, "app", e, 300);
    const struct dx_seg *g = dx_next(x, 500);
    dx_out(x, "update", "%s", g ? rel_str(g, e) : "none");
    dd_data(x, e, 1000, NULL);
    const struct dx_seg *a = dd_ack_upto(x, e + 1000, 1000);
    dx_out(x, "ack", "%s", a ? rel_str(a, e) : "none");
    dx_note_read(x, "again", 1000);
}

/* ---------------------------------------------------------------------- */
/* Timestamps (RFC 7323)                                                   */
/* ---------------------------------------------------------------------- */

/* Our TSvals in these scenarios: B + k. B is above what the handshake
 * sent (dx_send counts from 1000000). */
#define TSB 2000000u

static struct dx_opt tso(uint32_t tsval, uint32_t tsecr)
{
    struct dx_opt o;
    memset(&o, 0, sizeof o);
    o.ts_set = true;
    o.tsval = tsval;
    o.tsecr = tsecr;
    return o;
}

/* The ACK of upto: "ack N echo B+k" (the TSecr relative to TSB). */
static void note_echo(struct dx *x, const char *key, uint32_t upto)
{
    const struct dx_seg *g = dd_ack_upto(x, upto, 1000);
    if (!g)
        dx_out(x, key, "none");
    else if (!g->s.opt.has_ts)
        dx_out(x, key, "ack %u no ts", g->ack);
    else
        dx_out(x, key, "ack %u echo B%+d", g->ack, (int32_t)(g->s.opt.tsecr - TSB));
}

/* PAWS (RFC 7323 §5.3): a segment whose TSval is older than TS.Recent is
 * dropped and answered with an ACK; the same data with a current TSval is
 * taken. */
DX(data, paws_old_tsval, "ts", NULL, NULL)
{
    uint32_t e = dd_open(x, NULL, 0, NULL);
    struct dx_opt o = tso(TSB, e);
    dd_data(x, 1, 100, &o);
    note_echo(x, "first", 101);
    dx_note_read(x, "app1", 1000);
    o = tso(TSB - 1000, e);
    dd_data(x, 101, 100, &o);
    note_echo(x, "old", 101);
    dx_note_read(x, "app", 200);
    o = tso(TSB + 1, e);
    dd_data(x, 101, 100, &o);
    note_echo(x, "again", 201);
}

/* PAWS at the boundary: a TSval one below TS.Recent is older (RFC 7323
 * §5.3 "SEG.TSval < TS.Recent"). */
DX(data, paws_one_below, "ts", NULL, NULL)
{
    uint32_t e = dd_open(x, NULL, 0, NULL);
    struct dx_opt o = tso(TSB, e);
    dd_data(x, 1, 100, &o);
    note_echo(x, "first", 101);
    dx_note_read(x, "app1", 1000);
    o = tso(TSB - 1, e);
    dd_data(x, 101, 100, &o);
    const struct dx_seg *g = dx_next(x, 1000);
    dx_out(x, "reply", "%s", g ? dx_str(g) : "none");
    dx_note_read(x, "app", 200);
}

/* TS.Recent is taken only from a segment at or below Last.ACK.sent (RFC
 * 7323 §4.3 (2)): an out-of-order segment's TSval is not echoed, the one
 * that fills the hole is. */
DX(data, ts_recent_not_from_ooo, "ts", NULL, NULL)
{
    uint32_t e = dd_open(x, NULL, 0, NULL);
    struct dx_opt o = tso(TSB, e);
    dd_data(x, 1, 100, &o);
    note_echo(x, "first", 101);
    o = tso(TSB + 20, e);
    dd_data(x, 1101, 1000, &o);
    note_echo(x, "ooo", 101);
    o = tso(TSB + 10, e);
    dd_data(x, 101, 1000, &o);
    note_echo(x, "fill", 2101);
}

/* An old duplicate (below RCV.NXT, not the last segment): it is not
 * acceptable, TS.Recent stays, and the ACK echoes it (RFC 7323 §4.3 (2),
 * §3.10.7.4 of RFC 9293). */
DX(data, ts_echo_old_duplicate, "ts", "dup",
   "jktcp's ACK for a segment it already holds echoes that segment's TSval (docs/design.md, Timestamps: RTT samples for the resending peer); the kernel echoes TS.Recent")
{
    uint32_t e = dd_open(x, NULL, 0, NULL);
    struct dx_opt o = tso(TSB + 10, e);
    dd_data(x, 1, 1000, &o);
    note_echo(x, "first", 1001);
    o = tso(TSB + 20, e);
    dd_data(x, 1001, 1000, &o);
    note_echo(x, "second", 2001);
    o = tso(TSB + 30, e);
    dd_data(x, 1, 1000, &o);
    note_echo(x, "dup", 2001);
}

/* Once timestamps are in use, a segment without one: RFC 7323 §3.2 says
 * drop it (SHOULD); Linux takes it. jktcp drops it, by design. */
DX(data, no_ts_after_negotiation, "ts", "reply,app",
   "jktcp drops non-RST segments without a timestamp once timestamps were negotiated "
   "(RFC 7323 §3.2 SHOULD); the kernel accepts them")
{
    dx_open_passive(x, NULL);
    struct dx_opt o;
    memset(&o, 0, sizeof o);
    o.no_ts = true;
    dd_data(x, 1, 100, &o);
    dx_note(x, "reply", 300);
    dx_note_read(x, "app", 200);
}

/* ---------------------------------------------------------------------- */
/* Urgent data                                                             */
/* ---------------------------------------------------------------------- */

/* A segment with URG: the data is delivered and ACKed; the kernel (no
 * SO_OOBINLINE) takes the last urgent byte out of the stream, jktcp keeps
 * urgent data inline (RFC 6093 §6: new applications SHOULD NOT use it). */
DX(data, urgent_inline, NULL, "app",
   "jktcp delivers urgent data inline (RFC 6093); the kernel without SO_OOBINLINE takes the "
   "urgent byte out of the stream")
{
    dx_open_passive(x, NULL);
    struct dx_opt o;
    memset(&o, 0, sizeof o);
    o.urp = 5;
    dx_send(x, JK_ACK | JK_PSH | JK_URG, 1, 1, "hello", 5, &o);
    dd_note_ack_upto(x, "ack", 6, 1000);
    dd_note_read_total(x, "app", 5, 300);
}

/* ---------------------------------------------------------------------- */
/* Sending                                                                 */
/* ---------------------------------------------------------------------- */

/* Segments are cut to the peer's MSS less the timestamp option (RFC 9293
 * §3.7.1, RFC 7323 §3.2 / RFC 6691). */
DX(data, send_peer_mss, NULL, NULL, NULL)
{
    struct dx_opt syn = dx_syn_opts(x);
    syn.mss = 1000;
    dd_open(x, &syn, 0, NULL);
    dd_write(x, 5000);
    struct dd_flight f;
    dd_flight(x, &f, 5000, 1000);
    dd_note_flight(x, "sent", &f);
}

/* The initial window is ten segments (RFC 6928); once the peer ACKs them
 * all, slow start doubles it (RFC 5681 §3.1, byte counting). */
DX(data, initial_window, NULL, NULL, NULL)
{
    dd_open(x, NULL, 100, NULL);
    dd_write(x, 60000);
    struct dd_flight f;
    dd_flight(x, &f, 60000, 80);
    dd_note_flight(x, "first", &f);
    dx_send(x, JK_ACK, 1, f.end, NULL, 0, NULL);
    dd_flight(x, &f, 60000, 80);
    dd_note_flight(x, "second", &f);
}

/* NewReno without SACK (RFC 6582 §3.2): after a fast retransmit, a partial
 * ACK (it covers the resent segment, not all that was out) means the next
 * segment is lost too: it is resent at once. */
DX(data, newreno_partial_ack, NULL, NULL, NULL)
{
    struct dx_opt syn = dx_syn_opts(x);
    syn.sack_perm = false;
    dd_open(x, &syn, 100, NULL);
    dd_write(x, 10000);
    struct dd_flight f;
    dd_flight(x, &f, 10000, 1000);
    for (int i = 0; i < 3; i++)
        dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    const struct dx_seg *g = dx_next(x, 100);
    dx_out(x, "fast", "%s", !g ? "none" : g->seq == 1 ? "segment 0" : dx_str(g));
    dx_send(x, JK_ACK, 1, f.seq[3], NULL, 0, NULL); /* segments 0-2 arrived, 3 did not */
    g = dx_next(x, 100);
    dx_out(x, "partial", "%s", !g ? "none" : g->seq == f.seq[3] ? "segment 3" : dx_str(g));
}

/* Limited transmit (RFC 3042, RFC 5681 §3.2 SHOULD): each of the first two
 * duplicate ACKs lets one new segment go, if the window allows. */
DX(data, limited_transmit, NULL, NULL, NULL)
{
    struct dx_opt syn = dx_syn_opts(x);
    syn.sack_perm = false;
    dd_open(x, &syn, 100, NULL);
    dd_write(x, 20000);
    struct dd_flight f;
    dd_flight(x, &f, 20000, 80); /* the initial window */
    dd_note_flight(x, "sent", &f);
    dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    dx_note(x, "dup1", 50); /* the kernel also grows cwnd on it: the first only */
    dd_drain(x, 30);
    dx_send(x, JK_ACK, 1, 1, NULL, 0, NULL);
    struct dd_flight g;
    dd_flight(x, &g, 1, 50);
    dx_out(x, "dup2", "%s", g.n ? "new data" : "none");
}

/* The peer's window, scaled (RFC 7323 §2.3): the SUT sends no more than
 * it allows, here exactly two segments (with shift 3). */
DX(data, peer_window_scaled, NULL, NULL, NULL)
{
    struct dx_opt syn = dx_syn_opts(x);
    syn.ws = 3;
    struct dx_opt ack;
    memset(&ack, 0, sizeof ack);
    ack.wnd = 2 * dd_smss(x, syn.mss);
    dd_open(x, &syn, 100, &ack);
    dd_write(x, 10000);
    struct dd_flight f;
    dd_flight(x, &f, 10000, 80);
    dd_note_flight(x, "sent", &f);
    dx_send(x, JK_ACK, 1, f.end, NULL, 0, &ack);
    dd_flight(x, &f, 10000, 80);
    dd_note_flight(x, "next", &f);
}

/* A window of two and a half segments: two full segments go; the half
 * segment left is a silly window the sender avoids (RFC 9293 §3.8.6.2.1,
 * MUST-38): it waits for the window to open. */
DX(data, peer_window_sliver, NULL, NULL, NULL)
{
    struct dx_opt syn = dx_syn_opts(x);
    syn.ws = 3;
    struct dx_opt ack;
    memset(&ack, 0, sizeof ack);
    ack.wnd = 2 * dd_smss(x, syn.mss) + dd_smss(x, syn.mss) / 2 / 8 * 8;
    dd_open(x, &syn, 100, &ack);
    dd_write(x, 10000);
    struct dd_flight f;
    dd_flight(x, &f, 10000, 80);
    dd_note_flight(x, "sent", &f);
}

/* The tail-loss probe resends the last segment (RFC 8985 §7.3: "the
 * highest-sequence segment sent"), here a short one: the same bytes, not
 * the last MSS of the stream. */
DX(data, tail_probe_last_segment, NULL, NULL, NULL)
{
    dd_open(x, NULL, 20, NULL);
    dd_write(x, 3000);
    struct dd_flight f;
    dd_flight(x, &f, 3000, 1000);
    dd_note_flight(x, "sent", &f);
    dx_note(x, "probe", 1500);
}
