/* SPDX-License-Identifier: MIT */
/*
 * Loss recovery: the peer's SACK scoreboard, the pipe estimate (RFC
 * 6675), repair passes, fast recovery (RFC 6582 / 6675), RACK's reorder
 * timer and tail-loss probes (RFC 8985).
 */
#include "tcp_int.h"

#include <errno.h>


/* The first block reports data that arrived twice (RFC 2883 §4): it lies
 * below the cumulative ACK, or inside the second block. */
static bool is_dsack(const struct jk_seg *s)
{
    if (!s->opt.nsack)
        return false;
    uint32_t l = s->opt.sack[0].left, r = s->opt.sack[0].right;
    if (!seq_lt(l, r))
        return false;
    if (seq_le(r, s->ack))
        return true;
    return s->opt.nsack > 1 && seq_le(s->opt.sack[1].left, l) && seq_le(r, s->opt.sack[1].right);
}

/* Undo of a needless cut (RFC 3708's D-SACK detection, as Linux's
 * undo_retrans): a recovery or timeout episode remembers the window from
 * before its cut and what it resent. Each D-SACK for resent data means
 * one resend was needless; once every resend of the episode has been so
 * reported, nothing was lost and the cut is undone. A D-SACK for data not
 * resent (a copy the network made) counts for nothing. */
void jk_tcp_undo_begin(struct jk_tcp *c)
{
    c->rec.undo_armed = c->cfg.congestion && c->sack_ok;
    c->rec.undo_retrans = 0;
    c->rec.nresent = 0;
    c->rec.undo_cwnd = c->cc.cwnd;
    c->rec.undo_ssthresh = c->cc.ssthresh;
}

void jk_tcp_undo_resent(struct jk_tcp *c, uint32_t seq, uint32_t end)
{
    if (!c->rec.undo_armed || !c->rec.in_recovery || !seq_lt(seq, end))
        return;
    if (jk_ranges_add(c->rec.resent, &c->rec.nresent, JK_UNDO_RANGES, seq, end, false) < 0)
        c->rec.undo_armed = false; /* too scattered to tell: no undo */
    else
        c->rec.undo_retrans++;
}

/* Take [l, r) out of the episode's resent ranges if one of them holds it
 * all; whether one did. */
static bool forget_resent(struct jk_tcp *c, uint32_t l, uint32_t r)
{
    for (int i = 0; i < c->rec.nresent; i++) {
        struct jk_range x = c->rec.resent[i];
        if (seq_le(x.start, l) && seq_le(r, x.end)) {
            jk_ranges_remove(c->rec.resent, &c->rec.nresent, i);
            if (seq_lt(x.start, l))
                jk_ranges_add(c->rec.resent, &c->rec.nresent, JK_UNDO_RANGES, x.start, l, false);
            if (seq_lt(r, x.end))
                jk_ranges_add(c->rec.resent, &c->rec.nresent, JK_UNDO_RANGES, r, x.end, false);
            return true;
        }
    }
    return false;
}

/* The episode's cut was needless: the window from before it comes back
 * (jk_tcp_undo_begin kept it) and the controller restores its own state. */
static void undo_cut(struct jk_tcp *c)
{
    c->rec.undo_armed = false;
    c->rec.prr_on = false; /* the window is the old one again: no reduction */
    c->rec.undos++;
    c->cc.cwnd = max_u32(c->cc.cwnd, c->rec.undo_cwnd);
    c->cc.ssthresh = max_u32(c->cc.ssthresh, c->rec.undo_ssthresh);
    jk_cc_on_undo(c);
    jk_tcp_changed(c);
}

static void undo_on_dsack(struct jk_tcp *c, uint32_t l, uint32_t r)
{
    /* forgotten once credited: a second copy of the same data is no
     * further evidence */
    if (!c->rec.undo_armed || !c->rec.undo_retrans || !forget_resent(c, l, r))
        return;
    uint32_t segs = (r - l + c->smss - 1) / c->smss;
    c->rec.spurious += segs;
    c->rec.undo_retrans = c->rec.undo_retrans > segs ? c->rec.undo_retrans - segs : 0;
    if (!c->rec.undo_retrans)
        undo_cut(c);
}

/* Spurious timeouts (RFC 3522, Eifel detection): the first ACK that
 * acknowledges new data after a timeout echoes the TSval of the segment
 * that made the peer send it. Older than the timeout's first resend means
 * the original arrived — it was late, not lost — and the timeout was
 * needless: the window comes back and the resends stop (the response of
 * RFC 4015, as Linux's undo of a loss state on timestamps). Only for a
 * timeout outside a recovery: inside one, earlier resends of the episode
 * carry older TSvals, and an ACK they drew would look like proof (Linux
 * compares with the episode's first resend for the same reason). One
 * decision per timeout episode; a second timeout in a row keeps the
 * first's values. Called right after jk_tcp_undo_begin: the window to
 * restore is the one it kept. */
void jk_tcp_eifel_arm(struct jk_tcp *c)
{
    if (!c->ts_ok || c->rec.eifel_armed)
        return;
    c->rec.eifel_armed = true;
    c->rec.eifel_tsval = jk_tcp_ts_now(c); /* the resend goes in this pass */
    c->rec.eifel_recover = c->rec.recover; /* before the timeout moves it */
}

void jk_tcp_eifel_check(struct jk_tcp *c, const struct jk_seg *s)
{
    c->rec.eifel_armed = false;
    if (!c->rec.rto_recovery || !s->opt.has_ts || !seq_lt(s->opt.tsecr, c->rec.eifel_tsval))
        return;
    c->rec.spurious_rtos++;
    c->rec.in_recovery = c->rec.rto_recovery = false;
    c->rec.recover = c->rec.eifel_recover; /* a real hole may still begin a recovery */
    undo_cut(c);
}

/* RFC 8985 §6.2 step 4: a D-SACK says a resend was needless — the
 * reordering window was too short for this path. Widen it by min_rtt/4,
 * at most once per round trip, and keep it wide for 16 recoveries. */
static void rack_widen_on_dsack(struct jk_tcp *c)
{
    c->rec.dsacks++;
    if (c->rec.dsack_round_set && seq_lt(c->snd_una, c->rec.dsack_round))
        return;
    c->rec.dsack_round = c->snd_nxt;
    c->rec.dsack_round_set = true;
    if (c->rec.reo_mult < UINT8_MAX)
        c->rec.reo_mult = (uint8_t)(c->rec.reo_mult ? c->rec.reo_mult + 1 : 2);
    c->rec.reo_persist = 16;
}

/* A recovery ended: after 16 without a D-SACK the window is narrow again. */
void jk_tcp_rack_recovery_done(struct jk_tcp *c)
{
    if (c->rec.reo_persist)
        c->rec.reo_persist--;
    else
        c->rec.reo_mult = 1;
}

/* The lowest range leaves a full scoreboard: its bytes were counted
 * delivered; if the peer reports them again they must not count twice. */
static void forget_lowest_sack(struct jk_tcp *c)
{
    int lo = 0;
    for (int i = 1; i < c->rec.nsack; i++)
        if (seq_lt(c->rec.sack[i].start, c->rec.sack[lo].start))
            lo = i;
    uint32_t end = c->rec.sack[lo].end;
    if (!c->rec.forgot || seq_gt(end, c->rec.forgot_end))
        c->rec.forgot_end = end;
    c->rec.forgot += end - c->rec.sack[lo].start;
    jk_ranges_forget_lowest(c->rec.sack, &c->rec.nsack);
}

/* Take the SACK blocks of s into the scoreboard; the bytes they newly
 * cover (what arrived since the last ACK, above snd_una), and in *low
 * those of them below `below`. */
uint32_t jk_tcp_take_peer_sack(struct jk_tcp *c, const struct jk_seg *s, uint32_t below,
                               uint32_t *low)
{
    uint32_t newly = 0;
    *low = 0;
    if (!c->sack_ok)
        return 0;
    if (is_dsack(s)) {
        rack_widen_on_dsack(c);
        undo_on_dsack(c, s->opt.sack[0].left, s->opt.sack[0].right);
    }
    for (int i = 0; i < s->opt.nsack; i++) {
        uint32_t l = s->opt.sack[i].left, r = s->opt.sack[i].right;
        /* only blocks inside data we actually sent and that is unacked */
        if (!seq_lt(l, r) || !seq_gt(l, c->snd_una) || seq_gt(r, c->snd_max))
            continue;
        uint32_t had = jk_ranges_covered(c->rec.sack, c->rec.nsack, l, r);
        if (had == r - l)
            continue;
        if (seq_le(r, below))
            *low += (r - l) - had;
        else if (seq_lt(l, below))
            *low += (below - l) - jk_ranges_covered(c->rec.sack, c->rec.nsack, l, below);
        if (c->rec.nsack == JK_MAX_PEER_SACK)
            forget_lowest_sack(c); /* newer news first; at worst a byte goes twice */
        jk_ranges_add(c->rec.sack, &c->rec.nsack, JK_MAX_PEER_SACK, l, r, false);
        newly += (r - l) - had;
    }
    return newly;
}

void jk_tcp_prune_peer_sack(struct jk_tcp *c)
{
    jk_ranges_cut_below(c->rec.sack, &c->rec.nsack, c->snd_una);
}

static uint32_t highest_sacked(struct jk_tcp *c)
{
    return jk_ranges_max_end(c->rec.sack, c->rec.nsack, c->snd_una);
}

/* The peer holds every byte below snd_una and some above it, up to this. */
uint32_t jk_tcp_highest_delivered(struct jk_tcp *c)
{
    return highest_sacked(c);
}

/* Where holes end: at the highest SACKed byte in SACK recovery; after a
 * timeout nothing unSACKed is believed in flight, so at snd_max. */
static uint32_t hole_limit(struct jk_tcp *c)
{
    return c->rec.rto_recovery ? c->snd_max : highest_sacked(c);
}

/* The first unSACKed byte at or after from, below hole_limit. */
static bool next_hole(struct jk_tcp *c, uint32_t from, uint32_t *hole)
{
    *hole = jk_ranges_skip(c->rec.sack, c->rec.nsack, seq_max(from, c->snd_una));
    return seq_lt(*hole, hole_limit(c));
}

/* SACKed bytes inside [from, to); the scoreboard's ranges never overlap. */
uint32_t jk_tcp_sacked_in(struct jk_tcp *c, uint32_t from, uint32_t to)
{
    return jk_ranges_covered(c->rec.sack, c->rec.nsack, from, to);
}

/* Bytes the peer has SACKed above snd_una (RFC 6675 DupThresh test). */
uint32_t jk_tcp_sacked_bytes(struct jk_tcp *c)
{
    return jk_ranges_total(c->rec.sack, c->rec.nsack);
}

/* RACK's reordering window (RFC 8985 §6.2): how long a hole below SACKed
 * data may wait for a late segment before it counts as lost; min_rtt/4,
 * times the multiplier D-SACKs raised, at most SRTT. */
uint64_t jk_tcp_reo_wnd_us(struct jk_tcp *c)
{
    uint32_t w = c->rtt.min_rtt_us / 4 * (c->rec.reo_mult ? c->rec.reo_mult : 1);
    return c->rtt.srtt_us && w > c->rtt.srtt_us ? c->rtt.srtt_us : w;
}

/* Probe timeout (RFC 8985 §7.2): 2·SRTT plus timer slack (as Linux), plus
 * room for a delayed ACK when a single segment is out; never later than
 * the RTO. No fixed floor: on a sub-millisecond link a 10 ms floor would
 * be thirty round trips of silence. */
static uint64_t pto_us(struct jk_tcp *c)
{
    uint64_t pto = c->rtt.srtt_us ? 2ull * c->rtt.srtt_us + 2000 : c->rtt.rto_us;
    if (c->snd_max - c->snd_una <= c->smss)
        pto += 40000;
    return pto < c->rtt.rto_us ? pto : c->rtt.rto_us;
}

void jk_tcp_arm_tlp(struct jk_tcp *c)
{
    if (!c->cfg.tlp || c->rec.tlp_sent || c->snd_max == c->snd_una || !synchronized(c->state))
        c->timer[JK_T_TLP] = 0;
    else
        c->timer[JK_T_TLP] = NOW(c) + pto_us(c);
}


/* Retransmit one segment at seq right now (fast retransmit, SACK holes,
 * probes). Returns the sequence space sent (data and FIN), 0 if nothing
 * is there, <0 if busy (the timers cover it). */
static int retransmit_at(struct jk_tcp *c, uint32_t seq)
{
    uint32_t end = snd_data_end(c);
    uint32_t len = seq_lt(seq, end) ? min_u32(end - seq, c->smss) : 0;
    len = min_u32(len, jk_ranges_next_start(c->rec.sack, c->rec.nsack, seq, c->snd_max) - seq);
    bool fin = c->fin_sent && seq + len == c->fin_snd_seq;
    if (!len && !fin)
        return 0;
    bool fin_out;
    int r = jk_tcp_emit(c, JK_ACK | (fin ? JK_FIN : 0), seq, len, &fin_out);
    if (r < 0)
        return r;
    jk_tcp_sent_range(c, seq, (uint32_t)r, fin_out);
    c->rec.rexmit_last_us = NOW(c);
    if (seq == c->snd_una)
        c->rec.head_rexmit_us = NOW(c);
    return r + (fin_out ? 1 : 0);
}

/* Resend the hole at seq as the current pass's next step. 1 if sent, 0 if
 * nothing is there, <0 if busy. */
int jk_tcp_pass_resend(struct jk_tcp *c, uint32_t seq)
{
    int n = retransmit_at(c, seq);
    if (n > 0)
        c->rec.rexmit_hi = seq + (uint32_t)n;
    return n < 0 ? n : n > 0;
}

/* Bytes believed in the network (RFC 6675 "pipe"): sent and neither
 * acknowledged, SACKed, nor — in SACK recovery — deemed lost and not yet
 * sent again. Holes below the highest SACKed byte were sent before data
 * that has arrived, so recovery counts them lost (RACK's rule, RFC 8985)
 * until this pass resends them. */
uint32_t jk_tcp_pipe(struct jk_tcp *c)
{
    uint32_t p = (c->snd_nxt - c->snd_una) - jk_tcp_sacked_in(c, c->snd_una, c->snd_nxt);
    if (holes_known(c)) {
        uint32_t from = seq_max(c->rec.rexmit_hi, c->snd_una);
        uint32_t hi = seq_min(hole_limit(c), c->snd_nxt);
        if (seq_lt(from, hi))
            p -= (hi - from) - jk_tcp_sacked_in(c, from, hi);
        p -= min_u32(p, jk_rack_lost_bytes(c)); /* resends RACK found lost */
    }
    if (!c->sack_ok && !c->rec.in_recovery && c->rec.dupacks) {
        /* limited transmit (RFC 3042): each of the first two duplicate
         * ACKs says a segment left the network, so one new one may go */
        uint32_t left = min_u32(c->rec.dupacks, 2) * c->smss;
        p = p > left ? p - left : 0;
    }
    return p;
}

uint32_t jk_tcp_cwnd_room(struct jk_tcp *c)
{
    uint32_t pipe = jk_tcp_pipe(c);
    return c->cc.cwnd > pipe ? c->cc.cwnd - pipe : 0;
}

/* The head of the queue holds up every byte behind it, so it does not
 * wait for the pass to come round: once data sent after its last resend
 * has arrived (delivered at least one minimum RTT later) and the
 * reordering window has passed, that resend is lost too (RACK, RFC 8985
 * §6.2, applied to the one segment whose time we keep). */
static bool head_lost_again(struct jk_tcp *c)
{
    uint64_t t = c->rec.head_rexmit_us;
    if (!t || !seq_lt(c->snd_una, c->rec.rexmit_hi))
        return false;
    return c->rec.delivered_us >= t + c->rtt.min_rtt_us &&
           NOW(c) >= t + c->rtt.srtt_us + jk_tcp_reo_wnd_us(c) + 500;
}

/* SACK recovery (RFC 6675 NextSeg rule 1): resend the next hole this
 * pass has not resent yet. Once every hole has been resent, the holes
 * still missing a round trip (plus the reordering window) after the last
 * resend were lost again: begin a new pass (RACK's view of lost
 * retransmissions, RFC 8985 §6.2, at the granularity of a pass).
 * Returns 1 if a segment went out, 0 if none is due, <0 if busy. */
int jk_tcp_send_hole(struct jk_tcp *c)
{
    uint32_t hole;
    if (!holes_known(c))
        return 0;
    if (head_lost_again(c)) { /* out of turn: the pass keeps its place */
        int n = retransmit_at(c, c->snd_una);
        return n < 0 ? n : n > 0;
    }
    if (jk_rack_next_lost(c, &hole)) { /* a lost resend, also out of turn */
        if (jk_tcp_cwnd_room(c) == 0)
            return 0;
        if (hole != c->snd_una && !seq_lt(hole, c->snd_una + c->snd_wnd))
            return 0;
        int n = retransmit_at(c, hole);
        return n < 0 ? n : n > 0;
    }
    if (!next_hole(c, c->rec.rexmit_hi, &hole)) {
        uint64_t due = c->rec.rexmit_last_us + c->rtt.srtt_us + jk_tcp_reo_wnd_us(c) + 1000;
        if (!next_hole(c, c->snd_una, &hole))
            return 0;
        if (c->rec.delivered_us <= c->rec.rexmit_last_us)
            return 0; /* nothing arrived since: no sign of loss, the RTO decides */
        if (NOW(c) < due) {
            if (!c->timer[JK_T_RACK] || c->timer[JK_T_RACK] > due)
                c->timer[JK_T_RACK] = due; /* no ACK may come to tell us: check then */
            return 0;
        }
        c->rec.rexmit_hi = c->snd_una; /* a new pass */
    }
    if (jk_tcp_cwnd_room(c) == 0)
        return 0;
    if (hole != c->snd_una && !seq_lt(hole, c->snd_una + c->snd_wnd))
        return 0; /* the head goes regardless, as a probe of the window */
    return jk_tcp_pass_resend(c, hole);
}

/* A SACK showed a hole, too few for DupThresh. Data above it, sent after
 * it, arrived: the hole is lost once its send time plus RACK's RTT (that
 * of the latest-sent data delivered) plus the reordering window has
 * passed (RFC 8985 §6.2 step 5) — with a small window there may never be
 * three duplicates. The sent list gives both send times; a hole that went
 * well before the data that arrived (an application that wrote in
 * bursts) is lost at once, one sent with it waits the window. Without
 * the times (after a timeout), the window from now. True if it is lost
 * now. */
static bool reorder_lost(struct jk_tcp *c)
{
    if (!c->cfg.tlp || !c->rec.nsack)
        return false;
    uint64_t due = NOW(c) + jk_tcp_reo_wnd_us(c) + 1, hole_at, top_at;
    if (jk_rack_sent_at(c, c->snd_una, true, &hole_at) &&
        jk_rack_sent_at(c, jk_tcp_highest_delivered(c) - 1, false, &top_at) && top_at >= hole_at)
        due = hole_at + (NOW(c) - top_at) + jk_tcp_reo_wnd_us(c) + 1;
    if (due <= NOW(c))
        return true;
    if (!c->timer[JK_T_RACK] || c->timer[JK_T_RACK] > due)
        c->timer[JK_T_RACK] = due;
    return false;
}

/* The cumulative ACK moved outside a recovery: the reordering timer was
 * for the hole that was at snd_una, which is filled now. Any hole left is
 * timed afresh (at once if its time has already come; the timer pass
 * then starts the recovery). */
void jk_tcp_rack_rearm(struct jk_tcp *c)
{
    c->timer[JK_T_RACK] = 0;
    if (seq_ge(c->snd_una, c->rec.recover) && reorder_lost(c))
        c->timer[JK_T_RACK] = NOW(c);
}

/* RFC 6675 §5 with RFC 6582's guard: halve, then let send_hole and the
 * pipe estimate pace repairs and new data. Without SACK, NewReno's
 * window inflation stands in for the pipe estimate. */
static void enter_recovery(struct jk_tcp *c)
{
    /* a lost path probe is no congestion (jk_path_probe_lost also ends
     * the probe; it is asked only when congestion control is on) */
    bool cut = c->cfg.congestion && !jk_path_probe_lost(c);
    if (cut) {
        jk_tcp_undo_begin(c);
        jk_cc_on_loss(c);
    } else {
        c->rec.undo_armed = false; /* no cut to undo */
    }
    c->rec.recover = c->snd_max;
    c->rec.in_recovery = true;
    c->recoveries++;
    c->rec.rexmit_hi = c->snd_una;
    jk_rack_reset(c);
    jk_prr_begin(c, cut);
    jk_tcp_pass_resend(c, c->snd_una); /* the first repair goes regardless of cwnd */
    jk_tcp_changed(c);
}

void jk_tcp_on_rack(struct jk_tcp *c)
{
    uint32_t hole;
    c->timer[JK_T_RACK] = 0;
    if (!synchronized(c->state))
        return;
    if (c->rec.in_recovery) {
        jk_rack_detect(c);
        jk_tcp_changed(c); /* send_hole resends what is lost, or begins a new pass */
    }
    else if (seq_ge(c->snd_una, c->rec.recover) && next_hole(c, c->snd_una, &hole))
        enter_recovery(c);
}

void jk_tcp_on_dupack(struct jk_tcp *c)
{
    c->rec.dupacks++;
    /* the timed segment's ACK now waits for a hole to be repaired: its
     * sample would measure the repair, not the path */
    c->rtt.timing = false;
    if (c->rec.in_recovery) {
        jk_cc_on_dupack(c);
    } else if ((c->rec.dupacks >= 3 || jk_tcp_sacked_bytes(c) >= 3u * c->smss ||
                (c->rec.tlp_sent && c->rec.nsack)) &&
               seq_ge(c->snd_una, c->rec.recover)) {
        /* three duplicates, three segments SACKed above the hole, or a
         * tail-loss probe SACKed while the hole stays (RFC 8985 §7.4: the
         * probe came a PTO after the hole was sent, so it is lost, not
         * reordered). RFC 6582 §3.2: not twice for the same loss. */
        enter_recovery(c);
    } else if (seq_ge(c->snd_una, c->rec.recover) && reorder_lost(c)) {
        enter_recovery(c);
    }
    jk_tcp_changed(c);
}

/* Tail loss probe (RFC 8985 §7.3): nothing came back for a PTO, so make
 * the peer talk — a new segment if the peer's window allows, else the
 * last one again — instead of waiting for the RTO. Its ACK (with SACK)
 * restarts recovery. */
void jk_tcp_on_tlp(struct jk_tcp *c)
{
    c->timer[JK_T_TLP] = 0;
    if (c->rec.tlp_sent || c->rec.in_recovery || c->snd_max == c->snd_una ||
        !synchronized(c->state) || c->state == JKTCP_TIME_WAIT)
        return;
    c->rec.tlp_sent = true;
    c->tail_probes++;
    c->rtt.timing = false; /* an ACK now may answer the probe: it would time the PTO */
    uint32_t end = snd_data_end(c);
    uint32_t flight = c->snd_max - c->snd_una;
    if (seq_lt(c->snd_max, end) && c->snd_nxt == c->snd_max && flight < c->snd_wnd) {
        uint32_t len = min_u32(min_u32(end - c->snd_max, c->smss), c->snd_wnd - flight);
        int r = jk_tcp_emit(c, JK_ACK, c->snd_max, len, NULL);
        if (r >= 0) {
            c->snd_nxt = c->snd_max + (uint32_t)r;
            jk_tcp_sent_range(c, c->snd_max, (uint32_t)r, false);
        }
    } else {
        /* the last segment as it was sent (RFC 8985 §7.3), not the last
         * MSS of the buffer; the FIN goes with it */
        uint32_t last = c->fin_sent ? c->fin_snd_seq : c->snd_max;
        uint32_t len = min_u32(last - c->snd_una, c->smss);
        uint32_t from = last - len;
        if (seq_lt(from, c->rec.tail_seq) && seq_lt(c->rec.tail_seq, last))
            from = c->rec.tail_seq;
        retransmit_at(c, from);
    }
    c->timer[JK_T_RTO] = NOW(c) + c->rtt.rto_us; /* the RTO counts from the probe */
}

/* Resend everything in flight in segments that fit the new path MTU, at
 * once and without a window cut: the path shrank, the network did not
 * get congested (Linux's tcp_simple_retransmit). */
void jk_tcp_resend_all(struct jk_tcp *c)
{
    if (!synchronized(c->state) || c->snd_una == c->snd_max || c->state == JKTCP_TIME_WAIT)
        return;
    c->rec.in_recovery = c->rec.rto_recovery = true;
    c->rec.undo_armed = false; /* no cut: nothing to undo */
    c->rec.rexmit_hi = c->snd_una;
    jk_rack_reset(c);
    c->rec.recover = c->snd_max;
    c->rtt.timing = false;
    jk_tcp_changed(c);
}
