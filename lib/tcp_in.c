/* SPDX-License-Identifier: MIT */
/*
 * Input: segment arrival in every state (RFC 9293 §3.10.7), the
 * acceptability test, RST/SYN checks (RFC 5961), ACK processing, the peer's
 * window, data and FIN into the receive ring, out-of-order ranges and
 * D-SACK (RFC 2883), PAWS (RFC 7323).
 */
#include "tcp_int.h"

#include <errno.h>
#include <string.h>

/* SYN_SENT: RFC 9293 §3.10.7.3 */
static void input_syn_sent(struct jk_tcp *c, const struct jk_seg *s)
{
    bool has_ack = s->flags & JK_ACK;
    if (has_ack && (seq_le(s->ack, c->iss) || seq_gt(s->ack, c->snd_max))) {
        if (!(s->flags & JK_RST))
            jk_tcp_reset_for(c, s);
        /* the peer holds an old connection on these ports (RFC 9293
         * Figure 9): once our RST has cleared it, a SYN gets through, so
         * the first one goes again at once rather than after the RTO
         * (Linux: "previous FIN/ACK or RST/ACK might be ignored") */
        if (c->retries == 0 && c->timer[JK_T_RTO] > NOW(c) + JK_SYN_QUICK_US)
            c->timer[JK_T_RTO] = NOW(c) + JK_SYN_QUICK_US;
        jk_tcp_event(c, JK_TCP_TIMER);
        return;
    }
    if (s->flags & JK_RST) {
        if (has_ack)
            jk_tcp_to_closed(c, -ECONNREFUSED);
        return;
    }
    if (!(s->flags & JK_SYN))
        return;
    jk_tcp_take_syn_options(c, s, true);
    c->snd_wnd = (uint32_t)s->wnd; /* unscaled in a SYN */
    c->snd_wl1 = s->seq;
    c->snd_wl2 = s->ack;
    c->max_snd_wnd = c->snd_wnd;
    if (!has_ack) { /* simultaneous open */
        c->state = JKTCP_SYN_RCVD;
        c->snd_nxt = c->iss; /* resend our SYN as SYN-ACK */
        jk_tcp_changed(c);
        return;
    }
    c->snd_una = s->ack;
    if (c->rtt.timing) {
        jk_tcp_update_rtt(c, (uint32_t)(NOW(c) - c->rtt.start));
        c->rtt.timing = false;
    }
    jk_tcp_became_established(c);
    c->ack_now = true;
    jk_tcp_changed(c);
}

/* RCV.WND for the acceptability test: the window we offered (its edge
 * never moves left), within the room the ring has now. Data beyond the
 * offered edge is not taken even if it would fit, as Linux does: the
 * sender broke the window. TIME-WAIT takes nothing new: only the exact
 * next sequence number is in its window (an RST there ends it, as on
 * Linux; any other RST is dropped unanswered), buffers or not. */
static uint32_t rcv_wnd(struct jk_tcp *c)
{
    if (c->state == JKTCP_TIME_WAIT)
        return 0;
    uint32_t adv = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
    return min_u32(adv, jk_tcp_rcv_window(c));
}

/* RFC 9293 §3.10.7.4 first check, with the zero-window allowance for
 * ACKs. A zero-window probe keeps only its ACK. */
static bool acceptable(struct jk_tcp *c, struct jk_seg *s)
{
    uint32_t wnd = rcv_wnd(c);
    uint32_t seglen = seg_space(s);
    uint32_t nxt = c->rcv_nxt;
    if (seglen == 0) {
        if (wnd == 0)
            return s->seq == nxt;
        return seq_le(nxt, s->seq) && seq_lt(s->seq, nxt + wnd);
    }
    if (wnd == 0) {
        if (s->seq != nxt)
            return false;
        s->len = 0; /* keep the ACK, drop the data: a window probe */
        s->flags &= (uint8_t)~(JK_FIN | JK_SYN);
        c->ack_now = true; /* the probe learns our window from this ACK */
        return true;
    }
    bool start_in = seq_le(nxt, s->seq) && seq_lt(s->seq, nxt + wnd);
    bool end_in = seq_le(nxt, s->seq + seglen - 1) && seq_lt(s->seq + seglen - 1, nxt + wnd);
    return start_in || end_in;
}

/* Cut data before rcv_nxt and beyond the window. */
static void trim(struct jk_tcp *c, struct jk_seg *s)
{
    if (s->flags & JK_SYN) { /* SYN already processed: drop it */
        s->flags &= (uint8_t)~JK_SYN;
        s->seq++;
    }
    if (seq_lt(s->seq, c->rcv_nxt)) {
        uint32_t cut = c->rcv_nxt - s->seq;
        if (cut >= s->len) {
            if (cut > s->len) /* the FIN too is old */
                s->flags &= (uint8_t)~JK_FIN;
            cut = s->len;
        }
        s->payload += cut;
        s->len -= cut;
        s->seq += cut;
    }
    uint32_t wnd = rcv_wnd(c);
    uint32_t room = c->rcv_nxt + wnd - s->seq;
    if (s->len > room) {
        s->len = room;
        s->flags &= (uint8_t)~JK_FIN;
    }
}

static void got_reset(struct jk_tcp *c)
{
    switch (c->state) {
    case JKTCP_SYN_RCVD:
        jk_tcp_to_closed(c, -ECONNREFUSED);
        break;
    case JKTCP_ESTABLISHED:
    case JKTCP_FIN_WAIT_1:
    case JKTCP_FIN_WAIT_2:
    case JKTCP_CLOSE_WAIT:
        jk_tcp_to_closed(c, -ECONNRESET);
        break;
    default:
        jk_tcp_to_closed(c, 0);
    }
}

/* The ACK owed to a segment we do not accept: out of window, failing
 * PAWS, an RST or SYN in the window (RFC 5961 §3.2, §4.2) or an ACK for
 * data never sent (§5.2). If the segment occupies no sequence space (a
 * bare ACK, RST or SYN) the ACK goes at most once per JK_OOW_ACK_US:
 * otherwise a flood of blind RSTs gets as many ACKs back (§7), and two
 * ends that each find the other's ACKs out of window answer each other
 * forever (Linux limits the same way). Data and FIN are always answered:
 * their sender is waiting for that ACK. */
static void challenge_ack(struct jk_tcp *c, const struct jk_seg *s)
{
    if (!s->len && !(s->flags & JK_FIN)) {
        uint64_t now = NOW(c);
        if (now < c->oow_ack_next) {
            c->env->st->acks_limited++;
            return;
        }
        c->oow_ack_next = now + JK_OOW_ACK_US;
    }
    c->ack_now = true;
    jk_tcp_changed(c);
}

/* `fresh`: the bytes ack newly covers that the peer had not SACKed (what
 * it got since the last ACK; bytes it had SACKed arrived long ago, and a
 * cumulative ACK jumping over them after a repair says nothing about the
 * path now) — cwnd grows by these. */
static void on_new_ack(struct jk_tcp *c, uint32_t ack, uint32_t fresh)
{
    uint32_t acked = ack - c->snd_una;
    uint32_t end = snd_data_end(c);
    uint32_t data_acked = seq_lt(c->snd_buf_seq, seq_min(ack, end))
                              ? seq_min(ack, end) - c->snd_buf_seq
                              : 0;
    if (data_acked) {
        jk_ring_consume(&c->snd, data_acked);
        c->snd_buf_seq += data_acked;
        c->bytes_acked += data_acked;
        jk_tcp_data_moved(c);
    }
    c->snd_una = ack;
    if (seq_lt(c->snd_nxt, ack))
        c->snd_nxt = ack;
    /* the new head was resent in this pass at the latest at its last resend */
    bool head_resent = c->rec.in_recovery && seq_lt(ack, c->rec.rexmit_hi);
    c->rec.head_rexmit_us = head_resent ? c->rec.rexmit_last_us : 0;
    if (c->rtt.timing && seq_gt(ack, c->rtt.seq)) {
        jk_tcp_update_rtt(c, (uint32_t)(NOW(c) - c->rtt.start));
        c->rtt.timing = false;
    }
    if (c->retries)
        jk_tcp_rto_from_estimate(c);
    c->retries = 0;
    c->persist_backoff = 0;
    c->rec.dupacks = 0;
    jk_tcp_prune_peer_sack(c);
    if (c->rec.rto_recovery) {
        jk_cc_on_ack(c, fresh); /* slow start from one segment (RFC 5681 §3.1) */
        if (seq_ge(ack, c->rec.recover)) {
            c->rec.in_recovery = c->rec.rto_recovery = false;
            jk_tcp_rack_recovery_done(c);
            jk_cc_on_rto_recovery_exit(c);
        }
    } else if (c->rec.in_recovery) {
        if (seq_ge(ack, c->rec.recover)) { /* full ACK: leave recovery */
            c->rec.in_recovery = false;
            c->timer[JK_T_RACK] = 0;
            jk_tcp_rack_recovery_done(c);
            jk_cc_on_recovery_exit(c);
        } else if (!c->rec.nsack) {
            /* partial ACK and nothing SACKed above: the next segment is
             * lost too (RFC 6582); with SACK, send_hole finds holes */
            jk_cc_on_partial_ack(c, acked);
            if (!seq_lt(ack, c->rec.rexmit_hi))
                jk_tcp_pass_resend(c, ack);
        }
    } else {
        jk_tcp_rack_rearm(c);
        jk_cc_on_ack(c, fresh);
    }
    c->timer[JK_T_RTO] = 0;
    if (c->snd_una != c->snd_max)
        jk_tcp_arm_rto(c);
    c->rec.tlp_sent = false;
    jk_tcp_arm_tlp(c);
}

/* Take the peer's window from this segment unless it is older than the
 * one we have: an ACK that moves snd_una always carries news, whatever
 * its sequence number (a retransmission of old data with a fresh ACK —
 * Linux's tcp_may_update_window); otherwise RFC 9293's WL1/WL2 rule. */
static void update_send_window(struct jk_tcp *c, const struct jk_seg *s, bool advanced)
{
    uint32_t wnd = (uint32_t)s->wnd << c->snd_wscale;
    if (advanced || seq_lt(c->snd_wl1, s->seq) ||
        (c->snd_wl1 == s->seq && (seq_le(c->snd_wl2, s->ack) || wnd > c->snd_wnd))) {
        uint32_t old = c->snd_wnd;
        c->snd_wnd = wnd;
        if (seq_gt(s->seq, c->snd_wl1) || advanced)
            c->snd_wl1 = seq_max(c->snd_wl1, s->seq);
        c->snd_wl2 = s->ack;
        if (c->snd_wnd > c->max_snd_wnd)
            c->max_snd_wnd = c->snd_wnd;
        if (c->snd_wnd > old) {
            c->timer[JK_T_PERSIST] = 0;
            jk_tcp_changed(c);
        }
    }
}

/* SACKed bytes forgotten with the scoreboard were counted delivered when
 * first SACKed: of what this ACK delivers below the highest of them
 * (newly SACKed there, or acked there and not SACKed now), that much is
 * the same bytes again. Returns what to take off; the credit is gone once
 * snd_una passes them all. */
static uint32_t delivered_again(struct jk_tcp *c, const struct jk_seg *s, bool advanced,
                                uint32_t newly_low)
{
    uint32_t low = newly_low;
    if (advanced && seq_lt(c->snd_una, c->rec.forgot_end)) {
        uint32_t top = seq_min(s->ack, c->rec.forgot_end);
        low += (top - c->snd_una) - jk_tcp_sacked_in(c, c->snd_una, top);
    }
    uint32_t again = min_u32(c->rec.forgot, low);
    c->rec.forgot -= again;
    if (advanced && seq_ge(s->ack, c->rec.forgot_end))
        c->rec.forgot = 0;
    return again;
}

static bool process_ack(struct jk_tcp *c, const struct jk_seg *s)
{
    if (c->state == JKTCP_SYN_RCVD) {
        if (!seq_gt(s->ack, c->snd_una) || seq_gt(s->ack, c->snd_max)) {
            jk_tcp_reset_for(c, s);
            return false;
        }
        c->snd_una = s->ack;
        if (c->rtt.timing) {
            jk_tcp_update_rtt(c, (uint32_t)(NOW(c) - c->rtt.start));
            c->rtt.timing = false;
        }
        c->snd_wnd = (uint32_t)s->wnd << c->snd_wscale;
        c->max_snd_wnd = c->snd_wnd;
        c->snd_wl1 = s->seq;
        c->snd_wl2 = s->ack;
        jk_tcp_became_established(c);
        jk_tcp_event(c, JK_TCP_ESTABLISHED);
        jk_tcp_changed(c);
    }
    /* RFC 5961 §5.2: an ACK older than MAX.SND.WND below SND.UNA is
     * blind; and, as Linux bounds it, so is one below the first byte we
     * sent (older than every byte acknowledged so far) */
    uint32_t old_lim = c->bytes_acked < c->max_snd_wnd ? (uint32_t)c->bytes_acked : c->max_snd_wnd;
    if (seq_gt(s->ack, c->snd_max) || /* acks data never sent */
        seq_lt(s->ack, c->snd_una - old_lim)) {
        challenge_ack(c, s);
        return false;
    }
    uint32_t old_wnd = c->snd_wnd;
    bool advanced = seq_gt(s->ack, c->snd_una);
    uint32_t below = c->rec.forgot ? c->rec.forgot_end : c->snd_una; /* nothing to credit: none */
    uint32_t newly_low, newly_sacked = jk_tcp_take_peer_sack(c, s, below, &newly_low);
    uint32_t fresh = advanced ? (s->ack - c->snd_una) - jk_tcp_sacked_in(c, c->snd_una, s->ack) : 0;
    /* newly delivered: bytes newly SACKed and bytes newly acked that were
     * not SACKed before */
    uint32_t delivered = newly_sacked + fresh;
    if (c->rec.forgot)
        delivered -= delivered_again(c, s, advanced, newly_low);
    if (advanced || newly_sacked) {
        c->rec.delivered_us = NOW(c);
        if (c->rec.in_recovery && c->timer[JK_T_RTO]) { /* still moving: the passes have it */
            c->timer[JK_T_RTO] = 0;
            jk_tcp_arm_rto(c);
        }
    }
    if (c->rtt.timing && s->opt.nsack && c->sack_ok &&
        seq_le(s->opt.sack[0].left, c->rtt.seq) && seq_lt(c->rtt.seq, s->opt.sack[0].right)) {
        /* the timed segment's arrival above a hole triggered this ACK (the
         * first SACK block is the latest arrival, RFC 2018 §4): time it
         * now, before the hole's repair holds up its cumulative ACK (and,
         * under heavy loss, before a duplicate ACK cancels the sample) */
        jk_tcp_update_rtt(c, (uint32_t)(NOW(c) - c->rtt.start));
        c->rtt.timing = false;
    }
    if (advanced) {
        if (c->rec.eifel_armed)
            jk_tcp_eifel_check(c, s); /* before on_new_ack: it may end the recovery */
        on_new_ack(c, s->ack, fresh);
        jk_tcp_changed(c);
    } else if (s->ack == c->snd_una && s->len == 0 && !(s->flags & (JK_SYN | JK_FIN)) &&
               c->snd_max != c->snd_una &&
               (((uint32_t)s->wnd << c->snd_wscale) == old_wnd || s->opt.nsack)) {
        /* a duplicate ACK; with SACK the window may change meanwhile
         * (Linux grows it on every ACK), the SACK blocks say it is one */
        jk_tcp_on_dupack(c);
    }
    if (c->rec.in_recovery && jk_rack_detect(c))
        jk_tcp_changed(c);
    jk_prr_on_ack(c, delivered);
    if (delivered)
        jk_cc_on_delivered(c, delivered);
    if (advanced || s->opt.nsack)
        jk_path_acked(c); /* a path MTU probe may have made it */
    update_send_window(c, s, advanced);
    switch (c->state) {
    case JKTCP_FIN_WAIT_1:
        if (our_fin_acked(c)) {
            c->state = JKTCP_FIN_WAIT_2;
            if (c->user_released)
                c->timer[JK_T_CLOSE] = NOW(c) + JK_FIN_WAIT2_US;
        }
        break;
    case JKTCP_CLOSING:
        if (our_fin_acked(c))
            jk_tcp_to_time_wait(c);
        break;
    case JKTCP_LAST_ACK:
        if (our_fin_acked(c)) {
            jk_tcp_to_closed(c, 0);
            return false;
        }
        break;
    default:
        break;
    }
    return true;
}

static void pull_in_order(struct jk_tcp *c)
{
    bool moved = true;
    while (moved) {
        moved = false;
        for (int i = 0; i < c->ooo.n; i++) {
            struct jk_range *r = &c->ooo.r[i];
            if (seq_le(r->start, c->rcv_nxt)) {
                if (seq_gt(r->end, c->rcv_nxt)) {
                    uint32_t n = r->end - c->rcv_nxt;
                    jk_ring_produce(&c->rcv, n);
                    c->rcv_nxt += n;
                    c->bytes_delivered += n;
                }
                jk_ranges_remove(c->ooo.r, &c->ooo.n, i);
                moved = true;
                break;
            }
        }
    }
}

/* Data that arrived twice, [start, end): the next ACK reports it in its
 * first SACK block (D-SACK, RFC 2883). It tells the sender that a resend
 * was needless: Linux then undoes the window cut and widens its
 * reordering window instead of taking every late segment for a loss. The
 * last duplicate seen wins; an empty range is no duplicate. */
static void note_duplicate(struct jk_tcp *c, uint32_t start, uint32_t end)
{
    if (!c->sack_ok || !seq_lt(start, end))
        return;
    c->dsack = (struct jk_range){start, end};
    c->dsack_pending = c->ack_now = true;
}

static void take_data(struct jk_tcp *c, const struct jk_seg *s)
{
    uint32_t tail = atomic_load_explicit(&c->rcv.tail, memory_order_relaxed);
    jk_tcp_data_moved(c);
    if (s->seq == c->rcv_nxt) {
        jk_ring_put_at(&c->rcv, tail, s->payload, s->len);
        jk_ring_produce(&c->rcv, s->len);
        c->rcv_nxt += s->len;
        c->bytes_delivered += s->len;
        if (c->quickacks) {
            /* after a loss the sender runs on a small window: a delayed
             * ACK would stall it and inflate its RTT (Linux's quickack) */
            c->quickacks--;
            c->ack_now = true;
        }
        if (c->ooo.n) {
            pull_in_order(c);
            c->ack_now = c->ack_alone = true; /* a hole filled: tell the sender now */
            c->quickacks = JK_QUICKACKS;
        }
        if (++c->segs_unacked >= 2 || !c->cfg.delack_us)
            c->ack_now = true;
        else if (!c->timer[JK_T_DELACK])
            c->timer[JK_T_DELACK] = NOW(c) + c->cfg.delack_us;
    } else {
        int max = (int)c->cfg.max_ooo;
        for (int i = 0; i < c->ooo.n; i++)
            if (seq_le(c->ooo.r[i].start, s->seq + s->len) && seq_le(s->seq, c->ooo.r[i].end))
                note_duplicate(c, seq_max(s->seq, c->ooo.r[i].start),
                               seq_min(s->seq + s->len, c->ooo.r[i].end));
        /* With the table full a new island is dropped, not an old one:
         * the old ones were SACKed, and a sender never resends SACKed
         * bytes before a timeout (RFC 2018 §8 reneging; Linux resends
         * them only if the timeout finds the head itself SACKed), so
         * forgetting one would stall the transfer a timeout at a time */
        if (jk_ranges_add(c->ooo.r, &c->ooo.n, max, s->seq, s->seq + s->len, true) == 0)
            jk_ring_put_at(&c->rcv, tail + (s->seq - c->rcv_nxt), s->payload, s->len);
        c->ack_now = c->ack_alone = true; /* duplicate ACK with SACK for the sender */
    }
}

/* The peer's FIN, in order. Islands held beyond it are data the peer
 * sent past its own FIN: nothing will read them, and SACKing them would
 * report bytes that are not part of the stream; they go, as Linux's
 * tcp_fin purges its out-of-order queue. */
static void take_fin(struct jk_tcp *c)
{
    c->rcv_nxt++;
    c->ooo.n = 0;
    c->fin_rcvd = true;
    c->fin_pending = false;
    c->ack_now = true;
    switch (c->state) {
    case JKTCP_ESTABLISHED:
        c->state = JKTCP_CLOSE_WAIT;
        c->timer[JK_T_KEEPALIVE] = 0;
        break;
    case JKTCP_FIN_WAIT_1:
        if (our_fin_acked(c))
            jk_tcp_to_time_wait(c);
        else
            c->state = JKTCP_CLOSING;
        break;
    case JKTCP_FIN_WAIT_2:
        jk_tcp_to_time_wait(c);
        break;
    default:
        break;
    }
}

static void process_text(struct jk_tcp *c, const struct jk_seg *s)
{
    if (!receiving(c->state) || c->fin_rcvd)
        return; /* data after the peer's FIN is ignored (RFC 9293) */
    if (s->len) {
        if (c->user_released) { /* nobody will ever read it: like Linux, reset */
            jk_tcp_reset_conn(c, true, false);
            return;
        }
        take_data(c, s);
    }
    if (s->flags & JK_FIN) {
        uint32_t fin_seq = s->seq + s->len;
        if (fin_seq == c->rcv_nxt) {
            take_fin(c);
        } else {
            c->fin_pending = true;
            c->fin_rcv_seq = fin_seq;
            c->ack_now = true;
        }
    } else if (c->fin_pending && c->fin_rcv_seq == c->rcv_nxt) {
        take_fin(c);
    }
}

/* Old data: the sender resent it because our ACK went missing. Answer at
 * once, echoing this segment's timestamp if it is a plausible resend (it
 * passed PAWS and lies within one buffer below rcv_nxt). RFC 7323 would
 * echo TS.Recent, the timestamp of the last in-order segment, which can be
 * a whole timeout old; the sender takes that for an RTT sample (Linux
 * does) and one lost ACK inflates its RTO to the cap, and it reads the old
 * echo as "the original arrived" and undoes its timeout (Eifel). TS.Recent
 * itself stays: an unacceptable segment changes no state. */
static void ack_duplicate(struct jk_tcp *c, const struct jk_seg *s)
{
    if (c->state != JKTCP_TIME_WAIT) /* a repeated FIN too, as Linux (whose TIME-WAIT does not) */
        note_duplicate(c, s->seq, s->seq + seg_space(s));
    if (c->ts_ok && c->rcv.cap && seq_ge(s->seq + s->len, c->rcv_nxt - c->rcv.cap)) {
        c->ts_echo = s->opt.tsval;
        c->ts_echo_once = true;
    }
    c->ack_now = c->ack_alone = true;
    jk_tcp_changed(c); /* if the transport is busy, the next pass sends it */
    jk_tcp_send_ack_alone(c);
    c->ts_echo_once = false;
}

/* RFC 7323 §5.5: after 24 days without an update TS.Recent means nothing
 * (the peer's millisecond clock may have moved half its range on since),
 * so PAWS must not judge by it: the next acceptable segment sets it. */
static bool ts_recent_stale(const struct jk_tcp *c)
{
    return NOW(c) - c->ts_recent_us > JK_PAWS_IDLE_US;
}

void jk_tcp_input(struct jk_tcp *c, const struct jk_seg *seg)
{
    struct jk_seg s = *seg;
    c->last_rx_us = NOW(c);
    c->ka_probes = 0;
    if (c->state == JKTCP_SYN_SENT) {
        input_syn_sent(c, &s);
        return;
    }
    if (c->state == JKTCP_CLOSED || c->state == JKTCP_LISTEN)
        return;
    if (c->state == JKTCP_SYN_RCVD && (s.flags & JK_SYN) && s.seq == c->irs) {
        if (!(s.flags & JK_ACK)) { /* our SYN-ACK was lost: send it again */
            c->snd_nxt = c->iss;
            jk_tcp_changed(c);
            return;
        }
        /* simultaneous open (RFC 9293 Figure 7): the peer's SYN-ACK repeats
         * the SYN we hold and acknowledges ours. Take it as the ACK, and
         * answer the repeated SYN as a duplicate (as Linux does) */
        s.flags &= (uint8_t)~JK_SYN;
        s.seq++;
        note_duplicate(c, c->irs, c->irs + 1);
        c->ack_now = true;
    }
    if (c->ts_ok && !(s.flags & JK_RST)) {
        if (!s.opt.has_ts) { /* RFC 7323 §3.2 */
            c->env->st->drop_invalid++;
            return;
        }
        /* PAWS, §5.3, with Linux's one-tick tolerance (TCP_PAWS_WINDOW):
         * a pure ACK that overtook data sent a millisecond earlier has
         * moved TS.Recent past that data, which is no old duplicate */
        if (seq_lt(s.opt.tsval, c->ts_recent - JK_PAWS_WINDOW) && !ts_recent_stale(c)) {
            c->env->st->drop_invalid++;
            challenge_ack(c, &s);
            return;
        }
    }
    if (!acceptable(c, &s)) {
        c->env->st->drop_invalid++;
        if (!(s.flags & JK_RST)) { /* an RST out of the window: no answer (RFC 5961 §3.2) */
            if ((s.len || (s.flags & JK_FIN)) && seq_le(s.seq + seg_space(&s), c->rcv_nxt))
                ack_duplicate(c, &s);
            else
                challenge_ack(c, &s);
        }
        if (c->state == JKTCP_TIME_WAIT && (s.flags & JK_FIN))
            c->timer[JK_T_CLOSE] = NOW(c) + max_u32(c->cfg.timewait_us, 1);
        return;
    }
    if (s.flags & JK_RST) { /* RFC 5961 §3.2 */
        if (s.seq == c->rcv_nxt)
            got_reset(c);
        else
            challenge_ack(c, &s);
        return;
    }
    if (s.flags & JK_SYN) {
        if (c->state == JKTCP_SYN_RCVD && c->passive) {
            /* a new SYN in the window of a half-open passive connection:
             * the peer started over. RFC 9293 §3.10.7.4 drops the half-open
             * connection; Linux also resets the new SYN (tcp_check_req),
             * so the peer's next attempt finds the port clean */
            jk_tcp_reset_for(c, &s);
            jk_tcp_abort(c, false);
            return;
        }
        challenge_ack(c, &s); /* RFC 5961 §4.2 */
        return;
    }
    if (!(s.flags & JK_ACK))
        return;
    /* RFC 7323 §4.3: echo the TSval of the earliest segment not yet ACKed */
    if (c->ts_ok && s.opt.has_ts && seq_le(s.seq, c->last_ack_sent) &&
        (seq_ge(s.opt.tsval, c->ts_recent) || ts_recent_stale(c))) {
        c->ts_recent = s.opt.tsval;
        c->ts_recent_us = NOW(c);
    }
    if (s.len && seq_lt(s.seq, c->rcv_nxt)) /* partly old: trim drops that part */
        note_duplicate(c, s.seq, c->rcv_nxt);
    trim(c, &s);
    if (!process_ack(c, &s))
        return;
    if (c->state == JKTCP_TIME_WAIT) {
        if (s.flags & JK_FIN)
            challenge_ack(c, &s);
        return;
    }
    process_text(c, &s);
    if (c->state == JKTCP_CLOSED)
        return;
    if (c->ack_now || c->timer[JK_T_DELACK])
        jk_tcp_changed(c); /* also tells the handle what arrived */
    jk_tcp_send_ack_alone(c);
}

/* After the app read: announce the opened window only when it matters —
 * when the advertised window has fallen to half the buffer or less and
 * would at least double (as Linux does), and never for a sliver of space
 * (receiver-side silly window avoidance, RFC 9293 §3.8.6.2.2). */
void jk_tcp_app_read(struct jk_tcp *c)
{
    if (!receiving(c->state) || c->fin_rcvd || !c->rcv.buf)
        return;
    uint32_t adv = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
    uint32_t now = (jk_tcp_rcv_window(c) >> c->rcv_wscale) << c->rcv_wscale;
    uint32_t sliver = min_u32(c->local_mss, c->rcv.cap / 4);
    if ((uint64_t)adv * 2 <= c->rcv.cap && now >= 2 * (uint64_t)adv && now - adv >= sliver) {
        c->ack_now = true;
        jk_tcp_changed(c);
    }
}
