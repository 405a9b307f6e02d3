/* SPDX-License-Identifier: MIT */
/*
 * jktcp-bench-loss's output: a line per run as it ends, and the markdown
 * summary: the median of the seeds per loss rate and sender with every
 * seed's time next to it (a bimodal sender shows as two clusters, which a
 * median alone would hide), each jktcp controller against the better
 * kernel, and the worst jktcp seed at the highest loss rate.
 */
#include "loss.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct lb_result *res_at(const struct lb_table *t, int l, int s, int k)
{
    return &t->res[((size_t)l * (size_t)t->nseeds + (size_t)s) * (size_t)t->nsenders + (size_t)k];
}

/* A run's time for the medians: one that did not finish (the limit, a
 * failure) counts as slower than any that did. */
static double run_secs(const struct lb_result *r)
{
    return r->status == LB_OK ? r->secs : INFINITY;
}

static void print_counters(const char *who, const jktcp_info *n)
{
    printf("  %s rexmit %u rto %u recoveries %u tlp %u", who, n->retransmits, n->timeouts,
           n->recoveries, n->tail_probes);
    printf(" dsack %u spurious %u undo %u spurious-rto %u", n->dsacks, n->spurious, n->undos,
           n->spurious_rtos);
    if (n->delivery_rate)
        printf(" model %.1f MB/s", (double)n->delivery_rate / 1e6);
}

static void print_kcounters(const struct lb_kstats *k)
{
    printf("  kernel rexmit %ld rto %ld recoveries %ld tlp %ld spurious-rto %ld undo %ld;",
           k->retrans, k->timeouts, k->recoveries, k->probes, k->spurious_rto, k->undo);
}

void lb_print_run(const struct lb_table *t, int l, int seed, int k)
{
    const struct lb_result *r = res_at(t, l, seed, k);
    const struct lb_sender *snd = &t->senders[k];
    printf("loss %4g%%  seed %-3d %-15s ", t->loss[l], seed + 1, snd->label);
    switch (r->status) {
    case LB_NA:
        printf("n/a (%s)\n", r->why);
        fflush(stdout);
        return;
    case LB_ERR:
        printf("FAILED after %.2f s, %.1f of %.1f MiB: %s\n", r->secs, (double)r->bytes / 1048576.0,
               (double)t->bytes / 1048576.0, r->why);
        fflush(stdout);
        return;
    case LB_LIMIT:
        printf(">%d s (%.1f of %.1f MiB moved)", t->limit_s, (double)r->bytes / 1048576.0,
               (double)t->bytes / 1048576.0);
        break;
    default:
        printf("%7.2f s %8.2f MB/s", r->secs, (double)r->bytes / r->secs / 1e6);
    }
    if (snd->kernel) {
        print_kcounters(&r->k);
        print_counters("jktcp (receiving)", &r->info);
    } else {
        print_counters("jktcp", &r->info);
    }
    printf("\n");
    fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds of sender k at loss l: INFINITY when it did not finish
 * in most runs, NAN when the sender is not available. */
static double median(const struct lb_table *t, int l, int k)
{
    double v[256];
    int n = 0;
    for (int s = 0; s < t->nseeds && n < 256; s++) {
        const struct lb_result *r = res_at(t, l, s, k);
        if (r->status != LB_NA)
            v[n++] = run_secs(r);
    }
    if (n == 0)
        return NAN;
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The better (lower) kernel median at loss l: NAN without one. */
static double kernel_best(const struct lb_table *t, int l)
{
    double best = NAN;
    for (int k = 0; k < t->nsenders; k++) {
        double m = t->senders[k].kernel ? median(t, l, k) : NAN;
        if (!isnan(m) && (isnan(best) || m < best))
            best = m;
    }
    return best;
}

/* Seconds as a table shows them: ">120" for a run that did not finish. */
static void fmt_secs(char *buf, size_t cap, double secs, int limit_s)
{
    if (isnan(secs))
        snprintf(buf, cap, "n/a");
    else if (isinf(secs))
        snprintf(buf, cap, ">%d", limit_s);
    else
        snprintf(buf, cap, "%.2f", secs);
}

static void print_cell(const struct lb_table *t, int l, int k)
{
    char m[32];
    fmt_secs(m, sizeof m, median(t, l, k), t->limit_s);
    printf(" %s", m);
    if (isnan(median(t, l, k)))
        return;
    printf(" (");
    for (int s = 0; s < t->nseeds; s++) {
        const struct lb_result *r = res_at(t, l, s, k);
        if (r->status == LB_ERR)
            snprintf(m, sizeof m, "FAILED");
        else
            fmt_secs(m, sizeof m, run_secs(r), t->limit_s);
        printf("%s%s", s ? ", " : "", m);
    }
    printf(")");
}

/* jktcp's time over the kernel's: ">N" when jktcp's did not finish. */
static void print_ratio(double jk, double kern, int limit_s)
{
    if (isnan(jk) || isnan(kern) || isinf(kern))
        printf(" n/a");
    else if (isinf(jk))
        printf(" >%.1fx", limit_s / kern);
    else
        printf(" %.2fx", jk / kern);
}

static void print_worst(const struct lb_table *t)
{
    int l = 0;
    for (int i = 1; i < t->nloss; i++)
        if (t->loss[i] > t->loss[l])
            l = i;
    double kern = kernel_best(t, l);
    printf("\nWorst jktcp seed / better kernel median at %g%% loss:\n", t->loss[l]);
    for (int k = 0; k < t->nsenders; k++) {
        if (t->senders[k].kernel)
            continue;
        double worst = -1;
        int ws = 0;
        for (int s = 0; s < t->nseeds; s++) {
            const struct lb_result *r = res_at(t, l, s, k);
            if (r->status != LB_NA && run_secs(r) > worst)
                worst = run_secs(r), ws = s;
        }
        if (worst < 0) {
            printf("- %s: n/a\n", t->senders[k].label);
            continue;
        }
        char w[32], km[32];
        fmt_secs(w, sizeof w, worst, t->limit_s);
        fmt_secs(km, sizeof km, kern, t->limit_s);
        printf("- %s: seed %d, %s s / %s s =", t->senders[k].label, ws + 1, w, km);
        print_ratio(worst, kern, t->limit_s);
        printf("\n");
    }
}

void lb_print_table(const struct lb_table *t)
{
    printf("\n## Loss table: %.0f MiB per transfer, %d seed%s, limit %d s per transfer\n\n"
           "Median seconds from connect until the receiver has every byte; every seed's time in "
           "brackets (seeds 1..%d).\n\n| loss |",
           (double)t->bytes / 1048576.0, t->nseeds, t->nseeds == 1 ? "" : "s", t->limit_s,
           t->nseeds);
    for (int k = 0; k < t->nsenders; k++)
        printf(" %s |", t->senders[k].label);
    for (int k = 0; k < t->nsenders; k++)
        if (!t->senders[k].kernel)
            printf(" %s / kernel |", t->senders[k].label);
    printf("\n|---|");
    for (int k = 0; k < t->nsenders; k++)
        printf("---|%s", t->senders[k].kernel ? "" : "---|");
    printf("\n");
    for (int l = 0; l < t->nloss; l++) {
        printf("| %g%% |", t->loss[l]);
        for (int k = 0; k < t->nsenders; k++) {
            print_cell(t, l, k);
            printf(" |");
        }
        double kern = kernel_best(t, l);
        for (int k = 0; k < t->nsenders; k++) {
            if (t->senders[k].kernel)
                continue;
            print_ratio(median(t, l, k), kern, t->limit_s);
            printf(" |");
        }
        printf("\n");
    }
    printf("\n\"/ kernel\": the jktcp controller's median over the better of the kernel's medians "
           "at that loss rate.\n");
    print_worst(t);
}
