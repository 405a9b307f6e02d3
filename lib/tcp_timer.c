/* SPDX-License-Identifier: MIT */
/*
 * Timers: RTT estimation and the RTO (RFC 6298), retransmission
 * timeouts, the persist timer, keepalive, and the per-connection
 * deadline the adapter keeps in its heap.
 */
#include "tcp_int.h"

#include <errno.h>
#include <string.h>

void jk_tcp_arm_rto(struct jktcp_conn *c)
{
    if (!c->t_rto)
        c->t_rto = NOW(c) + c->rto_us;
}

void jk_tcp_arm_persist(struct jktcp_conn *c)
{
    if (c->t_persist || c->t_rto)
        return;
    uint64_t iv = (uint64_t)c->rto_us << min_u32(c->persist_backoff, 16);
    if (iv > c->cfg.rto_max_us)
        iv = c->cfg.rto_max_us;
    c->t_persist = NOW(c) + iv;
}

/* RFC 6298 (2.3) from the current estimate, clamped; also undoes the
 * exponential backoff once the peer acknowledges new data again (as Linux
 * does), so a lossy stretch does not leave a minutes-long RTO behind. */
void jk_tcp_rto_from_estimate(struct jktcp_conn *c)
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

void jk_tcp_update_rtt(struct jktcp_conn *c, uint32_t sample)
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
    jk_tcp_rto_from_estimate(c);
}

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
    jk_tcp_send_probe(c);
    jk_tcp_arm_persist(c);
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
    jk_tcp_send_probe(c);
    c->t_keepalive = NOW(c) + max_u32(c->cfg.keepalive_us / 4, 1000);
}

void jk_tcp_timers(struct jktcp_conn *c)
{
    uint64_t now = NOW(c);
    if (c->t_close && c->t_close <= now) {
        c->t_close = 0;
        jk_tcp_to_closed(c, c->state == JKTCP_TIME_WAIT ? 0 : -ETIMEDOUT);
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
        jk_tcp_on_tlp(c);
    if (c->t_rack && c->t_rack <= now)
        jk_tcp_on_rack(c);
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
