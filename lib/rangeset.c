/* SPDX-License-Identifier: MIT */
/* Range sets (rangeset.h). The arrays are short (at most a few dozen
 * ranges), so linear scans and memmove beat any tree. */
#include "rangeset.h"

#include "packet.h"

#include <errno.h>
#include <string.h>

void jk_ranges_remove(struct jk_range *v, int *n, int i)
{
    memmove(&v[i], &v[i + 1], (size_t)(*n - i - 1) * sizeof *v);
    (*n)--;
}

int jk_ranges_add(struct jk_range *v, int *n, int max, uint32_t start, uint32_t end, bool front)
{
    for (int i = 0; i < *n;) {
        if (seq_le(v[i].start, end) && seq_le(start, v[i].end)) {
            start = seq_min(start, v[i].start);
            end = seq_max(end, v[i].end);
            jk_ranges_remove(v, n, i);
        } else {
            i++;
        }
    }
    if (*n == max) /* nothing was absorbed: a new island */
        return -ENOSPC;
    if (front) {
        memmove(&v[1], &v[0], (size_t)*n * sizeof *v);
        v[0] = (struct jk_range){start, end};
    } else {
        v[*n] = (struct jk_range){start, end};
    }
    (*n)++;
    return 0;
}

void jk_ranges_forget_lowest(struct jk_range *v, int *n)
{
    int lo = 0;
    if (*n == 0)
        return;
    for (int i = 1; i < *n; i++)
        if (seq_lt(v[i].start, v[lo].start))
            lo = i;
    v[lo] = v[--*n];
}

void jk_ranges_cut_below(struct jk_range *v, int *n, uint32_t seq)
{
    for (int i = 0; i < *n;) {
        if (seq_le(v[i].end, seq)) {
            jk_ranges_remove(v, n, i);
        } else {
            if (seq_lt(v[i].start, seq))
                v[i].start = seq;
            i++;
        }
    }
}

uint32_t jk_ranges_covered(const struct jk_range *v, int n, uint32_t from, uint32_t to)
{
    uint32_t sum = 0;
    for (int i = 0; i < n; i++) {
        uint32_t l = seq_max(v[i].start, from), r = seq_min(v[i].end, to);
        if (seq_lt(l, r))
            sum += r - l;
    }
    return sum;
}

uint32_t jk_ranges_total(const struct jk_range *v, int n)
{
    uint32_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i].end - v[i].start;
    return sum;
}

uint32_t jk_ranges_max_end(const struct jk_range *v, int n, uint32_t floor)
{
    for (int i = 0; i < n; i++)
        floor = seq_max(floor, v[i].end);
    return floor;
}

uint32_t jk_ranges_skip(const struct jk_range *v, int n, uint32_t from)
{
    bool moved = true;
    while (moved) { /* the ranges are unordered: go round until none holds from */
        moved = false;
        for (int i = 0; i < n; i++)
            if (seq_le(v[i].start, from) && seq_lt(from, v[i].end)) {
                from = v[i].end;
                moved = true;
            }
    }
    return from;
}

uint32_t jk_ranges_next_start(const struct jk_range *v, int n, uint32_t from, uint32_t limit)
{
    for (int i = 0; i < n; i++)
        if (seq_gt(v[i].start, from) && seq_lt(v[i].start, limit))
            limit = v[i].start;
    return limit;
}

bool jk_ranges_holds(const struct jk_range *v, int n, uint32_t from, uint32_t to)
{
    for (int i = 0; i < n; i++)
        if (seq_le(v[i].start, from) && seq_ge(v[i].end, to))
            return true;
    return false;
}
