/* SPDX-License-Identifier: MIT */
/* Range sets (lib/rangeset.c): every operation checked against a bitmap
 * model over a window of sequence space that wraps past 2^32, with random
 * ranges; plus the edges (touching ranges merge, full set refuses a new
 * island but still merges, order most-recent-first). Pure, no adapter. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "rangeset.h"

#define SPAN 512                    /* sequence numbers modelled */
#define BASE (UINT32_MAX - SPAN / 2) /* the window straddles the wrap */
#define MAX 8

static bool model[SPAN];

static void model_add(uint32_t s, uint32_t e)
{
    for (uint32_t q = s; q != e; q++)
        model[q - BASE] = true;
}

static uint32_t model_covered(uint32_t from, uint32_t to)
{
    uint32_t n = 0;
    for (uint32_t q = from; q != to; q++)
        n += model[q - BASE];
    return n;
}

/* The set is disjoint, non-touching and equal to the model. */
static void check_same(const struct jk_range *v, int n)
{
    bool seen[SPAN] = {false};
    for (int i = 0; i < n; i++) {
        cr_assert(seq_lt(v[i].start, v[i].end), "range %d empty", i);
        for (int j = 0; j < n; j++)
            if (i != j)
                cr_assert(seq_lt(v[i].end, v[j].start) || seq_lt(v[j].end, v[i].start),
                          "ranges %d and %d touch", i, j);
        for (uint32_t q = v[i].start; q != v[i].end; q++)
            seen[q - BASE] = true;
    }
    cr_assert_arr_eq(seen, model, sizeof seen);
}

Test(rangeset, random_against_model)
{
    srand(7);
    for (int round = 0; round < 200; round++) {
        struct jk_range v[MAX];
        int n = 0;
        memset(model, 0, sizeof model);
        for (int step = 0; step < 40; step++) {
            uint32_t s = BASE + 1 + (uint32_t)(rand() % (SPAN - 40));
            uint32_t e = s + 1 + (uint32_t)(rand() % 32);
            bool front = rand() & 1;
            int r = jk_ranges_add(v, &n, MAX, s, e, front);
            if (r == 0) {
                model_add(s, e);
                if (front)
                    cr_assert(seq_le(v[0].start, s) && seq_ge(v[0].end, e), "not in front");
            } else {
                cr_assert_eq(r, -ENOSPC);
                cr_assert_eq(n, MAX);
                cr_assert_eq(model_covered(s - 1, e + 1), 0, "refused a range that merges");
            }
            check_same(v, n);
            uint32_t a = BASE + (uint32_t)(rand() % (SPAN - 100)), b = a + (uint32_t)(rand() % 64);
            cr_assert_eq(jk_ranges_covered(v, n, a, b), model_covered(a, b));
            cr_assert_eq(jk_ranges_total(v, n), model_covered(BASE, BASE + SPAN - 1));
            uint32_t k = jk_ranges_skip(v, n, a);
            cr_assert(!model[k - BASE] && model_covered(a, k) == k - a, "skip %u -> %u", a, k);
        }
    }
}

Test(rangeset, cut_below_and_max_end)
{
    srand(11);
    for (int round = 0; round < 200; round++) {
        struct jk_range v[MAX];
        int n = 0;
        memset(model, 0, sizeof model);
        for (int step = 0; step < 10; step++) {
            uint32_t s = BASE + (uint32_t)(rand() % (SPAN - 40));
            jk_ranges_add(v, &n, MAX, s, s + 1 + (uint32_t)(rand() % 30), false);
        }
        memset(model, 0, sizeof model); /* the model is what the set kept */
        for (int i = 0; i < n; i++)
            model_add(v[i].start, v[i].end);
        uint32_t cut = BASE + (uint32_t)(rand() % SPAN);
        jk_ranges_cut_below(v, &n, cut);
        for (uint32_t q = BASE; q != cut; q++)
            model[q - BASE] = false;
        check_same(v, n);
        uint32_t hi = cut;
        for (uint32_t q = cut; q != BASE + SPAN; q++)
            if (model[q - BASE])
                hi = q + 1;
        cr_assert_eq(jk_ranges_max_end(v, n, cut), hi);
    }
}

Test(rangeset, touching_ranges_merge)
{
    struct jk_range v[MAX];
    int n = 0;
    cr_assert_eq(jk_ranges_add(v, &n, MAX, 10, 20, true), 0);
    cr_assert_eq(jk_ranges_add(v, &n, MAX, 30, 40, true), 0);
    cr_assert_eq(jk_ranges_add(v, &n, MAX, 20, 30, true), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(v[0].start, 10);
    cr_assert_eq(v[0].end, 40);
}

Test(rangeset, full_set_refuses_islands_but_merges)
{
    struct jk_range v[3];
    int n = 0;
    for (uint32_t i = 0; i < 3; i++)
        cr_assert_eq(jk_ranges_add(v, &n, 3, 100 * i, 100 * i + 10, true), 0);
    cr_assert_eq(jk_ranges_add(v, &n, 3, 500, 510, true), -ENOSPC);
    cr_assert_eq(n, 3);
    cr_assert_eq(v[0].start, 200, "most recent first");
    cr_assert_eq(jk_ranges_add(v, &n, 3, 5, 105, true), 0, "merging needs no room");
    cr_assert_eq(n, 2);
    cr_assert_eq(v[0].start, 0);
    cr_assert_eq(v[0].end, 110);
}

Test(rangeset, forget_lowest_next_start_holds)
{
    struct jk_range v[4];
    int n = 0;
    jk_ranges_add(v, &n, 4, UINT32_MAX - 5, 5, false); /* across the wrap */
    jk_ranges_add(v, &n, 4, 50, 60, false);
    jk_ranges_add(v, &n, 4, 20, 30, false);
    cr_assert_eq(jk_ranges_next_start(v, n, 0, 1000), 20);
    cr_assert_eq(jk_ranges_next_start(v, n, 25, 40), 40, "limit when none is below it");
    cr_assert(jk_ranges_holds(v, n, UINT32_MAX - 2, 3));
    cr_assert(!jk_ranges_holds(v, n, 25, 55));
    jk_ranges_forget_lowest(v, &n);
    cr_assert_eq(n, 2);
    for (int i = 0; i < n; i++)
        cr_assert_neq(v[i].start, UINT32_MAX - 5, "the range below zero is the lowest");
    jk_ranges_forget_lowest(v, &n);
    jk_ranges_forget_lowest(v, &n);
    jk_ranges_forget_lowest(v, &n); /* empty: no-op */
    cr_assert_eq(n, 0);
}
