/* SPDX-License-Identifier: MIT */
/*
 * Kernel-peer harness (see netns.h). Linux only; needs root (or
 * CAP_NET_ADMIN in a user namespace) for unshare(CLONE_NEWNET) and TUN.
 */
#include "netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *jkt_kernel_ip(int family)
{
    return family == AF_INET6 ? JKT_KERNEL_IP6 : JKT_KERNEL_IP4;
}

const char *jkt_local_ip(int family)
{
    return family == AF_INET6 ? JKT_LOCAL_IP6 : JKT_LOCAL_IP4;
}

uint64_t jkt_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

double jkt_now_s(void)
{
    return (double)jkt_now_us() / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---------------------------------------------------------------------- */
/* Commands                                                               */
/* ---------------------------------------------------------------------- */

int jkt_run(char *const argv[], char *out, size_t cap)
{
    int pfd[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out && cap > 0) {
        if (pipe2(pfd, O_CLOEXEC) != 0) {
            int e = errno;
            posix_spawn_file_actions_destroy(&fa);
            return -e;
        }
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (pfd[1] >= 0)
        close(pfd[1]);
    if (rc != 0) {
        if (pfd[0] >= 0)
            close(pfd[0]);
        return -rc;
    }
    if (pfd[0] >= 0) {
        size_t used = 0;
        char sink[4096];
        for (;;) {
            ssize_t n;
            if (used + 1 < cap)
                n = read(pfd[0], out + used, cap - 1 - used);
            else
                n = read(pfd[0], sink, sizeof sink); /* drain, drop */
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            if (used + 1 < cap)
                used += (size_t)n;
        }
        out[used] = 0;
        close(pfd[0]);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return -ECHILD;
}

int jkt_sh(const char *cmd, char *out, size_t cap)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    return jkt_run(argv, out, cap);
}

bool jkt_have_program(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    char buf[512];
    const char *p = path;
    while (*p) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0 && n + strlen(name) + 2 < sizeof buf) {
            memcpy(buf, p, n);
            buf[n] = '/';
            strcpy(buf + n + 1, name);
            if (access(buf, X_OK) == 0)
                return true;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

static int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int e = n < 0 ? -errno : 0;
    close(fd);
    return e;
}

/* ---------------------------------------------------------------------- */
/* Namespace and TUN                                                      */
/* ---------------------------------------------------------------------- */

static int set_if_flags(const char *name, short set)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    int rc = 0;
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
        rc = -errno;
    } else {
        ifr.ifr_flags |= set;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
            rc = -errno;
    }
    close(fd);
    return rc;
}

static void quiet_ipv6(const char *dev, bool enable)
{
    static const char *const keys[][2] = {
        {"accept_dad", "0"},  {"dad_transmits", "0"}, {"router_solicitations", "0"},
        {"accept_ra", "0"},   {"autoconf", "0"},
    };
    char path[128];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/%s", dev, keys[i][0]);
        (void)write_text(path, keys[i][1]);
    }
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", dev);
    (void)write_text(path, enable ? "0" : "1");
}

int jkt_netns_enter(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (unshare(CLONE_NEWNET) != 0)
        return -errno;
    /* /proc/sys/net shows the namespace of the thread that opens it. */
    quiet_ipv6("default", true);
    quiet_ipv6("all", true);
    return set_if_flags("lo", IFF_UP);
}

static int wait_addr_usable(int family, int timeout_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)timeout_ms * 1000u;
    int last = 0;
    for (;;) {
        int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        int rc;
        if (family == AF_INET6) {
            struct sockaddr_in6 a = {.sin6_family = AF_INET6};
            inet_pton(AF_INET6, JKT_KERNEL_IP6, &a.sin6_addr);
            rc = bind(fd, (struct sockaddr *)&a, sizeof a);
            if (rc == 0) {
                inet_pton(AF_INET6, JKT_LOCAL_IP6, &a.sin6_addr);
                a.sin6_port = htons(9);
                rc = connect(fd, (struct sockaddr *)&a, sizeof a);
            }
        } else {
            struct sockaddr_in a = {.sin_family = AF_INET};
            inet_pton(AF_INET, JKT_KERNEL_IP4, &a.sin_addr);
            rc = bind(fd, (struct sockaddr *)&a, sizeof a);
            if (rc == 0) {
                inet_pton(AF_INET, JKT_LOCAL_IP4, &a.sin_addr);
                a.sin_port = htons(9);
                rc = connect(fd, (struct sockaddr *)&a, sizeof a);
            }
        }
        last = rc == 0 ? 0 : -errno;
        close(fd);
        if (rc == 0) {
            /* bind() works as soon as the address exists, but the kernel
             * inserts its local route (needed to accept packets addressed
             * to it) from a workqueue afterwards: until then incoming
             * IPv6 frames are dropped as InAddrErrors. Wait for it. */
            char out[4096];
            char *argv[] = {"ip", family == AF_INET6 ? "-6" : "-4", "route", "show", "table",
                            "local", NULL};
            int st = jkt_run(argv, out, sizeof out);
            const char *want = family == AF_INET6 ? "local " JKT_KERNEL_IP6 " "
                                                  : "local " JKT_KERNEL_IP4 " ";
            if (st == 0 && strstr(out, want))
                return 0;
            last = st < 0 ? st : -EADDRNOTAVAIL;
        }
        if (jkt_now_us() >= end)
            return last;
        sleep_ms(5);
    }
}

int jkt_tun_open(const char *name, unsigned mtu, int family_flags, struct jkt_tun *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (!name)
        name = "jkt0";
    if (family_flags == 0)
        family_flags = JKT_FAM_IPV4 | JKT_FAM_IPV6;
    if (strlen(name) >= IFNAMSIZ)
        return -EINVAL;

    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    snprintf(out->name, sizeof out->name, "%s", ifr.ifr_name);
    out->fd = fd;
    out->mtu = mtu;
    out->ifindex = (int)if_nametoindex(out->name);

    int rc = 0;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        rc = -errno;
        goto fail;
    }
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", out->name);
    ifr.ifr_mtu = (int)mtu;
    if (ioctl(s, SIOCSIFMTU, &ifr) != 0)
        rc = -errno;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", out->name);
    ifr.ifr_qlen = 1000;
    (void)ioctl(s, SIOCSIFTXQLEN, &ifr);
    close(s);
    if (rc)
        goto fail;

    quiet_ipv6(out->name, (family_flags & JKT_FAM_IPV6) != 0);

    if (family_flags & JKT_FAM_IPV4) {
        char *argv[] = {"ip", "addr", "add", JKT_KERNEL_IP4 "/24", "dev", out->name, NULL};
        int st = jkt_run(argv, NULL, 0);
        if (st != 0) {
            rc = st < 0 ? st : -EIO;
            goto fail;
        }
    }
    if (family_flags & JKT_FAM_IPV6) {
        char *argv[] = {"ip",       "-6", "addr",  "add", JKT_KERNEL_IP6 "/64",
                        "dev",      out->name,     "nodad", NULL};
        int st = jkt_run(argv, NULL, 0);
        if (st != 0) {
            rc = st < 0 ? st : -EIO;
            goto fail;
        }
    }
    rc = set_if_flags(out->name, IFF_UP);
    if (rc)
        goto fail;
    if (family_flags & JKT_FAM_IPV4) {
        rc = wait_addr_usable(AF_INET, 3000);
        if (rc)
            goto fail;
    }
    if (family_flags & JKT_FAM_IPV6) {
        rc = wait_addr_usable(AF_INET6, 3000);
        if (rc)
            goto fail;
    }
    return 0;
fail:
    close(out->fd);
    out->fd = -1;
    return rc;
}

void jkt_tun_close(struct jkt_tun *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

/* ---------------------------------------------------------------------- */
/* Pattern                                                                */
/* ---------------------------------------------------------------------- */

static inline uint64_t pat_word(uint64_t w, uint32_t seed)
{
    uint64_t x = w * 0x9E3779B97F4A7C15ull + ((uint64_t)seed << 32 | (uint64_t)(seed ^ 0xA5A5A5A5u));
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

uint8_t jkt_pattern_byte(uint64_t i, uint32_t seed)
{
    return (uint8_t)(pat_word(i >> 3, seed) >> ((i & 7) * 8));
}

void jkt_pattern_fill(void *buf, size_t len, uint64_t offset, uint32_t seed)
{
    uint8_t *p = buf;
    size_t k = 0;
    while (k < len && ((offset + k) & 7) != 0) {
        p[k] = jkt_pattern_byte(offset + k, seed);
        k++;
    }
    while (len - k >= 8) {
        uint64_t w = pat_word((offset + k) >> 3, seed);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(p + k, &w, 8);
#else
        for (int b = 0; b < 8; b++)
            p[k + (size_t)b] = (uint8_t)(w >> (8 * b));
#endif
        k += 8;
    }
    while (k < len) {
        p[k] = jkt_pattern_byte(offset + k, seed);
        k++;
    }
}

size_t jkt_pattern_check(const void *buf, size_t len, uint64_t offset, uint32_t seed)
{
    const uint8_t *p = buf;
    uint8_t tmp[4096];
    size_t k = 0;
    while (k < len) {
        size_t n = len - k < sizeof tmp ? len - k : sizeof tmp;
        jkt_pattern_fill(tmp, n, offset + k, seed);
        if (memcmp(tmp, p + k, n) != 0) {
            for (size_t j = 0; j < n; j++)
                if (tmp[j] != p[k + j])
                    return k + j;
        }
        k += n;
    }
    return len;
}

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

static int srv_send_pattern(struct jkt_server *s, int fd, uint8_t *buf)
{
    uint64_t off = 0;
    while (off < s->nbytes) {
        size_t n = s->nbytes - off < SRV_BUF ? (size_t)(s->nbytes - off) : SRV_BUF;
        jkt_pattern_fill(buf, n, off, s->seed);
        int rc = srv_write_all(s, fd, buf, n);
        if (rc)
            return rc;
        off += n;
    }
    return 0;
}

/* Read to EOF (1), verifying/checksumming; 0 on error (counted). */
static int srv_read_to_eof(struct jkt_server *s, int fd, uint8_t *buf, bool echo)
{
    uint64_t off = 0;
    uint64_t h = 0xcbf29ce484222325ull;
    bool bad = false;
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
            return 1;
        }
        atomic_fetch_add(&s->bytes_in, (unsigned long)n);
        if (s->verify && !bad) {
            size_t at = jkt_pattern_check(buf, (size_t)n, off, s->in_seed);
            if (at != (size_t)n) {
                bad = true;
                srv_note_mismatch(s, off + at);
            }
        } else if (!s->verify && !s->count_only) {
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
        if (srv_send_pattern(s, fd, buf) != 0)
            atomic_fetch_add(&s->resets, 1);
        break;
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
        if (srv_send_pattern(s, fd, buf) != 0) {
            atomic_fetch_add(&s->resets, 1);
            break;
        }
        if (shutdown(fd, SHUT_WR) != 0)
            srv_note_error(s, errno);
        srv_read_to_eof(s, fd, buf, false);
        break;
    case JKT_SRV_DRAIN_SEND:
        if (srv_read_to_eof(s, fd, buf, false) == 1) {
            if (srv_send_pattern(s, fd, buf) != 0)
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
            size_t got = 0;
            while (got < req) {
                ssize_t n = read(fd, buf + got, req - got);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0) {
                    if (n == 0 && got == 0)
                        atomic_fetch_add(&s->eofs, 1);
                    else
                        atomic_fetch_add(&s->resets, 1);
                    goto rr_done;
                }
                got += (size_t)n;
                atomic_fetch_add(&s->bytes_in, (unsigned long)n);
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
    int rc;
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (fam == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(s->port);
        inet_pton(AF_INET6, JKT_KERNEL_IP6, &a->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(s->port);
        inet_pton(AF_INET, JKT_KERNEL_IP4, &a->sin_addr);
        sl = sizeof *a;
    }
    rc = bind(fd, (struct sockaddr *)&ss, sl);
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
        sleep_ms(1);
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
        sleep_ms(1);
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
    for (;;) {
        if (!br_wait(b, b->tunfd, POLLIN))
            break;
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

/* ---------------------------------------------------------------------- */
/* ss, UDP, ping, frame capture                                           */
/* ---------------------------------------------------------------------- */

static bool state_in(const char *state, const char *states)
{
    if (!states)
        return true;
    size_t sl = strlen(state);
    const char *p = states;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == sl && strncmp(p, state, n) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

static long addr_port(const char *a)
{
    const char *c = strrchr(a, ':');
    if (!c)
        return -1;
    char *end;
    long v = strtol(c + 1, &end, 10);
    return end == c + 1 ? -1 : v;
}

int jkt_ss_count(uint16_t port, const char *states, char *dump, size_t cap)
{
    size_t bcap = 1 << 20;
    char *out = malloc(bcap);
    if (!out)
        return -ENOMEM;
    char *argv[] = {"ss", "-tanH", NULL};
    int st = jkt_run(argv, out, bcap);
    if (st != 0) {
        free(out);
        return st < 0 ? st : -EIO;
    }
    if (dump && cap)
        dump[0] = 0;
    int count = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char state[32], rq[32], sq[32], local[128], peer[128];
        if (sscanf(line, "%31s %31s %31s %127s %127s", state, rq, sq, local, peer) != 5)
            continue;
        if (addr_port(local) != port && addr_port(peer) != port)
            continue;
        if (!state_in(state, states))
            continue;
        count++;
        if (dump && cap) {
            size_t u = strlen(dump);
            snprintf(dump + u, cap - u, "%s\n", line);
        }
    }
    free(out);
    return count;
}

static socklen_t local_sockaddr(int family, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, JKT_LOCAL_IP6, &a->sin6_addr);
        return sizeof *a;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, JKT_LOCAL_IP4, &a->sin_addr);
    return sizeof *a;
}

int jkt_send_udp(int family, uint16_t dport, size_t len)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (family == AF_INET6) {
        int v = IPV6_PMTUDISC_DONT;
        setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v, sizeof v);
    } else {
        int v = IP_PMTUDISC_DONT;
        setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v);
    }
    uint8_t *p = malloc(len ? len : 1);
    if (!p) {
        close(fd);
        return -ENOMEM;
    }
    jkt_pattern_fill(p, len, 0, 0x55d9);
    struct sockaddr_storage ss;
    socklen_t sl = local_sockaddr(family, dport, &ss);
    ssize_t n = sendto(fd, p, len, 0, (struct sockaddr *)&ss, sl);
    int rc = n < 0 ? -errno : 0;
    free(p);
    close(fd);
    return rc;
}

static uint16_t inet_csum(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

int jkt_send_ping(int family, uint16_t id, uint16_t seq, size_t payload_len)
{
    int proto = family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
    int fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, proto);
    if (fd < 0)
        return -errno;
    size_t len = 8 + payload_len;
    uint8_t *p = calloc(1, len);
    if (!p) {
        close(fd);
        return -ENOMEM;
    }
    p[0] = family == AF_INET6 ? 128 : 8; /* echo request */
    p[1] = 0;
    p[4] = (uint8_t)(id >> 8);
    p[5] = (uint8_t)id;
    p[6] = (uint8_t)(seq >> 8);
    p[7] = (uint8_t)seq;
    jkt_pattern_fill(p + 8, payload_len, 0, 0x1c3b);
    if (family != AF_INET6) { /* the kernel fills the ICMPv6 checksum itself */
        uint16_t c = inet_csum(p, len);
        p[2] = (uint8_t)(c >> 8);
        p[3] = (uint8_t)c;
    }
    struct sockaddr_storage ss;
    socklen_t sl = local_sockaddr(family, 0, &ss);
    ssize_t n = sendto(fd, p, len, 0, (struct sockaddr *)&ss, sl);
    int rc = n < 0 ? -errno : 0;
    free(p);
    close(fd);
    return rc;
}

ssize_t jkt_tun_wait_frame(int tunfd, int proto, uint16_t dport, bool syn_only, void *buf,
                           size_t cap, int timeout_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)timeout_ms * 1000u;
    uint8_t *f = buf;
    for (;;) {
        int64_t left = (int64_t)(end - jkt_now_us()) / 1000;
        if ((int64_t)(end - jkt_now_us()) <= 0)
            return -EAGAIN;
        struct pollfd p = {.fd = tunfd, .events = POLLIN};
        int r = poll(&p, 1, (int)(left > 0 ? left : 1));
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r <= 0)
            continue;
        ssize_t n = read(tunfd, buf, cap);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        size_t l4;
        int pr;
        if (n >= 20 && f[0] >> 4 == 4) {
            l4 = (size_t)(f[0] & 0x0f) * 4;
            pr = f[9];
        } else if (n >= 40 && f[0] >> 4 == 6) {
            l4 = 40;
            pr = f[6];
        } else {
            continue;
        }
        if (pr != proto)
            continue;
        if (proto == IPPROTO_TCP) {
            if ((size_t)n < l4 + 20)
                continue;
            uint16_t dp = (uint16_t)(f[l4 + 2] << 8 | f[l4 + 3]);
            if (dport && dp != dport)
                continue;
            if (syn_only && !(f[l4 + 13] & 0x02))
                continue;
        }
        return n;
    }
}
