/* SPDX-License-Identifier: MIT */
/*
 * Sets of disjoint sequence-number ranges kept in small arrays: the
 * receiver's out-of-order islands (most recent first, RFC 2018 §4 reports
 * them in that order) and the sender's SACK scoreboard. Every function is
 * pure over (v, *n); sequence comparisons wrap (packet.h's seq_lt & co.).
 * The caller owns the array and its capacity and decides what to forget
 * when it is full: the set never evicts on its own.
 */
#ifndef JK_RANGESET_H
#define JK_RANGESET_H

#include <stdbool.h>
#include <stdint.h>

struct jk_range {
    uint32_t start, end; /* [start, end) in sequence space */
};

/* Add [start, end), absorbing every range it overlaps or touches. The
 * result goes first (front) or last. 0, or -ENOSPC when the set holds max
 * ranges and the new one touches none of them (the set is unchanged). */
int jk_ranges_add(struct jk_range *v, int *n, int max, uint32_t start, uint32_t end, bool front);

/* Remove the range at index i, keeping the order of the others. */
void jk_ranges_remove(struct jk_range *v, int *n, int i);

/* Remove the range that starts lowest (order not kept). */
void jk_ranges_forget_lowest(struct jk_range *v, int *n);

/* Drop everything below seq: whole ranges, and the part of one that
 * straddles it. */
void jk_ranges_cut_below(struct jk_range *v, int *n, uint32_t seq);

/* Bytes of [from, to) inside the set. */
uint32_t jk_ranges_covered(const struct jk_range *v, int n, uint32_t from, uint32_t to);

/* Bytes in the set. */
uint32_t jk_ranges_total(const struct jk_range *v, int n);

/* The highest end in the set, or floor if none is above it. */
uint32_t jk_ranges_max_end(const struct jk_range *v, int n, uint32_t floor);

/* The first byte at or after from that no range holds. */
uint32_t jk_ranges_skip(const struct jk_range *v, int n, uint32_t from);

/* The lowest start above from, or limit if none is below it. */
uint32_t jk_ranges_next_start(const struct jk_range *v, int n, uint32_t from, uint32_t limit);

/* Whether one range holds all of [from, to). */
bool jk_ranges_holds(const struct jk_range *v, int n, uint32_t from, uint32_t to);

#endif
