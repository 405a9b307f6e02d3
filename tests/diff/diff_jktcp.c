/* SPDX-License-Identifier: MIT */
/*
 * jktcp as a system under test: a handle over one end of a SOCK_SEQPACKET
 * socketpair (packet framing), the peer's frames on the other end, its
 * application a stream. Started on first use, so that the scenario's
 * options (adapter options) come first.
 */
#include "diff_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct jimpl {
    int sv[2];
    jktcp_adapter *a;
    jktcp_handle h;
    jktcp_listener l;
    jktcp_stream s;
    bool started;
};

static struct jimpl *J(struct dx *x) { return x->impl; }

static void addr_text(const struct jk_addr *a, char *buf, size_t cap)
{
    inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->a, buf, (socklen_t)cap);
}

static void opt(struct dx *x, jktcp_option o, long v)
{
    if (jktcp_adapter_set_option(J(x)->a, o, v) < 0)
        dx_fail(x, "jktcp option %d = %ld refused", (int)o, v);
}

/* The scenario's options, then the I/O thread. */
static void started(struct dx *x)
{
    struct jimpl *j = J(x);
    if (j->started)
        return;
    j->started = true;
    opt(x, JKTCP_OPT_NODELAY, x->opts[DX_O_NAGLE] ? 0 : 1);
    if (x->opts[DX_O_RCVBUF])
        opt(x, JKTCP_OPT_RCVBUF, x->opts[DX_O_RCVBUF]);
    if (x->opts[DX_O_KEEPALIVE])
        opt(x, JKTCP_OPT_KEEPALIVE_MS, x->opts[DX_O_KEEPALIVE] * 1000);
    if (x->opts[DX_O_RETRIES])
        opt(x, JKTCP_OPT_MAX_RETRIES, x->opts[DX_O_RETRIES]);
    if (x->opts[DX_O_SYN_RETRIES])
        opt(x, JKTCP_OPT_MAX_RETRIES, x->opts[DX_O_SYN_RETRIES]);
    if (x->jk_no_sack)
        opt(x, JKTCP_OPT_SACK, 0);
    if (x->jk_no_ts)
        opt(x, JKTCP_OPT_TIMESTAMPS, 0);
    int rc = jktcp_handle_start(j->a, &j->h);
    if (rc)
        dx_fail(x, "jktcp_handle_start: %s", jktcp_strerror(rc));
    j->a = NULL;
}

static int j_begin(struct dx *x)
{
    struct jimpl *j = calloc(1, sizeof *j);
    x->impl = j;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, j->sv) < 0)
        return -errno;
    jktcp_transport *t = NULL;
    int rc = jktcp_transport_fd(j->sv[0], JKTCP_FRAMING_PACKET, &t);
    if (!rc)
        rc = jktcp_transport_set_flags(t, JKTCP_TRANSPORT_CLOSE_FD);
    char sut[64], peer[64];
    addr_text(&x->sut, sut, sizeof sut);
    addr_text(&x->peer, peer, sizeof peer);
    if (!rc)
        rc = jktcp_adapter_new(t, sut, peer, &j->a);
    return rc;
}

static void j_end(struct dx *x)
{
    struct jimpl *j = J(x);
    if (j->s.id)
        jktcp_stream_abort(j->s);
    if (j->l.id)
        jktcp_listener_close(j->l);
    if (j->h.id)
        jktcp_handle_close(j->h, 0);
    if (j->a)
        jktcp_adapter_free(j->a);
    close(j->sv[1]);
    free(j);
    x->impl = NULL;
}

static int j_listen(struct dx *x, int backlog)
{
    started(x);
    return jktcp_handle_listen(J(x)->h, x->sut_port, backlog, &J(x)->l);
}

static int j_accept(struct dx *x, int timeout_ms)
{
    started(x);
    return jktcp_listener_accept(J(x)->l, timeout_ms, &J(x)->s);
}

static int j_connect(struct dx *x)
{
    started(x);
    int r = jktcp_handle_connect(J(x)->h, x->peer_port, 0, &J(x)->s);
    return r == -EINPROGRESS ? 0 : r;
}

static int j_connect_wait(struct dx *x, int timeout_ms)
{
    struct jimpl *j = J(x);
    int fd = jktcp_stream_poll_fd(j->s, JKTCP_POLL_WRITE);
    if (fd < 0)
        return fd;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
        return -EINPROGRESS;
    return jktcp_stream_error(j->s);
}

static long j_write(struct dx *x, const void *b, size_t n)
{
    return jktcp_stream_write(J(x)->s, b, n, 0);
}

static long j_read(struct dx *x, void *b, size_t n, int timeout_ms)
{
    return jktcp_stream_read(J(x)->s, b, n, timeout_ms);
}

static int j_shutdown(struct dx *x)
{
    return jktcp_stream_shutdown(J(x)->s);
}

static int j_close(struct dx *x)
{
    struct jimpl *j = J(x);
    int r = x->opts[DX_O_LINGER0] ? jktcp_stream_abort(j->s) : jktcp_stream_close(j->s);
    j->s.id = 0;
    return r;
}

static int j_frame_out(struct dx *x, const void *f, size_t n)
{
    started(x);
    return send(J(x)->sv[1], f, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -errno;
}

static long j_frame_in(struct dx *x, void *buf, size_t cap, int ms)
{
    started(x);
    struct pollfd p = {J(x)->sv[1], POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return 0;
    ssize_t r = recv(J(x)->sv[1], buf, cap, MSG_DONTWAIT);
    return r > 0 ? r : 0;
}

const struct dx_sys dx_jktcp = {
    .name = "jktcp",
    .begin = j_begin,
    .end = j_end,
    .listen = j_listen,
    .accept = j_accept,
    .connect = j_connect,
    .connect_wait = j_connect_wait,
    .write = j_write,
    .read = j_read,
    .shutdown = j_shutdown,
    .close = j_close,
    .frame_out = j_frame_out,
    .frame_in = j_frame_in,
};
