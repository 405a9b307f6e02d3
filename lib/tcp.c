/* SPDX-License-Identifier: MIT */
/*
 * The TCP state machine (RFC 9293) of one connection: segment arrival,
 * segment emission, timers. No I/O of its own: frames go out through
 * jk_adapter_send_frame, and the adapter decides when to call us.
 *
 * Sequence space bookkeeping:
 *   send:    snd_una <= snd_nxt <= snd_max; the send ring holds the data
 *            bytes [snd_buf_seq, snd_buf_seq + used). Once synchronized,
 *            snd_nxt == snd_max: repairs (after duplicate ACKs, SACKs or a
 *            timeout) resend holes in passes without rewinding it.
 *   receive: the receive ring's tail is rcv_nxt; out-of-order bytes are
 *            stored in place beyond the tail and tracked in ooo[], so
 *            reassembly needs no extra memory and the window is simply
 *            the ring's free space.
 */
#include "tcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NOW(c) ((c)->a->now)

static uint32_t min_u32(uint32_t x, uint32_t y) { return x < y ? x : y; }
static uint32_t max_u32(uint32_t x, uint32_t y) { return x > y ? x : y; }

static bool synchronized(int state)
{
    return state >= JKTCP_ESTABLISHED;
}

static uint32_t snd_data_end(struct jktcp_conn *c)
{
    return c->snd_buf_seq + jk_ring_used(&c->snd);
}

static uint32_t ip_header_len(const struct jktcp_adapter *a)
{
    return a->local.family == 4 ? 20 : 40;
}

/* ------------------------------------------------------------------ */
/* Setup                                                              */
/* ------------------------------------------------------------------ */

static uint8_t wscale_for(uint32_t rcvbuf)
{
    uint8_t s = 0;
    while (s < 14 && (65535u << s) < rcvbuf)
        s++;
    return s;
}

static uint16_t mss_for_mtu(const struct jktcp_adapter *a)
{
    uint32_t m = a->mtu - ip_header_len(a) - 20;
    if (a->mss_cap && a->mss_cap < m)
        m = a->mss_cap;
    return (uint16_t)(m > 65535 ? 65535 : m);
}

int jk_tcp_init_conn(struct jktcp_conn *c, struct jktcp_adapter *a, uint16_t lport, uint16_t rport)
{
    int r;
    c->a = a;
    c->cfg = a->cfg;
    jk_heap_node_init(&c->timer);
    c->lport = lport;
    c->rport = rport;
    c->state = JKTCP_CLOSED;
    if ((r = jk_ring_init(&c->snd, c->cfg.sndbuf)) < 0)
        return r;
    if ((r = jk_ring_init(&c->rcv, c->cfg.rcvbuf)) < 0) {
        jk_ring_free(&c->snd);
        return r;
    }
    c->iss = jk_random(a);
    c->ts_offset = jk_random(a);
    c->snd_una = c->snd_nxt = c->snd_max = c->iss;
    c->snd_buf_seq = c->iss + 1;
    c->recover = c->iss;
    c->local_mss = mss_for_mtu(a);
    c->rcv_wscale = wscale_for(c->rcv.cap);
    c->rto_us = c->cfg.rto_init_us;
    c->ssthresh = UINT32_MAX;
    c->last_rx_us = a->now;
    return 0;
}

void jk_tcp_free_buffers(struct jktcp_conn *c)
{
    jk_ring_free(&c->snd);
    jk_ring_free(&c->rcv);
}

/* Payload per segment: the peer's MSS (raised to a floor first: a tiny or
 * hostile MSS must not turn into a huge one below), our own, and what the
 * path carries, less the timestamp option (RFC 6691). */
static void compute_smss(struct jktcp_conn *c)
{
    uint32_t path = c->a->pmtu - ip_header_len(c->a) - 20;
    uint32_t m = min_u32(min_u32(max_u32(c->peer_mss, JK_MIN_SND_MSS), c->local_mss), path);
    if (c->ts_ok)
        m -= 12;
    c->smss = (uint16_t)m;
}

/* Effective payload per segment, once the handshake fixed the options. */
static void set_smss(struct jktcp_conn *c)
{
    compute_smss(c);
    if (!c->cfg.congestion) {
        c->cwnd = UINT32_MAX;
    } else {
        c->cwnd = 10u * c->smss; /* RFC 6928 initial window */
    }
}

/* ------------------------------------------------------------------ */
/* Windows                                                            */
/* ------------------------------------------------------------------ */

uint32_t jk_tcp_rcv_window(struct jktcp_conn *c)
{
    if (!c->rcv.buf)
        return 0;
    return jk_ring_free_space(&c->rcv);
}

/* The window field we would put in a segment, and the edge it implies. */
static uint16_t window_field(struct jktcp_conn *c, bool syn)
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

/* ------------------------------------------------------------------ */
/* Emission                                                           */
/* ------------------------------------------------------------------ */

/* Our timestamp clock: milliseconds, from a random offset per connection. */
static uint32_t ts_now(const struct jktcp_conn *c)
{
    return (uint32_t)(NOW(c) / 1000) + c->ts_offset;
}

static void fill_options(struct jktcp_conn *c, struct jk_seg *s)
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
        o->tsval = ts_now(c);
        o->tsecr = c->ts_echo_once ? c->ts_echo : c->ts_recent;
    }
    if (!syn && c->sack_ok) {
        int n = 0;
        if (c->dsack_pending)
            o->sack[n++] = (struct jk_sack_block){c->dsack.start, c->dsack.end};
        for (int i = 0; i < c->nooo && n < JK_MAX_SACK; i++) {
            /* a FIN held beyond a hole is part of the block it ends (as
             * Linux reports it): the sender must not think it missing */
            uint32_t end = c->ooo[i].end;
            if (c->fin_pending && end == c->fin_rcv_seq)
                end++;
            o->sack[n++] = (struct jk_sack_block){c->ooo[i].start, end};
        }
        o->nsack = (uint8_t)n;
    }
}

/*
 * Build and send one segment carrying up to len data bytes starting at
 * seq (from the send ring), in a frame of at most mtu bytes. Returns the
 * data bytes sent (the MTU may cut len), or a negative errno (-EAGAIN:
 * transport busy, nothing sent).
 */
static long emit_sized(struct jktcp_conn *c, uint8_t flags, uint32_t seq, uint32_t len,
                       uint32_t mtu)
{
    struct jktcp_adapter *a = c->a;
    struct jk_seg s;
    struct iovec iov[2];
    int iovcnt = 0, r;

    memset(&s, 0, sizeof s);
    s.src = a->local;
    s.dst = a->peer;
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
    size_t n = jk_build_segment(a->txbuf, JK_MAX_FRAME, &s, iov, iovcnt);
    if (n == 0)
        return -EINVAL;
    if ((r = jk_adapter_send_frame(a, a->txbuf, n)) < 0)
        return r;
    if (flags & JK_ACK) {
        if (s.opt.nsack) /* the first block went out (blocks yield from the last) */
            c->dsack_pending = false;
        uint32_t w = s.wnd;
        c->rcv_adv = c->rcv_nxt + ((flags & JK_SYN) ? w : w << c->rcv_wscale);
        c->last_ack_sent = c->rcv_nxt;
        c->ack_now = c->ack_alone = false;
        c->segs_unacked = 0;
        c->t_delack = 0;
    }
    return len | ((long)(flags & JK_FIN) << 32);
}

/* A segment sized for the path. */
static long emit(struct jktcp_conn *c, uint8_t flags, uint32_t seq, uint32_t len)
{
    return emit_sized(c, flags, seq, len, c->a->pmtu);
}

/* Sequence number for a segment without data (pure ACK, RST) that the
 * peer will accept: snd_max if it lies inside the peer's window, else the
 * window's right edge (Linux's tcp_acceptable_seq). A peer discards
 * segments whose sequence number lies beyond its window — ACK field and
 * all. */
static uint32_t acceptable_seq(struct jktcp_conn *c)
{
    uint32_t edge = c->snd_una + c->snd_wnd;
    return seq_le(c->snd_max, edge) ? c->snd_max : edge;
}

static void arm_rto(struct jktcp_conn *c)
{
    if (!c->t_rto)
        c->t_rto = NOW(c) + c->rto_us;
}

/* Probe timeout (RFC 8985 §7.2): 2·SRTT plus timer slack (as Linux), plus
 * room for a delayed ACK when a single segment is out; never later than
 * the RTO. No fixed floor: on a sub-millisecond link a 10 ms floor would
 * be thirty round trips of silence. */
static uint64_t pto_us(struct jktcp_conn *c)
{
    uint64_t pto = c->srtt_us ? 2ull * c->srtt_us + 2000 : c->rto_us;
    if (c->snd_max - c->snd_una <= c->smss)
        pto += 40000;
    return pto < c->rto_us ? pto : c->rto_us;
}

static void arm_tlp(struct jktcp_conn *c)
{
    if (!c->cfg.tlp || c->tlp_sent || c->snd_max == c->snd_una || !synchronized(c->state))
        c->t_tlp = 0;
    else
        c->t_tlp = NOW(c) + pto_us(c);
}

/* Note what a successful emission of [seq, seq+len(+syn/fin)) did. */
static void sent_range(struct jktcp_conn *c, uint32_t seq, uint32_t len, bool synfin)
{
    uint32_t end = seq + len + (synfin ? 1 : 0);
    bool rexmit = seq_lt(seq, c->snd_max);
    if (rexmit) {
        c->retransmits++;
        c->a->st.retransmits++;
        if (c->rtt_timing && seq_le(seq, c->rtt_seq) && seq_gt(end, c->rtt_seq))
            c->rtt_timing = false; /* Karn: never time a retransmitted byte */
    } else if (!c->rtt_timing && end != seq) {
        c->rtt_timing = true;
        c->rtt_seq = seq;
        c->rtt_start = NOW(c);
    }
    if (!rexmit && len)
        c->tail_seq = seq;
    if (seq_gt(end, c->snd_max))
        c->snd_max = end;
    if (end != seq) {
        arm_rto(c);
        if (!rexmit || !c->t_tlp)
            arm_tlp(c); /* RFC 8985 §7.2: rescheduled by each new segment */
    }
}

static int send_syn(struct jktcp_conn *c)
{
    uint8_t flags = c->state == JKTCP_SYN_SENT ? JK_SYN : (JK_SYN | JK_ACK);
    long r = emit(c, flags, c->iss, 0);
    if (r < 0)
        return (int)r;
    c->snd_nxt = c->iss + 1;
    sent_range(c, c->iss, 0, true);
    return 0;
}

static uint32_t hole_limit(struct jktcp_conn *c);
static bool next_hole(struct jktcp_conn *c, uint32_t from, uint32_t *hole);
static uint64_t reo_wnd_us(struct jktcp_conn *c);

static uint32_t next_sacked_start(struct jktcp_conn *c, uint32_t from)
{
    uint32_t best = c->snd_max;
    for (int i = 0; i < c->npeer_sack; i++)
        if (seq_gt(c->peer_sack[i].start, from) && seq_lt(c->peer_sack[i].start, best))
            best = c->peer_sack[i].start;
    return best;
}

static void arm_persist(struct jktcp_conn *c)
{
    if (c->t_persist || c->t_rto)
        return;
    uint64_t iv = (uint64_t)c->rto_us << min_u32(c->persist_backoff, 16);
    if (iv > c->cfg.rto_max_us)
        iv = c->cfg.rto_max_us;
    c->t_persist = NOW(c) + iv;
}

/* Retransmit one segment at seq right now (fast retransmit, SACK holes,
 * probes). Returns the sequence space sent (data and FIN), 0 if nothing
 * is there, <0 if busy (the timers cover it). */
static long retransmit_at(struct jktcp_conn *c, uint32_t seq)
{
    uint32_t end = snd_data_end(c);
    uint32_t len = seq_lt(seq, end) ? min_u32(end - seq, c->smss) : 0;
    len = min_u32(len, next_sacked_start(c, seq) - seq);
    bool fin = c->fin_sent && seq + len == c->fin_snd_seq;
    if (!len && !fin)
        return 0;
    long r = emit(c, JK_ACK | (fin ? JK_FIN : 0), seq, len);
    if (r < 0)
        return (int)r;
    sent_range(c, seq, (uint32_t)r, r >> 32);
    c->rexmit_last_us = NOW(c);
    if (seq == c->snd_una)
        c->head_rexmit_us = NOW(c);
    return (long)(uint32_t)r + ((r >> 32) ? 1 : 0);
}

/* Resend the hole at seq as the current pass's next step. 1 if sent, 0 if
 * nothing is there, <0 if busy. */
static int pass_resend(struct jktcp_conn *c, uint32_t seq)
{
    long n = retransmit_at(c, seq);
    if (n > 0)
        c->rexmit_hi = seq + (uint32_t)n;
    return n < 0 ? (int)n : n > 0;
}

/* Recovery has holes to work on: SACK shows them, or a timeout made every
 * unSACKed byte one. */
static bool holes_known(struct jktcp_conn *c)
{
    return c->in_recovery && (c->npeer_sack || c->rto_recovery);
}

/* SACKed bytes inside [from, to); the scoreboard's ranges never overlap. */
static uint32_t sacked_in(struct jktcp_conn *c, uint32_t from, uint32_t to)
{
    uint32_t n = 0;
    for (int i = 0; i < c->npeer_sack; i++) {
        uint32_t l = seq_max(c->peer_sack[i].start, from), r = seq_min(c->peer_sack[i].end, to);
        if (seq_lt(l, r))
            n += r - l;
    }
    return n;
}

/* Bytes believed in the network (RFC 6675 "pipe"): sent and neither
 * acknowledged, SACKed, nor — in SACK recovery — deemed lost and not yet
 * sent again. Holes below the highest SACKed byte were sent before data
 * that has arrived, so recovery counts them lost (RACK's rule, RFC 8985)
 * until this pass resends them. */
static uint32_t pipe_bytes(struct jktcp_conn *c)
{
    uint32_t p = (c->snd_nxt - c->snd_una) - sacked_in(c, c->snd_una, c->snd_nxt);
    if (holes_known(c)) {
        uint32_t from = seq_max(c->rexmit_hi, c->snd_una);
        uint32_t hi = seq_min(hole_limit(c), c->snd_nxt);
        if (seq_lt(from, hi))
            p -= (hi - from) - sacked_in(c, from, hi);
    }
    if (!c->sack_ok && !c->in_recovery && c->dupacks) {
        /* limited transmit (RFC 3042): each of the first two duplicate
         * ACKs says a segment left the network, so one new one may go */
        uint32_t left = min_u32(c->dupacks, 2) * c->smss;
        p = p > left ? p - left : 0;
    }
    return p;
}

static uint32_t cwnd_room(struct jktcp_conn *c)
{
    uint32_t pipe = pipe_bytes(c);
    return c->cwnd > pipe ? c->cwnd - pipe : 0;
}

/* The head of the queue holds up every byte behind it, so it does not
 * wait for the pass to come round: once data sent after its last resend
 * has arrived (delivered at least one minimum RTT later) and the
 * reordering window has passed, that resend is lost too (RACK, RFC 8985
 * §6.2, applied to the one segment whose time we keep). */
static bool head_lost_again(struct jktcp_conn *c)
{
    uint64_t t = c->head_rexmit_us;
    if (!t || !seq_lt(c->snd_una, c->rexmit_hi))
        return false;
    return c->delivered_us >= t + c->min_rtt_us &&
           NOW(c) >= t + c->srtt_us + reo_wnd_us(c) + 500;
}

/* SACK recovery (RFC 6675 NextSeg rule 1): resend the next hole this
 * pass has not resent yet. Once every hole has been resent, the holes
 * still missing a round trip (plus the reordering window) after the last
 * resend were lost again: begin a new pass (RACK's view of lost
 * retransmissions, RFC 8985 §6.2, at the granularity of a pass).
 * Returns 1 if a segment went out, 0 if none is due, <0 if busy. */
static int send_hole(struct jktcp_conn *c)
{
    uint32_t hole;
    if (!holes_known(c))
        return 0;
    if (head_lost_again(c)) { /* out of turn: the pass keeps its place */
        long n = retransmit_at(c, c->snd_una);
        return n < 0 ? (int)n : n > 0;
    }
    if (!next_hole(c, c->rexmit_hi, &hole)) {
        uint64_t due = c->rexmit_last_us + c->srtt_us + reo_wnd_us(c) + 1000;
        if (!next_hole(c, c->snd_una, &hole))
            return 0;
        if (c->delivered_us <= c->rexmit_last_us)
            return 0; /* nothing arrived since: no sign of loss, the RTO decides */
        if (NOW(c) < due) {
            if (!c->t_rack || c->t_rack > due)
                c->t_rack = due; /* no ACK may come to tell us: check then */
            return 0;
        }
        c->rexmit_hi = c->snd_una; /* a new pass */
    }
    if (cwnd_room(c) == 0)
        return 0;
    if (hole != c->snd_una && !seq_lt(hole, c->snd_una + c->snd_wnd))
        return 0; /* the head goes regardless, as a probe of the window */
    return pass_resend(c, hole);
}

/* Send what is due: hole repairs first (send_hole), then new data and
 * the FIN. */
/* Sender silly-window avoidance (RFC 9293 §3.8.6.2.1, MUST-38): when the
 * peer's window cuts a segment short of both the MSS and the data queued,
 * send it only if it is at least half the largest window the peer has
 * offered, or the override timer (the persist timer, as in Linux) fired
 * with nothing in flight. Otherwise wait for the window to open. */
static bool sws_send_ok(const struct jktcp_conn *c, uint32_t len)
{
    return c->sws_override || len >= c->max_snd_wnd / 2;
}

static int send_data(struct jktcp_conn *c)
{
    for (;;) {
        int h = send_hole(c);
        if (h < 0)
            return h;
        if (h > 0)
            continue;
        uint32_t end = snd_data_end(c);
        uint32_t avail = seq_lt(c->snd_nxt, end) ? end - c->snd_nxt : 0;
        uint32_t flight = c->snd_nxt - c->snd_una;
        uint32_t peer_room = c->snd_wnd > flight ? c->snd_wnd - flight : 0;
        uint32_t usable = min_u32(peer_room, c->cfg.congestion ? cwnd_room(c) : UINT32_MAX);
        uint32_t len = min_u32(min_u32(avail, c->smss), usable);
        uint32_t probe = jk_path_probe_size(c, avail, usable);
        if (probe) { /* a larger segment that tests the path (path.h) */
            long r = emit_sized(c, JK_ACK, c->snd_nxt, avail, probe);
            if (r < 0)
                return (int)r;
            jk_path_probe_sent(c, c->snd_nxt, (uint32_t)r);
            uint32_t seq = c->snd_nxt;
            c->snd_nxt = seq + (uint32_t)r;
            sent_range(c, seq, (uint32_t)r, false);
            continue;
        }
        bool fin = c->fin_queued && !c->fin_sent && c->snd_nxt + len == end;
        if (avail && !len) {
            if (c->snd_wnd <= flight && flight == 0)
                arm_persist(c);
            if (!fin)
                break;
        }
        if (!len && !fin)
            break;
        if (len && len < c->smss && len == avail && !c->cfg.nodelay && flight && !fin)
            break; /* Nagle */
        if (len < avail && len < c->smss && len == peer_room && !sws_send_ok(c, len)) {
            if (flight == 0)
                arm_persist(c); /* the override timer */
            break;
        }
        c->sws_override = false;
        uint8_t flags = JK_ACK | (fin ? JK_FIN : 0);
        if (len && c->snd_nxt + len == end)
            flags |= JK_PSH;
        long r = emit(c, flags, c->snd_nxt, len);
        if (r < 0)
            return (int)r;
        uint32_t sent = (uint32_t)r;
        bool fin_out = r >> 32;
        uint32_t seq = c->snd_nxt;
        c->snd_nxt = seq + sent + (fin_out ? 1 : 0);
        if (fin_out) {
            c->fin_sent = true;
            c->fin_snd_seq = seq + sent;
        }
        sent_range(c, seq, sent, fin_out);
    }
    return 0;
}

int jk_tcp_output(struct jktcp_conn *c)
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
        long e = emit(c, JK_ACK, acceptable_seq(c), 0);
        if (e < 0)
            return (int)e;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Closing                                                            */
/* ------------------------------------------------------------------ */

static void to_closed(struct jktcp_conn *c, int err)
{
    if (err && !c->err)
        c->err = err;
    jk_path_conn_gone(c);
    c->state = JKTCP_CLOSED;
    c->t_rto = c->t_delack = c->t_persist = c->t_keepalive = c->t_close = c->t_tlp = 0;
    c->t_rack = 0;
    c->ack_now = false;
    jk_adapter_conn_closed(c);
}

static void to_time_wait(struct jktcp_conn *c)
{
    c->state = JKTCP_TIME_WAIT;
    if (c->user_released)
        jk_tcp_free_buffers(c); /* nothing left to send or read */
    c->t_rto = c->t_persist = c->t_keepalive = c->t_tlp = c->t_rack = 0;
    c->t_close = NOW(c) + max_u32(c->cfg.timewait_us, 1);
}

void jk_tcp_fail(struct jktcp_conn *c, int err)
{
    to_closed(c, err);
}

/* Reset the connection: a RST that the peer accepts, then CLOSED. ts: the
 * RST carries a timestamp (RFC 7323 §3.2 SHOULD, once negotiated), as
 * Linux's resets of its own do; a RST answering a segment goes bare, as
 * Linux's tcp_v4_send_reset sends it. */
static void reset_conn(struct jktcp_conn *c, bool send_rst, bool ts)
{
    if (send_rst && synchronized(c->state) && c->state != JKTCP_TIME_WAIT) {
        struct jk_rst rst = {c->lport, c->rport, acceptable_seq(c), c->rcv_nxt, JK_RST | JK_ACK,
                             false, 0, 0};
        if (ts && c->ts_ok) {
            rst.ts = true;
            rst.tsval = ts_now(c);
            rst.tsecr = c->ts_recent;
        }
        jk_adapter_queue_rst(c->a, &rst);
    }
    if (c->state != JKTCP_CLOSED)
        to_closed(c, 0);
}

void jk_tcp_abort(struct jktcp_conn *c, bool send_rst)
{
    reset_conn(c, send_rst, true);
}

void jk_tcp_shutdown(struct jktcp_conn *c)
{
    if (c->fin_queued)
        return;
    c->fin_queued = true;
    if (c->state == JKTCP_ESTABLISHED)
        c->state = JKTCP_FIN_WAIT_1;
    else if (c->state == JKTCP_CLOSE_WAIT)
        c->state = JKTCP_LAST_ACK;
    jk_adapter_mark_dirty(c);
}

/* ------------------------------------------------------------------ */
/* Opening                                                            */
/* ------------------------------------------------------------------ */

void jk_tcp_connect(struct jktcp_conn *c)
{
    c->state = JKTCP_SYN_SENT;
    c->peer_mss = c->a->local.family == 4 ? 536 : 1220;
    jk_adapter_mark_dirty(c);
}

static void take_syn_options(struct jktcp_conn *c, const struct jk_seg *s, bool we_offered_all)
{
    const struct jk_tcp_opts *o = &s->opt;
    c->peer_mss = o->has_mss && o->mss ? o->mss : (c->a->local.family == 4 ? 536 : 1220);
    c->ws_ok = o->has_wscale && we_offered_all;
    c->snd_wscale = c->ws_ok ? (o->wscale > 14 ? 14 : o->wscale) : 0;
    if (!c->ws_ok)
        c->rcv_wscale = 0;
    c->sack_ok = o->sack_ok && c->cfg.sack;
    c->ts_ok = o->has_ts && c->cfg.timestamps;
    if (c->ts_ok) {
        c->ts_recent = o->tsval;
        c->ts_recent_us = NOW(c);
    }
    c->irs = s->seq;
    c->rcv_nxt = s->seq + 1;
    c->rcv_adv = c->rcv_nxt;
    c->last_ack_sent = c->rcv_nxt;
    set_smss(c);
}

void jk_tcp_accept_syn(struct jktcp_conn *c, const struct jk_seg *syn)
{
    c->state = JKTCP_SYN_RCVD;
    take_syn_options(c, syn, true);
    c->snd_wnd = syn->wnd; /* SYN windows are never scaled */
    c->snd_wl1 = syn->seq;
    c->snd_wl2 = c->iss;
    c->last_rx_us = NOW(c);
    jk_adapter_mark_dirty(c);
}

/* RFC 6298 (2.3) from the current estimate, clamped; also undoes the
 * exponential backoff once the peer acknowledges new data again (as Linux
 * does), so a lossy stretch does not leave a minutes-long RTO behind. */
static void rto_from_estimate(struct jktcp_conn *c)
{
    if (!c->srtt_us)
        return;
    uint64_t rto = (uint64_t)c->srtt_us + max_u32(1000, 4 * c->rttvar_us);
    if (rto < c->cfg.rto_min_us)
        rto = c->cfg.rto_min_us;
    if (rto > c->cfg.rto_max_us)
        rto = c->cfg.rto_max_us;
    c->rto_us = (uint32_t)rto;
}

static void update_rtt(struct jktcp_conn *c, uint32_t sample)
{
    if (sample == 0)
        sample = 1;
    if (!c->min_rtt_us || sample < c->min_rtt_us)
        c->min_rtt_us = sample;
    if (!c->srtt_us) {
        c->srtt_us = sample;
        c->rttvar_us = sample / 2;
    } else {
        uint32_t d = c->srtt_us > sample ? c->srtt_us - sample : sample - c->srtt_us;
        c->rttvar_us = (3 * c->rttvar_us + d) / 4;
        c->srtt_us = (7 * c->srtt_us + sample) / 8;
    }
    rto_from_estimate(c);
}

static void became_established(struct jktcp_conn *c)
{
    c->state = JKTCP_ESTABLISHED;
    c->retries = 0;
    c->t_rto = 0;
    /* a SYN resend may be queued (snd_nxt rewound to the ISS by a timeout
     * or a duplicate SYN) when the handshake completes before the output
     * pass: sending starts at what the peer acknowledged */
    if (seq_lt(c->snd_nxt, c->snd_una))
        c->snd_nxt = c->snd_una;
    if (c->fin_queued)
        c->state = JKTCP_FIN_WAIT_1;
    if (c->cfg.keepalive_us)
        c->t_keepalive = NOW(c) + c->cfg.keepalive_us;
}

/* SYN_SENT: RFC 9293 §3.10.7.3 */
static void input_syn_sent(struct jktcp_conn *c, const struct jk_seg *s)
{
    bool has_ack = s->flags & JK_ACK;
    if (has_ack && (seq_le(s->ack, c->iss) || seq_gt(s->ack, c->snd_max))) {
        if (!(s->flags & JK_RST))
            jk_adapter_reset_for(c->a, s);
        /* the peer holds an old connection on these ports (RFC 9293
         * Figure 9): once our RST has cleared it, a SYN gets through, so
         * the first one goes again at once rather than after the RTO
         * (Linux: "previous FIN/ACK or RST/ACK might be ignored") */
        if (c->retries == 0 && c->t_rto > NOW(c) + JK_SYN_QUICK_US)
            c->t_rto = NOW(c) + JK_SYN_QUICK_US;
        jk_adapter_update_timer(c);
        return;
    }
    if (s->flags & JK_RST) {
        if (has_ack)
            to_closed(c, -ECONNREFUSED);
        return;
    }
    if (!(s->flags & JK_SYN))
        return;
    take_syn_options(c, s, true);
    c->snd_wnd = (uint32_t)s->wnd; /* unscaled in a SYN */
    c->snd_wl1 = s->seq;
    c->snd_wl2 = s->ack;
    c->max_snd_wnd = c->snd_wnd;
    if (!has_ack) { /* simultaneous open */
        c->state = JKTCP_SYN_RCVD;
        c->snd_nxt = c->iss; /* resend our SYN as SYN-ACK */
        jk_adapter_mark_dirty(c);
        return;
    }
    c->snd_una = s->ack;
    if (c->rtt_timing) {
        update_rtt(c, (uint32_t)(NOW(c) - c->rtt_start));
        c->rtt_timing = false;
    }
    became_established(c);
    c->ack_now = true;
    jk_adapter_mark_dirty(c);
}

/* ------------------------------------------------------------------ */
/* Receiving: acceptability, RST/SYN checks                            */
/* ------------------------------------------------------------------ */

/* RFC 9293 §3.10.7.4 first check, with the zero-window allowance for
 * ACKs. May trim the segment to the window. */
/* RCV.WND for the acceptability test: the window we offered (its edge
 * never moves left), within the room the ring has now. Data beyond the
 * offered edge is not taken even if it would fit, as Linux does: the
 * sender broke the window. TIME-WAIT takes nothing new: only the exact
 * next sequence number is in its window (an RST there ends it, as on
 * Linux; any other RST is dropped unanswered), buffers or not. */
static uint32_t rcv_wnd(struct jktcp_conn *c)
{
    if (c->state == JKTCP_TIME_WAIT)
        return 0;
    uint32_t adv = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
    return min_u32(adv, jk_tcp_rcv_window(c));
}

/* Sequence space a segment occupies: data, SYN and FIN. */
static uint32_t seg_space(const struct jk_seg *s)
{
    return s->len + ((s->flags & JK_SYN) ? 1 : 0) + ((s->flags & JK_FIN) ? 1 : 0);
}

static bool acceptable(struct jktcp_conn *c, struct jk_seg *s)
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
static void trim(struct jktcp_conn *c, struct jk_seg *s)
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

static void got_reset(struct jktcp_conn *c)
{
    switch (c->state) {
    case JKTCP_SYN_RCVD:
        to_closed(c, -ECONNREFUSED);
        break;
    case JKTCP_ESTABLISHED:
    case JKTCP_FIN_WAIT_1:
    case JKTCP_FIN_WAIT_2:
    case JKTCP_CLOSE_WAIT:
        to_closed(c, -ECONNRESET);
        break;
    default:
        to_closed(c, 0);
    }
}

/* ------------------------------------------------------------------ */
/* Receiving: ACK processing                                          */
/* ------------------------------------------------------------------ */

static void add_range(struct jk_range *v, int *n, int max, uint32_t start, uint32_t end,
                      bool front)
{
    /* absorb every range overlapping or touching [start, end) */
    for (int i = 0; i < *n;) {
        if (seq_le(v[i].start, end) && seq_le(start, v[i].end)) {
            start = seq_min(start, v[i].start);
            end = seq_max(end, v[i].end);
            memmove(&v[i], &v[i + 1], (size_t)(*n - i - 1) * sizeof *v);
            (*n)--;
        } else {
            i++;
        }
    }
    if (*n == max) {
        if (front)
            (*n)--; /* forget the oldest */
        else
            return;
    }
    if (front) {
        memmove(&v[1], &v[0], (size_t)*n * sizeof *v);
        v[0] = (struct jk_range){start, end};
    } else {
        v[*n] = (struct jk_range){start, end};
    }
    (*n)++;
}

static void forget_lowest_sack(struct jktcp_conn *c)
{
    int lo = 0;
    for (int i = 1; i < c->npeer_sack; i++)
        if (seq_lt(c->peer_sack[i].start, c->peer_sack[lo].start))
            lo = i;
    c->peer_sack[lo] = c->peer_sack[--c->npeer_sack];
}

static void take_peer_sack(struct jktcp_conn *c, const struct jk_seg *s)
{
    if (!c->sack_ok)
        return;
    for (int i = 0; i < s->opt.nsack; i++) {
        uint32_t l = s->opt.sack[i].left, r = s->opt.sack[i].right;
        /* only blocks inside data we actually sent and that is unacked */
        if (!seq_lt(l, r) || !seq_gt(l, c->snd_una) || seq_gt(r, c->snd_max))
            continue;
        if (c->npeer_sack == JK_MAX_PEER_SACK)
            forget_lowest_sack(c); /* newer news first; at worst a byte goes twice */
        add_range(c->peer_sack, &c->npeer_sack, JK_MAX_PEER_SACK, l, r, false);
    }
}

static void prune_peer_sack(struct jktcp_conn *c)
{
    for (int i = 0; i < c->npeer_sack;) {
        struct jk_range *r = &c->peer_sack[i];
        if (seq_le(r->end, c->snd_una)) {
            memmove(r, r + 1, (size_t)(c->npeer_sack - i - 1) * sizeof *r);
            c->npeer_sack--;
        } else {
            if (seq_lt(r->start, c->snd_una))
                r->start = c->snd_una;
            i++;
        }
    }
}

static uint32_t highest_sacked(struct jktcp_conn *c)
{
    uint32_t h = c->snd_una;
    for (int i = 0; i < c->npeer_sack; i++)
        h = seq_max(h, c->peer_sack[i].end);
    return h;
}

/* Where holes end: at the highest SACKed byte in SACK recovery; after a
 * timeout nothing unSACKed is believed in flight, so at snd_max. */
static uint32_t hole_limit(struct jktcp_conn *c)
{
    return c->rto_recovery ? c->snd_max : highest_sacked(c);
}

/* The first unSACKed byte at or after from, below hole_limit. */
static bool next_hole(struct jktcp_conn *c, uint32_t from, uint32_t *hole)
{
    uint32_t hi = hole_limit(c);
    uint32_t s = seq_max(from, c->snd_una);
    bool moved = true;
    while (moved) {
        moved = false;
        for (int i = 0; i < c->npeer_sack; i++)
            if (seq_le(c->peer_sack[i].start, s) && seq_lt(s, c->peer_sack[i].end)) {
                s = c->peer_sack[i].end;
                moved = true;
            }
    }
    *hole = s;
    return seq_lt(s, hi);
}

/* RACK's reordering window (RFC 8985 §6.2): how long a hole below SACKed
 * data may wait for a late segment before it counts as lost. */
static uint64_t reo_wnd_us(struct jktcp_conn *c)
{
    uint32_t w = c->min_rtt_us / 4;
    return c->srtt_us && w > c->srtt_us ? c->srtt_us : w;
}

/* A SACK showed a hole, too few for DupThresh. Data above it, sent after
 * it, arrived: once the reordering window passes, the hole is lost (RFC
 * 8985 §6.2) — with a small window there may never be three duplicates. */
static void arm_reorder_timer(struct jktcp_conn *c)
{
    if (c->cfg.tlp && c->npeer_sack && !c->t_rack)
        c->t_rack = NOW(c) + reo_wnd_us(c) + 1;
}

static void enter_recovery(struct jktcp_conn *c);

static void on_rack(struct jktcp_conn *c)
{
    uint32_t hole;
    c->t_rack = 0;
    if (!synchronized(c->state))
        return;
    if (c->in_recovery)
        jk_adapter_mark_dirty(c); /* send_hole decides on a new pass */
    else if (seq_ge(c->snd_una, c->recover) && next_hole(c, c->snd_una, &hole))
        enter_recovery(c);
}

static uint32_t flight_size(struct jktcp_conn *c)
{
    return c->snd_max - c->snd_una;
}

/* RFC 6675 §5 with RFC 6582's guard: halve, then let send_hole and the
 * pipe estimate pace repairs and new data. Without SACK, NewReno's
 * window inflation stands in for the pipe estimate. */
static void enter_recovery(struct jktcp_conn *c)
{
    uint32_t fs = flight_size(c);
    if (c->cfg.congestion && !jk_path_probe_lost(c)) { /* a lost path probe is no congestion */
        c->ssthresh = max_u32(fs / 2, 2u * c->smss);
        c->cwnd = c->sack_ok ? c->ssthresh : c->ssthresh + 3u * c->smss;
        c->cwnd_acc = 0;
    }
    c->recover = c->snd_max;
    c->in_recovery = true;
    c->recoveries++;
    c->rexmit_hi = c->snd_una;
    pass_resend(c, c->snd_una); /* the first repair goes regardless of cwnd */
    jk_adapter_mark_dirty(c);
}

/* Bytes the peer has SACKed above snd_una (RFC 6675 DupThresh test). */
static uint32_t sacked_bytes(struct jktcp_conn *c)
{
    uint32_t n = 0;
    for (int i = 0; i < c->npeer_sack; i++)
        n += c->peer_sack[i].end - c->peer_sack[i].start;
    return n;
}

static void on_dupack(struct jktcp_conn *c)
{
    c->dupacks++;
    /* the timed segment's ACK now waits for a hole to be repaired: its
     * sample would measure the repair, not the path */
    c->rtt_timing = false;
    if (c->in_recovery) {
        if (c->cfg.congestion && !c->sack_ok && !c->rto_recovery)
            c->cwnd += c->smss; /* NewReno inflation: one segment left */
    } else if ((c->dupacks >= 3 || sacked_bytes(c) >= 3u * c->smss ||
                (c->tlp_sent && c->npeer_sack)) &&
               seq_ge(c->snd_una, c->recover)) {
        /* three duplicates, three segments SACKed above the hole, or a
         * tail-loss probe SACKed while the hole stays (RFC 8985 §7.4: the
         * probe came a PTO after the hole was sent, so it is lost, not
         * reordered). RFC 6582 §3.2: not twice for the same loss. */
        enter_recovery(c);
    } else if (seq_ge(c->snd_una, c->recover)) {
        arm_reorder_timer(c);
    }
    jk_adapter_mark_dirty(c);
}

static void grow_cwnd(struct jktcp_conn *c, uint32_t acked)
{
    if (!c->cfg.congestion)
        return;
    if (c->cwnd < c->ssthresh) {
        c->cwnd += acked; /* slow start, byte counting (our ACKs may stretch) */
    } else {
        c->cwnd_acc += acked;
        if (c->cwnd_acc >= c->cwnd) {
            c->cwnd_acc -= c->cwnd;
            c->cwnd += c->smss;
        }
    }
    uint32_t cap = c->max_snd_wnd + 16u * c->smss;
    if (c->cwnd > cap && cap > c->max_snd_wnd)
        c->cwnd = cap; /* no point growing far past what the peer allows */
}

static void on_new_ack(struct jktcp_conn *c, uint32_t ack)
{
    uint32_t acked = ack - c->snd_una;
    /* cwnd grows by what the peer got since the last ACK: bytes it had
     * SACKed arrived long ago, and a cumulative ACK jumping over them
     * after a repair says nothing about the path now */
    uint32_t fresh = acked - sacked_in(c, c->snd_una, ack);
    uint32_t end = snd_data_end(c);
    uint32_t data_acked = seq_lt(c->snd_buf_seq, seq_min(ack, end))
                              ? seq_min(ack, end) - c->snd_buf_seq
                              : 0;
    if (data_acked) {
        jk_ring_consume(&c->snd, data_acked);
        c->snd_buf_seq += data_acked;
        c->bytes_acked += data_acked;
    }
    c->snd_una = ack;
    if (seq_lt(c->snd_nxt, ack))
        c->snd_nxt = ack;
    /* the new head was resent in this pass at the latest at its last resend */
    c->head_rexmit_us = c->in_recovery && seq_lt(ack, c->rexmit_hi) ? c->rexmit_last_us : 0;
    if (c->rtt_timing && seq_gt(ack, c->rtt_seq)) {
        update_rtt(c, (uint32_t)(NOW(c) - c->rtt_start));
        c->rtt_timing = false;
    }
    if (c->retries)
        rto_from_estimate(c);
    c->retries = 0;
    c->persist_backoff = 0;
    c->dupacks = 0;
    prune_peer_sack(c);
    if (c->rto_recovery) {
        grow_cwnd(c, fresh); /* slow start from one segment (RFC 5681 §3.1) */
        if (seq_ge(ack, c->recover))
            c->in_recovery = c->rto_recovery = false;
    } else if (c->in_recovery) {
        if (seq_ge(ack, c->recover)) { /* full ACK: leave recovery */
            c->in_recovery = false;
            c->t_rack = 0;
            if (c->cfg.congestion)
                c->cwnd = min_u32(c->ssthresh, max_u32(flight_size(c), c->smss) + c->smss);
        } else if (!c->npeer_sack) {
            /* partial ACK and nothing SACKed above: the next segment is
             * lost too (RFC 6582); with SACK, send_hole finds holes */
            if (c->cfg.congestion && !c->sack_ok)
                c->cwnd = c->cwnd > acked ? c->cwnd - acked + c->smss : c->smss;
            if (!seq_lt(ack, c->rexmit_hi))
                pass_resend(c, ack);
        }
    } else {
        grow_cwnd(c, fresh);
    }
    c->t_rto = 0;
    if (c->snd_una != c->snd_max)
        arm_rto(c);
    c->tlp_sent = false;
    arm_tlp(c);
}

/* Take the peer's window from this segment unless it is older than the
 * one we have: an ACK that moves snd_una always carries news, whatever
 * its sequence number (a retransmission of old data with a fresh ACK —
 * Linux's tcp_may_update_window); otherwise RFC 9293's WL1/WL2 rule. */
static void update_send_window(struct jktcp_conn *c, const struct jk_seg *s, bool advanced)
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
            c->t_persist = 0;
            jk_adapter_mark_dirty(c);
        }
    }
}

static bool our_fin_acked(struct jktcp_conn *c)
{
    return c->fin_sent && seq_gt(c->snd_una, c->fin_snd_seq);
}

static void challenge_ack(struct jktcp_conn *c, const struct jk_seg *s);

/* Returns false when the segment must be dropped (or the conn closed). */
static bool process_ack(struct jktcp_conn *c, const struct jk_seg *s)
{
    if (c->state == JKTCP_SYN_RCVD) {
        if (!seq_gt(s->ack, c->snd_una) || seq_gt(s->ack, c->snd_max)) {
            jk_adapter_reset_for(c->a, s);
            return false;
        }
        c->snd_una = s->ack;
        if (c->rtt_timing) {
            update_rtt(c, (uint32_t)(NOW(c) - c->rtt_start));
            c->rtt_timing = false;
        }
        c->snd_wnd = (uint32_t)s->wnd << c->snd_wscale;
        c->max_snd_wnd = c->snd_wnd;
        c->snd_wl1 = s->seq;
        c->snd_wl2 = s->ack;
        became_established(c);
        jk_adapter_established(c);
        jk_adapter_mark_dirty(c);
    }
    /* RFC 5961 §5.2: an ACK older than MAX.SND.WND below SND.UNA is
     * blind; and, as Linux bounds it, so is one below the first byte we
     * sent (older than every byte acknowledged so far) */
    uint32_t old_lim = (uint32_t)(c->bytes_acked < c->max_snd_wnd ? c->bytes_acked : c->max_snd_wnd);
    if (seq_gt(s->ack, c->snd_max) || /* acks data never sent */
        seq_lt(s->ack, c->snd_una - old_lim)) {
        challenge_ack(c, s);
        return false;
    }
    uint32_t old_wnd = c->snd_wnd;
    bool advanced = seq_gt(s->ack, c->snd_una);
    uint32_t sacked = sacked_bytes(c);
    take_peer_sack(c, s);
    if (advanced || sacked_bytes(c) != sacked) {
        c->delivered_us = NOW(c);
        if (c->in_recovery && c->t_rto) { /* still moving: the passes have it */
            c->t_rto = 0;
            arm_rto(c);
        }
    }
    if (c->rtt_timing && s->opt.nsack && c->sack_ok &&
        seq_le(s->opt.sack[0].left, c->rtt_seq) && seq_lt(c->rtt_seq, s->opt.sack[0].right)) {
        /* the timed segment's arrival above a hole triggered this ACK (the
         * first SACK block is the latest arrival, RFC 2018 §4): time it
         * now, before the hole's repair holds up its cumulative ACK (and,
         * under heavy loss, before a duplicate ACK cancels the sample) */
        update_rtt(c, (uint32_t)(NOW(c) - c->rtt_start));
        c->rtt_timing = false;
    }
    if (advanced) {
        on_new_ack(c, s->ack);
        jk_adapter_mark_dirty(c);
    } else if (s->ack == c->snd_una && s->len == 0 && !(s->flags & (JK_SYN | JK_FIN)) &&
               c->snd_max != c->snd_una &&
               (((uint32_t)s->wnd << c->snd_wscale) == old_wnd || s->opt.nsack)) {
        /* a duplicate ACK; with SACK the window may change meanwhile
         * (Linux grows it on every ACK), the SACK blocks say it is one */
        on_dupack(c);
    }
    if (advanced || s->opt.nsack)
        jk_path_acked(c); /* a path MTU probe may have made it */
    update_send_window(c, s, advanced);
    switch (c->state) {
    case JKTCP_FIN_WAIT_1:
        if (our_fin_acked(c)) {
            c->state = JKTCP_FIN_WAIT_2;
            if (c->user_released)
                c->t_close = NOW(c) + JK_FIN_WAIT2_US;
        }
        break;
    case JKTCP_CLOSING:
        if (our_fin_acked(c))
            to_time_wait(c);
        break;
    case JKTCP_LAST_ACK:
        if (our_fin_acked(c)) {
            to_closed(c, 0);
            return false;
        }
        break;
    default:
        break;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Receiving: data and FIN                                            */
/* ------------------------------------------------------------------ */

static void pull_in_order(struct jktcp_conn *c)
{
    bool moved = true;
    while (moved) {
        moved = false;
        for (int i = 0; i < c->nooo; i++) {
            struct jk_range *r = &c->ooo[i];
            if (seq_le(r->start, c->rcv_nxt)) {
                if (seq_gt(r->end, c->rcv_nxt)) {
                    uint32_t n = r->end - c->rcv_nxt;
                    jk_ring_produce(&c->rcv, n);
                    c->rcv_nxt += n;
                    c->bytes_delivered += n;
                }
                memmove(r, r + 1, (size_t)(c->nooo - i - 1) * sizeof *r);
                c->nooo--;
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
static void note_duplicate(struct jktcp_conn *c, uint32_t start, uint32_t end)
{
    if (!c->sack_ok || !seq_lt(start, end))
        return;
    c->dsack = (struct jk_range){start, end};
    c->dsack_pending = c->ack_now = true;
}

static void take_data(struct jktcp_conn *c, const struct jk_seg *s)
{
    uint32_t tail = atomic_load_explicit(&c->rcv.tail, memory_order_relaxed);
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
        if (c->nooo) {
            pull_in_order(c);
            c->ack_now = c->ack_alone = true; /* a hole filled: tell the sender now */
            c->quickacks = JK_QUICKACKS;
        }
        if (++c->segs_unacked >= 2 || !c->cfg.delack_us)
            c->ack_now = true;
        else if (!c->t_delack)
            c->t_delack = NOW(c) + c->cfg.delack_us;
    } else {
        int max = (int)c->cfg.max_ooo;
        bool merges = false;
        for (int i = 0; i < c->nooo; i++)
            if (seq_le(c->ooo[i].start, s->seq + s->len) && seq_le(s->seq, c->ooo[i].end)) {
                merges = true;
                note_duplicate(c, seq_max(s->seq, c->ooo[i].start),
                               seq_min(s->seq + s->len, c->ooo[i].end));
            }
        /* With the table full a new island is dropped, not an old one:
         * the old ones were SACKed, and a sender never resends SACKed
         * bytes before a timeout (RFC 2018 §8 reneging; Linux resends
         * them only if the timeout finds the head itself SACKed), so
         * forgetting one would stall the transfer a timeout at a time */
        if (c->nooo < max || merges) {
            jk_ring_put_at(&c->rcv, tail + (s->seq - c->rcv_nxt), s->payload, s->len);
            add_range(c->ooo, &c->nooo, max, s->seq, s->seq + s->len, true);
        }
        c->ack_now = c->ack_alone = true; /* duplicate ACK with SACK for the sender */
    }
}

static void take_fin(struct jktcp_conn *c)
{
    c->rcv_nxt++;
    c->fin_rcvd = true;
    c->fin_pending = false;
    c->ack_now = true;
    switch (c->state) {
    case JKTCP_ESTABLISHED:
        c->state = JKTCP_CLOSE_WAIT;
        c->t_keepalive = 0;
        break;
    case JKTCP_FIN_WAIT_1:
        if (our_fin_acked(c))
            to_time_wait(c);
        else
            c->state = JKTCP_CLOSING;
        break;
    case JKTCP_FIN_WAIT_2:
        to_time_wait(c);
        break;
    default:
        break;
    }
}

static bool receiving(int state)
{
    return state == JKTCP_ESTABLISHED || state == JKTCP_FIN_WAIT_1 || state == JKTCP_FIN_WAIT_2;
}

static void process_text(struct jktcp_conn *c, const struct jk_seg *s)
{
    if (!receiving(c->state) || c->fin_rcvd)
        return; /* data after the peer's FIN is ignored (RFC 9293) */
    if (s->len) {
        if (c->user_released) { /* nobody will ever read it: like Linux, reset */
            reset_conn(c, true, false);
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

/* ------------------------------------------------------------------ */
/* Segment arrival                                                    */
/* ------------------------------------------------------------------ */

/* RFC 5681 §4.2: an out-of-order segment, one that fills a hole and a
 * duplicate each get their own ACK at once. The adapter handles a burst
 * of frames before its output pass, which would fold a burst's worth of
 * duplicate ACKs into one: the sender would see one SACK update where it
 * expects many, and a single lost ACK would hide the whole burst. */
static void send_ack_alone(struct jktcp_conn *c)
{
    if (!c->ack_alone || !c->ack_now)
        return;
    c->ack_alone = false;
    if (!c->a->tx_blocked)
        emit(c, JK_ACK, acceptable_seq(c), 0); /* on failure ack_now stays set */
}

/* Old data: the sender resent it because our ACK went missing. Answer at
 * once, echoing this segment's timestamp if it is a plausible resend (it
 * passed PAWS and lies within one buffer below rcv_nxt). RFC 7323 would
 * echo TS.Recent, the timestamp of the last in-order segment, which can be
 * a whole timeout old; the sender takes that for an RTT sample (Linux
 * does) and one lost ACK inflates its RTO to the cap, and it reads the old
 * echo as "the original arrived" and undoes its timeout (Eifel). TS.Recent
 * itself stays: an unacceptable segment changes no state. */
static void ack_duplicate(struct jktcp_conn *c, const struct jk_seg *s)
{
    if (c->state != JKTCP_TIME_WAIT) /* a repeated FIN too, as Linux (whose TIME-WAIT does not) */
        note_duplicate(c, s->seq, s->seq + seg_space(s));
    if (c->ts_ok && c->rcv.cap && seq_ge(s->seq + s->len, c->rcv_nxt - c->rcv.cap)) {
        c->ts_echo = s->opt.tsval;
        c->ts_echo_once = true;
    }
    c->ack_now = c->ack_alone = true;
    jk_adapter_mark_dirty(c); /* if the transport is busy, the next pass sends it */
    send_ack_alone(c);
    c->ts_echo_once = false;
}

/* The ACK owed to a segment we do not accept: out of window, failing
 * PAWS, an RST or SYN in the window (RFC 5961 §3.2, §4.2) or an ACK for
 * data never sent (§5.2). If the segment occupies no sequence space (a
 * bare ACK, RST or SYN) the ACK goes at most once per JK_OOW_ACK_US:
 * otherwise a flood of blind RSTs gets as many ACKs back (§7), and two
 * ends that each find the other's ACKs out of window answer each other
 * forever (Linux limits the same way). Data and FIN are always answered:
 * their sender is waiting for that ACK. */
static void challenge_ack(struct jktcp_conn *c, const struct jk_seg *s)
{
    if (!s->len && !(s->flags & JK_FIN)) {
        uint64_t now = NOW(c);
        if (now < c->oow_ack_next) {
            c->a->st.acks_limited++;
            return;
        }
        c->oow_ack_next = now + JK_OOW_ACK_US;
    }
    c->ack_now = true;
    jk_adapter_mark_dirty(c);
}

/* RFC 7323 §5.5: after 24 days without an update TS.Recent means nothing
 * (the peer's millisecond clock may have moved half its range on since),
 * so PAWS must not judge by it: the next acceptable segment sets it. */
static bool ts_recent_stale(const struct jktcp_conn *c)
{
    return NOW(c) - c->ts_recent_us > JK_PAWS_IDLE_US;
}

void jk_tcp_input(struct jktcp_conn *c, const struct jk_seg *seg)
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
            jk_adapter_mark_dirty(c);
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
            c->a->st.drop_invalid++;
            return;
        }
        /* PAWS, §5.3, with Linux's one-tick tolerance (TCP_PAWS_WINDOW):
         * a pure ACK that overtook data sent a millisecond earlier has
         * moved TS.Recent past that data, which is no old duplicate */
        if (seq_lt(s.opt.tsval, c->ts_recent - JK_PAWS_WINDOW) && !ts_recent_stale(c)) {
            c->a->st.drop_invalid++;
            challenge_ack(c, &s);
            return;
        }
    }
    if (!acceptable(c, &s)) {
        c->a->st.drop_invalid++;
        if (!(s.flags & JK_RST)) { /* an RST out of the window: no answer (RFC 5961 §3.2) */
            if ((s.len || (s.flags & JK_FIN)) && seq_le(s.seq + seg_space(&s), c->rcv_nxt))
                ack_duplicate(c, &s);
            else
                challenge_ack(c, &s);
        }
        if (c->state == JKTCP_TIME_WAIT && (s.flags & JK_FIN))
            c->t_close = NOW(c) + max_u32(c->cfg.timewait_us, 1);
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
        if (c->state == JKTCP_SYN_RCVD && c->listener) {
            /* a new SYN in the window of a half-open passive connection:
             * the peer started over. RFC 9293 §3.10.7.4 drops the half-open
             * connection; Linux also resets the new SYN (tcp_check_req),
             * so the peer's next attempt finds the port clean */
            jk_adapter_reset_for(c->a, &s);
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
    if (c->ack_now || c->t_delack)
        jk_adapter_mark_dirty(c); /* also tells the handle what arrived */
    send_ack_alone(c);
}

/* ------------------------------------------------------------------ */
/* Application events                                                 */
/* ------------------------------------------------------------------ */

/* After the app read: announce the opened window only when it matters —
 * when the advertised window has fallen to half the buffer or less and
 * would at least double (as Linux does), and never for a sliver of space
 * (receiver-side silly window avoidance, RFC 9293 §3.8.6.2.2). */
void jk_tcp_app_read(struct jktcp_conn *c)
{
    if (!receiving(c->state) || c->fin_rcvd || !c->rcv.buf)
        return;
    uint32_t adv = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
    uint32_t now = (jk_tcp_rcv_window(c) >> c->rcv_wscale) << c->rcv_wscale;
    uint32_t sliver = min_u32(c->local_mss, c->rcv.cap / 4);
    if ((uint64_t)adv * 2 <= c->rcv.cap && now >= 2 * (uint64_t)adv && now - adv >= sliver) {
        c->ack_now = true;
        jk_adapter_mark_dirty(c);
    }
}

bool jk_tcp_flushed(struct jktcp_conn *c)
{
    if (c->state == JKTCP_CLOSED || c->state == JKTCP_TIME_WAIT)
        return true;
    if (c->user_released)
        return false;
    return jk_tcp_delivered(c);
}

bool jk_tcp_delivered(struct jktcp_conn *c)
{
    if (c->state == JKTCP_CLOSED || c->state == JKTCP_TIME_WAIT)
        return true;
    if (c->state == JKTCP_SYN_SENT || c->state == JKTCP_SYN_RCVD)
        return true;
    return c->snd.buf == NULL || (jk_ring_used(&c->snd) == 0 &&
                                  (!c->fin_queued || our_fin_acked(c)));
}

/* ------------------------------------------------------------------ */
/* Timers                                                             */
/* ------------------------------------------------------------------ */

/* Why a connection that stopped hearing from its peer died: the last ICMP
 * error if one came (a route that went away says more than silence, as
 * Linux reports sk_err_soft), else -ETIMEDOUT. */
static int give_up_error(struct jktcp_conn *c)
{
    return c->soft_err ? c->soft_err : -ETIMEDOUT;
}

static void on_rto(struct jktcp_conn *c)
{
    c->t_rto = 0;
    c->t_tlp = 0;
    c->t_rack = 0;
    if (c->snd_una == c->snd_max && c->state != JKTCP_SYN_SENT && c->state != JKTCP_SYN_RCVD)
        return;
    if (++c->retries > c->cfg.max_retries) {
        bool rst = synchronized(c->state);
        c->err = give_up_error(c);
        jk_tcp_abort(c, rst);
        return;
    }
    c->timeouts++;
    jk_path_timeout(c);
    c->rto_us = (uint32_t)min_u32(c->rto_us * 2 > c->rto_us ? c->rto_us * 2 : UINT32_MAX,
                                  c->cfg.rto_max_us);
    if (c->cfg.congestion && synchronized(c->state)) {
        c->ssthresh = max_u32(flight_size(c) / 2, 2u * c->smss);
        c->cwnd = c->smss;
        c->cwnd_acc = 0;
    }
    c->recover = c->snd_max;
    c->dupacks = 0;
    c->rtt_timing = false;
    /* Keep the SACK scoreboard through one timeout (the resends skip what
     * the peer holds, as Linux does); drop it on the second in a row in
     * case the receiver reneged (RFC 2018 §8). */
    if (c->retries > 1)
        c->npeer_sack = 0;
    if (synchronized(c->state)) {
        /* everything unSACKed is lost: send_hole resends it in order,
         * paced by slow start, and resends again what a pass loses */
        c->in_recovery = c->rto_recovery = true;
        c->rexmit_hi = c->snd_una;
    } else {
        c->in_recovery = false;
        c->snd_nxt = c->iss;
    }
    jk_adapter_mark_dirty(c);
}

/* Tail loss probe (RFC 8985 §7.3): nothing came back for a PTO, so make
 * the peer talk — a new segment if the peer's window allows, else the
 * last one again — instead of waiting for the RTO. Its ACK (with SACK)
 * restarts recovery. */
static void on_tlp(struct jktcp_conn *c)
{
    c->t_tlp = 0;
    if (c->tlp_sent || c->in_recovery || c->snd_max == c->snd_una || !synchronized(c->state) ||
        c->state == JKTCP_TIME_WAIT)
        return;
    c->tlp_sent = true;
    c->tail_probes++;
    c->rtt_timing = false; /* an ACK now may answer the probe: it would time the PTO */
    uint32_t end = snd_data_end(c);
    uint32_t flight = c->snd_max - c->snd_una;
    if (seq_lt(c->snd_max, end) && c->snd_nxt == c->snd_max && flight < c->snd_wnd) {
        uint32_t len = min_u32(min_u32(end - c->snd_max, c->smss), c->snd_wnd - flight);
        long r = emit(c, JK_ACK, c->snd_max, len);
        if (r >= 0) {
            c->snd_nxt = c->snd_max + (uint32_t)r;
            sent_range(c, c->snd_max, (uint32_t)r, false);
        }
    } else {
        /* the last segment as it was sent (RFC 8985 §7.3), not the last
         * MSS of the buffer; the FIN goes with it */
        uint32_t last = c->fin_sent ? c->fin_snd_seq : c->snd_max;
        uint32_t len = min_u32(last - c->snd_una, c->smss);
        uint32_t from = last - len;
        if (seq_lt(from, c->tail_seq) && seq_lt(c->tail_seq, last))
            from = c->tail_seq;
        retransmit_at(c, from);
    }
    c->t_rto = NOW(c) + c->rto_us; /* the RTO counts from the probe */
}

static void send_probe(struct jktcp_conn *c)
{
    /* seq = snd_una - 1: outside the window, so the peer must answer with
     * an ACK carrying its current window, and no data is consumed */
    if (emit(c, JK_ACK, c->snd_una - 1, 0) < 0)
        c->ack_now = true;
}

static void on_persist(struct jktcp_conn *c)
{
    c->t_persist = 0;
    if (jk_ring_used(&c->snd) == 0)
        return;
    if (c->snd_wnd != 0) { /* a window too small to use (sws_send_ok) */
        c->sws_override = true;
        jk_adapter_mark_dirty(c);
        return;
    }
    if (++c->persist_backoff > c->cfg.max_retries + 6 &&
        NOW(c) - c->last_rx_us > (uint64_t)c->cfg.rto_max_us * 2) {
        c->err = give_up_error(c);
        jk_tcp_abort(c, true);
        return;
    }
    send_probe(c);
    arm_persist(c);
}

static void on_keepalive(struct jktcp_conn *c)
{
    uint64_t idle = NOW(c) - c->last_rx_us;
    c->t_keepalive = 0;
    if (c->state != JKTCP_ESTABLISHED)
        return;
    if (idle < c->cfg.keepalive_us && c->ka_probes == 0) {
        c->t_keepalive = c->last_rx_us + c->cfg.keepalive_us;
        return;
    }
    if (++c->ka_probes > JK_KEEPALIVE_PROBES) {
        c->err = give_up_error(c);
        jk_tcp_abort(c, true);
        return;
    }
    send_probe(c);
    c->t_keepalive = NOW(c) + max_u32(c->cfg.keepalive_us / 4, 1000);
}

void jk_tcp_timers(struct jktcp_conn *c)
{
    uint64_t now = NOW(c);
    if (c->t_close && c->t_close <= now) {
        c->t_close = 0;
        to_closed(c, c->state == JKTCP_TIME_WAIT ? 0 : -ETIMEDOUT);
        return;
    }
    if (c->t_delack && c->t_delack <= now) {
        c->t_delack = 0;
        c->ack_now = true;
    }
    if (c->t_rto && c->t_rto <= now)
        on_rto(c);
    if (c->state == JKTCP_CLOSED)
        return;
    if (c->t_tlp && c->t_tlp <= now)
        on_tlp(c);
    if (c->t_rack && c->t_rack <= now)
        on_rack(c);
    if (c->t_persist && c->t_persist <= now)
        on_persist(c);
    if (c->state == JKTCP_CLOSED)
        return;
    if (c->t_keepalive && c->t_keepalive <= now)
        on_keepalive(c);
    if (c->state != JKTCP_CLOSED)
        jk_adapter_mark_dirty(c);
}

uint64_t jk_tcp_deadline(const struct jktcp_conn *c)
{
    uint64_t d = 0;
    const uint64_t t[] = {c->t_rto,   c->t_delack, c->t_persist, c->t_keepalive,
                          c->t_close, c->t_tlp,    c->t_rack};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i] && (!d || t[i] < d))
            d = t[i];
    return d;
}

/* ------------------------------------------------------------------ */
/* ICMP (RFC 1122 §4.2.3.9, RFC 5927, RFC 1191 / 8201)                */
/* ------------------------------------------------------------------ */

void jk_tcp_pmtu_changed(struct jktcp_conn *c)
{
    if (c->state != JKTCP_CLOSED && c->state != JKTCP_LISTEN)
        compute_smss(c);
}

/* Resend everything in flight in segments that fit the new path MTU, at
 * once and without a window cut: the path shrank, the network did not
 * get congested (Linux's tcp_simple_retransmit). */
void jk_tcp_resend_all(struct jktcp_conn *c)
{
    if (!synchronized(c->state) || c->snd_una == c->snd_max || c->state == JKTCP_TIME_WAIT)
        return;
    c->in_recovery = c->rto_recovery = true;
    c->rexmit_hi = c->snd_una;
    c->recover = c->snd_max;
    c->rtt_timing = false;
    jk_adapter_mark_dirty(c);
}

bool jk_tcp_icmp(struct jktcp_conn *c, const struct jk_icmp *ic)
{
    /* RFC 5927 §4.1: only a report quoting a sequence number we sent and
     * the peer has not acknowledged can be about this connection; a blind
     * attacker cannot guess one */
    if (c->state == JKTCP_CLOSED || c->state == JKTCP_TIME_WAIT ||
        c->snd_max - c->snd_una < ic->seq - c->snd_una)
        return false;
    if (ic->kind == JK_ICMP_TOO_BIG)
        return jk_path_too_big(c, ic);
    int err = jk_icmp_errno(ic);
    if (!synchronized(c->state)) { /* the connect fails at once, as on Linux */
        to_closed(c, err);
        return true;
    }
    c->soft_err = err; /* a soft error (RFC 1122 §4.2.3.9): retries go on */
    return true;
}
