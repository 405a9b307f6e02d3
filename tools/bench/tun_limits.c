/* SPDX-License-Identifier: MIT */
/* The TUN references of jktcp-bench (see tun_limits.h). */
#include "tun_limits.h"

#include "netns.h"
#include "netprobe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One thread writing MTU-sized UDP frames into the TUN fd for 1 s. */
int bench_tun_write_limit(unsigned mtu, int family, struct tun_ref *out)
{
    struct jkt_tun tun;
    if (jkt_tun_open(NULL, mtu, 0, &tun) < 0)
        return -1;
    int fd = socket(family, SOCK_DGRAM, 0);
    struct sockaddr_storage ss;
    /* bound to the kernel address: frames are delivered, then dropped on
     * a full socket buffer — the kernel still does the IP/UDP work */
    socklen_t sl = jkt_sockaddr(family, jkt_kernel_ip(family), 9999, &ss);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
        return -1;
    uint8_t frame[65536];
    size_t len = mtu;
    memset(frame, 0, sizeof frame);
    if (family == AF_INET) {
        frame[0] = 0x45;
        frame[2] = (uint8_t)(len >> 8);
        frame[3] = (uint8_t)len;
        frame[8] = 64;
        frame[9] = 17;
        inet_pton(AF_INET, JKT_LOCAL_IP4, frame + 12);
        inet_pton(AF_INET, JKT_KERNEL_IP4, frame + 16);
        uint16_t c = jkt_inet_csum(frame, 20);
        frame[10] = (uint8_t)(c >> 8);
        frame[11] = (uint8_t)c;
        frame[20] = 0x30;
        frame[22] = 9999 >> 8;
        frame[23] = 9999 & 0xff;
        frame[24] = (uint8_t)((len - 20) >> 8);
        frame[25] = (uint8_t)(len - 20); /* UDP checksum 0: none (IPv4) */
    } else {
        frame[0] = 0x60;
        frame[4] = (uint8_t)((len - 40) >> 8);
        frame[5] = (uint8_t)(len - 40);
        frame[6] = 17;
        frame[7] = 64;
        inet_pton(AF_INET6, JKT_LOCAL_IP6, frame + 8);
        inet_pton(AF_INET6, JKT_KERNEL_IP6, frame + 24);
        frame[40] = 0x30;
        frame[42] = 9999 >> 8;
        frame[43] = 9999 & 0xff;
        frame[44] = (uint8_t)((len - 40) >> 8);
        frame[45] = (uint8_t)(len - 40);
        /* IPv6 needs a UDP checksum; a wrong one costs the kernel the same */
        frame[46] = 0x12;
    }
    uint64_t n = 0;
    double t0 = jkt_now_s(), dt, c0 = thread_cpu_s();
    while ((dt = jkt_now_s() - t0) < 1.0)
        for (int i = 0; i < 256; i++)
            if (write(tun.fd, frame, len) == (ssize_t)len)
                n++;
    out->cpu_s = thread_cpu_s() - c0;
    out->bytes = n * len;
    out->secs = dt;
    close(fd);
    return 0;
}

/* The other direction's ceiling: what the kernel pushes into a TUN reader.
 * A kernel UDP socket in a thread of its own sends MTU-sized datagrams to
 * jktcp's address (routed into the TUN, as the kernel's TCP segments to
 * jktcp are) as fast as send(2) takes them (a full TUN queue drops the
 * rest without telling the sender), while this thread reads the TUN one
 * frame per read(2) for 1 s: MB/s of frames read. Download rows are read
 * against it. The sender hands the kernel up to 60,000 bytes per call, cut
 * into datagrams by UDP segmentation offload (UDP_SEGMENT; the TUN has no
 * offloads, so the stack cuts them before the device; kernels before 6.11
 * refuse that without checksum offload, and the sender then falls back to
 * a datagram per call), as the kernel's TCP hands its segments down in
 * GSO packets: one datagram per send(2) measured the sender's system calls
 * (543 MB/s at MTU 1500, against 920 for jktcp's download). CPU per GiB is
 * the reader thread's. */
#define JKT_UDP_SEGMENT 103 /* linux/udp.h, Linux 4.18 */

struct tun_push {
    int family;
    unsigned mtu;
    atomic_bool stop;
    atomic_int gso; /* 2: not known yet, 1: segmentation offload works, 0: a datagram per
                       send, -1: no sender */
};

static void *tun_push_main(void *arg)
{
    struct tun_push *p = arg;
    struct sockaddr_storage ss;
    socklen_t sl = jkt_sockaddr(p->family, jkt_local_ip(p->family), 9999, &ss);
    int fd = socket(p->family, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        if (fd >= 0)
            close(fd);
        atomic_store(&p->gso, -1);
        return NULL;
    }
    static uint8_t payload[65536];
    int seg = (int)p->mtu - (p->family == AF_INET ? 28 : 48); /* IP + UDP headers */
    size_t n = (size_t)seg;
    if (seg <= 30000 && setsockopt(fd, IPPROTO_UDP, JKT_UDP_SEGMENT, &seg, sizeof seg) == 0) {
        int k = 60000 / seg > 64 ? 64 : 60000 / seg;
        if (send(fd, payload, (size_t)seg * (size_t)k, 0) >= 0)
            n = (size_t)seg * (size_t)k;
        else { /* no GSO on this device (kernels before 6.11): one per send */
            int off = 0;
            setsockopt(fd, IPPROTO_UDP, JKT_UDP_SEGMENT, &off, sizeof off);
        }
    }
    atomic_store(&p->gso, n > (size_t)seg);
    while (!atomic_load_explicit(&p->stop, memory_order_relaxed))
        for (int i = 0; i < 16; i++)
            (void)send(fd, payload, n, 0);
    close(fd);
    return NULL;
}

int bench_tun_read_limit(unsigned mtu, int family, struct tun_ref *out)
{
    struct jkt_tun tun;
    if (jkt_tun_open(NULL, mtu, 0, &tun) < 0)
        return -1;
    struct tun_push p = {.family = family, .mtu = mtu};
    atomic_init(&p.gso, 2);
    pthread_t th;
    if (pthread_create(&th, NULL, tun_push_main, &p) != 0) {
        jkt_tun_close(&tun);
        return -1;
    }
    static uint8_t frame[65536];
    uint64_t bytes = 0;
    double t0 = jkt_now_s(), dt, c0 = thread_cpu_s();
    /* non-blocking, waiting only when the queue is empty, for the time
     * left: a sender that stopped cannot hang the bench */
    fcntl(tun.fd, F_SETFL, fcntl(tun.fd, F_GETFL) | O_NONBLOCK);
    while ((dt = jkt_now_s() - t0) < 1.0 && atomic_load(&p.gso) >= 0) {
        ssize_t r = read(tun.fd, frame, sizeof frame);
        if (r > 0) {
            bytes += (uint64_t)r;
        } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = {tun.fd, POLLIN, 0};
            poll(&pf, 1, (int)((1.0 - dt) * 1000) + 1);
        } else {
            break;
        }
    }
    out->cpu_s = thread_cpu_s() - c0;
    out->bytes = bytes;
    out->secs = dt;
    atomic_store(&p.stop, true);
    pthread_join(th, NULL);
    jkt_tun_close(&tun);
    if (atomic_load(&p.gso) < 0 || bytes < (uint64_t)mtu * 1000) {
        fprintf(stderr, "jktcp-bench: tun-read-limit: the sender did not run\n");
        return -1;
    }
    if (atomic_load(&p.gso) == 0)
        fprintf(stderr, "tun-read-limit: no UDP segmentation offload here; the figure is the "
                        "sender's (a datagram per send)\n");
    return 0;
}
