/* SPDX-License-Identifier: MIT */
/*
 * Suite `diff`: runs every scenario (tests/diff/scen_*.c) over IPv4 and
 * IPv6 against the kernel and against jktcp, compares the outcomes and
 * reports each as agree / differ (by design, with the reason) / differ.
 *   diff::kernel_vs_jktcp  no undocumented difference, no broken invariant;
 *   diff::can_fail         with SACK or timestamps off in jktcp, every
 *                          scenario tagged with that feature differs;
 *   diff::kernel_stable    the kernel against itself, three times: the
 *                          outcomes are a function of the script alone.
 * JKTCP_DIFF_FILTER=text runs the scenarios whose "group/name" contains
 * it; JKTCP_DIFF_VERBOSE=1 prints every outcome.
 */
#include "diff_int.h"
#include "minitest.h"
#include "netns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dx_kernel_setup(void);

#define MAX_SCEN 256

static const struct dx_scenario *scen[MAX_SCEN];
static int nscen;
static unsigned run_seq;

void dx_register(const struct dx_scenario *s)
{
    if (nscen < MAX_SCEN)
        scen[nscen++] = s;
}

/* ---------------------------------------------------------------------- */
/* The application calls                                                   */
/* ---------------------------------------------------------------------- */

void dx_option(struct dx *x, int opt, long value)
{
    if (opt > 0 && opt < DX_MAX_OPTS)
        x->opts[opt] = value;
}

void dx_listen(struct dx *x, int backlog)
{
    int r = x->sys->listen(x, backlog);
    if (r)
        dx_fail(x, "listen: %s", dx_errname(r));
}

int dx_accept(struct dx *x, int timeout_ms) { return x->sys->accept(x, timeout_ms); }

void dx_connect(struct dx *x)
{
    x->sut_port = 0; /* learnt from its SYN */
    int r = x->sys->connect(x);
    if (r)
        dx_fail(x, "connect: %s", dx_errname(r));
}

int dx_connect_result(struct dx *x, int timeout_ms)
{
    return x->sys->connect_wait(x, timeout_ms);
}

long dx_write(struct dx *x, const void *buf, size_t len) { return x->sys->write(x, buf, len); }

long dx_read(struct dx *x, void *buf, size_t len, int timeout_ms)
{
    return x->sys->read(x, buf, len, timeout_ms);
}

int dx_shutdown(struct dx *x) { return x->sys->shutdown(x); }
int dx_close(struct dx *x) { return x->sys->close(x); }

/* ---------------------------------------------------------------------- */
/* Runs                                                                    */
/* ---------------------------------------------------------------------- */

struct variant {
    bool no_sack, no_ts;
};

static struct dx *run(const struct dx_sys *sys, const struct dx_scenario *s, int family,
                      struct variant v)
{
    struct dx *x = calloc(1, sizeof *x);
    x->sys = sys;
    x->family = family;
    x->jk_no_sack = v.no_sack;
    x->jk_no_ts = v.no_ts;
    jk_addr_parse(family == 4 ? JKT_KERNEL_IP4 : JKT_KERNEL_IP6, &x->sut);
    jk_addr_parse(family == 4 ? JKT_LOCAL_IP4 : JKT_LOCAL_IP6, &x->peer);
    unsigned k = run_seq++;
    x->sut_port = (uint16_t)(10000 + k % 20000); /* fresh ports: no run meets another's */
    x->peer_port = (uint16_t)(32768 + k % 28000);
    dx_run_begin(x);
    if (sys->begin(x) < 0) {
        snprintf(x->err, sizeof x->err, "%s would not start", sys->name);
        x->failed = true;
        return x;
    }
    if (setjmp(x->bail) == 0)
        s->fn(x);
    sys->end(x);
    return x;
}

/* Do the two outcomes differ only in keys listed in may? Fills what. */
static int compare(const char *a, const char *b, const char *may, char *what, size_t cap)
{
    /* the outcomes are "key: value" lines in the same order */
    int by_design = 0, other = 0;
    size_t wn = 0;
    what[0] = 0;
    while (*a || *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0) {
            const char *colon = memchr(a, ':', la);
            size_t kl = colon ? (size_t)(colon - a) : la;
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(kl < sizeof key ? kl : sizeof key - 1), a);
            bool allowed = false;
            if (may && kl) {
                for (const char *p = may; (p = strstr(p, key)); p += kl)
                    if ((p == may || p[-1] == ',') && (p[kl] == 0 || p[kl] == ','))
                        allowed = true;
            }
            allowed ? by_design++ : other++;
            wn += (size_t)snprintf(what + wn, wn < cap ? cap - wn : 0,
                                   "\n      kernel  %.*s\n      jktcp   %.*s%s", (int)la, a,
                                   (int)lb, b, allowed ? "   (by design)" : "");
        }
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
    }
    return other ? 2 : by_design ? 1 : 0;
}

static bool selected(const struct dx_scenario *s)
{
    const char *f = getenv("JKTCP_DIFF_FILTER");
    char name[256];
    snprintf(name, sizeof name, "%s/%s", s->group, s->name);
    return !f || strstr(name, f);
}

static void need_kernel(void)
{
    int rc = dx_kernel_setup();
    if (rc)
        JT_SKIP("diff: no namespace or TUN device (needs root): %s", strerror(-rc));
}

static bool tagged(const struct dx_scenario *s, const char *tag)
{
    return s->tags && strstr(s->tags, tag);
}

JT_TEST(diff, kernel_vs_jktcp, 900)
{
    need_kernel();
    int agree = 0, by_design = 0, differ = 0, broken = 0;
    bool verbose = getenv("JKTCP_DIFF_VERBOSE") != NULL;
    static char what[8192];
    for (int i = 0; i < nscen; i++) {
        if (!selected(scen[i]))
            continue;
        for (int fam = 4; fam <= 6; fam += 2) {
            struct variant v = {0};
            struct dx *k = run(&dx_kernel, scen[i], fam, v);
            struct dx *j = run(&dx_jktcp, scen[i], fam, v);
            const char *tag = "agree";
            if (k->failed || j->failed) {
                broken++;
                tag = "BROKEN";
            } else {
                int c = compare(k->out, j->out, scen[i]->may_differ, what, sizeof what);
                c == 0 ? agree++ : c == 1 ? by_design++ : differ++;
                tag = c == 0 ? "agree" : c == 1 ? "differ (by design)" : "DIFFER";
            }
            if (verbose || strcmp(tag, "agree") != 0) {
                JT_LOG("diff %s/%s v%d: %s%s%s%s%s", scen[i]->group, scen[i]->name, fam, tag,
                       k->failed ? "\n      kernel: " : "", k->failed ? k->err : "",
                       j->failed ? "\n      jktcp: " : "", j->failed ? j->err : "");
                if (!k->failed && !j->failed && strcmp(tag, "agree") != 0)
                    JT_LOG("      %s%s%s", scen[i]->why ? "why: " : "", scen[i]->why ? scen[i]->why : "", what);
            }
            if (verbose)
                JT_LOG("  kernel:\n%s  jktcp:\n%s", k->out, j->out);
            free(k);
            free(j);
        }
    }
    JT_LOG("diff: %d runs (%d scenarios x IPv4/IPv6): %d agree, %d differ (by design), "
           "%d differ, %d broken",
           agree + by_design + differ + broken, nscen, agree, by_design, differ, broken);
    JT_ASSERT(differ == 0 && broken == 0, "%d undocumented differences, %d broken runs", differ,
              broken);
}

/* The suite can fail: a scenario that depends on SACK or timestamps must
 * differ from the kernel when jktcp runs without that feature. */
JT_TEST(diff, can_fail, 600)
{
    need_kernel();
    static const struct {
        const char *tag;
        struct variant v;
    } feats[] = {{"sack", {.no_sack = true}}, {"ts", {.no_ts = true}}};
    static char what[8192];
    int checked = 0;
    for (size_t f = 0; f < 2; f++)
        for (int i = 0; i < nscen; i++) {
            if (!tagged(scen[i], feats[f].tag) || !selected(scen[i]))
                continue;
            struct dx *k = run(&dx_kernel, scen[i], 4, (struct variant){0});
            struct dx *j = run(&dx_jktcp, scen[i], 4, feats[f].v);
            int c = k->failed || j->failed ? 2 : compare(k->out, j->out, NULL, what, sizeof what);
            JT_ASSERT(c != 0, "%s/%s agrees with the kernel with %s off in jktcp",
                      scen[i]->group, scen[i]->name, feats[f].tag);
            checked++;
            free(k);
            free(j);
        }
    JT_LOG("diff: %d scenario runs with SACK or timestamps off in jktcp all differ", checked);
    JT_ASSERT(checked >= 4, "only %d scenarios are tagged sack/ts", checked);
}

/* The kernel against itself, three times: nothing in the outcomes depends
 * on timing. JKTCP_DIFF_STABILITY=N runs N rounds (default 3). */
JT_TEST(diff, kernel_stable, 900)
{
    need_kernel();
    const char *e = getenv("JKTCP_DIFF_STABILITY");
    int rounds = e ? atoi(e) : 3;
    static char what[8192];
    int runs = 0, unstable = 0;
    for (int i = 0; i < nscen; i++) {
        if (!selected(scen[i]))
            continue;
        for (int fam = 4; fam <= 6; fam += 2) {
            struct dx *first = run(&dx_kernel, scen[i], fam, (struct variant){0});
            for (int r = 1; r < rounds; r++) {
                struct dx *again = run(&dx_kernel, scen[i], fam, (struct variant){0});
                int c = compare(first->out, again->out, NULL, what, sizeof what);
                if (c || again->failed || first->failed) {
                    unstable++;
                    JT_LOG("diff %s/%s v%d: the kernel differs from itself:%s", scen[i]->group,
                           scen[i]->name, fam, what);
                }
                runs++;
                free(again);
            }
            free(first);
        }
    }
    JT_LOG("diff: kernel vs kernel, %d comparisons: %d unstable", runs, unstable);
    JT_ASSERT(unstable == 0, "%d scenarios depend on timing", unstable);
}
