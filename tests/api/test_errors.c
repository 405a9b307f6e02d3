/* SPDX-License-Identifier: MIT */
/*
 * Suite `errors`: errors that say what happened (include/jktcp.h, lifetime
 * rule 6). A failed transport (end of stream, read or write error) fails
 * every stream with -ENETDOWN, a code no TCP event produces, and makes
 * connect/listen return -ENETDOWN, while jktcp_handle_error keeps the
 * transport's own error. A peer's RST stays -ECONNRESET and exhausted
 * retransmissions stay -ETIMEDOUT, with handle_error 0: the transport is
 * fine. The single-threaded API reports the same codes.
 *
 * No kernel needed: tests/support/rig.h (its handle, and struct rig_pair, a
 * hand-driven adapter pair over packet ports), and a handle over caller
 * functions on a SOCK_SEQPACKET pair (tests/support/b2blink.h).
 */
#include "minitest.h"
#include "b2blink.h"
#include "rig.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define E(x) jktcp_strerror((int)(x))

/* Every stream call on s says `want`. Data that arrived before the
 * failure is read first (jktcp_stream_read), so drain it. */
static void stream_fails_with(jktcp_stream s, long want, const char *what)
{
    static uint8_t b[64 * 1024];
    long r;
    int i = 0;
    while ((r = jktcp_stream_read(s, b, sizeof b, 0)) > 0 && i++ < 10000) {
    }
    JT_ASSERT(r == want, "%s: read %ld (%s), want %s", what, r, E(r), E(want));
    JT_ASSERT((r = jktcp_stream_read(s, b, sizeof b, 50)) == want, "%s: read/50 %ld (%s)", what,
              r, E(r));
    JT_ASSERT((r = jktcp_stream_write(s, "x", 1, 0)) == want, "%s: write %ld (%s)", what, r,
              E(r));
    JT_ASSERT((r = jktcp_stream_write(s, "x", 1, 50)) == want, "%s: write/50 %ld (%s)", what, r,
              E(r));
    JT_ASSERT((r = jktcp_stream_error(s)) == want, "%s: stream_error %ld (%s)", what, r, E(r));
}

/* New streams and listeners fail with -ENETDOWN and leave *out {0}. */
static void handle_refuses_new(jktcp_handle h)
{
    jktcp_stream s = {77};
    jktcp_listener l = {77};
    int rc = jktcp_handle_connect(h, RIG_PORT, 2000, &s);
    JT_ASSERT(rc == -ENETDOWN, "connect on a failed transport: %d (%s)", rc, E(rc));
    JT_ASSERT(s.id == 0, "failed connect left *out set");
    rc = jktcp_handle_listen(h, 8080, 0, &l);
    JT_ASSERT(rc == -ENETDOWN, "listen on a failed transport: %d (%s)", rc, E(rc));
    JT_ASSERT(l.id == 0, "failed listen left *out set");
}

/* ---- end of stream on the rig's packet port ---------------------------- */

/* Echo traffic on one stream until a call fails; keeps the failure. */
struct flow {
    jktcp_stream s;
    atomic_long moved;
    long err;
    pthread_t th;
};

static void *flow_main(void *arg)
{
    struct flow *f = arg;
    static uint8_t wbuf[16 * 1024], rbuf[64 * 1024];
    for (;;) {
        long n = jktcp_stream_write(f->s, wbuf, sizeof wbuf, 2000);
        if (n <= 0) {
            f->err = n;
            return NULL;
        }
        n = jktcp_stream_read(f->s, rbuf, sizeof rbuf, 2000);
        if (n <= 0) {
            f->err = n;
            return NULL;
        }
        atomic_fetch_add(&f->moved, n);
    }
}

JT_TEST(errors, port_eof_netdown, 60)
{
    struct rig r;
    rig_up(&r, NULL);
    jktcp_stream idle = rig_connect(&r), busy = rig_connect(&r);
    struct rig_blocked b = {.op = RIG_OP_READ, .s = idle, .timeout_ms = 5000};
    rig_blocked_start(&b);
    struct flow f = {.s = busy};
    JT_ASSERT(pthread_create(&f.th, NULL, flow_main, &f) == 0, "flow thread");
    rig_blocked_settle(&b, 1);
    /* the busy stream really has data in flight when the transport ends */
    for (int i = 0; i < 500 && atomic_load(&f.moved) < 256 * 1024; i++)
        usleep(10000);
    JT_ASSERT(atomic_load(&f.moved) >= 256 * 1024, "echo flow stalled at %ld bytes",
              atomic_load(&f.moved));

    double t0 = rig_now_ms();
    jktcp_port_close(r.link.a.port);
    long br = rig_blocked_join(&b);
    pthread_join(f.th, NULL);
    JT_LOG("errors/port_eof_netdown: blocked read woke after %.1f ms", b.t_ret - t0);
    JT_ASSERT(br == -ENETDOWN, "blocked read: %ld (%s)", br, E(br));
    JT_ASSERT(b.t_ret - t0 < 100, "blocked read woke %.1f ms after the close", b.t_ret - t0);
    JT_ASSERT(f.err == -ENETDOWN, "flowing stream ended with %ld (%s)", f.err, E(f.err));
    /* the transport's own error for end of stream, not the streams' code */
    int he = jktcp_handle_error(r.h);
    JT_ASSERT(he == -EPIPE, "handle_error: %d (%s)", he, E(he));
    stream_fails_with(idle, -ENETDOWN, "idle stream");
    stream_fails_with(busy, -ENETDOWN, "busy stream");
    handle_refuses_new(r.h);

    /* a failed transport still closes cleanly, before and after the handle */
    JT_ASSERT(jktcp_stream_close(idle) == 0, "close idle stream");
    JT_ASSERT(jktcp_handle_close(r.h, 0) == 0, "close handle");
    r.handle_closed = true;
    JT_ASSERT(jktcp_stream_close(busy) == 0, "close busy stream after the handle");
    rig_down(&r);
}

/* ---- read / write errors of caller-supplied I/O ------------------------- */

/* The handle runs over caller functions on one end of a socketpair link
 * (b2blink.h: its flaky end, whose rerr / werr, once set, are returned
 * instead of doing I/O); its peer is adapter B on the other socket,
 * echoing on port 80, driven by a thread of its own. */
struct opsrig {
    struct b2b_link link;
    struct b2b_link_flaky io;
    jktcp_handle h;
    jktcp_conn_listener *bl;
    atomic_bool stop;
    pthread_t th;
};

static void *peer_main(void *arg)
{
    struct opsrig *o = arg;
    jktcp_conn *conns[8], *c;
    int n = 0;
    while (!atomic_load(&o->stop)) {
        jktcp_adapter_poll(o->link.b.ad, 5);
        while (n < 8 && jktcp_adapter_accept(o->bl, 0, &c) == 0)
            conns[n++] = c;
        for (int i = 0; i < n; i++) {
            uint8_t tmp[16384];
            ssize_t k = jktcp_conn_read(conns[i], tmp, sizeof tmp, 0);
            if (k > 0) {
                jktcp_conn_write(conns[i], tmp, (size_t)k, 0);
            } else if (k != -EAGAIN) { /* ended: forget it */
                jktcp_conn_close(conns[i]);
                conns[i--] = conns[--n];
            }
        }
    }
    for (int i = 0; i < n; i++)
        jktcp_conn_abort(conns[i]);
    return NULL;
}

static void opsrig_up(struct opsrig *o)
{
    memset(o, 0, sizeof *o);
    struct b2b_link_opts lo = {.medium = B2B_LINK_SOCKETPAIR, .a.flaky = &o->io};
    int rc = b2b_link_up(&o->link, &lo);
    JT_ASSERT(rc == 0, "link: %s", E(rc));
    JT_ASSERT(jktcp_adapter_listen(o->link.b.ad, RIG_PORT, 0, &o->bl) == 0, "b listens");
    JT_ASSERT(jktcp_handle_start(b2b_link_take(&o->link.a), &o->h) == 0, "handle_start");
    JT_ASSERT(pthread_create(&o->th, NULL, peer_main, o) == 0, "peer thread");
}

static void opsrig_down(struct opsrig *o)
{
    atomic_store(&o->stop, true);
    pthread_join(o->th, NULL);
    b2b_link_down(&o->link); /* B, both sockets */
}

/* A working echo stream first, then the read (or write) function fails:
 * a blocked read, later calls and new connects say -ENETDOWN; the
 * handle says -EIO. */
static void ops_error(bool write_side)
{
    struct opsrig o;
    opsrig_up(&o);
    jktcp_stream s = {0};
    int rc = jktcp_handle_connect(o.h, RIG_PORT, 5000, &s);
    JT_ASSERT(rc == 0, "connect over ops: %s", E(rc));
    char buf[4];
    JT_ASSERT(jktcp_stream_write_all(s, "ping", 4, 5000) == 4, "ping");
    JT_ASSERT(rig_read_exact(s, buf, 4, 5000) == 4 && !memcmp(buf, "ping", 4), "echo");
    JT_ASSERT(jktcp_handle_error(o.h) == 0, "handle_error while healthy");

    struct rig_blocked b = {.op = RIG_OP_READ, .s = s, .timeout_ms = 5000};
    rig_blocked_start(&b);
    rig_blocked_settle(&b, 1);
    atomic_store(write_side ? &o.io.werr : &o.io.rerr, -EIO);
    /* a write wakes the I/O thread, which then reads and writes */
    double t0 = rig_now_ms();
    long w = jktcp_stream_write(s, "x", 1, 0);
    JT_ASSERT(w == 1 || w == -ENETDOWN, "write that meets the error: %ld (%s)", w, E(w));
    long br = rig_blocked_join(&b);
    JT_ASSERT(br == -ENETDOWN, "blocked read: %ld (%s)", br, E(br));
    JT_ASSERT(b.t_ret - t0 < 100, "blocked read woke %.1f ms after the error", b.t_ret - t0);
    int he = jktcp_handle_error(o.h);
    JT_ASSERT(he == -EIO, "handle_error: %d (%s), want the function's -EIO", he, E(he));
    stream_fails_with(s, -ENETDOWN, write_side ? "write error" : "read error");
    handle_refuses_new(o.h);
    JT_ASSERT(jktcp_stream_close(s) == 0, "close stream");
    JT_ASSERT(jktcp_handle_close(o.h, 0) == 0, "close handle");
    opsrig_down(&o);
}

JT_TEST(errors, ops_read_error_netdown, 30) { ops_error(false); }
JT_TEST(errors, ops_write_error_netdown, 30) { ops_error(true); }

/* ---- TCP's own errors stay TCP's ---------------------------------------- */

/* B accepts on RIG_RESET_PORT and resets at once. */
JT_TEST(errors, peer_rst_stays_connreset, 30)
{
    struct rig r;
    rig_up(&r, NULL);
    for (int i = 0; i < 3; i++) {
        jktcp_stream s = {0};
        int rc = jktcp_handle_connect(r.h, RIG_RESET_PORT, 5000, &s);
        JT_ASSERT(rc == 0, "connect to the resetting port: %d (%s)", rc, E(rc));
        uint8_t buf[16];
        long n = jktcp_stream_read(s, buf, sizeof buf, 5000); /* waits for the RST */
        JT_ASSERT(n == -ECONNRESET, "read: %ld (%s)", n, E(n));
        stream_fails_with(s, -ECONNRESET, "reset stream");
        JT_ASSERT(jktcp_handle_error(r.h) == 0, "handle_error after a peer's RST: %s",
                  E(jktcp_handle_error(r.h)));
        JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    }
    /* the handle itself is unharmed */
    jktcp_stream ok = rig_connect(&r);
    JT_ASSERT(jktcp_stream_close(ok) == 0, "close");
    rig_down(&r);
}

/* Short RTOs and few retries: an established stream whose peer goes
 * silent times out in well under a second. */
JT_TEST(errors, retries_exhausted_stay_timedout, 30)
{
    struct rig r;
    struct rig_opts opts = {.mode = RIG_ECHO, .rto_init_ms = 50, .rto_min_ms = 20,
                            .max_retries = 3};
    rig_up(&r, &opts);
    jktcp_stream s = rig_connect(&r);
    rig_set_mode(&r, RIG_BLACKHOLE);
    JT_ASSERT(jktcp_stream_write_all(s, "lost", 4, 1000) == 4, "queue bytes");
    uint8_t buf[16];
    double t0 = rig_now_ms();
    long n = jktcp_stream_read(s, buf, sizeof buf, 10000);
    JT_LOG("errors/retries_exhausted_stay_timedout: read returned after %.0f ms",
           rig_now_ms() - t0);
    JT_ASSERT(n == -ETIMEDOUT, "read: %ld (%s)", n, E(n));
    stream_fails_with(s, -ETIMEDOUT, "timed-out stream");
    JT_ASSERT(jktcp_handle_error(r.h) == 0, "handle_error after a TCP timeout: %s",
              E(jktcp_handle_error(r.h)));
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    rig_set_mode(&r, RIG_ECHO);
    jktcp_stream ok = rig_connect(&r); /* the transport still works */
    JT_ASSERT(jktcp_stream_close(ok) == 0, "close");
    rig_down(&r);
}

/* ---- the single-threaded API over a plain packet port -------------------- */

static void *close_port_later(void *port)
{
    usleep(100000);
    jktcp_port_close(port);
    return NULL;
}

/* Closing A's port while a conn_read blocks: the read wakes with
 * -ENETDOWN; every conn call and new connects/listens say -ENETDOWN, and
 * only jktcp_adapter_poll tells the transport's own -EPIPE. */
JT_TEST(errors, adapter_port_eof_netdown, 30)
{
    struct rig_pair p;
    rig_pair_up(&p);
    jktcp_conn *bc, *c = rig_pair_connect(&p, &bc);
    pthread_t th;
    JT_ASSERT(pthread_create(&th, NULL, close_port_later, p.link.a.port) == 0, "closer thread");
    uint8_t buf[16];
    double t0 = rig_now_ms();
    ssize_t n = jktcp_conn_read(c, buf, sizeof buf, 5000);
    double dt = rig_now_ms() - t0;
    pthread_join(th, NULL);
    JT_ASSERT(n == -ENETDOWN, "blocked conn_read: %zd (%s)", n, E(n));
    JT_ASSERT(dt >= 90 && dt < 300, "conn_read returned after %.1f ms (port closed at 100)", dt);
    JT_ASSERT((n = jktcp_conn_read(c, buf, sizeof buf, 0)) == -ENETDOWN, "read: %s", E(n));
    JT_ASSERT((n = jktcp_conn_write(c, "x", 1, 0)) == -ENETDOWN, "write: %s", E(n));
    JT_ASSERT((n = jktcp_conn_write(c, "x", 1, 100)) == -ENETDOWN, "write/100: %s", E(n));
    JT_ASSERT((n = jktcp_conn_error(c)) == -ENETDOWN, "conn_error: %s", E(n));
    jktcp_conn *c2 = NULL;
    int rc = jktcp_conn_connect(p.a, RIG_PORT, 1000, &c2);
    JT_ASSERT(rc == -ENETDOWN && !c2, "connect on a failed transport: %d (%s)", rc, E(rc));
    jktcp_conn_listener *l = NULL;
    rc = jktcp_adapter_listen(p.a, 8080, 0, &l);
    JT_ASSERT(rc == -ENETDOWN && !l, "listen on a failed transport: %d (%s)", rc, E(rc));
    for (int i = 0; i < 2; i++) { /* sticky: the transport's own error each time */
        rc = jktcp_adapter_poll(p.a, 0);
        JT_ASSERT(rc == -EPIPE, "adapter_poll: %d (%s)", rc, E(rc));
    }
    JT_ASSERT(jktcp_conn_close(c) == 0, "close A's end");
    JT_ASSERT(jktcp_adapter_poll(p.b, 0) == 0, "B's transport is unaffected");
    jktcp_conn_abort(bc);
    rig_pair_down(&p);
}

/* Rule 6 in time, not only in the end: a thread that has just seen
 * -ENETDOWN on a stream and asks the handle why must get the transport's
 * error, never 0 (the handle publishes it before any stream fails). */
struct spin {
    jktcp_stream s;
    jktcp_handle h;
    atomic_int herr;
    atomic_bool go;
};

static void *spin_main(void *arg)
{
    struct spin *sp = arg;
    atomic_store(&sp->go, true);
    while (jktcp_stream_error(sp->s) != -ENETDOWN) {
    }
    atomic_store(&sp->herr, jktcp_handle_error(sp->h));
    return NULL;
}

JT_TEST(errors, handle_error_set_before_streams_fail, 120)
{
    int zeros = 0, n = 200;
    for (int i = 0; i < n; i++) {
        struct rig r;
        rig_up(&r, NULL);
        jktcp_stream s = rig_connect(&r);
        struct spin sp = {.s = s, .h = r.h};
        pthread_t th;
        JT_ASSERT(pthread_create(&th, NULL, spin_main, &sp) == 0, "thread");
        while (!atomic_load(&sp.go)) {
        }
        usleep(500);
        jktcp_port_close(r.link.a.port);
        pthread_join(th, NULL);
        int he = atomic_load(&sp.herr);
        JT_ASSERT(he == 0 || he == -EPIPE, "handle_error %d (%s)", he, E(he));
        zeros += he == 0;
        jktcp_stream_close(s);
        rig_down(&r);
    }
    JT_ASSERT(zeros == 0, "handle_error was 0 just after a stream saw -ENETDOWN: %d of %d runs",
              zeros, n);
}
