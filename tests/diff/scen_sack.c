/* SPDX-License-Identifier: MIT */
/*
 * Differential scenarios: selective acknowledgements (RFC 2018, RFC 2883,
 * RFC 6675, RFC 8985). Receiving: which blocks an ACK carries and in what
 * order, D-SACK for duplicates. Sending: what the SUT resends when our
 * SACK blocks show holes. Helpers in scen_data.c.
 */
#include "diff.h"
#include "scen_data.h"

#include <stdio.h>
#include <string.h>

/* Send a segment and note the ACK it gets (each is ACKed at once: it is
 * out of order, fills a hole, or repeats data). */
static void seg_ack(struct dx *x, const char *key, uint32_t seq, uint32_t len)
{
    dd_data(x, seq, len, NULL);
    dx_note(x, key, 1000);
}

/* ---------------------------------------------------------------------- */
/* Receiving                                                               */
/* ---------------------------------------------------------------------- */

/* An out-of-order segment: a duplicate ACK at once, with a SACK block for
 * it (RFC 2018 §4, RFC 5681 §4.2); the segment that fills the hole moves
 * the cumulative ACK over both, and the block goes. */
DX(sack, ooo_then_fill, "sack", NULL, NULL)
{
    dx_open_passive(x, NULL);
    seg_ack(x, "ooo", 1001, 1000);
    seg_ack(x, "fill", 1, 1000);
    dd_note_read_total(x, "app", 2000, 1000);
}

/* Three islands arriving out of order, then joined: the first block is
 * always the one holding the latest segment, the others follow most
 * recent first (RFC 2018 §4); joined islands become one block. */
DX(sack, islands_order, "sack", NULL, NULL)
{
    dx_open_passive(x, NULL);
    seg_ack(x, "b", 4001, 1000);
    seg_ack(x, "a", 2001, 1000);
    seg_ack(x, "c", 6001, 1000);
    seg_ack(x, "join_bc", 5001, 1000);
    seg_ack(x, "join_abc", 3001, 1000);
    seg_ack(x, "fill", 1, 2000);
    dd_note_read_total(x, "app", 7000, 1000);
}

/* A segment touching an island on its left grows that block (and makes
 * it the first). */
DX(sack, island_grows_left, "sack", NULL, NULL)
{
    dx_open_passive(x, NULL);
    seg_ack(x, "a", 5001, 1000);
    seg_ack(x, "b", 2001, 1000);
    seg_ack(x, "a_left", 4001, 1000);
}

/* More islands than fit: with timestamps three blocks fit in the options
 * (RFC 2018 §3), the most recent ones. */
DX(sack, more_islands_than_blocks, "sack", NULL, NULL)
{
    dx_open_passive(x, NULL);
    seg_ack(x, "i1", 1001, 500);
    seg_ack(x, "i2", 2001, 500);
    seg_ack(x, "i3", 3001, 500);
    seg_ack(x, "i4", 4001, 500);
    seg_ack(x, "i5", 5001, 500);
    seg_ack(x, "i1_again", 1001, 500); /* D-SACK, then i1 is the latest */
}

/* Duplicate data below RCV.NXT is reported in a D-SACK block (RFC 2883
 * §4.1.1): the last segment again, and an older one. */
DX(sack, dsack_below_rcv_nxt, "sack", NULL, NULL)
{
    dx_open_passive(x, NULL);
    dd_data(x, 1, 1000, NULL);
    dd_note_ack_upto(x, "first", 1001, 1000);
    seg_ack(x, "dup_last", 1, 1000);
    dd_data(x, 1001, 1000, NULL);
    dd_note_ack_upto(x, "second", 2001, 1000);
    seg_ack(x, "dup_older", 1, 1000);
    dd_note_read_total(x, "app", 2000, 1000);
}

/* Duplicate data inside an island: the D-SACK block first, then the block
 * of the island that holds it (RFC 2883 §4.1.2). */
DX(sack, dsack_in_island, "sack", NULL, NULL)
{
    dx_open_passive(x, NULL);
    seg_ack(x, "a", 2001, 1000);
    seg_ack(x, "b", 3001, 1000);
    seg_ack(x, "dup", 2001, 1000);
}

/* A segment half old, half new: the new half is taken, the old half
 * reported as a D-SACK (RFC 2883 §4.1.1, §3: "the D-SACK block ... the
 * duplicate part"). */
DX(sack, dsack_partly_old, "sack", NULL, NULL)
{
    dx_open_passive(x, NULL);
    dd_data(x, 1, 1000, NULL);
    dd_note_ack_upto(x, "first", 1001, 1000);
    dd_data(x, 501, 1000, NULL);
    dd_note_ack_upto(x, "half", 1501, 1000);
    dd_note_read_total(x, "app", 1500, 1000);
}

/* Overlapping out-of-order ranges: one block for both, a D-SACK for the
 * overlap (RFC 2883 §4.1.2); which copy of the overlap the application
 * gets differs by design. */
DX(sack, overlapping_islands, "sack", "content",
   "jktcp keeps the later copy of an overlapping out-of-order range (the kernel the earlier)")
{
    dx_open_passive(x, NULL);
    static uint8_t a[1000], b[1000];
    memset(a, 'A', sizeof a);
    memset(b, 'B', sizeof b);
    dx_send(x, JK_ACK | JK_PSH, 2001, 1, a, 1000, NULL);
    dx_note(x, "a", 1000);
    dx_send(x, JK_ACK | JK_PSH, 2501, 1, b, 1000, NULL);
    dx_note(x, "b_overlaps", 1000);
    dx_send(x, JK_ACK | JK_PSH, 1, 1, dd_bytes(0), 2000, NULL);
    dx_note(x, "fill", 1000);
    static uint8_t got[4000];
    long n = 0;
    double end = dx_ms(x) + 1000;
    while (n < 3500 && dx_ms(x) < end) {
        long r = dx_read(x, got + n, sizeof got - (size_t)n, (int)(end - dx_ms(x)) + 1);
        if (r <= 0)
            break;
        n += r;
    }
    dx_out(x, "app", "read %ld", n);
    dx_out(x, "content", "%s", n < 3500 ? "short" : got[2600] == 'A' ? "first copy" : "second copy");
}

/* ---------------------------------------------------------------------- */
/* Sending: our SACK blocks                                                */
/* ---------------------------------------------------------------------- */

/* Ten segments out (an RTT of 100 ms: the SUT's probes and timeouts stay
 * far away); f gets them. */
static void ten_out(struct dx *x, struct dd_flight *f, long extra)
{
    dd_open(x, NULL, 100, NULL);
    dd_write(x, 10L * dd_smss(x, dx_syn_opts(x).mss) + extra);
    dd_flight(x, f, 10L * dd_smss(x, dx_syn_opts(x).mss), 1000);
    if (f->n != 10)
        dx_fail(x, "%d segments in the initial window", f->n);
}

/* Our ACK of 1 with SACK blocks over segments [from, to) (0-based). */
static void sack_segs(struct dx *x, const struct dd_flight *f, int n, const int (*r)[2])
{
    struct dx_opt o;
    memset(&o, 0, sizeof o);
    o.nsack = n;
    for (int i = 0; i < n; i++) {
        o.sack[i][0] = f->seq[r[i][0]];
        o.sack[i][1] = f->seq[r[i][1] - 1] + f->len[r[i][1] - 1];
    }
    dx_send(x, JK_ACK, 1, 1, NULL, 0, &o);
}

/* Segment index of a relative seq in the flight, for outcomes. */
static int seg_index(const struct dd_flight *f, uint32_t seq)
{
    for (int i = 0; i < f->n && i < DD_MAX_FLIGHT; i++)
        if (f->seq[i] == seq)
            return i;
    return -1;
}

static void note_resend(struct dx *x, const char *key, const struct dd_flight *f, int timeout_ms)
{
    const struct dx_seg *g = dx_next(x, timeout_ms);
    if (!g)
        dx_out(x, key, "none");
    else if (g->s.len && seg_index(f, g->seq) >= 0)
        dx_out(x, key, "segment %d (%u bytes)", seg_index(f, g->seq), g->s.len);
    else
        dx_out(x, key, "%s", dx_str(g));
}

/* One ACK SACKs three segments above the first: the first is lost (RFC
 * 6675 §5 DupThresh in segments, RFC 8985): resent at once. */
DX(sack, three_sacked_resend, "sack", NULL, NULL)
{
    struct dd_flight f;
    ten_out(x, &f, 0);
    static const int r[][2] = {{1, 4}};
    sack_segs(x, &f, 1, r);
    note_resend(x, "resend", &f, 150);
}

/* Only the last segment SACKed: too few for DupThresh, but once the
 * reordering window (RTT/4) passes, RACK deems the first lost (RFC 8985
 * §6.2) and it is resent — before the tail-loss probe (2 RTT). */
DX(sack, one_sacked_rack, "sack", NULL, NULL)
{
    struct dd_flight f;
    ten_out(x, &f, 0);
    dx_sleep_ms(50); /* the SACK's RTT sample is not below the handshake's much */
    static const int r[][2] = {{9, 10}};
    sack_segs(x, &f, 1, r);
    note_resend(x, "resend", &f, 150);
}

/* Two holes (segments 0 and 3) below SACKed data: both are resent (RFC
 * 6675 §5 NextSeg), the SACKed segments are not. */
DX(sack, two_holes, "sack", NULL, NULL)
{
    struct dd_flight f;
    ten_out(x, &f, 0);
    static const int r[][2] = {{1, 3}, {4, 10}};
    sack_segs(x, &f, 2, r);
    char b[256] = "";
    size_t n = 0;
    double end = dx_ms(x) + 120;
    const struct dx_seg *g;
    while (dx_ms(x) < end && (g = dx_next(x, (int)(end - dx_ms(x)) + 1)) != NULL)
        if (g->s.len && n < sizeof b - 16)
            n += (size_t)snprintf(b + n, sizeof b - n, "%s%d", n ? " " : "", seg_index(&f, g->seq));
    dx_out(x, "resent", "%s", n ? b : "none");
}

/* A SACK block for one segment while more data waits: the segment it
 * reports has left the network, so one new segment may go (RFC 6675 §5).
 * Not tagged "sack": without SACK the same ACK is a duplicate ACK, and
 * limited transmit (RFC 3042) lets one segment go too. (Two or three
 * blocks bring in the kernel's probes and PRR, which jktcp's RFC 6675
 * window does not match yet: issue "sending under loss".) */
DX(sack, sacked_lets_new_data_go, NULL, NULL, NULL)
{
    struct dd_flight f;
    ten_out(x, &f, 10000);
    dx_sleep_ms(50); /* an RTT sample far below the reordering window would make the
                        kernel's RACK deem segment 0 lost at once (min RTT / 4) */
    static const int r[][2] = {{1, 2}};
    sack_segs(x, &f, 1, r);
    const struct dx_seg *g = dx_next(x, 20);
    dx_out(x, "next", "%s", !g ? "none" : g->seq == f.end ? "new data" : dx_str(g));
}

/* SACK blocks for data never sent or already ACKed are ignored (RFC 2018
 * §8 / RFC 6675: only blocks between SND.UNA and SND.NXT count): no
 * resend follows. */
DX(sack, bogus_blocks_ignored, NULL, NULL, NULL)
{
    struct dd_flight f;
    ten_out(x, &f, 0);
    struct dx_opt o;
    memset(&o, 0, sizeof o);
    o.nsack = 3;
    o.sack[0][0] = f.end + 1000; /* beyond SND.NXT */
    o.sack[0][1] = f.end + 5000;
    o.sack[1][0] = f.end - 100000; /* far below */
    o.sack[1][1] = f.end - 90000;
    o.sack[2][0] = f.seq[5]; /* reversed */
    o.sack[2][1] = f.seq[2];
    dx_send(x, JK_ACK, 1, 1, NULL, 0, &o);
    dx_note_all(x, "after", 60);
}
