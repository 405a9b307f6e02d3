/* SPDX-License-Identifier: MIT */
/*
 * The TUN offload transport (JKTCP_FRAMING_TUN_OFFLOAD) against the Linux
 * kernel: 64 MiB uploads and downloads, verified byte for byte, over IPv4
 * and IPv6 at MTU 1500, with offload on and (the same case over plain
 * packet framing) off; the same under 1% loss both ways (the offload
 * transport wrapped in jktcp_transport_faulty); the fds it refuses.
 *
 * Suite `offload`: a private network namespace and a TUN device in it
 * (kernel_test.h addresses), one single-threaded adapter. With offload on,
 * each case also checks on the device's counters that super-segments
 * really went through: far fewer packets than segments. Skipped without
 * network namespaces or /dev/net/tun.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jktcp.h"
#include "kernel_test.h"
#include "kserver.h"
#include "netns.h"
#include "tuntest.h"

#define BIG (64u * MiB)
#define LOSSY (16u * MiB)
#define LOSS 0.01
#define MTU 1500u

/* Namespace, TUN (with IFF_VNET_HDR when offload), the transport (wrapped
 * in the fault transport dropping `loss` of the frames each way), an
 * adapter on it. kt_down frees them. */
static void ko_up(struct kt *k, int family, bool offload, double loss)
{
    memset(k, 0, sizeof *k);
    k->family = family;
    k->mtu = MTU;
    k->tun.fd = -1;
    jkt_tun_up_or_skip("offload", "jkt0", MTU, offload ? JKT_TUN_VNET_HDR : 0, &k->tun);
    jktcp_transport *t = NULL;
    int rc = jktcp_transport_fd(k->tun.fd,
                                offload ? JKTCP_FRAMING_TUN_OFFLOAD : JKTCP_FRAMING_PACKET, &t);
    cr_assert_eq(rc, 0, "jktcp_transport_fd: %s", jktcp_strerror(rc));
    if (loss > 0) {
        jktcp_fault_config cfg = {.seed = 0x0FF10AD};
        cfg.in.drop = cfg.out.drop = loss;
        rc = jktcp_transport_faulty(t, &cfg, sizeof cfg, &t);
        cr_assert_eq(rc, 0, "jktcp_transport_faulty: %s", jktcp_strerror(rc));
    }
    rc = jktcp_adapter_new(t, jkt_local_ip(family), jkt_kernel_ip(family), &k->a);
    cr_assert_eq(rc, 0, "jktcp_adapter_new: %s", jktcp_strerror(rc));
    rc = jktcp_adapter_set_mtu(k->a, MTU);
    cr_assert_eq(rc, 0, "jktcp_adapter_set_mtu: %s", jktcp_strerror(rc));
}

/* Packets the kernel took from (rx) or gave to (tx) the TUN device. */
static uint64_t tun_count(struct kt *k, bool rx)
{
    uint64_t r = 0, t = 0;
    int rc = jkt_tun_packets(&k->tun, &r, &t);
    cr_assert_eq(rc, 0, "jkt_tun_packets: %s", strerror(-rc));
    return rx ? r : t;
}

/* With offload, the data took far fewer packets than segments (at least 4
 * segments per packet on average); without, at least one per segment. */
static void check_packets(struct kt *k, bool offload, uint64_t bytes, uint64_t packets,
                          const char *dir)
{
    uint64_t segs = bytes / (MTU - 40); /* at least: no segment carries more */
    fprintf(stderr, "[offload] %s %s offload %s: %llu packets for >= %llu segments\n", dir,
            fam_name(k->family), offload ? "on " : "off", (unsigned long long)packets,
            (unsigned long long)segs);
    if (offload)
        cr_assert_lt(packets, segs / 4, "%s: %llu packets for %llu segments: no super-segments?",
                     dir, (unsigned long long)packets, (unsigned long long)segs);
    else
        cr_assert_geq(packets, segs, "%s: %llu packets for %llu segments", dir,
                      (unsigned long long)packets, (unsigned long long)segs);
}

static void case_upload(int family, bool offload, double loss, uint64_t total)
{
    struct kt k;
    ko_up(&k, family, offload, loss);
    struct jkt_server s = {.verify = true, .in_seed = 0x0FF1};
    kt_server_up(&k, &s, JKT_SRV_SINK);
    jktcp_conn *c = kt_connect_ok(&k, s.port);
    uint64_t rx0 = tun_count(&k, true);
    double t0 = jkt_now_s();
    ssize_t rc = upload(c, total, s.in_seed);
    cr_assert_eq(rc, 0, "upload: %s after %lu bytes reached the server", jktcp_strerror((int)rc),
                 (unsigned long)atomic_load(&s.bytes_in));
    cr_assert_eq(jktcp_conn_shutdown(c), 0);
    rc = drive_until_server_done(&k, &s, 1, 60000);
    double dt = jkt_now_s() - t0;
    char d[512];
    describe(&s, d, sizeof d);
    cr_assert_eq(rc, 0, "server did not finish: %s", d);
    cr_assert_eq(atomic_load(&s.bytes_in), total, "%s", d);
    cr_assert_eq(atomic_load(&s.mismatches), 0, "%s", d);
    cr_assert_eq(atomic_load(&s.eofs), 1, "%s", d);
    if (loss == 0)
        check_packets(&k, offload, total, tun_count(&k, true) - rx0, "upload");
    close_and_flush(&k, c);
    jkt_server_stop(&s);
    report(&k, offload ? "upload, offload on" : "upload, offload off", total, dt, NULL);
    kt_down(&k);
}

static void case_download(int family, bool offload, double loss, uint64_t total)
{
    struct kt k;
    ko_up(&k, family, offload, loss);
    struct jkt_server s = {.nbytes = total, .seed = 0xD0FF};
    kt_server_up(&k, &s, JKT_SRV_SOURCE);
    jktcp_conn *c = kt_connect_ok(&k, s.port);
    uint64_t tx0 = tun_count(&k, false);
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
    if (loss == 0)
        check_packets(&k, offload, total, tun_count(&k, false) - tx0, "download");
    close_and_flush(&k, c);
    cr_assert_eq(drive_until_server_done(&k, &s, 1, 5000), 0);
    jkt_server_stop(&s);
    cr_assert_eq(s.error, 0);
    report(&k, offload ? "download, offload on" : "download, offload off", total, dt, NULL);
    kt_down(&k);
}

Test(offload, upload_v4_on, .timeout = 120) { case_upload(AF_INET, true, 0, BIG); }
Test(offload, upload_v4_off, .timeout = 120) { case_upload(AF_INET, false, 0, BIG); }
Test(offload, upload_v6_on, .timeout = 120) { case_upload(AF_INET6, true, 0, BIG); }
Test(offload, upload_v6_off, .timeout = 120) { case_upload(AF_INET6, false, 0, BIG); }
Test(offload, download_v4_on, .timeout = 120) { case_download(AF_INET, true, 0, BIG); }
Test(offload, download_v4_off, .timeout = 120) { case_download(AF_INET, false, 0, BIG); }
Test(offload, download_v6_on, .timeout = 120) { case_download(AF_INET6, true, 0, BIG); }
Test(offload, download_v6_off, .timeout = 120) { case_download(AF_INET6, false, 0, BIG); }
Test(offload, lossy_upload_v4, .timeout = 120) { case_upload(AF_INET, true, LOSS, LOSSY); }
Test(offload, lossy_upload_v6, .timeout = 120) { case_upload(AF_INET6, true, LOSS, LOSSY); }
Test(offload, lossy_download_v4, .timeout = 120) { case_download(AF_INET, true, LOSS, LOSSY); }
Test(offload, lossy_download_v6, .timeout = 120) { case_download(AF_INET6, true, LOSS, LOSSY); }

static ssize_t no_read(void *ctx, void *buf, size_t len) { return -EAGAIN; }
static ssize_t no_write(void *ctx, const void *buf, size_t len) { return (ssize_t)len; }

/* A TUN fd without IFF_VNET_HDR, a pipe, two fds, caller ops: -EINVAL. */
Test(offload, refuses_what_is_no_vnet_tun)
{
    struct jkt_tun tun;
    jkt_tun_up_or_skip("offload", "jkt0", MTU, 0, &tun);
    jktcp_transport *t = (jktcp_transport *)1;
    cr_assert_eq(jktcp_transport_fd(tun.fd, JKTCP_FRAMING_TUN_OFFLOAD, &t), -EINVAL);
    cr_assert_null(t);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(jktcp_transport_fd(p[0], JKTCP_FRAMING_TUN_OFFLOAD, &t), -EINVAL);
    cr_assert_eq(jktcp_transport_fd2(p[0], p[1], JKTCP_FRAMING_TUN_OFFLOAD, &t), -EINVAL);
    jktcp_io_ops ops = {.read = no_read, .write = no_write, .poll_fd = p[0]};
    cr_assert_eq(jktcp_transport_ops(&ops, sizeof ops, NULL, JKTCP_FRAMING_TUN_OFFLOAD, &t),
                 -EINVAL);
    close(p[0]);
    close(p[1]);
    jkt_tun_close(&tun);
}
