/* SPDX-License-Identifier: MIT */
/*
 * TUN <-> Unix socket bridge (see bridge.h): two threads carrying frames
 * between a TUN fd and one end of a socketpair, optionally lossy.
 */
#include "bridge.h"

#include <fcntl.h>
#include <sched.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* Stream bridge                                                          */
/* ---------------------------------------------------------------------- */

#define BR_BUF (512 * 1024)
#define BR_MAX_FRAME 65575u

static void br_fail(struct jkt_bridge *b, int err)
{
    int zero = 0;
    atomic_compare_exchange_strong(&b->error, &zero, err);
}

/* Wait until fd is ready for events or stop; 1 ready, 0 stop. */
static int br_wait(struct jkt_bridge *b, int fd, short events)
{
    for (;;) {
        if (atomic_load(&b->stopping))
            return 0;
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = b->stopfd, .events = POLLIN}};
        int r = poll(p, 2, 200);
        if (r < 0 && errno != EINTR)
            return 0;
        if (p[1].revents & POLLIN)
            return 0;
        if (p[0].revents)
            return 1;
    }
}

/* Write all to the (non-blocking) socket; 0 ok, -1 stop/failure. */
static int br_sock_write(struct jkt_bridge *b, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(b->sock, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!br_wait(b, b->sock, POLLOUT))
                    return -1;
                continue;
            }
            if (errno != EPIPE && errno != ECONNRESET)
                br_fail(b, -errno);
            return -1;
        }
        atomic_fetch_add(&b->bytes_to_sock, (unsigned long)n);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static uint32_t br_rand(uint32_t *st)
{
    uint32_t x = *st;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *st = x ? x : 0x12345678u;
}

/* TUN -> socket */
static void *br_up(void *arg)
{
    struct jkt_bridge *b = arg;
    uint8_t *buf = malloc(BR_BUF);
    uint32_t rs = b->seed ? b->seed : 1;
    if (!buf) {
        br_fail(b, -ENOMEM);
        return NULL;
    }
    bool seqpacket = (b->flags & JKT_BRIDGE_SEQPACKET) != 0;
    bool random_chunks = !seqpacket && (b->flags & JKT_BRIDGE_RANDOM_CHUNKS) != 0;
    bool more = false; /* the last read got a frame: try the next before polling */
    for (;;) {
        if (atomic_load(&b->stopping) || (!more && !br_wait(b, b->tunfd, POLLIN)))
            break;
        more = false;
        size_t used = 0;
        unsigned frames = 0;
        /* One frame, or (random mode) a random number of queued frames. */
        unsigned want = random_chunks ? 1 + br_rand(&rs) % 16 : 1;
        while (frames < want && BR_BUF - used >= BR_MAX_FRAME) {
            ssize_t n = read(b->tunfd, buf + used, BR_BUF - used);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN)
                    br_fail(b, -errno);
                break;
            }
            if (n == 0)
                break;
            if (b->loss_permille && br_rand(&rs) % 1000 < b->loss_permille) {
                atomic_fetch_add(&b->dropped_up, 1);
                continue;
            }
            used += (size_t)n;
            frames++;
        }
        if (used == 0)
            continue;
        more = true;
        atomic_fetch_add(&b->frames_to_sock, frames);
        if (!random_chunks) {
            if (br_sock_write(b, buf, used) != 0)
                break;
            continue;
        }
        size_t off = 0;
        bool stop = false;
        while (off < used) {
            uint32_t r = br_rand(&rs);
            size_t piece;
            switch (r % 4) {
            case 0: piece = 1 + (r >> 8) % 8; break;       /* tiny: split headers */
            case 1: piece = 1 + (r >> 8) % 1500; break;
            case 2: piece = 1 + (r >> 8) % 20000; break;
            default: piece = used - off; break;             /* the rest at once */
            }
            if (piece > used - off)
                piece = used - off;
            if (br_sock_write(b, buf + off, piece) != 0) {
                stop = true;
                break;
            }
            off += piece;
            if ((r & 3) == 0)
                sched_yield(); /* let the reader see the split */
        }
        if (stop)
            break;
    }
    free(buf);
    return NULL;
}

/* socket -> TUN, one frame per write */
static void *br_down(void *arg)
{
    struct jkt_bridge *b = arg;
    uint8_t *buf = malloc(BR_BUF);
    if (!buf) {
        br_fail(b, -ENOMEM);
        return NULL;
    }
    size_t head = 0, tail = 0;
    uint32_t rs = (b->seed ? b->seed : 1) * 2654435761u;
    if (!rs)
        rs = 7;
    if (b->flags & JKT_BRIDGE_SEQPACKET) {
        for (;;) {
            if (!br_wait(b, b->sock, POLLIN))
                break;
            ssize_t n = read(b->sock, buf, BR_BUF);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                if (errno != ECONNRESET)
                    br_fail(b, -errno);
                break;
            }
            if (n == 0)
                break;
            if (b->loss_permille && br_rand(&rs) % 1000 < b->loss_permille) {
                atomic_fetch_add(&b->dropped_down, 1);
                continue;
            }
            ssize_t w;
            do
                w = write(b->tunfd, buf, (size_t)n);
            while (w < 0 && errno == EINTR);
            if (w < 0 && errno != EINVAL && errno != EIO && errno != EAGAIN)
                br_fail(b, -errno);
            atomic_fetch_add(&b->frames_to_tun, 1);
            atomic_fetch_add(&b->bytes_to_tun, (unsigned long)n);
        }
        goto out;
    }
    for (;;) {
        /* Hand out every complete frame. */
        for (;;) {
            size_t have = tail - head;
            if (have < 1)
                break;
            uint8_t *f = buf + head;
            unsigned ver = f[0] >> 4;
            size_t flen;
            if (ver == 4) {
                if (have < 4)
                    break;
                flen = (size_t)f[2] << 8 | f[3];
                if (flen < 20 || (f[0] & 0x0f) < 5) {
                    br_fail(b, -EPROTO);
                    goto out;
                }
            } else if (ver == 6) {
                if (have < 6)
                    break;
                flen = 40 + ((size_t)f[4] << 8 | f[5]);
            } else {
                br_fail(b, -EPROTO);
                goto out;
            }
            if (have < flen)
                break;
            if (b->loss_permille && br_rand(&rs) % 1000 < b->loss_permille) {
                atomic_fetch_add(&b->dropped_down, 1);
                head += flen;
                continue;
            }
            ssize_t n;
            do
                n = write(b->tunfd, f, flen);
            while (n < 0 && errno == EINTR);
            if (n < 0 && errno != EINVAL && errno != EIO && errno != EAGAIN)
                br_fail(b, -errno);
            atomic_fetch_add(&b->frames_to_tun, 1);
            atomic_fetch_add(&b->bytes_to_tun, (unsigned long)flen);
            head += flen;
        }
        if (head == tail) {
            head = tail = 0;
        } else if (BR_BUF - tail < BR_MAX_FRAME) {
            memmove(buf, buf + head, tail - head);
            tail -= head;
            head = 0;
        }
        if (!br_wait(b, b->sock, POLLIN))
            break;
        ssize_t n = read(b->sock, buf + tail, BR_BUF - tail);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            if (errno != ECONNRESET)
                br_fail(b, -errno);
            break;
        }
        if (n == 0)
            break; /* jktcp side closed */
        tail += (size_t)n;
    }
out:
    free(buf);
    return NULL;
}

int jkt_bridge_start(struct jkt_bridge *b, int tunfd, unsigned flags, uint32_t seed)
{
    return jkt_bridge_start_lossy(b, tunfd, flags, seed, 0);
}

int jkt_bridge_start_lossy(struct jkt_bridge *b, int tunfd, unsigned flags, uint32_t seed,
                           unsigned loss_permille)
{
    memset(b, 0, sizeof *b);
    b->tunfd = tunfd;
    b->flags = flags;
    b->seed = seed;
    b->loss_permille = loss_permille;
    int sv[2];
    int type = (flags & JKT_BRIDGE_SEQPACKET) ? SOCK_SEQPACKET : SOCK_STREAM;
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    b->sock = sv[0];
    b->user_fd = sv[1];
    /* Room for a few MiB of frames in each direction (SO_SNDBUFFORCE as
     * root; otherwise capped by net.core.wmem_max). */
    int sz = getenv("JKT_BR_SNDBUF") ? atoi(getenv("JKT_BR_SNDBUF")) : 8 << 20;
    for (int i = 0; i < 2; i++)
        if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) != 0)
            setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    fcntl(b->sock, F_SETFL, fcntl(b->sock, F_GETFL) | O_NONBLOCK);
    fcntl(tunfd, F_SETFL, fcntl(tunfd, F_GETFL) | O_NONBLOCK);
    b->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->stopfd < 0) {
        int e = -errno;
        close(sv[0]);
        close(sv[1]);
        return e;
    }
    int rc = pthread_create(&b->th_up, NULL, br_up, b);
    if (rc == 0) {
        rc = pthread_create(&b->th_down, NULL, br_down, b);
        if (rc != 0) {
            atomic_store(&b->stopping, true);
            uint64_t one = 1;
            if (write(b->stopfd, &one, sizeof one) < 0) {
            }
            pthread_join(b->th_up, NULL);
        }
    }
    if (rc != 0) {
        close(sv[0]);
        close(sv[1]);
        close(b->stopfd);
        return -rc;
    }
    b->running = true;
    return 0;
}

void jkt_bridge_stop(struct jkt_bridge *b)
{
    if (!b->running)
        return;
    atomic_store(&b->stopping, true);
    uint64_t one = 1;
    if (write(b->stopfd, &one, sizeof one) < 0) {
    }
    pthread_join(b->th_up, NULL);
    pthread_join(b->th_down, NULL);
    close(b->sock);
    close(b->user_fd);
    close(b->stopfd);
    b->sock = b->user_fd = b->stopfd = -1;
    b->running = false;
}
