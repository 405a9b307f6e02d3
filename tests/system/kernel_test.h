/* SPDX-License-Identifier: MIT */
/*
 * What the kernel-peer tests (tests/system/test_kernel_*.c, suite `kernel`)
 * share: jktcp against the real Linux TCP stack.
 *
 * Each test (Criterion runs it in its own process) enters a fresh network
 * namespace, creates a TUN device there (kernel side 198.18.0.1 / fd00::1,
 * jktcp 198.18.0.2 / fd00::2), starts kernel servers in threads and drives
 * one jktcp adapter single-threaded through the public API. Every case runs
 * for IPv4/IPv6 x MTU 1500/16000 (KT_VARIANTS); the stream_* cases go
 * through a TUN <-> Unix-stream bridge with JKTCP_FRAMING_STREAM.
 *
 * Skipped (not failed) without network namespaces or /dev/net/tun.
 */
#ifndef JKT_KERNEL_TEST_H
#define JKT_KERNEL_TEST_H

#include "bridge.h"
#include "jktcp.h"
#include "kserver.h"
#include "netns.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h> /* AF_INET, AF_INET6 (KT_VARIANTS) */
#include <sys/types.h>

#define MiB (1024u * 1024u)
#define CHUNK (256u * 1024u)
#define IO_TIMEOUT 15000 /* ms a single read/write may stall before the test fails */

/* Kernel-side socket states that must not linger after jktcp closed. */
#define STUCK_STATES "LAST-ACK|FIN-WAIT-1|FIN-WAIT-2|CLOSING|CLOSE-WAIT|SYN-RECV"

struct kt {
    int family;
    unsigned mtu;
    bool stream;
    unsigned loss; /* per mille, through a seqpacket bridge (packet framing) */
    bool bridged;
    bool offload; /* JKTCP_FRAMING_TUN_OFFLOAD (test_kernel_offload.c) */
    struct jkt_tun tun;
    struct jkt_bridge br;
    jktcp_adapter *a;
};

#define KT_VARIANTS(name, fn, stream, to)                                                      \
    Test(kernel, name##_v4_1500, .timeout = to) { fn(AF_INET, 1500, stream); }                 \
    Test(kernel, name##_v4_16000, .timeout = to) { fn(AF_INET, 16000, stream); }               \
    Test(kernel, name##_v6_1500, .timeout = to) { fn(AF_INET6, 1500, stream); }                \
    Test(kernel, name##_v6_16000, .timeout = to) { fn(AF_INET6, 16000, stream); }

/* "v4" / "v6". */
const char *fam_name(int family);
/* Namespace, TUN at mtu, a bridge when stream or loss (per mille), and an
 * adapter on it (kt_up: no loss); kt_down frees them. Skips without root. */
void kt_up_lossy(struct kt *k, int family, unsigned mtu, bool stream, unsigned loss);
void kt_up(struct kt *k, int family, unsigned mtu, bool stream);
void kt_down(struct kt *k);
/* Start a kernel server of this kind on k's family (asserts). */
void kt_server_up(struct kt *k, struct jkt_server *s, int kind);
/* jkt_server_describe. */
void describe(const struct jkt_server *s, char *buf, size_t cap);
/* Poll the adapter until the server finished n connections. */
int drive_until_server_done(struct kt *k, struct jkt_server *s, unsigned long n, int timeout_ms);
/* Connect to the kernel's port, driving the adapter (asserts). */
jktcp_conn *kt_connect_ok(struct kt *k, uint16_t port);
/* Write all of buf; 0 or the failing return code. */
ssize_t write_all(jktcp_conn *c, const void *buf, size_t len);
/* Read exactly len bytes; 0, or 1 on early EOF, or the error. */
ssize_t kt_read_exact(jktcp_conn *c, void *buf, size_t len, int timeout_ms);
/* Write `total` pattern bytes; 0 or error. */
ssize_t upload(jktcp_conn *c, uint64_t total, uint32_t seed);
/* Read to EOF verifying the pattern. Returns bytes read (>= 0) or error;
 * *bad = offset of the first wrong byte or UINT64_MAX. */
int64_t download(jktcp_conn *c, uint32_t seed, uint64_t *bad);
/* One figure line to stderr: what, bytes in secs, the connection. */
void report(struct kt *k, const char *what, uint64_t bytes, double secs, const char *extra);
/* Assert no kernel socket on port is stuck half-closed. Waits up to 1 s for
 * in-flight segments to land, without driving the adapter. */
void assert_kernel_clean(uint16_t port);
/* Close c and drive the adapter until its connections are gone. */
void close_and_flush(struct kt *k, jktcp_conn *c);
/* jktcp_conn_info of c in one line (state, ports, mss, rtt, windows, ...). */
void kt_info_line(jktcp_conn *c, char *buf, size_t cap);
/* On k, up: a verifying kernel sink takes `total` pattern bytes (upload) /
 * a kernel source sends them and jktcp verifies every byte (download);
 * then EOF, close, flush, the server's counts, a report line and no kernel
 * socket left half-closed. Asserts. */
void kt_upload_case(struct kt *k, uint64_t total);
void kt_download_case(struct kt *k, uint64_t total);
/* Echo `total` bytes through an echo server in `piece`-sized rounds. */
void echo_rounds(jktcp_conn *c, uint64_t total, size_t piece, uint32_t seed);

#endif
