/* SPDX-License-Identifier: MIT */
/* The virtio-net header of a TUN device opened with IFF_VNET_HDR, and what
 * the TUN offload transport (transport_tun.c) does with it: cut a received
 * TCP super-segment (GSO) into the segments it stands for, complete a
 * checksum the kernel left partial, and coalesce consecutive segments of
 * one flow into one super-segment to write. Pure functions, no allocation,
 * no I/O; every produced frame is a complete IP frame with valid checksums
 * that jk_parse_frame accepts. */
#ifndef JK_VNET_H
#define JK_VNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* struct virtio_net_hdr (linux/virtio_net.h), in the host's byte order
 * (a TUN device's default: TUNSETVNETLE/BE not used). */
struct jk_vnet_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;     /* bytes of headers (IP + TCP) */
    uint16_t gso_size;    /* payload bytes per segment */
    uint16_t csum_start;  /* where the checksummed bytes start (the TCP header) */
    uint16_t csum_offset; /* where the checksum sits, from csum_start */
};

#define JK_VNET_HDR_LEN 10u
#define JK_VNET_F_NEEDS_CSUM 1u
#define JK_VNET_GSO_NONE 0u
#define JK_VNET_GSO_TCPV4 1u
#define JK_VNET_GSO_TCPV6 4u
#define JK_VNET_GSO_ECN 0x80u
/* The largest super-segment written: a frame of at most 64 KiB - 1. */
#define JK_VNET_MAX_SUPER 65535u
/* Headers a split keeps a copy of: the TCP header at most this far in. */
#define JK_VNET_MAX_L4 256u
#define JK_VNET_MAX_HDRS (JK_VNET_MAX_L4 + 60u)

void jk_vnet_hdr_get(struct jk_vnet_hdr *h, const uint8_t *p);
void jk_vnet_hdr_put(uint8_t *p, const struct jk_vnet_hdr *h);

/* A received packet being cut into frames in place. */
struct jk_vnet_split {
    uint8_t *pkt; /* the packet (after the virtio-net header) */
    size_t len;
    uint32_t n, i;       /* frames it gives, the next one */
    uint16_t hl, l4;     /* IP + TCP header bytes, the TCP header's offset */
    uint16_t gso;        /* payload bytes per frame (0: pkt is the one frame) */
    uint8_t family;      /* 4 / 6 */
    uint8_t tflags;      /* the super-segment's TCP flags */
    uint16_t id;         /* IPv4 identification of the first frame */
    bool fixed_id;       /* IPv4 id 0 with DF: every frame keeps id 0 (RFC 6864) */
    uint32_t seq;        /* sequence number of the first frame */
    uint32_t addr_sum;   /* checksum of the addresses (pseudo-header part) */
    bool csum_ours;      /* the frames' TCP checksums are the split's own work
                          * (a super-segment cut): checking them again would
                          * only repeat the sum */
    uint8_t hdrs[JK_VNET_MAX_HDRS]; /* the headers as received */
};

/*
 * Start handing out the frames of a received packet (len bytes at pkt,
 * after its virtio-net header h). GSO TCPv4/TCPv6 packets are cut into
 * gso_size segments; a packet without GSO whose checksum the kernel left
 * partial (JK_VNET_F_NEEDS_CSUM) gets it completed. Returns the number of
 * frames jk_vnet_split_next will give (>= 1), or 0 when the packet is
 * passed on unchanged as one frame because it is not what the header says
 * (the parser then judges it, as any frame).
 */
int jk_vnet_split_begin(struct jk_vnet_split *s, uint8_t *pkt, size_t len,
                        const struct jk_vnet_hdr *h);

/* The next frame (inside pkt: it overwrites the previous frame's bytes, so
 * each frame stays valid only until the next call). False when none is left. */
bool jk_vnet_split_next(struct jk_vnet_split *s, const uint8_t **frame, size_t *len);

/* One super-segment being built from consecutive frames. */
struct jk_vnet_coalesce {
    uint8_t *buf; /* JK_VNET_HDR_LEN + JK_VNET_MAX_SUPER bytes, the caller's */
    size_t len;   /* frame bytes held at buf + JK_VNET_HDR_LEN (0: none) */
    uint16_t hl, l4, gso;
    uint32_t next_seq;
    uint32_t nseg;
    bool closed; /* the last segment was short or pushed: nothing may follow */
    bool psh;
};

/*
 * Offer a frame. With nothing held, a TCP segment that could start a
 * super-segment (IPv4 without options or fragmentation / IPv6 without
 * extension headers; flags ACK only; a payload) is copied in: true. With a
 * segment held, the frame is appended when it continues it: same IP
 * header fields (lengths, IPv4 id and checksum aside), same ports, ACK,
 * window, options bytes and flags (PSH allowed, and it ends the run),
 * contiguous sequence numbers, a payload no larger than the first one's
 * (a smaller one ends the run), 64 KiB at most in all: true. False: the
 * frame was not taken (write out what is held, then offer it again; false
 * again means it goes out alone).
 */
bool jk_vnet_coalesce_add(struct jk_vnet_coalesce *c, const uint8_t *frame, size_t len);

/*
 * Make what is held ready to write and let go of it: the virtio-net header
 * at c->buf, the frame right behind it. One segment goes out as it came
 * with a zero header; several become one GSO super-segment (IP lengths and
 * IPv4 header checksum for the whole, gso_size the first payload,
 * NEEDS_CSUM with the TCP checksum field holding the pseudo-header sum, as
 * the kernel expects). Returns the bytes to write from c->buf, 0 when
 * nothing was held.
 */
size_t jk_vnet_coalesce_finish(struct jk_vnet_coalesce *c);

#endif
