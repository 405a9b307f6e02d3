/* SPDX-License-Identifier: MIT */
/*
 * listener_echo: accept connections the peer opens to us.
 *
 * jktcp listens on LOCAL_IP:PORT; an accept loop hands each new stream to
 * a thread of its own that echoes until the peer closes (read returns 0),
 * then closes the stream. After CONNECTIONS connections have been served
 * the program stops listening and exits.
 *
 *   usage: listener_echo TRANSPORT LOCAL_IP PEER_IP PORT [CONNECTIONS]
 *     TRANSPORT  tun:NAME (an existing TUN device) or fd:N (an inherited packet fd)
 *
 *   e.g. listener_echo tun:jkt0 198.18.0.2 198.18.0.1 8080 3
 *        and from the kernel side: nc 198.18.0.2 8080
 */
#include <jktcp.h>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_CONNS 64

struct conn {
    int n;
    jktcp_stream s;
    pthread_t th;
    int ok;
};

/* One connection: echo everything, then close. */
static void *serve(void *arg)
{
    struct conn *c = arg;
    char buf[16384];
    long total = 0;
    ssize_t n;
    while ((n = jktcp_stream_read(c->s, buf, sizeof buf, 10000)) > 0) {
        if (jktcp_stream_write_all(c->s, buf, (size_t)n, 10000) != n)
            break;
        total += n;
    }
    c->ok = n == 0; /* 0: the peer closed its side cleanly */
    jktcp_info info;
    jktcp_stream_info(c->s, &info, sizeof info);
    printf("connection %d from port %u: echoed %ld bytes, %s\n", c->n, info.remote_port, total,
           c->ok ? "peer closed" : jktcp_strerror((int)n));
    jktcp_stream_close(c->s); /* our FIN follows the echoed data */
    return NULL;
}

static int open_packet_fd(const char *spec)
{
    if (strncmp(spec, "fd:", 3) == 0)
        return atoi(spec + 3);
    if (strncmp(spec, "tun:", 4) != 0 || if_nametoindex(spec + 4) == 0) {
        fprintf(stderr, "%s: not fd:N nor tun:NAME of an existing TUN device\n", spec);
        return -1;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", spec + 4);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) != 0) {
        perror("attaching to the TUN device");
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s tun:NAME|fd:N LOCAL_IP PEER_IP PORT [CONNECTIONS]\n", argv[0]);
        return 2;
    }
    int want = argc > 5 ? atoi(argv[5]) : 3;
    if (want < 1 || want > MAX_CONNS) {
        fprintf(stderr, "CONNECTIONS: 1..%d\n", MAX_CONNS);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, even into a pipe */
    int fd = open_packet_fd(argv[1]);
    if (fd < 0)
        return 1;
    jktcp_transport *t;
    jktcp_adapter *a;
    jktcp_handle h;
    jktcp_listener l;
    int rc = jktcp_transport_fd(fd, JKTCP_FRAMING_PACKET, &t);
    if (rc == 0)
        rc = jktcp_adapter_new(t, argv[2], argv[3], &a);
    if (rc == 0)
        rc = jktcp_handle_start(a, &h);
    if (rc == 0)
        rc = jktcp_handle_listen(h, atoi(argv[4]), 16, &l); /* backlog 16 */
    if (rc != 0) {
        fprintf(stderr, "listen: %s\n", jktcp_strerror(rc));
        return 1;
    }
    printf("listening on %s port %s for %d connections\n", argv[2], argv[4], want);

    /* The accept loop. An accepted stream is a stream like any other. */
    static struct conn conns[MAX_CONNS];
    int n = 0, ok = 1;
    while (n < want) {
        jktcp_stream s;
        rc = jktcp_listener_accept(l, 30000, &s);
        if (rc != 0) {
            fprintf(stderr, "accept: %s\n", jktcp_strerror(rc)); /* -EAGAIN: 30 s, nobody came */
            ok = 0;
            break;
        }
        conns[n] = (struct conn){.n = n + 1, .s = s};
        if (pthread_create(&conns[n].th, NULL, serve, &conns[n]) != 0) {
            jktcp_stream_abort(s);
            ok = 0;
            break;
        }
        n++;
    }
    jktcp_listener_close(l); /* no more connections: later SYNs get RST */
    for (int i = 0; i < n; i++) {
        pthread_join(conns[i].th, NULL);
        ok = ok && conns[i].ok;
    }
    jktcp_handle_close(h, 1000); /* up to 1 s for the closes to finish */
    close(fd);
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
