/* SPDX-License-Identifier: MIT */
/*
 * The Linux kernel as a system under test: its TCP behind the suite's TUN
 * device (198.18.0.1 / fd00::1 on the TUN, the peer's frames written into
 * it), its application a kernel socket. Defaults chosen to match jktcp's
 * where a setting only hides the behaviour under test: TCP_NODELAY on.
 */
#include "diff_int.h"
#include "netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int tun_fd = -1;

struct kimpl {
    int lfd, fd;
    int conn_err; /* SO_ERROR clears on reading: keep it, as jktcp_stream_error does */
};

/* Enter a private namespace with the TUN device; once per process. */
int dx_kernel_setup(void)
{
    if (tun_fd >= 0)
        return 0;
    int rc = jkt_netns_enter();
    if (rc)
        return rc;
    struct jkt_tun t;
    rc = jkt_tun_open("dx0", 1500, 0, &t);
    if (rc)
        return rc;
    fcntl(t.fd, F_SETFL, fcntl(t.fd, F_GETFL) | O_NONBLOCK);
    tun_fd = t.fd;
    return 0;
}

static struct kimpl *K(struct dx *x) { return x->impl; }

static socklen_t sockaddr_of(struct dx *x, const struct jk_addr *a, uint16_t port,
                             struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (x->family == 4) {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        s->sin_family = AF_INET;
        s->sin_port = htons(port);
        memcpy(&s->sin_addr, a->a, 4);
        return sizeof *s;
    }
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    memcpy(&s->sin6_addr, a->a, 16);
    return sizeof *s;
}

static void set_int(int fd, int level, int opt, int v)
{
    setsockopt(fd, level, opt, &v, sizeof v);
}

/* The scenario's options, on a new socket. */
static void apply(struct dx *x, int fd)
{
    set_int(fd, IPPROTO_TCP, TCP_NODELAY, x->opts[DX_O_NAGLE] ? 0 : 1);
    if (x->opts[DX_O_RCVBUF])
        set_int(fd, SOL_SOCKET, SO_RCVBUF, (int)x->opts[DX_O_RCVBUF]);
    if (x->opts[DX_O_KEEPALIVE]) {
        int s = (int)x->opts[DX_O_KEEPALIVE];
        set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
        set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, s);
        set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, s / 4 ? s / 4 : 1);
        set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, 9);
    }
    if (x->opts[DX_O_SYN_RETRIES])
        set_int(fd, IPPROTO_TCP, TCP_SYNCNT, (int)x->opts[DX_O_SYN_RETRIES]);
    if (x->opts[DX_O_RETRIES]) {
        /* the time n back-offs from a 200 ms RTO take, and half a step */
        long n = x->opts[DX_O_RETRIES];
        set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, (int)(200 * ((2L << n) - 1) + (100L << n)));
    }
}

static int sock(struct dx *x)
{
    int fd = socket(x->family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd >= 0)
        apply(x, fd);
    return fd;
}

static int k_begin(struct dx *x)
{
    struct kimpl *k = calloc(1, sizeof *k);
    k->lfd = k->fd = -1;
    x->impl = k;
    return tun_fd >= 0 ? 0 : -ENODEV;
}

static void k_end(struct dx *x)
{
    struct kimpl *k = K(x);
    if (k->fd >= 0) {
        struct linger l = {1, 0}; /* leave nothing behind for the next run */
        setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(k->fd);
    }
    if (k->lfd >= 0)
        close(k->lfd);
    free(k);
    x->impl = NULL;
}

static int k_listen(struct dx *x, int backlog)
{
    struct kimpl *k = K(x);
    k->lfd = sock(x);
    set_int(k->lfd, SOL_SOCKET, SO_REUSEADDR, 1);
    struct sockaddr_storage ss;
    socklen_t sl = sockaddr_of(x, &x->sut, x->sut_port, &ss);
    if (bind(k->lfd, (struct sockaddr *)&ss, sl) < 0 || listen(k->lfd, backlog) < 0)
        return -errno;
    return 0;
}

static int wait_fd(int fd, short ev, int timeout_ms)
{
    struct pollfd p = {fd, ev, 0};
    int n;
    while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    return n > 0 ? p.revents : 0;
}

static int k_accept(struct dx *x, int timeout_ms)
{
    struct kimpl *k = K(x);
    if (!wait_fd(k->lfd, POLLIN, timeout_ms))
        return -EAGAIN;
    int fd = accept4(k->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return -errno;
    apply(x, fd);
    k->fd = fd;
    return 0;
}

static int k_connect(struct dx *x)
{
    struct kimpl *k = K(x);
    k->fd = sock(x);
    struct sockaddr_storage ss;
    socklen_t sl = sockaddr_of(x, &x->peer, x->peer_port, &ss);
    if (connect(k->fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
        return -errno;
    return 0;
}

static int k_connect_wait(struct dx *x, int timeout_ms)
{
    struct kimpl *k = K(x);
    if (k->conn_err)
        return k->conn_err;
    if (!wait_fd(k->fd, POLLOUT, timeout_ms))
        return -EINPROGRESS;
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &e, &el);
    k->conn_err = -e;
    return -e;
}

static long k_write(struct dx *x, const void *b, size_t n)
{
    ssize_t r = send(K(x)->fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    return r < 0 ? -errno : r;
}

static long k_read(struct dx *x, void *b, size_t n, int timeout_ms)
{
    struct kimpl *k = K(x);
    int ev = wait_fd(k->fd, POLLIN, timeout_ms);
    if (!ev)
        return -EAGAIN;
    ssize_t r = recv(k->fd, b, n, MSG_DONTWAIT);
    return r < 0 ? -errno : r;
}

static int k_shutdown(struct dx *x)
{
    return shutdown(K(x)->fd, SHUT_WR) < 0 ? -errno : 0;
}

static int k_close(struct dx *x)
{
    struct kimpl *k = K(x);
    if (x->opts[DX_O_LINGER0]) {
        struct linger l = {1, 0};
        setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    int r = close(k->fd);
    k->fd = -1;
    return r < 0 ? -errno : 0;
}

static int k_frame_out(struct dx *x, const void *f, size_t n)
{
    (void)x;
    return write(tun_fd, f, n) == (ssize_t)n ? 0 : -errno;
}

static long k_frame_in(struct dx *x, void *buf, size_t cap, int ms)
{
    (void)x;
    ssize_t r = read(tun_fd, buf, cap);
    if (r > 0)
        return r;
    if (!wait_fd(tun_fd, POLLIN, ms))
        return 0;
    r = read(tun_fd, buf, cap);
    return r > 0 ? r : 0;
}

const struct dx_sys dx_kernel = {
    .name = "kernel",
    .begin = k_begin,
    .end = k_end,
    .listen = k_listen,
    .accept = k_accept,
    .connect = k_connect,
    .connect_wait = k_connect_wait,
    .write = k_write,
    .read = k_read,
    .shutdown = k_shutdown,
    .close = k_close,
    .frame_out = k_frame_out,
    .frame_in = k_frame_in,
};
