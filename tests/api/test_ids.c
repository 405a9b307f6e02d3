/* SPDX-License-Identifier: MIT */
/*
 * Suite `ids`: the threaded API's objects are ids that can never dangle
 * (include/jktcp.h, lifetime rules 1-5). Every call given an id that was
 * closed, never existed, names another kind of object, or belongs to a
 * handle that stopped returns its documented code and leaves every other
 * object working; closes count exactly once, also when threads race.
 *
 * No kernel needed: tests/support/rig.h's handle <-> pumped adapter. Runs under
 * ASan (make test SANITIZE=...) and TSan (make test-tsan) as well.
 */
#include "minitest.h"
#include "rig.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define E(x) jktcp_strerror((int)(x))

/* Every stream call with id s returns `want` (poll_fd included). */
static void stream_calls_return(jktcp_stream s, int want, const char *what)
{
    uint8_t b[8];
    jktcp_info info;
    long r;
    JT_ASSERT((r = jktcp_stream_read(s, b, sizeof b, 0)) == want, "%s: read %ld (%s)", what, r,
              E(r));
    JT_ASSERT((r = jktcp_stream_read(s, b, sizeof b, 50)) == want, "%s: read/50 %ld", what, r);
    JT_ASSERT((r = jktcp_stream_read(s, b, 0, 0)) == want, "%s: read 0 bytes %ld", what, r);
    JT_ASSERT((r = jktcp_stream_write(s, "x", 1, 0)) == want, "%s: write %ld (%s)", what, r,
              E(r));
    JT_ASSERT((r = jktcp_stream_write(s, "x", 1, 50)) == want, "%s: write/50 %ld", what, r);
    JT_ASSERT((r = jktcp_stream_write_all(s, "x", 1, 50)) == want, "%s: write_all %ld", what,
              r);
    JT_ASSERT((r = jktcp_stream_shutdown(s)) == want, "%s: shutdown %ld", what, r);
    JT_ASSERT((r = jktcp_stream_info(s, &info, sizeof info)) == want, "%s: info %ld", what, r);
    JT_ASSERT((r = jktcp_stream_set_congestion(s, JKTCP_CC_CUBIC)) == want, "%s: set_congestion %ld",
              what, r);
    JT_ASSERT((r = jktcp_stream_poll_fd(s, JKTCP_POLL_READ)) == want, "%s: poll_fd %ld", what,
              r);
    JT_ASSERT((r = jktcp_stream_poll_fd(s, JKTCP_POLL_WRITE)) == want, "%s: poll_fd w %ld", what,
              r);
}

/* Every call taking an id, with ids that name nothing of that kind. */
static void all_calls_ebadf(uint64_t id, const char *what)
{
    jktcp_handle h = {id};
    jktcp_stream s = {id}, out = {12345};
    jktcp_listener l = {id}, lout = {12345};
    jktcp_stats st;
    long r;
    JT_ASSERT((r = jktcp_handle_connect(h, 80, 0, &out)) == -EBADF, "%s: connect %ld", what, r);
    JT_ASSERT(out.id == 0, "%s: connect set *out", what);
    JT_ASSERT((r = jktcp_handle_connect(h, 80, 100, &out)) == -EBADF, "%s: connect %ld", what,
              r);
    JT_ASSERT((r = jktcp_handle_listen(h, 80, 0, &lout)) == -EBADF, "%s: listen %ld", what, r);
    JT_ASSERT(lout.id == 0, "%s: listen set *out", what);
    JT_ASSERT((r = jktcp_handle_pcap(h, NULL)) == -EBADF, "%s: pcap %ld", what, r);
    JT_ASSERT((r = jktcp_handle_stats(h, &st, sizeof st)) == -EBADF, "%s: stats %ld", what, r);
    JT_ASSERT((r = jktcp_handle_error(h)) == -EBADF, "%s: handle_error %ld", what, r);
    JT_ASSERT((r = jktcp_handle_close(h, 0)) == -EBADF, "%s: handle_close %ld", what, r);
    JT_ASSERT((r = jktcp_listener_accept(l, 0, &out)) == -EBADF, "%s: accept %ld", what, r);
    JT_ASSERT((r = jktcp_listener_accept(l, 50, &out)) == -EBADF, "%s: accept %ld", what, r);
    JT_ASSERT((r = jktcp_listener_poll_fd(l)) == -EBADF, "%s: listener fd %ld", what, r);
    JT_ASSERT((r = jktcp_listener_close(l)) == -EBADF, "%s: listener_close %ld", what, r);
    stream_calls_return(s, -EBADF, what);
    JT_ASSERT((r = jktcp_stream_error(s)) == -EBADF, "%s: stream_error %ld", what, r);
    JT_ASSERT((r = jktcp_stream_close(s)) == -EBADF, "%s: stream_close %ld", what, r);
    JT_ASSERT((r = jktcp_stream_abort(s)) == -EBADF, "%s: stream_abort %ld", what, r);
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* An echo round trip: the stream still works. */
static void still_works(jktcp_stream s)
{
    JT_ASSERT(jktcp_stream_write_all(s, "live", 4, 5000) == 4, "write on a live stream");
    char b[4];
    long n = rig_read_exact(s, b, 4, 5000);
    JT_ASSERT(n == 4 && memcmp(b, "live", 4) == 0, "echo on a live stream: %ld", n);
}

JT_TEST(ids, null_zero_and_bad_arguments, 30)
{
    jktcp_handle h = {0};
    jktcp_stream s = {0};
    jktcp_stats st;
    jktcp_info info;
    JT_ASSERT(jktcp_handle_start(NULL, &h) == -EINVAL, "start(NULL)");
    all_calls_ebadf(0, "id 0");

    struct rig r;
    rig_up(&r, NULL);
    jktcp_listener l = {0};
    JT_ASSERT(jktcp_handle_connect(r.h, 80, 0, NULL) == -EINVAL, "connect out NULL");
    JT_ASSERT(jktcp_handle_listen(r.h, 8080, 0, NULL) == -EINVAL, "listen out NULL");
    const int bad_ports[] = {0, -1, 65536, 65536 + RIG_PORT, 1 << 20, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
        s.id = 77;
        JT_ASSERT(jktcp_handle_connect(r.h, bad_ports[i], 1000, &s) == -EINVAL, "port %d",
                  bad_ports[i]);
        JT_ASSERT(s.id == 0, "connect(port %d) left *out set", bad_ports[i]);
        JT_ASSERT(jktcp_handle_listen(r.h, bad_ports[i], 0, &l) == -EINVAL, "listen port %d",
                  bad_ports[i]);
    }
    JT_ASSERT(jktcp_handle_stats(r.h, NULL, sizeof st) == -EINVAL, "stats NULL");
    JT_ASSERT(jktcp_handle_stats(r.h, &st, 0) == -EINVAL, "stats size 0");
    JT_ASSERT(jktcp_handle_pcap(r.h, "/nonexistent-dir-jktcp/x.pcap") == -ENOENT, "pcap path");
    JT_ASSERT(jktcp_handle_error(r.h) == 0, "healthy transport: handle_error");
    JT_ASSERT(jktcp_handle_listen(r.h, 8080, 0, &l) == 0 && l.id, "listen");
    jktcp_listener l2 = {0};
    JT_ASSERT(jktcp_handle_listen(r.h, 8080, 0, &l2) == -EADDRINUSE, "listen twice");
    JT_ASSERT(jktcp_listener_accept(l, 0, NULL) == -EINVAL, "accept out NULL");
    JT_ASSERT(jktcp_listener_accept(l, 0, &s) == -EAGAIN, "accept, nothing queued");

    s = rig_connect(&r);
    uint8_t b[4];
    JT_ASSERT(jktcp_stream_read(s, NULL, 4, 0) == -EINVAL, "read NULL");
    JT_ASSERT(jktcp_stream_write(s, NULL, 4, 0) == -EINVAL, "write NULL");
    JT_ASSERT(jktcp_stream_write_all(s, NULL, 4, 0) == -EINVAL, "write_all NULL");
    JT_ASSERT(jktcp_stream_info(s, NULL, sizeof info) == -EINVAL, "info NULL");
    JT_ASSERT(jktcp_stream_info(s, &info, 0) == -EINVAL, "info size 0");
    JT_ASSERT(jktcp_stream_poll_fd(s, 0) == -EINVAL, "poll_fd events 0");
    JT_ASSERT(jktcp_stream_poll_fd(s, 3) == -EINVAL, "poll_fd events 3");
    JT_ASSERT(jktcp_stream_read(s, b, 0, 0) == 0, "read 0 bytes");
    JT_ASSERT(jktcp_stream_write(s, b, 0, 0) == 0, "write 0 bytes");
    JT_ASSERT(jktcp_stream_read(s, b, SIZE_MAX, 0) == -EAGAIN, "read SIZE_MAX");
    JT_ASSERT(jktcp_stream_error(s) == 0, "stream_error on a healthy stream");
    JT_ASSERT(jktcp_stream_set_congestion(s, 4) == -EINVAL, "set_congestion 4");
    JT_ASSERT(jktcp_stream_set_congestion(s, -1) == -EINVAL, "set_congestion -1");
    JT_ASSERT(jktcp_stream_set_congestion(s, JKTCP_CC_CUBIC) == 0, "set_congestion cubic");
    JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0 && info.congestion == JKTCP_CC_CUBIC,
              "the stream reports controller %u", info.congestion);
    still_works(s);
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    JT_ASSERT(jktcp_listener_close(l) == 0, "listener close");
    rig_down(&r);
}

/* Random 64-bit values and ids of objects already gone name nothing;
 * calls with them leave the live objects alone. */
JT_TEST(ids, random_and_stale_ids_ebadf, 60)
{
    struct rig r;
    rig_up(&r, NULL);
    jktcp_stream live = rig_connect(&r);
    jktcp_listener ll = {0};
    JT_ASSERT(jktcp_handle_listen(r.h, 8081, 0, &ll) == 0, "listen");
    uint64_t seed = 0x5eed0000ull + (uint64_t)getpid();
    uint64_t x = seed;
    for (int i = 0; i < 2000; i++) {
        uint64_t id = splitmix(&x);
        if (id == live.id || id == ll.id || id == r.h.id)
            continue;
        char what[64];
        snprintf(what, sizeof what, "random id %#llx (seed %#llx)", (unsigned long long)id,
                 (unsigned long long)seed);
        if (i < 50)
            all_calls_ebadf(id, what);
        else
            stream_calls_return((jktcp_stream){id}, -EBADF, what);
    }
    all_calls_ebadf(UINT64_MAX, "UINT64_MAX");
    /* ids that did name something and were closed */
    uint64_t stale[16];
    for (int i = 0; i < 16; i++) {
        jktcp_stream s = rig_connect(&r);
        stale[i] = s.id;
        JT_ASSERT((i % 2 ? jktcp_stream_abort(s) : jktcp_stream_close(s)) == 0, "close");
    }
    for (int i = 0; i < 16; i++)
        all_calls_ebadf(stale[i], "closed stream id");
    jktcp_listener gone = {0};
    JT_ASSERT(jktcp_handle_listen(r.h, 8082, 0, &gone) == 0, "listen");
    JT_ASSERT(jktcp_listener_close(gone) == 0, "listener close");
    all_calls_ebadf(gone.id, "closed listener id");
    still_works(live);
    jktcp_stream acc;
    JT_ASSERT(jktcp_listener_accept(ll, 0, &acc) == -EAGAIN, "live listener still there");
    JT_ASSERT(jktcp_stream_close(live) == 0, "close live");
    JT_ASSERT(jktcp_listener_close(ll) == 0, "close live listener");
    rig_down(&r);
}

/* An id of one kind given where another kind belongs, including ids of
 * another handle's live objects: -EBADF, and both stay intact. */
JT_TEST(ids, other_kind_and_other_handle_ebadf, 60)
{
    struct rig r1, r2;
    rig_up(&r1, NULL);
    rig_up(&r2, NULL);
    jktcp_stream s1 = rig_connect(&r1), s2 = rig_connect(&r2);
    jktcp_listener l1 = {0}, l2 = {0};
    JT_ASSERT(jktcp_handle_listen(r1.h, 8080, 0, &l1) == 0, "listen 1");
    JT_ASSERT(jktcp_handle_listen(r2.h, 8080, 0, &l2) == 0, "listen 2");
    const uint64_t ids[] = {s1.id, s2.id, l1.id, l2.id, r1.h.id, r2.h.id};
    jktcp_stream out;
    jktcp_stats st;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        uint64_t id = ids[i];
        bool is_stream = i < 2, is_listener = i >= 2 && i < 4, is_handle = i >= 4;
        if (!is_stream) {
            stream_calls_return((jktcp_stream){id}, -EBADF, "non-stream id as a stream");
            JT_ASSERT(jktcp_stream_close((jktcp_stream){id}) == -EBADF, "close non-stream");
            JT_ASSERT(jktcp_stream_abort((jktcp_stream){id}) == -EBADF, "abort non-stream");
            JT_ASSERT(jktcp_stream_error((jktcp_stream){id}) == -EBADF, "error non-stream");
        }
        if (!is_listener) {
            JT_ASSERT(jktcp_listener_accept((jktcp_listener){id}, 0, &out) == -EBADF, "accept");
            JT_ASSERT(jktcp_listener_poll_fd((jktcp_listener){id}) == -EBADF, "listener fd");
            JT_ASSERT(jktcp_listener_close((jktcp_listener){id}) == -EBADF, "listener close");
        }
        if (!is_handle) {
            JT_ASSERT(jktcp_handle_connect((jktcp_handle){id}, RIG_PORT, 100, &out) == -EBADF,
                      "connect through a non-handle id");
            JT_ASSERT(jktcp_handle_stats((jktcp_handle){id}, &st, sizeof st) == -EBADF, "stats");
            JT_ASSERT(jktcp_handle_error((jktcp_handle){id}) == -EBADF, "handle_error");
            JT_ASSERT(jktcp_handle_close((jktcp_handle){id}, 0) == -EBADF, "handle_close");
        }
    }
    still_works(s1);
    still_works(s2);
    /* one handle closed: its ids stop (-ESHUTDOWN / -EBADF), the other's go on */
    JT_ASSERT(jktcp_handle_close(r1.h, 0) == 0, "close handle 1");
    r1.handle_closed = true;
    stream_calls_return(s1, -ESHUTDOWN, "stream of the closed handle");
    JT_ASSERT(jktcp_listener_accept(l1, 0, &out) == -ESHUTDOWN, "listener of the closed handle");
    still_works(s2);
    JT_ASSERT(jktcp_listener_accept(l2, 0, &out) == -EAGAIN, "listener of the open handle");
    JT_ASSERT(jktcp_handle_stats(r2.h, &st, sizeof st) == 0, "the open handle's stats");
    JT_ASSERT(jktcp_stream_close(s1) == 0, "close s1");
    JT_ASSERT(jktcp_stream_close(s2) == 0, "close s2");
    JT_ASSERT(jktcp_listener_close(l1) == 0, "close l1");
    JT_ASSERT(jktcp_listener_close(l2) == 0, "close l2");
    rig_down(&r1);
    rig_down(&r2);
}

/* Close once: 0, then -EBADF for every call, close and abort included. */
JT_TEST(ids, double_close_stream_listener_handle, 60)
{
    struct rig r;
    rig_up(&r, NULL);
    jktcp_stream s = rig_connect(&r);
    JT_ASSERT(jktcp_stream_close(s) == 0, "first close");
    JT_ASSERT(jktcp_stream_close(s) == -EBADF, "second close");
    JT_ASSERT(jktcp_stream_abort(s) == -EBADF, "abort after close");
    all_calls_ebadf(s.id, "closed stream");
    usleep(50000); /* and after the I/O thread finished the close */
    all_calls_ebadf(s.id, "closed stream, later");

    s = rig_connect(&r);
    JT_ASSERT(jktcp_stream_abort(s) == 0, "first abort");
    JT_ASSERT(jktcp_stream_abort(s) == -EBADF, "second abort");
    JT_ASSERT(jktcp_stream_close(s) == -EBADF, "close after abort");

    jktcp_listener l = {0};
    JT_ASSERT(jktcp_handle_listen(r.h, 8080, 0, &l) == 0, "listen");
    JT_ASSERT(jktcp_listener_close(l) == 0, "first listener close");
    JT_ASSERT(jktcp_listener_close(l) == -EBADF, "second listener close");
    JT_ASSERT(jktcp_handle_listen(r.h, 8080, 0, &l) == 0, "the port is free again");
    JT_ASSERT(jktcp_listener_close(l) == 0, "listener close");

    jktcp_handle h = r.h;
    JT_ASSERT(jktcp_handle_close(h, 0) == 0, "first handle close");
    r.handle_closed = true;
    JT_ASSERT(jktcp_handle_close(h, 0) == -EBADF, "second handle close");
    all_calls_ebadf(h.id, "closed handle");
    rig_down(&r);
}

/* After the handle closed: the handle's own calls -EBADF, its streams'
 * and listeners' -ESHUTDOWN until each is closed once (0), then -EBADF. */
JT_TEST(ids, calls_after_handle_close, 60)
{
    struct rig r;
    rig_up(&r, NULL);
    jktcp_stream s = rig_connect(&r), s2 = rig_connect(&r);
    jktcp_listener l = {0};
    JT_ASSERT(jktcp_handle_listen(r.h, 8080, 0, &l) == 0, "listen");
    int rfd = jktcp_stream_poll_fd(s, JKTCP_POLL_READ);
    JT_ASSERT(rfd >= 0, "poll fd");
    JT_ASSERT(jktcp_handle_close(r.h, 0) == 0, "handle close");
    r.handle_closed = true;
    stream_calls_return(s, -ESHUTDOWN, "stream after handle close");
    JT_ASSERT(jktcp_stream_error(s) == -ESHUTDOWN, "stream_error after handle close");
    jktcp_stream out = {9};
    JT_ASSERT(jktcp_listener_accept(l, 0, &out) == -ESHUTDOWN && out.id == 0, "accept");
    JT_ASSERT(jktcp_listener_accept(l, 100, &out) == -ESHUTDOWN, "accept with a timeout");
    JT_ASSERT(jktcp_listener_poll_fd(l) == -ESHUTDOWN, "listener poll fd");
    JT_ASSERT(jktcp_handle_connect(r.h, RIG_PORT, 100, &out) == -EBADF, "connect");
    jktcp_listener l2 = {7};
    JT_ASSERT(jktcp_handle_listen(r.h, 8081, 0, &l2) == -EBADF && l2.id == 0, "listen");
    JT_ASSERT(jktcp_handle_error(r.h) == -EBADF, "handle_error");
    JT_ASSERT(jktcp_stream_close(s) == 0, "stream close after handle close");
    JT_ASSERT(jktcp_stream_close(s) == -EBADF, "again");
    all_calls_ebadf(s.id, "closed after the handle");
    JT_ASSERT(jktcp_stream_abort(s2) == 0, "stream abort after handle close");
    JT_ASSERT(jktcp_listener_close(l) == 0, "listener close after handle close");
    JT_ASSERT(jktcp_listener_close(l) == -EBADF, "again");
    rig_down(&r);
}

/* Ids are never reused: a thousand streams come and go, every id is new
 * and every old one stays dead. */
JT_TEST(ids, never_reused, 60)
{
    struct rig r;
    rig_up(&r, NULL);
    enum { N = 1000 };
    static uint64_t seen[N];
    for (int i = 0; i < N; i++) {
        jktcp_stream s = {0};
        int rc = jktcp_handle_connect(r.h, RIG_PORT, 5000, &s);
        JT_ASSERT(rc == 0, "connect %d: %s", i, E(rc));
        for (int j = 0; j < i; j++)
            JT_ASSERT(seen[j] != s.id, "id %#llx reused", (unsigned long long)s.id);
        seen[i] = s.id;
        JT_ASSERT(jktcp_stream_abort(s) == 0, "abort");
    }
    for (int i = 0; i < N; i += 37)
        JT_ASSERT(jktcp_stream_error((jktcp_stream){seen[i]}) == -EBADF, "old id alive");
    rig_down(&r);
}

/* ---------------------------------------------------------------------- */
/* Closes racing each other                                                */
/* ---------------------------------------------------------------------- */

#define RACERS 8

struct close_race {
    int kind; /* 0 stream close, 1 stream abort/close mix, 2 listener, 3 handle */
    uint64_t id;
    atomic_int go, zeros, ebadf, other;
};

static void *close_racer(void *arg)
{
    struct close_race *x = arg;
    int me = atomic_fetch_add(&x->go, 1);
    while (atomic_load(&x->go) < RACERS) {
    }
    int r;
    switch (x->kind) {
    case 0: r = jktcp_stream_close((jktcp_stream){x->id}); break;
    case 1:
        r = me % 2 ? jktcp_stream_abort((jktcp_stream){x->id})
                   : jktcp_stream_close((jktcp_stream){x->id});
        break;
    case 2: r = jktcp_listener_close((jktcp_listener){x->id}); break;
    default: r = jktcp_handle_close((jktcp_handle){x->id}, 0); break;
    }
    atomic_fetch_add(r == 0 ? &x->zeros : r == -EBADF ? &x->ebadf : &x->other, 1);
    return NULL;
}

static void race_close(int kind, uint64_t id)
{
    static struct close_race x;
    memset(&x, 0, sizeof x);
    x.kind = kind;
    x.id = id;
    pthread_t th[RACERS];
    for (int i = 0; i < RACERS; i++)
        JT_ASSERT(pthread_create(&th[i], NULL, close_racer, &x) == 0, "thread");
    for (int i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    JT_ASSERT(atomic_load(&x.zeros) == 1 && atomic_load(&x.ebadf) == RACERS - 1,
              "kind %d: %d closes returned 0, %d -EBADF, %d something else", kind,
              atomic_load(&x.zeros), atomic_load(&x.ebadf), atomic_load(&x.other));
}

JT_TEST(ids, concurrent_close_exactly_once, 120)
{
    for (int round = 0; round < 10; round++) {
        struct rig r;
        rig_up(&r, NULL);
        for (int i = 0; i < 10; i++) {
            race_close(i % 2, rig_connect(&r).id);
            jktcp_listener l = {0};
            JT_ASSERT(jktcp_handle_listen(r.h, 9000 + i, 0, &l) == 0, "listen");
            race_close(2, l.id);
        }
        jktcp_stream s = rig_connect(&r);
        race_close(3, r.h.id);
        r.handle_closed = true;
        stream_calls_return(s, -ESHUTDOWN, "after the raced handle close");
        race_close(0, s.id);
        rig_down(&r);
    }
}

/* ---------------------------------------------------------------------- */
/* Close wakes every blocked call                                          */
/* ---------------------------------------------------------------------- */

#define WAKE_LIMIT_MS 100.0

static void expect_woken(struct rig_blocked *b, double t_close, long want)
{
    long r = rig_blocked_join(b);
    double dt = b->t_ret - t_close;
    JT_LOG("blocked %s woke %.2f ms after the close with %ld (%s)", rig_op_name(b->op), dt, r,
           E(r));
    JT_ASSERT(r == want, "blocked %s returned %ld (%s), expected %ld (%s)", rig_op_name(b->op), r,
              E(r), want, E(want));
    JT_ASSERT(dt < WAKE_LIMIT_MS, "blocked %s woke %.1f ms after the close", rig_op_name(b->op),
              dt);
}

/* Readers, writers and accepters blocked on an id that another thread
 * closes: -EBADF within 100 ms, two of each kind. */
JT_TEST(ids, close_wakes_read_write_accept, 60)
{
    struct rig re, rn;
    rig_up(&re, NULL);
    struct rig_opts o = {.mode = RIG_NOREAD, .sndbuf = 64 * 1024, .rcvbuf = 64 * 1024};
    rig_up(&rn, &o);
    jktcp_stream sr = rig_connect(&re), sw = rig_connect(&rn);
    rig_fill(sw);
    jktcp_listener l = {0};
    JT_ASSERT(jktcp_handle_listen(re.h, 8080, 0, &l) == 0, "listen");
    struct rig_blocked b[6] = {
        {.op = RIG_OP_READ, .s = sr},  {.op = RIG_OP_READ, .s = sr},
        {.op = RIG_OP_WRITE, .s = sw}, {.op = RIG_OP_WRITE, .s = sw},
        {.op = RIG_OP_ACCEPT, .l = l}, {.op = RIG_OP_ACCEPT, .l = l},
    };
    for (int i = 0; i < 6; i++) {
        b[i].timeout_ms = -1; /* only the close can end them */
        rig_blocked_start(&b[i]);
    }
    rig_blocked_settle(b, 6);
    double t = rig_now_ms();
    JT_ASSERT(jktcp_stream_close(sr) == 0, "close sr");
    expect_woken(&b[0], t, -EBADF);
    expect_woken(&b[1], t, -EBADF);
    t = rig_now_ms();
    JT_ASSERT(jktcp_stream_abort(sw) == 0, "abort sw");
    expect_woken(&b[2], t, -EBADF);
    expect_woken(&b[3], t, -EBADF);
    t = rig_now_ms();
    JT_ASSERT(jktcp_listener_close(l) == 0, "close l");
    expect_woken(&b[4], t, -EBADF);
    expect_woken(&b[5], t, -EBADF);
    rig_down(&re);
    rig_down(&rn);
}

/* A stream still connecting (non-blocking connect to a black hole):
 * threads blocked reading and writing on it wake with -EBADF when it is
 * closed; a blocking connect wakes with -ESHUTDOWN when the handle closes. */
JT_TEST(ids, close_wakes_connecting_stream_and_connect, 60)
{
    struct rig r;
    struct rig_opts o = {.mode = RIG_BLACKHOLE};
    rig_up(&r, &o);
    jktcp_stream s = {0};
    JT_ASSERT(jktcp_handle_connect(r.h, RIG_PORT, 0, &s) == -EINPROGRESS && s.id, "connect(0)");
    JT_ASSERT(jktcp_stream_error(s) == -EINPROGRESS, "still connecting");
    struct rig_blocked b[4] = {
        {.op = RIG_OP_READ, .s = s, .timeout_ms = -1},
        {.op = RIG_OP_WRITE, .s = s, .timeout_ms = -1},
        {.op = RIG_OP_CONNECT, .h = r.h, .port = RIG_PORT, .timeout_ms = -1},
        {.op = RIG_OP_CONNECT, .h = r.h, .port = RIG_PORT + 1, .timeout_ms = 30000},
    };
    for (int i = 0; i < 4; i++)
        rig_blocked_start(&b[i]);
    rig_blocked_settle(b, 4);
    double t = rig_now_ms();
    JT_ASSERT(jktcp_stream_close(s) == 0, "close the connecting stream");
    expect_woken(&b[0], t, -EBADF);
    expect_woken(&b[1], t, -EBADF);
    t = rig_now_ms();
    JT_ASSERT(jktcp_handle_close(r.h, 0) == 0, "handle close");
    r.handle_closed = true;
    expect_woken(&b[2], t, -ESHUTDOWN);
    expect_woken(&b[3], t, -ESHUTDOWN);
    JT_ASSERT(b[2].out.id == 0 && b[3].out.id == 0, "a failed connect set *out");
    rig_down(&r);
}

/* The handle's close wakes blocked reads, writes and accepts with
 * -ESHUTDOWN within 100 ms, and is itself quick. */
JT_TEST(ids, handle_close_wakes_everything, 60)
{
    struct rig r;
    struct rig_opts o = {.mode = RIG_NOREAD, .sndbuf = 64 * 1024, .rcvbuf = 64 * 1024};
    rig_up(&r, &o);
    jktcp_stream sr = rig_connect(&r), sw = rig_connect(&r);
    rig_fill(sw);
    jktcp_listener l = {0};
    JT_ASSERT(jktcp_handle_listen(r.h, 8080, 0, &l) == 0, "listen");
    struct rig_blocked b[3] = {
        {.op = RIG_OP_READ, .s = sr, .timeout_ms = -1},
        {.op = RIG_OP_WRITE, .s = sw, .timeout_ms = -1},
        {.op = RIG_OP_ACCEPT, .l = l, .timeout_ms = -1},
    };
    for (int i = 0; i < 3; i++)
        rig_blocked_start(&b[i]);
    rig_blocked_settle(b, 3);
    double t = rig_now_ms();
    JT_ASSERT(jktcp_handle_close(r.h, 0) == 0, "handle close");
    double took = rig_now_ms() - t;
    r.handle_closed = true;
    for (int i = 0; i < 3; i++)
        expect_woken(&b[i], t, -ESHUTDOWN);
    JT_ASSERT(took < WAKE_LIMIT_MS, "handle_close took %.1f ms", took);
    JT_ASSERT(jktcp_stream_close(sr) == 0 && jktcp_stream_close(sw) == 0, "stream closes");
    JT_ASSERT(jktcp_listener_close(l) == 0, "listener close");
    rig_down(&r);
}

/* Connect's own outcomes through the rig: refused (nothing to close),
 * timed out (attempt abandoned), -EMFILE. */
JT_TEST(ids, connect_refused_timeout_emfile, 60)
{
    struct rig r;
    struct rig_opts o = {.max_conns = 2};
    rig_up(&r, &o);
    jktcp_stream s = {5};
    int rc = jktcp_handle_connect(r.h, 9, 5000, &s);
    JT_ASSERT(rc == -ECONNREFUSED && s.id == 0, "connect to a closed port: %s", E(rc));
    jktcp_stream a = rig_connect(&r), b = rig_connect(&r);
    rc = jktcp_handle_connect(r.h, RIG_PORT, 1000, &s);
    JT_ASSERT(rc == -EMFILE && s.id == 0, "third connect with MAX_CONNS 2: %s", E(rc));
    JT_ASSERT(jktcp_stream_abort(a) == 0 && jktcp_stream_abort(b) == 0, "aborts");
    rig_down(&r);

    o = (struct rig_opts){.mode = RIG_BLACKHOLE};
    rig_up(&r, &o);
    double t = rig_now_ms();
    rc = jktcp_handle_connect(r.h, RIG_PORT, 300, &s);
    double dt = rig_now_ms() - t;
    JT_ASSERT(rc == -ETIMEDOUT && s.id == 0, "connect to a black hole: %s", E(rc));
    JT_ASSERT(dt >= 290 && dt < 300 + WAKE_LIMIT_MS, "timeout 300 ms took %.1f ms", dt);
    jktcp_stats st;
    JT_ASSERT(jktcp_handle_stats(r.h, &st, sizeof st) == 0, "stats");
    rig_down(&r);
}
