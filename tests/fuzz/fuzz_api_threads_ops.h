/* SPDX-License-Identifier: MIT */
/* fuzz_api_threads, the ops (included by fuzz_api_threads.c; static
 * functions, one translation unit): the operations an input's 4-byte ops
 * select, the calls they make on the shared ids, and after every call the
 * check that its return is one the header documents, narrowed by what the
 * input's own history decides (see the comment at the top of
 * fuzz_api_threads.c). The world they run in: fuzz_api_threads_world.h. */
#ifndef JK_FUZZ_API_THREADS_OPS_H
#define JK_FUZZ_API_THREADS_OPS_H

#include "fuzz_api_threads_world.h"

/* ---- ops and calls ------------------------------------------------------- */

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

static const int t_io[4] = {0, 1, 4, 12};
static const int t_conn[4] = {0, 0, 8, 25};
static const int t_linger[4] = {0, 0, 3, 10};
static const int b_ports[8] = {80, 80, 80, 81, 82, 83, 80, 82};

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

/* The size rule on a struct of `full` bytes that a call filled, with size
 * `size`, in a buffer of `cap` bytes that held 0xaa before the call: the
 * bytes from the struct's end (or size) up to size are zeroed, none past
 * size is written. */
static void check_size_rule(struct worker *w, const char *what, const void *buf, size_t cap,
                            size_t full, size_t size)
{
    const uint8_t *p = buf;
    for (size_t i = size < full ? size : full; i < cap; i++)
        CHECK(p[i] == (i < size ? 0 : 0xaa), "t%d: %s size %zu: byte %zu is 0x%02x (size rule)",
              w->idx, what, size, i, p[i]);
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
            check_size_rule(w, "info", &buf, sizeof buf, sizeof buf.i, size);
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
        /* timeout 0 never waits for the network: what the peer says comes
         * later, through the stream */
        EXPECT(t != 0 || !in(r, 3, -ECONNREFUSED, -ETIMEDOUT, -EINTR),
               "a network outcome from a non-blocking connect");
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
            check_size_rule(w, "stats", &buf, sizeof buf, sizeof buf.s, size);
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

#endif
