/* SPDX-License-Identifier: MIT */
/*
 * Suite `pmtu`: path MTU discovery against the Linux kernel. Between jktcp
 * (MTU 1500) and the kernel (TUN MTU 1500) sits a router whose next hop
 * carries 1400 bytes: the fault transport's MTU limit (jktcp_fault_dir.mtu).
 *  - with ICMP, jktcp's upload learns 1400 from "fragmentation needed" /
 *    "packet too big" (RFC 1191 / 8201) and the kernel's download learns it
 *    from the reports the router sends the kernel — built by jk_build_icmp
 *    and accepted by a real stack;
 *  - without ICMP (a black hole) the upload finishes only with probing on
 *    (JKTCP_OPT_PMTU_PROBE 1: two timeouts, the base size, a search up).
 * Every byte is verified by the kernel sink / against the source pattern.
 */
#include "kserver.h"
#include "minitest.h"
#include "netns.h"
#include "tuntest.h"

#include "jktcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define E(x) jktcp_strerror((int)(x))
#define MIB (1024u * 1024u)
#define LIMIT 1400u

struct rig_k {
    struct jkt_tun tun;
    jktcp_transport *ft;
    jktcp_handle h;
};

static void up(struct rig_k *r, int family, const jktcp_fault_config *cfg, long probe,
               long retries)
{
    memset(r, 0, sizeof *r);
    jkt_tun_up_or_skip("pmtu", "pm0", 1500, 0, &r->tun);
    jktcp_transport *inner = NULL;
    jktcp_adapter *a = NULL;
    JT_ASSERT(jktcp_transport_fd(r->tun.fd, JKTCP_FRAMING_PACKET, &inner) == 0, "fd");
    JT_ASSERT(jktcp_transport_faulty(inner, cfg, sizeof *cfg, &r->ft) == 0, "faulty");
    JT_ASSERT(jktcp_adapter_new(r->ft, jkt_local_ip(family), jkt_kernel_ip(family), &a) == 0, "a");
    JT_ASSERT(jktcp_adapter_set_option(a, JKTCP_OPT_PMTU_PROBE, probe) == 0, "probe option");
    JT_ASSERT(jktcp_adapter_set_option(a, JKTCP_OPT_RTO_MIN_MS, 20) == 0, "rto");
    JT_ASSERT(jktcp_adapter_set_option(a, JKTCP_OPT_MAX_RETRIES, retries) == 0, "retries");
    JT_ASSERT(jktcp_handle_start(a, &r->h) == 0, "handle");
}

static void down(struct rig_k *r)
{
    jktcp_handle_close(r->h, 1000);
    jkt_tun_close(&r->tun);
}

static void upload(int family, const jktcp_fault_config *cfg, long probe, const char *what)
{
    struct rig_k r;
    up(&r, family, cfg, probe, 10);
    struct jkt_server srv = {.kind = JKT_SRV_SINK, .family = family, .verify = true, .in_seed = 7};
    JT_ASSERT(jkt_server_start(&srv) == 0, "sink");
    jktcp_stream s = {0};
    int rc = jktcp_handle_connect(r.h, srv.port, 5000, &s);
    JT_ASSERT(rc == 0, "connect: %s", E(rc));
    enum { N = 16 * MIB, CH = 256 * 1024 };
    static uint8_t buf[CH];
    double t0 = jkt_now_s();
    for (uint64_t off = 0; off < N; off += CH) {
        jkt_pattern_fill(buf, CH, off, 7);
        long w = jktcp_stream_write_all(s, buf, CH, 60000);
        JT_ASSERT(w == CH, "%s: write at %llu: %s", what, (unsigned long long)off, E(w));
    }
    JT_ASSERT(jktcp_stream_shutdown(s) == 0, "shutdown");
    JT_ASSERT(jkt_server_wait_done(&srv, 1, 60000) == 0, "%s: the sink did not finish", what);
    double dt = jkt_now_s() - t0;
    jktcp_info info;
    jktcp_stats st;
    jktcp_fault_stats fs;
    JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0, "info");
    JT_ASSERT(jktcp_handle_stats(r.h, &st, sizeof st) == 0, "stats");
    JT_ASSERT(jktcp_transport_fault_stats(r.ft, &fs, sizeof fs) == 0, "fault stats");
    JT_LOG("pmtu %s v%d: 16 MiB up in %.2f s; path MTU %u, mss %u; %llu frames too big, "
           "%llu ICMP acted on, %llu probes (%llu lost), %llu black holes, %u timeouts",
           what, family == AF_INET ? 4 : 6, dt, info.pmtu, info.mss,
           (unsigned long long)fs.out.too_big, (unsigned long long)st.icmp_in,
           (unsigned long long)st.pmtu_probes, (unsigned long long)st.pmtu_probe_fails,
           (unsigned long long)st.pmtu_blackholes, info.timeouts);
    jkt_server_stop(&srv);
    JT_ASSERT(atomic_load(&srv.bytes_in) == N && atomic_load(&srv.mismatches) == 0,
              "%s: the sink got %lu bytes, %lu mismatching", what,
              (unsigned long)atomic_load(&srv.bytes_in), (unsigned long)atomic_load(&srv.mismatches));
    JT_ASSERT(info.pmtu <= LIMIT, "%s: path MTU %u above the router's %u", what, info.pmtu, LIMIT);
    if (cfg->out.mtu_icmp)
        JT_ASSERT(info.pmtu == LIMIT && st.icmp_in >= 1, "%s: path MTU %u, %llu ICMP", what,
                  info.pmtu, (unsigned long long)st.icmp_in);
    else
        JT_ASSERT(st.pmtu_blackholes == 1 && info.pmtu > LIMIT - 32, "%s: %llu black holes, MTU %u",
                  what, (unsigned long long)st.pmtu_blackholes, info.pmtu);
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    down(&r);
}

static jktcp_fault_config router(bool icmp, bool inbound)
{
    jktcp_fault_config c = {.seed = 1};
    jktcp_fault_dir *d = inbound ? &c.in : &c.out;
    d->mtu = LIMIT;
    d->mtu_icmp = icmp;
    return c;
}

JT_TEST(pmtu, upload_learns_from_icmp_v4, 120)
{
    jktcp_fault_config c = router(true, false);
    upload(AF_INET, &c, 0, "ICMP");
}

JT_TEST(pmtu, upload_learns_from_icmp_v6, 120)
{
    jktcp_fault_config c = router(true, false);
    upload(AF_INET6, &c, 0, "ICMPv6");
}

JT_TEST(pmtu, upload_through_black_hole_with_probing_v4, 120)
{
    jktcp_fault_config c = router(false, false);
    upload(AF_INET, &c, 1, "black hole, probing");
}

JT_TEST(pmtu, upload_through_black_hole_with_probing_v6, 120)
{
    jktcp_fault_config c = router(false, false);
    upload(AF_INET6, &c, 1, "black hole, probing");
}

/* Without probing the same black hole swallows every full-sized segment:
 * the connection gives up (a short retry budget keeps this quick). */
JT_TEST(pmtu, black_hole_without_probing_times_out, 60)
{
    struct rig_k r;
    jktcp_fault_config c = router(false, false);
    up(&r, AF_INET, &c, 0, 4);
    struct jkt_server srv = {.kind = JKT_SRV_SINK, .family = AF_INET};
    JT_ASSERT(jkt_server_start(&srv) == 0, "sink");
    jktcp_stream s = {0};
    JT_ASSERT(jktcp_handle_connect(r.h, srv.port, 5000, &s) == 0, "connect");
    static uint8_t buf[64 * 1024];
    long w = jktcp_stream_write_all(s, buf, sizeof buf, 1000);
    JT_ASSERT(w == (long)sizeof buf, "write: %s", E(w));
    uint8_t b[8];
    long rr = jktcp_stream_read(s, b, sizeof b, 30000);
    JT_ASSERT(rr == -ETIMEDOUT, "read through a black hole: %ld (%s)", rr, E(rr));
    jktcp_stats st;
    JT_ASSERT(jktcp_handle_stats(r.h, &st, sizeof st) == 0, "stats");
    JT_ASSERT(st.pmtu_probes == 0 && st.pmtu_blackholes == 0, "probing while off");
    jktcp_stream_close(s);
    jkt_server_stop(&srv);
    down(&r);
}

/* The kernel sends 1500-byte frames; the router answers with reports
 * jk_build_icmp made, and a real stack takes them: its download to jktcp
 * then fits 1400 bytes. */
static void download(int family)
{
    struct rig_k r;
    jktcp_fault_config c = router(true, true);
    up(&r, family, &c, 0, 10);
    struct jkt_server srv = {.kind = JKT_SRV_SOURCE, .family = family, .nbytes = 16 * MIB,
                             .seed = 9};
    JT_ASSERT(jkt_server_start(&srv) == 0, "source");
    jktcp_stream s = {0};
    JT_ASSERT(jktcp_handle_connect(r.h, srv.port, 5000, &s) == 0, "connect");
    static uint8_t buf[256 * 1024];
    uint64_t got = 0;
    double t0 = jkt_now_s();
    for (;;) {
        long n = jktcp_stream_read(s, buf, sizeof buf, 30000);
        JT_ASSERT(n >= 0, "read at %llu: %s", (unsigned long long)got, E(n));
        if (n == 0)
            break;
        JT_ASSERT(jkt_pattern_check(buf, (size_t)n, got, 9) == (size_t)n, "data at %llu differs",
                  (unsigned long long)got);
        got += (uint64_t)n;
    }
    jktcp_fault_stats fs;
    JT_ASSERT(jktcp_transport_fault_stats(r.ft, &fs, sizeof fs) == 0, "fault stats");
    JT_LOG("pmtu download v%d: %llu bytes in %.2f s, %llu kernel frames too big (ICMP sent)",
           family == AF_INET ? 4 : 6, (unsigned long long)got, jkt_now_s() - t0,
           (unsigned long long)fs.in.too_big);
    JT_ASSERT(got == 16 * MIB, "got %llu bytes", (unsigned long long)got);
    JT_ASSERT(fs.in.too_big >= 1 && fs.in.too_big < 100,
              "%llu kernel frames too big: the kernel did not take the reports",
              (unsigned long long)fs.in.too_big);
    jktcp_stream_close(s);
    jkt_server_stop(&srv);
    down(&r);
}

JT_TEST(pmtu, kernel_download_learns_from_our_icmp_v4, 120) { download(AF_INET); }
JT_TEST(pmtu, kernel_download_learns_from_our_icmp_v6, 120) { download(AF_INET6); }
