/* SPDX-License-Identifier: MIT */
/* jktcp-bench's "kernel TCP over TUN" reference (kernel_tun.h). */
#include "kernel_tun.h"

#include "netns.h"
#include "netprobe.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct fwd {
    int from, to;
    atomic_bool *stop;
    uint8_t buf[65536 + 64];
};

static void *forward(void *arg)
{
    struct fwd *f = arg;
    uint8_t *buf = f->buf;
    struct pollfd p = {f->from, POLLIN, 0};
    while (!atomic_load(f->stop)) {
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(f->from, buf, 65536 + 64);
        if (n > 0 && write(f->to, buf, (size_t)n) < 0 && errno != ENOBUFS && errno != EAGAIN)
            break;
    }
    return NULL;
}

double bench_kernel_tun(unsigned mtu, int family, uint16_t port, uint64_t bytes)
{
    struct jkt_tun ta;
    if (jkt_tun_open("ka0", mtu, 0, &ta) < 0)
        return -1;
    int ready[2], tunpass[2];
    if (pipe(ready) || socketpair(AF_UNIX, SOCK_DGRAM, 0, tunpass))
        return -1;
    pid_t pid = fork();
    if (pid == 0) { /* peer namespace: a kernel sink at the "jktcp" address */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        struct jkt_tun tb;
        if (jkt_netns_enter() < 0 || jkt_tun_open("kb0", mtu, 0, &tb) < 0)
            _exit(1);
        const char *cmds4 = "ip addr flush dev kb0 && ip addr add 198.18.0.2/24 dev kb0 && "
                            "ip -6 addr add fd00::2/64 dev kb0 nodad";
        if (jkt_sh(cmds4, NULL, 0) != 0)
            _exit(2);
        usleep(300000);
        int ls = socket(family, SOCK_STREAM, 0), one = 1;
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_storage ss;
        socklen_t sl = jkt_local_sockaddr(family, port, &ss);
        if (bind(ls, (struct sockaddr *)&ss, sl) < 0 || listen(ls, 4) < 0)
            _exit(3);
        /* hand tun B to the parent, which runs the forwarder */
        char c = 0;
        struct iovec iov = {&c, 1};
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                            .msg_controllen = sizeof cbuf};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &tb.fd, sizeof(int));
        if (sendmsg(tunpass[1], &mh, 0) < 0)
            _exit(4);
        int fd = accept(ls, NULL, NULL);
        static uint8_t buf[1 << 18];
        uint64_t got = 0;
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0)
            got += (uint64_t)r;
        if (write(ready[1], &got, sizeof got) != sizeof got)
            _exit(5);
        _exit(0);
    }
    char c;
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&c, 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    if (recvmsg(tunpass[0], &mh, 0) < 0)
        return -1;
    int tbfd;
    memcpy(&tbfd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
    atomic_bool stop = false;
    static struct fwd f1, f2;
    f1.from = ta.fd, f1.to = tbfd, f1.stop = &stop;
    f2.from = tbfd, f2.to = ta.fd, f2.stop = &stop;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, forward, &f1);
    pthread_create(&t2, NULL, forward, &f2);
    int s = socket(family, SOCK_STREAM, 0);
    struct sockaddr_storage ss;
    socklen_t sl = jkt_local_sockaddr(family, port, &ss);
    if (connect(s, (struct sockaddr *)&ss, sl) < 0)
        return -1;
    static uint8_t buf[1 << 18];
    double t0 = jkt_now_s();
    for (uint64_t sent = 0; sent < bytes;) {
        ssize_t w = write(s, buf, sizeof buf);
        if (w <= 0)
            return -1;
        sent += (uint64_t)w;
    }
    shutdown(s, SHUT_WR);
    uint64_t got = 0;
    if (read(ready[0], &got, sizeof got) != sizeof got)
        return -1;
    double dt = jkt_now_s() - t0;
    atomic_store(&stop, true);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    close(s);
    waitpid(pid, NULL, 0);
    return got == bytes && dt > 0 ? (double)got / dt / 1e6 : -1;
}
