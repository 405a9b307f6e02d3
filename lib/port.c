/* SPDX-License-Identifier: MIT */
/* Packet port: two bounded in-memory frame queues between a host thread
 * and the adapter's transport. One mutex guards everything; the wake fds
 * let both sides sleep in poll(). The port's transport (one per port) is
 * an implementation of transport.h's ops table. */
#include "jktcp.h"
#include "packet.h"
#include "platform.h"
#include "transport.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PORT_MAX_BYTES ((size_t)1 << 30) /* per direction */
#define PORT_DEFAULT_BYTES (4u << 20)
#define LEN_PREFIX sizeof(uint32_t)

/* Frames back to back in a byte ring, each behind a native-endian length
 * prefix. The ring is allocated once; a frame may wrap around its end. */
struct frame_q {
    uint8_t *buf;
    size_t cap, head, used, count;
};

struct jktcp_port {
    pthread_mutex_t mu;
    pthread_cond_t out_cv; /* an outbound frame was queued, or the port closed */
    struct frame_q in, out;
    struct jk_wakefd in_w, out_w; /* readable: a frame to take / to pull */
    bool in_sig, out_sig;         /* the wake fd is signalled */
    bool closed, has_transport;
    bool refused; /* the transport's send found `out` full */
    int refs;
};

/* ---- frame queue -------------------------------------------------------- */

static size_t q_pos(const struct frame_q *q, size_t off)
{
    size_t pos = q->head + off;
    return pos >= q->cap ? pos - q->cap : pos;
}

static void q_put(struct frame_q *q, size_t pos, const void *src, size_t n)
{
    size_t first = q->cap - pos < n ? q->cap - pos : n;
    memcpy(q->buf + pos, src, first);
    memcpy(q->buf, (const uint8_t *)src + first, n - first);
}

static void q_get(const struct frame_q *q, size_t pos, void *dst, size_t n)
{
    size_t first = q->cap - pos < n ? q->cap - pos : n;
    memcpy(dst, q->buf + pos, first);
    memcpy((uint8_t *)dst + first, q->buf, n - first);
}

static bool q_fits(const struct frame_q *q, size_t len)
{
    return q->cap - q->used >= LEN_PREFIX + len;
}

static void q_push(struct frame_q *q, const void *frame, size_t len)
{
    uint32_t n = (uint32_t)len;
    q_put(q, q_pos(q, q->used), &n, LEN_PREFIX);
    q_put(q, q_pos(q, q->used + LEN_PREFIX), frame, len);
    q->used += LEN_PREFIX + len;
    q->count++;
}

static size_t q_front_len(const struct frame_q *q)
{
    uint32_t n;
    q_get(q, q->head, &n, LEN_PREFIX);
    return n;
}

static size_t q_pop(struct frame_q *q, void *dst)
{
    size_t len = q_front_len(q);
    q_get(q, q_pos(q, LEN_PREFIX), dst, len);
    q->head = q_pos(q, LEN_PREFIX + len);
    q->used -= LEN_PREFIX + len;
    q->count--;
    return len;
}

/* ---- wake fds, level-triggered by a flag (called with the mutex held) ---- */

static void efd_raise(const struct jk_wakefd *w, bool *sig)
{
    if (!*sig && jk_wakefd_signal(w) == 0)
        *sig = true;
}

static void efd_clear(const struct jk_wakefd *w, bool *sig)
{
    if (*sig) {
        jk_wakefd_drain(w);
        *sig = false;
    }
}

/* ---- lifetime ----------------------------------------------------------- */

static void port_destroy(jktcp_port *p)
{
    jk_wakefd_close(&p->in_w);
    jk_wakefd_close(&p->out_w);
    free(p->in.buf);
    free(p->out.buf);
    pthread_cond_destroy(&p->out_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void port_release(jktcp_port *p)
{
    pthread_mutex_lock(&p->mu);
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last)
        port_destroy(p);
}

/* Pull deadlines must not jump with the wall clock. */
static int cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr))
        return -ENOMEM;
    int r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!r)
        r = pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
    return r ? -ENOMEM : 0;
}

static int port_init(jktcp_port *p, size_t cap)
{
    int r;
    if ((r = jk_wakefd_open(&p->in_w)) < 0 || (r = jk_wakefd_open(&p->out_w)) < 0)
        return r;
    p->in.cap = p->out.cap = cap;
    p->in.buf = malloc(cap);
    p->out.buf = malloc(cap);
    if (!p->in.buf || !p->out.buf)
        return -ENOMEM;
    return 0;
}

JKTCP_API int jktcp_port_new(size_t queue_bytes, jktcp_port **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (queue_bytes == 0)
        queue_bytes = PORT_DEFAULT_BYTES;
    if (queue_bytes > PORT_MAX_BYTES)
        return -EINVAL;
    /* An empty queue must always admit a maximal frame. */
    if (queue_bytes < JK_MAX_FRAME + LEN_PREFIX)
        queue_bytes = JK_MAX_FRAME + LEN_PREFIX;
    jktcp_port *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->in_w = p->out_w = (struct jk_wakefd){-1, -1};
    p->refs = 1;
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return -ENOMEM;
    }
    if (cond_init_monotonic(&p->out_cv)) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return -ENOMEM;
    }
    int r = port_init(p, queue_bytes);
    if (r < 0) {
        port_destroy(p);
        return r;
    }
    *out = p;
    return 0;
}

JKTCP_API void jktcp_port_close(jktcp_port *port)
{
    if (!port)
        return;
    pthread_mutex_lock(&port->mu);
    port->closed = true;
    /* Both sides must notice: recv returns -EPIPE, pullers drain then -EPIPE. */
    efd_raise(&port->in_w, &port->in_sig);
    efd_raise(&port->out_w, &port->out_sig);
    pthread_cond_broadcast(&port->out_cv);
    pthread_mutex_unlock(&port->mu);
}

/* Without the host nobody moves frames any more: the adapter should see
 * end of stream rather than wait forever. */
JKTCP_API void jktcp_port_free(jktcp_port *port)
{
    if (!port)
        return;
    jktcp_port_close(port);
    port_release(port);
}

/* The transport is gone: nothing will be sent again, so pullers must not
 * block forever either. */
static void port_detach(jktcp_port *p)
{
    jktcp_port_close(p);
    port_release(p);
}

/* ---- host side ---------------------------------------------------------- */

JKTCP_API int jktcp_port_push(jktcp_port *port, const void *frame, size_t len)
{
    if (!port || !frame)
        return -EINVAL;
    if (len == 0 || len > JK_MAX_FRAME)
        return -EMSGSIZE;
    int r = 0;
    pthread_mutex_lock(&port->mu);
    if (port->closed)
        r = -EPIPE;
    else if (!q_fits(&port->in, len))
        r = -EAGAIN;
    else {
        q_push(&port->in, frame, len);
        efd_raise(&port->in_w, &port->in_sig);
    }
    pthread_mutex_unlock(&port->mu);
    return r;
}

static struct timespec deadline_after(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Wait (mutex held) until an outbound frame waits: 0, -EPIPE, -EAGAIN.
 * The deadline is on out_cv's clock, CLOCK_MONOTONIC (cond_init_monotonic),
 * so a wall-clock step neither shortens nor lengthens the wait; had the
 * clocks disagreed, transport/port_pull_timeout would return at once. */
static int wait_outbound(jktcp_port *p, int timeout_ms)
{
    struct timespec dl = deadline_after(timeout_ms > 0 ? timeout_ms : 0);
    while (p->out.count == 0) {
        if (p->closed)
            return -EPIPE;
        if (timeout_ms == 0)
            return -EAGAIN;
        if (timeout_ms < 0)
            pthread_cond_wait(&p->out_cv, &p->mu);
        else if (pthread_cond_timedwait(&p->out_cv, &p->mu, &dl) == ETIMEDOUT)
            return p->out.count ? 0 : p->closed ? -EPIPE : -EAGAIN;
    }
    return 0;
}

static ssize_t take_outbound(jktcp_port *p, void *buf, size_t cap)
{
    if (q_front_len(&p->out) > cap)
        return -EMSGSIZE;
    size_t len = q_pop(&p->out, buf);
    if (p->out.count == 0 && !p->closed)
        efd_clear(&p->out_w, &p->out_sig);
    /* Room again: wake the adapter so it retries the send it was refused. */
    if (p->refused) {
        p->refused = false;
        efd_raise(&p->in_w, &p->in_sig);
    }
    return (ssize_t)len;
}

JKTCP_API ssize_t jktcp_port_pull(jktcp_port *port, void *buf, size_t cap, int timeout_ms)
{
    if (!port || !buf)
        return -EINVAL;
    pthread_mutex_lock(&port->mu);
    ssize_t r = wait_outbound(port, timeout_ms);
    if (r == 0)
        r = take_outbound(port, buf, cap);
    pthread_mutex_unlock(&port->mu);
    return r;
}

JKTCP_API int jktcp_port_pull_fd(jktcp_port *port)
{
    return port ? jk_wakefd_fd(&port->out_w) : -EINVAL;
}

/* ---- transport side ----------------------------------------------------- */

/* Pop one inbound frame into buf: its length, 0 when none is queued (the
 * eventfd is reset under the mutex, so a later push raises it again), or
 * -EPIPE once closed and drained. */
static long port_take(jktcp_port *p, uint8_t *buf, size_t cap)
{
    long r = 0;
    pthread_mutex_lock(&p->mu);
    if (p->in.count > 0 && q_front_len(&p->in) <= cap)
        r = (long)q_pop(&p->in, buf);
    else if (p->in.count > 0)
        r = -EMSGSIZE; /* cannot happen: push bounds frames by JK_MAX_FRAME */
    else if (p->closed)
        r = -EPIPE;
    else
        efd_clear(&p->in_w, &p->in_sig);
    pthread_mutex_unlock(&p->mu);
    return r;
}

static int port_give(jktcp_port *p, const uint8_t *frame, size_t len)
{
    int r = 0;
    pthread_mutex_lock(&p->mu);
    if (p->closed) {
        r = -EPIPE;
    } else if (!q_fits(&p->out, len)) {
        p->refused = true;
        r = -EAGAIN;
    } else {
        q_push(&p->out, frame, len);
        efd_raise(&p->out_w, &p->out_sig);
        pthread_cond_broadcast(&p->out_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return r;
}

/* ---- the transport ------------------------------------------------------ */

struct port_transport {
    jktcp_transport base;
    jktcp_port *port; /* holds a reference */
    int rx_err;       /* sticky failure (negative errno): -EPIPE once closed */
    uint8_t in[];     /* JK_MAX_FRAME: the frame recv hands out */
};

static int pt_recv(jktcp_transport *base, const uint8_t **frame, size_t *len)
{
    struct port_transport *t = (struct port_transport *)base;
    if (t->rx_err)
        return t->rx_err;
    long n = port_take(t->port, t->in, JK_MAX_FRAME);
    if (n < 0) {
        t->rx_err = (int)n;
        return t->rx_err;
    }
    if (n == 0)
        return 0;
    *frame = t->in;
    *len = (size_t)n;
    return 1;
}

static int pt_send(jktcp_transport *base, const uint8_t *frame, size_t len)
{
    return port_give(((struct port_transport *)base)->port, frame, len);
}

/* Nothing is ever held: a frame is queued whole or refused. */
static int pt_flush(jktcp_transport *base)
{
    (void)base;
    return 0;
}

static bool pt_pending(const jktcp_transport *base)
{
    (void)base;
    return false;
}

static int pt_poll_fd(const jktcp_transport *base)
{
    return jk_wakefd_fd(&((const struct port_transport *)base)->port->in_w);
}

/* The port raises in_efd itself, also when a refused send may retry. */
static short pt_poll_events(const jktcp_transport *base)
{
    (void)base;
    return POLLIN;
}

/* No flag changes anything for a port. */
static int pt_set_flags(jktcp_transport *base, unsigned flags)
{
    (void)base;
    (void)flags;
    return 0;
}

static void pt_destroy(jktcp_transport *base)
{
    struct port_transport *t = (struct port_transport *)base;
    port_detach(t->port);
    free(t);
}

static const struct jk_transport_ops port_ops = JK_TRANSPORT_OPS(pt);

/* The transport's half of the port reference is taken by the caller. */
static int port_transport_new(jktcp_port *p, jktcp_transport **out)
{
    struct port_transport *t = malloc(sizeof *t + JK_MAX_FRAME);
    if (!t)
        return -ENOMEM;
    t->base = (jktcp_transport){.ops = &port_ops, .framing = JKTCP_FRAMING_PACKET};
    t->port = p;
    t->rx_err = 0;
    *out = &t->base;
    return 0;
}

JKTCP_API int jktcp_port_transport(jktcp_port *port, jktcp_transport **out)
{
    if (!port || !out)
        return -EINVAL;
    *out = NULL;
    pthread_mutex_lock(&port->mu);
    bool busy = port->has_transport;
    if (!busy) {
        port->has_transport = true;
        port->refs++;
    }
    pthread_mutex_unlock(&port->mu);
    if (busy)
        return -EBUSY;
    int r = port_transport_new(port, out);
    if (r < 0) {
        pthread_mutex_lock(&port->mu);
        port->has_transport = false;
        port->refs--; /* the host still holds its reference */
        pthread_mutex_unlock(&port->mu);
    }
    return r;
}
