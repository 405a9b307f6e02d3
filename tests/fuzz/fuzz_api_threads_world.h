/* SPDX-License-Identifier: MIT */
/* fuzz_api_threads, the world one input runs in (included by
 * fuzz_api_threads.c through fuzz_api_threads_ops.h; static functions, one
 * translation unit): the invariant check (CHECK, die), the peer (adapter B
 * and the pump thread that also carries the frames between the handle's and
 * B's jktcp_port), the state the worker threads share (slots, the registry
 * of ids, the list of closed ids), set-up and tear-down, the fd/thread leak
 * check and the watchdog. What the input means and which invariants hold:
 * the comment at the top of fuzz_api_threads.c. */
#ifndef JK_FUZZ_API_THREADS_WORLD_H
#define JK_FUZZ_API_THREADS_WORLD_H

#include "jktcp.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <urcu/urcu-bp.h>

#define NS 8              /* stream slots */
#define NL 4              /* listener slots */
#define MAX_THREADS 4
#define MAX_OPS_THREAD 32
#define MAX_OPS 128
#define REG_MAX (MAX_OPS * 2)
#define PEER_MAX 256      /* B's connections */
#define FRAME_MAX 65575
#define WBUF 40000
#define RBUF 4096
#define GREET 'G'
#define LPORT0 1000       /* the handle listens on 1000..1003 */
#define SLACK_MS 3000     /* a call may overrun its timeout by this much */
#define HANG_S 10         /* watchdog: one input may take this long (FZ_HANG_S) */

/* ---- checks -------------------------------------------------------------- */

static int fz_trace = -1;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_api_threads: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond))                                                                           \
            die("%s:%d: invariant failed: %s: %s", __FILE__, __LINE__, #cond,                  \
                fmtbuf(__VA_ARGS__));                                                          \
    } while (0)

static __thread char fmt_tls[512];
static const char *fmtbuf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fmt_tls, sizeof fmt_tls, fmt, ap);
    va_end(ap);
    return fmt_tls;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The byte every write on stream id carries. */
static uint8_t fill_of(uint64_t id)
{
    uint64_t x = id;
    return (uint8_t)(splitmix(&x) >> 56);
}

/* ---- the peer: adapter B and the pump ------------------------------------ */

enum { B_ECHO, B_RESET, B_NOREAD, B_INIT };

struct peer {
    jktcp_port *pa, *pb; /* pa: the handle's port, pb: B's */
    jktcp_adapter *b;
    jktcp_conn_listener *bl[3]; /* 80, 81, 82 */
    struct {
        jktcp_conn *c;
        int mode;
    } conn[PEER_MAX];
    int n;
    atomic_bool stop, blackhole;
    atomic_uint want[5]; /* connect requests to LPORT0 + i */
    unsigned done[5];
    pthread_t th;
    uint8_t buf[FRAME_MAX];
};

static bool move_frames(struct peer *p, jktcp_port *from, jktcp_port *to)
{
    bool moved = false;
    ssize_t n;
    while ((n = jktcp_port_pull(from, p->buf, sizeof p->buf, 0)) > 0) {
        if (!atomic_load(&p->blackhole))
            jktcp_port_push(to, p->buf, (size_t)n); /* full or closed: lost */
        moved = true;
    }
    return moved;
}

static bool serve_b(struct peer *p)
{
    bool busy = false;
    for (int i = 0; i < 3; i++) {
        jktcp_conn *c;
        while (p->n < PEER_MAX && jktcp_adapter_accept(p->bl[i], 0, &c) == 0) {
            busy = true;
            if (i == 1) {
                jktcp_conn_abort(c);
                continue;
            }
            p->conn[p->n].c = c;
            p->conn[p->n++].mode = i == 0 ? B_ECHO : B_NOREAD;
        }
    }
    for (int i = 0; i < 5; i++) {
        while (p->done[i] != atomic_load(&p->want[i]) && p->n < PEER_MAX) {
            jktcp_conn *c = NULL;
            p->done[i]++;
            if (jktcp_conn_connect(p->b, LPORT0 + i, 0, &c) != -EINPROGRESS)
                continue;
            static const char greet[16] = "GGGGGGGGGGGGGGGG";
            jktcp_conn_write(c, greet, sizeof greet, 0);
            p->conn[p->n].c = c;
            p->conn[p->n++].mode = B_INIT;
            busy = true;
        }
    }
    for (int i = 0; i < p->n; i++) {
        if (p->conn[i].mode == B_NOREAD)
            continue;
        uint8_t tmp[16384];
        ssize_t n = jktcp_conn_read(p->conn[i].c, tmp, sizeof tmp, 0);
        if (n > 0) {
            jktcp_conn_write(p->conn[i].c, tmp, (size_t)n, 0);
            busy = true;
        } else if (n != -EAGAIN) { /* end of stream or an error: done with it */
            jktcp_conn_close(p->conn[i].c);
            p->conn[i--] = p->conn[--p->n];
        }
    }
    return busy;
}

static void *pump_main(void *arg)
{
    struct peer *p = arg;
    while (!atomic_load(&p->stop)) {
        bool moved = move_frames(p, p->pa, p->pb);
        jktcp_adapter_poll(p->b, 0);
        moved |= move_frames(p, p->pb, p->pa);
        moved |= serve_b(p);
        if (!moved)
            usleep(100);
    }
    return NULL;
}

/* ---- shared state of one input --------------------------------------------- */

enum { K_STREAM = 1, K_LISTENER = 2, K_HANDLE = 3 };
enum { O_CONNECT = 1, O_ACCEPT = 2, O_LISTEN = 3 };

struct reg {
    atomic_bool ready;
    uint64_t id;
    int kind, origin, port;
    atomic_int fd[2]; /* readiness fds seen (read, write; a listener's in [0]), -1: none */
};

struct worker;

struct env {
    struct peer peer;
    jktcp_handle h;
    atomic_bool h_closed;   /* a handle_close returned 0 (set after it returned) */
    atomic_int h_close_ok;  /* handle_closes that returned 0 */
    atomic_bool net_down;   /* the handle's port was closed */
    _Atomic uint64_t sslot[NS], lslot[NL];
    struct reg reg[REG_MAX];
    atomic_int nreg;
    _Atomic uint64_t closed[REG_MAX]; /* ids whose close returned 0 */
    atomic_int nclosed;
    _Atomic uint64_t max_id;
    int nthreads;
    uint8_t cfg0, cfg1;
    struct worker *w;
    uint64_t seed;
};

struct worker {
    struct env *e;
    int idx;
    pthread_t th;
    uint8_t ops[MAX_OPS_THREAD][4];
    int nops, cur;
    uint64_t rng;
    jktcp_stats last_stats;
    bool have_stats;
    int last_herr;
    uint8_t wbuf[WBUF];
    uint8_t rbuf[RBUF];
};

static struct env env_storage;
static struct worker workers[MAX_THREADS];
static uint64_t prev_handle_id, prev_stream_id; /* the previous input's, all closed */
static _Atomic double input_start_ms;
static atomic_bool in_input;
static int sig_no, hang_s = HANG_S;
static unsigned long runs;
static int base_fds = -1, base_threads = -1;
static bool leakcheck = true;
static unsigned long settle_every = 16;
static const char *tolerated = ""; /* FZ_TOLERATE: known deviations to let pass */

static void trace(struct worker *w, const char *what, uint64_t id, long r)
{
    if (fz_trace > 0)
        fprintf(stderr, "[t%d op%d %.1f] %s(%llu) = %ld (%s)\n", w ? w->idx : -1,
                w ? w->cur : -1, now_ms() - input_start_ms, what, (unsigned long long)id, r,
                r < 0 ? jktcp_strerror((int)r) : "");
}

static void note_id(struct env *e, uint64_t id)
{
    uint64_t m = atomic_load(&e->max_id);
    while (id > m && !atomic_compare_exchange_weak(&e->max_id, &m, id)) {
    }
}

static struct reg *reg_find(struct env *e, uint64_t id)
{
    int n = atomic_load(&e->nreg);
    for (int i = 0; i < n && i < REG_MAX; i++)
        if (atomic_load(&e->reg[i].ready) && e->reg[i].id == id)
            return &e->reg[i];
    return NULL;
}

/* A new id returned to us: it must be new; remember it. */
static void reg_add(struct worker *w, const char *call, uint64_t id, int kind, int origin,
                    int port)
{
    struct env *e = w->e;
    CHECK(id > e->h.id, "t%d: %s returned id %llu, not above the handle's %llu", w->idx, call,
          (unsigned long long)id, (unsigned long long)e->h.id);
    CHECK(!reg_find(e, id), "t%d: %s returned id %llu twice", w->idx, call,
          (unsigned long long)id);
    int i = atomic_fetch_add(&e->nreg, 1);
    CHECK(i < REG_MAX, "registry full");
    e->reg[i].id = id;
    e->reg[i].kind = kind;
    e->reg[i].origin = origin;
    e->reg[i].port = port;
    atomic_store(&e->reg[i].fd[0], -1);
    atomic_store(&e->reg[i].fd[1], -1);
    atomic_store(&e->reg[i].ready, true);
    note_id(e, id);
}

static bool is_closed(struct env *e, uint64_t id)
{
    int n = atomic_load(&e->nclosed);
    for (int i = 0; i < n && i < REG_MAX; i++)
        if (atomic_load(&e->closed[i]) == id)
            return true;
    return false;
}

static int close_count(struct env *e, uint64_t id)
{
    int n = atomic_load(&e->nclosed), k = 0;
    for (int i = 0; i < n && i < REG_MAX; i++)
        k += atomic_load(&e->closed[i]) == id;
    return k;
}

static void closed_add(struct env *e, uint64_t id)
{
    int i = atomic_fetch_add(&e->nclosed, 1);
    CHECK(i < REG_MAX, "closed list full");
    atomic_store(&e->closed[i], id);
}

/* ---- set-up, tear-down, leak checks, watchdog ---------------------------- */

static void set_opt(jktcp_adapter *a, jktcp_option o, long v)
{
    int r = jktcp_adapter_set_option(a, o, v);
    CHECK(r == 0, "set_option(%d, %ld): %d", (int)o, v, r);
}

static void env_up(struct env *e)
{
    static const long rto[4] = {2, 5, 10, 20};
    static const long retries[4] = {1, 2, 3, 5};
    struct peer *p = &e->peer;
    jktcp_transport *ta, *tb;
    jktcp_adapter *a;
    CHECK(jktcp_port_new(256 * 1024, &p->pa) == 0, "port a");
    CHECK(jktcp_port_new(256 * 1024, &p->pb) == 0, "port b");
    CHECK(jktcp_port_transport(p->pa, &ta) == 0, "transport a");
    CHECK(jktcp_port_transport(p->pb, &tb) == 0, "transport b");
    CHECK(jktcp_adapter_new(ta, "198.18.0.2", "198.18.0.1", &a) == 0, "adapter a");
    CHECK(jktcp_adapter_new(tb, "198.18.0.1", "198.18.0.2", &p->b) == 0, "adapter b");
    long buf = (e->cfg0 & 4) ? 8192 : 65536;
    jktcp_adapter *both[2] = {a, p->b};
    for (int i = 0; i < 2; i++) {
        jktcp_adapter *x = both[i];
        set_opt(x, JKTCP_OPT_SNDBUF, buf);
        set_opt(x, JKTCP_OPT_RCVBUF, buf);
        set_opt(x, JKTCP_OPT_RTO_INIT_MS, rto[e->cfg1 & 3]);
        set_opt(x, JKTCP_OPT_RTO_MIN_MS, rto[e->cfg1 & 3]);
        set_opt(x, JKTCP_OPT_RTO_MAX_MS, 100);
        set_opt(x, JKTCP_OPT_MAX_RETRIES, retries[(e->cfg1 >> 2) & 3]);
        set_opt(x, JKTCP_OPT_TIMEWAIT_MS, 0);
        set_opt(x, JKTCP_OPT_SACK, !(e->cfg0 & 0x20));
        set_opt(x, JKTCP_OPT_TIMESTAMPS, !(e->cfg0 & 0x20));
        set_opt(x, JKTCP_OPT_CONGESTION, !(e->cfg0 & 0x40));
        set_opt(x, JKTCP_OPT_MAX_CONNS, PEER_MAX + 64);
    }
    static const int bports[3] = {80, 81, 82};
    for (int i = 0; i < 3; i++)
        CHECK(jktcp_adapter_listen(p->b, bports[i], 64, &p->bl[i]) == 0, "listen b");
    atomic_store(&p->blackhole, (e->cfg0 & 0x10) != 0);
    int r = jktcp_handle_start(a, &e->h);
    CHECK(r == 0 && e->h.id, "handle_start: %d", r);
    CHECK(e->h.id > prev_handle_id, "handle id %llu not above the previous input's %llu",
          (unsigned long long)e->h.id, (unsigned long long)prev_handle_id);
    atomic_store(&e->max_id, e->h.id);
    CHECK(pthread_create(&p->th, NULL, pump_main, p) == 0, "pump thread");
}

static void peer_down(struct peer *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->th, NULL);
    for (int i = 0; i < p->n; i++)
        jktcp_conn_abort(p->conn[i].c);
    jktcp_adapter_free(p->b); /* its listeners and transport too */
    jktcp_port_free(p->pa);
    jktcp_port_free(p->pb);
}

/* The fds the library makes (eventfds; epoll and timer fds of a faulty
 * transport); the sanitizers' symbolizer pipes come and go on their own. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[300], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        target[k > 0 ? k : 0] = 0;
        n += strncmp(target, "anon_inode:", 11) == 0;
    }
    closedir(d);
    return n;
}

static void list_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[300], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        fprintf(stderr, "  fd %s -> %s\n", de->d_name, target);
    }
    if (d)
        closedir(d);
}

static int count_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

/* Records go after a grace period, from liburcu's call_rcu thread (and a
 * stream's record may queue its handle's): wait until the callbacks ran
 * and the counts are back at the baseline. */
static void settle_and_check_leaks(void)
{
    if (runs % settle_every)
        return;
    urcu_bp_barrier();
    urcu_bp_barrier();
    if (!leakcheck)
        return;
    int fds = count_fds(), thr = count_threads();
    for (int i = 0; i < 200 && base_fds >= 0 && (fds != base_fds || thr != base_threads); i++) {
        usleep(1000);
        urcu_bp_barrier();
        fds = count_fds();
        thr = count_threads();
    }
    if (base_fds < 0) {
        if (runs >= 1) { /* the first inputs created what lives for good */
            base_fds = fds;
            base_threads = thr;
        }
        return;
    }
    if (fds != base_fds)
        list_fds();
    CHECK(fds == base_fds, "%d fds open after the input, %d before (fd leak)", fds, base_fds);
    CHECK(thr == base_threads, "%d threads after the input, %d before (thread leak)", thr,
          base_threads);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(1);
        if (atomic_load(&in_input) && now_ms() - input_start_ms > hang_s * 1000.0)
            die("one input has run for more than %d s: a call hangs (FZ_TRACE=1 shows the "
                "calls that returned)",
                hang_s);
    }
    return NULL;
}

#endif
