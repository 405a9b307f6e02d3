/* SPDX-License-Identifier: MIT */
/*
 * The adapter: one transport, one local and one peer address, every
 * connection and timer. It demultiplexes arriving frames to connections,
 * keeps a min-heap of connection deadlines (no fixed tick: an idle adapter
 * sleeps until the next deadline), and runs the output pass that lets every
 * connection with something to say emit segments into the transport.
 *
 * One step of the loop (jk_adapter_step):
 *   input  — drain every ready frame (batched: an output pass every
 *            JK_BATCH frames, so ACKs cover several segments);
 *   timers — fire what is due;
 *   output — queued RSTs, then every dirty connection, then a transport
 *            flush. A busy transport stops the pass; it resumes when the
 *            fd polls writable.
 */
#include "adapter.h"

#include "icmp.h"
#include "tcp_cc.h"
#include "platform.h"
#include "transport.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <urcu/compiler.h>

#define JK_BATCH 64
#define JK_STEP_FRAMES 1024
#define EPHEMERAL_LO 49152u
#define EPHEMERAL_N 16384u

static uint64_t mono_us(void *ctx)
{
    (void)ctx;
    return jk_mono_us();
}

uint64_t jk_now(struct jktcp_adapter *a)
{
    uint64_t t = a->clock(a->clock_ctx);
    if (t > a->env.now)
        a->env.now = t;
    return a->env.now;
}

uint32_t jk_random(struct jktcp_adapter *a)
{
    /* xorshift32: unpredictability is not needed on a private link, only
     * distinct ISNs and ports; seeded from getrandom() */
    uint32_t x = a->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return a->rng = x;
}

/* ------------------------------------------------------------------ */
/* Connection table                                                   */
/* ------------------------------------------------------------------ */

static uint32_t bucket_of(uint16_t lport, uint16_t rport)
{
    uint32_t k = ((uint32_t)lport << 16 | rport) * 2654435761u;
    return k >> (32 - 12);
}

struct jktcp_conn *jk_adapter_lookup(struct jktcp_adapter *a, uint16_t lport, uint16_t rport)
{
    for (struct jktcp_conn *c = a->buckets[bucket_of(lport, rport)]; c; c = c->hnext)
        if (c->tcp.lport == lport && c->tcp.rport == rport)
            return c;
    return NULL;
}

static void unhash(struct jktcp_conn *c)
{
    if (!c->hashed)
        return;
    struct jktcp_conn **pp = &c->a->buckets[bucket_of(c->tcp.lport, c->tcp.rport)];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    c->hashed = false;
    if (c->ephemeral) {
        uint32_t i = c->tcp.lport - EPHEMERAL_LO;
        c->a->eph_used[i / 64] &= ~(1ull << (i % 64));
    }
}

static bool ephemeral_in_use(struct jktcp_adapter *a, uint16_t port)
{
    uint32_t i = port - EPHEMERAL_LO;
    return a->eph_used[i / 64] >> (i % 64) & 1;
}

static int pick_port(struct jktcp_adapter *a, uint16_t rport, uint16_t *out)
{
    uint32_t start = jk_random(a) % EPHEMERAL_N;
    for (uint32_t n = 0; n < EPHEMERAL_N; n++) {
        uint16_t p = (uint16_t)(EPHEMERAL_LO + (start + n) % EPHEMERAL_N);
        if (!ephemeral_in_use(a, p) && !jk_adapter_lookup(a, p, rport)) {
            *out = p;
            return 0;
        }
    }
    return -EADDRNOTAVAIL;
}

struct jktcp_conn *jk_adapter_new_conn(struct jktcp_adapter *a, uint16_t lport, uint16_t rport,
                                       bool ephemeral, int *err)
{
    if (a->nconns >= a->max_conns) {
        *err = -EMFILE;
        return NULL;
    }
    if (ephemeral && (*err = pick_port(a, rport, &lport)) < 0)
        return NULL;
    struct jktcp_conn *c = calloc(1, sizeof *c);
    if (!c || (*err = jk_tcp_init_conn(&c->tcp, &a->env, lport, rport)) < 0) {
        free(c);
        if (!c)
            *err = -ENOMEM;
        return NULL;
    }
    c->a = a;
    jk_heap_node_init(&c->tnode);
    jk_list_init(&c->dirty_link);
    jk_list_init(&c->acc_link);
    c->ephemeral = ephemeral;
    if (ephemeral) {
        uint32_t i = lport - EPHEMERAL_LO;
        a->eph_used[i / 64] |= 1ull << (i % 64);
    }
    uint32_t b = bucket_of(lport, rport);
    c->hnext = a->buckets[b];
    a->buckets[b] = c;
    c->hashed = true;
    jk_list_push(&a->all, &c->all_link);
    a->nconns++;
    a->st.conns_opened++;
    a->st.conns_active++;
    return c;
}

static void free_conn(struct jktcp_conn *c)
{
    struct jktcp_adapter *a = c->a;
    unhash(c);
    jk_heap_remove(&a->timers, &c->tnode);
    jk_list_del(&c->all_link);
    jk_list_del(&c->dirty_link);
    jk_list_del(&c->acc_link);
    a->nconns--;
    jk_cc_share_leave(&c->tcp); /* closed connections left already; to be sure */
    jk_tcp_free_buffers(&c->tcp);
    free(c);
}

/* ------------------------------------------------------------------ */
/* Timers (a min-heap of connections by their earliest deadline)      */
/* ------------------------------------------------------------------ */

static void update_timer(struct jktcp_conn *c)
{
    uint64_t d = c->tcp.state == JKTCP_CLOSED ? 0 : jk_tcp_deadline(&c->tcp);
    if (!d)
        jk_heap_remove(&c->a->timers, &c->tnode);
    else /* out of memory: not queued; retried on the next update */
        jk_heap_set(&c->a->timers, &c->tnode, d);
}

static struct jktcp_conn *timer_conn(struct jk_heap_node *n)
{
    return caa_container_of(n, struct jktcp_conn, tnode);
}

/* ------------------------------------------------------------------ */
/* Events from the state machine                                      */
/* ------------------------------------------------------------------ */

void jk_adapter_mark_dirty(struct jktcp_conn *c)
{
    struct jktcp_adapter *a = c->a;
    if (!jk_list_linked(&c->dirty_link))
        jk_list_push_back(&a->dirty, &c->dirty_link);
}

static void conn_closed(struct jktcp_conn *c)
{
    struct jktcp_adapter *a = c->a;
    unhash(c);
    jk_heap_remove(&a->timers, &c->tnode);
    if (a->st.conns_active)
        a->st.conns_active--;
    struct jktcp_conn_listener *l = c->listener;
    if (l && !c->queued) { /* a half-open connection died */
        l->pending--;
        c->listener = NULL;
        c->tcp.user_released = true;
    }
    if (c->tcp.user_released)
        jk_tcp_free_buffers(&c->tcp);
    jk_adapter_mark_dirty(c); /* the output pass reports it, and frees it
                                 once released */
}

static void established(struct jktcp_conn *c)
{
    struct jktcp_conn_listener *l = c->listener;
    if (!l)
        return;
    c->queued = true;
    c->tcp.user_released = false; /* the accept queue holds it now */
    jk_list_push_back(&l->acc, &c->acc_link);
    jk_adapter_mark_dirty(c);
}

void jk_adapter_release(struct jktcp_conn *c)
{
    jk_now(c->a); /* an orphan's timer counts from now */
    if (jk_tcp_orphan(&c->tcp))
        jk_adapter_mark_dirty(c); /* the output pass frees the rest */
}

/* ------------------------------------------------------------------ */
/* Output                                                             */
/* ------------------------------------------------------------------ */

int jk_adapter_send_frame(struct jktcp_adapter *a, const uint8_t *frame, size_t len)
{
    if (a->err)
        return a->err;
    int r = jk_transport_send(a->t, frame, len);
    if (r == -EAGAIN) {
        a->env.tx_blocked = true;
        return r;
    }
    if (r < 0) {
        jk_adapter_fail(a, r);
        return r;
    }
    a->st.frames_out++;
    a->st.bytes_out += len;
    return 0;
}

static int send_rsts(struct jktcp_adapter *a);

void jk_adapter_queue_rst(struct jktcp_adapter *a, const struct jk_rst *r)
{
    if (a->nrst == JK_RST_QUEUE)
        send_rsts(a); /* a burst (SYN flood): send what is owed first */
    if (a->nrst < JK_RST_QUEUE)
        a->rstq[a->nrst++] = *r; /* transport still busy: unsolicited, safe to drop */
}

void jk_adapter_reset_for(struct jktcp_adapter *a, const struct jk_seg *s)
{
    struct jk_rst r;
    if (jk_tcp_rst_for(s, &r))
        jk_adapter_queue_rst(a, &r);
}

static int send_rsts(struct jktcp_adapter *a)
{
    int i = 0, r = 0;
    for (; i < a->nrst; i++) {
        struct jk_seg s;
        memset(&s, 0, sizeof s);
        s.src = a->env.local;
        s.dst = a->env.peer;
        s.sport = a->rstq[i].sport;
        s.dport = a->rstq[i].dport;
        s.seq = a->rstq[i].seq;
        s.ack = a->rstq[i].ack;
        s.flags = a->rstq[i].flags;
        s.opt.has_ts = a->rstq[i].ts;
        s.opt.tsval = a->rstq[i].tsval;
        s.opt.tsecr = a->rstq[i].tsecr;
        size_t n = jk_build_segment(a->txbuf, JK_MAX_FRAME, &s, NULL, 0);
        if (n && (r = jk_adapter_send_frame(a, a->txbuf, n)) < 0)
            break;
        a->st.rst_sent++;
    }
    memmove(a->rstq, a->rstq + i, (size_t)(a->nrst - i) * sizeof a->rstq[0]);
    a->nrst -= i;
    return r;
}

/* Let every dirty connection emit. Returns -EAGAIN if the transport
 * filled up (the remaining connections stay dirty). */
int jk_adapter_output(struct jktcp_adapter *a)
{
    int r = send_rsts(a);
    if (a->err)
        r = 0; /* a dead transport still owes its connections their events */
    while (r == 0 && !jk_list_empty(&a->dirty)) {
        struct jktcp_conn *c = jk_list_entry(a->dirty.next, struct jktcp_conn, dirty_link);
        if (!a->err && c->tcp.state != JKTCP_CLOSED && (r = jk_tcp_output(&c->tcp)) == -EAGAIN)
            break;
        r = 0;
        jk_list_del(&c->dirty_link);
        if (c->tcp.state == JKTCP_CLOSED)
            jk_heap_remove(&a->timers, &c->tnode);
        else
            update_timer(c);
        if (a->on_conn_event)
            a->on_conn_event(a, c); /* may release c: then it is dirty again */
        if (c->tcp.state == JKTCP_CLOSED && c->tcp.user_released && !jk_list_linked(&c->dirty_link))
            free_conn(c);
    }
    if (a->err)
        return a->err;
    int f = jk_transport_flush(a->t);
    if (f < 0 && f != -EAGAIN)
        jk_adapter_fail(a, f);
    if (r == -EAGAIN || f == -EAGAIN) {
        a->env.tx_blocked = true;
        return -EAGAIN;
    }
    a->env.tx_blocked = false;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Input                                                              */
/* ------------------------------------------------------------------ */

static void count_drop(struct jktcp_adapter *a, enum jk_parse p)
{
    switch (p) {
    case JK_PARSE_SHORT: a->st.drop_short++; break;
    case JK_PARSE_VERSION: a->st.drop_version++; break;
    case JK_PARSE_LENGTH: a->st.drop_length++; break;
    case JK_PARSE_CHECKSUM: a->st.drop_checksum++; break;
    case JK_PARSE_FRAGMENT: a->st.drop_fragment++; break;
    case JK_PARSE_OPTIONS: a->st.drop_options++; break;
    case JK_PARSE_IP_OPTION: a->st.drop_options++; break;
    default: a->st.ignored_proto++; break;
    }
}

static struct jktcp_conn_listener *find_listener(struct jktcp_adapter *a, uint16_t port)
{
    struct jk_list *p;
    jk_list_each(p, &a->listeners) {
        struct jktcp_conn_listener *l = jk_list_entry(p, struct jktcp_conn_listener, link);
        if (l->port == port)
            return l;
    }
    return NULL;
}

static void passive_open(struct jktcp_adapter *a, struct jktcp_conn_listener *l, const struct jk_seg *s)
{
    int err = 0;
    int handed = l->handed ? atomic_load(l->handed) : 0;
    if (l->pending + handed >= l->backlog) {
        jk_adapter_reset_for(a, s); /* refuse rather than grow */
        return;
    }
    struct jktcp_conn *c = jk_adapter_new_conn(a, l->port, s->sport, false, &err);
    if (!c) {
        jk_adapter_reset_for(a, s);
        return;
    }
    c->listener = l;
    c->tcp.user_released = true; /* nobody holds a half-open connection */
    l->pending++;
    jk_tcp_accept_syn(&c->tcp, s);
}

/* An ICMP error: a router (any source) or the peer reports on a segment
 * we sent to the peer. */
static void input_icmp(struct jktcp_adapter *a, const uint8_t *frame, size_t len)
{
    struct jk_icmp ic;
    enum jk_parse p = jk_parse_icmp(frame, len, &ic);
    if (p != JK_PARSE_ICMP) {
        count_drop(a, p);
        return;
    }
    struct jktcp_conn *c = NULL;
    if (ic.family == a->env.local.family && jk_addr_eq(&ic.dst, &a->env.local) &&
        jk_addr_eq(&ic.isrc, &a->env.local) && jk_addr_eq(&ic.idst, &a->env.peer))
        c = jk_adapter_lookup(a, ic.sport, ic.dport);
    if (c && jk_tcp_icmp(&c->tcp, &ic)) {
        a->st.icmp_in++;
        jk_adapter_mark_dirty(c);
    } else {
        a->st.icmp_ignored++;
    }
}

/* ---- the engine's environment (tcp.h: struct jk_tcp_env) ---------------- */

static struct jktcp_adapter *env_adapter(struct jk_tcp_env *e)
{
    return caa_container_of(e, struct jktcp_adapter, env);
}

static uint32_t env_random(struct jk_tcp_env *e)
{
    return jk_random(env_adapter(e));
}

static int env_send(struct jk_tcp_env *e, const uint8_t *frame, size_t len)
{
    return jk_adapter_send_frame(env_adapter(e), frame, len);
}

static void env_rst(struct jk_tcp_env *e, const struct jk_rst *r)
{
    jk_adapter_queue_rst(env_adapter(e), r);
}

static void env_event(struct jk_tcp_env *e, struct jk_tcp *t, enum jk_tcp_event ev)
{
    struct jktcp_conn *c = jk_conn_of(t);
    (void)e;
    switch (ev) {
    case JK_TCP_CHANGED: jk_adapter_mark_dirty(c); break;
    case JK_TCP_TIMER: update_timer(c); break;
    case JK_TCP_ESTABLISHED: established(c); break;
    case JK_TCP_CLOSED: conn_closed(c); break;
    case JK_TCP_IDLE: /* the send ring: ours unless a handle's writers use it */
        if (c->a->on_conn_idle)
            c->a->on_conn_idle(c->a, c);
        else
            jk_ring_trim(&c->tcp.snd);
        break;
    }
}

/* Lower (or, after a probe, raise) the path MTU and tell every connection. */
static void env_set_pmtu(struct jk_tcp_env *e, uint32_t mtu)
{
    struct jktcp_adapter *a = env_adapter(e);
    a->env.pmtu = mtu;
    struct jktcp_conn *c;
    jk_list_each_entry(c, &a->all, struct jktcp_conn, all_link)
        jk_tcp_pmtu_changed(&c->tcp);
}

static const struct jk_tcp_env_ops env_ops = {
    .random = env_random,
    .send = env_send,
    .rst = env_rst,
    .event = env_event,
    .set_pmtu = env_set_pmtu,
};

static void input_packet(struct jktcp_adapter *a, const uint8_t *frame, size_t len, bool whole,
                         bool csum_ours);

/* A piece of a fragmented datagram: kept until the datagram is whole,
 * which then goes in as one packet. */
static void input_fragment(struct jktcp_adapter *a, const uint8_t *frame, const struct jk_ip *ip)
{
    const uint8_t *pkt;
    size_t n;
    uint64_t dropped = a->reasm.dropped;
    enum jk_reasm_result r = jk_reasm_add(&a->reasm, frame, ip, a->env.now, &pkt, &n);
    a->st.drop_fragment += a->reasm.dropped - dropped;
    if (r == JK_REASM_DONE) {
        a->st.frags_reassembled++;
        input_packet(a, pkt, n, true, false);
    }
}

static void input_frame(struct jktcp_adapter *a, const uint8_t *frame, size_t len)
{
    a->st.frames_in++;
    a->st.bytes_in += len;
    input_packet(a, frame, len, false, jk_transport_rx_csum_ours(a->t));
}

/* One IP packet; whole: put together from fragments (it cannot be one);
 * csum_ours: its transport made its TCP checksum (not summed again). */
static void input_packet(struct jktcp_adapter *a, const uint8_t *frame, size_t len, bool whole,
                         bool csum_ours)
{
    struct jk_seg s;
    enum jk_parse p = jk_parse_frame_as(frame, len, &s, csum_ours);
    if (p == JK_PARSE_FRAGMENT) {
        struct jk_ip ip;
        if (!whole && jk_parse_ip(frame, len, &ip) == JK_PARSE_FRAGMENT)
            input_fragment(a, frame, &ip);
        else
            a->st.drop_fragment++;
        return;
    }
    if (p == JK_PARSE_ICMP) {
        input_icmp(a, frame, len);
        return;
    }
    if (p != JK_PARSE_TCP) {
        count_drop(a, p);
        return;
    }
    if (s.src.family != a->env.local.family) {
        a->st.drop_version++;
        return;
    }
    if (!jk_addr_eq(&s.src, &a->env.peer) || !jk_addr_eq(&s.dst, &a->env.local)) {
        a->st.drop_address++;
        return;
    }
    struct jktcp_conn *c = jk_adapter_lookup(a, s.dport, s.sport);
    if (c) {
        jk_tcp_input(&c->tcp, &s);
        return;
    }
    struct jktcp_conn_listener *l = find_listener(a, s.dport);
    if (l && !(s.flags & (JK_ACK | JK_RST))) {
        /* RFC 9293 §3.10.7.2, LISTEN: a SYN opens; anything else without
         * ACK or RST ("fourth, other") is dropped unanswered, as Linux does
         * (a RST would show the port to a NULL or FIN scan), and so is a
         * SYN with FIN (Linux: not a connection request) */
        if ((s.flags & JK_SYN) && !(s.flags & JK_FIN))
            passive_open(a, l, &s);
        else
            a->st.drop_invalid++;
        return;
    }
    a->st.drop_no_conn++;
    jk_adapter_reset_for(a, &s);
}

/* Drain ready input, at most JK_STEP_FRAMES frames so the caller gets
 * to its own work (commands) in time. Returns frames processed or a
 * negative errno; a->input_more says whether the cap was hit. */
static int drain_input(struct jktcp_adapter *a)
{
    int n = 0;
    a->input_more = false;
    for (;;) {
        if (n == JK_STEP_FRAMES) {
            a->input_more = true;
            return n;
        }
        const uint8_t *frame;
        size_t len;
        int r = jk_transport_recv(a->t, &frame, &len);
        if (r == 0)
            return n;
        if (r < 0) {
            jk_adapter_fail(a, r);
            return r;
        }
        jk_now(a);
        input_frame(a, frame, len);
        if (++n % JK_BATCH == 0) {
            a->mid_input = true;
            jk_adapter_output(a);
            a->mid_input = false;
        }
    }
}

static int run_timers(struct jktcp_adapter *a)
{
    int n = 0;
    uint64_t now = jk_now(a);
    struct jk_heap_node *t;
    while ((t = jk_heap_min(&a->timers)) && t->key <= now) {
        struct jktcp_conn *c = timer_conn(t);
        jk_heap_remove(&a->timers, t);
        jk_tcp_timers(&c->tcp);
        if (c->tcp.state != JKTCP_CLOSED)
            jk_adapter_mark_dirty(c); /* output pass re-arms its timer */
        n++;
    }
    return n;
}

/* The transport's own error stays in a->err (jktcp_adapter_poll,
 * jktcp_handle_error); connections fail with -ENETDOWN, which no TCP event
 * produces, so a caller can tell a dead tunnel from a peer's RST. */
void jk_adapter_fail(struct jktcp_adapter *a, int err)
{
    if (a->err)
        return;
    a->err = err;
    struct jktcp_conn *c;
    jk_list_each_entry(c, &a->all, struct jktcp_conn, all_link) {
        if (c->tcp.state != JKTCP_CLOSED)
            jk_tcp_fail(&c->tcp, -ENETDOWN);
    }
}

int jk_adapter_step(struct jktcp_adapter *a)
{
    int n = 0, r;
    if (a->err) { /* no more I/O; released connections still get freed */
        jk_adapter_output(a);
        return a->err;
    }
    jk_now(a);
    if ((r = drain_input(a)) > 0)
        n += r;
    n += run_timers(a);
    jk_adapter_output(a);
    return a->err ? a->err : n;
}

/* Milliseconds until the next timer (rounded up), -1 if none. */
int jk_adapter_next_timeout(struct jktcp_adapter *a)
{
    if ((!jk_list_empty(&a->dirty) && !a->env.tx_blocked) || a->input_more)
        return 0;
    struct jk_heap_node *t = jk_heap_min(&a->timers);
    if (!t)
        return -1;
    uint64_t now = jk_now(a), d = t->key;
    if (d <= now)
        return 0;
    uint64_t ms = (d - now + 999) / 1000;
    return ms > 60000 ? 60000 : (int)ms;
}

int jk_adapter_drive(struct jktcp_adapter *a, bool (*cond)(void *), void *arg, int timeout_ms)
{
    uint64_t deadline = jk_now(a) + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000;
    for (;;) {
        int r = jk_adapter_step(a);
        if (cond(arg))
            return 0;
        if (r < 0)
            return r;
        uint64_t now = jk_now(a);
        if (timeout_ms == 0 || a->custom_clock || (timeout_ms > 0 && now >= deadline))
            return -EAGAIN;
        jk_adapter_wait(a, timeout_ms < 0 ? -1 : (int)((deadline - now + 999) / 1000));
    }
}

int jk_adapter_wait(struct jktcp_adapter *a, int timeout_ms)
{
    int t = jk_adapter_next_timeout(a);
    if (timeout_ms >= 0 && (t < 0 || timeout_ms < t))
        t = timeout_ms;
    if (a->custom_clock || t == 0)
        return 0;
    struct pollfd p = {jk_transport_poll_fd(a->t), jk_transport_poll_events(a->t), 0};
    if (a->env.tx_blocked)
        p.events |= POLLOUT;
    int r = poll(&p, 1, t);
    return r < 0 ? -errno : r;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                          */
/* ------------------------------------------------------------------ */

static void default_cfg(struct jk_cfg *cfg)
{
    cfg->sndbuf = 4u << 20;
    cfg->rcvbuf = 4u << 20;
    cfg->delack_us = 1000;
    cfg->timewait_us = 1000000;
    cfg->keepalive_us = 0;
    cfg->rto_min_us = 200000;
    cfg->rto_max_us = 60000000;
    cfg->rto_init_us = 1000000;
    cfg->max_retries = 10;
    cfg->max_ooo = 64;
    cfg->nodelay = true;
    cfg->congestion = JKTCP_CC_BBR;
    cfg->sack = true;
    cfg->timestamps = true;
    cfg->tlp = true;
}

int jk_adapter_create(jktcp_transport *t, const char *local_ip, const char *peer_ip,
                      struct jktcp_adapter **out)
{
    struct jktcp_adapter *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->t = t;
    if (jk_addr_parse(local_ip, &a->env.local) < 0 || jk_addr_parse(peer_ip, &a->env.peer) < 0 ||
        a->env.local.family != a->env.peer.family || !jk_addr_unicast(&a->env.local) ||
        !jk_addr_unicast(&a->env.peer) || jk_addr_eq(&a->env.local, &a->env.peer)) {
        free(a);
        return -EINVAL;
    }
    a->txbuf = malloc(JK_MAX_FRAME);
    if (!a->txbuf) {
        free(a);
        return -ENOMEM;
    }
    jk_list_init(&a->all);
    jk_list_init(&a->dirty);
    jk_list_init(&a->listeners);
    a->env.ops = &env_ops;
    a->env.txbuf = a->txbuf;
    a->env.st = &a->st;
    a->env.mtu = 1500;
    jk_path_reset(&a->env);
    a->max_conns = 4096;
    a->busy_poll_us = 50; /* handle.c, io_idle: adaptive, measured in make bench */
    default_cfg(&a->env.cfg);
    a->clock = mono_us;
    if (getrandom(&a->rng, sizeof a->rng, 0) != sizeof a->rng || !a->rng)
        a->rng = (uint32_t)mono_us(NULL) | 1;
    jk_now(a);
    *out = a;
    return 0;
}

void jk_adapter_destroy(struct jktcp_adapter *a)
{
    struct jktcp_conn *c;
    jk_list_each_entry(c, &a->all, struct jktcp_conn, all_link)
        if (c->tcp.state != JKTCP_CLOSED)
            jk_tcp_abort(&c->tcp, true);
    if (!a->err)
        send_rsts(a);
    jk_transport_flush(a->t);
    while (!jk_list_empty(&a->all))
        free_conn(jk_list_entry(a->all.next, struct jktcp_conn, all_link));
    while (!jk_list_empty(&a->listeners)) {
        struct jk_list *p = a->listeners.next;
        jk_list_del(p);
        free(jk_list_entry(p, struct jktcp_conn_listener, link));
    }
    jk_reasm_free(&a->reasm);
    jktcp_transport_free(a->t);
    jk_heap_free(&a->timers);
    free(a->txbuf);
    free(a);
}
