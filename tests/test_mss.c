/* SPDX-License-Identifier: MIT */
/*
 * Suite `mss`: the peer's MSS option sizes every segment we send, and a
 * tiny or hostile value cannot blow it up (issue: `min(mss, ours) - 12`
 * once underflowed to a 64 KiB segment and a 655 KB initial window).
 * Linux's rule, which we follow: an MSS option of 0 means none (536 for
 * IPv4, 1220 for IPv6), any other value is raised to 48 (tcp_min_snd_mss)
 * and the timestamp option's 12 bytes come off after that. Every MSS from
 * 0 to 100, with timestamps on and off, over IPv4 and IPv6: the segment
 * size in jktcp_info, the initial window (ten segments, RFC 6928), and the
 * first flight on the wire.
 */
#include "scripted.h"

#include "tcp.h"

#define T(name) Test(mss, name, .init = sp_setup4, .fini = sp_teardown, .timeout = 120)
#define T6(name) Test(mss, name, .init = sp_setup6, .fini = sp_teardown, .timeout = 120)

static uint32_t expected_smss(int mss, bool ts)
{
    uint32_t m = mss == 0 ? (sp.family == 4 ? 536u : 1220u)
                          : (uint32_t)(mss < JK_MIN_SND_MSS ? JK_MIN_SND_MSS : mss);
    return m - (ts ? 12 : 0);
}

/* One connection whose peer announces mss: the first flight of a 20,000
 * byte write is ten segments of the expected size, nothing larger. */
static void one(int mss, bool ts)
{
    sp_hs hs = SP_HS_DEFAULT;
    hs.mss = mss;
    hs.ts = ts;
    hs.wnd = 65535;
    jktcp_conn *c = sp_connect(&hs);
    uint32_t want = expected_smss(mss, ts);
    jktcp_info i = sp_info(c);
    cr_assert_eq(i.mss, want, "peer MSS %d ts %d: send MSS %u, want %u", mss, ts, i.mss, want);
    cr_assert_eq(i.cwnd, 10 * want, "peer MSS %d ts %d: initial window %u, want %u", mss, ts,
                 i.cwnd, 10 * want);
    sp_write_pat(c, 0, 20000);
    sp_brief b[64];
    size_t n = sp_drain(b, 64);
    uint32_t total = 0;
    for (size_t k = 0; k < n; k++) {
        cr_assert_leq(b[k].len, want, "peer MSS %d ts %d: a %u-byte segment", mss, ts, b[k].len);
        total += b[k].len;
    }
    cr_assert_eq(total, 10 * want, "peer MSS %d ts %d: first flight %u bytes in %zu segments, "
                 "want ten of %u", mss, ts, total, n, want);
    cr_assert_eq(jktcp_conn_abort(c), 0);
    sp.c = NULL;
    sp_drain(b, 64);
}

static void every_mss(void)
{
    for (int ts = 0; ts <= 1; ts++)
        for (int mss = 0; mss <= 100; mss++)
            one(mss, ts);
}

T(every_small_mss_v4) { every_mss(); }
T6(every_small_mss_v6) { every_mss(); }

/* A value above ours never raises our segment size above our own MSS
 * (1460 at MTU 1500), with or without timestamps. */
T(large_mss_capped_by_ours)
{
    for (int ts = 0; ts <= 1; ts++) {
        sp_hs hs = SP_HS_DEFAULT;
        hs.mss = 65535;
        hs.ts = ts;
        jktcp_conn *c = sp_connect(&hs);
        cr_assert_eq(sp_info(c).mss, 1460u - (ts ? 12 : 0));
        cr_assert_eq(jktcp_conn_abort(c), 0);
        sp.c = NULL;
        sp_brief b[8];
        sp_drain(b, 8);
    }
}
