/*
 * jktcp-demo: a real TCP conversation between jktcp and the Linux kernel.
 *
 * Creates a private network namespace (so nothing outside is touched), a
 * TUN device jktdemo0 at MTU 1500 with the kernel at 198.18.0.1 / fd00::1,
 * and a kernel TCP echo server. jktcp (198.18.0.2 / fd00::2) then connects
 * over IPv6 and IPv4, sends a message and a few MiB, reads them back,
 * verifies them, shuts down, closes and flushes, printing each step.
 * Every frame is captured to /tmp/jktcp-demo.pcap.
 *
 * Exit status: 0 success (or "skipped" without namespaces / TUN), 1 failure.
 * Run as root: make demo
 */
#include "jktcp.h"
#include "netns.c" /* the kernel-peer harness; a tool is built from one file */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEMO_MTU 1500
#define DEMO_BYTES (4u * 1024u * 1024u)
#define DEMO_PIECE (64u * 1024u)
#define PCAP_PATH "/tmp/jktcp-demo.pcap"

static double g_t0;

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[%8.3f ms] ", (jkt_now_s() - g_t0) * 1000);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAILED: ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    return -1;
}

static const char *state_of(jktcp_conn *c)
{
    jktcp_info in;
    if (jktcp_conn_info(c, &in, sizeof in) != 0)
        return "?";
    return jktcp_state_name(in.state);
}

static int write_all(jktcp_conn *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = jktcp_conn_write(c, p, len, 10000);
        if (n <= 0)
            return n == 0 ? -EIO : (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_exact(jktcp_conn *c, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = jktcp_conn_read(c, p, len, 10000);
        if (n == 0)
            return -ECONNABORTED; /* early EOF */
        if (n < 0)
            return (int)n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int run_family(int tunfd, int family, const char *pcap)
{
    const char *fam = family == AF_INET6 ? "IPv6" : "IPv4";
    const char *lip = jkt_local_ip(family), *kip = jkt_kernel_ip(family);
    printf("\n=== %s: jktcp %s  <->  kernel %s ===\n", fam, lip, kip);

    struct jkt_server srv = {.kind = JKT_SRV_ECHO, .family = family};
    int rc = jkt_server_start(&srv);
    if (rc)
        return fail("kernel echo server on %s: %s", kip, strerror(-rc));
    say("kernel echo server listening on %s%s%s:%u", family == AF_INET6 ? "[" : "", kip,
        family == AF_INET6 ? "]" : "", srv.port);

    jktcp_transport *tr;
    jktcp_adapter *a = NULL;
    jktcp_conn *c = NULL;
    uint8_t *out = NULL, *in = NULL;
    int result = -1;
    rc = jktcp_transport_fd(tunfd, JKTCP_FRAMING_PACKET, &tr);
    if (rc) {
        fail("jktcp_transport_fd: %s", jktcp_strerror(rc));
        goto done;
    }
    rc = jktcp_adapter_new(tr, lip, kip, &a);
    if (rc) {
        fail("jktcp_adapter_new(%s, %s): %s", lip, kip, jktcp_strerror(rc));
        goto done;
    }
    jktcp_adapter_set_mtu(a, DEMO_MTU);
    rc = jktcp_adapter_pcap(a, pcap);
    if (rc)
        say("pcap %s: %s (continuing without)", pcap, jktcp_strerror(rc));
    say("adapter up on the TUN fd (packet framing, MTU %u)", DEMO_MTU);

    double t = jkt_now_s();
    rc = jktcp_conn_connect(a, srv.port, 5000, &c);
    if (rc) {
        fail("connect to %s port %u: %s", kip, srv.port, jktcp_strerror(rc));
        c = NULL;
        goto done;
    }
    jktcp_info info;
    jktcp_conn_info(c, &info, sizeof info);
    say("connected: %s port %u -> %s port %u in %.2f ms, state %s", lip, info.local_port, kip,
        info.remote_port, (jkt_now_s() - t) * 1000, jktcp_state_name(info.state));
    say("  negotiated: mss %u, window scale %u/%u, SACK %s, timestamps %s", info.mss,
        info.snd_wscale, info.rcv_wscale, info.sack ? "yes" : "no",
        info.timestamps ? "yes" : "no");

    char msg[96];
    int mlen = snprintf(msg, sizeof msg, "Hello from jktcp over %s!", fam);
    char back[96] = "";
    t = jkt_now_s();
    if ((rc = write_all(c, msg, (size_t)mlen)) || (rc = read_exact(c, back, (size_t)mlen))) {
        fail("echo of the message: %s", jktcp_strerror(rc));
        goto done;
    }
    if (memcmp(back, msg, (size_t)mlen) != 0) {
        fail("echo came back different: \"%.*s\"", mlen, back);
        goto done;
    }
    say("sent \"%s\", echoed back in %.3f ms", msg, (jkt_now_s() - t) * 1000);

    out = malloc(DEMO_PIECE);
    in = malloc(DEMO_PIECE);
    if (!out || !in) {
        fail("out of memory");
        goto done;
    }
    t = jkt_now_s();
    for (uint64_t off = 0; off < DEMO_BYTES; off += DEMO_PIECE) {
        jkt_pattern_fill(out, DEMO_PIECE, off, 0xDE70);
        if ((rc = write_all(c, out, DEMO_PIECE)) || (rc = read_exact(c, in, DEMO_PIECE))) {
            fail("echo at offset %llu: %s", (unsigned long long)off, jktcp_strerror(rc));
            goto done;
        }
        if (memcmp(in, out, DEMO_PIECE) != 0) {
            fail("echoed data differs in the block at offset %llu", (unsigned long long)off);
            goto done;
        }
    }
    double dt = jkt_now_s() - t;
    say("echoed %u MiB in %u KiB rounds, verified byte for byte: %.3f s, %.1f MB/s each way",
        DEMO_BYTES >> 20, DEMO_PIECE >> 10, dt, DEMO_BYTES / dt / 1e6);
    jktcp_conn_info(c, &info, sizeof info);
    say("  conn: sent %llu B acked, received %llu B, srtt %u us, rttvar %u us, rto %u us, "
        "retransmits %u, cwnd %u, snd_wnd %u, rcv_wnd %u",
        (unsigned long long)info.bytes_sent, (unsigned long long)info.bytes_received,
        info.srtt_us, info.rttvar_us, info.rto_us, info.retransmits, info.cwnd, info.snd_wnd,
        info.rcv_wnd);

    rc = jktcp_conn_shutdown(c);
    if (rc) {
        fail("shutdown: %s", jktcp_strerror(rc));
        goto done;
    }
    say("shutdown (FIN sent after queued data): state %s", state_of(c));
    char b;
    ssize_t r = jktcp_conn_read(c, &b, 1, 5000);
    if (r != 0) {
        fail("expected EOF after the server closed, got %zd (%s)", r, jktcp_strerror((int)r));
        goto done;
    }
    say("read EOF: the kernel echo server saw our FIN and closed; state %s", state_of(c));
    rc = jktcp_conn_close(c);
    c = NULL;
    if (rc) {
        fail("close: %s", jktcp_strerror(rc));
        goto done;
    }
    t = jkt_now_s();
    rc = jktcp_adapter_flush(a, 5000);
    if (rc) {
        fail("flush: %s", jktcp_strerror(rc));
        goto done;
    }
    say("closed and flushed in %.3f ms", (jkt_now_s() - t) * 1000);

    jkt_server_wait_done(&srv, 1, 2000);
    char dump[2048] = "";
    int stuck = jkt_ss_count(srv.port, "LAST-ACK|FIN-WAIT-1|FIN-WAIT-2|CLOSING|CLOSE-WAIT", dump,
                             sizeof dump);
    for (int i = 0; stuck > 0 && i < 100; i++) {
        usleep(10000);
        stuck = jkt_ss_count(srv.port, "LAST-ACK|FIN-WAIT-1|FIN-WAIT-2|CLOSING|CLOSE-WAIT", dump,
                             sizeof dump);
    }
    if (stuck > 0) {
        fail("kernel sockets still half-closed after flush:\n%s", dump);
        goto done;
    }
    if (stuck == 0)
        say("kernel side: no socket left in LAST-ACK/FIN-WAIT/CLOSE-WAIT (ss)");
    say("kernel server: %lu bytes in, %lu bytes out, clean EOFs %lu",
        (unsigned long)atomic_load(&srv.bytes_in), (unsigned long)atomic_load(&srv.bytes_out),
        (unsigned long)atomic_load(&srv.eofs));

    jktcp_stats st;
    if (jktcp_adapter_stats(a, &st, sizeof st) == 0)
        say("adapter stats: frames in/out %llu/%llu, bytes in/out %llu/%llu, retransmits %llu, "
            "rst_sent %llu, ignored non-TCP %llu, dropped (address %llu, version %llu, "
            "checksum %llu, invalid %llu)",
            (unsigned long long)st.frames_in, (unsigned long long)st.frames_out,
            (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
            (unsigned long long)st.retransmits, (unsigned long long)st.rst_sent,
            (unsigned long long)st.ignored_proto, (unsigned long long)st.drop_address,
            (unsigned long long)st.drop_version, (unsigned long long)st.drop_checksum,
            (unsigned long long)st.drop_invalid);
    result = 0;
done:
    free(out);
    free(in);
    if (c)
        jktcp_conn_abort(c);
    if (a) {
        jktcp_adapter_pcap(a, NULL);
        jktcp_adapter_free(a); /* the TUN fd stays open: the transport does not own it */
    }
    jkt_server_stop(&srv);
    return result;
}

/* Append the records of pcap `from` (same link type) to `to`. */
static int pcap_append(const char *to, const char *from)
{
    FILE *f = fopen(from, "rb"), *o = NULL;
    int rc = -1;
    uint8_t h1[24], h2[24];
    if (!f)
        return -1;
    o = fopen(to, "r+b");
    if (!o || fread(h2, 1, 24, f) != 24 || fread(h1, 1, 24, o) != 24 ||
        memcmp(h1 + 20, h2 + 20, 4) != 0 || memcmp(h1, h2, 4) != 0)
        goto out;
    if (fseek(o, 0, SEEK_END) != 0)
        goto out;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (fwrite(buf, 1, n, o) != n)
            goto out;
    rc = 0;
out:
    if (o)
        fclose(o);
    fclose(f);
    return rc;
}

int main(void)
{
    g_t0 = jkt_now_s();
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%s demo: a real TCP connection to the Linux kernel in a private network namespace\n",
           jktcp_version());
    int rc = jkt_netns_enter();
    if (rc) {
        printf("skipped: cannot create a network namespace (%s); run as root\n", strerror(-rc));
        return 0;
    }
    say("entered a new network namespace (loopback up; nothing outside is touched)");
    struct jkt_tun tun;
    rc = jkt_tun_open("jktdemo0", DEMO_MTU, 0, &tun);
    if (rc == -ENOENT || rc == -ENODEV || rc == -EPERM || rc == -EACCES || rc == -ENXIO) {
        printf("skipped: no usable /dev/net/tun (%s)\n", strerror(-rc));
        return 0;
    }
    if (rc) {
        printf("FAILED: setting up the TUN device: %s\n", strerror(-rc));
        return 1;
    }
    say("TUN %s up, MTU %u: kernel %s/24 and %s/64; jktcp is %s and %s", tun.name, tun.mtu,
        JKT_KERNEL_IP4, JKT_KERNEL_IP6, JKT_LOCAL_IP4, JKT_LOCAL_IP6);

    const char *tmp4 = PCAP_PATH ".ipv4.tmp";
    int bad = 0;
    bad |= run_family(tun.fd, AF_INET6, PCAP_PATH) != 0;
    bad |= run_family(tun.fd, AF_INET, tmp4) != 0;
    jkt_tun_close(&tun);

    printf("\n");
    if (pcap_append(PCAP_PATH, tmp4) == 0) {
        unlink(tmp4);
        printf("pcap of both connections written to %s (open with Wireshark or tshark -r)\n",
               PCAP_PATH);
    } else {
        printf("pcap written to %s (IPv6) and %s (IPv4)\n", PCAP_PATH, tmp4);
    }
    if (bad) {
        printf("demo FAILED (see above)\n");
        return 1;
    }
    printf("demo OK: IPv6 and IPv4 connections to the kernel echoed %u MiB each, verified, and "
           "closed cleanly\n",
           DEMO_BYTES >> 20);
    return 0;
}
