/* SPDX-License-Identifier: MIT */
/*
 * Congestion control (tcp_cc.h): the hooks the engine calls and NewReno
 * (RFC 5681 slow start and congestion avoidance with byte counting; RFC
 * 6582 window inflation when the peer cannot SACK; RFC 6675's window for
 * SACK recovery, whose pipe estimate paces the repairs).
 */
#include "tcp_int.h"

#include <errno.h>
#include <string.h>

static const struct jk_cc_ops *const algos[] = {
    [JKTCP_CC_NEWRENO] = &jk_cc_newreno,
    [JKTCP_CC_CUBIC] = &jk_cc_cubic,
    [JKTCP_CC_BBR] = &jk_cc_bbr,
};

void jk_cc_init(struct jk_tcp *c)
{
    unsigned a = c->cfg.congestion;
    jk_cc_share_leave(c); /* a restart (new segment size, new controller) */
    c->cc.ops = a < sizeof algos / sizeof algos[0] && algos[a] ? algos[a] : &jk_cc_newreno;
    if (!c->cfg.congestion)
        c->cc.cwnd = UINT32_MAX;
    else
        c->cc.ops->init(c);
}

int jk_cc_select(struct jk_tcp *c, long algo)
{
    if (algo < JKTCP_CC_OFF || algo > JKTCP_CC_BBR)
        return -EINVAL;
    if (algo == c->cfg.congestion)
        return 0;
    bool was_on = c->cfg.congestion;
    c->cfg.congestion = (uint8_t)algo;
    if (!c->cc.ops)
        return 0; /* not started: the handshake's jk_cc_init picks it */
    uint32_t cwnd = c->cc.cwnd, ssthresh = c->cc.ssthresh;
    c->rec.prr_on = false; /* a reduction under way was the old law's */
    c->cc.pacing_bps = 0;
    c->cc.pace_held = false;
    c->cc.cwnd_acc = 0;
    memset(&c->cc.u, 0, sizeof c->cc.u);
    jk_cc_init(c);
    if (was_on && algo != JKTCP_CC_OFF) {
        c->cc.cwnd = cwnd; /* the new law takes over the window in use */
        if (algo != JKTCP_CC_BBR)
            c->cc.ssthresh = ssthresh;
    }
    return 0;
}

void jk_cc_on_ack(struct jk_tcp *c, uint32_t acked)
{
    if (c->cfg.congestion && c->cc.ops->on_ack)
        c->cc.ops->on_ack(c, acked);
}

void jk_cc_on_loss(struct jk_tcp *c)
{
    if (c->cfg.congestion && c->cc.ops->on_loss)
        c->cc.ops->on_loss(c);
}

void jk_cc_on_dupack(struct jk_tcp *c)
{
    if (c->cfg.congestion && c->cc.ops->on_dupack)
        c->cc.ops->on_dupack(c);
}

void jk_cc_on_partial_ack(struct jk_tcp *c, uint32_t acked)
{
    if (c->cfg.congestion && c->cc.ops->on_partial_ack)
        c->cc.ops->on_partial_ack(c, acked);
}

void jk_cc_on_recovery_exit(struct jk_tcp *c)
{
    if (c->cfg.congestion && c->cc.ops->on_recovery_exit)
        c->cc.ops->on_recovery_exit(c);
}

void jk_cc_on_rto(struct jk_tcp *c)
{
    if (c->cfg.congestion && c->cc.ops->on_rto)
        c->cc.ops->on_rto(c);
}

void jk_cc_on_delivered(struct jk_tcp *c, uint32_t delivered)
{
    c->cc.delivered += delivered;
    if (c->cfg.congestion && c->cc.ops->on_delivered)
        c->cc.ops->on_delivered(c, delivered);
}

void jk_cc_on_rtt(struct jk_tcp *c, uint32_t rtt_us)
{
    if (c->cfg.congestion && c->cc.ops->on_rtt)
        c->cc.ops->on_rtt(c, rtt_us);
}

void jk_cc_on_rto_recovery_exit(struct jk_tcp *c)
{
    if (c->cfg.congestion && c->cc.ops->on_rto_recovery_exit)
        c->cc.ops->on_rto_recovery_exit(c);
}

void jk_cc_on_undo(struct jk_tcp *c)
{
    if (c->cfg.congestion && c->cc.ops->on_undo)
        c->cc.ops->on_undo(c);
}

uint32_t jk_cc_cap(struct jk_tcp *c, uint32_t cwnd)
{
    uint32_t cap = c->max_snd_wnd + 16u * c->smss;
    return cwnd > cap && cap > c->max_snd_wnd ? cap : cwnd;
}

/* ---- NewReno ------------------------------------------------------------ */

static void reno_init(struct jk_tcp *c)
{
    c->cc.cwnd = 10u * c->smss; /* RFC 6928 initial window */
}

static void reno_on_ack(struct jk_tcp *c, uint32_t acked)
{
    if (c->cc.cwnd < c->cc.ssthresh) {
        c->cc.cwnd += acked; /* slow start, byte counting (our ACKs may stretch) */
    } else {
        c->cc.cwnd_acc += acked;
        if (c->cc.cwnd_acc >= c->cc.cwnd) {
            c->cc.cwnd_acc -= c->cc.cwnd;
            c->cc.cwnd += c->smss;
        }
    }
    c->cc.cwnd = jk_cc_cap(c, c->cc.cwnd);
}

/* Halve (RFC 5681 §3.2); without SACK, NewReno's inflation by the three
 * segments that left the network stands in for the pipe estimate. */
static void reno_on_loss(struct jk_tcp *c)
{
    c->cc.ssthresh = max_u32(flight_size(c) / 2, 2u * c->smss);
    c->cc.cwnd = c->sack_ok ? c->cc.ssthresh : c->cc.ssthresh + 3u * c->smss;
    c->cc.cwnd_acc = 0;
}

void jk_cc_reno_on_dupack(struct jk_tcp *c)
{
    if (!c->sack_ok && !c->rec.rto_recovery)
        c->cc.cwnd += c->smss; /* NewReno inflation: one segment left */
}

/* RFC 6582 §3.2 step 3: deflate by what was acked, add back one segment. */
void jk_cc_reno_on_partial_ack(struct jk_tcp *c, uint32_t acked)
{
    if (!c->sack_ok)
        c->cc.cwnd = c->cc.cwnd > acked ? c->cc.cwnd - acked + c->smss : c->smss;
}

/* RFC 6582 §3.2 step 4, option (1) with the burst guard. */
void jk_cc_reno_on_recovery_exit(struct jk_tcp *c)
{
    c->cc.cwnd = min_u32(c->cc.ssthresh, max_u32(flight_size(c), c->smss) + c->smss);
}

/* RFC 5681 §3.1 (4): one segment, ssthresh from the flight. */
static void reno_on_rto(struct jk_tcp *c)
{
    c->cc.ssthresh = max_u32(flight_size(c) / 2, 2u * c->smss);
    c->cc.cwnd = c->smss;
    c->cc.cwnd_acc = 0;
}

const struct jk_cc_ops jk_cc_newreno = {
    .name = "newreno",
    .prr = true,
    .init = reno_init,
    .on_ack = reno_on_ack,
    .on_loss = reno_on_loss,
    .on_dupack = jk_cc_reno_on_dupack,
    .on_partial_ack = jk_cc_reno_on_partial_ack,
    .on_recovery_exit = jk_cc_reno_on_recovery_exit,
    .on_rto = reno_on_rto,
};
