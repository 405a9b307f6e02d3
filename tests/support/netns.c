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
#include <linux/ipv6.h> /* struct in6_ifreq */
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

socklen_t jkt_sockaddr(int family, const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, addr, &a->sin6_addr);
        return sizeof *a;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, addr, &a->sin_addr);
    return sizeof *a;
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

/* Shared with kserver.c (waits of the servers). */
void jkt_sleep_ms(int ms)
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

/* Is the kernel-side IPv6 address in the local routing table yet? The
 * kernel inserts that route from a work queue after the address is added
 * (bind() works before): until then incoming IPv6 frames are dropped as
 * InAddrErrors. /proc/net/ipv6_route lists every table, the local one too. */
static bool ipv6_local_route(void)
{
    struct in6_addr a;
    char want[48];
    inet_pton(AF_INET6, JKT_KERNEL_IP6, &a);
    for (int i = 0; i < 16; i++)
        snprintf(want + 2 * i, 3, "%02x", a.s6_addr[i]);
    strcat(want, " 80 "); /* prefix length 128 */
    FILE *f = fopen("/proc/net/ipv6_route", "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, want, strlen(want)) == 0;
    fclose(f);
    return found;
}

/* Wait until the kernel-side address of `family` can be bound and used to
 * reach jktcp's. For IPv4 a working bind() means the local route exists
 * (bind checks the local table); IPv6 also waits for ipv6_local_route. */
static int wait_addr_usable(int family, int timeout_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)timeout_ms * 1000u;
    int last = 0;
    for (;;) {
        int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        struct sockaddr_storage ss;
        socklen_t sl = jkt_sockaddr(family, jkt_kernel_ip(family), 0, &ss);
        int rc = bind(fd, (struct sockaddr *)&ss, sl);
        if (rc == 0) {
            sl = jkt_sockaddr(family, jkt_local_ip(family), 9, &ss);
            rc = connect(fd, (struct sockaddr *)&ss, sl);
        }
        last = rc == 0 ? 0 : -errno;
        close(fd);
        if (rc == 0) {
            if (family != AF_INET6 || ipv6_local_route())
                return 0;
            last = -EADDRNOTAVAIL;
        }
        if (jkt_now_us() >= end)
            return last;
        jkt_sleep_ms(1);
    }
}

/* The kernel-side address of `family` on device `name` (ifindex), with
 * ioctls: SIOCSIFADDR + SIOCSIFNETMASK (/24) for IPv4, SIOCSIFADDR with an
 * in6_ifreq (/64) on an AF_INET6 socket for IPv6. 0 or -errno. */
static int set_kernel_addr(const char *name, int ifindex, int family)
{
    int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int rc;
    if (family == AF_INET6) {
        struct in6_ifreq r6 = {.ifr6_prefixlen = 64, .ifr6_ifindex = ifindex};
        inet_pton(AF_INET6, JKT_KERNEL_IP6, &r6.ifr6_addr);
        rc = ioctl(s, SIOCSIFADDR, &r6);
    } else {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
        struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
        sin->sin_family = AF_INET;
        inet_pton(AF_INET, JKT_KERNEL_IP4, &sin->sin_addr);
        rc = ioctl(s, SIOCSIFADDR, &ifr);
        if (rc == 0) {
            inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
            rc = ioctl(s, SIOCSIFNETMASK, &ifr);
        }
    }
    rc = rc == 0 ? 0 : -errno;
    close(s);
    return rc;
}

int jkt_tun_open(const char *name, unsigned mtu, int family_flags, struct jkt_tun *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (!name)
        name = "jkt0";
    unsigned vnet = family_flags & JKT_TUN_VNET_HDR ? IFF_VNET_HDR : 0;
    family_flags &= JKT_FAM_IPV4 | JKT_FAM_IPV6;
    if (family_flags == 0)
        family_flags = JKT_FAM_IPV4 | JKT_FAM_IPV6;
    if (strlen(name) >= IFNAMSIZ)
        return -EINVAL;

    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = (short)(IFF_TUN | IFF_NO_PI | vnet);
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
    close(s);
    if (rc)
        goto fail;
    (void)jkt_tun_set_txqlen(out, JKT_TUN_TXQLEN);

    quiet_ipv6(out->name, (family_flags & JKT_FAM_IPV6) != 0);
    /* Up first, then the addresses: their routes go in as they are added. */
    rc = set_if_flags(out->name, IFF_UP);
    if (rc)
        goto fail;
    static const int fams[2][2] = {{JKT_FAM_IPV4, AF_INET}, {JKT_FAM_IPV6, AF_INET6}};
    for (int i = 0; i < 2 && rc == 0; i++)
        if (family_flags & fams[i][0])
            rc = set_kernel_addr(out->name, out->ifindex, fams[i][1]);
    for (int i = 0; i < 2 && rc == 0; i++)
        if (family_flags & fams[i][0])
            rc = wait_addr_usable(fams[i][1], 3000);
    if (rc)
        goto fail;
    return 0;
fail:
    close(out->fd);
    out->fd = -1;
    return rc;
}

int jkt_tun_packets(const struct jkt_tun *t, uint64_t *rx, uint64_t *tx)
{
    FILE *f = fopen("/proc/thread-self/net/dev", "r");
    if (!f)
        return -errno;
    char line[512];
    int rc = -ENOENT;
    while (rc != 0 && fgets(line, sizeof line, f)) {
        char name[32];
        unsigned long long v[10];
        /* "  name: rx bytes packets errs drop fifo frame compressed multicast tx bytes packets" */
        if (sscanf(line, " %31[^:]: %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", name, &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) == 11 &&
            strcmp(name, t->name) == 0) {
            *rx = v[1];
            *tx = v[9];
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

int jkt_tun_set_txqlen(const struct jkt_tun *t, unsigned qlen)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", t->name);
    ifr.ifr_qlen = (int)qlen;
    int rc = ioctl(s, SIOCSIFTXQLEN, &ifr) == 0 ? 0 : -errno;
    close(s);
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

/* Word w of the pattern: a bijection of w (an add, a multiply by an odd
 * constant, an xor-shift), so no two words of one stream are alike and a
 * byte delivered at the wrong offset shows. One multiply per 8 bytes: the
 * bench's senders fill at memory speed, not at the generator's. */
static inline uint64_t pat_word(uint64_t w, uint32_t seed)
{
    uint64_t x = (w + ((uint64_t)seed << 32 | (uint64_t)(seed ^ 0xA5A5A5A5u))) * 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 29);
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
