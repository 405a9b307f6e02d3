/* SPDX-License-Identifier: MIT */
/* Helpers shared by the kernel-peer tests (see kernel_test.h). */
#include "kernel_test.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netprobe.h"
#include "tuntest.h"

void kt_info_line(jktcp_conn *c, char *buf, size_t cap)
{
    jktcp_info in;
    memset(&in, 0, sizeof in);
    if (jktcp_conn_info(c, &in, sizeof in) != 0) {
        snprintf(buf, cap, "(no info)");
        return;
    }
    snprintf(buf, cap,
             "%s port %u->%u mss %u srtt %uus rto %uus retrans %u cwnd %u snd_wnd %u rcv_wnd %u "
             "ws %u/%u sack %u ts %u",
             jktcp_state_name(in.state), in.local_port, in.remote_port, in.mss, in.srtt_us,
             in.rto_us, in.retransmits, in.cwnd, in.snd_wnd, in.rcv_wnd, in.snd_wscale,
             in.rcv_wscale, in.sack, in.timestamps);
}

const char *fam_name(int family)
{
    return family == AF_INET6 ? "v6" : "v4";
}

void kt_up_lossy(struct kt *k, int family, unsigned mtu, bool stream, unsigned loss)
{
    memset(k, 0, sizeof *k);
    k->family = family;
    k->mtu = mtu;
    k->stream = stream;
    k->loss = loss;
    k->bridged = stream || loss > 0;
    k->tun.fd = -1;
    jkt_tun_up_or_skip("kernel", "jkt0", mtu, 0, &k->tun);

    int rc;
    jktcp_transport *t = NULL;
    if (k->bridged) {
        rc = jkt_bridge_start_lossy(&k->br, k->tun.fd,
                                    stream ? JKT_BRIDGE_RANDOM_CHUNKS : JKT_BRIDGE_SEQPACKET,
                                    0x5eed, loss);
        cr_assert_eq(rc, 0, "bridge: %s", strerror(-rc));
        rc = jktcp_transport_fd(k->br.user_fd, stream ? JKTCP_FRAMING_STREAM : JKTCP_FRAMING_PACKET,
                                &t);
    } else {
        rc = jktcp_transport_fd(k->tun.fd, JKTCP_FRAMING_PACKET, &t);
    }
    cr_assert_eq(rc, 0, "jktcp_transport_fd: %s", jktcp_strerror(rc));
    rc = jktcp_adapter_new(t, jkt_local_ip(family), jkt_kernel_ip(family), &k->a);
    cr_assert_eq(rc, 0, "jktcp_adapter_new: %s", jktcp_strerror(rc));
    rc = jktcp_adapter_set_mtu(k->a, mtu);
    cr_assert_eq(rc, 0, "jktcp_adapter_set_mtu(%u): %s", mtu, jktcp_strerror(rc));
}

void kt_up(struct kt *k, int family, unsigned mtu, bool stream)
{
    kt_up_lossy(k, family, mtu, stream, 0);
}

void kt_down(struct kt *k)
{
    if (k->a)
        jktcp_adapter_free(k->a);
    k->a = NULL;
    if (k->bridged) {
        int err = atomic_load(&k->br.error);
        jkt_bridge_stop(&k->br);
        cr_expect_eq(err, 0, "bridge error: %s", strerror(-err));
    }
    jkt_tun_close(&k->tun);
}

void kt_server_up(struct kt *k, struct jkt_server *s, int kind)
{
    s->kind = kind;
    s->family = k->family;
    int rc = jkt_server_start(s);
    cr_assert_eq(rc, 0, "kernel server: %s", strerror(-rc));
}

void describe(const struct jkt_server *s, char *buf, size_t cap)
{
    jkt_server_describe(s, buf, cap);
}

/* Poll the adapter until the server finished n connections. */
int drive_until_server_done(struct kt *k, struct jkt_server *s, unsigned long n,
                            int timeout_ms)
{
    uint64_t end = jkt_now_us() + (uint64_t)timeout_ms * 1000u;
    while (atomic_load(&s->done) < n) {
        if (jkt_now_us() >= end)
            return -EAGAIN;
        int rc = jktcp_adapter_poll(k->a, 5);
        if (rc < 0)
            return rc;
    }
    return 0;
}

jktcp_conn *kt_connect_ok(struct kt *k, uint16_t port)
{
    jktcp_conn *c = NULL;
    int rc = jktcp_conn_connect(k->a, port, 5000, &c);
    cr_assert_eq(rc, 0, "connect %s:%u: %s", jkt_kernel_ip(k->family), port, jktcp_strerror(rc));
    cr_assert_not_null(c);
    return c;
}

/* Write all of buf; 0 or the failing return code. */
ssize_t write_all(jktcp_conn *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = jktcp_conn_write(c, p, len, IO_TIMEOUT);
        if (n <= 0)
            return n == 0 ? -EIO : n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes; 0, or 1 on early EOF, or the error. */
ssize_t kt_read_exact(jktcp_conn *c, void *buf, size_t len, int timeout_ms)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = jktcp_conn_read(c, p, len, timeout_ms);
        if (n == 0)
            return 1;
        if (n < 0)
            return n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write `total` pattern bytes; 0 or error. */
ssize_t upload(jktcp_conn *c, uint64_t total, uint32_t seed)
{
    uint8_t *buf = malloc(CHUNK);
    cr_assert_not_null(buf);
    uint64_t off = 0;
    ssize_t rc = 0;
    while (off < total) {
        size_t n = total - off < CHUNK ? (size_t)(total - off) : CHUNK;
        jkt_pattern_fill(buf, n, off, seed);
        rc = write_all(c, buf, n);
        if (rc)
            break;
        off += n;
    }
    free(buf);
    return rc;
}

/* Read to EOF verifying the pattern. Returns bytes read (>= 0) or error;
 * *bad = offset of the first wrong byte or UINT64_MAX. */
int64_t download(jktcp_conn *c, uint32_t seed, uint64_t *bad)
{
    uint8_t *buf = malloc(CHUNK);
    cr_assert_not_null(buf);
    uint64_t off = 0;
    *bad = UINT64_MAX;
    int64_t rc;
    for (;;) {
        ssize_t n = jktcp_conn_read(c, buf, CHUNK, IO_TIMEOUT);
        if (n == 0) {
            rc = (int64_t)off;
            break;
        }
        if (n < 0) {
            rc = n;
            break;
        }
        if (*bad == UINT64_MAX) {
            size_t at = jkt_pattern_check(buf, (size_t)n, off, seed);
            if (at != (size_t)n)
                *bad = off + at;
        }
        off += (uint64_t)n;
    }
    free(buf);
    return rc;
}

void report(struct kt *k, const char *what, uint64_t bytes, double secs, const char *extra)
{
    fprintf(stderr, "[kernel] %-22s %s mtu %-5u %s: %6.1f MiB in %6.3f s = %7.1f MB/s  %s\n", what,
            fam_name(k->family), k->mtu, k->stream    ? "stream"
            : k->offload ? (k->loss ? "offload, lossy" : "offload")
            : k->loss    ? "lossy "
                         : "packet",
            (double)bytes / MiB, secs, secs > 0 ? (double)bytes / secs / 1e6 : 0.0,
            extra ? extra : "");
}

/* Assert no kernel socket on port is stuck half-closed. Waits up to 1 s for
 * in-flight segments to land, without driving the adapter (drive: with k,
 * polling k's adapter instead of sleeping). */
static void kernel_clean_within_1s(struct kt *k, uint16_t port)
{
    char dump[4096] = "", first[4096] = "";
    int n = 0;
    for (int i = 0; i < 100; i++) {
        n = jkt_ss_count(port, STUCK_STATES, dump, sizeof dump);
        cr_assert_geq(n, 0, "ss: %s", strerror(-n));
        if (i == 0)
            memcpy(first, dump, sizeof first);
        if (n == 0) {
            if (i > 0)
                fprintf(stderr, "[kernel] note: port %u: kernel socket needed %d ms after flush "
                                "to finish closing; right after flush ss said: %s",
                        port, i * 10, first);
            return;
        }
        if (k)
            jktcp_adapter_poll(k->a, 10);
        else
            usleep(10000);
    }
    cr_assert_eq(n, 0, "kernel sockets on port %u still half-closed after flush:\n%s", port, dump);
}

void assert_kernel_clean(uint16_t port)
{
    kernel_clean_within_1s(NULL, port);
}

/* On a lossy link our last ACK of the kernel's FIN may be lost: the kernel
 * sends the FIN again after its RTO (200 ms) and our TIME-WAIT answers it
 * — if the adapter is driven. Without loss nothing needs driving. */
static void kt_assert_kernel_clean(struct kt *k, uint16_t port)
{
    kernel_clean_within_1s(k->loss ? k : NULL, port);
}

void close_and_flush(struct kt *k, jktcp_conn *c)
{
    int rc = jktcp_conn_close(c);
    cr_assert_eq(rc, 0, "jktcp_conn_close: %s", jktcp_strerror(rc));
    rc = jktcp_adapter_flush(k->a, 10000);
    cr_assert_eq(rc, 0, "jktcp_adapter_flush: %s", jktcp_strerror(rc));
}

/* Echo `total` bytes through an echo server in `piece`-sized rounds. */
void echo_rounds(jktcp_conn *c, uint64_t total, size_t piece, uint32_t seed)
{
    uint8_t *out = malloc(piece), *in = malloc(piece);
    cr_assert(out && in);
    for (uint64_t off = 0; off < total; off += piece) {
        size_t n = total - off < piece ? (size_t)(total - off) : piece;
        jkt_pattern_fill(out, n, off, seed);
        ssize_t rc = write_all(c, out, n);
        cr_assert_eq(rc, 0, "echo write at %llu: %s", (unsigned long long)off,
                     jktcp_strerror((int)rc));
        rc = kt_read_exact(c, in, n, IO_TIMEOUT);
        cr_assert_eq(rc, 0, "echo read at %llu: %s", (unsigned long long)off,
                     rc == 1 ? "early EOF" : jktcp_strerror((int)rc));
        cr_assert_eq(memcmp(in, out, n), 0, "echo data differs at %llu", (unsigned long long)off);
    }
    free(out);
    free(in);
}

void kt_upload_case(struct kt *k, uint64_t total)
{
    struct jkt_server s = {.verify = true, .in_seed = 0xA11CE};
    kt_server_up(k, &s, JKT_SRV_SINK);
    jktcp_conn *c = kt_connect_ok(k, s.port);

    double t0 = jkt_now_s();
    ssize_t rc = upload(c, total, s.in_seed);
    cr_assert_eq(rc, 0, "upload: %s after %lu bytes reached the server", jktcp_strerror((int)rc),
                 (unsigned long)atomic_load(&s.bytes_in));
    cr_assert_eq(jktcp_conn_shutdown(c), 0);
    rc = drive_until_server_done(k, &s, 1, 30000);
    double dt = jkt_now_s() - t0;
    char d[512];
    describe(&s, d, sizeof d);
    cr_assert_eq(rc, 0, "server did not finish: %s", d);
    char il[256];
    kt_info_line(c, il, sizeof il);
    cr_assert_eq(atomic_load(&s.bytes_in), total, "%s", d);
    cr_assert_eq(atomic_load(&s.mismatches), 0, "%s", d);
    cr_assert_eq(atomic_load(&s.eofs), 1, "%s", d);
    char b;
    rc = jktcp_conn_read(c, &b, 1, 5000);
    cr_assert_eq(rc, 0, "want EOF after the sink closed, got %zd", rc);
    close_and_flush(k, c);
    jkt_server_stop(&s);
    char what[64];
    snprintf(what, sizeof what, "upload %u MiB", (unsigned)(total / MiB));
    report(k, what, total, dt, il);
    kt_assert_kernel_clean(k, s.port);
}

void kt_download_case(struct kt *k, uint64_t total)
{
    struct jkt_server s = {.nbytes = total, .seed = 0xD0D0};
    kt_server_up(k, &s, JKT_SRV_SOURCE);
    jktcp_conn *c = kt_connect_ok(k, s.port);

    double t0 = jkt_now_s();
    uint64_t bad;
    int64_t got = download(c, s.seed, &bad);
    double dt = jkt_now_s() - t0;
    char d[512];
    describe(&s, d, sizeof d);
    cr_assert_geq(got, 0, "download: %s; %s", jktcp_strerror((int)got), d);
    cr_assert_eq((uint64_t)got, total, "got %lld of %llu bytes; %s", (long long)got,
                 (unsigned long long)total, d);
    cr_assert_eq(bad, UINT64_MAX, "data wrong from offset %llu", (unsigned long long)bad);
    char il[256];
    kt_info_line(c, il, sizeof il);
    close_and_flush(k, c);
    cr_assert_eq(drive_until_server_done(k, &s, 1, 5000), 0);
    jkt_server_stop(&s);
    char what[64];
    snprintf(what, sizeof what, "download %u MiB", (unsigned)(total / MiB));
    report(k, what, total, dt, il);
    kt_assert_kernel_clean(k, s.port);
}
