/* SPDX-License-Identifier: MIT */
/* Fault-injecting transport: wraps another transport and drops, duplicates,
 * reorders, corrupts, truncates and delays frames, each direction with its
 * own deterministic PRNG. See the "Fault-injecting transport" section of
 * jktcp.h for the semantics.
 *
 * Held frames (reordered, delayed, duplicate copies waiting their turn)
 * live in a fixed pool of slots per direction, allocated at creation.
 * The poll fd is an epoll fd over the inner transport's poll fd and a
 * timerfd armed for the earliest timed release, so the adapter wakes up
 * when a held frame falls due even if the inner fd stays quiet.
 *
 * A frame the faults let through goes on through the direction's
 * bottleneck link when one is set (fault_link.c: rate, queue, propagation
 * delay), which holds it until it arrives at the far end; the same timerfd
 * wakes the adapter for that.
 *
 * The wrapper is an implementation of transport.h's ops table that calls
 * its inner transport through the same table. */
#include "jktcp.h"
#include "icmp.h"
#include "packet.h"
#include "abi.h"
#include "fault_link.h"
#include "platform.h"
#include "transport.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_POOL 32u
#define MIN_SLOT 64u

struct slot {
    uint8_t *data;
    size_t len;
    uint64_t order;    /* hold order: lower = older */
    uint64_t deadline; /* us, monotonic; 0 = no timed release */
    unsigned countdown; /* later frames still to pass; 0 = none */
    bool used;
    bool due;   /* ready to be handed on */
    bool burst; /* released at the end of the burst */
};

/* Thresholds compared with 53-bit random numbers. */
struct probs {
    uint64_t drop, dup, reorder, corrupt, truncate, delay;
};

struct dir_stats {
    _Atomic uint64_t frames, passed, dropped, blackout, duplicated, reordered, corrupted,
        truncated, delayed, pool_full, too_big;
};

struct dir {
    jktcp_fault_dir cfg;
    struct probs p;
    uint64_t rng;
    struct slot *slots;
    unsigned nslots, used;
    uint64_t next_order;
    uint8_t *work; /* corrupted / truncated copy of the current frame */
    struct dir_stats st;
    struct jk_link link; /* the bottleneck after the faults (link.on) */
    bool link_blocked;   /* out: the inner transport refused a frame the link released */
};

struct jk_fault {
    jktcp_transport base; /* first: the wrapper is a transport */
    jktcp_transport *inner;
    struct dir in, out;
    size_t slot_bytes;
    int epfd, tfd, inner_fd;
    uint32_t inner_ev;  /* events inner_fd is registered for in epfd */
    uint64_t armed;     /* timerfd deadline (us), 0 = disarmed */
    atomic_bool blackout;
    uint8_t *slot_mem;
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* True with the probability behind threshold th (draws one number). */
static bool chance(struct dir *d, uint64_t th)
{
    if (th == 0)
        return false; /* no draw: a zero probability does not shift the stream */
    return (splitmix64(&d->rng) >> 11) < th;
}

static uint64_t below(struct dir *d, uint64_t n)
{
    return n ? splitmix64(&d->rng) % n : 0;
}

static bool prob_ok(double p) { return p >= 0.0 && p <= 1.0; } /* false for NaN */

static uint64_t threshold(double p)
{
    if (p <= 0.0)
        return 0;
    if (p >= 1.0)
        return 1ull << 53;
    uint64_t t = (uint64_t)(p * 9007199254740992.0);
    return t ? t : 1;
}

static void bump(_Atomic uint64_t *c) { atomic_fetch_add_explicit(c, 1, memory_order_relaxed); }

/* ---- pool --------------------------------------------------------------- */

static struct slot *oldest(struct dir *d, bool due_only)
{
    struct slot *best = NULL;
    if (!d->used)
        return NULL;
    for (unsigned i = 0; i < d->nslots; i++) {
        struct slot *s = &d->slots[i];
        if (s->used && (!due_only || s->due) && (!best || s->order < best->order))
            best = s;
    }
    return best;
}

static void slot_free(struct dir *d, struct slot *s)
{
    s->used = false;
    d->used--;
}

/* Hold a copy of the frame. false if it cannot be held: then the oldest
 * held frame is made due (released early) and the caller passes the frame
 * on unheld. */
static bool hold(struct jk_fault *f, struct dir *d, const uint8_t *p, size_t len, bool due,
                 unsigned countdown, uint64_t deadline, bool burst)
{
    struct slot *s = NULL;
    if (len <= f->slot_bytes && d->used < d->nslots)
        for (unsigned i = 0; i < d->nslots && !s; i++)
            if (!d->slots[i].used)
                s = &d->slots[i];
    if (!s) {
        bump(&d->st.pool_full);
        struct slot *o = oldest(d, false);
        if (o)
            o->due = true;
        return false;
    }
    memcpy(s->data, p, len);
    s->len = len;
    s->order = d->next_order++;
    s->due = due;
    s->countdown = countdown;
    s->deadline = deadline;
    s->burst = burst;
    s->used = true;
    d->used++;
    return true;
}

/* Another frame passed in this direction: count down reordered frames. */
static void count_down(struct dir *d)
{
    if (!d->used)
        return;
    for (unsigned i = 0; i < d->nslots; i++) {
        struct slot *s = &d->slots[i];
        if (s->used && !s->due && s->countdown && --s->countdown == 0)
            s->due = true;
    }
}

/* Make frames due whose time has come (and, if burst, the burst-held). */
static void promote(struct dir *d, uint64_t now, bool burst)
{
    if (!d->used)
        return;
    for (unsigned i = 0; i < d->nslots; i++) {
        struct slot *s = &d->slots[i];
        if (s->used && !s->due &&
            ((s->deadline && s->deadline <= now) || (burst && s->burst)))
            s->due = true;
    }
}

static bool any_burst(const struct dir *d)
{
    if (!d->used)
        return false;
    for (unsigned i = 0; i < d->nslots; i++)
        if (d->slots[i].used && !d->slots[i].due && d->slots[i].burst)
            return true;
    return false;
}

static uint64_t earliest(const struct dir *d, uint64_t e)
{
    if (!d->used)
        return e;
    for (unsigned i = 0; i < d->nslots; i++) {
        const struct slot *s = &d->slots[i];
        if (s->used && !s->due && s->deadline && (!e || s->deadline < e))
            e = s->deadline;
    }
    return e;
}

/* Arm the timerfd for the earliest timed release (re-arming also clears a
 * fired timer, so the epoll fd stops polling readable). */
static void arm_timer(struct jk_fault *f)
{
    uint64_t e = earliest(&f->out, earliest(&f->in, 0));
    /* the links' next arrivals; a blocked outbound link waits for POLLOUT
     * (fault_pending), not the timer, which would fire in a loop */
    uint64_t li = jk_link_next_us(&f->in.link);
    uint64_t lo = f->out.link_blocked ? 0 : jk_link_next_us(&f->out.link);
    if (li && (!e || li < e))
        e = li;
    if (lo && (!e || lo < e))
        e = lo;
    if (e == f->armed)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (e) {
        its.it_value.tv_sec = (time_t)(e / 1000000u);
        its.it_value.tv_nsec = (long)(e % 1000000u) * 1000L;
    }
    if (timerfd_settime(f->tfd, e ? TFD_TIMER_ABSTIME : 0, &its, NULL) == 0)
        f->armed = e;
}

/* ---- per-frame fate ----------------------------------------------------- */

struct fate {
    bool drop, dup, reorder, delay, corrupt, truncate;
};

static void draw(struct dir *d, struct fate *x)
{
    memset(x, 0, sizeof *x);
    x->drop = chance(d, d->p.drop);
    if (x->drop)
        return;
    x->corrupt = chance(d, d->p.corrupt);
    x->truncate = chance(d, d->p.truncate);
    x->dup = chance(d, d->p.dup);
    x->reorder = chance(d, d->p.reorder);
    if (!x->reorder)
        x->delay = chance(d, d->p.delay);
}

/* Apply corruption / truncation; returns the frame to use (d->work when
 * changed). */
static const uint8_t *mangle(struct dir *d, const struct fate *x, const uint8_t *p,
                             size_t *len)
{
    if (!x->corrupt && !(x->truncate && *len > 1))
        return p;
    size_t n = *len;
    if (x->truncate && n > 1)
        n = 1 + (size_t)below(d, n - 1); /* 1 .. len-1 */
    memcpy(d->work, p, n);
    if (x->corrupt) {
        uint64_t nbits = n * 8u;
        unsigned k = d->cfg.corrupt_bits ? d->cfg.corrupt_bits : 1;
        if (k > 8)
            k = 8;
        if (k > nbits)
            k = (unsigned)nbits;
        k = 1 + (unsigned)below(d, k);
        uint64_t done[8];
        for (unsigned i = 0; i < k; i++) {
            uint64_t b;
            bool again;
            do { /* distinct bits: a bit flipped twice would undo itself */
                b = below(d, nbits);
                again = false;
                for (unsigned j = 0; j < i; j++)
                    again |= done[j] == b;
            } while (again);
            done[i] = b;
            d->work[b / 8] ^= (uint8_t)(1u << (b % 8));
        }
    }
    *len = n;
    return d->work;
}

static void count_fate(struct dir *d, const struct fate *x, size_t orig, size_t len)
{
    if (x->corrupt)
        bump(&d->st.corrupted);
    if (x->truncate && len < orig)
        bump(&d->st.truncated);
}

static int release_out(struct jk_fault *f);

/* ---- the bottleneck link ------------------------------------------------ */

/* A frame the faults let through goes into d's link if it has one: true
 * then (queued, or lost at the full queue or for want of room, which
 * counts as pool_full too), and the caller is done with the frame. */
static bool to_link(struct dir *d, const uint8_t *p, size_t n)
{
    if (!d->link.on)
        return false;
    if (jk_link_enter(&d->link, p, n, jk_mono_ns()) < 0)
        bump(&d->st.pool_full);
    return true;
}

/* Send what has come out of the outbound link, oldest first: 0, -EAGAIN
 * while the inner transport refuses (the frame stays, and fault_pending
 * says so), or its error. */
static int link_release_out(struct jk_fault *f)
{
    struct dir *d = &f->out;
    const uint8_t *p;
    size_t n;
    d->link_blocked = false;
    if (!d->link.count)
        return 0;
    uint64_t now = jk_mono_ns();
    while (jk_link_peek(&d->link, now, &p, &n)) {
        if (atomic_load_explicit(&f->blackout, memory_order_relaxed)) {
            bump(&d->st.blackout);
            jk_link_pop(&d->link);
            continue;
        }
        int r = jk_transport_send(f->inner, p, n);
        if (r < 0) {
            d->link_blocked = r == -EAGAIN;
            return r;
        }
        jk_link_pop(&d->link);
        bump(&d->st.passed);
    }
    return 0;
}

/* The next frame that has come out of the inbound link, if any: 1 with
 * *frame / *len (valid until the next recv), 0 when none is due. */
static int link_recv(struct jk_fault *f, const uint8_t **frame, size_t *len)
{
    struct dir *d = &f->in;
    while (d->link.count && jk_link_peek(&d->link, jk_mono_ns(), frame, len)) {
        jk_link_pop(&d->link);
        if (atomic_load_explicit(&f->blackout, memory_order_relaxed)) {
            bump(&d->st.blackout);
            continue;
        }
        bump(&d->st.passed);
        return 1;
    }
    return 0;
}

/* ---- the MTU limit ------------------------------------------------------ */

/* An ICMP "too big" about frame, from its destination back to its source. */
static size_t too_big_msg(uint8_t *buf, size_t cap, const uint8_t *frame, size_t len,
                          unsigned mtu)
{
    struct jk_ip ip;
    if (jk_parse_ip(frame, len, &ip) != JK_PARSE_TCP)
        return 0;
    bool v4 = ip.family == 4;
    return jk_build_icmp(buf, cap, &ip.dst, &ip.src, v4 ? 3 : 2, v4 ? 4 : 0, mtu, frame, len);
}

/* The frame is longer than d's MTU: drop it; with mtu_icmp tell the sender.
 * An outbound frame's sender is the adapter: the report waits in the
 * inbound pool, due at once, and the timer wakes the adapter for it. */
static void too_big(struct jk_fault *f, struct dir *d, const uint8_t *frame, size_t len)
{
    bump(&d->st.too_big);
    if (!d->cfg.mtu_icmp)
        return;
    uint8_t msg[1400];
    size_t n = too_big_msg(msg, sizeof msg, frame, len, d->cfg.mtu);
    if (!n)
        return;
    if (d == &f->in) {
        jk_transport_send(f->inner, msg, n); /* best effort, as a router's */
        return;
    }
    if (hold(f, &f->in, msg, n, true, 0, 0, false)) {
        struct itimerspec its = {.it_value = {0, 1000}};
        if (timerfd_settime(f->tfd, 0, &its, NULL) == 0)
            f->armed = 1; /* no real deadline: the next arm_timer re-arms */
    }
}

/* ---- inbound ------------------------------------------------------------ */

static int fault_recv(jktcp_transport *base, const uint8_t **frame, size_t *len)
{
    struct jk_fault *f = (struct jk_fault *)base;
    struct dir *d = &f->in;
    uint64_t now = (d->used || f->out.used || d->p.delay || d->cfg.reorder_max_us) ? jk_mono_us() : 0;
    if (f->out.used || f->out.link.count) {
        /* A timer wake-up may be for delayed outbound frames: send them
         * (errors and a busy inner transport show at the next send/flush). */
        if (!now)
            now = jk_mono_us();
        promote(&f->out, now, false);
        release_out(f);
    }
    for (;;) {
        if (link_recv(f, frame, len)) {
            arm_timer(f);
            return 1;
        }
        promote(d, now, false);
        struct slot *s = oldest(d, true);
        if (s) {
            slot_free(d, s); /* data stays valid until the next recv call */
            if (atomic_load_explicit(&f->blackout, memory_order_relaxed)) {
                bump(&d->st.blackout);
                continue;
            }
            if (to_link(d, s->data, s->len))
                continue;
            bump(&d->st.passed);
            *frame = s->data;
            *len = s->len;
            arm_timer(f);
            return 1;
        }
        const uint8_t *p;
        size_t n;
        int r = jk_transport_recv(f->inner, &p, &n);
        if (r < 0)
            return r;
        if (r == 0) {
            if (any_burst(d)) {
                promote(d, now, true); /* nothing more came: end of burst */
                continue;
            }
            arm_timer(f);
            return 0;
        }
        bump(&d->st.frames);
        if (atomic_load_explicit(&f->blackout, memory_order_relaxed)) {
            bump(&d->st.blackout);
            continue;
        }
        if (d->cfg.mtu && n > d->cfg.mtu) {
            too_big(f, d, p, n);
            continue;
        }
        struct fate x;
        draw(d, &x);
        if (x.drop) {
            bump(&d->st.dropped);
            continue;
        }
        count_down(d);
        size_t orig = n;
        p = mangle(d, &x, p, &n);
        count_fate(d, &x, orig, n);
        if (x.dup && hold(f, d, p, n, true, 0, 0, false))
            bump(&d->st.duplicated);
        if (x.reorder || x.delay) {
            if (!now)
                now = jk_mono_us();
            bool ok = x.reorder
                          ? hold(f, d, p, n, false,
                                 d->cfg.reorder_frames ? d->cfg.reorder_frames : 1,
                                 d->cfg.reorder_max_us ? now + d->cfg.reorder_max_us : 0,
                                 d->cfg.reorder_max_us == 0)
                          : hold(f, d, p, n, false, 0, now + (d->cfg.delay_us ? d->cfg.delay_us : 1), false);
            if (ok) {
                bump(x.reorder ? &d->st.reordered : &d->st.delayed);
                continue;
            }
        }
        if (to_link(d, p, n))
            continue;
        bump(&d->st.passed);
        *frame = p;
        *len = n;
        arm_timer(f);
        return 1;
    }
}

/* ---- outbound ----------------------------------------------------------- */

/* Send due held frames, oldest first (into the link if there is one, then
 * what has come out of it): 0 when none is left, -EAGAIN while the inner
 * transport refuses, or its error. */
static int release_out(struct jk_fault *f)
{
    struct dir *d = &f->out;
    struct slot *s;
    while ((s = oldest(d, true))) {
        if (atomic_load_explicit(&f->blackout, memory_order_relaxed)) {
            bump(&d->st.blackout);
            slot_free(d, s);
            continue;
        }
        if (to_link(d, s->data, s->len)) {
            slot_free(d, s);
            continue;
        }
        int r = jk_transport_send(f->inner, s->data, s->len);
        if (r < 0)
            return r; /* -EAGAIN: stays due, retried on the next call */
        bump(&d->st.passed);
        slot_free(d, s);
    }
    return link_release_out(f);
}

static int fault_send(jktcp_transport *base, const uint8_t *frame, size_t len)
{
    struct jk_fault *f = (struct jk_fault *)base;
    struct dir *d = &f->out;
    uint64_t now = 0;
    if (d->used || d->link.count) {
        now = jk_mono_us();
        promote(d, now, false);
        int r = release_out(f);
        if (r < 0)
            return r; /* busy (nothing taken) or failed */
    }
    bump(&d->st.frames);
    if (atomic_load_explicit(&f->blackout, memory_order_relaxed)) {
        bump(&d->st.blackout);
        return 0;
    }
    if (d->cfg.mtu && len > d->cfg.mtu) {
        too_big(f, d, frame, len);
        return 0;
    }
    uint64_t saved = d->rng;
    struct fate x;
    draw(d, &x);
    if (x.drop) {
        bump(&d->st.dropped);
        return 0;
    }
    size_t n = len;
    const uint8_t *p = mangle(d, &x, frame, &n);
    bool held = false;
    if (x.reorder || x.delay) {
        if (!now)
            now = jk_mono_us();
        count_down(d);
        held = x.reorder ? hold(f, d, p, n, false,
                                d->cfg.reorder_frames ? d->cfg.reorder_frames : 1,
                                d->cfg.reorder_max_us ? now + d->cfg.reorder_max_us : 0,
                                d->cfg.reorder_max_us == 0)
                         : hold(f, d, p, n, false, 0, now + (d->cfg.delay_us ? d->cfg.delay_us : 1),
                                false);
        if (held)
            bump(x.reorder ? &d->st.reordered : &d->st.delayed);
    }
    if (!held) {
        if (!to_link(d, p, n)) {
            int r = jk_transport_send(f->inner, p, n);
            if (r == -EAGAIN) {
                d->rng = saved; /* nothing taken: the retry draws the same fate */
                atomic_fetch_sub_explicit(&d->st.frames, 1, memory_order_relaxed);
                return -EAGAIN;
            }
            if (r < 0)
                return r;
            bump(&d->st.passed);
        }
        if (!(x.reorder || x.delay))
            count_down(d);
    }
    count_fate(d, &x, len, n);
    if (x.dup) {
        bump(&d->st.duplicated);
        /* The copy follows at once; if the inner transport is busy it waits
         * in the pool (or is lost if the pool is full). */
        int r = held ? -EAGAIN : to_link(d, p, n) ? 1 : jk_transport_send(f->inner, p, n);
        if (r == 0)
            bump(&d->st.passed);
        else if (r == -EAGAIN)
            hold(f, d, p, n, true, 0, 0, false);
    }
    release_out(f); /* frames the count-down made due */
    arm_timer(f);
    return 0;
}

static int fault_flush(jktcp_transport *base)
{
    struct jk_fault *f = (struct jk_fault *)base;
    struct dir *d = &f->out;
    int r = 0;
    if (d->used || d->link.count) {
        promote(d, jk_mono_us(), true); /* end of the output pass = end of burst */
        r = release_out(f);
    }
    int q = jk_transport_flush(f->inner);
    arm_timer(f);
    if (r < 0 && r != -EAGAIN)
        return r;
    if (q < 0)
        return q;
    return r;
}

static bool fault_pending(const jktcp_transport *base)
{
    const struct jk_fault *f = (const struct jk_fault *)base;
    return jk_transport_pending(f->inner) || oldest((struct dir *)&f->out, true) ||
           f->out.link_blocked;
}

static int fault_poll_fd(const jktcp_transport *base)
{
    return ((const struct jk_fault *)base)->epfd;
}

/* Keep inner_fd's registration in step with what the inner transport wants
 * to wait for (POLLOUT while its output is blocked). The epoll fd itself
 * only ever polls readable. */
static short fault_poll_events(const jktcp_transport *base)
{
    struct jk_fault *f = (struct jk_fault *)base;
    short ev = jk_transport_poll_events(f->inner);
    uint32_t want = ((ev & POLLIN) ? EPOLLIN : 0u) | ((ev & POLLOUT) ? EPOLLOUT : 0u);
    if (want != f->inner_ev) {
        struct epoll_event e = {.events = want, .data.fd = f->inner_fd};
        if (epoll_ctl(f->epfd, EPOLL_CTL_MOD, f->inner_fd, &e) == 0)
            f->inner_ev = want;
    }
    return POLLIN;
}

static int fault_set_flags(jktcp_transport *base, unsigned flags)
{
    return jktcp_transport_set_flags(((struct jk_fault *)base)->inner, flags);
}

/* ---- lifetime ----------------------------------------------------------- */

static void fault_free(struct jk_fault *f)
{
    if (!f)
        return;
    jktcp_transport_free(f->inner);
    if (f->epfd >= 0)
        close(f->epfd);
    if (f->tfd >= 0)
        close(f->tfd);
    free(f->in.slots);
    free(f->out.slots);
    free(f->in.work);
    free(f->out.work);
    jk_link_free(&f->in.link);
    jk_link_free(&f->out.link);
    free(f->slot_mem);
    free(f);
}

static void fault_destroy(jktcp_transport *base) { fault_free((struct jk_fault *)base); }

static const struct jk_transport_ops fault_ops = JK_TRANSPORT_OPS(fault);

/* The fault state behind t, or NULL if t is not a faulty transport. */
static struct jk_fault *fault_of(jktcp_transport *t)
{
    return t && t->ops == &fault_ops ? (struct jk_fault *)t : NULL;
}

static void probs_of(const jktcp_fault_dir *c, struct probs *p)
{
    p->drop = threshold(c->drop);
    p->dup = threshold(c->duplicate);
    p->reorder = threshold(c->reorder);
    p->corrupt = threshold(c->corrupt);
    p->truncate = threshold(c->truncate);
    p->delay = threshold(c->delay);
}

static bool dir_ok(const jktcp_fault_dir *c)
{
    return prob_ok(c->drop) && prob_ok(c->duplicate) && prob_ok(c->reorder) &&
           prob_ok(c->corrupt) && prob_ok(c->truncate) && prob_ok(c->delay);
}

static int dir_init(struct jk_fault *f, struct dir *d, const jktcp_fault_dir *c, unsigned n,
                    uint8_t *mem, uint64_t seed)
{
    d->cfg = *c;
    probs_of(c, &d->p);
    d->rng = seed;
    d->nslots = n;
    d->slots = calloc(n, sizeof *d->slots);
    d->work = malloc(JK_MAX_FRAME);
    if (!d->slots || !d->work)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++)
        d->slots[i].data = mem + (size_t)i * f->slot_bytes;
    return 0;
}

static int poll_setup(struct jk_fault *f)
{
    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    f->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (f->epfd < 0 || f->tfd < 0)
        return -errno;
    f->inner_fd = jk_transport_poll_fd(f->inner);
    if (f->inner_fd < 0)
        return -EINVAL;
    struct epoll_event ei = {.events = EPOLLIN, .data.fd = f->inner_fd};
    struct epoll_event et = {.events = EPOLLIN, .data.fd = f->tfd};
    if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->inner_fd, &ei) < 0 ||
        epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->tfd, &et) < 0)
        return -errno;
    f->inner_ev = EPOLLIN;
    return 0;
}

JKTCP_API int jktcp_transport_faulty(jktcp_transport *inner, const jktcp_fault_config *cfg_in,
                                     size_t cfg_size, jktcp_transport **out)
{
    if (out)
        *out = NULL;
    if (!inner)
        return -EINVAL;
    jktcp_fault_config copy, *cfg = &copy;
    memset(&copy, 0, sizeof copy);
    if (cfg_in && jk_copy_in(&copy, sizeof copy, cfg_in, cfg_size) < 0)
        cfg = NULL;
    if (!out || !cfg || !dir_ok(&cfg->in) || !dir_ok(&cfg->out) ||
        (cfg->slot_bytes && cfg->slot_bytes < MIN_SLOT) || jk_link_check(&cfg->link_in) < 0 ||
        jk_link_check(&cfg->link_out) < 0) {
        jktcp_transport_free(inner);
        return -EINVAL;
    }
    struct jk_fault *f = calloc(1, sizeof *f);
    if (!f) {
        jktcp_transport_free(inner);
        return -ENOMEM;
    }
    f->base = (jktcp_transport){.ops = &fault_ops, .framing = jk_transport_framing(inner)};
    f->inner = inner;
    f->epfd = f->tfd = -1;
    f->slot_bytes = cfg->slot_bytes ? cfg->slot_bytes : JK_MAX_FRAME;
    if (f->slot_bytes > JK_MAX_FRAME)
        f->slot_bytes = JK_MAX_FRAME;
    unsigned n = cfg->pool_frames ? cfg->pool_frames : DEFAULT_POOL;
    int r = -ENOMEM;
    f->slot_mem = malloc((size_t)n * 2 * f->slot_bytes);
    if (f->slot_mem) {
        /* Independent streams per direction from one seed. */
        uint64_t s = cfg->seed;
        uint64_t s_in = splitmix64(&s), s_out = splitmix64(&s);
        r = dir_init(f, &f->in, &cfg->in, n, f->slot_mem, s_in);
        if (r == 0)
            r = dir_init(f, &f->out, &cfg->out, n, f->slot_mem + (size_t)n * f->slot_bytes,
                         s_out);
    }
    if (r == 0)
        r = jk_link_init(&f->in.link, &cfg->link_in);
    if (r == 0)
        r = jk_link_init(&f->out.link, &cfg->link_out);
    if (r == 0)
        r = poll_setup(f);
    if (r < 0) {
        fault_free(f);
        return r;
    }
    *out = &f->base;
    return 0;
}

JKTCP_API int jktcp_transport_fault_blackout(jktcp_transport *t, int on)
{
    struct jk_fault *f = fault_of(t);
    if (!f)
        return -EINVAL;
    atomic_store(&f->blackout, on != 0);
    return 0;
}

static void dir_stats(const struct dir_stats *s, jktcp_fault_dir_stats *o)
{
#define LD(x) o->x = atomic_load_explicit(&s->x, memory_order_relaxed)
    LD(frames);
    LD(passed);
    LD(dropped);
    LD(blackout);
    LD(duplicated);
    LD(reordered);
    LD(corrupted);
    LD(truncated);
    LD(delayed);
    LD(pool_full);
    LD(too_big);
#undef LD
}

JKTCP_API int jktcp_transport_fault_stats(jktcp_transport *t, jktcp_fault_stats *out,
                                          size_t size)
{
    struct jk_fault *f = fault_of(t);
    if (!f)
        return -EINVAL;
    jktcp_fault_stats st;
    dir_stats(&f->in.st, &st.in);
    dir_stats(&f->out.st, &st.out);
    jk_link_stats(&f->in.link, &st.link_in);
    jk_link_stats(&f->out.link, &st.link_out);
    return jk_copy_out(out, size, &st, sizeof st);
}
