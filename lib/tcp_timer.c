/* SPDX-License-Identifier: MIT */
/*
 * Timers: RTT estimation and the RTO (RFC 6298), retransmission
 * timeouts, the persist timer, keepalive, and the per-connection
 * deadline the adapter keeps in its heap.
 */
#include "tcp_int.h"

#include <errno.h>
#include <string.h>

void jk_tcp_arm_rto(struct jk_tcp *c)
{
    if (!c->timer[JK_T_RTO])
        c->timer[JK_T_RTO] = NOW(c) + c->rtt.rto_us;
}

void jk_tcp_arm_persist(struct jk_tcp *c)
{
    if (c->timer[JK_T_PERSIST] || c->timer[JK_T_RTO])
        return;
    uint64_t iv = (uint64_t)c->rtt.rto_us << min_u32(c->persist_backoff, 16);
    if (iv > c->cfg.rto_max_us)
        iv = c->cfg.rto_max_us;
    c->timer[JK_T_PERSIST] = NOW(c) + iv;
}

/* RFC 6298 (2.3) from the current estimate, clamped; also undoes the
 * exponential backoff once the peer acknowledges new data again (as Linux
 * does), so a lossy stretch does not leave a minutes-long RTO behind. */
void jk_tcp_rto_from_estimate(struct jk_tcp *c)
{
    if (!c->rtt.srtt_us)
        return;
    uint64_t rto = (uint64_t)c->rtt.srtt_us + max_u32(1000, 4 * c->rtt.rttvar_us);
    if (rto < c->cfg.rto_min_us)
        rto = c->cfg.rto_min_us;
    if (rto > c->cfg.rto_max_us)
        rto = c->cfg.rto_max_us;
    c->rtt.rto_us = (uint32_t)rto;
}

void jk_tcp_update_rtt(struct jk_tcp *c, uint32_t sample)
{
    if (sample == 0)
        sample = 1;
    if (!c->rtt.min_rtt_us || sample < c->rtt.min_rtt_us)
        c->rtt.min_rtt_us = sample;
    jk_cc_on_rtt(c, sample);
    if (!c->rtt.srtt_us) {
        c->rtt.srtt_us = sample;
        c->rtt.rttvar_us = sample / 2;
    } else {
        uint32_t d = c->rtt.srtt_us > sample ? c->rtt.srtt_us - sample : sample - c->rtt.srtt_us;
        c->rtt.rttvar_us = (3 * c->rtt.rttvar_us + d) / 4;
        c->rtt.srtt_us = (7 * c->rtt.srtt_us + sample) / 8;
    }
    jk_tcp_rto_from_estimate(c);
}

/* Why a connection that stopped hearing from its peer died: the last ICMP
 * error if one came (a route that went away says more than silence, as
 * Linux reports sk_err_soft), else -ETIMEDOUT. */
static int give_up_error(struct jk_tcp *c)
{
    return c->soft_err ? c->soft_err : -ETIMEDOUT;
}

static void on_rto(struct jk_tcp *c)
{
    c->timer[JK_T_RTO] = 0;
    c->timer[JK_T_TLP] = 0;
    c->timer[JK_T_RACK] = 0;
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
    uint32_t doubled = c->rtt.rto_us * 2 > c->rtt.rto_us ? c->rtt.rto_us * 2 : UINT32_MAX;
    c->rtt.rto_us = min_u32(doubled, c->cfg.rto_max_us);
    if (synchronized(c->state)) {
        if (!c->rec.in_recovery) {
            jk_tcp_undo_begin(c); /* a timeout inside a recovery keeps its episode */
            jk_tcp_eifel_arm(c);  /* its first resend is this timeout's */
        }
        jk_cc_on_rto(c);
    }
    c->rec.recover = c->snd_max;
    c->rec.dupacks = 0;
    c->rtt.timing = false;
    jk_rack_sent_forget(c); /* everything goes again: its first times say nothing */
    /* Keep the SACK scoreboard through one timeout (the resends skip what
     * the peer holds, as Linux does); drop it on the second in a row in
     * case the receiver reneged (RFC 2018 §8). */
    if (c->retries > 1 && c->rec.nsack) {
        uint32_t end = jk_tcp_highest_delivered(c);
        if (!c->rec.forgot || seq_gt(end, c->rec.forgot_end))
            c->rec.forgot_end = end;
        c->rec.forgot += jk_tcp_sacked_bytes(c);
        c->rec.nsack = 0;
    }
    if (synchronized(c->state)) {
        /* everything unSACKed is lost: send_hole resends it in order,
         * paced by slow start, and resends again what a pass loses */
        c->rec.in_recovery = c->rec.rto_recovery = true;
        c->rec.rexmit_hi = c->snd_una;
        jk_rack_reset(c);
    } else {
        c->rec.in_recovery = false;
        c->snd_nxt = c->iss;
    }
    jk_tcp_changed(c);
}

static void on_persist(struct jk_tcp *c)
{
    c->timer[JK_T_PERSIST] = 0;
    if (jk_ring_used(&c->snd) == 0)
        return;
    if (c->snd_wnd != 0) { /* a window too small to use (sws_send_ok) */
        c->sws_override = true;
        jk_tcp_changed(c);
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

/* No data moved for JK_TRIM_IDLE_US (or it did: wait the rest). The
 * receive ring is ours to trim — the engine is its only producer — unless
 * out-of-order bytes sit beyond its tail; the send ring's producers are the
 * owner's writers, so the owner trims it (JK_TCP_IDLE). */
static void on_trim(struct jk_tcp *c)
{
    uint64_t due = c->data_us + JK_TRIM_IDLE_US;
    if (due > NOW(c)) {
        c->timer[JK_T_TRIM] = jk_tcp_trim_slot(due);
        return;
    }
    c->timer[JK_T_TRIM] = 0;
    if (c->ooo.n == 0)
        jk_ring_trim(&c->rcv);
    if (c->snd.buf)
        jk_tcp_event(c, JK_TCP_IDLE);
}

static void on_keepalive(struct jk_tcp *c)
{
    uint64_t idle = NOW(c) - c->last_rx_us;
    c->timer[JK_T_KEEPALIVE] = 0;
    if (c->state != JKTCP_ESTABLISHED)
        return;
    if (idle < c->cfg.keepalive_us && c->ka_probes == 0) {
        c->timer[JK_T_KEEPALIVE] = c->last_rx_us + c->cfg.keepalive_us;
        return;
    }
    if (++c->ka_probes > JK_KEEPALIVE_PROBES) {
        c->err = give_up_error(c);
        jk_tcp_abort(c, true);
        return;
    }
    jk_tcp_send_probe(c);
    c->timer[JK_T_KEEPALIVE] = NOW(c) + max_u32(c->cfg.keepalive_us / 4, 1000);
}

void jk_tcp_timers(struct jk_tcp *c)
{
    uint64_t now = NOW(c);
    if (c->timer[JK_T_CLOSE] && c->timer[JK_T_CLOSE] <= now) {
        c->timer[JK_T_CLOSE] = 0;
        jk_tcp_to_closed(c, c->state == JKTCP_TIME_WAIT ? 0 : -ETIMEDOUT);
        return;
    }
    if (c->timer[JK_T_DELACK] && c->timer[JK_T_DELACK] <= now) {
        c->timer[JK_T_DELACK] = 0;
        c->ack_now = true;
    }
    if (c->timer[JK_T_RTO] && c->timer[JK_T_RTO] <= now)
        on_rto(c);
    if (c->state == JKTCP_CLOSED)
        return;
    if (c->timer[JK_T_TLP] && c->timer[JK_T_TLP] <= now)
        jk_tcp_on_tlp(c);
    if (c->timer[JK_T_RACK] && c->timer[JK_T_RACK] <= now)
        jk_tcp_on_rack(c);
    if (c->timer[JK_T_PERSIST] && c->timer[JK_T_PERSIST] <= now)
        on_persist(c);
    if (c->state == JKTCP_CLOSED)
        return;
    if (c->timer[JK_T_KEEPALIVE] && c->timer[JK_T_KEEPALIVE] <= now)
        on_keepalive(c);
    if (c->state != JKTCP_CLOSED && c->timer[JK_T_TRIM] && c->timer[JK_T_TRIM] <= now)
        on_trim(c);
    if (c->timer[JK_T_PACE] && c->timer[JK_T_PACE] <= now)
        c->timer[JK_T_PACE] = 0; /* the output pass below sends what is due */
    if (c->state != JKTCP_CLOSED)
        jk_tcp_changed(c);
}

uint64_t jk_tcp_deadline(const struct jk_tcp *c)
{
    uint64_t d = 0;
    for (int i = 0; i < JK_T_COUNT; i++)
        if (c->timer[i] && (!d || c->timer[i] < d))
            d = c->timer[i];
    return d;
}
