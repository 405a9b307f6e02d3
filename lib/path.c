/* SPDX-License-Identifier: MIT */
/* The path MTU: ICMP reports and packetization-layer probing. See path.h. */
#include "path.h"

#include "tcp.h"

#define SEARCH_DONE 16                    /* stop when hi - lo is this small */
#define JK_MIN_PMTU4 552u                 /* IPv4 floor for reports (Linux's min_pmtu) */
#define RESEARCH_US (600ull * 1000000u)   /* RFC 4821 §7.7: look again after 10 min */

static uint32_t hdr_len(const struct jk_tcp_env *e)
{
    return (e->local.family == 4 ? 20u : 40u) + 20u;
}

/* Where a search starts and what a black hole falls back to: 1280 is the
 * IPv6 minimum; 1200 for IPv4 as RFC 8899 §5.1.2 recommends. */
static uint32_t base_mtu(const struct jk_tcp_env *e)
{
    uint32_t b = e->local.family == 4 ? 1200 : 1280;
    return b < e->mtu ? b : e->mtu;
}

static void set_mtu(struct jk_tcp_env *e, uint32_t mtu)
{
    e->ops->set_pmtu(e, mtu);
}

void jk_path_reset(struct jk_tcp_env *e)
{
    struct jk_path *p = &e->path;
    p->hi = e->mtu + 1;
    p->probe_c = NULL;
    p->next_us = 0;
    p->searching = p->mode == 2 && base_mtu(e) < e->mtu;
    p->lo = p->searching ? base_mtu(e) : e->mtu;
    e->pmtu = p->lo;
}

/* RFC 1191 §7: a router that did not say its MTU gets the next plateau
 * below the packet it dropped. */
static uint32_t plateau_below(uint32_t len)
{
    static const uint32_t pl[] = {32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68};
    for (size_t i = 0; i < sizeof pl / sizeof pl[0]; i++)
        if (pl[i] < len)
            return pl[i];
    return 68;
}

bool jk_path_too_big(struct jk_tcp *c, const struct jk_icmp *ic)
{
    struct jk_tcp_env *e = c->env;
    uint32_t mtu;
    if (e->local.family == 6) {
        /* RFC 8201 §4: every IPv6 link carries 1280, so a report below it
         * is bogus (RFC 8021: it only ever asked for atomic fragments);
         * IPv6 routers always say their MTU (no plateaus) */
        if (ic->mtu < 1280)
            return false;
        mtu = ic->mtu;
    } else {
        mtu = ic->mtu ? ic->mtu : plateau_below(ic->inner_len);
        if (mtu < JK_MIN_PMTU4) /* Linux's min_pmtu: 512 + 20 + 20 */
            mtu = JK_MIN_PMTU4;
    }
    if (mtu >= e->pmtu) /* never raised by ICMP (RFC 8201 §4) */
        return true;
    struct jk_path *p = &e->path;
    if (p->hi > mtu)
        p->hi = mtu; /* a probing search stays below what a router refused */
    if (p->lo > mtu)
        p->lo = mtu;
    set_mtu(e, mtu);
    jk_tcp_resend_all(c);
    return true;
}

/* The largest MTU the peer's MSS allows us (payload plus headers). */
static uint32_t peer_limit(const struct jk_tcp *c)
{
    uint32_t mss = c->peer_mss < JK_MIN_SND_MSS ? JK_MIN_SND_MSS : c->peer_mss;
    if (mss > c->local_mss)
        mss = c->local_mss;
    return mss + hdr_len(c->env);
}

uint32_t jk_path_probe_size(struct jk_tcp *c, uint32_t avail, uint32_t usable)
{
    struct jk_path *p = &c->env->path;
    uint32_t cur = c->env->pmtu;
    if (p->mode && !p->searching && c->env->now >= p->next_us && cur < c->env->mtu) {
        p->hi = c->env->mtu + 1; /* RFC 4821 §7.7: the path may have grown */
        p->searching = true;
    }
    if (!p->mode || !p->searching || p->probe_c || c->rec.in_recovery ||
        c->state != JKTCP_ESTABLISHED || c->env->now < p->next_us)
        return 0;
    uint32_t hi = p->hi < peer_limit(c) + 1 ? p->hi : peer_limit(c) + 1;
    if (hi <= cur + SEARCH_DONE) {
        p->searching = false; /* as far as this peer lets us go */
        p->next_us = c->env->now + RESEARCH_US;
        return 0;
    }
    uint32_t mtu = (cur + hi) / 2;
    uint32_t len = mtu - hdr_len(c->env) - (c->ts_ok ? 12 : 0);
    /* data behind it, so that its loss shows in SACKs (Linux: reordering + 1
     * segments), and room in the windows for all of it */
    if (avail < len + 3u * c->smss || usable < len)
        return 0;
    return mtu;
}

void jk_path_probe_sent(struct jk_tcp *c, uint32_t seq, uint32_t len)
{
    struct jk_path *p = &c->env->path;
    p->probe_c = c;
    p->probe_mtu = len + hdr_len(c->env) + (c->ts_ok ? 12 : 0);
    c->probe_seq = seq;
    c->probe_end = seq + len;
    c->env->st->pmtu_probes++;
}

static void probe_done(struct jk_tcp *c)
{
    struct jk_path *p = &c->env->path;
    p->probe_c = NULL;
    /* one round trip between probes */
    p->next_us = c->env->now + (c->rtt.srtt_us ? c->rtt.srtt_us : c->rtt.rto_us);
}

void jk_path_acked(struct jk_tcp *c)
{
    struct jk_path *p = &c->env->path;
    if (p->probe_c != c)
        return;
    bool got = seq_ge(c->snd_una, c->probe_end) ||
               jk_ranges_holds(c->rec.sack, c->rec.nsack, c->probe_seq, c->probe_end);
    if (!got)
        return;
    p->lo = p->probe_mtu; /* the path carries it */
    probe_done(c);
    set_mtu(c->env, p->lo);
}

static void probe_failed(struct jk_tcp *c)
{
    struct jk_path *p = &c->env->path;
    p->hi = p->probe_mtu;
    c->env->st->pmtu_probe_fails++;
    probe_done(c);
}

bool jk_path_probe_lost(struct jk_tcp *c)
{
    struct jk_path *p = &c->env->path;
    if (p->probe_c != c || !seq_le(c->probe_seq, c->snd_una) || !seq_lt(c->snd_una, c->probe_end))
        return false;
    probe_failed(c);
    return true;
}

/* Two timeouts in a row while full-sized segments are out: maybe a router
 * drops what is too big and its ICMP does not reach us (a black hole).
 * Fall to the base MTU, which every path carries, and search up again
 * (Linux's tcp_mtu_probing after tcp_retries1). */
static void black_hole(struct jk_tcp *c)
{
    struct jk_tcp_env *e = c->env;
    struct jk_path *p = &e->path;
    uint32_t base = base_mtu(e);
    if (e->pmtu <= base)
        return;
    p->hi = e->pmtu;
    p->lo = base;
    p->searching = true;
    p->next_us = 0;
    e->st->pmtu_blackholes++;
    set_mtu(e, base);
}

void jk_path_timeout(struct jk_tcp *c)
{
    struct jk_path *p = &c->env->path;
    if (p->probe_c == c)
        probe_failed(c);
    else if (p->mode && c->retries == 2)
        black_hole(c);
}

void jk_path_conn_gone(struct jk_tcp *c)
{
    if (c->env->path.probe_c == c)
        c->env->path.probe_c = NULL;
}
