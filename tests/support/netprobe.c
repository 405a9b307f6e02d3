/* SPDX-License-Identifier: MIT */
/*
 * Inspection and noise inside the test's namespace (see netprobe.h): the
 * kernel's sockets through ss or /proc/net, UDP datagrams and pings toward
 * jktcp, and a wait for a given frame on a TUN fd.
 */
#include "netprobe.h"
#include "netns.h"

#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* ss, /proc/net, UDP, ping, frame capture                               */
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

void jkt_kernel_tcp_sockets(int *open_, int *timewait)
{
    *open_ = *timewait = 0;
    static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        char line[512];
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            unsigned st;
            if (sscanf(line, " %*d: %*s %*s %x", &st) != 1)
                continue; /* the header line */
            if (st == 0x06) /* TCP_TIME_WAIT */
                (*timewait)++;
            else if (st != 0x0A && st != 0x07) /* TCP_LISTEN, TCP_CLOSE */
                (*open_)++;
        }
        fclose(f);
    }
}

/* One file of name lines and value lines ("Tcp: RtoAlgorithm ..." then
 * "Tcp: 1 ..."): the value of name in the group, or -1 (netprobe.h). */
long jkt_kernel_stat_in(const char *path, const char *group, const char *name)
{
    FILE *f = fopen(path, "r");
    char names[4096], values[4096];
    size_t gl = strlen(group);
    long result = -1;
    if (!f)
        return -1;
    while (result < 0 && fgets(names, sizeof names, f)) {
        if (strncmp(names, group, gl) != 0 || names[gl] != ':' || !fgets(values, sizeof values, f))
            continue;
        char *sn, *sv, *n = strtok_r(names, " \n", &sn), *v = strtok_r(values, " \n", &sv);
        for (; n && v; n = strtok_r(NULL, " \n", &sn), v = strtok_r(NULL, " \n", &sv))
            if (strcmp(n, name) == 0)
                result = atol(v);
    }
    fclose(f);
    return result;
}

long jkt_kernel_stat(const char *group, const char *name)
{
    long v = jkt_kernel_stat_in("/proc/net/snmp", group, name);
    return v >= 0 ? v : jkt_kernel_stat_in("/proc/net/netstat", group, name);
}

int jkt_proc_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    int r = fgets(buf, (int)cap, f) ? 0 : -EIO;
    fclose(f);
    if (r == 0)
        buf[strcspn(buf, "\n")] = 0;
    return r;
}

long jkt_kernel_retransmits(void)
{
    return jkt_kernel_stat("Tcp", "RetransSegs");
}

socklen_t jkt_local_sockaddr(int family, uint16_t port, struct sockaddr_storage *ss)
{
    return jkt_sockaddr(family, jkt_local_ip(family), port, ss);
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
    socklen_t sl = jkt_local_sockaddr(family, dport, &ss);
    ssize_t n = sendto(fd, p, len, 0, (struct sockaddr *)&ss, sl);
    int rc = n < 0 ? -errno : 0;
    free(p);
    close(fd);
    return rc;
}

uint16_t jkt_inet_csum(const uint8_t *p, size_t len)
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
        uint16_t c = jkt_inet_csum(p, len);
        p[2] = (uint8_t)(c >> 8);
        p[3] = (uint8_t)c;
    }
    struct sockaddr_storage ss;
    socklen_t sl = jkt_local_sockaddr(family, 0, &ss);
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
