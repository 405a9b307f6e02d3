/* SPDX-License-Identifier: MIT */
/*
 * The demo's kernel side, with no external program: a private network
 * namespace, TUN devices configured with ioctls, kernel TCP servers
 * (threads of the demo using Linux sockets inside the namespace), a
 * TUN <-> Unix stream socket forwarder (the CDTunnel shape), and a look at
 * the kernel's sockets through /proc/net/tcp{,6}.
 *
 * Addresses, only ever used inside the namespace this creates:
 *   kernel 198.18.0.1/24, fd00::1/64      jktcp 198.18.0.2, fd00::2
 *
 * Header-only (static functions) because every tools/X.c is built into a
 * tool of its own; only tools/jktcp-demo.c includes it. Functions return 0
 * or -errno.
 */
#ifndef JKTCP_DEMO_NET_H
#define JKTCP_DEMO_NET_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/ipv6.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DN_KERNEL_IP4 "198.18.0.1"
#define DN_LOCAL_IP4 "198.18.0.2"
#define DN_KERNEL_IP6 "fd00::1"
#define DN_LOCAL_IP6 "fd00::2"

/* Classic service ports for the kernel servers. */
#define DN_PORT_ECHO 7
#define DN_PORT_SINK 9    /* "discard", but it checks the data and answers a verdict */
#define DN_PORT_SOURCE 19 /* "chargen": sends what is asked for */

static double dn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------------- */
/* Test data: byte i of a stream with a given seed                        */
/* ---------------------------------------------------------------------- */

static inline uint64_t dn_pat_word(uint64_t w, uint32_t seed)
{
    uint64_t x = w * 0x9E3779B97F4A7C15ull + ((uint64_t)seed << 32 | (seed ^ 0xA5A5A5A5u));
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void dn_pattern(uint8_t *p, size_t len, uint64_t off, uint32_t seed)
{
    for (size_t k = 0; k < len; k++)
        p[k] = (uint8_t)(dn_pat_word((off + k) >> 3, seed) >> (((off + k) & 7) * 8));
}

/* Faster for the bulk: whole aligned words. */
static void dn_pattern_fill(uint8_t *p, size_t len, uint64_t off, uint32_t seed)
{
    size_t k = 0;
    for (; k < len && ((off + k) & 7); k++)
        dn_pattern(p + k, 1, off + k, seed);
    for (; len - k >= 8; k += 8) {
        uint64_t w = dn_pat_word((off + k) >> 3, seed);
        memcpy(p + k, &w, 8); /* little-endian byte order, as dn_pattern */
    }
    dn_pattern(p + k, len - k, off + k, seed);
}

/* Index of the first byte that differs from the pattern, or len. */
static size_t dn_pattern_check(const uint8_t *p, size_t len, uint64_t off, uint32_t seed)
{
    uint8_t tmp[8192];
    for (size_t k = 0; k < len; k += sizeof tmp) {
        size_t n = len - k < sizeof tmp ? len - k : sizeof tmp;
        dn_pattern_fill(tmp, n, off + k, seed);
        if (memcmp(tmp, p + k, n) != 0)
            for (size_t j = 0;; j++)
                if (tmp[j] != p[k + j])
                    return k + j;
    }
    return len;
}

/* ---------------------------------------------------------------------- */
/* Namespace and TUN                                                      */
/* ---------------------------------------------------------------------- */

static void dn_write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0) {
        }
        close(fd);
    }
}

/* IPv6 without duplicate address detection or router solicitations. */
static void dn_quiet_ipv6(const char *dev)
{
    static const char *const keys[] = {"accept_dad", "dad_transmits", "router_solicitations",
                                       "accept_ra", "autoconf"};
    char path[128];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/%s", dev, keys[i]);
        dn_write_text(path, "0");
    }
}

static int dn_if_up(const char *name)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    rc = rc ? -errno : 0;
    close(s);
    return rc;
}

/* A network namespace of our own for this thread and every thread it
 * starts afterwards; it disappears when the process exits. */
static int dn_netns_enter(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (unshare(CLONE_NEWNET) != 0)
        return -errno;
    dn_quiet_ipv6("default");
    dn_quiet_ipv6("all");
    return dn_if_up("lo");
}

/* Is fd00::1 in the local routing table yet? The kernel adds that route
 * from a work queue after the address: until then it drops what comes in. */
static bool dn_ipv6_local_route(void)
{
    FILE *f = fopen("/proc/net/ipv6_route", "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, "fd000000000000000000000000000001 80 ", 36) == 0;
    fclose(f);
    return found;
}

/* TUN device `name` (IFF_NO_PI: raw IP packets) with the kernel's address
 * of one family, up. *fd is the device end jktcp (or a forwarder) uses. */
static int dn_tun_open(const char *name, unsigned mtu, int family, int *fd)
{
    int rc = 0, s = -1;
    *fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (*fd < 0)
        return -errno;
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(*fd, TUNSETIFF, &ifr) != 0)
        goto fail;
    if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        goto fail;
    ifr.ifr_mtu = (int)mtu;
    if (ioctl(s, SIOCSIFMTU, &ifr) != 0)
        goto fail;
    ifr.ifr_qlen = 10000;
    (void)ioctl(s, SIOCSIFTXQLEN, &ifr);
    char path[128];
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
    dn_write_text(path, family == AF_INET6 ? "0" : "1");
    dn_quiet_ipv6(name);
    if ((rc = dn_if_up(name)) != 0)
        goto out;
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
        memset(&ifr.ifr_addr, 0, sizeof ifr.ifr_addr);
        sin->sin_family = AF_INET;
        inet_pton(AF_INET, DN_KERNEL_IP4, &sin->sin_addr);
        if (ioctl(s, SIOCSIFADDR, &ifr) != 0)
            goto fail;
        inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
        if (ioctl(s, SIOCSIFNETMASK, &ifr) != 0)
            goto fail;
    } else {
        int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct in6_ifreq r6 = {.ifr6_prefixlen = 64, .ifr6_ifindex = (int)if_nametoindex(name)};
        inet_pton(AF_INET6, DN_KERNEL_IP6, &r6.ifr6_addr);
        rc = s6 < 0 || ioctl(s6, SIOCSIFADDR, &r6) != 0 ? -errno : 0;
        if (s6 >= 0)
            close(s6);
        for (int i = 0; rc == 0 && !dn_ipv6_local_route(); i++) {
            if (i == 3000)
                rc = -ETIMEDOUT;
            usleep(1000);
        }
    }
    goto out;
fail:
    rc = -errno;
out:
    if (s >= 0)
        close(s);
    if (rc) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Kernel servers                                                         */
/* ---------------------------------------------------------------------- */
/*
 * On each family's kernel address:
 *   echo   (7)  sends back what it reads, closes after the peer's FIN
 *   sink   (9)  reads a 4-byte seed, then checks every byte against the
 *               pattern until the FIN; answers "OK <bytes>\n" or
 *               "BAD <offset>\n" and closes
 *   source (19) reads a 4-byte seed and an 8-byte count (big-endian),
 *               sends that many pattern bytes, closes
 */
enum { DN_ECHO, DN_SINK, DN_SOURCE, DN_KINDS };
static const uint16_t dn_ports[DN_KINDS] = {DN_PORT_ECHO, DN_PORT_SINK, DN_PORT_SOURCE};

struct dn_servers {
    int lfd[2][DN_KINDS]; /* [0] IPv4, [1] IPv6 */
    int stopfd;
    pthread_t th;
    atomic_int handlers;  /* connection threads still running */
    atomic_ulong conns, bytes_in, bytes_out, errors;
};

struct dn_conn {
    struct dn_servers *sv;
    int fd, kind;
};

static bool dn_read_full(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

static bool dn_write_full(int fd, const void *buf, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        off += (size_t)n;
    }
    return true;
}

static void *dn_conn_run(void *arg)
{
    struct dn_conn c = *(struct dn_conn *)arg;
    free(arg);
    struct dn_servers *sv = c.sv;
    enum { BUF = 256 * 1024 };
    uint8_t *buf = malloc(BUF);
    bool ok = buf != NULL;
    uint8_t hdr[12];
    if (ok && c.kind == DN_ECHO) {
        ssize_t n;
        while ((n = read(c.fd, buf, BUF)) > 0 && (ok = dn_write_full(c.fd, buf, (size_t)n))) {
            atomic_fetch_add(&sv->bytes_in, (unsigned long)n);
            atomic_fetch_add(&sv->bytes_out, (unsigned long)n);
        }
        ok = ok && n == 0;
    } else if (ok && c.kind == DN_SINK && (ok = dn_read_full(c.fd, hdr, 4))) {
        uint32_t seed = (uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
        uint64_t off = 0, bad = UINT64_MAX;
        ssize_t n;
        while ((n = read(c.fd, buf, BUF)) > 0) {
            size_t at = bad == UINT64_MAX ? dn_pattern_check(buf, (size_t)n, off, seed) : (size_t)n;
            if (at != (size_t)n)
                bad = off + at;
            off += (uint64_t)n;
            atomic_fetch_add(&sv->bytes_in, (unsigned long)n);
        }
        char verdict[64];
        int len = bad == UINT64_MAX ? snprintf(verdict, sizeof verdict, "OK %llu\n", (unsigned long long)off)
                                    : snprintf(verdict, sizeof verdict, "BAD %llu\n", (unsigned long long)bad);
        ok = n == 0 && dn_write_full(c.fd, verdict, (size_t)len);
    } else if (ok && c.kind == DN_SOURCE && (ok = dn_read_full(c.fd, hdr, 12))) {
        uint32_t seed = (uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
        uint64_t count = 0;
        for (int i = 4; i < 12; i++)
            count = count << 8 | hdr[i];
        for (uint64_t off = 0; ok && off < count;) {
            size_t n = count - off < BUF ? (size_t)(count - off) : BUF;
            dn_pattern_fill(buf, n, off, seed);
            ok = dn_write_full(c.fd, buf, n);
            off += n;
            atomic_fetch_add(&sv->bytes_out, (unsigned long)n);
        }
    }
    if (!ok)
        atomic_fetch_add(&sv->errors, 1);
    free(buf);
    close(c.fd);
    atomic_fetch_sub(&sv->handlers, 1);
    return NULL;
}

static void *dn_accept_run(void *arg)
{
    struct dn_servers *sv = arg;
    struct pollfd p[2 * DN_KINDS + 1];
    for (int i = 0; i < 2 * DN_KINDS; i++)
        p[i] = (struct pollfd){.fd = sv->lfd[i / DN_KINDS][i % DN_KINDS], .events = POLLIN};
    p[2 * DN_KINDS] = (struct pollfd){.fd = sv->stopfd, .events = POLLIN};
    for (;;) {
        if (poll(p, 2 * DN_KINDS + 1, -1) < 0 && errno != EINTR)
            break;
        if (p[2 * DN_KINDS].revents)
            break;
        for (int i = 0; i < 2 * DN_KINDS; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            int fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
            struct dn_conn *c = fd >= 0 ? malloc(sizeof *c) : NULL;
            pthread_t th;
            pthread_attr_t at;
            if (!c) {
                if (fd >= 0)
                    close(fd);
                continue;
            }
            *c = (struct dn_conn){.sv = sv, .fd = fd, .kind = i % DN_KINDS};
            atomic_fetch_add(&sv->conns, 1);
            atomic_fetch_add(&sv->handlers, 1);
            pthread_attr_init(&at);
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            if (pthread_create(&th, &at, dn_conn_run, c) != 0) {
                atomic_fetch_sub(&sv->handlers, 1);
                atomic_fetch_add(&sv->errors, 1);
                close(fd);
                free(c);
            }
            pthread_attr_destroy(&at);
        }
    }
    return NULL;
}

static int dn_listen(int family, uint16_t port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, DN_KERNEL_IP4, &a->sin_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, DN_KERNEL_IP6, &a->sin6_addr);
        len = sizeof *a;
    }
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
        int e = -errno;
        if (fd >= 0)
            close(fd);
        return e;
    }
    return fd;
}

static int dn_servers_start(struct dn_servers *sv)
{
    memset(sv, 0, sizeof *sv);
    for (int f = 0; f < 2; f++)
        for (int k = 0; k < DN_KINDS; k++)
            if ((sv->lfd[f][k] = dn_listen(f ? AF_INET6 : AF_INET, dn_ports[k])) < 0)
                return sv->lfd[f][k];
    sv->stopfd = eventfd(0, EFD_CLOEXEC);
    if (sv->stopfd < 0)
        return -errno;
    int rc = pthread_create(&sv->th, NULL, dn_accept_run, sv);
    return -rc;
}

/* Stop accepting and wait (up to timeout_ms) for the connection threads,
 * which end when their peers close. Returns how many were still running. */
static int dn_servers_stop(struct dn_servers *sv, int timeout_ms)
{
    uint64_t one = 1;
    if (write(sv->stopfd, &one, sizeof one) < 0) {
    }
    pthread_join(sv->th, NULL);
    for (int f = 0; f < 2; f++)
        for (int k = 0; k < DN_KINDS; k++)
            close(sv->lfd[f][k]);
    close(sv->stopfd);
    for (int i = 0; i < timeout_ms && atomic_load(&sv->handlers) > 0; i++)
        usleep(1000);
    return atomic_load(&sv->handlers);
}

/* ---------------------------------------------------------------------- */
/* Forwarder: TUN <-> Unix stream socket, IP packets back to back         */
/* ---------------------------------------------------------------------- */
/*
 * What the iOS side of a CDTunnel does: packets from the network go onto
 * the byte stream one after another, and packets read off the byte stream
 * (each one's length from its IP header) go to the network.
 */
struct dn_forwarder {
    int tunfd, sock, user_fd, stopfd;
    pthread_t up, down;
    atomic_ulong frames_up, frames_down, bytes_up, bytes_down;
    atomic_int error;
};

static bool dn_fw_wait(struct dn_forwarder *w, int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = w->stopfd, .events = POLLIN}};
    while (poll(p, 2, -1) < 0)
        if (errno != EINTR)
            return false;
    return !p[1].revents;
}

/* TUN -> socket: one packet per write, as the iOS side sends them. */
static void *dn_fw_up(void *arg)
{
    struct dn_forwarder *w = arg;
    static uint8_t buf[65536];
    while (dn_fw_wait(w, w->tunfd)) {
        ssize_t n = read(w->tunfd, buf, sizeof buf);
        if (n <= 0)
            continue;
        if (!dn_write_full(w->sock, buf, (size_t)n))
            break;
        atomic_fetch_add(&w->frames_up, 1);
        atomic_fetch_add(&w->bytes_up, (unsigned long)n);
    }
    return NULL;
}

/* socket -> TUN: cut the byte stream into packets by their IP lengths. */
static void *dn_fw_down(void *arg)
{
    struct dn_forwarder *w = arg;
    static uint8_t buf[1 << 20];
    size_t have = 0;
    while (dn_fw_wait(w, w->sock)) {
        ssize_t n = read(w->sock, buf + have, sizeof buf - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        size_t off = 0;
        for (;;) {
            const uint8_t *f = buf + off;
            size_t left = have - off, len;
            if (left >= 4 && f[0] >> 4 == 4)
                len = (size_t)f[2] << 8 | f[3];
            else if (left >= 6 && f[0] >> 4 == 6)
                len = 40 + ((size_t)f[4] << 8 | f[5]);
            else if (left >= 1 && f[0] >> 4 != 4 && f[0] >> 4 != 6) {
                atomic_store(&w->error, -EPROTO); /* not a packet: framing lost */
                return NULL;
            } else
                break;
            if (left < len)
                break;
            if (write(w->tunfd, f, len) == (ssize_t)len) {
                atomic_fetch_add(&w->frames_down, 1);
                atomic_fetch_add(&w->bytes_down, (unsigned long)len);
            }
            off += len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    return NULL;
}

/* Start it; jktcp then uses w->user_fd with JKTCP_FRAMING_STREAM. */
static int dn_forwarder_start(struct dn_forwarder *w, int tunfd)
{
    memset(w, 0, sizeof *w);
    int sv[2], sz = 4 << 20;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    for (int i = 0; i < 2; i++)
        if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) != 0)
            setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    w->tunfd = tunfd;
    w->sock = sv[0];
    w->user_fd = sv[1];
    w->stopfd = eventfd(0, EFD_CLOEXEC);
    if (w->stopfd < 0 || pthread_create(&w->up, NULL, dn_fw_up, w) != 0)
        return -EAGAIN;
    if (pthread_create(&w->down, NULL, dn_fw_down, w) != 0) {
        uint64_t one = 1;
        if (write(w->stopfd, &one, sizeof one) < 0) {
        }
        pthread_join(w->up, NULL);
        return -EAGAIN;
    }
    return 0;
}

/* Stop both threads, close both socket ends (after jktcp let go of user_fd). */
static void dn_forwarder_stop(struct dn_forwarder *w)
{
    uint64_t one = 1;
    if (write(w->stopfd, &one, sizeof one) < 0) {
    }
    pthread_join(w->up, NULL);
    pthread_join(w->down, NULL);
    close(w->sock);
    close(w->user_fd);
    close(w->stopfd);
}

/* ---------------------------------------------------------------------- */
/* The kernel's own view: /proc/net/tcp and tcp6                          */
/* ---------------------------------------------------------------------- */

/* Kernel TCP sockets in this namespace by state: *open (any state but
 * LISTEN, TIME_WAIT and CLOSE: a connection not finished) and *timewait. */
static void dn_kernel_sockets(int *open_, int *timewait)
{
    *open_ = *timewait = 0;
    const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        char line[512];
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            unsigned st;
            if (sscanf(line, " %*d: %*s %*s %x", &st) != 1)
                continue; /* the header line */
            if (st == 0x06)
                (*timewait)++;
            else if (st != 0x0A && st != 0x07)
                (*open_)++;
        }
        fclose(f);
    }
}

/* The kernel's count of TCP segments it sent again (/proc/net/snmp), or -1. */
static long dn_kernel_retransmits(void)
{
    FILE *f = fopen("/proc/net/snmp", "r");
    char names[1024], values[1024];
    long result = -1;
    if (!f)
        return -1;
    while (result < 0 && fgets(names, sizeof names, f)) {
        if (strncmp(names, "Tcp:", 4) != 0 || !fgets(values, sizeof values, f))
            continue;
        char *sn, *sv, *n = strtok_r(names, " \n", &sn), *v = strtok_r(values, " \n", &sv);
        for (; n && v; n = strtok_r(NULL, " \n", &sn), v = strtok_r(NULL, " \n", &sv))
            if (strcmp(n, "RetransSegs") == 0)
                result = atol(v);
    }
    fclose(f);
    return result;
}

#endif
