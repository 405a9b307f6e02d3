/* SPDX-License-Identifier: MIT */
/*
 * The packet port (jktcp_port): suite `transport` (round trip, bad
 * arguments, bounded queues, wake-ups, timeouts, close and free in either
 * order) and suite `thread_port` (host threads pushing and pulling while
 * the test thread plays the adapter; close wakes a blocked pull).
 */
#include <criterion/criterion.h>

#include "jktcp.h"
#include "packet.h"
#include "transport.h"
#include "transport_test.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- packet port --------------------------------------------------------- */

static jktcp_port *port_with_transport(size_t bytes, jktcp_transport **t)
{
    jktcp_port *p;
    cr_assert_eq(jktcp_port_new(bytes, &p), 0);
    cr_assert_eq(jktcp_port_transport(p, t), 0);
    return p;
}

Test(transport, port_round_trip)
{
    jktcp_transport *t;
    jktcp_port *p = port_with_transport(0, &t);
    cr_assert_eq(jk_transport_framing(t), JKTCP_FRAMING_PACKET);
    uint8_t a[1500], b[JK_MAX_FRAME], buf[JK_MAX_FRAME];
    uint64_t rng = 21;
    make_frame(a, sizeof a, 4, 0, &rng);
    make_frame(b, sizeof b, 6, 1, &rng);
    int in_fd = jk_transport_poll_fd(t);
    cr_assert_eq(jk_transport_poll_events(t), POLLIN);
    cr_assert_eq(wait_fd(in_fd, POLLIN, 0), 0);
    cr_assert_eq(jktcp_port_push(p, a, sizeof a), 0);
    cr_assert_eq(jktcp_port_push(p, b, sizeof b), 0);
    cr_assert_eq(wait_fd(in_fd, POLLIN, 0), 1);
    const uint8_t *f;
    size_t len;
    cr_assert_eq(jk_transport_recv(t, &f, &len), 1);
    cr_assert(len == sizeof a && memcmp(f, a, len) == 0);
    cr_assert_eq(jk_transport_recv(t, &f, &len), 1);
    cr_assert(len == sizeof b && memcmp(f, b, len) == 0);
    cr_assert_eq(jk_transport_recv(t, &f, &len), 0);
    cr_assert_eq(wait_fd(in_fd, POLLIN, 0), 0, "drained queue resets the eventfd");

    int out_fd = jktcp_port_pull_fd(p);
    cr_assert_eq(wait_fd(out_fd, POLLIN, 0), 0);
    cr_assert_eq(jk_transport_send(t, b, sizeof b), 0);
    cr_assert_eq(wait_fd(out_fd, POLLIN, 0), 1, "pull fd readable while a frame waits");
    cr_assert_eq(jktcp_port_pull(p, buf, sizeof buf, 0), (ssize_t)sizeof b);
    cr_assert(memcmp(buf, b, sizeof b) == 0);
    cr_assert_eq(wait_fd(out_fd, POLLIN, 0), 0);
    cr_assert_not(jk_transport_pending(t));
    cr_assert_eq(jk_transport_flush(t), 0);
    jktcp_transport_free(t);
    jktcp_port_free(p);
}

Test(transport, port_bad_args)
{
    jktcp_port *p;
    jktcp_transport *t;
    uint8_t a[100], buf[100];
    uint64_t rng = 22;
    make_frame(a, sizeof a, 4, 0, &rng);
    cr_assert_eq(jktcp_port_new(0, NULL), -EINVAL);
    cr_assert_eq(jktcp_port_new(0, &p), 0);
    cr_assert_eq(jktcp_port_transport(NULL, &t), -EINVAL);
    cr_assert_eq(jktcp_port_transport(p, NULL), -EINVAL);
    cr_assert_eq(jktcp_port_push(NULL, a, sizeof a), -EINVAL);
    cr_assert_eq(jktcp_port_push(p, NULL, sizeof a), -EINVAL);
    cr_assert_eq(jktcp_port_push(p, a, 0), -EMSGSIZE);
    cr_assert_eq(jktcp_port_push(p, a, JK_MAX_FRAME + 1), -EMSGSIZE);
    cr_assert_eq(jktcp_port_pull(NULL, buf, sizeof buf, 0), -EINVAL);
    cr_assert_eq(jktcp_port_pull(p, NULL, sizeof buf, 0), -EINVAL);
    cr_assert_eq(jktcp_port_pull_fd(NULL), -EINVAL);
    jktcp_port_close(NULL);
    jktcp_port_free(NULL);
    cr_assert_eq(jktcp_port_transport(p, &t), 0);
    jktcp_transport *t2 = t;
    cr_assert_eq(jktcp_port_transport(p, &t2), -EBUSY);
    cr_assert_null(t2);
    /* Too small a buffer: the frame stays for the next pull. */
    cr_assert_eq(jk_transport_send(t, a, sizeof a), 0);
    cr_assert_eq(jktcp_port_pull(p, buf, sizeof a - 1, 0), -EMSGSIZE);
    cr_assert_eq(jktcp_port_pull(p, buf, sizeof buf, 0), (ssize_t)sizeof a);
    jktcp_port_free(p);
    jktcp_transport_free(t);
}

Test(transport, port_queues_are_bounded)
{
    jktcp_transport *t;
    jktcp_port *p = port_with_transport(1000, &t); /* clamped up to one max frame */
    uint8_t a[1000];
    uint64_t rng = 23;
    make_frame(a, sizeof a, 4, 0, &rng);
    int n = 0, r;
    while ((r = jktcp_port_push(p, a, sizeof a)) == 0)
        n++;
    cr_assert_eq(r, -EAGAIN);
    cr_assert(n >= 60 && n <= 66, "queue held %d frames", n);
    const uint8_t *f;
    size_t len;
    cr_assert_eq(jk_transport_recv(t, &f, &len), 1);
    cr_assert_eq(jktcp_port_push(p, a, sizeof a), 0, "one popped, one fits");
    cr_assert_eq(jktcp_port_push(p, a, sizeof a), -EAGAIN);
    jktcp_transport_free(t);
    jktcp_port_free(p);
}

/* A refused send is retried when the host pulls: the port wakes in_efd. */
Test(transport, port_refused_send_wakes_on_pull)
{
    jktcp_transport *t;
    jktcp_port *p = port_with_transport(1, &t);
    static uint8_t a[JK_MAX_FRAME], buf[JK_MAX_FRAME];
    uint64_t rng = 24;
    make_frame(a, sizeof a, 6, 0, &rng);
    cr_assert_eq(jk_transport_send(t, a, sizeof a), 0);
    cr_assert_eq(jk_transport_send(t, a, sizeof a), -EAGAIN);
    cr_assert_eq(jk_transport_poll_events(t), POLLIN);
    const uint8_t *f;
    size_t len;
    cr_assert_eq(jk_transport_recv(t, &f, &len), 0);
    int in_fd = jk_transport_poll_fd(t);
    cr_assert_eq(wait_fd(in_fd, POLLIN, 0), 0);
    cr_assert_eq(jktcp_port_pull(p, buf, sizeof buf, 0), (ssize_t)sizeof a);
    cr_assert_eq(wait_fd(in_fd, POLLIN, 0), 1, "pull after a refusal wakes the adapter");
    cr_assert_eq(jk_transport_recv(t, &f, &len), 0);
    cr_assert_eq(jk_transport_send(t, a, sizeof a), 0);
    jktcp_transport_free(t);
    jktcp_port_free(p);
}

Test(transport, port_pull_timeout)
{
    jktcp_port *p;
    cr_assert_eq(jktcp_port_new(0, &p), 0);
    uint8_t buf[100];
    cr_assert_eq(jktcp_port_pull(p, buf, sizeof buf, 0), -EAGAIN);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_assert_eq(jktcp_port_pull(p, buf, sizeof buf, 150), -EAGAIN);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    cr_assert(ms >= 140 && ms < 5000, "waited %ld ms", ms);
    jktcp_port_free(p);
}

Test(transport, port_close_ends_both_sides)
{
    jktcp_transport *t;
    jktcp_port *p = port_with_transport(0, &t);
    uint8_t a[100], buf[100];
    uint64_t rng = 25;
    make_frame(a, sizeof a, 4, 0, &rng);
    cr_assert_eq(jktcp_port_push(p, a, sizeof a), 0);
    cr_assert_eq(jk_transport_send(t, a, sizeof a), 0);
    jktcp_port_close(p);
    cr_assert_eq(jktcp_port_push(p, a, sizeof a), -EPIPE);
    cr_assert_eq(jk_transport_send(t, a, sizeof a), -EPIPE);
    const uint8_t *f;
    size_t len;
    cr_assert_eq(jk_transport_recv(t, &f, &len), 1, "queued frames still arrive");
    cr_assert_eq(jk_transport_recv(t, &f, &len), -EPIPE);
    cr_assert_eq(wait_fd(jk_transport_poll_fd(t), POLLIN, 0), 1, "closed port stays readable");
    cr_assert_eq(jktcp_port_pull(p, buf, sizeof buf, -1), (ssize_t)sizeof a);
    cr_assert_eq(jktcp_port_pull(p, buf, sizeof buf, -1), -EPIPE);
    jktcp_transport_free(t);
    jktcp_port_free(p);
}

/* Either side may let go first; the other then sees end of stream. */
Test(transport, port_free_order)
{
    jktcp_transport *t;
    jktcp_port *p = port_with_transport(0, &t);
    jktcp_port_free(p);
    const uint8_t *f;
    size_t len;
    cr_assert_eq(jk_transport_recv(t, &f, &len), -EPIPE);
    jktcp_transport_free(t);

    p = port_with_transport(0, &t);
    jktcp_transport_free(t);
    uint8_t buf[100];
    cr_assert_eq(jktcp_port_pull(p, buf, sizeof buf, -1), -EPIPE);
    jktcp_port_free(p);
}

/* ---- packet port under threads (also run by make test-tsan) -------------- */

#define THREAD_FRAMES 1000

struct host {
    jktcp_port *p;
    uint64_t seed;
    int status; /* 0 ok, else the index of the first bad frame + 1 */
};

static void *host_pusher(void *arg)
{
    struct host *h = arg;
    uint8_t buf[3000];
    for (uint32_t i = 0; i < THREAD_FRAMES; i++) {
        size_t len = rng_range(&h->seed, 44, sizeof buf);
        make_frame(buf, len, i & 1 ? 6 : 4, i, &h->seed);
        int r;
        while ((r = jktcp_port_push(h->p, buf, len)) == -EAGAIN)
            sched_yield();
        if (r != 0)
            abort();
    }
    return NULL;
}

static void *host_puller(void *arg)
{
    struct host *h = arg;
    uint8_t buf[JK_MAX_FRAME];
    for (uint32_t i = 0; i < THREAD_FRAMES && !h->status; i++) {
        ssize_t n = jktcp_port_pull(h->p, buf, sizeof buf, -1);
        uint32_t seq = UINT32_MAX;
        if (n >= 44)
            memcpy(&seq, buf + ((buf[0] >> 4) == 4 ? 20 : 40), 4);
        if (seq != i)
            h->status = (int)i + 1;
    }
    return NULL;
}

/* Host threads push and pull while this thread echoes like an adapter. */
Test(thread_port, push_pull_1000_in_order, .timeout = 120)
{
    jktcp_transport *t;
    jktcp_port *p = port_with_transport(1, &t); /* small: exercise full queues */
    struct host push = {p, 26, 0}, pull = {p, 0, 0};
    pthread_t tp, tq;
    cr_assert_eq(pthread_create(&tp, NULL, host_pusher, &push), 0);
    cr_assert_eq(pthread_create(&tq, NULL, host_puller, &pull), 0);
    static uint8_t frame[JK_MAX_FRAME];
    int fd = jk_transport_poll_fd(t);
    for (uint32_t echoed = 0; echoed < THREAD_FRAMES;) {
        const uint8_t *f;
        size_t len;
        int r = jk_transport_recv(t, &f, &len);
        cr_assert_geq(r, 0);
        if (r == 0) {
            cr_assert_gt(wait_fd(fd, POLLIN, 10000), 0, "lost wake-up at frame %u", echoed);
            continue;
        }
        memcpy(frame, f, len);
        while ((r = jk_transport_send(t, frame, len)) == -EAGAIN)
            cr_assert_gt(wait_fd(fd, POLLIN, 10000), 0, "lost wake-up after refusal");
        cr_assert_eq(r, 0);
        echoed++;
    }
    pthread_join(tp, NULL);
    pthread_join(tq, NULL);
    cr_assert_eq(pull.status, 0, "frame %d out of order", pull.status - 1);
    jktcp_transport_free(t);
    jktcp_port_free(p);
}

static void *blocked_pull(void *arg)
{
    struct host *h = arg;
    uint8_t buf[100];
    h->status = (int)jktcp_port_pull(h->p, buf, sizeof buf, -1);
    return NULL;
}

Test(thread_port, close_wakes_blocked_pull, .timeout = 30)
{
    jktcp_port *p;
    cr_assert_eq(jktcp_port_new(0, &p), 0);
    struct host h = {p, 0, 1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, blocked_pull, &h), 0);
    struct timespec nap = {0, 50 * 1000000L};
    nanosleep(&nap, NULL);
    jktcp_port_close(p);
    pthread_join(th, NULL);
    cr_assert_eq(h.status, -EPIPE);
    jktcp_port_free(p);
}
