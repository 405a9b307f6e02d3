/* SPDX-License-Identifier: MIT */
/*
 * jktcp-bench-loss's output for the shared-link cases (shared.c): a line
 * per run, the bottleneck table (each flow's share of the 100 Mbit/s, its
 * mean and largest smoothed RTT against the path's 20 ms, the queue's drops
 * and mean wait; a kernel flow sharing the queue is a flow like the others)
 * and the fairness table (each of the 8 flows' Mbit/s and Jain's index).
 */
#include "loss.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

static const char *cc_name(long v)
{
    switch (v) {
    case JKTCP_CC_NEWRENO: return "newreno";
    case JKTCP_CC_CUBIC: return "cubic";
    case JKTCP_CC_BBR: return "bbr";
    default: return "?";
    }
}

/* Flow i of case c: a jktcp controller's name, or the kernel flow's. */
static const char *flow_name(const struct lb_shared_case *c, int i, char *buf, size_t cap)
{
    if (i < c->nflows)
        return cc_name(c->cc[i]);
    snprintf(buf, cap, "kernel %s", c->kernel_cc);
    return buf;
}

double lb_jain(const double *x, int n)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++)
        s += x[i], s2 += x[i] * x[i];
    return s2 > 0 ? s * s / (n * s2) : 0;
}

static double rate_mbit(void)
{
    return (double)LB_BN_RATE_BPS / 1e6;
}

/* The mean time a frame waited in the bottleneck's queue (serialization
 * included), ms. */
static double queue_wait_ms(const jktcp_fault_link_stats *l)
{
    return l->frames ? (double)l->queue_us_total / (double)l->frames / 1000.0 : 0;
}

void lb_print_shared_run(const struct lb_shared_case *c, const struct lb_shared_result *r)
{
    printf("%-32s ", c->label);
    if (r->status != LB_OK) {
        printf("%s: %s\n", r->status == LB_NA ? "n/a" : "FAILED", r->why);
        fflush(stdout);
        return;
    }
    printf("%.1f s:", r->secs);
    double total = 0;
    for (int i = 0; i < lb_case_flows(c); i++) {
        char nb[32];
        printf(" [%s %.1f Mbit/s srtt %.1f/%.1f ms rexmit %u rto %u]",
               flow_name(c, i, nb, sizeof nb), r->f[i].mbit_s, r->f[i].srtt_mean_ms,
               r->f[i].srtt_max_ms, r->f[i].retransmits, r->f[i].timeouts);
        total += r->f[i].mbit_s;
    }
    if (c->bottleneck)
        printf(" link: %.0f%% used, queue drops %" PRIu64 ", max %" PRIu64 " B, mean wait %.2f ms",
               100 * total / rate_mbit(), r->link.queue_drops, r->link.max_queue_bytes,
               queue_wait_ms(&r->link));
    if (c->kernel_cc[0])
        printf(" switch: in %" PRIu64 " jktcp + %" PRIu64 " kernel, out %" PRIu64 " + %" PRIu64
               ", stray %" PRIu64 ", lost %" PRIu64,
               r->sw.up_jk, r->sw.up_k, r->sw.down_jk, r->sw.down_k, r->sw.stray, r->sw.lost);
    printf("\n");
    fflush(stdout);
}

static void print_bn_row(const struct lb_shared_case *c, const struct lb_shared_result *r)
{
    double rtt = 2.0 * LB_BN_DELAY_US / 1000.0, total = 0;
    int n = lb_case_flows(c);
    for (int i = 0; i < n; i++)
        total += r->f[i].mbit_s;
    for (int i = 0; i < n; i++) {
        const struct lb_flow_result *f = &r->f[i];
        char nb[32], use[16] = "";
        if (i == 0)
            snprintf(use, sizeof use, "%.0f%%", 100 * total / rate_mbit());
        /* the link's own view: every data frame's path delay is the RTT
         * plus its wait. jktcp's srtt times one segment a round and drops
         * the timing across a retransmission or recovery (Karn), so while
         * the queue overflows it takes no samples */
        printf("| %s | %s | %.1f | %.0f%% | %.0f%% | %s | %.1f | %.1f | %.2fx | %u | %" PRIu64
               " | %.2f | %.2fx |\n",
               i ? "" : c->label, flow_name(c, i, nb, sizeof nb), f->mbit_s,
               100 * f->mbit_s / rate_mbit(), 100 * f->mbit_s / (total > 0 ? total : 1), use,
               f->srtt_mean_ms, f->srtt_max_ms,
               f->srtt_mean_ms / rtt, f->retransmits, r->link.queue_drops,
               queue_wait_ms(&r->link), (rtt + queue_wait_ms(&r->link)) / rtt);
    }
}

void lb_print_bottleneck_table(const struct lb_shared_case *c, const struct lb_shared_result *r,
                               int n)
{
    printf("\n## Bottleneck: %.0f Mbit/s, RTT %.0f ms, %u KiB drop-tail queue, no random loss\n\n"
           "jktcp uploads to kernel sinks through the fault transport's link for %d s per run "
           "(goodput = what the sinks read / the whole run, slow start included); in the "
           "\"kernel\" rows a Linux kernel flow uploads through the same queue (a switch "
           "thread drives the link, see docs/benchmarks.md). link use = all flows' goodput / "
           "the rate. srtt: jktcp_info.srtt_us (a kernel flow's TCP_INFO tcpi_rtt) every 50 ms, "
           "mean / max; inflation = mean srtt / %.0f ms. The queue's drops and mean wait (per "
           "data frame, serialization included) are the link's, all flows together; link "
           "inflation = (RTT + mean wait) / RTT.\n\n"
           "| case | flow | Mbit/s | of rate | share | link use | mean srtt ms | max srtt ms | "
           "inflation | rexmit | queue drops | queue wait ms | link inflation |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
           rate_mbit(), 2.0 * LB_BN_DELAY_US / 1000.0, LB_BN_QUEUE / 1024, n ? c[0].secs : 0,
           2.0 * LB_BN_DELAY_US / 1000.0);
    for (int k = 0; k < n; k++) {
        if (r[k].status != LB_OK)
            printf("| %s | %s: %s |\n", c[k].label, r[k].status == LB_NA ? "n/a" : "FAILED",
                   r[k].why);
        else
            print_bn_row(&c[k], &r[k]);
    }
}

void lb_print_fairness_table(const struct lb_shared_case *c, const struct lb_shared_result *r,
                             int n)
{
    int nf = n ? c[0].nflows : 0;
    printf("\n## Fairness: %d jktcp flows (default controller) on one adapter, %d s\n\n"
           "Each flow's Mbit/s at its kernel sink (data verified); Jain's index (sum x)^2 / "
           "(n sum x^2): 1 = equal shares; max/min the spread. Link: the lossy one (no rate "
           "limit: the I/O thread is the bottleneck), or the 100 Mbit/s bottleneck.\n\n| link |",
           nf, n ? c[0].secs : 0);
    for (int i = 0; i < nf; i++)
        printf(" %d |", i + 1);
    printf(" total | Jain | max/min |\n|---|");
    for (int i = 0; i < nf + 3; i++)
        printf("---|");
    printf("\n");
    for (int k = 0; k < n; k++) {
        if (c[k].bottleneck)
            printf("| 100 Mbit/s |");
        else
            printf("| %g%% loss |", c[k].loss * 100);
        if (r[k].status != LB_OK) {
            printf(" FAILED: %s |\n", r[k].why);
            continue;
        }
        double x[LB_MAX_FLOWS], total = 0, lo = 0, hi = 0;
        for (int i = 0; i < nf; i++) {
            x[i] = r[k].f[i].mbit_s;
            total += x[i];
            lo = i == 0 || x[i] < lo ? x[i] : lo;
            hi = x[i] > hi ? x[i] : hi;
            printf(" %.1f |", x[i]);
        }
        printf(" %.1f | %.3f | %.2f |\n", total, lb_jain(x, nf), lo > 0 ? hi / lo : 0);
    }
}
