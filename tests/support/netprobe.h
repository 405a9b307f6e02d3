/* SPDX-License-Identifier: MIT */
/*
 * Inspection and noise inside the test's namespace (netns.h): count the
 * kernel's sockets (through ss, or /proc/net with no external program),
 * send UDP / ping toward jktcp, wait for a frame on a TUN fd.
 * Criterion-free. Functions return a count / length or a negative errno.
 */
#ifndef JKT_NETPROBE_H
#define JKT_NETPROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/*
 * Count kernel TCP sockets (ss -tanH in this namespace) with port as local
 * or remote port whose state is one of the '|'-separated ss state names in
 * states (e.g. "LAST-ACK|FIN-WAIT-1|FIN-WAIT-2|CLOSING"); NULL = any state.
 * -errno on failure. If dump is given, the matching lines are appended.
 */
int jkt_ss_count(uint16_t port, const char *states, char *dump, size_t cap);

/*
 * The kernel's TCP sockets in this namespace from /proc/net/tcp and tcp6,
 * with no external program: *open_ counts those in any state but LISTEN,
 * TIME_WAIT and CLOSE (a connection not finished), *timewait those in
 * TIME_WAIT. Both 0 where /proc/net cannot be read.
 */
void jkt_kernel_tcp_sockets(int *open_, int *timewait);
/* The kernel's count of TCP segments it sent again in this namespace
 * (RetransSegs of /proc/net/snmp), or -1. */
long jkt_kernel_retransmits(void);
/* A counter of the kernel's in this namespace: name in group ("Tcp" of
 * /proc/net/snmp, "TcpExt" of /proc/net/netstat, ...), or -1 where the
 * kernel has no such counter. */
long jkt_kernel_stat(const char *group, const char *name);
/* The same from one file of name and value lines (e.g.
 * "/proc/thread-self/net/netstat" for a thread in a namespace of its own). */
long jkt_kernel_stat_in(const char *path, const char *group, const char *name);
/* The first line of a file (a /proc or /sys value) into buf, without its
 * newline. 0 or -errno. */
int jkt_proc_line(const char *path, char *buf, size_t cap);

/* Send a UDP datagram of len bytes from the kernel to jktcp's address
 * (family) port dport through the TUN. 0 or -errno. */
int jkt_send_udp(int family, uint16_t dport, size_t len);
/* Send an ICMP / ICMPv6 echo request to jktcp's address (raw socket). */
int jkt_send_ping(int family, uint16_t id, uint16_t seq, size_t payload_len);

/* Read frames off a TUN fd until one satisfies: IP protocol proto (6 = TCP),
 * and for TCP the given destination port and, if syn_only, the SYN flag.
 * Returns the frame length (copied to buf) or -EAGAIN after timeout_ms. */
ssize_t jkt_tun_wait_frame(int tunfd, int proto, uint16_t dport, bool syn_only,
                           void *buf, size_t cap, int timeout_ms);

/* jktcp's address (family) and port as a sockaddr; its length. */
socklen_t jkt_local_sockaddr(int family, uint16_t port, struct sockaddr_storage *ss);
/* RFC 1071 Internet checksum of len bytes (for hand-built IPv4 / ICMP). */
uint16_t jkt_inet_csum(const uint8_t *p, size_t len);

#endif
