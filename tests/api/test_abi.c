/* SPDX-License-Identifier: MIT */
/*
 * Suite `abi`: what a binding (Python ctypes, Rust FFI, ...) mirrors from
 * include/jktcp.h must hold at run time: the version macros and the loaded
 * library agree; structs the library fills or reads follow the size rule
 * (copy min(size, own size), zero the rest of the caller's struct, size 0 is
 * -EINVAL); enum values are explicit and stable, also as raw integers; ports
 * are int and range-checked instead of truncated to 16 bits.
 *
 * No kernel needed: tests/support/rig.h's handle and adapters over packet
 * ports.
 */
#include "minitest.h"
#include "rig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define E(x) jktcp_strerror((int)(x))
#define A_IP "198.18.0.2"
#define B_IP "198.18.0.1"
#define FRAME_MAX 65575
#define SLACK 64 /* bytes a "newer" caller's struct has beyond ours */
#define GUARD 0xAA

JT_TEST(abi, version_agrees, 10)
{
    unsigned want = ((unsigned)JKTCP_VERSION_MAJOR << 16) | ((unsigned)JKTCP_VERSION_MINOR << 8) |
                    (unsigned)JKTCP_VERSION_PATCH;
    JT_ASSERT(JKTCP_VERSION_NUMBER == want, "JKTCP_VERSION_NUMBER %#x, parts say %#x",
              (unsigned)JKTCP_VERSION_NUMBER, want);
    JT_ASSERT(jktcp_version_number() == JKTCP_VERSION_NUMBER,
              "library %#x, header %#x: built against another jktcp.h",
              jktcp_version_number(), (unsigned)JKTCP_VERSION_NUMBER);
    char text[64];
    snprintf(text, sizeof text, "jktcp %d.%d.%d", JKTCP_VERSION_MAJOR, JKTCP_VERSION_MINOR,
             JKTCP_VERSION_PATCH);
    const char *v = jktcp_version();
    JT_ASSERT(v && strcmp(v, text) == 0, "jktcp_version() \"%s\", header says \"%s\"",
              v ? v : "(null)", text);
    /* a binding that only has the text gets the same number out of it */
    unsigned ma, mi, pa;
    JT_ASSERT(sscanf(v, "jktcp %u.%u.%u", &ma, &mi, &pa) == 3, "unparsable \"%s\"", v);
    JT_ASSERT(((ma << 16) | (mi << 8) | pa) == jktcp_version_number(), "text %u.%u.%u vs %#x",
              ma, mi, pa, jktcp_version_number());
}

/* ---- the size rule for structs the library fills ------------------------ */

typedef int (*fill_fn)(void *obj, void *out, size_t size);
typedef bool (*filled_fn)(const void *out); /* a field of the prefix holds real data */

static size_t first_not(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return i;
    return SIZE_MAX;
}

/* fill(obj, buf, size) with size = prefix < full, full + SLACK and 0, in
 * a buffer of full + 2 * SLACK guard bytes. */
static void size_rule(const char *what, fill_fn fill, void *obj, size_t full, size_t prefix,
                      filled_fn filled)
{
    union {
        max_align_t align;
        uint8_t b[512];
    } u;
    size_t cap = full + 2 * SLACK, at;
    JT_ASSERT(cap <= sizeof u.b && prefix > 0 && prefix < full, "%s: bad sizes", what);

    memset(u.b, GUARD, sizeof u.b);
    int rc = fill(obj, u.b, prefix);
    JT_ASSERT(rc == 0, "%s: size %zu: %s", what, prefix, E(rc));
    at = first_not(u.b + prefix, cap - prefix, GUARD);
    JT_ASSERT(at == SIZE_MAX, "%s: size %zu wrote byte %zu", what, prefix, prefix + at);
    JT_ASSERT(filled(u.b), "%s: size %zu: the prefix holds no data", what, prefix);

    memset(u.b, GUARD, sizeof u.b);
    rc = fill(obj, u.b, full + SLACK);
    JT_ASSERT(rc == 0, "%s: size %zu: %s", what, full + SLACK, E(rc));
    JT_ASSERT(filled(u.b), "%s: larger size: no data", what);
    at = first_not(u.b + full, SLACK, 0);
    JT_ASSERT(at == SIZE_MAX, "%s: tail byte %zu not zeroed", what, full + at);
    at = first_not(u.b + full + SLACK, SLACK, GUARD);
    JT_ASSERT(at == SIZE_MAX, "%s: wrote byte %zu beyond size", what, full + SLACK + at);

    memset(u.b, GUARD, sizeof u.b);
    rc = fill(obj, u.b, 0);
    JT_ASSERT(rc == -EINVAL, "%s: size 0: %d (%s)", what, rc, E(rc));
    JT_ASSERT(first_not(u.b, cap, GUARD) == SIZE_MAX, "%s: size 0 wrote", what);
}

static int fill_conn_info(void *c, void *out, size_t n) { return jktcp_conn_info(c, out, n); }
static int fill_adapter_stats(void *a, void *out, size_t n)
{
    return jktcp_adapter_stats(a, out, n);
}
static int fill_stream_info(void *s, void *out, size_t n)
{
    return jktcp_stream_info(*(jktcp_stream *)s, out, n);
}
static int fill_handle_stats(void *h, void *out, size_t n)
{
    return jktcp_handle_stats(*(jktcp_handle *)h, out, n);
}
static int fill_fault_stats(void *t, void *out, size_t n)
{
    return jktcp_transport_fault_stats(t, out, n);
}

static bool info_filled(const void *p)
{
    const jktcp_info *i = p;
    return i->state == JKTCP_ESTABLISHED && i->remote_port == RIG_PORT && i->local_port != 0;
}
static bool stats_filled(const void *p) { return ((const jktcp_stats *)p)->frames_out > 0; }
static bool fault_stats_filled(const void *p)
{
    const jktcp_fault_stats *s = p;
    return s->out.frames > 0 && s->out.passed == s->out.frames;
}

JT_TEST(abi, size_rule_conn_info_adapter_stats, 10)
{
    struct rig_pair p;
    rig_pair_up(&p);
    jktcp_conn *bc, *c = rig_pair_connect(&p, &bc);
    size_rule("jktcp_conn_info", fill_conn_info, c, sizeof(jktcp_info),
              offsetof(jktcp_info, srtt_us), info_filled);
    size_rule("jktcp_adapter_stats", fill_adapter_stats, p.a, sizeof(jktcp_stats),
              offsetof(jktcp_stats, drop_checksum), stats_filled);
    jktcp_conn_abort(c);
    jktcp_conn_abort(bc);
    rig_pair_down(&p);
}

JT_TEST(abi, size_rule_stream_info_handle_stats, 30)
{
    struct rig r;
    rig_up(&r, NULL);
    jktcp_stream s = rig_connect(&r);
    size_rule("jktcp_stream_info", fill_stream_info, &s, sizeof(jktcp_info),
              offsetof(jktcp_info, srtt_us), info_filled);
    size_rule("jktcp_handle_stats", fill_handle_stats, &r.h, sizeof(jktcp_stats),
              offsetof(jktcp_stats, drop_checksum), stats_filled);
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    rig_down(&r);
}

/* An adapter over a faulty wrapper of a packet port that has sent one
 * SYN. Returns jktcp_transport_faulty's code; on 0, *wrap and *a are set. */
static int faulty_syn(const jktcp_fault_config *cfg, size_t cfg_size, jktcp_port **port,
                      jktcp_transport **wrap, jktcp_adapter **a)
{
    jktcp_transport *t;
    JT_ASSERT(jktcp_port_new(0, port) == 0 && jktcp_port_transport(*port, &t) == 0, "port");
    *wrap = (jktcp_transport *)&wrap; /* must come back NULL on failure */
    int rc = jktcp_transport_faulty(t, cfg, cfg_size, wrap); /* owns t from here */
    if (rc < 0) {
        JT_ASSERT(*wrap == NULL, "failed jktcp_transport_faulty left *out set");
        jktcp_port_free(*port);
        return rc;
    }
    JT_ASSERT(jktcp_adapter_new(*wrap, A_IP, B_IP, a) == 0, "adapter");
    jktcp_conn *c;
    JT_ASSERT(jktcp_conn_connect(*a, RIG_PORT, 0, &c) == -EINPROGRESS, "connect(timeout 0)");
    return 0;
}

static void faulty_done(jktcp_port *port, jktcp_adapter *a)
{
    jktcp_adapter_free(a);
    jktcp_port_free(port);
}

JT_TEST(abi, size_rule_fault_stats, 10)
{
    jktcp_port *port;
    jktcp_transport *w;
    jktcp_adapter *a;
    JT_ASSERT(faulty_syn(NULL, 0, &port, &w, &a) == 0, "faulty wrapper without faults");
    size_rule("jktcp_transport_fault_stats", fill_fault_stats, w, sizeof(jktcp_fault_stats),
              offsetof(jktcp_fault_stats, out.dropped), fault_stats_filled);
    faulty_done(port, a);
}

/* ---- the size rule for structs the library reads ------------------------ */

/* Outbound frames dropped and handed on by a wrapper built with cfg. */
static void faulty_out(const jktcp_fault_config *cfg, size_t size, uint64_t *dropped,
                       uint64_t *passed, ssize_t *pulled)
{
    jktcp_port *port;
    jktcp_transport *w;
    jktcp_adapter *a;
    int rc = faulty_syn(cfg, size, &port, &w, &a);
    JT_ASSERT(rc == 0, "cfg_size %zu: %s", size, E(rc));
    jktcp_fault_stats st;
    JT_ASSERT(jktcp_transport_fault_stats(w, &st, sizeof st) == 0, "fault stats");
    JT_ASSERT(st.out.frames >= 1, "the SYN never reached the wrapper");
    uint8_t buf[FRAME_MAX];
    *dropped = st.out.dropped;
    *passed = st.out.passed;
    *pulled = jktcp_port_pull(port, buf, sizeof buf, 0);
    faulty_done(port, a);
}

JT_TEST(abi, size_rule_fault_config, 10)
{
    /* a caller whose struct ends before `out` sets no outbound faults */
    jktcp_fault_config cfg = {.out.drop = 1.0};
    uint64_t dropped, passed;
    ssize_t pulled;
    faulty_out(&cfg, offsetof(jktcp_fault_config, out), &dropped, &passed, &pulled);
    JT_ASSERT(dropped == 0 && passed >= 1 && pulled > 0,
              "short cfg: dropped %lu passed %lu pulled %zd", (unsigned long)dropped,
              (unsigned long)passed, pulled);
    faulty_out(&cfg, sizeof cfg, &dropped, &passed, &pulled);
    JT_ASSERT(dropped >= 1 && passed == 0 && pulled == -EAGAIN,
              "full cfg: dropped %lu passed %lu pulled %zd", (unsigned long)dropped,
              (unsigned long)passed, pulled);

    /* beyond the size nothing is even looked at: an invalid probability there
     * is no error, inside it is */
    jktcp_port *port;
    jktcp_transport *w;
    jktcp_adapter *a;
    cfg.out.drop = 2.0;
    int rc = faulty_syn(&cfg, offsetof(jktcp_fault_config, out), &port, &w, &a);
    JT_ASSERT(rc == 0, "invalid field beyond cfg_size: %s", E(rc));
    faulty_done(port, a);
    rc = faulty_syn(&cfg, sizeof cfg, &port, &w, &a);
    JT_ASSERT(rc == -EINVAL, "invalid field within cfg_size: %d (%s)", rc, E(rc));

    /* a newer caller's larger struct (zero tail) is accepted */
    struct {
        jktcp_fault_config c;
        uint8_t newer[SLACK];
    } big = {.c.in.drop = 0.0};
    JT_ASSERT(faulty_syn(&big.c, sizeof big, &port, &w, &a) == 0, "cfg_size sizeof + 64");
    faulty_done(port, a);
    rc = faulty_syn(&cfg, 0, &port, &w, &a);
    JT_ASSERT(rc == -EINVAL, "cfg_size 0: %d (%s)", rc, E(rc));
}

static ssize_t nop_read(void *ctx, void *buf, size_t len) { return -EAGAIN; }
static ssize_t nop_write(void *ctx, const void *buf, size_t len) { return -EAGAIN; }
static void count_close(void *ctx) { ++*(int *)ctx; }

/* jktcp_transport_ops with ops_size n; the close callback's calls on free. */
static int ops_with(const jktcp_io_ops *ops, size_t n, int *closes)
{
    jktcp_transport *t = (jktcp_transport *)&t; /* must come back NULL on failure */
    *closes = 0;
    int rc = jktcp_transport_ops(ops, n, closes, JKTCP_FRAMING_PACKET, &t);
    if (rc < 0) {
        JT_ASSERT(t == NULL, "failed jktcp_transport_ops left *out set");
        return rc;
    }
    jktcp_transport_free(t);
    return rc;
}

JT_TEST(abi, size_rule_io_ops, 10)
{
    int closes;
    jktcp_io_ops ops = {.read = nop_read, .write = nop_write, .close = count_close,
                        .poll_fd = -1};
    /* every field is needed (a poll_fd read as 0 would be stdin): a size
     * that cuts any off is refused, and nothing is called */
    int rc = ops_with(&ops, offsetof(jktcp_io_ops, close), &closes);
    JT_ASSERT(rc == -EINVAL, "ops_size before close: %d (%s)", rc, E(rc));
    JT_ASSERT(closes == 0, "close beyond ops_size was called %d times", closes);
    rc = ops_with(&ops, offsetof(jktcp_io_ops, poll_fd), &closes);
    JT_ASSERT(rc == -EINVAL, "ops_size before poll_fd: %d (%s)", rc, E(rc));
    /* all of it: poll_fd -1 is now seen, then a valid one and close */
    rc = ops_with(&ops, sizeof ops, &closes);
    JT_ASSERT(rc == -EINVAL, "poll_fd -1 within ops_size: %d (%s)", rc, E(rc));
    ops.poll_fd = 0;
    JT_ASSERT(ops_with(&ops, sizeof ops, &closes) == 0 && closes == 1, "full ops: closes %d",
              closes);
    /* write is required: cut off, it reads as NULL */
    rc = ops_with(&ops, offsetof(jktcp_io_ops, write), &closes);
    JT_ASSERT(rc == -EINVAL, "ops_size before write: %d (%s)", rc, E(rc));
    struct {
        jktcp_io_ops o;
        uint8_t newer[SLACK];
    } big = {.o = ops};
    JT_ASSERT(ops_with(&big.o, sizeof big, &closes) == 0 && closes == 1, "ops_size sizeof + 64");
    rc = ops_with(&ops, 0, &closes);
    JT_ASSERT(rc == -EINVAL, "ops_size 0: %d (%s)", rc, E(rc));
}

/* ---- enums ----------------------------------------------------------------- */

struct ev {
    long got, want;
    const char *name;
};
#define EV(x, v) {(long)(x), (v), #x}

JT_TEST(abi, enum_values_stable, 10)
{
    static const struct ev evs[] = {
        EV(JKTCP_OPT_SNDBUF, 1),        EV(JKTCP_OPT_RCVBUF, 2),
        EV(JKTCP_OPT_NODELAY, 3),       EV(JKTCP_OPT_DELACK_US, 4),
        EV(JKTCP_OPT_CONGESTION, 5),    EV(JKTCP_OPT_TIMEWAIT_MS, 6),
        EV(JKTCP_OPT_KEEPALIVE_MS, 7),  EV(JKTCP_OPT_RTO_MIN_MS, 8),
        EV(JKTCP_OPT_RTO_MAX_MS, 9),    EV(JKTCP_OPT_RTO_INIT_MS, 10),
        EV(JKTCP_OPT_MAX_RETRIES, 11),  EV(JKTCP_OPT_SACK, 12),
        EV(JKTCP_OPT_TIMESTAMPS, 13),   EV(JKTCP_OPT_MAX_CONNS, 14),
        EV(JKTCP_OPT_OOO_RANGES, 15),   EV(JKTCP_OPT_TAIL_PROBE, 16),
        EV(JKTCP_OPT_PMTU_PROBE, 17),
        EV(JKTCP_OPT_BUSY_POLL_US, 18),
        EV(JKTCP_CLOSED, 0),            EV(JKTCP_LISTEN, 1),
        EV(JKTCP_SYN_SENT, 2),          EV(JKTCP_SYN_RCVD, 3),
        EV(JKTCP_ESTABLISHED, 4),       EV(JKTCP_FIN_WAIT_1, 5),
        EV(JKTCP_FIN_WAIT_2, 6),        EV(JKTCP_CLOSING, 7),
        EV(JKTCP_TIME_WAIT, 8),         EV(JKTCP_CLOSE_WAIT, 9),
        EV(JKTCP_LAST_ACK, 10),         EV(JKTCP_FRAMING_STREAM, 1),
        EV(JKTCP_FRAMING_PACKET, 2),    EV(JKTCP_TRANSPORT_COALESCE, 1),
        EV(JKTCP_TRANSPORT_CLOSE_FD, 2), EV(JKTCP_POLL_READ, 1),
        EV(JKTCP_POLL_WRITE, 2),        EV(JKTCP_FRAMING_TUN_OFFLOAD, 3),
        EV(JKTCP_CC_OFF, 0),            EV(JKTCP_CC_NEWRENO, 1),
        EV(JKTCP_CC_CUBIC, 2),          EV(JKTCP_CC_BBR, 3),
    };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        JT_ASSERT(evs[i].got == evs[i].want, "%s is %ld, bindings use %ld", evs[i].name,
                  evs[i].got, evs[i].want);
    /* the library names states by the same numbers */
    static const char *const names[] = {"CLOSED",     "LISTEN",     "SYN_SENT", "SYN_RCVD",
                                        "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSING",
                                        "TIME_WAIT",  "CLOSE_WAIT", "LAST_ACK"};
    for (int s = 0; s <= 10; s++)
        JT_ASSERT(strcmp(jktcp_state_name(s), names[s]) == 0, "state %d is %s", s,
                  jktcp_state_name(s));
    JT_ASSERT(strcmp(jktcp_state_name(11), "UNKNOWN") == 0, "state 11");
}

/* Options by raw number, as a binding passes them: documented defaults. */
JT_TEST(abi, option_raw_ints, 10)
{
    static const long defaults[19] = {
        [1] = 4L << 20, [2] = 4L << 20, [3] = 1,      [4] = 1000,  [5] = 3,   [6] = 1000,
        [7] = 0,        [8] = 200,      [9] = 60000,  [10] = 1000, [11] = 10, [12] = 1,
        [13] = 1,       [14] = 4096,    [15] = 64,    [16] = 1,    [17] = 0,  [18] = 50,
    };
    struct rig_pair p;
    rig_pair_up(&p);
    for (int opt = 1; opt <= 18; opt++) {
        long v = -12345;
        int rc = jktcp_adapter_get_option(p.a, (jktcp_option)opt, &v);
        JT_ASSERT(rc == 0 && v == defaults[opt], "option %d: %s, %ld (documented %ld)", opt,
                  E(rc), v, defaults[opt]);
    }
    const int bad[] = {0, 19, -1, 1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long v = -12345;
        int rc = jktcp_adapter_get_option(p.a, (jktcp_option)bad[i], &v);
        JT_ASSERT(rc == -EINVAL && v == -12345, "get option %d: %d, %ld", bad[i], rc, v);
        rc = jktcp_adapter_set_option(p.a, (jktcp_option)bad[i], 1);
        JT_ASSERT(rc == -EINVAL, "set option %d: %d", bad[i], rc);
    }
    /* raw 7 is the option the name means */
    long v = 0;
    JT_ASSERT(jktcp_adapter_set_option(p.a, (jktcp_option)7, 5000) == 0, "set raw 7");
    JT_ASSERT(jktcp_adapter_get_option(p.a, JKTCP_OPT_KEEPALIVE_MS, &v) == 0 && v == 5000,
              "JKTCP_OPT_KEEPALIVE_MS after setting raw 7: %ld", v);
    rig_pair_down(&p);
}

/* Framings and transport flags by raw number. */
JT_TEST(abi, framing_and_flags_raw_ints, 10)
{
    int sv[2];
    jktcp_transport *t;
    JT_ASSERT(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0, "socketpair");
    for (int f = 0; f <= 3; f++) {
        int rc = jktcp_transport_fd(sv[0], f, &t);
        JT_ASSERT(rc == (f == 1 || f == 2 ? 0 : -EINVAL), "framing %d: %d", f, rc);
        if (rc == 0) {
            JT_ASSERT(jktcp_transport_set_flags(t, 4) == -EINVAL, "unknown flag 4");
            JT_ASSERT(jktcp_transport_set_flags(t, 1 | 2) == 0, "flags 1|2");
            JT_ASSERT(jktcp_transport_set_flags(t, 1) == 0, "flag 1 (coalesce) alone");
            jktcp_transport_free(t); /* without flag 2 the fd stays ours */
            JT_ASSERT(fcntl(sv[0], F_GETFD) >= 0, "fd closed without CLOSE_FD");
        }
    }
    JT_ASSERT(jktcp_transport_fd(sv[0], 2, &t) == 0, "packet transport");
    JT_ASSERT(jktcp_transport_set_flags(t, 2) == 0, "flag 2 (close fd)");
    jktcp_transport_free(t);
    JT_ASSERT(fcntl(sv[0], F_GETFD) < 0 && errno == EBADF, "flag 2 did not close the fd");
    close(sv[1]);
}

/* ---- ports -------------------------------------------------------------- */

static const int bad_ports[] = {0, -1, 65536, 65536 + RIG_PORT, INT_MAX, INT_MIN};
#define NBAD (sizeof bad_ports / sizeof bad_ports[0])

JT_TEST(abi, ports_range_checked_adapter, 10)
{
    struct rig_pair p;
    rig_pair_up(&p);
    jktcp_stats before, after;
    JT_ASSERT(jktcp_adapter_stats(p.a, &before, sizeof before) == 0, "stats");
    for (size_t i = 0; i < NBAD; i++) {
        jktcp_conn *c = NULL;
        jktcp_conn_listener *l = NULL;
        int rc = jktcp_conn_connect(p.a, bad_ports[i], 0, &c);
        JT_ASSERT(rc == -EINVAL && !c, "conn_connect port %d: %d (%s)", bad_ports[i], rc, E(rc));
        rc = jktcp_adapter_listen(p.a, bad_ports[i], 0, &l);
        JT_ASSERT(rc == -EINVAL && !l, "adapter_listen port %d: %d (%s)", bad_ports[i], rc,
                  E(rc));
    }
    uint8_t buf[FRAME_MAX];
    JT_ASSERT(jktcp_port_pull(p.link.a.port, buf, sizeof buf, 0) == -EAGAIN,
              "a bad port sent a frame");
    JT_ASSERT(jktcp_adapter_stats(p.a, &after, sizeof after) == 0, "stats");
    JT_ASSERT(after.conns_opened == before.conns_opened && after.conns_active == 0,
              "bad ports opened %lu connections",
              (unsigned long)(after.conns_opened - before.conns_opened));
    /* 65536 + 80 did not become 80; the whole range works */
    const int good[] = {RIG_PORT, 1, 65535};
    for (size_t i = 0; i < 3; i++) {
        jktcp_conn_listener *l = NULL;
        int rc = jktcp_adapter_listen(p.a, good[i], 0, &l);
        JT_ASSERT(rc == 0 && l, "listen port %d: %s", good[i], E(rc));
    }
    rig_pair_down(&p); /* frees the listeners */
}

JT_TEST(abi, ports_range_checked_handle, 30)
{
    struct rig r;
    rig_up(&r, NULL);
    jktcp_stats before, after;
    JT_ASSERT(jktcp_handle_stats(r.h, &before, sizeof before) == 0, "stats");
    for (size_t i = 0; i < NBAD; i++) {
        jktcp_stream s = {77};
        jktcp_listener l = {77};
        int rc = jktcp_handle_connect(r.h, bad_ports[i], 1000, &s);
        JT_ASSERT(rc == -EINVAL && s.id == 0, "handle_connect port %d: %d (%s), id %lu",
                  bad_ports[i], rc, E(rc), (unsigned long)s.id);
        rc = jktcp_handle_listen(r.h, bad_ports[i], 0, &l);
        JT_ASSERT(rc == -EINVAL && l.id == 0, "handle_listen port %d: %d (%s), id %lu",
                  bad_ports[i], rc, E(rc), (unsigned long)l.id);
    }
    JT_ASSERT(jktcp_handle_stats(r.h, &after, sizeof after) == 0, "stats");
    JT_ASSERT(after.conns_opened == before.conns_opened && after.frames_out == before.frames_out,
              "bad ports sent %lu frames", (unsigned long)(after.frames_out - before.frames_out));
    const int good[] = {RIG_PORT, 1, 65535};
    for (size_t i = 0; i < 3; i++) {
        jktcp_listener l = {0};
        int rc = jktcp_handle_listen(r.h, good[i], 0, &l);
        JT_ASSERT(rc == 0 && l.id, "handle_listen port %d: %s", good[i], E(rc));
        JT_ASSERT(jktcp_listener_close(l) == 0, "listener close");
    }
    /* the top port reaches the peer (which refuses it) instead of -EINVAL */
    jktcp_stream s = {0};
    int rc = jktcp_handle_connect(r.h, 65535, 5000, &s);
    JT_ASSERT(rc == -ECONNREFUSED, "connect to 65535: %d (%s)", rc, E(rc));
    rig_down(&r);
}
