/* SPDX-License-Identifier: MIT */
/*
 * adapter_echo: the single-threaded API, start to finish.
 *
 * One adapter (one TCP/IP endpoint) over a TUN device, one connection to
 * an echo server on the other side: connect, send a message, read it back,
 * half-close, wait for the server's end of stream, close, flush, free.
 * Nothing runs in the background: every jktcp_conn_* call that waits also
 * drives the adapter (reads frames, fires timers, sends segments).
 *
 *   usage: adapter_echo TRANSPORT LOCAL_IP PEER_IP PORT [MESSAGE]
 *     TRANSPORT  tun:NAME  attach to an existing TUN device
 *                          (ip tuntap add NAME mode tun; ip addr add ...)
 *                fd:N      an inherited fd carrying one IP packet per read/write
 *
 *   e.g. adapter_echo tun:jkt0 198.18.0.2 198.18.0.1 7 "hello"
 *
 * Exit status 0 when the echo came back intact and the close completed.
 */
#include <jktcp.h>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* "tun:NAME" or "fd:N" -> a file descriptor that reads/writes whole IP packets. */
static int open_packet_fd(const char *spec)
{
    if (strncmp(spec, "fd:", 3) == 0)
        return atoi(spec + 3);
    if (strncmp(spec, "tun:", 4) != 0 || if_nametoindex(spec + 4) == 0) {
        fprintf(stderr, "%s: not fd:N nor tun:NAME of an existing TUN device\n", spec);
        return -1;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI}; /* raw IP, no extra header */
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
        fprintf(stderr, "usage: %s tun:NAME|fd:N LOCAL_IP PEER_IP PORT [MESSAGE]\n", argv[0]);
        return 2;
    }
    const char *msg = argc > 5 ? argv[5] : "Hello from jktcp!";
    size_t len = strlen(msg);
    int fd = open_packet_fd(argv[1]);
    if (fd < 0)
        return 1;

    /* 1. The transport says how frames travel: one packet per read/write on
     *    a TUN fd. The adapter takes it over (and frees it with itself). */
    jktcp_transport *t;
    jktcp_adapter *a;
    int rc = jktcp_transport_fd(fd, JKTCP_FRAMING_PACKET, &t);
    if (rc == 0)
        rc = jktcp_adapter_new(t, argv[2], argv[3], &a); /* our address, the peer's */
    if (rc != 0) {
        fprintf(stderr, "adapter: %s\n", jktcp_strerror(rc));
        return 1;
    }
    jktcp_adapter_set_mtu(a, 1500); /* largest frame we send */

    /* 2. Connect: blocks (up to 5 s) while it drives the handshake. */
    jktcp_conn *c;
    rc = jktcp_adapter_connect(a, atoi(argv[4]), 5000, &c);
    if (rc != 0) {
        fprintf(stderr, "connect to %s port %s: %s\n", argv[3], argv[4], jktcp_strerror(rc));
        jktcp_adapter_free(a);
        return 1;
    }
    jktcp_info info;
    jktcp_conn_info(c, &info, sizeof info); /* pass sizeof: structs grow over time */
    printf("connected %s:%u -> %s:%u (mss %u, SACK %s)\n", argv[2], info.local_port, argv[3],
           info.remote_port, info.mss, info.sack ? "on" : "off");

    /* 3. Write the message, then read until as many bytes came back.
     *    Reads return what is there (maybe less than asked). */
    char *back = calloc(1, len + 1);
    size_t got = 0;
    ssize_t n = back ? jktcp_conn_write(c, msg, len, 5000) : -1;
    if (n != (ssize_t)len)
        fprintf(stderr, "write: %s\n", jktcp_strerror((int)n));
    while (n == (ssize_t)len && got < len) {
        ssize_t r = jktcp_conn_read(c, back + got, len - got, 5000);
        if (r <= 0) { /* 0 = the peer closed early; < 0 = an error or -EAGAIN */
            fprintf(stderr, "read: %s\n", r == 0 ? "early end of stream" : jktcp_strerror((int)r));
            break;
        }
        got += (size_t)r;
    }
    int ok = got == len && memcmp(back, msg, len) == 0;
    if (ok)
        printf("echoed %zu bytes: \"%s\"\n", len, back);

    /* 4. Half-close: our FIN goes out after the data. An echo server then
     *    closes its side, and a read returns 0 (end of stream). */
    char b;
    if (ok && (jktcp_conn_shutdown(c) != 0 || jktcp_conn_read(c, &b, 1, 5000) != 0)) {
        fprintf(stderr, "no end of stream after shutdown\n");
        ok = 0;
    }
    jktcp_conn_info(c, &info, sizeof info);
    printf("state after shutdown and end of stream: %s\n", jktcp_state_name(info.state));

    /* 5. Close releases the pointer at once; flush drives the adapter until
     *    the close is finished on the wire; free sends RST to anything left. */
    jktcp_conn_close(c);
    rc = jktcp_adapter_flush(a, 2000);
    if (rc != 0) {
        fprintf(stderr, "flush: %s\n", jktcp_strerror(rc));
        ok = 0;
    }
    jktcp_stats st;
    jktcp_adapter_stats(a, &st, sizeof st);
    printf("frames in/out %llu/%llu, retransmits %llu\n", (unsigned long long)st.frames_in,
           (unsigned long long)st.frames_out, (unsigned long long)st.retransmits);
    jktcp_adapter_free(a); /* the fd stays open: the transport does not own it */
    close(fd);
    free(back);
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
