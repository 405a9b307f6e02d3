/* SPDX-License-Identifier: MIT */
/*
 * stream_framing: IP packets back to back on a byte stream (the CDTunnel
 * shape).
 *
 * iOS's CDTunnel / RemoteXPC tunnel, once its TLS session and handshake
 * are done, carries raw IPv6 packets with nothing between them: each
 * packet's length is read from its own IP header. JKTCP_FRAMING_STREAM
 * does exactly that on any byte stream; reads may split or join packets
 * anywhere. Here a Unix stream socket stands in for the TLS session (for
 * TLS itself use jktcp_transport_ops with your TLS library's read/write).
 *
 * The program connects through the tunnel to a discard-and-echo server,
 * sends BYTES of data from a writer thread while the main thread reads the
 * echo and checks it, then closes.
 *
 *   usage: stream_framing TRANSPORT LOCAL_IP PEER_IP PORT [BYTES [MTU]]
 *     TRANSPORT  unix:PATH  connect to a Unix stream socket (the tunnel)
 *                fd:N       an inherited stream fd (socketpair end, pipe pair, ...)
 *     PORT       an echo server on the far side of the tunnel
 *     MTU        the largest packet, as the tunnel's far end announced (1500)
 *
 *   e.g. stream_framing unix:/run/tunnel.sock fd00::2 fd00::1 7 4194304 16000
 */
#include <jktcp.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static jktcp_stream s;
static long total = 4L << 20;

static uint8_t pattern(long i)
{
    return (uint8_t)((i * 7) ^ (i >> 9) ^ (i >> 17));
}

/* Writer thread: BYTES of pattern, then FIN. It uses the same stream id
 * as the reading main thread: streams are thread-safe. */
static void *writer(void *arg)
{
    (void)arg;
    uint8_t buf[32768];
    for (long off = 0; off < total;) {
        size_t n = total - off < (long)sizeof buf ? (size_t)(total - off) : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(off + (long)i);
        ssize_t w = jktcp_stream_write_all(s, buf, n, 10000);
        if (w != (ssize_t)n) {
            fprintf(stderr, "write: %s\n", jktcp_strerror((int)w));
            return (void *)1;
        }
        off += (long)n;
    }
    jktcp_stream_shutdown(s);
    return NULL;
}

static int open_stream_fd(const char *spec)
{
    if (strncmp(spec, "fd:", 3) == 0)
        return atoi(spec + 3);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strncmp(spec, "unix:", 5) != 0 || strlen(spec + 5) >= sizeof sa.sun_path) {
        fprintf(stderr, "%s: not unix:PATH nor fd:N\n", spec);
        return -1;
    }
    memcpy(sa.sun_path, spec + 5, strlen(spec + 5));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror(spec);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s unix:PATH|fd:N LOCAL_IP PEER_IP PORT [BYTES [MTU]]\n", argv[0]);
        return 2;
    }
    total = argc > 5 ? atol(argv[5]) : total;
    unsigned mtu = argc > 6 ? (unsigned)atoi(argv[6]) : 1500;
    int fd = open_stream_fd(argv[1]);
    if (fd < 0 || total < 1)
        return 1;

    /* The only difference from a TUN: JKTCP_FRAMING_STREAM. Each frame is
     * still written with one write call (iOS's forwarder insists);
     * JKTCP_TRANSPORT_COALESCE would allow several per call. */
    jktcp_transport *t;
    jktcp_adapter *a;
    jktcp_handle h;
    int rc = jktcp_transport_fd(fd, JKTCP_FRAMING_STREAM, &t);
    if (rc == 0)
        rc = jktcp_adapter_new(t, argv[2], argv[3], &a);
    if (rc == 0)
        rc = jktcp_adapter_set_mtu(a, mtu);
    if (rc == 0)
        rc = jktcp_handle_start(a, &h);
    if (rc != 0) {
        fprintf(stderr, "setup: %s\n", jktcp_strerror(rc));
        return 1;
    }
    rc = jktcp_handle_connect(h, atoi(argv[4]), 5000, &s);
    if (rc != 0) {
        fprintf(stderr, "connect through the tunnel: %s\n", jktcp_strerror(rc));
        jktcp_handle_close(h, 0);
        return 1;
    }
    printf("connected through the tunnel to [%s]:%s, MTU %u\n", argv[3], argv[4], mtu);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t wt;
    int started = pthread_create(&wt, NULL, writer, NULL) == 0, ok = started;
    long got = 0;
    uint8_t buf[65536];
    while (ok) { /* read the echo until the server closes after our FIN */
        ssize_t n = jktcp_stream_read(s, buf, sizeof buf, 10000);
        if (n <= 0) {
            if (n < 0)
                fprintf(stderr, "read: %s\n", jktcp_strerror((int)n));
            ok = n == 0;
            break;
        }
        for (ssize_t i = 0; i < n && ok; i++)
            ok = buf[i] == pattern(got + i);
        if (!ok)
            fprintf(stderr, "echo differs near byte %ld\n", got);
        got += n;
    }
    if (!ok)
        jktcp_stream_abort(s); /* wakes the writer if it is blocked */
    void *res = NULL;
    if (started && pthread_join(wt, &res) == 0 && res != NULL)
        ok = 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ok = ok && got == total;
    printf("echoed %ld of %ld bytes in %.3f s (%.1f MB/s each way)\n", got, total, secs,
           (double)got / secs / 1e6);

    jktcp_stats st;
    jktcp_handle_stats(h, &st, sizeof st);
    printf("frames in/out %llu/%llu through the byte stream\n", (unsigned long long)st.frames_in,
           (unsigned long long)st.frames_out);
    jktcp_stream_close(s); /* after an abort: -EBADF, harmless (ids are never reused) */
    jktcp_handle_close(h, 1000);
    close(fd);
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
