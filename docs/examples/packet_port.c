/* SPDX-License-Identifier: MIT */
/*
 * packet_port: the host program moves the frames itself.
 *
 * Some hosts have packets but no fd for jktcp to read: a VPN extension's
 * packet flow, a foreign-language runtime, a simulator. A jktcp_port is an
 * in-memory pipe of frames: the host pushes frames that arrived for jktcp
 * (jktcp_port_push) and pulls the frames jktcp wants sent
 * (jktcp_port_pull); jktcp_port_pull_fd tells it when there is something
 * to pull. Everything on the port is thread-safe.
 *
 * Here the "host" owns a TUN fd and copies frames by hand between it and
 * the port in its main thread, while an application thread uses a stream
 * of the handle as usual: an echo of BYTES, checked.
 *
 *   usage: packet_port TRANSPORT LOCAL_IP PEER_IP PORT [BYTES]
 *     TRANSPORT  tun:NAME (an existing TUN device) or fd:N (an inherited packet fd)
 *     PORT       an echo server on the peer
 */
#include <jktcp.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static jktcp_handle h;
static int port_no;
static long total = 1L << 20;
static atomic_int app_done; /* 1: ok, 2: failed */

/* The application: a stream like any other, unaware of the port. */
static void *app(void *arg)
{
    (void)arg;
    jktcp_stream s;
    static uint8_t out[65536], in[65536];
    int ok = 0, rc = jktcp_handle_connect(h, port_no, 5000, &s);
    if (rc != 0) {
        fprintf(stderr, "connect: %s\n", jktcp_strerror(rc));
        goto done;
    }
    long off = 0;
    for (; off < total; off += (long)sizeof out) { /* 64 KiB there and back, in turn */
        size_t n = total - off < (long)sizeof out ? (size_t)(total - off) : sizeof out;
        for (size_t i = 0; i < n; i++)
            out[i] = (uint8_t)((off + (long)i) * 131 >> 3);
        if (jktcp_stream_write_all(s, out, n, 5000) != (ssize_t)n)
            break;
        size_t got = 0;
        ssize_t r = 1;
        while (got < n && (r = jktcp_stream_read(s, in + got, n - got, 5000)) > 0)
            got += (size_t)r;
        if (got < n || memcmp(in, out, n) != 0)
            break;
    }
    ok = off >= total;
    printf("application: echoed %ld bytes through the port%s\n", off < total ? off : total,
           ok ? ", verified" : ": FAILED");
    jktcp_stream_close(s);
done:
    /* Closing the handle lets the stream's close finish: the pump must
     * still be running, so the application does it before saying done. */
    jktcp_handle_close(h, 1000);
    atomic_store(&app_done, ok ? 1 : 2);
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
        fprintf(stderr, "usage: %s tun:NAME|fd:N LOCAL_IP PEER_IP PORT [BYTES]\n", argv[0]);
        return 2;
    }
    port_no = atoi(argv[4]);
    total = argc > 5 ? atol(argv[5]) : total;
    int fd = open_packet_fd(argv[1]);
    if (fd < 0)
        return 1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* the pump never blocks on it */

    /* A port (0: default 4 MiB queued per direction) and its transport. */
    jktcp_port *port;
    jktcp_transport *t;
    jktcp_adapter *a;
    int rc = jktcp_port_new(0, &port);
    if (rc == 0)
        rc = jktcp_port_transport(port, &t);
    if (rc == 0)
        rc = jktcp_adapter_new(t, argv[2], argv[3], &a);
    if (rc == 0)
        rc = jktcp_handle_start(a, &h);
    if (rc != 0) {
        fprintf(stderr, "setup: %s\n", jktcp_strerror(rc));
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, app, NULL) != 0)
        return 1;

    /* The pump: TUN -> port (push), port -> TUN (pull), until the app is done. */
    unsigned long pushed = 0, pulled = 0, dropped = 0;
    static uint8_t frame[65575]; /* the largest frame jktcp handles */
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                          {.fd = jktcp_port_pull_fd(port), .events = POLLIN}};
    while (atomic_load(&app_done) == 0) {
        if (poll(p, 2, 50) < 0 && errno != EINTR)
            break;
        ssize_t n;
        while ((n = read(fd, frame, sizeof frame)) > 0) {
            if (jktcp_port_push(port, frame, (size_t)n) == 0)
                pushed++;
            else
                dropped++; /* queue full (-EAGAIN): like a full NIC ring; TCP resends */
        }
        while ((n = jktcp_port_pull(port, frame, sizeof frame, 0)) > 0) {
            if (write(fd, frame, (size_t)n) == n)
                pulled++;
        }
    }
    pthread_join(th, NULL);
    printf("pump: %lu frames pushed in, %lu pulled out, %lu dropped\n", pushed, pulled, dropped);
    jktcp_port_free(port); /* the handle freed the transport; this frees the port */
    close(fd);
    int ok = atomic_load(&app_done) == 1;
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
