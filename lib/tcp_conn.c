/* SPDX-License-Identifier: MIT */
/*
 * A connection's life: setup, the segment size, opening (RFC 9293
 * §3.5), closing and TIME-WAIT (§3.6), resets, and the questions the
 * adapter asks about a closing connection; ICMP errors (RFC 1122
 * §4.2.3.9, RFC 5927).
 */
#include "tcp_int.h"

#include <errno.h>
#include <string.h>

static uint8_t wscale_for(uint32_t rcvbuf)
{
    uint8_t s = 0;
    while (s < 14 && (65535u << s) < rcvbuf)
        s++;
    return s;
}

static uint16_t mss_for_mtu(const struct jk_tcp_env *e)
{
    uint32_t m = e->mtu - ip_header_len(e) - 20;
    if (e->mss_cap && e->mss_cap < m)
        m = e->mss_cap;
    return (uint16_t)(m > 65535 ? 65535 : m);
}

int jk_tcp_init_conn(struct jk_tcp *c, struct jk_tcp_env *env, uint16_t lport, uint16_t rport)
{
    int r;
    c->env = env;
    c->cfg = env->cfg;
    c->lport = lport;
    c->rport = rport;
    c->state = JKTCP_CLOSED;
    if ((r = jk_ring_init(&c->snd, c->cfg.sndbuf)) < 0)
        return r;
    if ((r = jk_ring_init(&c->rcv, c->cfg.rcvbuf)) < 0) {
        jk_ring_free(&c->snd);
        return r;
    }
    c->iss = env->ops->random(env);
    c->ts_offset = env->ops->random(env);
    c->snd_una = c->snd_nxt = c->snd_max = c->iss;
    c->snd_buf_seq = c->iss + 1;
    c->rec.recover = c->iss;
    c->local_mss = mss_for_mtu(env);
    c->rcv_wscale = wscale_for(c->rcv.cap);
    c->rtt.rto_us = c->cfg.rto_init_us;
    c->cc.ssthresh = UINT32_MAX;
    c->last_rx_us = env->now;
    return 0;
}

void jk_tcp_free_buffers(struct jk_tcp *c)
{
    jk_ring_free(&c->snd);
    jk_ring_free(&c->rcv);
}

/* Payload per segment: the peer's MSS (raised to a floor first: a tiny or
 * hostile MSS must not turn into a huge one below), our own, and what the
 * path carries, less the timestamp option (RFC 6691). */
static void compute_smss(struct jk_tcp *c)
{
    uint32_t path = c->env->pmtu - ip_header_len(c->env) - 20;
    uint32_t m = min_u32(min_u32(max_u32(c->peer_mss, JK_MIN_SND_MSS), c->local_mss), path);
    if (c->ts_ok)
        m -= 12;
    c->smss = (uint16_t)m;
}

static void set_smss(struct jk_tcp *c)
{
    compute_smss(c);
    jk_cc_init(c);
}

void jk_tcp_to_closed(struct jk_tcp *c, int err)
{
    if (err && !c->err)
        c->err = err;
    jk_path_conn_gone(c);
    jk_cc_share_leave(c);
    c->state = JKTCP_CLOSED;
    memset(c->timer, 0, sizeof c->timer);
    c->ack_now = false;
    jk_tcp_event(c, JK_TCP_CLOSED);
}

void jk_tcp_to_time_wait(struct jk_tcp *c)
{
    c->state = JKTCP_TIME_WAIT;
    jk_cc_share_leave(c); /* it sends no more data */
    if (c->user_released)
        jk_tcp_free_buffers(c); /* nothing left to send or read */
    for (int i = 0; i < JK_T_COUNT; i++) /* only a delayed ACK may still be owed */
        if (i != JK_T_DELACK)
            c->timer[i] = 0;
    c->timer[JK_T_CLOSE] = NOW(c) + max_u32(c->cfg.timewait_us, 1);
}

void jk_tcp_fail(struct jk_tcp *c, int err)
{
    jk_tcp_to_closed(c, err);
}

/* Reset the connection: a RST that the peer accepts, then CLOSED. ts: the
 * RST carries a timestamp (RFC 7323 §3.2 SHOULD, once negotiated), as
 * Linux's resets of its own do; a RST answering a segment goes bare, as
 * Linux's tcp_v4_send_reset sends it. */
void jk_tcp_reset_conn(struct jk_tcp *c, bool send_rst, bool ts)
{
    if (send_rst && synchronized(c->state) && c->state != JKTCP_TIME_WAIT) {
        struct jk_rst rst = {.sport = c->lport,
                             .dport = c->rport,
                             .seq = jk_tcp_acceptable_seq(c),
                             .ack = c->rcv_nxt,
                             .flags = JK_RST | JK_ACK};
        if (ts && c->ts_ok) {
            rst.ts = true;
            rst.tsval = jk_tcp_ts_now(c);
            rst.tsecr = c->ts_recent;
        }
        c->env->ops->rst(c->env, &rst);
    }
    if (c->state != JKTCP_CLOSED)
        jk_tcp_to_closed(c, 0);
}

void jk_tcp_abort(struct jk_tcp *c, bool send_rst)
{
    jk_tcp_reset_conn(c, send_rst, true);
}

void jk_tcp_shutdown(struct jk_tcp *c)
{
    if (c->fin_queued)
        return;
    c->fin_queued = true;
    if (c->state == JKTCP_ESTABLISHED)
        c->state = JKTCP_FIN_WAIT_1;
    else if (c->state == JKTCP_CLOSE_WAIT)
        c->state = JKTCP_LAST_ACK;
    jk_tcp_changed(c);
}

/*
 * The application closes (close(2) on a socket): the one place that
 * decides how. A connection still opening goes silently (RFC 9293
 * §3.10.4: SYN-SENT deletes the TCB); unread data turns the close into a
 * reset, as a kernel socket does (RFC 2525 §2.17), since the peer would
 * believe it was delivered; otherwise our FIN goes after the data.
 * abort: reset at once (SO_LINGER 0).
 */
void jk_tcp_close(struct jk_tcp *c, bool abort)
{
    if (abort || c->state == JKTCP_SYN_SENT)
        jk_tcp_abort(c, abort);
    else if (c->state != JKTCP_CLOSED && c->rcv.buf && jk_ring_used(&c->rcv) > 0)
        jk_tcp_abort(c, true);
    else if (c->state != JKTCP_CLOSED)
        jk_tcp_shutdown(c);
}

/*
 * Nobody holds the connection any more: it finishes on its own (an
 * orphan). Buffers go as soon as nothing is left to send or read; an
 * orphan in FIN-WAIT-2 waits for the peer's FIN at most JK_FIN_WAIT2_US
 * (Linux's tcp_fin_timeout), since no one would ever see it. True when
 * the connection is closed and may be freed now.
 */
bool jk_tcp_orphan(struct jk_tcp *c)
{
    c->user_released = true;
    if (c->state == JKTCP_FIN_WAIT_2)
        c->timer[JK_T_CLOSE] = NOW(c) + JK_FIN_WAIT2_US;
    if (c->state == JKTCP_TIME_WAIT || c->state == JKTCP_CLOSED)
        jk_tcp_free_buffers(c);
    return c->state == JKTCP_CLOSED;
}

void jk_tcp_connect(struct jk_tcp *c)
{
    c->state = JKTCP_SYN_SENT;
    c->peer_mss = c->env->local.family == 4 ? 536 : 1220;
    jk_tcp_changed(c);
}

void jk_tcp_take_syn_options(struct jk_tcp *c, const struct jk_seg *s, bool we_offered_all)
{
    const struct jk_tcp_opts *o = &s->opt;
    c->peer_mss = o->has_mss && o->mss ? o->mss : (c->env->local.family == 4 ? 536 : 1220);
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

void jk_tcp_accept_syn(struct jk_tcp *c, const struct jk_seg *syn)
{
    c->state = JKTCP_SYN_RCVD;
    c->passive = true;
    jk_tcp_take_syn_options(c, syn, true);
    c->snd_wnd = syn->wnd; /* SYN windows are never scaled */
    c->snd_wl1 = syn->seq;
    c->snd_wl2 = c->iss;
    c->last_rx_us = NOW(c);
    jk_tcp_changed(c);
}

void jk_tcp_became_established(struct jk_tcp *c)
{
    c->state = JKTCP_ESTABLISHED;
    c->retries = 0;
    c->timer[JK_T_RTO] = 0;
    /* a SYN resend may be queued (snd_nxt rewound to the ISS by a timeout
     * or a duplicate SYN) when the handshake completes before the output
     * pass: sending starts at what the peer acknowledged */
    if (seq_lt(c->snd_nxt, c->snd_una))
        c->snd_nxt = c->snd_una;
    if (c->fin_queued)
        c->state = JKTCP_FIN_WAIT_1;
    if (c->cfg.keepalive_us)
        c->timer[JK_T_KEEPALIVE] = NOW(c) + c->cfg.keepalive_us;
}

bool jk_tcp_flushed(struct jk_tcp *c)
{
    if (c->state == JKTCP_CLOSED || c->state == JKTCP_TIME_WAIT)
        return true;
    if (c->user_released)
        return false;
    return jk_tcp_delivered(c);
}

bool jk_tcp_delivered(struct jk_tcp *c)
{
    if (c->state == JKTCP_CLOSED || c->state == JKTCP_TIME_WAIT)
        return true;
    if (c->state == JKTCP_SYN_SENT || c->state == JKTCP_SYN_RCVD)
        return true;
    return c->snd.buf == NULL || (jk_ring_used(&c->snd) == 0 &&
                                  (!c->fin_queued || our_fin_acked(c)));
}

void jk_tcp_pmtu_changed(struct jk_tcp *c)
{
    if (c->state != JKTCP_CLOSED && c->state != JKTCP_LISTEN)
        compute_smss(c);
}

bool jk_tcp_icmp(struct jk_tcp *c, const struct jk_icmp *ic)
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
        jk_tcp_to_closed(c, err);
        return true;
    }
    c->soft_err = err; /* a soft error (RFC 1122 §4.2.3.9): retries go on */
    return true;
}

/* RFC 9293 §3.10.7.1: a reset carries the segment's ACK as its sequence
 * number, or, for a segment without ACK, acknowledges all it occupied. A
 * reset is never answered. Pure: the owner sends it. */
bool jk_tcp_rst_for(const struct jk_seg *s, struct jk_rst *r)
{
    if (s->flags & JK_RST)
        return false;
    *r = (struct jk_rst){.sport = s->dport, .dport = s->sport, .flags = JK_RST};
    if (s->flags & JK_ACK) {
        r->seq = s->ack;
    } else {
        r->ack = s->seq + seg_space(s);
        r->flags |= JK_ACK;
    }
    return true;
}
