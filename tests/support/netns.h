/* SPDX-License-Identifier: MIT */
/*
 * Kernel-peer harness: a private network namespace with a TUN device whose
 * far end is jktcp, and kernel TCP servers (threads of this process, using
 * kernel sockets inside the namespace) for jktcp to talk to.
 *
 * Addresses (only ever used inside a namespace the harness created):
 *   kernel side  198.18.0.1/24   fd00::1/64   (assigned to the TUN device)
 *   jktcp side   198.18.0.2      fd00::2      (on-link: routed into the TUN)
 *
 * Everything here is free of Criterion so tools can use it too
 * (tools/jktcp-bench, jktcp-demo and jktcp-bench-loss link these objects;
 * see SUPPORT_NET_OBJ in the Makefile), and the namespace and TUN setup runs no
 * external program (ioctls and /proc), so the demo needs no iproute2.
 * Functions return 0 / a count or a negative errno, like jktcp itself. The
 * kernel-side servers are in kserver.h, the TUN <-> socket bridge in
 * bridge.h, the kernel's sockets / UDP / ping / frame capture in netprobe.h.
 */
#ifndef JKT_NETNS_H
#define JKT_NETNS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#define JKT_KERNEL_IP4 "198.18.0.1"
#define JKT_LOCAL_IP4 "198.18.0.2"
#define JKT_KERNEL_IP6 "fd00::1"
#define JKT_LOCAL_IP6 "fd00::2"

/* family_flags for jkt_tun_open */
#define JKT_FAM_IPV4 1
#define JKT_FAM_IPV6 2
/* ... and: open the device with IFF_VNET_HDR (for JKTCP_FRAMING_TUN_OFFLOAD) */
#define JKT_TUN_VNET_HDR 4

/* The kernel-side and jktcp-side addresses for a family (AF_INET/AF_INET6). */
const char *jkt_kernel_ip(int family);
const char *jkt_local_ip(int family);
/* addr (text, of family AF_INET or AF_INET6) and port as a sockaddr; its length. */
socklen_t jkt_sockaddr(int family, const char *addr, uint16_t port, struct sockaddr_storage *ss);

/* ---------------------------------------------------------------------- */
/* Namespace and TUN                                                      */
/* ---------------------------------------------------------------------- */

/*
 * unshare(CLONE_NEWNET) for the calling thread (and so for threads and
 * processes it creates afterwards), bring lo up, quiet IPv6 defaults (no DAD,
 * no router solicitations). SIGPIPE is ignored. 0 or -errno (-EPERM without
 * root).
 */
int jkt_netns_enter(void);

struct jkt_tun {
    int fd;        /* /dev/net/tun fd, blocking, IFF_TUN|IFF_NO_PI (|IFF_VNET_HDR) */
    char name[16]; /* interface name */
    unsigned mtu;
    int ifindex;
};

/*
 * Create TUN device `name` (NULL: "jkt0") in the current namespace with the
 * given MTU (transmit queue 1000 packets), bring it up, assign the
 * kernel-side addresses of the families in family_flags (none = both; with
 * JKT_TUN_VNET_HDR the fd is opened with IFF_VNET_HDR) and wait
 * until the addresses are usable (the IPv6 local route included). Runs no
 * external program: ioctls and /proc only. 0 or -errno (-ENOENT if
 * /dev/net/tun is missing). The transmit queue is JKT_TUN_TXQLEN packets.
 */
int jkt_tun_open(const char *name, unsigned mtu, int family_flags, struct jkt_tun *out);
void jkt_tun_close(struct jkt_tun *t);
/* The device's transmit queue (kernel -> TUN reader) in packets. 0 or -errno.
 * jkt_tun_open sets JKT_TUN_TXQLEN: a TUN device frees each packet as it
 * queues it (skb_orphan), so TCP small queues never hold a kernel sender
 * back, and several paced (BBR) senders overrun a 1,000-packet queue in
 * bursts (docs/benchmarks.md, 2026-12-05 b); 10,000 is what make demo uses. */
#define JKT_TUN_TXQLEN 10000u
int jkt_tun_set_txqlen(const struct jkt_tun *t, unsigned qlen);
/* The device's packet counters as the kernel keeps them (/proc/net/dev of
 * the calling thread's namespace): rx = packets written into the TUN fd
 * (a super-segment counts once), tx = packets the kernel queued to it.
 * 0 or -errno (-ENOENT: no such device). */
int jkt_tun_packets(const struct jkt_tun *t, uint64_t *rx, uint64_t *tx);

/* For tests that need an external program (ss, tshark, ip, curl, ...); the
 * namespace and TUN setup above uses none. Run a command (argv[0] looked up
 * in PATH) in the current namespace and wait: its exit status (0..255), or
 * -errno. Output goes to /dev/null unless out (captured, NUL-terminated,
 * truncated to cap) is given. */
int jkt_run(char *const argv[], char *out, size_t cap);
/* Same through /bin/sh -c. */
int jkt_sh(const char *cmd, char *out, size_t cap);

/* True if a program is found in PATH. */
bool jkt_have_program(const char *name);

/* ---------------------------------------------------------------------- */
/* Deterministic data                                                     */
/* ---------------------------------------------------------------------- */

/* Byte at stream offset i of the pattern with this seed. */
uint8_t jkt_pattern_byte(uint64_t i, uint32_t seed);
/* buf[k] = jkt_pattern_byte(offset + k, seed). */
void jkt_pattern_fill(void *buf, size_t len, uint64_t offset, uint32_t seed);
/* Index of the first byte of buf that differs from the pattern at offset,
 * or len if all match. */
size_t jkt_pattern_check(const void *buf, size_t len, uint64_t offset, uint32_t seed);

/* Monotonic clock. */
uint64_t jkt_now_us(void);
double jkt_now_s(void);
/* nanosleep for ms milliseconds (EINTR resumed). */
void jkt_sleep_ms(int ms);

#endif
