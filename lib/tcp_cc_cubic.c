/* SPDX-License-Identifier: MIT */
/*
 * CUBIC (RFC 9438), the Linux default: after a cut to β·W_max the window
 * follows W(t) = C·(t − K)³ + W_max, flat near the old maximum and steep
 * away from it, so it finds its way back to where the loss was in time
 * K whatever the RTT; on short-RTT paths the Reno-friendly estimate
 * (§4.3) rules instead. Slow start is NewReno's (no HyStart++), and so
 * are the recovery mechanics (dupACK inflation without SACK, partial
 * ACKs, the exit): CUBIC only changes how far the window is cut and how
 * it grows back.
 *
 * Units: windows in bytes, time in microseconds; the constants of the
 * RFC are in segments and seconds and converted where they meet.
 */
#include "tcp_int.h"

#define CUBIC_C 0.4       /* segments / s^3 (§4.2) */
#define CUBIC_BETA_X1K 700 /* β_cubic = 0.7 (§4.6) */

/* Cube root by Newton's method: no libm, and the operand is small. */
static double cube_root(double x)
{
    if (x <= 0)
        return 0;
    double r = x > 1 ? x / 3 : 1;
    for (int i = 0; i < 60; i++) {
        double n = r - (r * r * r - x) / (3 * r * r);
        if (n == r)
            break;
        r = n;
    }
    return r;
}

/* K (§4.2, eq. 2): the time to climb from the window at the epoch's
 * start back to W_max. */
static uint32_t cubic_k_us(struct jk_tcp *c, uint32_t from)
{
    if (from >= c->cc.u.cubic.w_max)
        return 0;
    double segs = (double)(c->cc.u.cubic.w_max - from) / c->smss;
    return (uint32_t)(cube_root(segs / CUBIC_C) * 1e6);
}

/* W_cubic(t) in bytes (§4.2, eq. 1), t in microseconds since the epoch. */
static double w_cubic(struct jk_tcp *c, uint64_t t_us)
{
    double d = ((double)t_us - c->cc.u.cubic.k_us) / 1e6;
    return CUBIC_C * d * d * d * c->smss + c->cc.u.cubic.w_max;
}

static void cubic_init(struct jk_tcp *c)
{
    c->cc.cwnd = 10u * c->smss;
    c->cc.u.cubic = (struct jk_cubic){0};
}

static void begin_epoch(struct jk_tcp *c)
{
    struct jk_cubic *k = &c->cc.u.cubic;
    k->epoch_us = NOW(c);
    if (k->w_max < c->cc.cwnd)
        k->w_max = c->cc.cwnd; /* slow start ended without a loss (§4.2) */
    k->k_us = cubic_k_us(c, c->cc.cwnd);
    k->w_est = c->cc.cwnd;
    k->est_acc = 0;
}

/* The Reno-friendly estimate (§4.3): grows by α_cubic segments per
 * window acked, α = 3(1 − β)/(1 + β) while below W_max, 1 above it. */
static void grow_w_est(struct jk_tcp *c, uint32_t acked)
{
    struct jk_cubic *k = &c->cc.u.cubic;
    uint32_t alpha_x1k = k->w_est >= k->w_max
                             ? 1000
                             : 3 * (1000 - CUBIC_BETA_X1K) * 1000 / (1000 + CUBIC_BETA_X1K);
    k->est_acc += acked;
    while (k->est_acc >= c->cc.cwnd) {
        k->est_acc -= c->cc.cwnd;
        k->w_est += (uint32_t)((uint64_t)alpha_x1k * c->smss / 1000);
    }
}

/* Congestion avoidance (§4.2–4.4): move toward W_cubic one RTT ahead,
 * by (target − cwnd)/cwnd per byte acked, the target held between cwnd
 * and 1.5·cwnd; never below the Reno-friendly estimate. */
static void cubic_avoid(struct jk_tcp *c, uint32_t acked)
{
    struct jk_cubic *k = &c->cc.u.cubic;
    if (!k->epoch_us)
        begin_epoch(c);
    uint64_t t = NOW(c) - k->epoch_us + (c->rtt.srtt_us ? c->rtt.srtt_us : c->rtt.min_rtt_us);
    double target = w_cubic(c, t);
    double cwnd = c->cc.cwnd;
    target = target < cwnd ? cwnd : target > 1.5 * cwnd ? 1.5 * cwnd : target;
    grow_w_est(c, acked);
    /* fractions of a byte carry over in 1/1024ths */
    uint64_t inc = (uint64_t)((target - cwnd) * acked * 1024 / cwnd) + c->cc.cwnd_acc;
    c->cc.cwnd += (uint32_t)(inc >> 10);
    c->cc.cwnd_acc = (uint32_t)(inc & 1023);
    if (k->w_est > c->cc.cwnd)
        c->cc.cwnd = k->w_est;
}

static void cubic_on_ack(struct jk_tcp *c, uint32_t acked)
{
    if (c->cc.cwnd < c->cc.ssthresh)
        c->cc.cwnd += acked; /* slow start, as NewReno */
    else
        cubic_avoid(c, acked);
    c->cc.cwnd = jk_cc_cap(c, c->cc.cwnd);
}

/* §4.6–4.7: cut to β·cwnd and remember where the loss was; with fast
 * convergence a flow whose maximum keeps falling releases bandwidth by
 * remembering less than it had. */
static void cubic_cut(struct jk_tcp *c)
{
    struct jk_cubic *k = &c->cc.u.cubic;
    uint32_t w = c->cc.cwnd;
    k->prior_w_max = k->w_max;
    k->w_max = w < k->w_max ? (uint32_t)((uint64_t)w * (1000 + CUBIC_BETA_X1K) / 2000) : w;
    k->epoch_us = 0;
    c->cc.ssthresh = max_u32((uint32_t)((uint64_t)w * CUBIC_BETA_X1K / 1000), 2u * c->smss);
    c->cc.cwnd_acc = 0;
}

static void cubic_on_loss(struct jk_tcp *c)
{
    cubic_cut(c);
    c->cc.cwnd = c->sack_ok ? c->cc.ssthresh : c->cc.ssthresh + 3u * c->smss;
}

/* §4.8: a timeout cuts ssthresh the CUBIC way and restarts from one
 * segment (RFC 5681); the cubic resumes from the new epoch. */
static void cubic_on_rto(struct jk_tcp *c)
{
    cubic_cut(c);
    c->cc.cwnd = c->smss;
}

/* §4.9: the loss was spurious: the maximum from before it comes back
 * (cwnd and ssthresh the engine restored) and a new epoch starts. */
static void cubic_on_undo(struct jk_tcp *c)
{
    struct jk_cubic *k = &c->cc.u.cubic;
    k->w_max = max_u32(k->w_max, k->prior_w_max);
    k->epoch_us = 0;
}

const struct jk_cc_ops jk_cc_cubic = {
    .name = "cubic",
    .prr = true,
    .init = cubic_init,
    .on_ack = cubic_on_ack,
    .on_loss = cubic_on_loss,
    .on_dupack = jk_cc_reno_on_dupack, /* NewReno's recovery mechanics */
    .on_partial_ack = jk_cc_reno_on_partial_ack,
    .on_recovery_exit = jk_cc_reno_on_recovery_exit,
    .on_rto = cubic_on_rto,
    .on_undo = cubic_on_undo,
};
