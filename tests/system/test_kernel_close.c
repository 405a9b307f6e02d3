/* SPDX-License-Identifier: MIT */
/*
 * Ending connections with the kernel: half-close either way, the peer's
 * RST seen by read and by write, connection refused, close right after a
 * 64 MiB write (every byte still arrives), a thousand open/close cycles
 * that leave no kernel socket half-closed.
 *
 * Suite `kernel`: jktcp (single-threaded adapter API) against the Linux
 * kernel's TCP over TUN in a private network namespace (kernel_test.h),
 * each case over IPv4 and IPv6 at MTU 1500 and 16000 (KT_VARIANTS), over
 * the TUN fd itself or a Unix stream socket bridged to it. Skipped without
 * network namespaces or /dev/net/tun.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "jktcp.h"
#include "kernel_test.h"
#include "kserver.h"
#include "netns.h"

/* We shut down our side first and still read what the server sends after. */
static void case_halfclose_ours(int family, unsigned mtu, bool stream)
{
    struct kt k;
    kt_up(&k, family, mtu, stream);
    struct jkt_server s = {.verify = true, .in_seed = 1, .seed = 2, .nbytes = 2 * MiB};
    kt_server_up(&k, &s, JKT_SRV_DRAIN_SEND);
    jktcp_conn *c = kt_connect_ok(&k, s.port);

    cr_assert_eq(upload(c, 1 * MiB, s.in_seed), 0);
    int rc = jktcp_conn_shutdown(c);
    cr_assert_eq(rc, 0, "shutdown: %s", jktcp_strerror(rc));
    ssize_t w = jktcp_conn_write(c, "x", 1, 0);
    cr_assert_eq(w, -EPIPE, "write after shutdown: want -EPIPE, got %zd (%s)", w,
                 jktcp_strerror((int)w));
    uint64_t bad;
    int64_t got = download(c, s.seed, &bad);
    char d[512];
    describe(&s, d, sizeof d);
    cr_assert_eq(got, (int64_t)(2 * MiB), "read after our shutdown: got %lld (%s); %s",
                 (long long)got, got < 0 ? jktcp_strerror((int)got) : "bytes", d);
    cr_assert_eq(bad, UINT64_MAX, "data wrong from offset %llu", (unsigned long long)bad);
    cr_assert_eq(drive_until_server_done(&k, &s, 1, 5000), 0, "%s", d);
    cr_assert_eq(atomic_load(&s.bytes_in), 1 * MiB, "%s", d);
    cr_assert_eq(atomic_load(&s.mismatches), 0, "%s", d);
    cr_assert_eq(atomic_load(&s.eofs), 1, "%s", d);
    close_and_flush(&k, c);
    jkt_server_stop(&s);
    assert_kernel_clean(s.port);
    kt_down(&k);
}

/* The server half-closes first; we read its EOF, then keep writing. */
static void case_halfclose_peer(int family, unsigned mtu, bool stream)
{
    struct kt k;
    kt_up(&k, family, mtu, stream);
    struct jkt_server s = {.verify = true, .in_seed = 3, .seed = 4, .nbytes = 1 * MiB};
    kt_server_up(&k, &s, JKT_SRV_HALFCLOSE);
    jktcp_conn *c = kt_connect_ok(&k, s.port);

    uint64_t bad;
    int64_t got = download(c, s.seed, &bad);
    cr_assert_eq(got, (int64_t)(1 * MiB), "read until the server's FIN: %lld (%s)", (long long)got,
                 got < 0 ? jktcp_strerror((int)got) : "bytes");
    cr_assert_eq(bad, UINT64_MAX);
    jktcp_info in;
    cr_assert_eq(jktcp_conn_info(c, &in, sizeof in), 0);
    cr_assert_eq(in.state, JKTCP_CLOSE_WAIT, "state after peer FIN: %s", jktcp_state_name(in.state));
    char b;
    ssize_t r = jktcp_conn_read(c, &b, 1, 0);
    cr_assert_eq(r, 0, "read again after EOF: want 0, got %zd", r);

    ssize_t rc = upload(c, 2 * MiB, s.in_seed);
    cr_assert_eq(rc, 0, "write after the peer's FIN: %s", jktcp_strerror((int)rc));
    cr_assert_eq(jktcp_conn_shutdown(c), 0);
    char d[512];
    rc = drive_until_server_done(&k, &s, 1, 10000);
    describe(&s, d, sizeof d);
    cr_assert_eq(rc, 0, "server did not see our data + FIN: %s", d);
    cr_assert_eq(atomic_load(&s.bytes_in), 2 * MiB, "%s", d);
    cr_assert_eq(atomic_load(&s.mismatches), 0, "%s", d);
    cr_assert_eq(atomic_load(&s.eofs), 1, "%s", d);
    close_and_flush(&k, c);
    jkt_server_stop(&s);
    assert_kernel_clean(s.port);
    kt_down(&k);
}

/* Peer resets after reading our first bytes: read and write see -ECONNRESET. */
static void case_rst_read(int family, unsigned mtu, bool stream)
{
    struct kt k;
    kt_up(&k, family, mtu, stream);
    struct jkt_server s = {.reset_after = 5};
    kt_server_up(&k, &s, JKT_SRV_RESET);
    jktcp_conn *c = kt_connect_ok(&k, s.port);

    cr_assert_eq(write_all(c, "hello", 5), 0);
    char b[16];
    ssize_t r = jktcp_conn_read(c, b, sizeof b, 5000);
    cr_assert_eq(r, -ECONNRESET, "read after peer RST: want -ECONNRESET, got %zd (%s)", r,
                 jktcp_strerror((int)r));
    r = jktcp_conn_write(c, "more", 4, 1000);
    cr_assert_eq(r, -ECONNRESET, "write after peer RST: want -ECONNRESET, got %zd (%s)", r,
                 jktcp_strerror((int)r));
    cr_assert_eq(jktcp_conn_error(c), -ECONNRESET, "conn_error %d", jktcp_conn_error(c));
    jktcp_conn_close(c);
    cr_assert_eq(jktcp_adapter_flush(k.a, 2000), 0);
    jkt_server_stop(&s);
    kt_down(&k);
}

/* Peer resets right after accepting; a later write reports -ECONNRESET. */
static void case_rst_write(int family, unsigned mtu, bool stream)
{
    struct kt k;
    kt_up(&k, family, mtu, stream);
    struct jkt_server s = {.reset_after = 0};
    kt_server_up(&k, &s, JKT_SRV_RESET);
    jktcp_conn *c = kt_connect_ok(&k, s.port);
    cr_assert_eq(drive_until_server_done(&k, &s, 1, 5000), 0);
    uint64_t end = jkt_now_us() + 2000000;
    while (jktcp_conn_error(c) == 0 && jkt_now_us() < end)
        cr_assert_geq(jktcp_adapter_poll(k.a, 5), 0);
    ssize_t r = jktcp_conn_write(c, "data", 4, 1000);
    cr_assert_eq(r, -ECONNRESET, "write after peer RST: want -ECONNRESET, got %zd (%s)", r,
                 jktcp_strerror((int)r));
    char b[4];
    r = jktcp_conn_read(c, b, sizeof b, 1000);
    cr_assert_eq(r, -ECONNRESET, "read after peer RST: want -ECONNRESET, got %zd (%s)", r,
                 jktcp_strerror((int)r));
    jktcp_conn_close(c);
    jkt_server_stop(&s);
    kt_down(&k);
}

/* No listener: the kernel answers RST, connect fails at once. */
static void case_refused(int family, unsigned mtu, bool stream)
{
    struct kt k;
    kt_up(&k, family, mtu, stream);
    jktcp_conn *c = NULL;
    double t0 = jkt_now_s();
    int rc = jktcp_conn_connect(k.a, 9, 5000, &c);
    double dt = jkt_now_s() - t0;
    cr_assert_eq(rc, -ECONNREFUSED, "connect to a closed port: want -ECONNREFUSED, got %d (%s)",
                 rc, jktcp_strerror(rc));
    cr_assert_lt(dt, 1.0, "refusal took %.3f s", dt);

    /* Non-blocking form: -EINPROGRESS, then the error shows on the conn. */
    rc = jktcp_conn_connect(k.a, 9, 0, &c);
    cr_assert_eq(rc, -EINPROGRESS, "connect(timeout 0): %d (%s)", rc, jktcp_strerror(rc));
    cr_assert_not_null(c);
    uint64_t end = jkt_now_us() + 1000000;
    while (jktcp_conn_error(c) == 0 && jkt_now_us() < end)
        cr_assert_geq(jktcp_adapter_poll(k.a, 5), 0);
    cr_assert_eq(jktcp_conn_error(c), -ECONNREFUSED, "conn_error %d", jktcp_conn_error(c));
    jktcp_conn_close(c);
    fprintf(stderr, "[kernel] refused %s mtu %u: connect failed in %.1f ms\n", fam_name(family),
            mtu, dt * 1000);
    kt_down(&k);
}

/* Write 64 MiB, close at once, flush: every byte reaches the server. */
static void case_close_after_write(int family, unsigned mtu, bool stream)
{
    struct kt k;
    kt_up(&k, family, mtu, stream);
    const uint64_t total = 64ull * MiB;
    struct jkt_server s = {.verify = true, .in_seed = 0xC105E};
    kt_server_up(&k, &s, JKT_SRV_SINK);
    jktcp_conn *c = kt_connect_ok(&k, s.port);
    double t0 = jkt_now_s();
    ssize_t rc = upload(c, total, s.in_seed);
    cr_assert_eq(rc, 0, "upload: %s", jktcp_strerror((int)rc));
    jktcp_info in;
    cr_assert_eq(jktcp_conn_info(c, &in, sizeof in), 0);
    uint64_t queued = in.bytes_queued;
    cr_assert_eq(jktcp_conn_close(c), 0);
    rc = jktcp_adapter_flush(k.a, 30000);
    double dt = jkt_now_s() - t0;
    char d[512];
    describe(&s, d, sizeof d);
    cr_assert_eq(rc, 0, "flush after close: %s; %s", jktcp_strerror((int)rc), d);
    cr_assert_eq(jkt_server_wait_done(&s, 1, 2000), 0, "server saw no EOF after flush: %s", d);
    describe(&s, d, sizeof d);
    cr_assert_eq(atomic_load(&s.bytes_in), total, "%s", d);
    cr_assert_eq(atomic_load(&s.mismatches), 0, "%s", d);
    cr_assert_eq(atomic_load(&s.eofs), 1, "want a clean EOF, not a reset: %s", d);
    jkt_server_stop(&s);
    char extra[128];
    snprintf(extra, sizeof extra, "(%.1f MiB still queued at close)", (double)queued / MiB);
    report(&k, "write 64 MiB + close", total, dt, extra);
    assert_kernel_clean(s.port);
    kt_down(&k);
}

#define NCYCLES 1000

static void case_cycles(int family, unsigned mtu, bool stream)
{
    struct kt k;
    kt_up(&k, family, mtu, stream);
    struct jkt_server s = {0};
    kt_server_up(&k, &s, JKT_SRV_ECHO);
    int fail_connect = 0, fail_echo = 0;
    double worst = 0;
    double t0 = jkt_now_s();
    char firsterr[128] = "";
    for (int i = 0; i < NCYCLES; i++) {
        double c0 = jkt_now_s();
        jktcp_conn *c = NULL;
        int rc = jktcp_conn_connect(k.a, s.port, 3000, &c);
        if (rc != 0) {
            if (!fail_connect && !fail_echo)
                snprintf(firsterr, sizeof firsterr, "cycle %d connect: %s", i, jktcp_strerror(rc));
            fail_connect++;
            continue;
        }
        char msg[32], back[32];
        int n = snprintf(msg, sizeof msg, "cycle %d", i);
        ssize_t r = jktcp_conn_write(c, msg, (size_t)n, 3000);
        if (r == n)
            r = kt_read_exact(c, back, (size_t)n, 3000);
        else
            r = r < 0 ? r : -EIO;
        if (r != 0 || memcmp(back, msg, (size_t)n) != 0) {
            if (!fail_connect && !fail_echo)
                snprintf(firsterr, sizeof firsterr, "cycle %d echo: %s", i,
                         r == 1 ? "EOF" : jktcp_strerror((int)r));
            fail_echo++;
        }
        jktcp_conn_close(c);
        double dt = jkt_now_s() - c0;
        if (dt > worst)
            worst = dt;
    }
    int rc = jktcp_adapter_flush(k.a, 10000);
    double total = jkt_now_s() - t0;
    jktcp_stats st;
    cr_assert_eq(jktcp_adapter_stats(k.a, &st, sizeof st), 0);
    fprintf(stderr,
            "[kernel] cycles %s mtu %u %s: %d connect/echo/close in %.2f s (%.2f ms each, worst "
            "%.1f ms), failures connect %d echo %d, retransmits %llu, rst_sent %llu\n",
            fam_name(family), mtu, stream ? "stream" : "packet", NCYCLES, total,
            total * 1000 / NCYCLES, worst * 1000, fail_connect, fail_echo,
            (unsigned long long)st.retransmits, (unsigned long long)st.rst_sent);
    cr_assert_eq(fail_connect + fail_echo, 0, "%d connect and %d echo failures; first: %s",
                 fail_connect, fail_echo, firsterr);
    cr_assert_eq(rc, 0, "final flush: %s", jktcp_strerror(rc));
    rc = drive_until_server_done(&k, &s, NCYCLES, 5000);
    char d[512];
    describe(&s, d, sizeof d);
    cr_assert_eq(rc, 0, "%s", d);
    jkt_server_stop(&s);
    assert_kernel_clean(s.port);
    kt_down(&k);
}

KT_VARIANTS(halfclose_ours, case_halfclose_ours, false, 30)
KT_VARIANTS(halfclose_peer, case_halfclose_peer, false, 30)
KT_VARIANTS(rst_read, case_rst_read, false, 20)
KT_VARIANTS(rst_write, case_rst_write, false, 20)
KT_VARIANTS(refused, case_refused, false, 20)

KT_VARIANTS(close_after_64mib, case_close_after_write, false, 90)
KT_VARIANTS(cycles_1000, case_cycles, false, 180)
