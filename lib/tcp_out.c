/* SPDX-License-Identifier: MIT */
/*
 * Output: the window we offer, options, building and sending one
 * segment, and the output pass (SYN, repairs, new data, FIN, ACK) with
 * Nagle and sender silly-window avoidance (RFC 9293 §3.8.6.2.1).
 */
#include "tcp_int.h"

#include <errno.h>
#include <string.h>

uint32_t jk_tcp_rcv_window(struct jk_tcp *c)
{
    if (!c->rcv.buf)
        return 0;
    return jk_ring_free_space(&c->rcv);
}

static uint16_t window_field(struct jk_tcp *c, bool syn)
{
    uint32_t w = jk_tcp_rcv_window(c);
    if (syn)
        return (uint16_t)min_u32(w, 65535);
    /* the right edge never moves left (RFC 9293 §3.8.6.2.1): when the
     * free space rounds below the edge already offered, offer that edge
     * again, rounded up to the scale as Linux does */
    uint32_t cur = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
    uint32_t unit = 1u << c->rcv_wscale;
    uint32_t down = w & ~(unit - 1);
    /* receiver SWS avoidance (§3.8.6.2.2): move the edge right only by at
     * least min(buffer/2, MSS) */
    uint32_t step = min_u32(c->rcv.cap / 2, c->local_mss);
    if (down < cur || (down > cur && down - cur < step))
        return (uint16_t)min_u32((uint32_t)(((uint64_t)cur + unit - 1) >> c->rcv_wscale), 65535);
    return (uint16_t)min_u32(w >> c->rcv_wscale, 65535);
}

uint32_t jk_tcp_ts_now(const struct jk_tcp *c)
{
    return (uint32_t)(NOW(c) / 1000) + c->ts_offset;
}

static void fill_options(struct jk_tcp *c, struct jk_seg *s)
{
    struct jk_tcp_opts *o = &s->opt;
    bool syn = s->flags & JK_SYN;
    bool passive = syn && (s->flags & JK_ACK);
    if (syn) {
        o->has_mss = true;
        o->mss = c->local_mss;
        if (!passive || c->ws_ok) {
            o->has_wscale = true;
            o->wscale = c->rcv_wscale;
        }
        o->sack_ok = passive ? c->sack_ok : c->cfg.sack;
    }
    if ((syn && !passive) ? c->cfg.timestamps : c->ts_ok) {
        o->has_ts = true;
        o->tsval = jk_tcp_ts_now(c);
        o->tsecr = c->ts_echo_once ? c->ts_echo : c->ts_recent;
    }
    if (!syn && c->sack_ok) {
        int n = 0;
        if (c->dsack_pending)
            o->sack[n++] = (struct jk_sack_block){c->dsack.start, c->dsack.end};
        for (int i = 0; i < c->ooo.n && n < JK_MAX_SACK; i++) {
            /* a FIN held beyond a hole is part of the block it ends (as
             * Linux reports it): the sender must not think it missing */
            uint32_t end = c->ooo.r[i].end;
            if (c->fin_pending && end == c->fin_rcv_seq)
                end++;
            o->sack[n++] = (struct jk_sack_block){c->ooo.r[i].start, end};
        }
        o->nsack = (uint8_t)n;
    }
}

/*
 * Build and send one segment carrying up to len data bytes starting at
 * seq (from the send ring), in a frame of at most mtu bytes. Returns the
 * data bytes sent (the MTU may cut len), or a negative errno (-EAGAIN:
 * transport busy, nothing sent). *fin (if not NULL): a FIN went with
 * them (it is dropped when the MTU cuts the data short of it).
 */
static int emit_sized(struct jk_tcp *c, uint8_t flags, uint32_t seq, uint32_t len,
                      uint32_t mtu, bool *fin)
{
    struct jk_tcp_env *e = c->env;
    struct jk_seg s;
    struct iovec iov[2];
    int iovcnt = 0, r;

    memset(&s, 0, sizeof s);
    s.src = e->local;
    s.dst = e->peer;
    s.sport = c->lport;
    s.dport = c->rport;
    s.seq = seq;
    s.flags = flags;
    s.ack = (flags & JK_ACK) ? c->rcv_nxt : 0;
    s.wnd = (flags & JK_RST) ? 0 : window_field(c, flags & JK_SYN);
    if (!(flags & JK_RST))
        fill_options(c, &s);
    size_t hdr = jk_header_len(&s);
    while (len && s.opt.nsack && hdr + len > mtu) { /* SACK blocks yield to data */
        s.opt.nsack--;
        hdr = jk_header_len(&s);
    }
    if (len > mtu - hdr)
        len = (uint32_t)(mtu - hdr);
    if (len && (flags & JK_FIN) && seq + len != snd_data_end(c))
        s.flags = flags &= (uint8_t)~JK_FIN; /* cut short: FIN goes later */
    if (len) {
        uint32_t pos = atomic_load_explicit(&c->snd.head, memory_order_relaxed) +
                       (seq - c->snd_buf_seq);
        iovcnt = jk_ring_iov(&c->snd, pos, len, iov);
    }
    size_t n = jk_build_segment(e->txbuf, JK_MAX_FRAME, &s, iov, iovcnt);
    if (n == 0)
        return -EINVAL;
    if ((r = e->ops->send(e, e->txbuf, n)) < 0)
        return r;
    if (flags & JK_ACK) {
        if (s.opt.nsack) /* the first block went out (blocks yield from the last) */
            c->dsack_pending = false;
        uint32_t w = s.wnd;
        c->rcv_adv = c->rcv_nxt + ((flags & JK_SYN) ? w : w << c->rcv_wscale);
        c->last_ack_sent = c->rcv_nxt;
        c->ack_now = c->ack_alone = false;
        c->segs_unacked = 0;
        c->timer[JK_T_DELACK] = 0;
    }
    if (fin)
        *fin = flags & JK_FIN;
    return (int)len;
}

int jk_tcp_emit(struct jk_tcp *c, uint8_t flags, uint32_t seq, uint32_t len, bool *fin)
{
    return emit_sized(c, flags, seq, len, c->env->pmtu, fin);
}

/* Sequence number for a segment without data (pure ACK, RST) that the
 * peer will accept: snd_max if it lies inside the peer's window, else the
 * window's right edge (Linux's tcp_acceptable_seq). A peer discards
 * segments whose sequence number lies beyond its window — ACK field and
 * all. */
uint32_t jk_tcp_acceptable_seq(struct jk_tcp *c)
{
    uint32_t edge = c->snd_una + c->snd_wnd;
    return seq_le(c->snd_max, edge) ? c->snd_max : edge;
}

/* Pacing (the controller's rate, c->cc.pacing_bps): a token bucket
 * JK_PACE_BURST_US deep. The I/O loop sleeps in whole milliseconds, so a
 * bucket of a little more than one lets the rate hold without a wake-up
 * per segment; an idle flow starts with a full bucket.
 *
 * When the bucket runs empty with data waiting, the flow is held: it
 * resumes only once a chunk is due (the rate for 1 ms, at least 2
 * segments, else at most 64 KiB: what Linux's tcp_tso_autosize puts in one
 * burst), when the pacing timer fires, and then sends back to back. Why:
 * resuming as soon as one segment is due makes flows that share the
 * output pass interleave segment by segment, and a receiver reading one
 * socket per flow is then woken per segment (8 kernel sinks: their
 * wake-ups inside our TUN writes were a fifth of the upload's CPU). A flow
 * that sent all it had (a request, a reply) is not held. */
static uint64_t pace_chunk_us(const struct jk_tcp *c)
{
    uint64_t bytes = c->cc.pacing_bps / 1000u;
    uint64_t lo = 2u * (uint64_t)c->smss, hi = 65536u;
    bytes = bytes < lo ? lo : bytes > hi ? hi : bytes;
    return bytes * 1000000u / c->cc.pacing_bps;
}

static bool pace_allows(struct jk_tcp *c)
{
    if (!c->cfg.congestion || !c->cc.pacing_bps)
        return true;
    uint64_t due = c->cc.pace_next_us + (c->cc.pace_held ? pace_chunk_us(c) : 0);
    if (due <= NOW(c)) {
        c->cc.pace_held = false;
        return true;
    }
    bool pending = seq_lt(c->snd_nxt, snd_data_end(c)) || holes_known(c) ||
                   (c->fin_queued && !c->fin_sent);
    if (!pending) /* an idle connection arms nothing, and is not held: */
        return false; /* its next write goes when its segment is due */
    if (!c->cc.pace_held) {
        c->cc.pace_held = true;
        due += pace_chunk_us(c);
    }
    c->timer[JK_T_PACE] = due;
    return false;
}

static void pace_sent(struct jk_tcp *c, uint32_t bytes)
{
    if (!c->cc.pacing_bps || !bytes)
        return;
    uint64_t now = NOW(c), floor = now > JK_PACE_BURST_US ? now - JK_PACE_BURST_US : 0;
    uint64_t t = c->cc.pace_next_us > floor ? c->cc.pace_next_us : floor;
    c->cc.pace_next_us = t + (uint64_t)bytes * 1000000u / c->cc.pacing_bps;
}

/* Note what a successful emission of [seq, seq+len(+syn/fin)) did. */
void jk_tcp_sent_range(struct jk_tcp *c, uint32_t seq, uint32_t len, bool synfin)
{
    uint32_t end = seq + len + (synfin ? 1 : 0);
    bool rexmit = seq_lt(seq, c->snd_max);
    if (rexmit) {
        c->retransmits++;
        c->env->st->retransmits++;
        jk_tcp_undo_resent(c, seq, seq + len);
        jk_rack_resent(c, seq, seq + len);
        if (c->rtt.timing && seq_le(seq, c->rtt.seq) && seq_gt(end, c->rtt.seq))
            c->rtt.timing = false; /* Karn: never time a retransmitted byte */
    } else if (!c->rtt.timing && end != seq) {
        c->rtt.timing = true;
        c->rtt.seq = seq;
        c->rtt.start = NOW(c);
    }
    if (!rexmit && len) {
        c->rec.tail_seq = seq;
        jk_rack_sent_new(c, seq, seq + len);
    }
    jk_prr_sent(c, len);
    pace_sent(c, len);
    if (seq_gt(end, c->snd_max))
        c->snd_max = end;
    if (end != seq) {
        jk_tcp_arm_rto(c);
        if (!rexmit || !c->timer[JK_T_TLP])
            jk_tcp_arm_tlp(c); /* RFC 8985 §7.2: rescheduled by each new segment */
    }
}

static int send_syn(struct jk_tcp *c)
{
    uint8_t flags = c->state == JKTCP_SYN_SENT ? JK_SYN : (JK_SYN | JK_ACK);
    int r = jk_tcp_emit(c, flags, c->iss, 0, NULL);
    if (r < 0)
        return r;
    c->snd_nxt = c->iss + 1;
    jk_tcp_sent_range(c, c->iss, 0, true);
    return 0;
}

/* Sender silly-window avoidance (RFC 9293 §3.8.6.2.1, MUST-38): when the
 * peer's window cuts a segment short of both the MSS and the data queued,
 * send it only if it is at least half the largest window the peer has
 * offered, or the override timer (the persist timer, as in Linux) fired
 * with nothing in flight. Otherwise wait for the window to open. */
static bool sws_send_ok(const struct jk_tcp *c, uint32_t len)
{
    return c->sws_override || len >= c->max_snd_wnd / 2;
}

/* Send what is due: hole repairs first (send_hole), then new data and
 * the FIN, as fast as the pacing rate allows. */
static int send_data(struct jk_tcp *c)
{
    bool net_limited = false; /* stopped by pacing or cwnd, not by data or the peer */
    for (;;) {
        if (!pace_allows(c)) {
            net_limited = seq_lt(c->snd_nxt, snd_data_end(c)) || c->rec.in_recovery;
            break;
        }
        int h = jk_tcp_send_hole(c);
        if (h < 0)
            return h;
        if (h > 0)
            continue;
        uint32_t end = snd_data_end(c);
        uint32_t avail = seq_lt(c->snd_nxt, end) ? end - c->snd_nxt : 0;
        uint32_t flight = c->snd_nxt - c->snd_una;
        uint32_t peer_room = c->snd_wnd > flight ? c->snd_wnd - flight : 0;
        uint32_t usable = min_u32(peer_room, c->cfg.congestion ? jk_tcp_cwnd_room(c) : UINT32_MAX);
        uint32_t len = min_u32(min_u32(avail, c->smss), usable);
        uint32_t probe = jk_path_probe_size(c, avail, usable);
        if (probe) { /* a larger segment that tests the path (path.h) */
            int r = emit_sized(c, JK_ACK, c->snd_nxt, avail, probe, NULL);
            if (r < 0)
                return r;
            jk_path_probe_sent(c, c->snd_nxt, (uint32_t)r);
            uint32_t seq = c->snd_nxt;
            c->snd_nxt = seq + (uint32_t)r;
            jk_tcp_sent_range(c, seq, (uint32_t)r, false);
            continue;
        }
        bool fin = c->fin_queued && !c->fin_sent && c->snd_nxt + len == end;
        net_limited = usable < min_u32(avail, peer_room); /* cwnd cut it short */
        if (avail && !len) {
            if (c->snd_wnd <= flight && flight == 0)
                jk_tcp_arm_persist(c);
            if (!fin)
                break;
        }
        if (!len && !fin)
            break;
        if (len && len < c->smss && len == avail && !c->cfg.nodelay && flight && !fin)
            break; /* Nagle */
        if (len < avail && len < c->smss && len == peer_room && !sws_send_ok(c, len)) {
            if (flight == 0)
                jk_tcp_arm_persist(c); /* the override timer */
            break;
        }
        c->sws_override = false;
        uint8_t flags = JK_ACK | (fin ? JK_FIN : 0);
        if (len && c->snd_nxt + len == end)
            flags |= JK_PSH;
        bool fin_out;
        int r = jk_tcp_emit(c, flags, c->snd_nxt, len, &fin_out);
        if (r < 0)
            return r;
        uint32_t sent = (uint32_t)r;
        uint32_t seq = c->snd_nxt;
        c->snd_nxt = seq + sent + (fin_out ? 1 : 0);
        if (fin_out) {
            c->fin_sent = true;
            c->fin_snd_seq = seq + sent;
        }
        jk_tcp_sent_range(c, seq, sent, fin_out);
    }
    if (!net_limited)
        c->cc.limited_elsewhere = true; /* tcp_cc_share.c: not the path's limit */
    if (c->snd_una == c->snd_max && !seq_lt(c->snd_nxt, snd_data_end(c)))
        jk_cc_share_leave(c); /* idle: no round will end to say so */
    return 0;
}

int jk_tcp_output(struct jk_tcp *c)
{
    int r = 0;
    switch (c->state) {
    case JKTCP_CLOSED:
    case JKTCP_LISTEN:
        return 0;
    case JKTCP_SYN_SENT:
        return c->snd_nxt == c->iss ? send_syn(c) : 0;
    case JKTCP_SYN_RCVD: /* SYN-ACK if due, then any challenge ACK */
        if (c->snd_nxt == c->iss && (r = send_syn(c)) < 0)
            return r;
        break;
    case JKTCP_TIME_WAIT:
        break;
    default:
        if ((r = send_data(c)) < 0)
            return r;
    }
    if (c->ack_now) { /* not snd_nxt: it may be rewound for go-back-N */
        int e = jk_tcp_emit(c, JK_ACK, jk_tcp_acceptable_seq(c), 0, NULL);
        if (e < 0)
            return e;
    }
    return 0;
}

/* RFC 5681 §4.2: an out-of-order segment, one that fills a hole and a
 * duplicate each get their own ACK at once. The adapter handles a burst
 * of frames before its output pass, which would fold a burst's worth of
 * duplicate ACKs into one: the sender would see one SACK update where it
 * expects many, and a single lost ACK would hide the whole burst. */
void jk_tcp_send_ack_alone(struct jk_tcp *c)
{
    if (!c->ack_alone || !c->ack_now)
        return;
    c->ack_alone = false;
    if (!c->env->tx_blocked)
        jk_tcp_emit(c, JK_ACK, jk_tcp_acceptable_seq(c), 0, NULL); /* on failure ack_now stays set */
}

void jk_tcp_send_probe(struct jk_tcp *c)
{
    /* seq = snd_una - 1: outside the window, so the peer must answer with
     * an ACK carrying its current window, and no data is consumed */
    if (jk_tcp_emit(c, JK_ACK, c->snd_una - 1, 0, NULL) < 0)
        c->ack_now = true;
}
