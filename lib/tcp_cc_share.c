/* SPDX-License-Identifier: MIT */
/*
 * One path, one model (tcp_cc.h): the connections of an adapter all go to
 * its one peer over one path, so the model-based controller's flows that
 * are moving bulk data share their path model — the mean of their
 * bottleneck-rate estimates and of their min RTTs — instead of each
 * sizing its window from its own. This is ensemble sharing of congestion
 * state between connections to the same host (RFC 9040 §8) in the manner
 * of RFC 8699's flow state exchange with equal priorities: a flow whose
 * estimate ran above the others is pulled down to the mean, one below it
 * is raised, and the sum (what the path was measured to carry) is kept.
 *
 * Why: each BBR v1 flow's share of a common bottleneck is neutrally
 * stable — its window is 2 · its own rate · its own min RTT, and its rate
 * is what that window delivers — so shares wander with the noise in each
 * flow's samples (8 flows on one adapter: fastest 1.2–1.65× the slowest
 * over 10 s). With one model they get one window.
 *
 * A flow joins once its STARTUP found the pipe full and only the path
 * limited a round of it; it leaves for a round in which the application
 * (nothing to send) or the peer's window held it back — its rate is then
 * not the path's, and in the mean it would pull the others toward it —
 * when its controller changes or restarts, and when the connection stops
 * sending (TIME-WAIT, CLOSED). Alone on the path it uses its own model.
 * O(1) per update: the adapter keeps the sums, each flow what it added.
 */
#include "tcp_int.h"

void jk_cc_share_set(struct jk_tcp *c, uint64_t bw, uint32_t min_rtt_us)
{
    struct jk_cc_share *s = &c->env->cc_share;
    struct jk_cc_member *m = &c->cc.share;
    if (!bw || !min_rtt_us)
        return jk_cc_share_leave(c);
    if (m->joined) {
        s->bw_sum -= m->bw;
        s->rtt_sum -= m->min_rtt_us;
    } else {
        s->n++;
        m->joined = true;
    }
    m->bw = bw;
    m->min_rtt_us = min_rtt_us;
    s->bw_sum += bw;
    s->rtt_sum += min_rtt_us;
}

void jk_cc_share_leave(struct jk_tcp *c)
{
    struct jk_cc_member *m = &c->cc.share;
    if (!m->joined)
        return;
    struct jk_cc_share *s = &c->env->cc_share;
    s->bw_sum -= m->bw;
    s->rtt_sum -= m->min_rtt_us;
    s->n--;
    *m = (struct jk_cc_member){0};
}

bool jk_cc_share_model(const struct jk_tcp *c, uint64_t *bw, uint32_t *min_rtt_us)
{
    const struct jk_cc_share *s = &c->env->cc_share;
    if (!c->cc.share.joined || s->n < 2)
        return false;
    *bw = s->bw_sum / s->n;
    *min_rtt_us = (uint32_t)(s->rtt_sum / s->n);
    return true;
}
