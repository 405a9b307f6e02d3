/* SPDX-License-Identifier: MIT */
/* The back-to-back link of the test rigs (see b2blink.h). */
#include "b2blink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t flaky_read(void *ctx, void *buf, size_t len)
{
    struct b2b_link_flaky *f = ctx;
    int e = atomic_load(&f->rerr);
    if (e)
        return e;
    ssize_t n = read(f->fd, buf, len);
    return n < 0 ? -errno : n;
}

static ssize_t flaky_write(void *ctx, const void *buf, size_t len)
{
    struct b2b_link_flaky *f = ctx;
    int e = atomic_load(&f->werr);
    if (e)
        return e;
    ssize_t n = send(f->fd, buf, len, MSG_NOSIGNAL);
    return n < 0 ? -errno : n;
}

/* The end's own transport on the medium: its port's, its socket's, or its
 * socket's through the flaky functions. */
static int end_medium(const struct b2b_link *l, struct b2b_link_end *e,
                      const struct b2b_link_end_opts *o, jktcp_transport **t)
{
    if (l->medium == B2B_LINK_PORTS) {
        if (o->flaky)
            return -EINVAL;
        int r = jktcp_port_new(0, &e->port);
        return r ? r : jktcp_port_transport(e->port, t);
    }
    if (!o->flaky)
        return jktcp_transport_fd(e->fd, JKTCP_FRAMING_PACKET, t);
    o->flaky->fd = e->fd;
    int fl = fcntl(e->fd, F_GETFL);
    if (fl < 0 || fcntl(e->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    jktcp_io_ops ops = {.read = flaky_read, .write = flaky_write, .poll_fd = e->fd};
    return jktcp_transport_ops(&ops, sizeof ops, o->flaky, JKTCP_FRAMING_PACKET, t);
}

static int end_up(const struct b2b_link *l, struct b2b_link_end *e,
                  const struct b2b_link_end_opts *o, const char *local, const char *peer)
{
    jktcp_transport *t = NULL;
    int r = end_medium(l, e, o, &t);
    if (r)
        return r;
    if (o->faults) {
        r = jktcp_transport_faulty(t, o->faults, sizeof *o->faults, &e->ft); /* takes t */
        if (r) {
            e->ft = NULL;
            return r;
        }
        t = e->ft;
    }
    r = jktcp_adapter_new(t, local, peer, &e->ad); /* takes t, also on failure */
    if (r) {
        e->ad = NULL;
        e->ft = NULL;
        return r;
    }
    return o->pcap ? jktcp_adapter_pcap(e->ad, o->pcap) : 0;
}

/* Both ends' sockets, with the buffers of a full window in flight. */
static int socketpair_up(struct b2b_link *l)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0)
        return -errno;
    int sz = 4 << 20;
    for (int i = 0; i < 2; i++) { /* best effort: needs CAP_NET_ADMIN */
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
    }
    l->b.fd = sv[0];
    l->a.fd = sv[1];
    return 0;
}

int b2b_link_up(struct b2b_link *l, const struct b2b_link_opts *o)
{
    memset(l, 0, sizeof *l);
    l->a.fd = l->b.fd = -1;
    int r;
    if (o->medium == B2B_LINK_SOCKETPAIR) {
        r = socketpair_up(l);
    } else if (o->medium == B2B_LINK_PORTS) {
        l->buf = malloc(B2B_LINK_FRAME_MAX);
        r = l->buf ? 0 : -ENOMEM;
    } else {
        return -EINVAL;
    }
    l->medium = o->medium;
    if (!r)
        r = end_up(l, &l->b, &o->b, B2B_SERVER_IP, B2B_CLIENT_IP);
    if (!r)
        r = end_up(l, &l->a, &o->a, B2B_CLIENT_IP, B2B_SERVER_IP);
    if (r)
        b2b_link_down(l);
    return r;
}

jktcp_adapter *b2b_link_take(struct b2b_link_end *e)
{
    jktcp_adapter *a = e->ad;
    e->ad = NULL;
    return a;
}

bool b2b_link_carry(struct b2b_link *l, bool a_to_b, bool drop)
{
    jktcp_port *from = a_to_b ? l->a.port : l->b.port, *to = a_to_b ? l->b.port : l->a.port;
    bool moved = false;
    ssize_t n;
    while ((n = jktcp_port_pull(from, l->buf, B2B_LINK_FRAME_MAX, 0)) > 0) {
        if (!drop)
            jktcp_port_push(to, l->buf, (size_t)n);
        moved = true;
    }
    return moved;
}

void b2b_link_down(struct b2b_link *l)
{
    if (!l->medium)
        return;
    struct b2b_link_end *ends[2] = {&l->a, &l->b};
    for (int i = 0; i < 2; i++) {
        if (ends[i]->ad)
            jktcp_adapter_free(ends[i]->ad);
        ends[i]->ad = NULL;
        ends[i]->ft = NULL;
    }
    for (int i = 0; i < 2; i++) {
        if (ends[i]->port)
            jktcp_port_free(ends[i]->port);
        ends[i]->port = NULL;
        if (ends[i]->fd >= 0)
            close(ends[i]->fd);
        ends[i]->fd = -1;
    }
    free(l->buf);
    l->buf = NULL;
    l->medium = 0;
}
