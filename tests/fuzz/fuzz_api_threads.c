/* libFuzzer target: the threaded API (handles, streams, listeners, ids)
 * driven by 2..4 threads at once.
 *
 * Per input: a handle (jktcp at 198.18.0.2) whose peer is a second adapter
 * B (198.18.0.1) that a pump thread drives; the pump also carries frames
 * between the two jktcp_port objects (as tests/rig.c does, but self-
 * contained). B listens on
 *   80  echo                      81  accept, then reset at once
 *   82  accept and never read     83  (nobody: SYNs are refused)
 * and, on request (op PEER_CONNECT), opens connections to ports 1000..1004
 * of the handle, sends a greeting and echoes what comes back.
 *
 * Input:
 *   [cfg0] threads = 2 + (cfg0 & 3) % 3; bit 2 small buffers (8 KiB, else
 *          64 KiB), bit 3 close the handle before the leftover ids at the
 *          end, bit 4 start with the link blackholed, bit 5 SACK and
 *          timestamps off, bit 6 congestion control off
 *   [cfg1] RTO_INIT/RTO_MIN (bits 0-1), MAX_RETRIES (bits 2-3)
 *   then ops of 4 bytes [sel][a][b][c] until the input ends:
 *          thread = (sel >> 5) % threads, op = (sel & 31) % OP_COUNT.
 *          Each thread runs its ops (at most 32, 128 in all) in order, all
 *          threads at once.
 *
 * The threads share a table of ids: NS stream and NL listener slots
 * (_Atomic uint64_t) from which ops pick their operand, so closes race
 * with other threads' calls on the same id. Ids are plain numbers; no
 * locking is needed. Every id this input created is also in a registry,
 * and every close that returned 0 in a list of closed ids.
 *
 * After every call the return value must be one the header documents for
 * that call; stronger where the input's own history decides it:
 *  - an id whose close already returned 0, a forged id (random, 0, of
 *    another kind, a previous input's) gives -EBADF to every call (rule 2/3);
 *  - once jktcp_handle_close returned 0: the handle's calls give -EBADF,
 *    its streams' and listeners' calls -ESHUTDOWN or -EBADF (rule 4/5);
 *  - every id is closed exactly once with result 0 (the end closes what
 *    is left, expecting 0 exactly when no close returned 0 yet);
 *  - a new id is new (never returned before in the input, larger than the
 *    handle's); *out is set exactly when the call says so;
 *  - every byte read from a stream is one its writers wrote (writes on
 *    stream id X carry the byte fill_of(X); B adds greeting bytes 'G');
 *  - read/write counts lie within len; write_all returns len or < 0;
 *  - info/stats honour the size rule (tail zeroed, nothing written past
 *    size); stats counters never go backwards; handle_error once set stays;
 *  - the same poll fd on successive calls; no call takes much longer than
 *    its timeout;
 *  - rule 7: once the handle stopped, the readiness fds of objects not yet
 *    closed poll readable;
 *  - no fd or thread is left behind once the input is done (a baseline is
 *    taken after the first inputs);
 *  - no input runs longer than FZ_HANG_S seconds (10; a watchdog aborts).
 * ASan/UBSan/LSan catch memory errors and leaks.
 *
 * Records are freed after an RCU grace period by liburcu's call_rcu thread,
 * and each urcu_bp_barrier() costs ~10 ms, so the fd/thread check (two
 * barriers first) runs after every FZ_SETTLE_EVERY-th input (16; 1 when
 * libFuzzer runs a fixed list, -runs=N, as fuzz-regress does).
 *
 * Environment: FZ_TRACE=1 prints every call and its result;
 * FZ_NO_LEAKCHECK=1 skips the fd/thread check; FZ_SETTLE_EVERY=n;
 * FZ_HANG_S=s; FZ_TOLERATE=name,... lets deviations already reported pass so
 * that a run can look for others (names: write-econnrefused, write-all-len0,
 * listener-fd-stop, handle-close-linger; grep tolerate() for what each
 * allows). Default: strict.
 */
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

/* Operations (the low 5 bits of an op's first byte, modulo OP_COUNT). */
enum {
    OP_CONNECT,
    OP_LISTEN,
    OP_ACCEPT,
    OP_READ,
    OP_WRITE,
    OP_WRITE_ALL,
    OP_SHUTDOWN,
    OP_CLOSE,
    OP_ABORT,
    OP_STREAM_ERROR,
    OP_INFO,
    OP_STREAM_POLL,
    OP_LISTENER_POLL,
    OP_LISTENER_CLOSE,
    OP_STATS,
    OP_HANDLE_ERROR,
    OP_HANDLE_CLOSE,
    OP_FORGE,
    OP_PEER_CONNECT,
    OP_NET,
    OP_SIGNAL,
    OP_SLEEP,
    OP_INVALID,
    OP_PCAP,
    OP_READ2, /* a second read and write: the common ops weigh more */
    OP_WRITE2,
    OP_COUNT
};

/* Calls (what OP_FORGE aims at a forged id). */
enum {
    C_READ,
    C_WRITE,
    C_WRITE_ALL,
    C_SHUTDOWN,
    C_CLOSE,
    C_ABORT,
    C_STREAM_ERROR,
    C_INFO,
    C_STREAM_POLL,
    C_ACCEPT,
    C_LISTENER_POLL,
    C_LISTENER_CLOSE,
    C_CONNECT,
    C_LISTEN,
    C_STATS,
    C_HANDLE_ERROR,
    C_HANDLE_CLOSE,
    C_PCAP,
    C_COUNT
};

static const char *const call_names[C_COUNT] = {
    "stream_read", "stream_write", "stream_write_all", "stream_shutdown", "stream_close",
    "stream_abort", "stream_error", "stream_info", "stream_poll_fd", "listener_accept",
    "listener_poll_fd", "listener_close", "handle_connect", "handle_listen", "handle_stats",
    "handle_error", "handle_close", "handle_pcap",
};

static int call_kind(int call)
{
    if (call <= C_STREAM_POLL)
        return K_STREAM;
    if (call <= C_LISTENER_CLOSE)
        return K_LISTENER;
    return K_HANDLE;
}

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

static const int t_io[4] = {0, 1, 4, 12};
static const int t_conn[4] = {0, 0, 8, 25};
static const int t_linger[4] = {0, 0, 3, 10};
static const int b_ports[8] = {80, 80, 80, 81, 82, 83, 80, 82};

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

/* ---- return-value sets --------------------------------------------------- */

static bool in(long r, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    bool ok = false;
    for (int i = 0; i < n && !ok; i++)
        ok = r == va_arg(ap, int);
    va_end(ap);
    return ok;
}

/* A deviation already reported (FZ_TOLERATE=name,name,...): let it pass
 * so that a run can look for others. Empty by default: strict. */
static bool tolerate(const char *name)
{
    size_t n = strlen(name);
    for (const char *p = tolerated; (p = strstr(p, name)); p += n)
        if ((p == tolerated || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return true;
    return false;
}

/* What the caller knew before the call. */
enum { EXP_ANY, EXP_EBADF, EXP_STOPPED };

static void bad(struct worker *w, const char *call, uint64_t id, long r, int exp,
                const char *why)
{
    die("t%d op%d: %s(id %llu) returned %ld (%s), %s%s", w ? w->idx : -1, w ? w->cur : -1, call,
        (unsigned long long)id, r, r < 0 ? jktcp_strerror((int)r) : "ok", why,
        exp == EXP_EBADF     ? " [the id was closed/forged: only -EBADF is right]"
        : exp == EXP_STOPPED ? " [the handle was closed: only -ESHUTDOWN/-EBADF are right]"
                             : "");
}

#define EXPECT(cond, why)                                                                      \
    do {                                                                                       \
        if (!(cond))                                                                           \
            bad(w, name, id, r, exp, why);                                                     \
    } while (0)

/* The common tail of every check: EXP_EBADF and EXP_STOPPED narrow it. */
static void narrow(struct worker *w, const char *name, uint64_t id, long r, int exp,
                   bool stop_extra)
{
    if (exp == EXP_EBADF)
        EXPECT(r == -EBADF, "undocumented for a dead id");
    else if (exp == EXP_STOPPED)
        EXPECT(r == -EBADF || r == -ESHUTDOWN || stop_extra, "undocumented after handle_close");
}

/* ---- the calls ----------------------------------------------------------- */

static int pick_timeout(uint8_t v) { return t_io[v & 3]; }

static void check_duration(struct worker *w, const char *name, uint64_t id, double t0,
                           int timeout_ms)
{
    double dt = now_ms() - t0;
    CHECK(dt <= (timeout_ms > 0 ? timeout_ms : 0) + SLACK_MS,
          "t%d: %s(%llu) took %.0f ms with timeout %d", w->idx, name, (unsigned long long)id,
          dt, timeout_ms);
}

static void check_read_bytes(struct worker *w, uint64_t id, const uint8_t *b, long n)
{
    uint8_t v = fill_of(id);
    for (long i = 0; i < n; i++)
        CHECK(b[i] == v || b[i] == GREET,
              "t%d: stream %llu read byte %ld = 0x%02x, expected 0x%02x or 'G' (another "
              "stream's data?)",
              w->idx, (unsigned long long)id, i, b[i], v);
}

static void do_poll(struct worker *w, const char *name, uint64_t id, int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 0);
    /* the fd may be closed (and its number reused) once another thread's
     * close freed the object: poll stays harmless */
    CHECK(r >= 0 || errno == EINTR, "t%d: poll on %s(%llu) fd %d: %s", w->idx, name,
          (unsigned long long)id, fd, strerror(errno));
}

/* An object's readiness fd: the same on every call, from any thread. */
static void note_fd(struct worker *w, uint64_t id, int which, int fd)
{
    struct reg *g = reg_find(w->e, id);
    if (!g)
        return; /* a guessed id whose creator has not returned yet */
    int old = -1;
    if (!atomic_compare_exchange_strong(&g->fd[which], &old, fd))
        CHECK(old == fd, "t%d: id %llu gave poll fd %d, earlier %d", w->idx,
              (unsigned long long)id, fd, old);
}

/* Run one call on id. exp says what is known beforehand. a, b: operands. */
static void do_call(struct worker *w, int call, uint64_t id, int exp, uint8_t a, uint8_t b,
                    uint8_t c)
{
    struct env *e = w->e;
    const char *name = call_names[call];
    long r;
    double t0 = now_ms();
    int tmo = pick_timeout(b);
    if (exp == EXP_ANY && call_kind(call) != K_HANDLE && is_closed(e, id))
        exp = EXP_EBADF;
    if (exp == EXP_ANY && call_kind(call) == K_HANDLE && id == e->h.id &&
        atomic_load(&e->h_closed))
        exp = EXP_EBADF;
    if (exp == EXP_ANY && call_kind(call) != K_HANDLE && atomic_load(&e->h_closed) &&
        reg_find(e, id))
        exp = EXP_STOPPED;

    switch (call) {
    case C_READ: {
        static const size_t lens[4] = {0, 1, 100, RBUF};
        size_t len = lens[(b >> 2) & 3];
        r = jktcp_stream_read((jktcp_stream){id}, w->rbuf, len, tmo);
        trace(w, name, id, r);
        EXPECT((r >= 0 && r <= (long)len) ||
                   in(r, 9, -EAGAIN, -EINTR, -ECONNRESET, -ETIMEDOUT, -ECONNREFUSED, -ENETDOWN,
                      -EBADF, -ESHUTDOWN, -EINVAL),
               "undocumented for stream_read");
        if (len == 0)
            EXPECT(r <= 0, "a 0-byte read returned bytes");
        narrow(w, name, id, r, exp, r == -EAGAIN || r == -EINTR);
        if (r > 0)
            check_read_bytes(w, id, w->rbuf, r);
        check_duration(w, name, id, t0, tmo);
        break;
    }
    case C_WRITE:
    case C_WRITE_ALL: {
        static const size_t lens[4] = {0, 1, 1000, WBUF};
        size_t len = lens[(b >> 2) & 3];
        memset(w->wbuf, fill_of(id), len);
        if (call == C_WRITE)
            r = jktcp_stream_write((jktcp_stream){id}, w->wbuf, len, tmo);
        else
            r = jktcp_stream_write_all((jktcp_stream){id}, w->wbuf, len, tmo);
        trace(w, name, id, r);
        EXPECT((r > 0 && r <= (long)len) || (r == 0 && len == 0) ||
                   in(r, 10, -EAGAIN, -EINTR, -EPIPE, -ECONNRESET, -ETIMEDOUT, -ECONNREFUSED,
                      -ENETDOWN, -EBADF, -ESHUTDOWN, -EINVAL),
               "undocumented for stream_write");
        if (call == C_WRITE_ALL)
            EXPECT(r < 0 || r == (long)len, "write_all returned neither len nor an error");
        narrow(w, name, id, r, exp, r == -EAGAIN || r == -EINTR);
        check_duration(w, name, id, t0, tmo);
        break;
    }
    case C_SHUTDOWN:
        r = jktcp_stream_shutdown((jktcp_stream){id});
        trace(w, name, id, r);
        /* -EINTR: a signal while waiting for the write lock (rule 8) */
        EXPECT(in(r, 5, 0, -ENOTCONN, -EBADF, -ESHUTDOWN, -EINTR),
               "undocumented for stream_shutdown");
        narrow(w, name, id, r, exp, r == -EINTR);
        check_duration(w, name, id, t0, 0);
        break;
    case C_CLOSE:
    case C_ABORT:
        r = call == C_CLOSE ? jktcp_stream_close((jktcp_stream){id})
                            : jktcp_stream_abort((jktcp_stream){id});
        trace(w, name, id, r);
        EXPECT(r == 0 || r == -EBADF, "undocumented for stream_close/abort");
        narrow(w, name, id, r, exp == EXP_STOPPED ? EXP_ANY : exp, false);
        if (r == 0)
            closed_add(e, id);
        check_duration(w, name, id, t0, 0);
        break;
    case C_STREAM_ERROR:
        r = jktcp_stream_error((jktcp_stream){id});
        trace(w, name, id, r);
        EXPECT(in(r, 8, 0, -EINPROGRESS, -ECONNREFUSED, -ECONNRESET, -ETIMEDOUT, -ENETDOWN,
                  -ESHUTDOWN, -EBADF),
               "undocumented for stream_error");
        /* after the stop the stream's error may stay what it was */
        narrow(w, name, id, r, exp,
               in(r, 4, -ECONNREFUSED, -ECONNRESET, -ETIMEDOUT, -ENETDOWN));
        break;
    case C_INFO: {
        struct {
            jktcp_info i;
            uint8_t tail[16];
        } buf;
        memset(&buf, 0xaa, sizeof buf);
        size_t size = (a & 0x40) ? sizeof buf : (a & 0x20) ? 4 : sizeof buf.i;
        r = jktcp_stream_info((jktcp_stream){id}, &buf.i, size);
        trace(w, name, id, r);
        EXPECT(in(r, 5, 0, -ENOTCONN, -EBADF, -ESHUTDOWN, -EINVAL), "undocumented for info");
        narrow(w, name, id, r, exp, false);
        if (r == 0) {
            const uint8_t *p = (const uint8_t *)&buf;
            for (size_t i = size < sizeof buf.i ? size : sizeof buf.i; i < sizeof buf; i++)
                CHECK(p[i] == (i < size ? 0 : 0xaa),
                      "t%d: info size %zu: byte %zu is 0x%02x (size rule)", w->idx, size, i,
                      p[i]);
            if (size >= sizeof buf.i) {
                CHECK(buf.i.state >= 0 && buf.i.state <= JKTCP_LAST_ACK, "info state %d",
                      buf.i.state);
                struct reg *g = reg_find(e, id);
                if (g && g->origin == O_CONNECT)
                    CHECK(buf.i.remote_port == g->port,
                          "t%d: stream %llu connected to %d, info says remote port %u", w->idx,
                          (unsigned long long)id, g->port, buf.i.remote_port);
                if (g && g->origin == O_ACCEPT)
                    CHECK(buf.i.local_port == g->port,
                          "t%d: stream %llu accepted on %d, info says local port %u", w->idx,
                          (unsigned long long)id, g->port, buf.i.local_port);
            }
        }
        check_duration(w, name, id, t0, 0);
        break;
    }
    case C_STREAM_POLL: {
        int ev = (a & 0x10) ? JKTCP_POLL_WRITE : JKTCP_POLL_READ;
        r = jktcp_stream_poll_fd((jktcp_stream){id}, ev);
        trace(w, name, id, r);
        EXPECT(r >= 0 || in(r, 6, -EINVAL, -EBADF, -ESHUTDOWN, -EMFILE, -ENFILE, -ENOMEM),
               "undocumented for stream_poll_fd");
        narrow(w, name, id, r, exp, false);
        if (r >= 0) {
            note_fd(w, id, ev == JKTCP_POLL_WRITE, (int)r);
            do_poll(w, name, id, (int)r);
            long r2 = jktcp_stream_poll_fd((jktcp_stream){id}, ev);
            CHECK(r2 < 0 || r2 == r, "t%d: stream %llu poll fd %ld then %ld", w->idx,
                  (unsigned long long)id, r, r2);
        }
        break;
    }
    case C_ACCEPT: {
        jktcp_stream out = {12345};
        r = jktcp_listener_accept((jktcp_listener){id}, tmo, &out);
        trace(w, name, id, r);
        EXPECT(in(r, 6, 0, -EAGAIN, -EINTR, -EBADF, -ESHUTDOWN, -EINVAL),
               "undocumented for accept");
        narrow(w, name, id, r, exp, r == -EAGAIN || r == -EINTR);
        EXPECT((r == 0) == (out.id != 0), "*out does not match the result");
        if (r == 0) {
            struct reg *l = reg_find(e, id);
            reg_add(w, name, out.id, K_STREAM, O_ACCEPT, l ? l->port : 0);
            atomic_store(&e->sslot[c % NS], out.id);
        }
        check_duration(w, name, id, t0, tmo);
        break;
    }
    case C_LISTENER_POLL:
        r = jktcp_listener_poll_fd((jktcp_listener){id});
        trace(w, name, id, r);
        EXPECT(r >= 0 || in(r, 5, -EBADF, -ESHUTDOWN, -EMFILE, -ENFILE, -ENOMEM),
               "undocumented for listener_poll_fd");
        narrow(w, name, id, r, exp, false);
        if (r >= 0) {
            note_fd(w, id, 0, (int)r);
            do_poll(w, name, id, (int)r);
            long r2 = jktcp_listener_poll_fd((jktcp_listener){id});
            CHECK(r2 < 0 || r2 == r, "t%d: listener %llu poll fd %ld then %ld", w->idx,
                  (unsigned long long)id, r, r2);
        }
        break;
    case C_LISTENER_CLOSE:
        r = jktcp_listener_close((jktcp_listener){id});
        trace(w, name, id, r);
        EXPECT(r == 0 || r == -EBADF, "undocumented for listener_close");
        narrow(w, name, id, r, exp == EXP_STOPPED ? EXP_ANY : exp, false);
        if (r == 0)
            closed_add(e, id);
        check_duration(w, name, id, t0, 0);
        break;
    case C_CONNECT: {
        jktcp_stream out = {12345};
        int port = b_ports[a & 7];
        int t = t_conn[(a >> 3) & 3];
        r = jktcp_handle_connect((jktcp_handle){id}, port, t, &out);
        trace(w, name, id, r);
        EXPECT(in(r, 11, 0, -EINPROGRESS, -ECONNREFUSED, -ETIMEDOUT, -EINTR, -ENETDOWN, -EMFILE,
                  -EADDRNOTAVAIL, -ESHUTDOWN, -EBADF, -EINVAL),
               "undocumented for handle_connect");
        EXPECT(!(r == 0 && t == 0) && !(r == -EINPROGRESS && t != 0),
               "0 / -EINPROGRESS for the wrong timeout");
        EXPECT((r == 0 || r == -EINPROGRESS) == (out.id != 0), "*out does not match the result");
        narrow(w, name, id, r, exp, false);
        if (out.id) {
            reg_add(w, name, out.id, K_STREAM, O_CONNECT, port);
            atomic_store(&e->sslot[b % NS], out.id);
        }
        check_duration(w, name, id, t0, t);
        break;
    }
    case C_LISTEN: {
        static const int backlogs[4] = {0, 1, 2, 8};
        jktcp_listener out = {12345};
        int port = LPORT0 + (a & 3);
        r = jktcp_handle_listen((jktcp_handle){id}, port, backlogs[(a >> 2) & 3], &out);
        trace(w, name, id, r);
        EXPECT(in(r, 7, 0, -EADDRINUSE, -ENETDOWN, -ESHUTDOWN, -EBADF, -EINVAL, -ENOMEM),
               "undocumented for handle_listen");
        EXPECT((r == 0) == (out.id != 0), "*out does not match the result");
        narrow(w, name, id, r, exp, false);
        if (out.id) {
            reg_add(w, name, out.id, K_LISTENER, O_LISTEN, port);
            atomic_store(&e->lslot[b % NL], out.id);
        }
        check_duration(w, name, id, t0, 0);
        break;
    }
    case C_STATS: {
        struct {
            jktcp_stats s;
            uint8_t tail[16];
        } buf;
        memset(&buf, 0xaa, sizeof buf);
        size_t size = (a & 0x40) ? sizeof buf : (a & 0x20) ? 8 : sizeof buf.s;
        r = jktcp_handle_stats((jktcp_handle){id}, &buf.s, size);
        trace(w, name, id, r);
        EXPECT(in(r, 4, 0, -EBADF, -ESHUTDOWN, -EINVAL), "undocumented for handle_stats");
        narrow(w, name, id, r, exp, false);
        if (r == 0) {
            const uint8_t *p = (const uint8_t *)&buf;
            for (size_t i = size < sizeof buf.s ? size : sizeof buf.s; i < sizeof buf; i++)
                CHECK(p[i] == (i < size ? 0 : 0xaa),
                      "t%d: stats size %zu: byte %zu is 0x%02x (size rule)", w->idx, size, i,
                      p[i]);
            if (size >= sizeof buf.s && id == e->h.id) {
                const jktcp_stats *s = &buf.s, *o = &w->last_stats;
                CHECK(s->conns_active <= s->conns_opened, "stats: %llu active of %llu opened",
                      (unsigned long long)s->conns_active,
                      (unsigned long long)s->conns_opened);
                if (w->have_stats)
                    CHECK(s->frames_in >= o->frames_in && s->frames_out >= o->frames_out &&
                              s->bytes_in >= o->bytes_in && s->bytes_out >= o->bytes_out &&
                              s->conns_opened >= o->conns_opened &&
                              s->io_wakeups >= o->io_wakeups && s->rst_sent >= o->rst_sent,
                          "t%d: stats went backwards", w->idx);
                w->last_stats = *s;
                w->have_stats = true;
            }
        }
        check_duration(w, name, id, t0, 0);
        break;
    }
    case C_HANDLE_ERROR:
        r = jktcp_handle_error((jktcp_handle){id});
        trace(w, name, id, r);
        /* a port transport fails only by end of stream (-EPIPE) */
        EXPECT(in(r, 3, 0, -EBADF, -EPIPE), "undocumented for handle_error");
        narrow(w, name, id, r, exp, false);
        if (id == e->h.id) {
            EXPECT(r == -EBADF || !w->last_herr || r == w->last_herr,
                   "the transport error changed or went away");
            EXPECT(r != -EPIPE || atomic_load(&e->net_down),
                   "a transport error with the link up");
            if (r != -EBADF && r)
                w->last_herr = (int)r;
        }
        break;
    case C_HANDLE_CLOSE: {
        int linger = tolerate("handle-close-linger") ? 0 : t_linger[a & 3];
        r = jktcp_handle_close((jktcp_handle){id}, linger);
        trace(w, name, id, r);
        EXPECT(r == 0 || r == -EBADF, "undocumented for handle_close");
        narrow(w, name, id, r, exp, false);
        if (r == 0) {
            EXPECT(id == e->h.id, "closed a handle that is not ours");
            atomic_fetch_add(&e->h_close_ok, 1);
            atomic_store(&e->h_closed, true);
        }
        check_duration(w, name, id, t0, linger);
        break;
    }
    case C_PCAP:
        /* never a file: NULL (stop) only, a capture is not what this is about */
        r = jktcp_handle_pcap((jktcp_handle){id}, NULL);
        trace(w, name, id, r);
        EXPECT(in(r, 3, 0, -EBADF, -ESHUTDOWN), "undocumented for handle_pcap");
        narrow(w, name, id, r, exp, false);
        check_duration(w, name, id, t0, 0);
        break;
    default:
        abort();
    }
}

/* Arguments the header calls invalid: -EINVAL (or the id's own verdict). */
static void do_invalid(struct worker *w, uint8_t a, uint64_t sid, uint64_t lid)
{
    struct env *e = w->e;
    const char *name = "invalid-argument call";
    uint64_t id = sid;
    int exp = EXP_ANY;
    long r;
    jktcp_stream so;
    jktcp_listener lo;
    switch (a % 12) {
    case 0: r = jktcp_stream_read((jktcp_stream){sid}, NULL, 5, 0); break;
    case 1: r = jktcp_stream_write((jktcp_stream){sid}, NULL, 5, 0); break;
    case 2: r = jktcp_stream_write_all((jktcp_stream){sid}, NULL, 5, 0); break;
    case 3: r = jktcp_stream_info((jktcp_stream){sid}, NULL, sizeof(jktcp_info)); break;
    case 4: {
        jktcp_info i;
        r = jktcp_stream_info((jktcp_stream){sid}, &i, 0);
        break;
    }
    case 5: r = jktcp_stream_poll_fd((jktcp_stream){sid}, (a & 0x80) ? 3 : 0); break;
    case 6:
        id = lid;
        r = jktcp_listener_accept((jktcp_listener){lid}, 0, NULL);
        break;
    case 7:
        id = e->h.id;
        so.id = 99;
        r = jktcp_handle_connect(e->h, (a & 0x80) ? 0 : 65536, 0, &so);
        EXPECT(so.id == 0, "failed connect left *out set");
        break;
    case 8:
        id = e->h.id;
        r = jktcp_handle_connect(e->h, 80, 0, NULL);
        break;
    case 9:
        id = e->h.id;
        lo.id = 99;
        r = jktcp_handle_listen(e->h, (a & 0x80) ? -1 : 0, 0, &lo);
        EXPECT(lo.id == 0, "failed listen left *out set");
        break;
    case 10:
        id = e->h.id;
        r = jktcp_handle_listen(e->h, LPORT0, 0, NULL);
        break;
    default: {
        jktcp_stats st;
        id = e->h.id;
        r = (a & 0x80) ? jktcp_handle_stats(e->h, NULL, sizeof st)
                       : jktcp_handle_stats(e->h, &st, 0);
        break;
    }
    }
    trace(w, name, id, r);
    EXPECT(in(r, 3, -EINVAL, -EBADF, -ESHUTDOWN), "undocumented for an invalid argument");
}

/* OP_FORGE: a call with an id that names nothing of its kind. */
static void do_forge(struct worker *w, uint8_t a, uint8_t b, uint8_t c)
{
    struct env *e = w->e;
    int call = c % C_COUNT;
    uint64_t id = 0;
    int exp = EXP_EBADF;
    switch (a & 7) {
    case 0: /* random, far beyond any id the process will hand out */
        id = splitmix(&w->rng) | (1ull << 63);
        break;
    case 1: /* id 0 names nothing */
        id = 0;
        break;
    case 2:
    case 3: { /* an id of another kind (the handle's included) */
        int n = atomic_load(&e->nreg);
        uint64_t cand = e->h.id;
        int kind = K_HANDLE;
        if (n && (b & 1)) {
            struct reg *g = &e->reg[(b >> 1) % n];
            if (atomic_load(&g->ready)) {
                cand = g->id;
                kind = g->kind;
            }
        }
        id = cand;
        while (call_kind(call) == kind)
            call = (call + 5) % C_COUNT;
        break;
    }
    case 4: { /* an id whose close already returned 0 */
        int n = atomic_load(&e->nclosed);
        id = n ? atomic_load(&e->closed[b % n]) : 0;
        if (!id)
            id = splitmix(&w->rng) | (1ull << 63);
        else
            while (call_kind(call) == K_HANDLE)
                call = (call + 7) % C_COUNT;
        break;
    }
    case 5: /* the previous input's handle or stream (all closed) */
        id = (b & 1) ? prev_stream_id : prev_handle_id;
        break;
    default: /* a guess at the next ids: may name an object being created */
        id = atomic_load(&e->max_id) + 1 + (b & 3);
        exp = EXP_ANY;
        break;
    }
    do_call(w, call, id, exp, b, c, a);
}

static uint64_t sslot(struct worker *w, uint8_t v) { return atomic_load(&w->e->sslot[v % NS]); }
static uint64_t lslot(struct worker *w, uint8_t v) { return atomic_load(&w->e->lslot[v % NL]); }

static void run_op(struct worker *w, const uint8_t *op)
{
    struct env *e = w->e;
    uint8_t code = (uint8_t)((op[0] & 31) % OP_COUNT), a = op[1], b = op[2], c = op[3];
    switch (code) {
    case OP_CONNECT: do_call(w, C_CONNECT, e->h.id, EXP_ANY, a, b, c); break;
    case OP_LISTEN: do_call(w, C_LISTEN, e->h.id, EXP_ANY, a, b, c); break;
    case OP_ACCEPT: do_call(w, C_ACCEPT, lslot(w, a), EXP_ANY, a, b, c); break;
    case OP_READ:
    case OP_READ2: do_call(w, C_READ, sslot(w, a), EXP_ANY, a, b, c); break;
    case OP_WRITE:
    case OP_WRITE2: do_call(w, C_WRITE, sslot(w, a), EXP_ANY, a, b, c); break;
    case OP_WRITE_ALL: do_call(w, C_WRITE_ALL, sslot(w, a), EXP_ANY, a, b, c); break;
    case OP_SHUTDOWN: do_call(w, C_SHUTDOWN, sslot(w, a), EXP_ANY, a, b, c); break;
    case OP_CLOSE: do_call(w, C_CLOSE, sslot(w, a), EXP_ANY, a, b, c); break;
    case OP_ABORT: do_call(w, C_ABORT, sslot(w, a), EXP_ANY, a, b, c); break;
    case OP_STREAM_ERROR: do_call(w, C_STREAM_ERROR, sslot(w, a), EXP_ANY, a, b, c); break;
    case OP_INFO: do_call(w, C_INFO, sslot(w, a), EXP_ANY, a, b, c); break;
    case OP_STREAM_POLL: do_call(w, C_STREAM_POLL, sslot(w, a), EXP_ANY, a, b, c); break;
    case OP_LISTENER_POLL: do_call(w, C_LISTENER_POLL, lslot(w, a), EXP_ANY, a, b, c); break;
    case OP_LISTENER_CLOSE: do_call(w, C_LISTENER_CLOSE, lslot(w, a), EXP_ANY, a, b, c); break;
    case OP_STATS: do_call(w, C_STATS, e->h.id, EXP_ANY, a, b, c); break;
    case OP_HANDLE_ERROR: do_call(w, C_HANDLE_ERROR, e->h.id, EXP_ANY, a, b, c); break;
    case OP_HANDLE_CLOSE: do_call(w, C_HANDLE_CLOSE, e->h.id, EXP_ANY, a, b, c); break;
    case OP_PCAP: do_call(w, C_PCAP, e->h.id, EXP_ANY, a, b, c); break;
    case OP_FORGE: do_forge(w, a, b, c); break;
    case OP_PEER_CONNECT:
        atomic_fetch_add(&e->peer.want[a % 5], 1 + (b & 1));
        break;
    case OP_NET:
        switch (a & 7) {
        case 0:
        case 1:
        case 2: atomic_store(&e->peer.blackhole, true); break;
        case 7: /* the handle's transport fails: end of stream */
            atomic_store(&e->net_down, true);
            jktcp_port_close(e->peer.pa);
            break;
        default: atomic_store(&e->peer.blackhole, false); break;
        }
        break;
    case OP_SIGNAL: {
        struct worker *t = &e->w[a % e->nthreads];
        if (t != w)
            pthread_kill(t->th, sig_no);
        break;
    }
    case OP_SLEEP: usleep((useconds_t)a * 20); break;
    case OP_INVALID: do_invalid(w, a, sslot(w, b), lslot(w, c)); break;
    default: abort();
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (w->cur = 0; w->cur < w->nops; w->cur++)
        run_op(w, w->ops[w->cur]);
    return NULL;
}

/* ---- set-up, tear-down, leak checks ------------------------------------- */

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

static void on_signal(int sig) { (void)sig; }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    sig_no = SIGRTMIN + 3;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: blocked calls see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(sig_no, &sa, NULL);
    fz_trace = getenv("FZ_TRACE") != NULL;
    leakcheck = getenv("FZ_NO_LEAKCHECK") == NULL;
    if (getenv("FZ_HANG_S"))
        hang_s = atoi(getenv("FZ_HANG_S"));
    if (getenv("FZ_TOLERATE"))
        tolerated = getenv("FZ_TOLERATE");
    /* a fixed list of inputs (fuzz-regress, replaying a crash): settle
     * after every one; while fuzzing, every settle_every-th */
    for (int i = 1; argc && i < *argc; i++)
        if (strncmp((*argv)[i], "-runs=", 6) == 0)
            settle_every = 1;
    if (getenv("FZ_SETTLE_EVERY"))
        settle_every = strtoul(getenv("FZ_SETTLE_EVERY"), NULL, 0) ?: 1;
    pthread_t t;
    pthread_create(&t, NULL, watchdog_main, NULL);
    pthread_detach(t);
    return 0;
}

/* Rule 7: the handle stopped, so every readiness fd of an object not yet
 * closed polls readable (its memory, and so the fd, lives until then). */
static void check_fds_after_stop(struct env *e)
{
    int n = atomic_load(&e->nreg);
    for (int i = 0; i < n; i++) {
        struct reg *g = &e->reg[i];
        if (close_count(e, g->id))
            continue;
        for (int k = 0; k < 2; k++) {
            int fd = atomic_load(&g->fd[k]);
            if (fd < 0)
                continue;
            struct pollfd p = {fd, POLLIN, 0};
            int r = poll(&p, 1, 0);
            if (g->kind == K_LISTENER && tolerate("listener-fd-stop"))
                continue;
            CHECK(r == 1 && (p.revents & POLLIN),
                  "%s %llu: its %s fd %d does not poll readable after the handle stopped "
                  "(poll %d, revents 0x%x)",
                  g->kind == K_STREAM ? "stream" : "listener", (unsigned long long)g->id,
                  g->kind == K_LISTENER ? "accept" : k ? "write" : "read", fd, r, p.revents);
        }
    }
}

/* The end: close whatever is left (each id exactly once in all), the
 * handle (before or after, by cfg0 bit 3), then check every id is dead. */
static void close_leftovers(struct env *e)
{
    struct worker *w = NULL;
    const char *name = "final close";
    int exp = EXP_ANY;
    int n = atomic_load(&e->nreg);
    for (int i = 0; i < n; i++) {
        struct reg *g = &e->reg[i];
        uint64_t id = g->id;
        int before = close_count(e, id);
        CHECK(before <= 1, "id %llu: %d closes returned 0", (unsigned long long)id, before);
        long r = g->kind == K_STREAM ? jktcp_stream_close((jktcp_stream){id})
                                     : jktcp_listener_close((jktcp_listener){id});
        trace(NULL, g->kind == K_STREAM ? "final stream_close" : "final listener_close", id, r);
        EXPECT(r == (before ? -EBADF : 0), before ? "closed twice with 0" : "first close failed");
        if (r == 0)
            closed_add(e, id);
    }
    for (int i = 0; i < n; i++) {
        uint64_t id = e->reg[i].id;
        long r = e->reg[i].kind == K_STREAM ? jktcp_stream_error((jktcp_stream){id})
                                            : jktcp_listener_poll_fd((jktcp_listener){id});
        EXPECT(r == -EBADF, "a closed id still works");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct env *e = &env_storage;
    memset(e, 0, sizeof *e);
    e->w = workers;
    e->seed = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++)
        e->seed = (e->seed ^ data[i]) * 0x100000001b3ull;
    e->cfg0 = size > 0 ? data[0] : 0;
    e->cfg1 = size > 1 ? data[1] : 0;
    e->nthreads = 2 + (e->cfg0 & 3) % 3;
    for (int i = 0; i < MAX_THREADS; i++) {
        struct worker *w = &workers[i];
        w->e = e;
        w->idx = i;
        w->nops = w->cur = 0;
        w->rng = e->seed + (uint64_t)i * 0x1234567;
        w->have_stats = false;
        w->last_herr = 0;
    }
    int total = 0;
    for (size_t off = 2; off + 4 <= size && total < MAX_OPS; off += 4) {
        struct worker *w = &workers[(data[off] >> 5) % e->nthreads];
        if (w->nops == MAX_OPS_THREAD)
            continue;
        memcpy(w->ops[w->nops++], data + off, 4);
        total++;
    }

    input_start_ms = now_ms();
    atomic_store(&in_input, true);
    env_up(e);
    for (int i = 0; i < e->nthreads; i++)
        CHECK(pthread_create(&workers[i].th, NULL, worker_main, &workers[i]) == 0, "thread");
    for (int i = 0; i < e->nthreads; i++)
        pthread_join(workers[i].th, NULL);

    bool handle_first = e->cfg0 & 8;
    int closes = atomic_load(&e->h_close_ok);
    CHECK(closes <= 1, "handle_close returned 0 %d times", closes);
    if (handle_first || closes) {
        int r = jktcp_handle_close(e->h, 0);
        CHECK(r == (closes ? -EBADF : 0), "final handle_close: %d after %d", r, closes);
        atomic_store(&e->h_closed, true);
        check_fds_after_stop(e);
    }
    close_leftovers(e);
    if (!handle_first && !closes) {
        int r = jktcp_handle_close(e->h, 0);
        CHECK(r == 0, "final handle_close: %d", r);
    }
    CHECK(jktcp_handle_close(e->h, 0) == -EBADF, "handle closed twice with 0");
    CHECK(jktcp_handle_error(e->h) == -EBADF, "a closed handle still works");
    peer_down(&e->peer);

    prev_handle_id = e->h.id;
    for (int i = 0; i < atomic_load(&e->nreg); i++)
        if (e->reg[i].kind == K_STREAM)
            prev_stream_id = e->reg[i].id;
    settle_and_check_leaks();
    runs++;
    atomic_store(&in_input, false);
    return 0;
}
