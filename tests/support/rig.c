/* SPDX-License-Identifier: MIT */
/* The threaded-API rig (see rig.h). */
#include "rig.h"

#include "minitest.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double rig_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool rig_fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    return n == 1 && (p.revents & POLLIN);
}

/* B's side: accept, echo (or not), forget connections that ended. */
static bool serve_b(struct rig *r)
{
    bool busy = false;
    jktcp_conn *c = NULL;
    jktcp_adapter *b = r->link.b.ad;
    while (r->nb < RIG_MAX_PEER_CONNS && jktcp_adapter_accept(r->bl, 0, &c) == 0) {
        r->bconns[r->nb++] = c;
        busy = true;
    }
    for (; atomic_load(&r->b_connects) > 0 && r->nb < RIG_MAX_PEER_CONNS; busy = true) {
        atomic_fetch_sub(&r->b_connects, 1);
        if (jktcp_conn_connect(b, atomic_load(&r->b_port), 0, &c) == -EINPROGRESS)
            r->bconns[r->nb++] = c;
    }
    while (jktcp_adapter_accept(r->brl, 0, &c) == 0) {
        jktcp_conn_abort(c);
        busy = true;
    }
    if (atomic_load(&r->mode) == RIG_NOREAD)
        return busy;
    for (int i = 0; i < r->nb; i++) {
        uint8_t tmp[16384];
        ssize_t n = jktcp_conn_read(r->bconns[i], tmp, sizeof tmp, 0);
        if (n > 0) {
            jktcp_conn_write(r->bconns[i], tmp, (size_t)n, 0);
            busy = true;
        } else if (n != -EAGAIN) { /* end of stream or an error: done with it */
            jktcp_conn_close(r->bconns[i]);
            r->bconns[i--] = r->bconns[--r->nb];
        }
    }
    return busy;
}

static void *pump_main(void *arg)
{
    struct rig *r = arg;
    while (!atomic_load(&r->stop)) {
        bool moved = b2b_link_carry(&r->link, true, atomic_load(&r->mode) == RIG_BLACKHOLE);
        jktcp_adapter_poll(r->link.b.ad, 0);
        moved |= b2b_link_carry(&r->link, false, false);
        moved |= serve_b(r);
        if (!moved)
            usleep(200);
        else
            atomic_fetch_add(&r->frames, 1);
    }
    return NULL;
}

static void set(jktcp_adapter *a, jktcp_option opt, long v)
{
    if (v) {
        int rc = jktcp_adapter_set_option(a, opt, v);
        JT_ASSERT(rc == 0, "set_option(%d, %ld): %s", (int)opt, v, jktcp_strerror(rc));
    }
}

void rig_up(struct rig *r, const struct rig_opts *opts)
{
    memset(r, 0, sizeof *r);
    if (opts)
        r->o = *opts;
    struct b2b_link_opts lo = {.medium = B2B_LINK_PORTS, .a.faults = r->o.faults};
    int rc = b2b_link_up(&r->link, &lo);
    JT_ASSERT(rc == 0, "link: %s", jktcp_strerror(rc));
    jktcp_adapter *a = r->link.a.ad, *b = r->link.b.ad;
    set(a, JKTCP_OPT_SNDBUF, r->o.sndbuf);
    set(a, JKTCP_OPT_RCVBUF, r->o.rcvbuf);
    set(b, JKTCP_OPT_RCVBUF, r->o.rcvbuf);
    set(a, JKTCP_OPT_MAX_CONNS, r->o.max_conns);
    set(a, JKTCP_OPT_RTO_INIT_MS, r->o.rto_init_ms);
    set(a, JKTCP_OPT_MAX_RETRIES, r->o.max_retries);
    set(a, JKTCP_OPT_RTO_MIN_MS, r->o.rto_min_ms);
    set(b, JKTCP_OPT_RTO_MIN_MS, r->o.peer_rto_min_ms);
    set(b, JKTCP_OPT_MAX_CONNS, RIG_MAX_PEER_CONNS + 64);
    JT_ASSERT(jktcp_adapter_listen(b, RIG_PORT, 1024, &r->bl) == 0, "listen b");
    JT_ASSERT(jktcp_adapter_listen(b, RIG_RESET_PORT, 1024, &r->brl) == 0, "listen b");
    atomic_store(&r->mode, r->o.mode);
    r->bconns = calloc(RIG_MAX_PEER_CONNS, sizeof *r->bconns);
    JT_ASSERT(r->bconns, "calloc");
    rc = jktcp_handle_start(b2b_link_take(&r->link.a), &r->h);
    JT_ASSERT(rc == 0 && r->h.id, "handle_start: %s", jktcp_strerror(rc));
    JT_ASSERT(pthread_create(&r->th, NULL, pump_main, r) == 0, "pump thread");
    r->running = true;
}

void rig_down(struct rig *r)
{
    if (!r->handle_closed && r->h.id)
        jktcp_handle_close(r->h, 0);
    r->handle_closed = true;
    if (r->running) {
        atomic_store(&r->stop, true);
        pthread_join(r->th, NULL);
        r->running = false;
    }
    for (int i = 0; i < r->nb; i++)
        jktcp_conn_abort(r->bconns[i]);
    r->nb = 0;
    free(r->bconns);
    r->bconns = NULL;
    b2b_link_down(&r->link); /* B (and its listeners), the ports */
}

void rig_b_connect(struct rig *r, int port, int n)
{
    atomic_store(&r->b_port, port);
    atomic_fetch_add(&r->b_connects, n);
}

void rig_set_mode(struct rig *r, int mode)
{
    atomic_store(&r->mode, mode);
}

long rig_read_exact(jktcp_stream s, void *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = jktcp_stream_read(s, (uint8_t *)buf + got, n - got, timeout_ms);
        if (k <= 0)
            return k;
        got += (size_t)k;
    }
    return (long)got;
}

jktcp_stream rig_connect(struct rig *r)
{
    jktcp_stream s = {0};
    int rc = jktcp_handle_connect(r->h, RIG_PORT, 5000, &s);
    JT_ASSERT(rc == 0 && s.id, "jktcp_handle_connect: %d (%s)", rc, jktcp_strerror(rc));
    if (atomic_load(&r->mode) == RIG_ECHO) {
        JT_ASSERT(jktcp_stream_write_all(s, "ping", 4, 5000) == 4, "ping");
        char b[4];
        long n = rig_read_exact(s, b, 4, 5000);
        JT_ASSERT(n == 4 && memcmp(b, "ping", 4) == 0, "echo: %ld", n);
    }
    return s;
}

const char *rig_op_name(int op)
{
    static const char *const names[] = {"read", "write", "accept", "connect"};
    return op >= 0 && op < 4 ? names[op] : "?";
}

static void *blocked_main(void *arg)
{
    struct rig_blocked *b = arg;
    static uint8_t wbuf[64 * 1024];
    uint8_t rbuf[4096];
    long r = -1;
    atomic_store(&b->started, true);
    switch (b->op) {
    case RIG_OP_READ: r = jktcp_stream_read(b->s, rbuf, sizeof rbuf, b->timeout_ms); break;
    case RIG_OP_WRITE: r = jktcp_stream_write(b->s, wbuf, sizeof wbuf, b->timeout_ms); break;
    case RIG_OP_ACCEPT: r = jktcp_listener_accept(b->l, b->timeout_ms, &b->out); break;
    case RIG_OP_CONNECT: r = jktcp_handle_connect(b->h, b->port, b->timeout_ms, &b->out); break;
    }
    b->t_ret = rig_now_ms();
    b->result = r;
    atomic_store(&b->returned, true);
    return NULL;
}

void rig_blocked_start(struct rig_blocked *b)
{
    if (!b->timeout_ms)
        b->timeout_ms = 5000;
    JT_ASSERT(pthread_create(&b->th, NULL, blocked_main, b) == 0, "pthread_create");
}

void rig_blocked_settle(struct rig_blocked *b, int n)
{
    for (int i = 0; i < n; i++)
        while (!atomic_load(&b[i].started))
            usleep(1000);
    usleep(200000);
    for (int i = 0; i < n; i++)
        JT_ASSERT(!atomic_load(&b[i].returned), "blocked %s returned %ld (%s) too early",
                  rig_op_name(b[i].op), b[i].result, jktcp_strerror((int)b[i].result));
}

long rig_blocked_join(struct rig_blocked *b)
{
    for (int i = 0; i < 10000 && !atomic_load(&b->returned); i++)
        usleep(1000);
    JT_ASSERT(atomic_load(&b->returned), "blocked %s did not return within 10 s",
              rig_op_name(b->op));
    pthread_join(b->th, NULL);
    return b->result;
}

void rig_fill(jktcp_stream s)
{
    static uint8_t buf[64 * 1024];
    int i;
    for (i = 0; i < 4096; i++) {
        ssize_t r = jktcp_stream_write(s, buf, sizeof buf, 200);
        if (r == -EAGAIN)
            break;
        JT_ASSERT(r > 0, "filling the send buffer: %zd (%s)", r, jktcp_strerror((int)r));
    }
    JT_ASSERT(i < 4096, "the send buffer never filled");
}

void rig_pair_up(struct rig_pair *p)
{
    memset(p, 0, sizeof *p);
    struct b2b_link_opts lo = {.medium = B2B_LINK_PORTS};
    int rc = b2b_link_up(&p->link, &lo);
    JT_ASSERT(rc == 0, "link: %s", jktcp_strerror(rc));
    p->a = p->link.a.ad;
    p->b = p->link.b.ad;
    JT_ASSERT(jktcp_adapter_listen(p->b, RIG_PORT, 0, &p->bl) == 0, "b listens");
}

void rig_pair_down(struct rig_pair *p)
{
    b2b_link_down(&p->link);
}

jktcp_conn *rig_pair_connect(struct rig_pair *p, jktcp_conn **bc)
{
    jktcp_conn *c = NULL;
    int rc = jktcp_conn_connect(p->a, RIG_PORT, 0, &c);
    JT_ASSERT(rc == -EINPROGRESS && c, "connect(timeout 0): %s", jktcp_strerror(rc));
    *bc = NULL;
    for (int i = 0; i < 100 && !*bc; i++) {
        b2b_link_carry(&p->link, true, false);
        jktcp_adapter_accept(p->bl, 0, bc);
        b2b_link_carry(&p->link, false, false);
        jktcp_adapter_poll(p->a, 0);
    }
    jktcp_info info;
    JT_ASSERT(*bc, "B never accepted");
    JT_ASSERT(jktcp_conn_info(c, &info, sizeof info) == 0 && info.state == JKTCP_ESTABLISHED,
              "A's end: %s", jktcp_state_name(info.state));
    return c;
}
