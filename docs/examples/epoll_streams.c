/* SPDX-License-Identifier: MIT */
/*
 * epoll_streams: many streams in one thread, with an event loop.
 *
 * No thread blocks in jktcp here. Each stream gives two readiness fds:
 * jktcp_stream_poll_fd(s, JKTCP_POLL_READ) polls readable while a read
 * would not block, (s, JKTCP_POLL_WRITE) while a write would not block.
 * They are level-triggered eventfds: put them in epoll (or poll, libuv,
 * asyncio) for EPOLLIN and call read / write with timeout 0 until -EAGAIN.
 *
 * STREAMS streams connect at once (non-blocking connect: -EINPROGRESS, the
 * WRITE fd signals the result), each sends BYTES to an echo server and
 * checks what comes back, all interleaved by one epoll loop.
 *
 *   usage: epoll_streams TRANSPORT LOCAL_IP PEER_IP PORT [STREAMS [BYTES]]
 *     TRANSPORT  tun:NAME (an existing TUN device) or fd:N (an inherited packet fd)
 *     PORT       an echo server on the peer
 */
#include <jktcp.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_STREAMS 64

struct conn {
    jktcp_stream s;
    int rfd, wfd;            /* readiness fds (owned by the stream: never close them) */
    long sent, got;
    int connected, finished; /* finished: end of stream read, or failed */
};

static struct conn conns[MAX_STREAMS];
static long total = 256 * 1024;
static int ep;

static uint8_t pattern(int k, long i)
{
    return (uint8_t)(i * 11 + k * 37 + (i >> 10));
}

/* Stop watching an fd. Always before the stream is closed (rule 7). */
static void unwatch(int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
}

/* The WRITE fd fired: the connect finished, or there is room to write. */
static int on_writable(int k)
{
    struct conn *c = &conns[k];
    if (!c->connected) {
        int err = jktcp_stream_error(c->s); /* like getsockopt(SO_ERROR) */
        if (err == -EINPROGRESS)
            return 0; /* still connecting */
        if (err != 0) {
            fprintf(stderr, "stream %d: connect: %s\n", k, jktcp_strerror(err));
            return -1;
        }
        c->connected = 1;
        printf("stream %d connected\n", k);
    }
    uint8_t buf[16384];
    while (c->sent < total) {
        size_t n = total - c->sent < (long)sizeof buf ? (size_t)(total - c->sent) : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(k, c->sent + (long)i);
        ssize_t w = jktcp_stream_write(c->s, buf, n, 0); /* never waits */
        if (w == -EAGAIN)
            return 0; /* the send buffer is full: wait for the fd again */
        if (w < 0) {
            fprintf(stderr, "stream %d: write: %s\n", k, jktcp_strerror((int)w));
            return -1;
        }
        c->sent += w;
    }
    /* All sent: FIN. The WRITE fd would now stay readable (a write would
     * not block: it fails with -EPIPE), so stop watching it. */
    jktcp_stream_shutdown(c->s);
    unwatch(c->wfd);
    return 0;
}

/* The READ fd fired: data, end of stream or an error is waiting. */
static int on_readable(int k)
{
    struct conn *c = &conns[k];
    uint8_t buf[16384];
    for (;;) {
        ssize_t n = jktcp_stream_read(c->s, buf, sizeof buf, 0);
        if (n == -EAGAIN)
            return 0;
        if (n < 0) {
            fprintf(stderr, "stream %d: read: %s\n", k, jktcp_strerror((int)n));
            return -1;
        }
        if (n == 0) { /* the echo server closed after our FIN */
            c->finished = 1;
            if (c->got != total) {
                fprintf(stderr, "stream %d: %ld bytes back of %ld\n", k, c->got, total);
                return -1;
            }
            printf("stream %d: %ld bytes echoed and verified\n", k, c->got);
            return 0;
        }
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(k, c->got + i)) {
                fprintf(stderr, "stream %d: byte %ld differs\n", k, c->got + i);
                return -1;
            }
        c->got += n;
    }
}

static int open_packet_fd(const char *spec)
{
    if (strncmp(spec, "fd:", 3) == 0)
        return atoi(spec + 3);
    if (strncmp(spec, "tun:", 4) != 0 || if_nametoindex(spec + 4) == 0) {
        fprintf(stderr, "%s: not fd:N nor tun:NAME of an existing TUN device\n", spec);
        return -1;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", spec + 4);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) != 0) {
        perror("attaching to the TUN device");
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s tun:NAME|fd:N LOCAL_IP PEER_IP PORT [STREAMS [BYTES]]\n", argv[0]);
        return 2;
    }
    int n = argc > 5 ? atoi(argv[5]) : 4;
    total = argc > 6 ? atol(argv[6]) : total;
    if (n < 1 || n > MAX_STREAMS || total < 1) {
        fprintf(stderr, "STREAMS: 1..%d, BYTES: >= 1\n", MAX_STREAMS);
        return 2;
    }
    int fd = open_packet_fd(argv[1]);
    if (fd < 0)
        return 1;
    jktcp_transport *t;
    jktcp_adapter *a;
    jktcp_handle h;
    int rc = jktcp_transport_fd(fd, JKTCP_FRAMING_PACKET, &t);
    if (rc == 0)
        rc = jktcp_adapter_new(t, argv[2], argv[3], &a);
    if (rc == 0)
        rc = jktcp_handle_start(a, &h);
    if (rc != 0 || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        fprintf(stderr, "setup: %s\n", jktcp_strerror(rc));
        return 1;
    }

    /* Start every connect at once; the epoll data says which stream and fd. */
    int opened = 0, ok = 1;
    for (; opened < n; opened++) {
        struct conn *c = &conns[opened];
        rc = jktcp_handle_connect(h, atoi(argv[4]), 0, &c->s);
        if (rc != -EINPROGRESS) { /* a local failure: nothing was opened */
            fprintf(stderr, "connect: %s\n", jktcp_strerror(rc));
            ok = 0;
            break;
        }
        c->rfd = jktcp_stream_poll_fd(c->s, JKTCP_POLL_READ);
        c->wfd = jktcp_stream_poll_fd(c->s, JKTCP_POLL_WRITE);
        struct epoll_event er = {.events = EPOLLIN, .data.u64 = (uint64_t)opened << 1};
        struct epoll_event ew = {.events = EPOLLIN, .data.u64 = (uint64_t)opened << 1 | 1};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->rfd, &er);
        epoll_ctl(ep, EPOLL_CTL_ADD, c->wfd, &ew);
    }

    /* The event loop: until every stream finished (or one failed). */
    int finished = 0;
    while (ok && finished < opened) {
        struct epoll_event ev[16];
        int m = epoll_wait(ep, ev, 16, 10000);
        if (m <= 0) {
            if (m < 0 && errno == EINTR)
                continue;
            fprintf(stderr, "nothing happened for 10 s\n");
            ok = 0;
            break;
        }
        for (int i = 0; i < m && ok; i++) {
            int k = (int)(ev[i].data.u64 >> 1);
            if (conns[k].finished)
                continue; /* an event queued before its stream finished */
            ok = (ev[i].data.u64 & 1 ? on_writable(k) : on_readable(k)) == 0;
            if (conns[k].finished) {
                unwatch(conns[k].rfd);
                finished++;
            }
        }
    }
    for (int k = 0; k < opened; k++) {
        unwatch(conns[k].rfd); /* (already gone if finished: harmless) */
        unwatch(conns[k].wfd);
        jktcp_stream_close(conns[k].s);
    }
    close(ep);
    jktcp_handle_close(h, 1000);
    close(fd);
    printf("%s: %d of %d streams echoed %ld bytes each\n", ok ? "OK" : "FAILED", finished, n, total);
    return ok ? 0 : 1;
}
