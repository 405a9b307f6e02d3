/* SPDX-License-Identifier: MIT */
/*
 * IP reassembly (RFC 791 §3.2, RFC 8200 §4.5): pieces of fragmented IPv4
 * and IPv6 datagrams are kept until the datagram is whole, then handed back
 * as one unfragmented packet that parses like any other.
 *
 * Bounded: at most JK_REASM_SLOTS datagrams at once (the oldest gives way),
 * each at most 65,535 bytes of payload in JK_REASM_PIECES separate pieces;
 * a datagram not complete within the timeout (IPv4 30 s, IPv6 60 s, as
 * Linux's ipfrag_time) is dropped. Overlapping pieces drop the whole
 * datagram (RFC 5722; Linux does so for IPv4 too); an exact repeat of a
 * piece is ignored. Memory: one buffer per datagram in progress, taken
 * when its first piece comes and given back when it completes or drops.
 */
#ifndef JK_REASM_H
#define JK_REASM_H

#include "packet.h"

#include <stddef.h>
#include <stdint.h>

#define JK_REASM_SLOTS 4
#define JK_REASM_PIECES 64
#define JK_REASM_MAX_PAYLOAD 65535u /* IPv4 total length / IPv6 payload length */
#define JK_REASM_MAX_HDR 512u       /* longest header (IPv6 unfragmentable part) kept */
#define JK_REASM_TIMEOUT4_US 30000000u
#define JK_REASM_TIMEOUT6_US 60000000u

struct jk_reasm_piece {
    uint32_t start, end;
};

struct jk_reasm_slot {
    bool used;
    struct jk_addr src, dst;
    uint32_t id;
    uint8_t nh;                 /* IPv4 protocol / IPv6 next header after the fragment */
    uint64_t born_us;
    uint32_t total;             /* payload length, once the last piece came (else 0) */
    size_t hdr_len;             /* header kept from the first piece (0: not yet) */
    size_t nh_at;               /* IPv6: where the header names the next one */
    int npieces;
    struct jk_reasm_piece piece[JK_REASM_PIECES]; /* sorted, merged when adjacent */
    uint8_t *buf;               /* JK_REASM_MAX_HDR bytes of header room, then payload */
};

struct jk_reasm {
    struct jk_reasm_slot slot[JK_REASM_SLOTS];
    uint64_t dropped;   /* pieces thrown away: malformed, overlapping, evicted, timed out */
    uint64_t completed; /* datagrams put together */
    uint8_t *out_buf;   /* the last packet handed out (freed at the next call) */
};

/* Result of jk_reasm_add. */
enum jk_reasm_result {
    JK_REASM_KEPT = 0,  /* held; the datagram is not complete */
    JK_REASM_DONE = 1,  /* *out / *out_len: the whole packet, valid until the next call */
    JK_REASM_DROP = -1, /* thrown away (counted in dropped) */
};

/* Add one piece: frame as parsed by jk_parse_ip (ip, JK_PARSE_FRAGMENT). */
enum jk_reasm_result jk_reasm_add(struct jk_reasm *r, const uint8_t *frame, const struct jk_ip *ip,
                                  uint64_t now_us, const uint8_t **out, size_t *out_len);

/* Drop datagrams whose time ran out. */
void jk_reasm_expire(struct jk_reasm *r, uint64_t now_us);

/* Give back every buffer. */
void jk_reasm_free(struct jk_reasm *r);

#endif
