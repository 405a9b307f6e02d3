/* SPDX-License-Identifier: MIT */
/*
 * What the packet codec tests (tests/unit/test_packet_*.c, suite `packet`)
 * share: hand-typed reference frames, a naive checksum to compare with,
 * frame surgery (lengths, checksums, IPv6 extension headers), and builders
 * and comparisons of segments.
 */
#ifndef JKT_PACKET_TEST_H
#define JKT_PACKET_TEST_H

#include "packet.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Frames typed in byte by byte, with checksums computed by a separate
 * Python script and confirmed by Wireshark ("[correct]"), so parsing and
 * building are checked against something other than this codec.
 *
 * 192.0.2.1:40000 -> 198.51.100.2:80 SYN seq 0x01020304 win 64240,
 * TTL 64, DF, options MSS 1460, SACK_PERM, TS 0x11223344/0, NOP, WS 7.
 */
extern const uint8_t syn4[60];
/* [2001:db8::1]:50000 -> [2001:db8::2]:443 SYN seq 0xfffffff0 win 65535,
 * hop limit 64, options MSS 1440, NOP, NOP, SACK_PERM, NOP, WS 14. */
extern const uint8_t syn6[72];
/* Deliberately naive RFC 1071 sum, independent of jk_csum_add. */
uint32_t ref_add(uint32_t s, const uint8_t *p, size_t n);
uint16_t ref_fold(uint32_t s);
/* A big-endian 16-bit store. */
void put16(uint8_t *p, unsigned v);
/* Recomputes the IPv4 header checksum. */
void fix_ip4(uint8_t *f);
/* Recomputes the TCP checksum of the tlen bytes at f + off. */
void fix_tcp(uint8_t *f, size_t off, size_t tlen);
/* Sets the IP length fields for a frame of len bytes (no extension headers
 * assumed for IPv4 options; IPv6 payload is everything after 40 bytes). */
void set_ip_len(uint8_t *f, size_t len);
/* IP header length of family 4 / 6; a plain segment of that family; every
 * option with nsack SACK blocks; jk_build_segment of one payload piece. */
size_t iph_of(int fam);
struct jk_seg base_seg(int fam);
void all_opts(struct jk_tcp_opts *o, int nsack);
size_t build1(uint8_t *buf, size_t cap, const struct jk_seg *s, const void *pl, size_t n);
/* SACK blocks the builder can fit next to the other options (40-byte limit). */
int expect_nsack(const struct jk_tcp_opts *o);
/* Cr-asserts the options are equal (the first nsack SACK blocks). */
void assert_opts_eq(const struct jk_tcp_opts *g, const struct jk_tcp_opts *w, int nsack);
/* Compares a parsed segment with the one it was built from. */
void assert_seg_eq(const struct jk_seg *g, const struct jk_seg *w, const void *pl, size_t n);
/* A payload pattern of n bytes for seed. */
void fill_pattern(uint8_t *p, size_t n, unsigned seed);
/* A parse whose input is an exact-size heap copy, so ASan sees overreads. */
enum jk_parse parse_exact(const uint8_t *f, size_t n, struct jk_seg *s);
/* A valid data segment with every option and a payload. */
size_t full_frame(uint8_t *buf, size_t cap, int fam, size_t plen);
/* Inserts an extension header chain (already linked to TCP) after the IPv6
 * header. The TCP checksum stays valid: it covers only the TCP length. */
size_t insert_ext(uint8_t *b, size_t len, uint8_t first_nh, const uint8_t *ext, size_t n);
/* Hop-by-hop, routing (segments left 0) and destination options, linked
 * to TCP (for insert_ext). */
extern const uint8_t ext_chain[32];

#endif
