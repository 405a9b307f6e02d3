/* SPDX-License-Identifier: MIT */
/*
 * Kernel-side TCP servers for the kernel-peer tests (see kserver.h): an
 * accept thread and one handler thread per connection, using the kernel's
 * sockets inside the test's namespace. Criterion-free, like netns.c.
 */
#include "kserver.h"
#include "netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* Servers                                                                */
/* ---------------------------------------------------------------------- */

#define SRV_BUF (256 * 1024)

struct handler_arg {
    struct jkt_server *s;
    int fd;
};

static void srv_note_error(struct jkt_server *s, int err)
{
    pthread_mutex_lock(&s->lock);
    if (s->error == 0)
        s->error = err;
    pthread_mutex_unlock(&s->lock);
}

static void srv_note_mismatch(struct jkt_server *s, uint64_t off)
{
    atomic_fetch_add(&s->mismatches, 1);
    pthread_mutex_lock(&s->lock);
    if (s->first_mismatch == UINT64_MAX || off < s->first_mismatch)
        s->first_mismatch = off;
    pthread_mutex_unlock(&s->lock);
}

static void srv_register(struct jkt_server *s, int fd)
{
    pthread_mutex_lock(&s->lock);
    if (s->nconn_fds == s->cap_conn_fds) {
        size_t nc = s->cap_conn_fds ? s->cap_conn_fds * 2 : 64;
        int *n = realloc(s->conn_fds, nc * sizeof *n);
        if (n) {
            s->conn_fds = n;
            s->cap_conn_fds = nc;
        }
    }
    if (s->nconn_fds < s->cap_conn_fds)
        s->conn_fds[s->nconn_fds++] = fd;
    pthread_mutex_unlock(&s->lock);
}

static void srv_unregister_close(struct jkt_server *s, int fd, bool reset)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nconn_fds; i++) {
        if (s->conn_fds[i] == fd) {
            s->conn_fds[i] = s->conn_fds[--s->nconn_fds];
            break;
        }
    }
    if (reset) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(fd);
    pthread_mutex_unlock(&s->lock);
}

/* Write all of len bytes; 0 or -errno. */
static int srv_write_all(struct jkt_server *s, int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        atomic_fetch_add(&s->bytes_out, (unsigned long)n);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* nbytes of pattern(seed); 0 or -errno. */
static int srv_send_pattern(struct jkt_server *s, int fd, uint8_t *buf, uint64_t nbytes,
                            uint32_t seed)
{
    uint64_t off = 0;
    while (off < nbytes) {
        size_t n = nbytes - off < SRV_BUF ? (size_t)(nbytes - off) : SRV_BUF;
        jkt_pattern_fill(buf, n, off, seed);
        int rc = srv_write_all(s, fd, buf, n);
        if (rc)
            return rc;
        off += n;
    }
    return 0;
}

/* Read exactly len bytes: len, the count read before an EOF, or -1 on an
 * error (not counted: the caller knows what it means). */
static ssize_t srv_read_exact(struct jkt_server *s, int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
        atomic_fetch_add(&s->bytes_in, (unsigned long)n);
    }
    return (ssize_t)got;
}

static uint64_t srv_be(const uint8_t *p, int len)
{
    uint64_t v = 0;
    for (int i = 0; i < len; i++)
        v = v << 8 | p[i];
    return v;
}

/* Read to EOF (1), checking the data against pattern(seed) if verify (the
 * first bad offset in *bad_at, else UINT64_MAX), else checksumming unless
 * count_only; the bytes read in *total. 0 on error (counted). */
static int srv_read_seeded(struct jkt_server *s, int fd, uint8_t *buf, bool echo, bool verify,
                           uint32_t seed, uint64_t *total, uint64_t *bad_at)
{
    uint64_t off = 0;
    *bad_at = UINT64_MAX;
    uint64_t h = 0xcbf29ce484222325ull;
    for (;;) {
        ssize_t n = read(fd, buf, SRV_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            atomic_fetch_add(&s->resets, 1);
            if (errno != ECONNRESET && errno != EPIPE && errno != ENOTCONN && errno != ETIMEDOUT &&
                !atomic_load(&s->stopping))
                srv_note_error(s, errno);
            return 0;
        }
        if (n == 0) {
            atomic_fetch_add(&s->eofs, 1);
            pthread_mutex_lock(&s->lock);
            s->checksum += h;
            pthread_mutex_unlock(&s->lock);
            *total = off;
            return 1;
        }
        atomic_fetch_add(&s->bytes_in, (unsigned long)n);
        if (verify && *bad_at == UINT64_MAX) {
            size_t at = jkt_pattern_check(buf, (size_t)n, off, seed);
            if (at != (size_t)n) {
                *bad_at = off + at;
                srv_note_mismatch(s, off + at);
            }
        } else if (!verify && !s->count_only) {
            for (ssize_t i = 0; i < n; i++) {
                h ^= buf[i];
                h *= 0x100000001b3ull;
            }
        }
        off += (uint64_t)n;
        if (echo) {
            int rc = srv_write_all(s, fd, buf, (size_t)n);
            if (rc) {
                atomic_fetch_add(&s->resets, 1);
                return 0;
            }
        }
    }
}

/* srv_read_seeded with the server's own verify and in_seed. */
static int srv_read_to_eof(struct jkt_server *s, int fd, uint8_t *buf, bool echo)
{
    uint64_t total, bad_at;
    return srv_read_seeded(s, fd, buf, echo, s->verify, s->in_seed, &total, &bad_at);
}

/* JKT_SRV_SINK_VERDICT: seed, data to EOF, the verdict. */
static void srv_sink_verdict(struct jkt_server *s, int fd, uint8_t *buf)
{
    uint64_t total, bad_at;
    if (srv_read_exact(s, fd, buf, 4) != 4) {
        atomic_fetch_add(&s->resets, 1);
        return;
    }
    if (srv_read_seeded(s, fd, buf, false, true, (uint32_t)srv_be(buf, 4), &total, &bad_at) != 1)
        return;
    char verdict[64];
    int len = bad_at == UINT64_MAX
                  ? snprintf(verdict, sizeof verdict, "OK %llu\n", (unsigned long long)total)
                  : snprintf(verdict, sizeof verdict, "BAD %llu\n", (unsigned long long)bad_at);
    if (srv_write_all(s, fd, (const uint8_t *)verdict, (size_t)len) != 0)
        atomic_fetch_add(&s->resets, 1);
}

static void *srv_handler(void *arg)
{
    struct handler_arg ha = *(struct handler_arg *)arg;
    free(arg);
    struct jkt_server *s = ha.s;
    int fd = ha.fd;
    bool reset = false;
    uint8_t *buf = malloc(SRV_BUF);
    if (!buf) {
        srv_note_error(s, ENOMEM);
        goto out;
    }
    switch (s->kind) {
    case JKT_SRV_ECHO:
        srv_read_to_eof(s, fd, buf, true);
        break;
    case JKT_SRV_SINK:
        srv_read_to_eof(s, fd, buf, false);
        break;
    case JKT_SRV_SOURCE:
        if (srv_send_pattern(s, fd, buf, s->nbytes, s->seed) != 0)
            atomic_fetch_add(&s->resets, 1);
        break;
    case JKT_SRV_SINK_VERDICT:
        srv_sink_verdict(s, fd, buf);
        break;
    case JKT_SRV_SOURCE_ASKED: {
        uint8_t ask[12];
        if (srv_read_exact(s, fd, ask, sizeof ask) != (ssize_t)sizeof ask ||
            srv_send_pattern(s, fd, buf, srv_be(ask + 4, 8), (uint32_t)srv_be(ask, 4)) != 0)
            atomic_fetch_add(&s->resets, 1);
        break;
    }
    case JKT_SRV_RESET: {
        uint64_t got = 0;
        while (got < s->reset_after) {
            ssize_t n = read(fd, buf, (size_t)(s->reset_after - got < SRV_BUF ? s->reset_after - got
                                                                             : SRV_BUF));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            atomic_fetch_add(&s->bytes_in, (unsigned long)n);
            got += (uint64_t)n;
        }
        reset = true;
        break;
    }
    case JKT_SRV_HALFCLOSE:
        if (srv_send_pattern(s, fd, buf, s->nbytes, s->seed) != 0) {
            atomic_fetch_add(&s->resets, 1);
            break;
        }
        if (shutdown(fd, SHUT_WR) != 0)
            srv_note_error(s, errno);
        srv_read_to_eof(s, fd, buf, false);
        break;
    case JKT_SRV_DRAIN_SEND:
        if (srv_read_to_eof(s, fd, buf, false) == 1) {
            if (srv_send_pattern(s, fd, buf, s->nbytes, s->seed) != 0)
                atomic_fetch_add(&s->resets, 1);
        }
        break;
    case JKT_SRV_RR: {
        size_t req = s->req_size ? s->req_size : 1;
        size_t rep = s->nbytes ? (size_t)s->nbytes : 1;
        size_t tail = rep / 2 < 100 ? rep / 2 : 100;
        if (req > SRV_BUF || rep > SRV_BUF) {
            srv_note_error(s, EINVAL);
            break;
        }
        for (;;) {
            ssize_t got = srv_read_exact(s, fd, buf, req);
            if (got != (ssize_t)req) {
                atomic_fetch_add(got == 0 ? &s->eofs : &s->resets, 1);
                goto rr_done;
            }
            jkt_pattern_fill(buf, rep, 0, s->seed);
            if (srv_write_all(s, fd, buf, rep - tail) != 0 ||
                (tail && srv_write_all(s, fd, buf + rep - tail, tail) != 0)) {
                atomic_fetch_add(&s->resets, 1);
                break;
            }
        }
    rr_done:
        break;
    }
    case JKT_SRV_NOREAD: {
        struct pollfd p = {.fd = s->stopfd, .events = POLLIN};
        while (!atomic_load(&s->stopping))
            poll(&p, 1, 100);
        break;
    }
    default:
        break;
    }
out:
    free(buf);
    srv_unregister_close(s, fd, reset);
    struct timespec cpu;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0) /* before `done`: wait_done sees it */
        atomic_fetch_add(&s->cpu_ns, (unsigned long)cpu.tv_sec * 1000000000ul + (unsigned long)cpu.tv_nsec);
    atomic_fetch_add(&s->done, 1);
    atomic_fetch_sub(&s->handlers, 1);
    return NULL;
}

static void *srv_accept_loop(void *arg)
{
    struct jkt_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->stopfd, .events = POLLIN}};
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (atomic_load(&s->stopping) || (p[1].revents & POLLIN))
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
                continue;
            srv_note_error(s, errno);
            break;
        }
        atomic_fetch_add(&s->accepted, 1);
        if (s->rcvbuf > 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &s->rcvbuf, sizeof s->rcvbuf);
        if (s->user_timeout_ms)
            setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &s->user_timeout_ms,
                       sizeof s->user_timeout_ms);
        /* before the handler runs: a SOURCE's first byte goes out under it */
        if (s->cc && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, s->cc, (socklen_t)strlen(s->cc)) != 0)
            srv_note_error(s, errno);
        srv_register(s, fd);
        struct handler_arg *ha = malloc(sizeof *ha);
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 256 * 1024);
        atomic_fetch_add(&s->handlers, 1);
        if (!ha || (ha->s = s, ha->fd = fd, pthread_create(&th, &at, srv_handler, ha)) != 0) {
            free(ha);
            atomic_fetch_sub(&s->handlers, 1);
            srv_note_error(s, EAGAIN);
            srv_unregister_close(s, fd, false);
            atomic_fetch_add(&s->done, 1);
        }
        pthread_attr_destroy(&at);
    }
    return NULL;
}

int jkt_server_start(struct jkt_server *s)
{
    s->lfd = s->stopfd = -1;
    s->first_mismatch = UINT64_MAX;
    s->error = 0;
    s->checksum = 0;
    s->conn_fds = NULL;
    s->nconn_fds = s->cap_conn_fds = 0;
    s->running = false;
    atomic_store(&s->stopping, false);
    atomic_store(&s->handlers, 0);
    atomic_store(&s->accepted, 0);
    atomic_store(&s->done, 0);
    atomic_store(&s->eofs, 0);
    atomic_store(&s->resets, 0);
    atomic_store(&s->bytes_in, 0);
    atomic_store(&s->bytes_out, 0);
    atomic_store(&s->mismatches, 0);
    pthread_mutex_init(&s->lock, NULL);

    int fam = s->family == AF_INET6 ? AF_INET6 : AF_INET;
    int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s->rcvbuf > 0) /* inherited by accepted sockets; must precede listen for wscale */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &s->rcvbuf, sizeof s->rcvbuf);
    if (fam == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_storage ss;
    socklen_t sl = jkt_sockaddr(fam, jkt_kernel_ip(fam), s->port, &ss);
    int rc = bind(fd, (struct sockaddr *)&ss, sl);
    if (rc == 0)
        rc = listen(fd, s->backlog > 0 ? s->backlog : 1024);
    if (rc == 0)
        rc = getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (rc != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    s->port = ntohs(fam == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                    : ((struct sockaddr_in *)&ss)->sin_port);
    s->lfd = fd;
    s->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->stopfd < 0) {
        rc = -errno;
        close(fd);
        s->lfd = -1;
        return rc;
    }
    rc = pthread_create(&s->thread, NULL, srv_accept_loop, s);
    if (rc != 0) {
        close(s->stopfd);
        close(fd);
        s->lfd = s->stopfd = -1;
        return -rc;
    }
    s->running = true;
    return 0;
}

int jkt_server_wait_done(struct jkt_server *s, unsigned long n, int timeout_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000u;
    while (atomic_load(&s->done) < n) {
        if (timeout_ms >= 0 && jkt_now_us() >= end)
            return -EAGAIN;
        jkt_sleep_ms(1);
    }
    return 0;
}

void jkt_server_stop(struct jkt_server *s)
{
    if (!s->running)
        return;
    atomic_store(&s->stopping, true);
    uint64_t one = 1;
    if (write(s->stopfd, &one, sizeof one) < 0) {
    }
    pthread_join(s->thread, NULL);
    close(s->lfd);
    s->lfd = -1;
    /* Unblock handlers, then wait for them (they are detached). */
    for (int i = 0; i < 5000 && atomic_load(&s->handlers) > 0; i++) {
        pthread_mutex_lock(&s->lock);
        for (size_t k = 0; k < s->nconn_fds; k++)
            shutdown(s->conn_fds[k], SHUT_RDWR);
        pthread_mutex_unlock(&s->lock);
        jkt_sleep_ms(1);
    }
    close(s->stopfd);
    s->stopfd = -1;
    free(s->conn_fds);
    s->conn_fds = NULL;
    s->nconn_fds = s->cap_conn_fds = 0;
    s->running = false;
}

void jkt_server_describe(const struct jkt_server *cs, char *buf, size_t cap)
{
    struct jkt_server *s = (struct jkt_server *)cs; /* only to take the lock */
    pthread_mutex_lock(&s->lock);
    snprintf(buf, cap,
             "server port %u: accepted %lu done %lu eofs %lu resets %lu in %lu out %lu "
             "mismatches %lu (first at %lld) error %d",
             s->port, (unsigned long)atomic_load(&s->accepted),
             (unsigned long)atomic_load(&s->done), (unsigned long)atomic_load(&s->eofs),
             (unsigned long)atomic_load(&s->resets), (unsigned long)atomic_load(&s->bytes_in),
             (unsigned long)atomic_load(&s->bytes_out), (unsigned long)atomic_load(&s->mismatches),
             s->first_mismatch == UINT64_MAX ? -1LL : (long long)s->first_mismatch, s->error);
    pthread_mutex_unlock(&s->lock);
}
