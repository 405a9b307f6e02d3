/* SPDX-License-Identifier: MIT */
/*
 * jktcp-bench-loss: the loss table of issue 12. The time to move --mib MiB
 * over the same lossy link (tests/support/lossylink.h: TUN in a private
 * namespace, MTU 1500, IPv4, the fault wrapper dropping p of the frames each
 * way and duplicating and reordering p/2; the kernel's route rto_min 20 ms),
 * with jktcp sending (once per congestion controller in --cc; the kernel
 * sinks and verifies) against the kernel sending (once per controller in
 * --kernel-cc; jktcp reads and verifies). One transfer at a time, each in
 * a fresh namespace (a child process of its own), for every loss rate and
 * seed; a line per run, then a markdown table. A benchmark: `make
 * bench-loss` runs it, `make test` does not.
 *
 * After it, two shared-link cases (tools/bench-loss/shared.c): --bottleneck,
 * jktcp through a 100 Mbit/s, 20 ms RTT link with a 256 KiB queue, alone
 * with each controller and two controllers side by side, then a kernel
 * flow (each of --kernel-cc) alone through the same queue and beside
 * jktcp's default (tools/bench-loss/kshare.c); --fairness, 8
 * jktcp flows on one adapter over the lossy link at 1% and 5%. All three
 * by default; --only loss,bottleneck,fairness picks.
 *
 * usage: jktcp-bench-loss [--seeds N] [--mib M] [--loss 1,5,20] [--limit S]
 *                         [--cc newreno,cubic,bbr] [--kernel-cc cubic,bbr]
 *                         [--only loss,bottleneck,fairness] [--secs S]
 * Exit status 1 if a run failed (not the limit: a connection error or a
 * data mismatch), 2 on bad usage or without root.
 */
#include "jktcp.h"

#include "bench-loss/loss.h"
#include "netns.h"
#include "netprobe.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

/* jktcp's congestion controllers by name (JKTCP_OPT_CONGESTION values). */
static const struct {
    const char *name;
    long value;
} jk_ccs[] = {
    {"newreno", JKTCP_CC_NEWRENO},
    {"cubic", JKTCP_CC_CUBIC},
    {"bbr", JKTCP_CC_BBR},
};

#define MAX_LOSS 8
#define MAX_SENDERS 8
#define MAX_SEEDS 256
/* A child that has not answered this long after its limit is stuck in
 * setup or teardown: it is killed and the run counts as failed. */
#define GRACE_S 60

enum { RUN_LOSS = 1, RUN_BOTTLENECK = 2, RUN_FAIRNESS = 4 };

struct opts {
    int seeds, limit_s;
    int run;      /* RUN_* */
    int secs;     /* per shared-link run (0 = 20 s bottleneck, 10 s fairness) */
    uint64_t bytes;
    double loss[MAX_LOSS];
    int nloss;
    const char *cc, *kernel_cc;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: jktcp-bench-loss [--seeds N] [--mib M] [--loss 1,5,20] [--limit S]\n"
               "                        [--cc newreno,cubic,bbr] [--kernel-cc cubic,bbr]\n"
               "                        [--only loss,bottleneck,fairness] [--secs S]\n");
}

static int parse_loss(const char *arg, struct opts *o)
{
    char buf[128], *save, *tok;
    snprintf(buf, sizeof buf, "%s", arg);
    o->nloss = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        double v = strtod(tok, &end);
        if (*end || v < 0 || v >= 100 || o->nloss == MAX_LOSS)
            return -1;
        o->loss[o->nloss++] = v;
    }
    return o->nloss ? 0 : -1;
}

static int parse_only(const char *arg, struct opts *o)
{
    char buf[128], *save, *tok;
    snprintf(buf, sizeof buf, "%s", arg);
    o->run = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "loss") == 0)
            o->run |= RUN_LOSS;
        else if (strcmp(tok, "bottleneck") == 0)
            o->run |= RUN_BOTTLENECK;
        else if (strcmp(tok, "fairness") == 0)
            o->run |= RUN_FAIRNESS;
        else
            return -1;
    }
    return o->run ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"seeds", 1, 0, 's'}, {"mib", 1, 0, 'm'}, {"loss", 1, 0, 'l'}, {"limit", 1, 0, 't'},
        {"cc", 1, 0, 'c'},    {"kernel-cc", 1, 0, 'k'}, {"help", 0, 0, 'h'},
        {"only", 1, 0, 'o'},  {"secs", 1, 0, 'S'},      {0, 0, 0, 0},
    };
    *o = (struct opts){.seeds = 5, .limit_s = 120, .bytes = 64ull << 20, .loss = {1, 5, 20},
                       .nloss = 3, .cc = "newreno,cubic,bbr", .kernel_cc = "cubic,bbr",
                       .run = RUN_LOSS | RUN_BOTTLENECK | RUN_FAIRNESS};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's': o->seeds = atoi(optarg); break;
        case 'm': o->bytes = strtoull(optarg, NULL, 10) << 20; break;
        case 'l':
            if (parse_loss(optarg, o) < 0)
                return fprintf(stderr, "--loss: percentages, comma-separated, at most %d\n",
                               MAX_LOSS), -1;
            break;
        case 't': o->limit_s = atoi(optarg); break;
        case 'c': o->cc = optarg; break;
        case 'k': o->kernel_cc = optarg; break;
        case 'o':
            if (parse_only(optarg, o) < 0)
                return fprintf(stderr, "--only: loss, bottleneck, fairness (comma-separated)\n"), -1;
            break;
        case 'S': o->secs = atoi(optarg); break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (o->secs < 0 || o->secs > 3600)
        return fprintf(stderr, "--secs: 1..3600\n"), -1;
    if (optind != argc || o->seeds < 1 || o->seeds > MAX_SEEDS || o->limit_s < 1 || !o->bytes)
        return fprintf(stderr, "bad arguments (seeds 1..%d, limit and mib > 0)\n", MAX_SEEDS), -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Who sends                                                          */
/* ------------------------------------------------------------------ */

static int add_jktcp(struct lb_sender *s, const char *name)
{
    for (size_t i = 0; i < sizeof jk_ccs / sizeof jk_ccs[0]; i++) {
        if (strcmp(jk_ccs[i].name, name) != 0)
            continue;
        *s = (struct lb_sender){.jk_cc = jk_ccs[i].value};
        snprintf(s->label, sizeof s->label, "jktcp %s", name);
        s->na = lb_jktcp_cc_check(s->jk_cc, s->na_why, sizeof s->na_why) != 0;
        return 0;
    }
    return fprintf(stderr, "--cc: no jktcp controller '%s' (newreno, cubic, bbr)\n", name), -1;
}

/* Whether the kernel offers controller name (its available list is the
 * whole machine's, so the parent's view holds in every namespace). */
static bool kernel_has_cc(const char *name)
{
    char list[512], pad[520], want[80];
    if (jkt_proc_line("/proc/sys/net/ipv4/tcp_available_congestion_control", list, sizeof list) < 0)
        return false;
    snprintf(pad, sizeof pad, " %s ", list);
    snprintf(want, sizeof want, " %s ", name);
    return strstr(pad, want) != NULL;
}

static int add_kernel(struct lb_sender *s, const char *name)
{
    if (strlen(name) > 15 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name))
        return fprintf(stderr, "--kernel-cc: '%s' is not a congestion control name\n", name), -1;
    *s = (struct lb_sender){.kernel = true, .k_cc = name};
    snprintf(s->label, sizeof s->label, "kernel %s", name);
    if (!kernel_has_cc(name)) { /* built as a module that is not loaded yet? once */
        char cmd[64];
        snprintf(cmd, sizeof cmd, "modprobe tcp_%s 2>&1", name);
        jkt_sh(cmd, NULL, 0);
    }
    s->na = !kernel_has_cc(name);
    if (s->na)
        snprintf(s->na_why, sizeof s->na_why, "the kernel has no %s (modprobe tcp_%s failed)", name,
                 name);
    return 0;
}

/* --cc's then --kernel-cc's senders, in their order. The names point into
 * argv or the defaults: they live as long as the program. */
static int make_senders(struct opts *o, struct lb_sender *s, int *n)
{
    static char lists[2][256];
    const char *src[2] = {o->cc, o->kernel_cc};
    *n = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(lists[i], sizeof lists[i], "%s", src[i]);
        char *save, *tok;
        for (tok = strtok_r(lists[i], ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (*n == MAX_SENDERS)
                return fprintf(stderr, "at most %d senders\n", MAX_SENDERS), -1;
            if ((i ? add_kernel(&s[*n], tok) : add_jktcp(&s[*n], tok)) < 0)
                return -1;
            ++*n;
        }
    }
    return *n ? 0 : (fprintf(stderr, "no senders\n"), -1);
}

/* ------------------------------------------------------------------ */
/* One run in a child with a namespace of its own                      */
/* ------------------------------------------------------------------ */

/* The child's exit, bounded: it has answered and only tears down. */
static void reap(pid_t pid, int wait_s)
{
    for (int i = 0; i < wait_s * 20; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        jkt_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* The child: a namespace of its own, fn, the result up the pipe. Its
 * first int says whether the namespace could be made (0 or -errno). */
static void child(int wfd, lb_iso_fn fn, const void *arg, void *res, size_t size)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int rc = jkt_netns_enter();
    if (rc == 0)
        fn(arg, res);
    if (write(wfd, &rc, sizeof rc) != (ssize_t)sizeof rc ||
        (rc == 0 && write(wfd, res, size) != (ssize_t)size))
        _exit(1);
    _exit(0);
}

/* A result of size bytes is bigger than a pipe's atomic write but the
 * parent reads all of it (read_all): no partial result is taken. */
static bool read_all(int fd, void *buf, size_t size)
{
    uint8_t *p = buf;
    while (size) {
        ssize_t n = read(fd, p, size);
        if (n <= 0)
            return false;
        p += n, size -= (size_t)n;
    }
    return true;
}

int lb_isolated(lb_iso_fn fn, const void *arg, void *res, size_t size, int limit_s, char *why,
                size_t cap)
{
    int fd[2], rc = -1;
    fflush(NULL); /* the child must not print what the parent buffered */
    if (pipe(fd) < 0)
        return snprintf(why, cap, "pipe: %s", strerror(errno)), -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        child(fd[1], fn, arg, res, size);
    }
    close(fd[1]);
    if (pid < 0) {
        snprintf(why, cap, "fork: %s", strerror(errno));
        close(fd[0]);
        return -1;
    }
    /* the child keeps its own limit; this bounds setup and teardown too */
    struct pollfd pf = {.fd = fd[0], .events = POLLIN};
    int ready = poll(&pf, 1, (limit_s + GRACE_S) * 1000);
    int ns = 0;
    if (ready == 1 && read_all(fd[0], &ns, sizeof ns) && (ns < 0 || read_all(fd[0], res, size))) {
        reap(pid, GRACE_S);
        rc = ns < 0 ? -1 : 0;
        if (ns < 0)
            snprintf(why, cap, "network namespace: %s", strerror(-ns));
    } else {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        snprintf(why, cap, "no answer %d s past the limit (killed)", GRACE_S);
    }
    close(fd[0]);
    return rc;
}

struct xfer_arg {
    const struct lb_sender *s;
    const struct lb_params *p;
};

static void xfer_fn(const void *arg, void *res)
{
    const struct xfer_arg *x = arg;
    lb_run(x->s, x->p, res);
}

static void run_isolated(const struct lb_sender *s, const struct lb_params *p, struct lb_result *r)
{
    struct xfer_arg x = {s, p};
    char why[sizeof r->why];
    memset(r, 0, sizeof *r);
    if (lb_isolated(xfer_fn, &x, r, sizeof *r, p->limit_s, why, sizeof why) < 0) {
        memset(r, 0, sizeof *r);
        r->status = LB_ERR;
        snprintf(r->why, sizeof r->why, "%s", why);
    }
}

/* ------------------------------------------------------------------ */

static void print_header(const struct opts *o)
{
    struct utsname u;
    uname(&u);
    printf("# jktcp-bench-loss: %.0f MiB per transfer, %d seed%s per loss rate, limit %d s; "
           "Linux %s\n# link: TUN, MTU 1500, IPv4, loss each way (+ half as many duplicated and "
           "reordered), rto_min 20 ms both ends; each run in a fresh namespace\n",
           (double)o->bytes / 1048576.0, o->seeds, o->seeds == 1 ? "" : "s", o->limit_s,
           u.release);
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* The shared-link cases                                              */
/* ------------------------------------------------------------------ */

static void shared_fn(const void *arg, void *res)
{
    lb_shared_run(arg, res);
}

static bool run_shared(const struct lb_shared_case *c, int n, struct lb_shared_result *r)
{
    bool failed = false;
    for (int k = 0; k < n; k++) {
        char why[128];
        if (c[k].na_why) {
            memset(&r[k], 0, sizeof r[k]);
            r[k].status = LB_NA;
            snprintf(r[k].why, sizeof r[k].why, "%s", c[k].na_why);
        } else if (lb_isolated(shared_fn, &c[k], &r[k], sizeof r[k], c[k].secs + 30, why,
                               sizeof why) < 0) {
            memset(&r[k], 0, sizeof r[k]);
            r[k].status = LB_ERR;
            snprintf(r[k].why, sizeof r[k].why, "%s", why);
        }
        failed |= r[k].status == LB_ERR;
        lb_print_shared_run(&c[k], &r[k]);
    }
    return failed;
}

/* Each controller alone, then BBR beside each of the others; then per
 * kernel controller of --kernel-cc (snd's kernel senders) the kernel flow
 * alone through the same link and BBR (the default) beside it. */
static bool bottleneck(const struct opts *o, const struct lb_sender *snd, int nsnd)
{
    static const long ccs[] = {JKTCP_CC_NEWRENO, JKTCP_CC_CUBIC, JKTCP_CC_BBR};
    struct lb_shared_case c[5 + 2 * MAX_SENDERS];
    struct lb_shared_result r[5 + 2 * MAX_SENDERS];
    int n = 0;
    for (int i = 0; i < 3; i++) {
        c[n] = (struct lb_shared_case){.bottleneck = true, .seed = 1, .nflows = 1,
                                       .secs = o->secs ? o->secs : 20, .cc = {ccs[i]}};
        snprintf(c[n].label, sizeof c[n].label, "bottleneck %s alone", jk_ccs[i].name);
        n++;
    }
    for (int i = 0; i < 2; i++) {
        c[n] = (struct lb_shared_case){.bottleneck = true, .seed = 1, .nflows = 2,
                                       .secs = o->secs ? o->secs : 20,
                                       .cc = {JKTCP_CC_BBR, ccs[i]}};
        snprintf(c[n].label, sizeof c[n].label, "bottleneck bbr + %s", jk_ccs[i].name);
        n++;
    }
    for (int k = 0; k < nsnd; k++) {
        if (!snd[k].kernel)
            continue;
        for (int both = 0; both < 2; both++) {
            c[n] = (struct lb_shared_case){.bottleneck = true, .seed = 1, .nflows = both,
                                           .secs = o->secs ? o->secs : 20, .cc = {JKTCP_CC_BBR},
                                           .na_why = snd[k].na ? snd[k].na_why : NULL};
            snprintf(c[n].kernel_cc, sizeof c[n].kernel_cc, "%s", snd[k].k_cc);
            snprintf(c[n].label, sizeof c[n].label, "bottleneck %skernel %s%s",
                     both ? "bbr + " : "", snd[k].k_cc, both ? "" : " alone");
            n++;
        }
    }
    bool failed = run_shared(c, n, r);
    lb_print_bottleneck_table(c, r, n);
    return failed;
}

/* 8 flows over the lossy link at 1% and 5%, then over the bottleneck. */
static bool fairness(const struct opts *o)
{
    static const double loss[] = {0.01, 0.05, 0};
    struct lb_shared_case c[3];
    struct lb_shared_result r[3];
    for (int k = 0; k < 3; k++) {
        c[k] = (struct lb_shared_case){.loss = loss[k], .bottleneck = loss[k] == 0, .seed = 1,
                                       .nflows = LB_MAX_FLOWS, .secs = o->secs ? o->secs : 10};
        for (int i = 0; i < LB_MAX_FLOWS; i++)
            c[k].cc[i] = JKTCP_CC_BBR; /* the default controller */
        if (c[k].bottleneck)
            snprintf(c[k].label, sizeof c[k].label, "fairness 8 flows bottleneck");
        else
            snprintf(c[k].label, sizeof c[k].label, "fairness 8 flows loss %g%%", loss[k] * 100);
    }
    bool failed = run_shared(c, 3, r);
    lb_print_fairness_table(c, r, 3);
    return failed;
}

/* ------------------------------------------------------------------ */

static bool loss_table(struct opts *o, struct lb_sender *snd, int nsnd)
{
    size_t nres = (size_t)o->nloss * (size_t)o->seeds * (size_t)nsnd;
    struct lb_result *res = calloc(nres, sizeof *res);
    if (!res)
        return true;
    struct lb_table t = {.loss = o->loss, .nloss = o->nloss, .nseeds = o->seeds, .nsenders = nsnd,
                         .senders = snd, .res = res, .bytes = o->bytes, .limit_s = o->limit_s};
    print_header(o);
    bool failed = false;
    /* the senders take turns within a seed, so a machine that slows down
     * for a while slows every sender alike */
    for (int l = 0; l < o->nloss; l++) {
        for (int s = 0; s < o->seeds; s++) {
            for (int k = 0; k < nsnd; k++) {
                size_t at = ((size_t)l * (size_t)o->seeds + (size_t)s) * (size_t)nsnd + (size_t)k;
                struct lb_result *r = &res[at];
                struct lb_params p = {.loss = o->loss[l] / 100.0, .seed = (uint64_t)s + 1,
                                      .bytes = o->bytes, .limit_s = o->limit_s};
                if (snd[k].na) {
                    r->status = LB_NA;
                    snprintf(r->why, sizeof r->why, "%s", snd[k].na_why);
                } else {
                    run_isolated(&snd[k], &p, r);
                }
                failed |= r->status == LB_ERR;
                lb_print_run(&t, l, s, k);
            }
        }
    }
    lb_print_table(&t);
    free(res);
    return failed;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct lb_sender snd[MAX_SENDERS];
    int nsnd;
    if (parse_args(argc, argv, &o) < 0)
        return usage(stderr), 2;
    if (geteuid() != 0) {
        fprintf(stderr, "jktcp-bench-loss: needs root (a network namespace and a TUN device per run)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (make_senders(&o, snd, &nsnd) < 0)
        return 2;
    bool failed = false;
    if (o.run & RUN_LOSS)
        failed |= loss_table(&o, snd, nsnd);
    if (o.run & RUN_BOTTLENECK)
        failed |= bottleneck(&o, snd, nsnd);
    if (o.run & RUN_FAIRNESS)
        failed |= fairness(&o);
    return failed ? 1 : 0;
}
