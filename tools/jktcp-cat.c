/* SPDX-License-Identifier: MIT */
/*
 * jktcp-cat: netcat and a port forwarder through a pipe of raw IP packets
 * (a TUN device, an fd, a Unix socket, or a TCP connection carrying an
 * unwrapped tunnel such as iOS's CDTunnel), with jktcp's threaded handle
 * API as the TCP/IP stack. jktcp is --local; --peer is the host we reach.
 *
 *   PORT / --listen PORT   stdin -> stream -> stdout, half-close both ways
 *   --forward LPORT:PORT   127.0.0.1:LPORT, each connection over its own
 *                          stream to the peer's PORT
 *   --socks ADDR:PORT      SOCKS5 (RFC 1928, no auth, CONNECT) to the peer
 *
 * Each relayed connection is two threads, one per direction, making plain
 * blocking calls: jktcp's streams are thread-safe, and each direction stays
 * a short loop. A failure on either side aborts the stream and shuts the
 * kernel socket's reading down, which wakes the other direction.
 *
 * Exit status: 0 when every direction ended cleanly (or a server mode was
 * stopped by SIGINT / SIGTERM), 1 on a failure, 2 on bad usage. Every
 * failure is one line on stderr. See tools/jktcp-cat.1.
 */
#include "jktcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROG "jktcp-cat"
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_FORWARDS 32
#define RELAY_BUF (256 * 1024)     /* per direction; jktcp's rings are larger */
#define CLOSE_LINGER_MS 10000      /* at exit, queued data and FIN get this long */
#define SOCKS_TIMEOUT_S 10         /* a SOCKS client's handshake must not stall longer */
#define TICK_MS 500                /* progress line and transport check interval */

struct forward { int lport, port; };

struct opts {
    const char *tun, *unix_path, *tcp, *pcap, *local, *peer, *socks;
    int fd;          /* --fd, -1 when not given */
    unsigned mtu;    /* --mtu, 0: the TUN device's, else jktcp's default */
    int timeout_ms;  /* connect timeout */
    int port;        /* connect mode: the peer's port */
    int listen_port; /* --listen */
    struct forward fwd[MAX_FORWARDS];
    int nfwd;
    bool verbose, progress;
};

/* Set once in main before any thread starts; read-only afterwards. */
static struct opts g_o;
static jktcp_handle g_h;
static int g_family;                 /* AF_INET / AF_INET6 of --local/--peer */
static uint8_t g_peer_bin[16], g_local_bin[16];

/* Totals over every connection, for --progress. */
static atomic_uint_fast64_t g_up, g_down; /* kernel side -> stream, stream -> kernel side */
static atomic_int g_active;
static atomic_bool g_progress_dirty; /* --progress: the cursor ends a progress line */

/* ---- Messages ------------------------------------------------------------ */

static void vsay(const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* A progress line is being redrawn with \r: start below it. */
    fprintf(stderr, "%s" PROG ": %s\n", atomic_exchange(&g_progress_dirty, false) ? "\n" : "",
            msg);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    exit(code);
}

/* Text for an error of a stream or connect call. -ENETDOWN is the
 * transport failing (jktcp's rule 6): say why, from the handle. */
static const char *err_text(int err)
{
    static _Thread_local char buf[160];
    if (err != -ENETDOWN)
        return jktcp_strerror(err);
    int terr = jktcp_handle_error(g_h);
    snprintf(buf, sizeof buf, "the transport failed: %s",
             terr == -EPIPE ? "end of stream" : jktcp_strerror(terr));
    return buf;
}

/* "198.18.0.1:80" or "[fd00::1]:80". */
static void fmt_addr(int family, const void *bin, int port, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    inet_ntop(family, bin, ip, sizeof ip);
    snprintf(buf, cap, family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

static void fmt_sockaddr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        fmt_addr(AF_INET6, &a->sin6_addr, ntohs(a->sin6_port), buf, cap);
    } else {
        const struct sockaddr_in *a = (const void *)ss;
        fmt_addr(AF_INET, &a->sin_addr, ntohs(a->sin_port), buf, cap);
    }
}

/* ---- Options ------------------------------------------------------------- */

static void usage(void)
{
    printf("usage: " PROG " TRANSPORT --local IP --peer IP [OPTIONS] MODE\n"
           "TRANSPORT: --tun NAME | --fd N | --unix PATH | --tcp HOST:PORT\n"
           "MODE:      PORT | --listen PORT | [--forward LPORT:PORT]... [--socks [ADDR:]PORT]\n"
           "OPTIONS:   --mtu N  --pcap FILE  --timeout MS  -v|--verbose  --progress\n"
           "           -h|--help  --version\n"
           "See " PROG "(1).\n");
}

enum {
    OPT_TUN = 256, OPT_FD, OPT_UNIX, OPT_TCP, OPT_LOCAL, OPT_PEER, OPT_MTU,
    OPT_PCAP, OPT_TIMEOUT, OPT_FORWARD, OPT_SOCKS, OPT_PROGRESS, OPT_VERSION,
};

static const struct option long_opts[] = {
    {"tun", required_argument, NULL, OPT_TUN},       {"fd", required_argument, NULL, OPT_FD},
    {"unix", required_argument, NULL, OPT_UNIX},     {"tcp", required_argument, NULL, OPT_TCP},
    {"local", required_argument, NULL, OPT_LOCAL},   {"peer", required_argument, NULL, OPT_PEER},
    {"mtu", required_argument, NULL, OPT_MTU},       {"pcap", required_argument, NULL, OPT_PCAP},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"listen", required_argument, NULL, 'l'},        {"forward", required_argument, NULL, OPT_FORWARD},
    {"socks", required_argument, NULL, OPT_SOCKS},   {"verbose", no_argument, NULL, 'v'},
    {"progress", no_argument, NULL, OPT_PROGRESS},   {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},     {NULL, 0, NULL, 0},
};

static long parse_num(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno == ERANGE || (end != s && !*end && (v < lo || v > hi)))
        die(EXIT_USAGE, "%s: %s is out of range (%ld..%ld)", what, s, lo, hi);
    if (errno || end == s || *end)
        die(EXIT_USAGE, "%s: '%s' is not a number", what, s);
    return v;
}

static int parse_port(const char *s, const char *what)
{
    return (int)parse_num(s, 1, 65535, what);
}

static void add_forward(struct opts *o, const char *arg)
{
    const char *colon = strchr(arg, ':');
    if (!colon)
        die(EXIT_USAGE, "--forward %s: expected LPORT:PORT", arg);
    if (o->nfwd == MAX_FORWARDS)
        die(EXIT_USAGE, "--forward: at most %d", MAX_FORWARDS);
    char lport[16];
    snprintf(lport, sizeof lport, "%.*s", (int)(colon - arg), arg);
    o->fwd[o->nfwd].lport = parse_port(lport, "--forward LPORT");
    o->fwd[o->nfwd].port = parse_port(colon + 1, "--forward PORT");
    o->nfwd++;
}

static void take_option(struct opts *o, int c, char **argv)
{
    switch (c) {
    case OPT_TUN: o->tun = optarg; break;
    case OPT_FD: o->fd = (int)parse_num(optarg, 0, 1 << 30, "--fd"); break;
    case OPT_UNIX: o->unix_path = optarg; break;
    case OPT_TCP: o->tcp = optarg; break;
    case OPT_LOCAL: o->local = optarg; break;
    case OPT_PEER: o->peer = optarg; break;
    case OPT_MTU: o->mtu = (unsigned)parse_num(optarg, 576, 65535, "--mtu"); break;
    case OPT_PCAP: o->pcap = optarg; break;
    case OPT_TIMEOUT: o->timeout_ms = (int)parse_num(optarg, 1, 3600000, "--timeout"); break;
    case 'l': o->listen_port = parse_port(optarg, "--listen"); break;
    case OPT_FORWARD: add_forward(o, optarg); break;
    case OPT_SOCKS: o->socks = optarg; break;
    case 'v': o->verbose = true; break;
    case OPT_PROGRESS: o->progress = true; break;
    case 'h': usage(); exit(0);
    case OPT_VERSION: printf(PROG " (%s)\n", jktcp_version()); exit(0);
    /* opterr is off: one line of our own instead of getopt's */
    case ':': die(EXIT_USAGE, "option %s needs a value (see --help)", argv[optind - 1]);
    default: die(EXIT_USAGE, "unknown option %s (see --help)", argv[optind - 1]);
    }
}

/* --local / --peer: both addresses of one family (jktcp checks the rest). */
static void check_addresses(const struct opts *o)
{
    if (!o->local || !o->peer)
        die(EXIT_USAGE, "--local IP and --peer IP are required");
    int fl = strchr(o->local, ':') ? AF_INET6 : AF_INET;
    int fp = strchr(o->peer, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fl, o->local, g_local_bin) != 1)
        die(EXIT_USAGE, "--local: '%s' is not an IP address", o->local);
    if (inet_pton(fp, o->peer, g_peer_bin) != 1)
        die(EXIT_USAGE, "--peer: '%s' is not an IP address", o->peer);
    if (fl != fp)
        die(EXIT_USAGE, "--local %s and --peer %s: not the same IP version", o->local, o->peer);
    g_family = fl;
}

static void check_opts(const struct opts *o)
{
    int transports = !!o->tun + (o->fd >= 0) + !!o->unix_path + !!o->tcp;
    if (transports != 1)
        die(EXIT_USAGE, "give exactly one transport: --tun, --fd, --unix or --tcp");
    check_addresses(o);
    int modes = !!o->port + !!o->listen_port + (o->nfwd > 0 || o->socks);
    if (modes != 1)
        die(EXIT_USAGE, "give exactly one of: PORT, --listen PORT, --forward / --socks");
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.fd = -1, .timeout_ms = 10000};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":l:vh", long_opts, NULL)) != -1)
        take_option(o, c, argv);
    if (argc - optind > 1)
        die(EXIT_USAGE, "unexpected argument '%s' (one PORT at most)", argv[optind + 1]);
    if (argc - optind == 1)
        o->port = parse_port(argv[optind], "PORT");
    check_opts(o);
}

/* ---- Transports ---------------------------------------------------------- */

/* HOST:PORT or [V6]:PORT into host and *port; a bare PORT takes dflt as
 * its host when dflt is given. */
static void split_host_port(const char *spec, const char *dflt, char *host, size_t cap,
                            const char **port, const char *what)
{
    const char *colon = strrchr(spec, ':');
    if (!colon && dflt) {
        snprintf(host, cap, "%s", dflt);
        *port = spec;
        return;
    }
    const char *h = spec;
    size_t n = colon ? (size_t)(colon - spec) : 0;
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (!colon || n == 0 || n >= cap)
        die(EXIT_USAGE, "%s %s: expected HOST:PORT", what, spec);
    memcpy(host, h, n);
    host[n] = 0;
    *port = colon + 1;
    parse_port(*port, what);
}

/* --tun NAME: one more open of an existing TUN device. Creating it here
 * would give a device without addresses or routes, so a missing one is an
 * error. A single-queue device takes one process at a time (-EBUSY). */
static int open_tun(const char *name, unsigned *mtu)
{
    if (strlen(name) >= IFNAMSIZ || !if_nametoindex(name))
        die(EXIT_FAIL, "--tun %s: no such network device", name);
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        die(EXIT_FAIL, "--tun %s: /dev/net/tun: %s", name, strerror(errno));
    struct ifreq ifr = {0};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
        int e = errno;
        die(EXIT_FAIL, "--tun %s: %s", name,
            e == EBUSY    ? "in use by another process"
            : e == EINVAL ? "not a single-queue TUN device"
                          : strerror(e));
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* for SIOCGIFMTU */
    if (s >= 0 && ioctl(s, SIOCGIFMTU, &ifr) == 0)
        *mtu = (unsigned)ifr.ifr_mtu;
    if (s >= 0)
        close(s);
    return fd;
}

/* A socket's type decides: SOCK_STREAM carries a byte stream, seqpacket /
 * datagram sockets one frame each. A character device is a TUN; a pipe is
 * a byte stream. */
static int fd_framing(int fd)
{
    int type;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
        return type == SOCK_STREAM ? JKTCP_FRAMING_STREAM : JKTCP_FRAMING_PACKET;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode))
        return JKTCP_FRAMING_PACKET;
    return JKTCP_FRAMING_STREAM;
}

/* --unix PATH: a stream socket, or a seqpacket one if the server is that
 * (connect says EPROTOTYPE). "@name" is Linux's abstract namespace. */
static int open_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sa.sun_path)
        die(EXIT_USAGE, "--unix: bad path '%s'", path);
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = 0;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET};
    int err = 0;
    for (size_t i = 0; i < 2; i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, len) == 0)
            return fd;
        err = errno;
        if (fd >= 0)
            close(fd);
        if (err != EPROTOTYPE)
            break;
    }
    die(EXIT_FAIL, "--unix %s: %s", path, strerror(err));
}

/* --tcp HOST:PORT: a kernel TCP connection whose bytes are IP frames. */
static int open_tcp(const char *spec)
{
    char host[256];
    const char *port;
    split_host_port(spec, NULL, host, sizeof host, &port, "--tcp");
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc)
        die(EXIT_FAIL, "--tcp %s: %s", spec, gai_strerror(rc));
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        die(EXIT_FAIL, "--tcp %s: %s", spec, strerror(err));
    int one = 1; /* each frame leaves when jktcp writes it */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* The transport's fd; *framing from what it is (fd_framing). */
static int open_transport(const struct opts *o, int *framing, unsigned *dev_mtu)
{
    *dev_mtu = 0;
    int fd = o->fd;
    if (o->tun)
        fd = open_tun(o->tun, dev_mtu);
    else if (o->unix_path)
        fd = open_unix(o->unix_path);
    else if (o->tcp)
        fd = open_tcp(o->tcp);
    else if (fcntl(fd, F_GETFD) < 0)
        die(EXIT_USAGE, "--fd %d: %s", fd, strerror(errno));
    *framing = fd_framing(fd);
    return fd;
}

/* The adapter on the transport, moved onto jktcp's I/O thread. */
static jktcp_handle start_handle(const struct opts *o)
{
    int framing;
    unsigned dev_mtu;
    int fd = open_transport(o, &framing, &dev_mtu);
    jktcp_transport *t;
    jktcp_adapter *a;
    jktcp_handle h;
    int rc = jktcp_transport_fd(fd, framing, &t);
    if (rc)
        die(EXIT_FAIL, "transport: %s", jktcp_strerror(rc));
    jktcp_transport_set_flags(t, JKTCP_TRANSPORT_CLOSE_FD);
    rc = jktcp_adapter_new(t, o->local, o->peer, &a); /* owns t from here, even on failure */
    if (rc)
        die(EXIT_USAGE, "--local %s --peer %s: not a usable address pair", o->local, o->peer);
    if (o->mtu && (rc = jktcp_adapter_set_mtu(a, o->mtu)) != 0)
        die(EXIT_USAGE, "--mtu %u: out of range (IPv6 needs at least 1280)", o->mtu);
    if (!o->mtu && dev_mtu)
        jktcp_adapter_set_mtu(a, dev_mtu); /* a device MTU jktcp refuses keeps 1500 */
    rc = jktcp_handle_start(a, &h);
    if (rc)
        die(EXIT_FAIL, "jktcp_handle_start: %s", jktcp_strerror(rc));
    if (o->pcap && (rc = jktcp_handle_pcap(h, o->pcap)) != 0)
        die(EXIT_FAIL, "--pcap %s: %s", o->pcap, jktcp_strerror(rc));
    return h;
}

/* ---- Progress ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every TICK_MS: totals, the rate over the last tick, open connections. */
static void *progress_main(void *arg)
{
    double t0 = now_s(), t_last = t0;
    uint64_t last = 0;
    for (;;) {
        struct timespec ts = {0, TICK_MS * 1000000L};
        nanosleep(&ts, NULL);
        uint64_t up = atomic_load(&g_up), down = atomic_load(&g_down);
        double t = now_s();
        fprintf(stderr, "\r" PROG ": %.1f MiB up, %.1f MiB down, %.1f MB/s, %d open, %.0f s  ",
                (double)up / 1048576, (double)down / 1048576,
                (double)(up + down - last) / (t - t_last) / 1e6, atomic_load(&g_active), t - t0);
        atomic_store(&g_progress_dirty, true);
        last = up + down;
        t_last = t;
    }
    return arg;
}

/* --progress: a line redrawn every TICK_MS, only on a terminal. */
static void progress_start(void)
{
    pthread_t th;
    if (!g_o.progress || !isatty(STDERR_FILENO))
        return;
    if (pthread_create(&th, NULL, progress_main, NULL) == 0)
        pthread_detach(th);
}

/* ---- Relay: a kernel-side fd pair and a stream, both directions ---------- */

struct relay {
    jktcp_stream s;
    int in_fd, out_fd;      /* a socket twice, or stdin and stdout */
    bool in_sock, out_sock; /* shutdown() works on them */
    char name[80];          /* the kernel side, for messages */
    atomic_uint_fast64_t up, down;
    atomic_bool failing;    /* relay_fail ran (the first caller wins) */
    atomic_int err;         /* the first failure (negative errno), 0: none */
    const char *err_where;  /* which side it came from */
    jktcp_info info;        /* taken before the stream id ends (-v) */
    int info_rc;            /* jktcp_stream_info's result */
    bool info_taken;
};

static bool is_socket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void relay_init(struct relay *r, jktcp_stream s, int in_fd, int out_fd, const char *name)
{
    *r = (struct relay){.s = s, .in_fd = in_fd, .out_fd = out_fd, .in_sock = is_socket(in_fd),
                        .out_sock = is_socket(out_fd)};
    snprintf(r->name, sizeof r->name, "%s", name);
}

/* The first failure wins: keep the stream's info, then wake the other
 * direction. Aborting the stream sends the peer a RST and makes any call
 * blocked on it return -EBADF (rule 3); SHUT_RD wakes a read blocked on the
 * kernel socket without sending anything (the RST for it comes at close,
 * SO_LINGER 0). A blocked read of a non-socket stdin cannot be woken: the
 * cat mode then exits without it. */
static void relay_fail(struct relay *r, int err, const char *where)
{
    if (atomic_exchange(&r->failing, true))
        return;
    r->err_where = where;
    r->info_rc = jktcp_stream_info(r->s, &r->info, sizeof r->info);
    r->info_taken = true;
    atomic_store(&r->err, err); /* after the fields above: readers test err */
    if (r->in_sock)
        shutdown(r->in_fd, SHUT_RD);
    jktcp_stream_abort(r->s);
}

static int write_full(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void count(atomic_uint_fast64_t *mine, atomic_uint_fast64_t *total, size_t n)
{
    atomic_fetch_add_explicit(mine, n, memory_order_relaxed);
    atomic_fetch_add_explicit(total, n, memory_order_relaxed);
}

/* Kernel side -> stream. At end of input, FIN after the queued bytes
 * (jktcp_stream_shutdown): the peer sees our half-close. */
static void *relay_up(void *arg)
{
    struct relay *r = arg;
    char *buf = malloc(RELAY_BUF);
    int err = buf ? 0 : -ENOMEM;
    const char *where = r->in_sock ? r->name : "stdin";
    while (!err) {
        ssize_t n = read(r->in_fd, buf, RELAY_BUF);
        if (n == 0)
            break;
        if (n < 0) {
            err = errno == EINTR ? 0 : -errno;
            continue;
        }
        ssize_t w = jktcp_stream_write_all(r->s, buf, (size_t)n, -1);
        if (w < 0) {
            err = (int)w;
            where = "tunnel";
        } else {
            count(&r->up, &g_up, (size_t)n);
        }
    }
    free(buf);
    if (!err && !atomic_load(&r->err) && (err = jktcp_stream_shutdown(r->s)) != 0)
        where = "tunnel";
    if (err)
        relay_fail(r, err, where);
    return NULL;
}

/* The peer's FIN: pass it on. stdout is replaced by /dev/null rather
 * than closed, so the fd number stays taken. */
static void end_output(struct relay *r)
{
    if (r->out_sock) {
        shutdown(r->out_fd, SHUT_WR);
        return;
    }
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, r->out_fd);
        close(null);
    }
}

/* Stream -> kernel side, until the peer's FIN or a failure. */
static void relay_down(struct relay *r)
{
    char *buf = malloc(RELAY_BUF);
    ssize_t n = buf ? 1 : -ENOMEM;
    const char *where = "tunnel";
    while (n > 0) {
        n = jktcp_stream_read(r->s, buf, RELAY_BUF, -1);
        if (n == -EINTR) {
            n = 1;
        } else if (n > 0) {
            int e = write_full(r->out_fd, buf, (size_t)n);
            if (e) {
                n = e;
                where = r->out_sock ? r->name : "stdout";
            } else {
                count(&r->down, &g_down, (size_t)n);
            }
        }
    }
    free(buf);
    if (n == 0)
        end_output(r);
    else
        relay_fail(r, (int)n, where);
}

/* Both directions: this thread carries stream -> kernel side, a second
 * one the other way. wait_input: join it even after a failure (it can be
 * woken: a socket); else (stdin) leave it behind. 0 or the failure. */
static int relay_run(struct relay *r, bool wait_input)
{
    pthread_t up;
    int rc = pthread_create(&up, NULL, relay_up, r);
    if (rc) {
        relay_fail(r, -rc, "pthread_create");
        return -rc;
    }
    relay_down(r);
    if (!wait_input && atomic_load(&r->err))
        pthread_detach(up);
    else
        pthread_join(up, NULL);
    return atomic_load(&r->err);
}

/* -v: one line per connection at close, from jktcp_stream_info. */
static void report_conn(const struct relay *r)
{
    char ends[160] = "", info[512], a[64], b[64];
    const jktcp_info *i = &r->info;
    if (r->info_rc == 0) {
        fmt_addr(g_family, g_local_bin, i->local_port, a, sizeof a);
        fmt_addr(g_family, g_peer_bin, i->remote_port, b, sizeof b);
        snprintf(ends, sizeof ends, " (%s <-> %s)", a, b);
        snprintf(info, sizeof info,
                 "%s, %llu bytes acked, %llu received, srtt %.2f ms, rto %u ms, mss %u, pmtu %u, "
                 "cwnd %u, snd_wnd %u, rcv_wnd %u, retransmits %u, timeouts %u, recoveries %u, "
                 "tail probes %u, sack %s, timestamps %s",
                 jktcp_state_name(i->state), (unsigned long long)i->bytes_sent,
                 (unsigned long long)i->bytes_received, i->srtt_us / 1000.0, i->rto_us / 1000,
                 i->mss, i->pmtu, i->cwnd, i->snd_wnd, i->rcv_wnd, i->retransmits, i->timeouts,
                 i->recoveries, i->tail_probes, i->sack ? "on" : "off", i->timestamps ? "on" : "off");
    } else {
        snprintf(info, sizeof info, "no connection info: %s", jktcp_strerror(r->info_rc));
    }
    int err = atomic_load(&r->err);
    char how[256] = "closed";
    if (err)
        snprintf(how, sizeof how, "%s: %s", r->err_where, err_text(err));
    say("%s%s %s, %llu bytes up, %llu down; %s", r->name, ends, how,
        (unsigned long long)atomic_load(&r->up), (unsigned long long)atomic_load(&r->down), info);
}

/* After relay_run: the info line, then the stream's id ends (gracefully
 * if nothing failed; a failure aborted it already). */
static void relay_finish(struct relay *r)
{
    if (!r->info_taken)
        r->info_rc = jktcp_stream_info(r->s, &r->info, sizeof r->info);
    if (!atomic_load(&r->err))
        jktcp_stream_close(r->s);
    if (g_o.verbose)
        report_conn(r);
}

/* ---- Cat mode: stdin/stdout over one stream ------------------------------ */

static jktcp_stream cat_connect(void)
{
    jktcp_stream s;
    int rc = jktcp_handle_connect(g_h, g_o.port, g_o.timeout_ms, &s);
    if (rc)
        die(EXIT_FAIL, "connect to %s port %d: %s", g_o.peer, g_o.port, err_text(rc));
    return s;
}

/* --listen: the first connection, then the listener is closed (nc -l).
 * Accepts wait in TICK_MS steps so a failed transport is noticed. */
static jktcp_stream cat_accept(void)
{
    jktcp_listener l;
    jktcp_stream s;
    int rc = jktcp_handle_listen(g_h, g_o.listen_port, 1, &l);
    if (rc)
        die(EXIT_FAIL, "listen on port %d: %s", g_o.listen_port, err_text(rc));
    if (g_o.verbose)
        say("listening on %s port %d", g_o.local, g_o.listen_port);
    do
        rc = jktcp_listener_accept(l, TICK_MS, &s);
    while ((rc == -EAGAIN || rc == -EINTR) && !jktcp_handle_error(g_h));
    if (rc == -EAGAIN || rc == -EINTR)
        rc = -ENETDOWN;
    if (rc)
        die(EXIT_FAIL, "accept on port %d: %s", g_o.listen_port, err_text(rc));
    jktcp_listener_close(l);
    jktcp_info i;
    char from[64];
    if (g_o.verbose && jktcp_stream_info(s, &i, sizeof i) == 0) {
        fmt_addr(g_family, g_peer_bin, i.remote_port, from, sizeof from);
        say("connection from %s", from);
    }
    return s;
}

static int run_cat(void)
{
    static struct relay r; /* static: a stdin reader left behind may still use it */
    jktcp_stream s = g_o.listen_port ? cat_accept() : cat_connect();
    relay_init(&r, s, STDIN_FILENO, STDOUT_FILENO, "stdio");
    atomic_store(&g_active, 1);
    int err = relay_run(&r, false);
    relay_finish(&r);
    atomic_store(&g_active, 0);
    if (err) {
        if (!g_o.verbose && strcmp(r.err_where, "tunnel")) /* -v said it already */
            say("%s: %s", r.err_where, err_text(err));
        else if (!g_o.verbose)
            say("connection with %s: %s", g_o.peer, err_text(err));
        jktcp_handle_close(g_h, 0); /* resets what is left */
        return EXIT_FAIL;
    }
    jktcp_handle_close(g_h, CLOSE_LINGER_MS); /* our last bytes and FIN get acked */
    return 0;
}

/* ---- SOCKS5 (RFC 1928): no authentication, CONNECT to the peer only ------ */

/* §6 reply codes. RULESET: not the tunnel's peer; CMD: only CONNECT. */
enum { S5_OK, S5_FAIL, S5_RULESET, S5_NETUNREACH, S5_HOSTUNREACH, S5_REFUSED, S5_CMD = 7, S5_ATYP };

static int read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? -ECONNABORTED : -errno;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* §6 reply. BND is jktcp's address and the stream's port on success. */
static void socks_reply(int fd, int rep, int bport)
{
    uint8_t m[22] = {5, (uint8_t)rep, 0, 1};
    size_t alen = 4;
    if (rep == S5_OK) {
        m[3] = g_family == AF_INET6 ? 4 : 1;
        alen = g_family == AF_INET6 ? 16 : 4;
        memcpy(m + 4, g_local_bin, alen);
    }
    m[4 + alen] = (uint8_t)(bport >> 8);
    m[5 + alen] = (uint8_t)bport;
    (void)write_full(fd, (const char *)m, 6 + alen);
}

/* jktcp's connect errors as §6 reply codes. A timeout is "host
 * unreachable" (as OpenSSH's -D answers): 6 means TTL expired. */
static int socks_code(int err)
{
    switch (err) {
    case -ECONNREFUSED: return S5_REFUSED;
    case -ENETUNREACH: return S5_NETUNREACH;
    case -EHOSTUNREACH: case -EHOSTDOWN: case -ETIMEDOUT: return S5_HOSTUNREACH;
    case -EACCES: return S5_RULESET;
    default: return S5_FAIL;
    }
}

/* §3: only method 0 (no authentication) is offered. */
static int socks_greet(int fd)
{
    uint8_t h[2], methods[255];
    if (read_full(fd, h, 2) || h[0] != 5 || read_full(fd, methods, h[1]))
        return -EPROTO;
    bool noauth = memchr(methods, 0, h[1]) != NULL;
    uint8_t rep[2] = {5, noauth ? 0x00 : 0xff};
    (void)write_full(fd, (const char *)rep, 2);
    return noauth ? 0 : -EACCES;
}

/* DST.ADDR as the peer's family and bytes. A domain name is taken only if
 * it is an address literal: the tunnel has one host and no resolver. */
static int socks_addr(int fd, int atyp, int *family, uint8_t bin[16])
{
    uint8_t len;
    char name[256];
    switch (atyp) {
    case 1: *family = AF_INET; return read_full(fd, bin, 4) ? -EPROTO : 0;
    case 4: *family = AF_INET6; return read_full(fd, bin, 16) ? -EPROTO : 0;
    case 3:
        if (read_full(fd, &len, 1) || read_full(fd, name, len))
            return -EPROTO;
        name[len] = 0;
        *family = strchr(name, ':') ? AF_INET6 : AF_INET;
        return inet_pton(*family, name, bin) == 1 ? 0 : -EHOSTUNREACH;
    default: return -EAFNOSUPPORT;
    }
}

/* §4 request. Returns the peer's port to connect to, or a negative errno
 * after answering the failure. */
static int socks_request(int fd)
{
    uint8_t h[4], bin[16], port[2] = {0, 0};
    int family = 0;
    if (read_full(fd, h, 4) || h[0] != 5)
        return -EPROTO;
    int rc = socks_addr(fd, h[3], &family, bin);
    if (rc == -EPROTO || (rc != -EAFNOSUPPORT && read_full(fd, port, 2)))
        return -EPROTO;
    int rep = rc == -EAFNOSUPPORT ? S5_ATYP : rc ? S5_HOSTUNREACH : S5_OK;
    if (rep == S5_OK && h[1] != 1)
        rep = S5_CMD;
    size_t alen = g_family == AF_INET6 ? 16 : 4;
    if (rep == S5_OK && (family != g_family || memcmp(bin, g_peer_bin, alen)))
        rep = S5_RULESET;
    int p = port[0] << 8 | port[1];
    if (rep == S5_OK && p == 0)
        rep = S5_FAIL;
    if (rep == S5_OK)
        return p;
    socks_reply(fd, rep, 0);
    return -EACCES;
}

/* The whole handshake, bounded by SO_RCVTIMEO so a silent client cannot
 * hold a thread. The peer's port, or a negative errno. */
static int socks_handshake(int fd)
{
    struct timeval tv = {SOCKS_TIMEOUT_S, 0}, none = {0, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc = socks_greet(fd);
    if (rc == 0)
        rc = socks_request(fd);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    return rc;
}

/* ---- Server modes: --forward and --socks --------------------------------- */

struct conn {
    struct relay r;
    int fd;
    int port;  /* --forward: the peer's port; 0: SOCKS decides */
    char client[64];
};

/* Close a kernel socket with RST (SO_LINGER 0): what a refused or reset
 * connection should look like to the client. */
static void close_reset(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* One accepted kernel connection, from its SOCKS handshake (if any) to
 * its close. Runs on its own thread. */
static void *conn_main(void *arg)
{
    struct conn *c = arg;
    jktcp_stream s;
    int port = c->port ? c->port : socks_handshake(c->fd);
    int rc = port > 0 ? jktcp_handle_connect(g_h, port, g_o.timeout_ms, &s) : port;
    if (!c->port && port > 0) {
        jktcp_info i = {0};
        if (rc == 0)
            jktcp_stream_info(s, &i, sizeof i);
        socks_reply(c->fd, rc ? socks_code(rc) : S5_OK, i.local_port);
    }
    bool connected = rc == 0;
    if (connected) {
        relay_init(&c->r, s, c->fd, c->fd, c->client);
        rc = relay_run(&c->r, true);
        relay_finish(&c->r);
        if (rc && !g_o.verbose)
            say("%s: %s: %s", c->client, c->r.err_where, err_text(rc));
    } else if (port > 0) {
        say("%s: connect to %s port %d: %s", c->client, g_o.peer, port, err_text(rc));
    } else if (rc != -EACCES) { /* -EACCES: answered with a SOCKS error already */
        say("%s: SOCKS handshake failed: %s", c->client, strerror(-rc));
    }
    /* A SOCKS refusal said why in its reply: a plain close keeps it
     * readable. Everything else that failed is reset. */
    if (rc && (c->port || connected))
        close_reset(c->fd);
    else
        close(c->fd);
    atomic_fetch_sub(&g_active, 1);
    free(c);
    return NULL;
}

static void spawn_conn(int lfd, int port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
    if (fd < 0)
        return; /* the client left already, or EMFILE: the next poll retries */
    struct conn *c = calloc(1, sizeof *c);
    pthread_t th;
    if (c) {
        c->fd = fd;
        c->port = port;
        fmt_sockaddr(&ss, c->client, sizeof c->client);
        atomic_fetch_add(&g_active, 1); /* conn_main takes it off */
    }
    if (c && pthread_create(&th, NULL, conn_main, c) == 0) {
        pthread_detach(th);
        return;
    }
    say("no memory or threads for a connection from 127.0.0.1");
    if (c)
        atomic_fetch_sub(&g_active, 1);
    free(c);
    close_reset(fd);
}

static int listen_tcp(const char *host, const char *port, const char *what)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV},
                    *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc)
        die(EXIT_USAGE, "%s %s:%s: %s", what, host, port, gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 128))
        die(EXIT_FAIL, "%s %s:%s: %s", what, host, port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

struct server {
    struct pollfd pfd[MAX_FORWARDS + 2]; /* listeners, then the signalfd */
    int port[MAX_FORWARDS + 1];          /* per listener: peer port, 0 = SOCKS */
    int n;                               /* listeners */
};

/* Kernel listeners first, before the tunnel starts: a port in use is an
 * error before anything else happens. */
static void open_listeners(struct server *sv)
{
    char lport[8], host[64];
    const char *sport;
    for (int i = 0; i < g_o.nfwd; i++) {
        snprintf(lport, sizeof lport, "%d", g_o.fwd[i].lport);
        sv->pfd[sv->n] = (struct pollfd){listen_tcp("127.0.0.1", lport, "--forward"), POLLIN, 0};
        sv->port[sv->n++] = g_o.fwd[i].port;
    }
    if (g_o.socks) {
        split_host_port(g_o.socks, "127.0.0.1", host, sizeof host, &sport, "--socks");
        parse_port(sport, "--socks");
        sv->pfd[sv->n] = (struct pollfd){listen_tcp(host, sport, "--socks"), POLLIN, 0};
        sv->port[sv->n++] = 0;
    }
}

static void announce(const struct server *sv)
{
    for (int i = 0; g_o.verbose && i < sv->n; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char a[64];
        getsockname(sv->pfd[i].fd, (struct sockaddr *)&ss, &len);
        fmt_sockaddr(&ss, a, sizeof a);
        if (sv->port[i])
            say("forwarding %s to %s port %d", a, g_o.peer, sv->port[i]);
        else
            say("SOCKS5 on %s to %s", a, g_o.peer);
    }
}

/* SIGINT / SIGTERM arrive through a signalfd in the poll set: blocked in
 * every thread (so none of jktcp's calls sees -EINTR), including the I/O
 * thread, which inherits the mask from main. */
static int block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (fd < 0)
        die(EXIT_FAIL, "signalfd: %s", strerror(errno));
    return fd;
}

/* Accept until a signal (exit 0) or the transport fails (exit 1). */
static int serve(struct server *sv)
{
    announce(sv);
    for (;;) {
        int n = poll(sv->pfd, (nfds_t)sv->n + 1, TICK_MS);
        if (n < 0 && errno != EINTR)
            die(EXIT_FAIL, "poll: %s", strerror(errno));
        if (n < 0)
            continue;
        if (sv->pfd[sv->n].revents)
            break;
        if (jktcp_handle_error(g_h))
            die(EXIT_FAIL, "%s", err_text(-ENETDOWN));
        for (int i = 0; n > 0 && i < sv->n; i++)
            if (sv->pfd[i].revents & POLLIN)
                spawn_conn(sv->pfd[i].fd, sv->port[i]);
    }
    for (int i = 0; i < sv->n; i++)
        close(sv->pfd[i].fd);
    jktcp_handle_close(g_h, 1000); /* open relays end with -ESHUTDOWN */
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a closed reader is EPIPE, handled where it happens */
    parse_args(argc, argv, &g_o);
    bool server = g_o.nfwd > 0 || g_o.socks;
    struct server sv = {.n = 0};
    if (server) {
        open_listeners(&sv);
        sv.pfd[sv.n] = (struct pollfd){block_signals(), POLLIN, 0};
    }
    g_h = start_handle(&g_o);
    progress_start();
    int rc = server ? serve(&sv) : run_cat();
    if (atomic_exchange(&g_progress_dirty, false))
        fputc('\n', stderr);
    return rc;
}
