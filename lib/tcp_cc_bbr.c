/* SPDX-License-Identifier: MIT */
/*
 * A model-based controller in the spirit of BBR v1 (Cardwell et al.,
 * "BBR: Congestion-Based Congestion Control", 2016; Linux tcp_bbr.c;
 * draft-cardwell-iccrg-bbr-congestion-control-00). It keeps a model of
 * the path — the bottleneck rate (max delivery rate over the last ten
 * round trips) and the propagation delay (min RTT over ten seconds) —
 * and sizes the window from it: cwnd = gain · rate · min_rtt. Loss does
 * not shrink the model, so random loss (Wi-Fi, lossy tunnels) does not
 * starve the flow the way it starves a loss-halving sender.
 *
 * Where it departs from BBR v1:
 * - Delivery rate is sampled per round trip (delivered bytes over the
 *   round's duration, a round ending once the peer holds the byte that
 *   was next to send when it began), not per packet: the engine keeps a
 *   range scoreboard, not a record per segment. A round lasts one RTT,
 *   so the rate is the same quantity, sampled less often.
 * - Pacing is a token bucket JK_PACE_BURST_US deep (tcp_out.c), not one
 *   segment at a time: the I/O loop sleeps in whole milliseconds.
 * - Recovery: packet conservation for the first round of a recovery,
 *   then growth by what is delivered up to the model's window; the window
 *   from before is restored when the recovery ends (as Linux). After a
 *   timeout the window restarts from the model's floor (4 segments), not
 *   one segment, and grows by what is delivered.
 */
#include "tcp_int.h"

enum { JK_BBR_STARTUP, JK_BBR_DRAIN, JK_BBR_PROBE_BW, JK_BBR_PROBE_RTT };

#define HIGH_GAIN_X1K 2885 /* 2/ln 2: doubles the delivery rate each round */
#define DRAIN_GAIN_X1K 347 /* 1/2.885: drains STARTUP's queue in a round */
#define CWND_GAIN_X1K 2000
#define MIN_RTT_WINDOW_US 10000000u /* the min RTT filter's window */
#define PROBE_RTT_US 200000u        /* time spent at the floor to see the min RTT */
#define MIN_CWND_SEGS 4u
#define FULL_BW_ROUNDS 3 /* rounds without 25% growth: the pipe is full */

static const uint16_t cycle_gain_x1k[8] = {1250, 750, 1000, 1000, 1000, 1000, 1000, 1000};

static struct jk_bbr *bbr(struct jk_tcp *c)
{
    return &c->cc.u.bbr;
}

static uint64_t max_bw(struct jk_tcp *c)
{
    uint64_t m = 0;
    for (int i = 0; i < JK_BBR_BW_ROUNDS; i++)
        if (bbr(c)->bw[i] > m)
            m = bbr(c)->bw[i];
    return m;
}

uint64_t jk_cc_delivery_rate(struct jk_tcp *c)
{
    return c->cc.ops == &jk_cc_bbr ? max_bw(c) : 0;
}

/* The model the window and the pacing rate come from: this flow's own,
 * or — moving bulk data beside other flows of the adapter — the path's
 * shared one (tcp_cc_share.c). */
static uint64_t model(struct jk_tcp *c, uint32_t *min_rtt_us)
{
    uint64_t bw;
    if (jk_cc_share_model(c, &bw, min_rtt_us))
        return bw;
    *min_rtt_us = bbr(c)->min_rtt_us;
    return max_bw(c);
}

/* gain · bandwidth-delay product in bytes; before the model has a rate
 * and an RTT, the initial window. */
static uint32_t bdp(struct jk_tcp *c, uint32_t gain_x1k)
{
    uint32_t rtt;
    uint64_t bw = model(c, &rtt);
    if (!bw || !rtt)
        return (uint32_t)((uint64_t)10u * c->smss * gain_x1k / 1000);
    uint64_t b = bw * rtt / 1000000u * gain_x1k / 1000;
    return b > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)b;
}

static uint32_t cwnd_gain(struct jk_tcp *c)
{
    return bbr(c)->mode == JK_BBR_PROBE_BW ? CWND_GAIN_X1K : HIGH_GAIN_X1K;
}

static uint32_t pacing_gain(struct jk_tcp *c)
{
    switch (bbr(c)->mode) {
    case JK_BBR_STARTUP: return HIGH_GAIN_X1K;
    case JK_BBR_DRAIN: return DRAIN_GAIN_X1K;
    case JK_BBR_PROBE_BW: return cycle_gain_x1k[bbr(c)->cycle];
    default: return 1000;
    }
}

static uint32_t extra_acked(struct jk_tcp *c)
{
    return max_u32(bbr(c)->extra_acked[0], bbr(c)->extra_acked[1]);
}

/* The window the model asks for: gain · BDP, plus three segments and,
 * once the pipe is known to be full, the ACK aggregation seen lately
 * (ACKs that come in bunches: a window of exactly the BDP would stall
 * between bunches), at least the floor. */
static uint32_t target_cwnd(struct jk_tcp *c)
{
    uint32_t floor = MIN_CWND_SEGS * c->smss;
    if (bbr(c)->mode == JK_BBR_PROBE_RTT)
        return floor;
    uint64_t t = (uint64_t)bdp(c, cwnd_gain(c)) + 3u * c->smss;
    if (bbr(c)->full_bw)
        t += extra_acked(c);
    return max_u32(t > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)t, floor);
}

/* ACK aggregation (Linux's bbr_update_ack_aggregation): in an epoch that
 * starts when deliveries fall behind the modelled rate, count how many
 * bytes were delivered beyond what the rate explains; keep the max over
 * two slots of five rounds, capped at the window and at 100 ms of rate. */
static void update_ack_aggregation(struct jk_tcp *c, uint32_t delivered)
{
    struct jk_bbr *b = bbr(c);
    uint64_t bw = max_bw(c), now = NOW(c);
    if (!bw || !b->full_bw)
        return;
    if (b->round - b->extra_round >= 5) {
        b->extra_round = b->round;
        b->extra_acked[1] = b->extra_acked[0];
        b->extra_acked[0] = 0;
    }
    if (now - b->ack_epoch_us > 1000000u) { /* a stale epoch; keeps the product small */
        b->ack_epoch_us = now;
        b->ack_epoch_bytes = 0;
    }
    uint64_t expected = bw * (now - b->ack_epoch_us) / 1000000u;
    if (b->ack_epoch_bytes <= expected || b->ack_epoch_bytes + delivered >= (1u << 20)) {
        b->ack_epoch_us = now;
        b->ack_epoch_bytes = 0;
        expected = 0;
    }
    b->ack_epoch_bytes += delivered;
    uint64_t extra = b->ack_epoch_bytes > expected ? b->ack_epoch_bytes - expected : 0;
    uint64_t cap = bw / 10; /* 100 ms of rate */
    extra = extra < c->cc.cwnd ? extra : c->cc.cwnd;
    extra = extra < cap ? extra : cap;
    if (extra > b->extra_acked[0])
        b->extra_acked[0] = (uint32_t)extra;
}

static void bbr_init(struct jk_tcp *c)
{
    struct jk_bbr *b = bbr(c);
    *b = (struct jk_bbr){0};
    c->cc.cwnd = 10u * c->smss;
    c->cc.ssthresh = UINT32_MAX;
    b->mode = JK_BBR_STARTUP;
    b->round_end = c->snd_nxt;
    b->round_delivered = c->cc.delivered;
    b->round_us = NOW(c);
    b->min_rtt_us = c->rtt.min_rtt_us;
    b->min_rtt_at = NOW(c);
}

static void enter_probe_rtt(struct jk_tcp *c);

/* The min RTT filter: a lower sample, or any sample once the old one is
 * ten seconds old — which also sends the flow to PROBE_RTT (as Linux's
 * bbr_update_min_rtt), since a sample taken at full window includes the
 * queue the flow itself builds. */
static void bbr_on_rtt(struct jk_tcp *c, uint32_t rtt_us)
{
    struct jk_bbr *b = bbr(c);
    bool expired = b->min_rtt_us && NOW(c) - b->min_rtt_at > MIN_RTT_WINDOW_US;
    if (!b->min_rtt_us || rtt_us <= b->min_rtt_us || expired) {
        b->min_rtt_us = rtt_us;
        b->min_rtt_at = NOW(c);
        if (c->cc.share.joined)
            jk_cc_share_set(c, max_bw(c), rtt_us);
    }
    if (expired && b->mode != JK_BBR_PROBE_RTT)
        enter_probe_rtt(c);
}

/* STARTUP ends when three rounds in a row failed to raise the rate by a
 * quarter: the pipe is full (BBR's full-bandwidth check). Rounds limited
 * by the application do not count. */
static void check_full_bw(struct jk_tcp *c, bool app_limited)
{
    struct jk_bbr *b = bbr(c);
    uint64_t bw = max_bw(c);
    if (b->full_bw || app_limited)
        return;
    if (bw >= b->full_bw_seen * 5 / 4) {
        b->full_bw_seen = bw;
        b->full_bw_rounds = 0;
        return;
    }
    if (++b->full_bw_rounds >= FULL_BW_ROUNDS) {
        b->full_bw = true;
        b->mode = JK_BBR_DRAIN;
    }
}

/* The max filter keeps samples of the last JK_BBR_BW_ROUNDS rounds (as
 * Linux's minmax): a new sample first expires the ones older than that.
 * Rounds that give no sample (application-limited, or held back by the
 * window: PROBE_RTT, a timeout's restart) do not age it — its clock is
 * `sampled`, not the round count — so neither an idle stretch nor the
 * 200 ms of PROBE_RTT forgets the path's rate. */
static void add_bw_sample(struct jk_tcp *c, uint64_t sample)
{
    struct jk_bbr *b = bbr(c);
    for (int i = 0; i < JK_BBR_BW_ROUNDS; i++)
        if (b->sampled - b->bw_round[i] >= JK_BBR_BW_ROUNDS)
            b->bw[i] = 0;
    b->bw[b->bw_slot] = sample;
    b->bw_round[b->bw_slot] = b->sampled;
    b->bw_slot = (uint8_t)((b->bw_slot + 1) % JK_BBR_BW_ROUNDS);
}

/* A round ended: what this flow adds to the adapter's shared model
 * (tcp_cc_share.c). In once STARTUP found the pipe full and while only
 * the path limits it; out for a round in which something else did — the
 * application (nothing to send) or the peer's window — since its rate
 * then says nothing about the path, and as part of the mean it would
 * drag the others' windows down toward its own rate. */
static void share(struct jk_tcp *c, bool app_limited)
{
    if (!bbr(c)->full_bw || app_limited)
        jk_cc_share_leave(c);
    else
        jk_cc_share_set(c, max_bw(c), bbr(c)->min_rtt_us);
}

/* A round ended: its delivery rate goes into the max filter. A round the
 * application limited (nothing left to send when it began) says less than
 * the path can do: it only counts if it beats the filter (BBR's rule). */
static void end_round(struct jk_tcp *c)
{
    struct jk_bbr *b = bbr(c);
    uint64_t now = NOW(c), us = now - b->round_us;
    /* A round's ACKs may come in a burst (the peer or the pipe batching
     * them, or a SACK jump), which would make it look shorter than a
     * round trip and its rate far above the path's: the interval is at
     * least the smoothed RTT, the time the window takes to come back at
     * this load (Little's law), so the sample is never above what was
     * actually delivered per RTT. (Linux's tcp_rate_gen drops samples
     * shorter than the min RTT for the same reason.) */
    if (us < c->rtt.srtt_us)
        us = c->rtt.srtt_us;
    uint64_t sample = us ? (c->cc.delivered - b->round_delivered) * 1000000u / us : 0;
    /* A round the window held back — restarting after a timeout (growing
     * again from one segment), or PROBE_RTT's four segments — says nothing
     * about the path: like one the application limited, it only counts if
     * it beats the filter (Linux marks PROBE_RTT application-limited for
     * the same reason). Otherwise those rounds flush the filter and the
     * model reads a fraction of the path (seen on the 100 Mbit/s
     * bottleneck: 95 -> 11 Mbit/s after a timeout in STARTUP, and after
     * every PROBE_RTT, whose 200 ms are ten 20 ms rounds). Fast recovery
     * rounds count: the window stays near the pipe there. */
    bool app_limited = b->app_limited || b->held_round;
    if (us && (!app_limited || sample > max_bw(c))) {
        b->sampled++;
        add_bw_sample(c, sample);
    }
    share(c, b->app_limited || c->cc.limited_elsewhere);
    c->cc.limited_elsewhere = false;
    b->round++;
    b->round_end = c->snd_nxt;
    b->round_delivered = c->cc.delivered;
    b->round_us = now;
    b->app_limited = c->snd_nxt == snd_data_end(c);
    b->held_round = c->rec.rto_recovery || b->mode == JK_BBR_PROBE_RTT;
    if (b->conserving && b->round > b->conserve_round)
        b->conserving = false;
    check_full_bw(c, app_limited);
}

static void enter_probe_rtt(struct jk_tcp *c)
{
    struct jk_bbr *b = bbr(c);
    b->prior_cwnd = max_u32(b->prior_cwnd, c->cc.cwnd);
    b->mode = JK_BBR_PROBE_RTT;
    b->held_round = true;
    b->probe_rtt_end = NOW(c) + max_u32(PROBE_RTT_US, b->min_rtt_us);
}

/* The state machine (BBR v1): STARTUP → DRAIN once the pipe is full,
 * DRAIN → PROBE_BW once the queue it built is gone, PROBE_BW cycling its
 * gain each min RTT, PROBE_RTT every ten seconds without a lower RTT. */
static void update_mode(struct jk_tcp *c)
{
    struct jk_bbr *b = bbr(c);
    uint64_t now = NOW(c);
    if (b->mode == JK_BBR_DRAIN && jk_tcp_pipe(c) <= bdp(c, 1000)) {
        b->mode = JK_BBR_PROBE_BW;
        b->cycle = 2; /* start at cruising speed */
        b->cycle_at = now;
    }
    if (b->mode == JK_BBR_PROBE_BW && now - b->cycle_at > b->min_rtt_us) {
        b->cycle = (uint8_t)((b->cycle + 1) % 8);
        b->cycle_at = now;
    }
    if (b->mode != JK_BBR_PROBE_RTT && b->min_rtt_us && now - b->min_rtt_at > MIN_RTT_WINDOW_US)
        enter_probe_rtt(c);
    if (b->mode == JK_BBR_PROBE_RTT && now >= b->probe_rtt_end) {
        b->min_rtt_at = now; /* what it saw at the floor is the min RTT now */
        b->mode = b->full_bw ? JK_BBR_PROBE_BW : JK_BBR_STARTUP;
        c->cc.cwnd = max_u32(c->cc.cwnd, b->prior_cwnd);
        b->prior_cwnd = 0;
    }
}

/* The pacing rate: gain · bottleneck rate; before the first rate sample,
 * gain · initial window / SRTT (Linux's bbr_init_pacing_rate_from_rtt).
 * At least one segment per millisecond, so a stalled model never paces a
 * flow to a trickle. */
static void set_pacing_rate(struct jk_tcp *c)
{
    uint32_t rtt;
    uint64_t bw = model(c, &rtt);
    if (!bw && c->rtt.srtt_us)
        bw = (uint64_t)c->cc.cwnd * 1000000u / c->rtt.srtt_us;
    /* 1% below the model (Linux's bbr_pacing_margin_percent): the
     * model's rate is the bottleneck's, and pacing at exactly it never
     * lets a queue that built up drain */
    uint64_t rate = bw * pacing_gain(c) / 1000 * 99 / 100;
    uint64_t floor = (uint64_t)c->smss * 1000u;
    c->cc.pacing_bps = bw ? (rate > floor ? rate : floor) : 0;
}

/* The window (Linux's bbr_set_cwnd): in the first round of a recovery,
 * what is in flight plus what just left (packet conservation); otherwise
 * grow by what was delivered — without limit until the pipe is known to
 * be full, then up to the model's target. */
static void set_cwnd(struct jk_tcp *c, uint32_t delivered)
{
    struct jk_bbr *b = bbr(c);
    uint32_t target = target_cwnd(c), cwnd = c->cc.cwnd;
    if (b->conserving)
        cwnd = max_u32(cwnd, jk_tcp_pipe(c) + delivered);
    else if (b->full_bw)
        cwnd = min_u32(cwnd + delivered, target);
    else if (cwnd < target || c->cc.delivered < 10u * c->smss)
        cwnd += delivered;
    cwnd = max_u32(cwnd, MIN_CWND_SEGS * c->smss);
    if (b->mode == JK_BBR_PROBE_RTT)
        cwnd = min_u32(cwnd, target);
    c->cc.cwnd = jk_cc_cap(c, cwnd);
    set_pacing_rate(c);
}

static void bbr_on_delivered(struct jk_tcp *c, uint32_t delivered)
{
    if (!seq_lt(jk_tcp_highest_delivered(c), bbr(c)->round_end))
        end_round(c);
    update_ack_aggregation(c, delivered);
    update_mode(c);
    set_cwnd(c, delivered);
}

/* The window before a cut, to restore when it is over. */
static void save_cwnd(struct jk_tcp *c)
{
    bbr(c)->prior_cwnd = max_u32(bbr(c)->prior_cwnd, c->cc.cwnd);
}

static void bbr_on_loss(struct jk_tcp *c)
{
    save_cwnd(c);
    bbr(c)->conserving = true;
    bbr(c)->conserve_round = bbr(c)->round + 1; /* the round under way and one more */
    c->cc.cwnd = max_u32(jk_tcp_pipe(c), MIN_CWND_SEGS * c->smss);
}

static void restore_cwnd(struct jk_tcp *c)
{
    bbr(c)->conserving = false;
    c->cc.cwnd = max_u32(c->cc.cwnd, bbr(c)->prior_cwnd);
    bbr(c)->prior_cwnd = 0;
}

/* A timeout sends one segment (RFC 5681's loss window, as Linux's
 * tcp_enter_loss); the first delivery lifts the window to the model's
 * floor and it grows by what is delivered from there. */
static void bbr_on_rto(struct jk_tcp *c)
{
    jk_cc_share_leave(c); /* a whole RTO with nothing delivered: not the path's rate now */
    save_cwnd(c);
    bbr(c)->held_round = true;
    bbr(c)->conserving = false;
    c->cc.cwnd = c->smss;
}

const struct jk_cc_ops jk_cc_bbr = {
    .name = "bbr",
    .init = bbr_init,
    .on_loss = bbr_on_loss,
    .on_recovery_exit = restore_cwnd,
    .on_rto = bbr_on_rto,
    .on_delivered = bbr_on_delivered,
    .on_rtt = bbr_on_rtt,
    .on_rto_recovery_exit = restore_cwnd,
    .on_undo = restore_cwnd,
};
