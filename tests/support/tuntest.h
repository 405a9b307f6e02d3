/* SPDX-License-Identifier: MIT */
/*
 * The first step of every kernel-peer test, written once: enter a private
 * network namespace and open a TUN device in it (netns.h), skipping the
 * test where the machine cannot (no root, no /dev/net/tun) and failing it
 * on any other error. Built on tests/support/minitest.h, so it serves Criterion
 * tests and the plain ThreadSanitizer runner alike.
 */
#ifndef JKT_TUNTEST_H
#define JKT_TUNTEST_H

#include "netns.h"

/* jkt_netns_enter, then jkt_tun_open(name, mtu, family_flags, out). `who`
 * starts the skip messages (the suite's name). Returns only on success. */
void jkt_tun_up_or_skip(const char *who, const char *name, unsigned mtu, int family_flags,
                        struct jkt_tun *out);

#endif
