/* SPDX-License-Identifier: MIT */
/* The kernel-to-kernel reference of jktcp-bench (see veth.h). */
#include "veth.h"

#include "kserver.h"
#include "netns.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int start_echo(struct jkt_server *s, int family, uint16_t port)
{
    memset(s, 0, sizeof *s);
    s->kind = JKT_SRV_ECHO;
    s->family = family;
    s->port = port;
    s->count_only = true;
    return jkt_server_start(s);
}


static int kconnect(int family, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t sl = jkt_sockaddr(family, jkt_kernel_ip(family), port, &ss);
    int fd = socket(family, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool kecho(int fd, const uint8_t *msg, uint8_t *back, size_t n)
{
    if (write(fd, msg, n) != (ssize_t)n)
        return false;
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, back + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static double veth_pingpong(int family, uint16_t port)
{
    int fd = kconnect(family, port);
    if (fd < 0)
        return -1;
    enum { N = 5000 };
    static uint64_t rtt[N];
    uint8_t msg[64] = {0}, back[64];
    for (int i = 0; i < N; i++) {
        uint64_t t0 = jkt_now_us();
        if (!kecho(fd, msg, back, sizeof msg))
            return -1;
        rtt[i] = jkt_now_us() - t0;
    }
    close(fd);
    qsort(rtt, N, sizeof rtt[0], cmp_u64);
    return (double)(rtt[N * 99 / 100] * 1000000u + rtt[N / 2]);
}

static double veth_conns(int family, uint16_t port, int conns, size_t echo)
{
    int *fds = calloc((size_t)conns, sizeof *fds);
    uint8_t *msg = calloc(2, echo), *back = msg ? msg + echo : NULL;
    double r = -1;
    int warm = kconnect(family, port); /* the link's first SYN may go before the link is up */
    if (!fds || !msg || warm < 0 || !kecho(warm, msg, back, echo))
        goto out;
    double t0 = jkt_now_s();
    int i;
    for (i = 0; i < conns; i++)
        if ((fds[i] = kconnect(family, port)) < 0 || !kecho(fds[i], msg, back, echo))
            break;
    for (int k = 0; k < i; k++)
        close(fds[k]);
    if (i == conns)
        r = conns / (jkt_now_s() - t0);
out:
    if (warm >= 0)
        close(warm);
    free(fds);
    free(msg);
    return r;
}

double bench_kernel_veth(unsigned mtu, int family, int which, uint16_t port, int conns, size_t echo)
{
    int go[2], ready[2];
    if (pipe(go) || pipe(ready))
        return -1;
    pid_t pid = fork();
    if (pid == 0) { /* the kernel-side namespace */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(go[1]);
        close(ready[0]);
        char c = 0;
        struct jkt_server srv;
        if (jkt_netns_enter() < 0 || write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1 ||
            jkt_sh("ip addr add " JKT_KERNEL_IP4 "/24 dev v1 && ip -6 addr add " JKT_KERNEL_IP6
                   "/64 dev v1 nodad && ip link set v1 up",
                   NULL, 0) != 0 ||
            start_echo(&srv, family, port) < 0)
            _exit(1);
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0) /* until the parent is done */
            _exit(2);
        jkt_server_stop(&srv);
        _exit(0);
    }
    close(go[0]);
    close(ready[1]);
    char c = 0, cmd[256];
    snprintf(cmd, sizeof cmd,
             "ip link add v0 mtu %u type veth peer name v1 mtu %u netns %d && "
             "ip addr add " JKT_LOCAL_IP4 "/24 dev v0 && ip -6 addr add " JKT_LOCAL_IP6
             "/64 dev v0 nodad && ip link set v0 up",
             mtu, mtu, (int)pid);
    double r = -1;
    if (read(ready[0], &c, 1) == 1 && jkt_sh(cmd, NULL, 0) == 0 && write(go[1], &c, 1) == 1 &&
        read(ready[0], &c, 1) == 1) {
        usleep(200000); /* both links up */
        r = which == VETH_PINGPONG ? veth_pingpong(family, port)
                                   : veth_conns(family, port, conns, echo);
    }
    close(go[1]);
    close(ready[0]);
    waitpid(pid, NULL, 0);
    return r;
}
