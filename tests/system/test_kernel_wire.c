/* SPDX-License-Identifier: MIT */
/*
 * What is on the wire: UDP datagrams and ICMP echoes sent to jktcp's
 * address mid-transfer, the pcap capture read back by tshark (skipped
 * without it), capture switched on and off mid-connection, and the adapter's
 * frame cap below the link MTU.
 *
 * Suite `kernel`: jktcp (single-threaded adapter API) against the Linux
 * kernel's TCP over TUN in a private network namespace (kernel_test.h),
 * each case over IPv4 and IPv6 at MTU 1500 and 16000 (KT_VARIANTS), over
 * the TUN fd itself or a Unix stream socket bridged to it. Skipped without
 * network namespaces or /dev/net/tun.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jktcp.h"
#include "kernel_test.h"
#include "kserver.h"
#include "netns.h"
#include "netprobe.h"

/* UDP datagrams and ICMP echoes sent to jktcp's address mid-transfer. */
static void noise(int family, unsigned mtu, int round)
{
    int rc = jkt_send_udp(family, 9999, 64);
    cr_assert_eq(rc, 0, "udp: %s", strerror(-rc));
    /* MTU 16000: one 8 KiB frame (over 4 KiB); MTU 1500: 3 KiB in IP fragments */
    rc = jkt_send_udp(family, 9998, mtu >= 9000 ? 8000 : 3000);
    cr_assert_eq(rc, 0, "udp: %s", strerror(-rc));
    rc = jkt_send_ping(family, 0x77, (uint16_t)round, 56);
    cr_assert_eq(rc, 0, "ping: %s", strerror(-rc));
}

static void case_noise(int family, unsigned mtu, bool stream)
{
    struct kt k;
    kt_up(&k, family, mtu, stream);
    const uint64_t total = 16ull * MiB;
    struct jkt_server sink = {.verify = true, .in_seed = 0x0015E};
    struct jkt_server src = {.nbytes = total, .seed = 0x5012CE};
    kt_server_up(&k, &sink, JKT_SRV_SINK);
    kt_server_up(&k, &src, JKT_SRV_SOURCE);

    /* Upload with noise every MiB. */
    jktcp_conn *c = kt_connect_ok(&k, sink.port);
    uint8_t *buf = malloc(MiB);
    cr_assert_not_null(buf);
    for (uint64_t off = 0; off < total; off += MiB) {
        noise(family, mtu, (int)(off / MiB));
        jkt_pattern_fill(buf, MiB, off, sink.in_seed);
        ssize_t rc = write_all(c, buf, MiB);
        cr_assert_eq(rc, 0, "upload at %llu: %s", (unsigned long long)off,
                     jktcp_strerror((int)rc));
    }
    cr_assert_eq(jktcp_conn_shutdown(c), 0);
    int rc = drive_until_server_done(&k, &sink, 1, 20000);
    char d[512];
    describe(&sink, d, sizeof d);
    cr_assert_eq(rc, 0, "%s", d);
    cr_assert_eq(atomic_load(&sink.bytes_in), total, "%s", d);
    cr_assert_eq(atomic_load(&sink.mismatches), 0, "%s", d);
    cr_assert_eq(atomic_load(&sink.eofs), 1, "%s", d);
    close_and_flush(&k, c);

    /* Download with noise every MiB. */
    c = kt_connect_ok(&k, src.port);
    uint64_t off = 0;
    int round = 100;
    for (;;) {
        ssize_t n = jktcp_conn_read(c, buf, MiB, IO_TIMEOUT);
        if (n == 0)
            break;
        cr_assert_gt(n, 0, "download at %llu: %s", (unsigned long long)off,
                     jktcp_strerror((int)n));
        size_t at = jkt_pattern_check(buf, (size_t)n, off, src.seed);
        cr_assert_eq(at, (size_t)n, "download data wrong at %llu", (unsigned long long)(off + at));
        if ((off + (uint64_t)n) / MiB != off / MiB)
            noise(family, mtu, round++);
        off += (uint64_t)n;
    }
    cr_assert_eq(off, total);
    close_and_flush(&k, c);
    free(buf);

    jktcp_stats st;
    cr_assert_eq(jktcp_adapter_stats(k.a, &st, sizeof st), 0);
    fprintf(stderr,
            "[kernel] noise %s mtu %u %s: 16 MiB up + 16 MiB down intact; ignored_proto %llu "
            "drop_fragment %llu drop_address %llu drop_version %llu\n",
            fam_name(family), mtu, stream ? "stream" : "packet",
            (unsigned long long)st.ignored_proto, (unsigned long long)st.drop_fragment,
            (unsigned long long)st.drop_address, (unsigned long long)st.drop_version);
    cr_assert_gt(st.ignored_proto, 0, "no non-TCP frame counted as ignored");
    cr_assert_eq(drive_until_server_done(&k, &src, 1, 5000), 0);
    jkt_server_stop(&sink);
    jkt_server_stop(&src);
    kt_down(&k);
}

/* pcap of a connection: tshark sees our handshake. */
/* cap != 0: the adapter's MTU is set below the link's (a USB forwarder
 * that drops frames over 8 KiB): every frame either way must fit it. */
static void pcap_check(int family, unsigned mtu, bool stream, unsigned cap)
{
    if (!jkt_have_program("tshark"))
        cr_skip_test("kernel: tshark not installed");
    struct kt k;
    kt_up(&k, family, mtu, stream);
    if (cap)
        cr_assert_eq(jktcp_adapter_set_mtu(k.a, cap), 0);
    unsigned limit = cap ? cap : k.mtu;
    struct jkt_server s = {0};
    kt_server_up(&k, &s, JKT_SRV_ECHO);
    char path[128];
    snprintf(path, sizeof path, "/tmp/jktcp-kernel-test-%d.pcap", (int)getpid());
    int rc = jktcp_adapter_pcap(k.a, path);
    cr_assert_eq(rc, 0, "jktcp_adapter_pcap: %s", jktcp_strerror(rc));
    jktcp_conn *c = kt_connect_ok(&k, s.port);
    jktcp_info in;
    cr_assert_eq(jktcp_conn_info(c, &in, sizeof in), 0);
    echo_rounds(c, 512 * 1024, 64 * 1024, 5);
    close_and_flush(&k, c);
    cr_assert_eq(jktcp_adapter_pcap(k.a, NULL), 0);

    char cmd[512], out[8192];
    const char *q[2] = {"tcp.flags.syn==1 && tcp.flags.ack==0", "tcp.flags.syn==1 && tcp.flags.ack==1"};
    int lines[2];
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "tshark -n -r '%s' -Y '%s && tcp.srcport==%u && tcp.dstport==%u' "
                 "-T fields -e ip.src -e ipv6.src -e tcp.srcport -e tcp.dstport 2>/dev/null",
                 path, q[i], i == 0 ? in.local_port : s.port, i == 0 ? s.port : in.local_port);
        rc = jkt_sh(cmd, out, sizeof out);
        cr_assert_eq(rc, 0, "tshark failed (%d): %s", rc, out);
        lines[i] = 0;
        for (char *p = out; *p; p++)
            lines[i] += *p == '\n';
    }
    snprintf(cmd, sizeof cmd, "tshark -n -r '%s' 2>/dev/null | head -5", path);
    jkt_sh(cmd, out, sizeof out);
    cr_assert_geq(lines[0], 1, "no SYN from port %u in the capture:\n%s", in.local_port, out);
    cr_assert_geq(lines[1], 1, "no SYN-ACK to port %u in the capture:\n%s", in.local_port, out);

    /* Our SYN offers the MSS the MTU allows. */
    unsigned want_mss = limit - (family == AF_INET6 ? 60u : 40u);
    snprintf(cmd, sizeof cmd,
             "tshark -n -r '%s' -Y 'tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.srcport==%u' "
             "-T fields -e tcp.options.mss_val 2>/dev/null",
             path, in.local_port);
    rc = jkt_sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 0);
    unsigned mss = (unsigned)strtoul(out, NULL, 10);
    cr_assert_eq(mss, want_mss, "SYN MSS option: want %u for MTU %u, capture says '%s'", want_mss,
                 limit, out);

    /* No frame we sent (or, given our MSS, received) is larger than the MTU. */
    snprintf(cmd, sizeof cmd,
             "tshark -n -r '%s' -Y '%s' -T fields -e frame.len 2>/dev/null", path,
             family == AF_INET6 ? "ipv6" : "ip");
    static char lens[1 << 20];
    rc = jkt_sh(cmd, lens, sizeof lens);
    cr_assert_eq(rc, 0);
    unsigned maxlen = 0, nframes = 0;
    for (char *p = lens; *p;) {
        char *e;
        unsigned long v = strtoul(p, &e, 10);
        if (e == p)
            break;
        nframes++;
        if (v > maxlen)
            maxlen = (unsigned)v;
        p = e;
        while (*p == '\n' || *p == ' ')
            p++;
    }
    cr_assert_gt(nframes, 0);
    cr_assert_leq(maxlen, limit, "a %u-byte frame at MTU %u", maxlen, limit);
    if (cap)
        cr_assert_geq(maxlen, limit - 64, "largest frame %u: segments not sized to the cap %u",
                      maxlen, limit);
    fprintf(stderr, "[kernel] pcap %s mtu %u (adapter %u): handshake found by tshark, SYN MSS %u, "
                    "%u frames, largest %u bytes\n",
            fam_name(family), k.mtu, limit, mss, nframes, maxlen);
    unlink(path);
    jkt_server_stop(&s);
    kt_down(&k);
}

static void case_pcap(int family, unsigned mtu, bool stream) { pcap_check(family, mtu, stream, 0); }

/* Capture switched on while a connection is open, then off: the file holds
 * the data of that stretch only (no handshake), and Wireshark reads it. */
static void case_pcap_late(int family)
{
    if (!jkt_have_program("tshark"))
        cr_skip_test("kernel: tshark not installed");
    struct kt k;
    kt_up(&k, family, 1500, false);
    struct jkt_server s = {0};
    kt_server_up(&k, &s, JKT_SRV_ECHO);
    jktcp_conn *c = kt_connect_ok(&k, s.port);
    echo_rounds(c, 64 * 1024, 16 * 1024, 7);
    char path[64], cmd[1024], out[4096];
    snprintf(path, sizeof path, "/tmp/jktcp-kernel-late-%d.pcap", (int)getpid());
    cr_assert_eq(jktcp_adapter_pcap(k.a, path), 0);
    echo_rounds(c, 64 * 1024, 16 * 1024, 8);
    cr_assert_eq(jktcp_adapter_pcap(k.a, NULL), 0);
    echo_rounds(c, 64 * 1024, 16 * 1024, 9); /* not captured */
    snprintf(cmd, sizeof cmd,
             "tshark -n -r '%s' -Y 'tcp.port==%u && tcp.len>0' 2>/dev/null | wc -l; "
             "tshark -n -r '%s' -Y 'tcp.flags.syn==1' 2>/dev/null | wc -l; "
             "tshark -n -r '%s' -T fields -e tcp.len -Y 'tcp.port==%u && tcp.len>0' 2>/dev/null"
             " | awk '{s+=$1} END {print s}'",
             path, s.port, path, path, s.port);
    cr_assert_eq(jkt_sh(cmd, out, sizeof out), 0);
    unsigned data_frames = 0, syns = 0;
    unsigned long bytes = 0;
    cr_assert_eq(sscanf(out, "%u %u %lu", &data_frames, &syns, &bytes), 3, "tshark: %s", out);
    cr_assert_gt(data_frames, 0, "no data frames captured");
    cr_assert_eq(syns, 0, "the handshake happened before the capture began");
    cr_assert_eq(bytes, 2ul * 64 * 1024, "captured %lu payload bytes, want both ways of one round",
                 bytes);
    unlink(path);
    close_and_flush(&k, c);
    jkt_server_stop(&s);
    kt_down(&k);
}

Test(kernel, pcap_after_connect_v4, .timeout = 30) { case_pcap_late(AF_INET); }
Test(kernel, pcap_after_connect_v6, .timeout = 30) { case_pcap_late(AF_INET6); }

/* Link MTU 16000, adapter capped at 8192 (USB forwarders drop larger). */
Test(kernel, frame_cap_8192_v4, .timeout = 30) { pcap_check(AF_INET, 16000, false, 8192); }
Test(kernel, frame_cap_8192_v6, .timeout = 30) { pcap_check(AF_INET6, 16000, false, 8192); }

KT_VARIANTS(noise_udp_icmp, case_noise, false, 60)
KT_VARIANTS(pcap, case_pcap, false, 30)
