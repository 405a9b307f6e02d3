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
 * adapter on it. kt_down frees them. Returns the fault transport (NULL
 * without loss). */
static jktcp_transport *ko_up(struct kt *k, int family, bool offload, double loss)
{
    memset(k, 0, sizeof *k);
    k->family = family;
    k->mtu = MTU;
    k->offload = offload;
    k->loss = (unsigned)(loss * 1000);
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
    return loss > 0 ? t : NULL;
}

/* Packets the kernel took from (rx) and gave to (tx) the TUN device. */
static void tun_counts(struct kt *k, uint64_t *rx, uint64_t *tx)
{
    int rc = jkt_tun_packets(&k->tun, rx, tx);
    cr_assert_eq(rc, 0, "jkt_tun_packets: %s", strerror(-rc));
}

/* With offload, the data took far fewer packets than segments (at least 4
 * segments per packet on average); without, at least one per segment.
 * Lossy cases are not counted. */
static void check_packets(struct kt *k, uint64_t bytes, uint64_t packets, const char *dir)
{
    if (k->loss)
        return;
    uint64_t segs = bytes / (MTU - 40); /* at least: no segment carries more */
    fprintf(stderr, "[offload] %s %s offload %s: %llu packets for >= %llu segments\n", dir,
            fam_name(k->family), k->offload ? "on " : "off", (unsigned long long)packets,
            (unsigned long long)segs);
    if (k->offload)
        cr_assert_lt(packets, segs / 4, "%s: %llu packets for %llu segments: no super-segments?",
                     dir, (unsigned long long)packets, (unsigned long long)segs);
    else
        cr_assert_geq(packets, segs, "%s: %llu packets for %llu segments", dir,
                      (unsigned long long)packets, (unsigned long long)segs);
}

/* total bytes up (kernel sink) or down (kernel source), verified, and the
 * device's packets counted in the data's direction. */
static void case_xfer(int family, bool offload, double loss, bool down, uint64_t total)
{
    struct kt k;
    jktcp_transport *faulty = ko_up(&k, family, offload, loss);
    uint64_t rx0, tx0, rx1, tx1;
    tun_counts(&k, &rx0, &tx0);
    if (down)
        kt_download_case(&k, total);
    else
        kt_upload_case(&k, total);
    tun_counts(&k, &rx1, &tx1);
    check_packets(&k, total, down ? tx1 - tx0 : rx1 - rx0, down ? "download" : "upload");
    if (faulty) { /* the loss was real, both ways */
        jktcp_fault_stats st;
        cr_assert_eq(jktcp_transport_fault_stats(faulty, &st, sizeof st), 0);
        cr_assert(st.in.dropped > 0 && st.out.dropped > 0, "dropped in %llu out %llu",
                  (unsigned long long)st.in.dropped, (unsigned long long)st.out.dropped);
    }
    kt_down(&k);
}

/* Bits flipped in the frames the offload transport cut from the kernel's
 * super-segments: that transport made their TCP checksums (and the adapter
 * does not sum them again), but behind the fault wrapper they are frames
 * like any other, so every flip is caught and no wrong byte gets through. */
static void case_corrupt_download(int family)
{
    struct kt k;
    memset(&k, 0, sizeof k);
    k.family = family;
    k.mtu = MTU;
    k.offload = true;
    k.tun.fd = -1;
    jkt_tun_up_or_skip("offload", "jkt0", MTU, JKT_TUN_VNET_HDR, &k.tun);
    jktcp_transport *t = NULL, *faulty = NULL;
    cr_assert_eq(jktcp_transport_fd(k.tun.fd, JKTCP_FRAMING_TUN_OFFLOAD, &t), 0);
    jktcp_fault_config cfg = {.seed = 0xC0FFEE};
    cfg.in.corrupt = 0.01;
    cfg.in.corrupt_bits = 1; /* one bit: always caught (jktcp.h) */
    cr_assert_eq(jktcp_transport_faulty(t, &cfg, sizeof cfg, &faulty), 0);
    cr_assert_eq(jktcp_adapter_new(faulty, jkt_local_ip(family), jkt_kernel_ip(family), &k.a), 0);
    cr_assert_eq(jktcp_adapter_set_mtu(k.a, MTU), 0);
    uint64_t rx0, tx0, rx1, tx1;
    tun_counts(&k, &rx0, &tx0);
    kt_download_case(&k, LOSSY); /* every byte verified */
    tun_counts(&k, &rx1, &tx1);

    jktcp_fault_stats fs;
    cr_assert_eq(jktcp_transport_fault_stats(faulty, &fs, sizeof fs), 0);
    jktcp_stats st;
    cr_assert_eq(jktcp_adapter_stats(k.a, &st, sizeof st), 0);
    fprintf(stderr, "[offload] corrupt %s: %llu frames corrupted, %llu dropped on checksum\n",
            fam_name(family), (unsigned long long)fs.in.corrupted,
            (unsigned long long)st.drop_checksum);
    /* super-segments came (frames were cut, and marked under the wrapper):
     * the wrapper saw far more frames than the device gave packets */
    uint64_t packets = tx1 - tx0;
    fprintf(stderr, "[offload] corrupt %s: %llu packets from the device, %llu frames cut\n",
            fam_name(family), (unsigned long long)packets, (unsigned long long)fs.in.frames);
    cr_assert_gt(fs.in.frames, packets + packets / 8);
    cr_assert_gt(fs.in.corrupted, 50);
    cr_assert_gt(st.drop_checksum, fs.in.corrupted / 2,
                 "%llu of %llu corrupted frames caught by a checksum",
                 (unsigned long long)st.drop_checksum, (unsigned long long)fs.in.corrupted);
    kt_down(&k);
}

static void case_upload(int f, bool on, double loss, uint64_t n) { case_xfer(f, on, loss, false, n); }
static void case_download(int f, bool on, double loss, uint64_t n) { case_xfer(f, on, loss, true, n); }

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
Test(offload, corrupt_download_v4, .timeout = 120) { case_corrupt_download(AF_INET); }
Test(offload, corrupt_download_v6, .timeout = 120) { case_corrupt_download(AF_INET6); }

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
