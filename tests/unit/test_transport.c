/* SPDX-License-Identifier: MIT */
/*
 * Suite `transport`: the fd transport (stream framing over a byte stream:
 * any chunking, malformed and truncated streams; packet framing over
 * SOCK_SEQPACKET with back-pressure), caller ops (one write per frame,
 * coalescing, partial writes, sticky errors), arguments, flags and
 * ownership. The packet port is in test_port.c.
 */
#include <criterion/criterion.h>

#include "jktcp.h"
#include "packet.h"
#include "transport.h"
#include "transport_test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* n frames back to back in one buffer, as a stream peer would send them. */
struct frames {
    uint8_t *data;
    size_t *off, *len;
    size_t n, total;
};

static size_t random_len(uint64_t *rng, int version)
{
    size_t lo = version == 4 ? 20 : 41, hi = version == 4 ? 65535 : JK_MAX_FRAME;
    switch (rng_next(rng) % 8) {
    case 0:
        return hi; /* the largest frame must pass too */
    case 1:
        return rng_range(rng, lo, hi);
    default:
        return rng_range(rng, lo, 1500);
    }
}

static struct frames frames_make(size_t n, uint64_t seed)
{
    uint64_t rng = seed;
    struct frames fs = {.n = n};
    fs.off = calloc(n, sizeof *fs.off);
    fs.len = calloc(n, sizeof *fs.len);
    cr_assert(fs.off && fs.len);
    int ver[n];
    for (size_t i = 0; i < n; i++) {
        ver[i] = rng_next(&rng) & 1 ? 4 : 6;
        fs.len[i] = random_len(&rng, ver[i]);
        fs.off[i] = fs.total;
        fs.total += fs.len[i];
    }
    fs.data = malloc(fs.total);
    cr_assert(fs.data);
    for (size_t i = 0; i < n; i++)
        make_frame(fs.data + fs.off[i], fs.len[i], ver[i], (uint32_t)i, &rng);
    return fs;
}

static void frames_free(struct frames *fs)
{
    free(fs->data);
    free(fs->off);
    free(fs->len);
}

static void expect_frame(const struct frames *fs, size_t i, const uint8_t *f, size_t len)
{
    cr_assert_lt(i, fs->n, "more frames than were sent");
    cr_assert_eq(len, fs->len[i], "frame %zu: length %zu, want %zu", i, len, fs->len[i]);
    cr_assert(memcmp(f, fs->data + fs->off[i], len) == 0, "frame %zu differs", i);
}

/* Receive until end of stream; every frame must match, in order. Returns
 * the final error. */
static int recv_all(jktcp_transport *t, const struct frames *fs)
{
    size_t i = 0;
    for (;;) {
        const uint8_t *f;
        size_t len;
        int r = jk_transport_recv(t, &f, &len);
        if (r == 1) {
            expect_frame(fs, i++, f, len);
        } else if (r == 0) {
            cr_assert_gt(wait_fd(jk_transport_poll_fd(t), POLLIN, 10000), 0, "no wake-up");
        } else {
            cr_assert_eq(i, fs->n, "stream ended after %zu of %zu frames", i, fs->n);
            return r;
        }
    }
}

/* ---- stream receive over a socketpair ------------------------------------ */

enum chunking { CHUNK_BYTES, CHUNK_RANDOM, CHUNK_FRAMES };

struct writer {
    int fd;
    const struct frames *fs;
    enum chunking how;
    size_t max_chunk;
    uint64_t seed;
};

static void write_full(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            abort(); /* not in the test's thread: no cr_assert here */
        p += w;
        n -= (size_t)w;
    }
}

/* Next chunk size: single bytes, random sizes, or whole groups of frames. */
static size_t chunk_len(struct writer *w, size_t pos, size_t *frame)
{
    if (w->how == CHUNK_BYTES)
        return 1;
    if (w->how == CHUNK_RANDOM)
        return rng_range(&w->seed, 1, w->max_chunk);
    size_t k = rng_range(&w->seed, 1, 8), end = pos;
    for (; k > 0 && *frame < w->fs->n; k--, (*frame)++)
        end += w->fs->len[*frame];
    return end - pos;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    size_t pos = 0, frame = 0;
    while (pos < w->fs->total) {
        size_t n = chunk_len(w, pos, &frame);
        if (n > w->fs->total - pos)
            n = w->fs->total - pos;
        write_full(w->fd, w->fs->data + pos, n);
        pos += n;
    }
    close(w->fd);
    return NULL;
}

static void stream_roundtrip(size_t nframes, enum chunking how, size_t max_chunk, uint64_t seed)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct frames fs = frames_make(nframes, seed);
    jktcp_transport *t;
    cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_STREAM, &t), 0);
    cr_assert_eq(jk_transport_framing(t), JKTCP_FRAMING_STREAM);
    cr_assert_eq(jk_transport_poll_fd(t), sv[0]);
    struct writer w = {sv[1], &fs, how, max_chunk, seed ^ 0x9e3779b97f4a7c15ull};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, writer_main, &w), 0);
    cr_assert_eq(recv_all(t, &fs), -EPIPE);
    pthread_join(th, NULL);
    jktcp_transport_free(t);
    close(sv[0]);
    frames_free(&fs);
}

Test(transport, stream_one_byte_writes, .timeout = 120)
{
    stream_roundtrip(25, CHUNK_BYTES, 1, 1);
}

Test(transport, stream_random_chunks, .timeout = 60)
{
    stream_roundtrip(400, CHUNK_RANDOM, 100000, 2);
    stream_roundtrip(60, CHUNK_RANDOM, 7, 3);
}

Test(transport, stream_coalesced_frames, .timeout = 60)
{
    stream_roundtrip(400, CHUNK_FRAMES, 0, 4);
}

/* Feed bytes to a stream transport, then end the stream. */
static int stream_after(const uint8_t *bytes, size_t n, int *frames_out)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    jktcp_transport *t;
    cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_STREAM, &t), 0);
    write_full(sv[1], bytes, n);
    close(sv[1]);
    const uint8_t *f;
    size_t len;
    int r, frames = 0;
    while ((r = jk_transport_recv(t, &f, &len)) == 1)
        frames++;
    cr_assert_eq(jk_transport_recv(t, &f, &len), r, "failure must be sticky");
    jktcp_transport_free(t);
    close(sv[0]);
    *frames_out = frames;
    return r;
}

Test(transport, stream_bad_version_is_eproto)
{
    uint8_t buf[100];
    uint64_t rng = 5;
    make_frame(buf, 60, 4, 0, &rng);
    buf[60] = 0x55; /* version 5 where the next frame should start */
    int frames;
    cr_assert_eq(stream_after(buf, sizeof buf, &frames), -EPROTO);
    cr_assert_eq(frames, 1);
}

Test(transport, stream_short_ipv4_length_is_eproto)
{
    uint8_t buf[40] = {0x45, 0, 0, 19};
    int frames;
    cr_assert_eq(stream_after(buf, sizeof buf, &frames), -EPROTO);
    cr_assert_eq(frames, 0);
}

Test(transport, stream_eof_mid_frame_is_epipe)
{
    uint8_t buf[200];
    uint64_t rng = 6;
    make_frame(buf, 100, 6, 0, &rng);
    make_frame(buf + 100, 100, 4, 1, &rng);
    int frames;
    cr_assert_eq(stream_after(buf, 150, &frames), -EPIPE);
    cr_assert_eq(frames, 1);
}

Test(transport, stream_eof_is_epipe)
{
    uint8_t buf[100];
    uint64_t rng = 7;
    make_frame(buf, 100, 4, 0, &rng);
    int frames;
    cr_assert_eq(stream_after(buf, 100, &frames), -EPIPE);
    cr_assert_eq(frames, 1);
    cr_assert_eq(stream_after(buf, 0, &frames), -EPIPE);
    cr_assert_eq(frames, 0);
}

Test(transport, stream_nothing_ready_returns_zero)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    jktcp_transport *t;
    cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_STREAM, &t), 0);
    cr_assert(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    const uint8_t *f;
    size_t len;
    cr_assert_eq(jk_transport_recv(t, &f, &len), 0);
    uint8_t half[3] = {0x45, 0, 0};
    write_full(sv[1], half, sizeof half);
    cr_assert_eq(jk_transport_recv(t, &f, &len), 0);
    cr_assert_eq(jk_transport_poll_events(t), POLLIN);
    jktcp_transport_free(t);
    close(sv[0]);
    close(sv[1]);
}

/* ---- packet framing over SOCK_SEQPACKET ---------------------------------- */

static void *seqpacket_writer(void *arg)
{
    struct writer *w = arg;
    for (size_t i = 0; i < w->fs->n; i++)
        if (write(w->fd, w->fs->data + w->fs->off[i], w->fs->len[i]) != (ssize_t)w->fs->len[i])
            abort();
    close(w->fd);
    return NULL;
}

Test(transport, seqpacket_receive, .timeout = 60)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    struct frames fs = frames_make(300, 8);
    jktcp_transport *t;
    cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_PACKET, &t), 0);
    cr_assert_eq(jk_transport_framing(t), JKTCP_FRAMING_PACKET);
    struct writer w = {.fd = sv[1], .fs = &fs};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, seqpacket_writer, &w), 0);
    cr_assert_eq(recv_all(t, &fs), -EPIPE);
    pthread_join(th, NULL);
    jktcp_transport_free(t);
    close(sv[0]);
    frames_free(&fs);
}

Test(transport, seqpacket_send_and_backpressure, .timeout = 60)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    struct frames fs = frames_make(20, 9);
    jktcp_transport *t;
    cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_PACKET, &t), 0);
    uint8_t *buf = malloc(JK_MAX_FRAME + 1);
    for (size_t i = 0; i < fs.n; i++) {
        cr_assert_eq(jk_transport_send(t, fs.data + fs.off[i], fs.len[i]), 0);
        ssize_t n = read(sv[1], buf, JK_MAX_FRAME + 1);
        expect_frame(&fs, i, buf, (size_t)n);
    }
    cr_assert_not(jk_transport_pending(t));
    cr_assert_eq(jk_transport_flush(t), 0);
    /* Fill the socket: the refused frame is not taken, POLLOUT is asked. */
    int r, sent = 0;
    while ((r = jk_transport_send(t, fs.data, fs.len[0])) == 0)
        sent++;
    cr_assert_eq(r, -EAGAIN);
    cr_assert(jk_transport_poll_events(t) & POLLOUT);
    for (; sent > 0; sent--)
        cr_assert_eq(read(sv[1], buf, JK_MAX_FRAME + 1), (ssize_t)fs.len[0]);
    cr_assert_gt(wait_fd(sv[0], POLLOUT, 5000), 0);
    cr_assert_eq(jk_transport_send(t, fs.data, fs.len[0]), 0);
    cr_assert_eq(jk_transport_poll_events(t), POLLIN);
    free(buf);
    jktcp_transport_free(t);
    close(sv[0]);
    close(sv[1]);
    frames_free(&fs);
}

/* A closed peer must give -EPIPE, not SIGPIPE (which would kill the test). */
Test(transport, send_to_closed_peer_is_epipe)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    jktcp_transport *t;
    cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_STREAM, &t), 0);
    close(sv[1]);
    uint8_t buf[60];
    uint64_t rng = 10;
    make_frame(buf, sizeof buf, 4, 0, &rng);
    cr_assert_eq(jk_transport_send(t, buf, sizeof buf), -EPIPE);
    cr_assert_eq(jk_transport_send(t, buf, sizeof buf), -EPIPE, "sticky");
    cr_assert_eq(jk_transport_flush(t), -EPIPE);
    jktcp_transport_free(t);
    close(sv[0]);
}

/* ---- send through recording caller ops ----------------------------------- */

/* W_TRICKLE: few or many bytes, sometimes -EAGAIN; W_SOME: 10 bytes. */
enum wmode { W_ALL, W_TRICKLE, W_SOME, W_BLOCK, W_FAIL };

struct rec {
    enum wmode mode;
    uint64_t rng;
    uint8_t *sink;
    size_t sink_len, sink_cap;
    size_t calls, call_off[100000], call_len[100000];
    const uint8_t *rdata; /* read side: bytes to hand out, then EOF */
    size_t rlen, rpos, rchunk;
    int closed;
    int efd;
};

static ssize_t rec_write(void *ctx, const void *buf, size_t len)
{
    struct rec *r = ctx;
    if (r->mode == W_BLOCK || (r->mode == W_TRICKLE && rng_next(&r->rng) % 10 < 3))
        return -EAGAIN;
    if (r->mode == W_FAIL)
        return -ECONNRESET;
    size_t n = len;
    if (r->mode == W_SOME)
        n = 10;
    else if (r->mode == W_TRICKLE)
        n = rng_range(&r->rng, 1, rng_next(&r->rng) & 1 ? 7 : 8192);
    n = n < len ? n : len;
    cr_assert_leq(r->sink_len + n, r->sink_cap);
    cr_assert_lt(r->calls, 100000);
    memcpy(r->sink + r->sink_len, buf, n);
    r->call_off[r->calls] = r->sink_len;
    r->call_len[r->calls++] = n;
    r->sink_len += n;
    return (ssize_t)n;
}

static ssize_t rec_read(void *ctx, void *buf, size_t len)
{
    struct rec *r = ctx;
    if (r->rpos == r->rlen)
        return 0;
    size_t n = r->rlen - r->rpos;
    n = n < len ? n : len;
    n = n < r->rchunk ? n : r->rchunk;
    memcpy(buf, r->rdata + r->rpos, n);
    r->rpos += n;
    return (ssize_t)n;
}

static void rec_close(void *ctx) { ((struct rec *)ctx)->closed++; }

static struct rec *rec_new(size_t cap)
{
    struct rec *r = calloc(1, sizeof *r);
    cr_assert(r);
    r->sink = malloc(cap);
    r->sink_cap = cap;
    r->rng = 11;
    r->rchunk = SIZE_MAX;
    r->efd = eventfd(0, EFD_CLOEXEC);
    return r;
}

static void rec_free(struct rec *r)
{
    close(r->efd);
    free(r->sink);
    free(r);
}

static jktcp_transport *ops_transport(struct rec *r, int framing, unsigned flags)
{
    jktcp_io_ops ops = {rec_read, rec_write, rec_close, r->efd};
    jktcp_transport *t;
    cr_assert_eq(jktcp_transport_ops(&ops, sizeof ops, r, framing, &t), 0);
    cr_assert_eq(jktcp_transport_set_flags(t, flags), 0);
    cr_assert_eq(jk_transport_poll_fd(t), r->efd);
    return t;
}

/* Every write call stays inside one frame: no frame shares a write. */
static void expect_no_write_spans_frames(const struct rec *r, const struct frames *fs)
{
    size_t f = 0;
    for (size_t c = 0; c < r->calls; c++) {
        while (r->call_off[c] >= fs->off[f] + fs->len[f])
            f++;
        cr_assert_leq(r->call_off[c] + r->call_len[c], fs->off[f] + fs->len[f],
                      "write %zu crosses the end of frame %zu", c, f);
    }
}

Test(transport, stream_one_write_per_frame)
{
    struct frames fs = frames_make(60, 12);
    struct rec *r = rec_new(fs.total);
    jktcp_transport *t = ops_transport(r, JKTCP_FRAMING_STREAM, 0);
    for (size_t i = 0; i < fs.n; i++)
        cr_assert_eq(jk_transport_send(t, fs.data + fs.off[i], fs.len[i]), 0);
    cr_assert_eq(r->calls, fs.n);
    for (size_t i = 0; i < fs.n; i++)
        cr_assert_eq(r->call_len[i], fs.len[i]);
    cr_assert_eq(r->sink_len, fs.total);
    cr_assert(memcmp(r->sink, fs.data, fs.total) == 0);
    cr_assert_not(jk_transport_pending(t));
    jktcp_transport_free(t);
    cr_assert_eq(r->closed, 1);
    rec_free(r);
    frames_free(&fs);
}

Test(transport, stream_coalesce_batches_writes)
{
    struct frames fs = frames_make(400, 13);
    struct rec *r = rec_new(fs.total);
    jktcp_transport *t = ops_transport(r, JKTCP_FRAMING_STREAM, JKTCP_TRANSPORT_COALESCE);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(jk_transport_send(t, fs.data + fs.off[i], fs.len[i]), 0);
    cr_assert_eq(r->calls, 0, "coalesced frames wait for flush");
    cr_assert(jk_transport_pending(t));
    cr_assert(jk_transport_poll_events(t) & POLLOUT);
    cr_assert_eq(jk_transport_flush(t), 0);
    cr_assert_eq(r->calls, 1);
    cr_assert_eq(r->call_len[0], fs.off[10]);
    /* More than the buffer holds: it writes when full, still in order. */
    for (size_t i = 10; i < fs.n; i++)
        cr_assert_eq(jk_transport_send(t, fs.data + fs.off[i], fs.len[i]), 0);
    cr_assert_eq(jk_transport_flush(t), 0);
    cr_assert_not(jk_transport_pending(t));
    cr_assert_eq(r->sink_len, fs.total);
    cr_assert(memcmp(r->sink, fs.data, fs.total) == 0);
    cr_assert_lt(r->calls, fs.n / 4);
    jktcp_transport_free(t);
    rec_free(r);
    frames_free(&fs);
}

/* Writes that take a few bytes at a time and sometimes block. */
static void trickle(unsigned flags, uint64_t seed)
{
    struct frames fs = frames_make(50, seed);
    struct rec *r = rec_new(fs.total);
    r->mode = W_TRICKLE;
    r->rng = seed;
    jktcp_transport *t = ops_transport(r, JKTCP_FRAMING_STREAM, flags);
    for (size_t i = 0; i < fs.n; i++) {
        int s;
        while ((s = jk_transport_send(t, fs.data + fs.off[i], fs.len[i])) == -EAGAIN) {
            cr_assert(jk_transport_poll_events(t) & POLLOUT);
            int f = jk_transport_flush(t);
            cr_assert(f == 0 || f == -EAGAIN);
        }
        cr_assert_eq(s, 0);
    }
    int f;
    while ((f = jk_transport_flush(t)) == -EAGAIN)
        cr_assert(jk_transport_pending(t));
    cr_assert_eq(f, 0);
    cr_assert_eq(r->sink_len, fs.total);
    cr_assert(memcmp(r->sink, fs.data, fs.total) == 0);
    if (!(flags & JKTCP_TRANSPORT_COALESCE))
        expect_no_write_spans_frames(r, &fs);
    jktcp_transport_free(t);
    rec_free(r);
    frames_free(&fs);
}

Test(transport, stream_partial_writes_deliver_in_order, .timeout = 60)
{
    trickle(0, 14);
    trickle(JKTCP_TRANSPORT_COALESCE, 15);
}

Test(transport, stream_send_refused_while_held)
{
    uint8_t a[300], b[200];
    uint64_t rng = 16;
    make_frame(a, sizeof a, 4, 0, &rng);
    make_frame(b, sizeof b, 6, 1, &rng);
    struct rec *r = rec_new(1000);
    jktcp_transport *t = ops_transport(r, JKTCP_FRAMING_STREAM, 0);
    r->mode = W_SOME;
    cr_assert_eq(jk_transport_send(t, a, sizeof a), 0);
    cr_assert(jk_transport_pending(t), "a few-byte write leaves the rest held");
    r->mode = W_BLOCK;
    cr_assert_eq(jk_transport_send(t, b, sizeof b), -EAGAIN);
    cr_assert_eq(jk_transport_flush(t), -EAGAIN);
    cr_assert(jk_transport_poll_events(t) & POLLOUT);
    r->mode = W_ALL;
    cr_assert_eq(jk_transport_send(t, b, sizeof b), 0, "held bytes go first, then b");
    cr_assert_not(jk_transport_pending(t));
    cr_assert_eq(r->sink_len, sizeof a + sizeof b);
    cr_assert(memcmp(r->sink, a, sizeof a) == 0);
    cr_assert(memcmp(r->sink + sizeof a, b, sizeof b) == 0);
    cr_assert_eq(r->call_len[r->calls - 1], sizeof b);
    jktcp_transport_free(t);
    rec_free(r);
}

Test(transport, ops_write_error_is_sticky)
{
    uint8_t a[100];
    uint64_t rng = 17;
    make_frame(a, sizeof a, 4, 0, &rng);
    struct rec *r = rec_new(1000);
    r->mode = W_FAIL;
    jktcp_transport *t = ops_transport(r, JKTCP_FRAMING_STREAM, 0);
    cr_assert_eq(jk_transport_send(t, a, sizeof a), -ECONNRESET);
    r->mode = W_ALL;
    cr_assert_eq(jk_transport_send(t, a, sizeof a), -ECONNRESET);
    cr_assert_eq(jk_transport_flush(t), -ECONNRESET);
    cr_assert_eq(r->calls, 0);
    jktcp_transport_free(t);
    rec_free(r);
}

Test(transport, ops_stream_read_split_and_eof)
{
    struct frames fs = frames_make(30, 18);
    struct rec *r = rec_new(16);
    r->rdata = fs.data;
    r->rlen = fs.total;
    r->rchunk = 333;
    jktcp_transport *t = ops_transport(r, JKTCP_FRAMING_STREAM, 0);
    cr_assert_eq(recv_all(t, &fs), -EPIPE);
    jktcp_transport_free(t);
    rec_free(r);
    frames_free(&fs);
}

Test(transport, ops_packet_frames)
{
    uint8_t a[100];
    uint64_t rng = 19;
    make_frame(a, sizeof a, 4, 0, &rng);
    struct rec *r = rec_new(1000);
    r->rdata = a;
    r->rlen = sizeof a;
    jktcp_transport *t = ops_transport(r, JKTCP_FRAMING_PACKET, 0);
    const uint8_t *f;
    size_t len;
    cr_assert_eq(jk_transport_recv(t, &f, &len), 1);
    cr_assert_eq(len, sizeof a);
    cr_assert_eq(jk_transport_recv(t, &f, &len), -EPIPE);
    cr_assert_eq(jk_transport_send(t, a, sizeof a), 0);
    r->mode = W_BLOCK;
    cr_assert_eq(jk_transport_send(t, a, sizeof a), -EAGAIN);
    cr_assert_eq(jk_transport_poll_events(t), POLLIN | POLLOUT);
    cr_assert_not(jk_transport_pending(t), "packet framing never holds a frame");
    jktcp_transport_free(t);
    rec_free(r);
}

/* ---- arguments, flags, ownership ---------------------------------------- */

Test(transport, ops_bad_args)
{
    int efd = eventfd(0, 0);
    jktcp_io_ops ok = {rec_read, rec_write, NULL, efd}, bad;
    jktcp_transport *t = (jktcp_transport *)&ok;
    cr_assert_eq(jktcp_transport_ops(NULL, 0, NULL, JKTCP_FRAMING_STREAM, &t), -EINVAL);
    cr_assert_null(t);
    cr_assert_eq(jktcp_transport_ops(&ok, sizeof ok, NULL, JKTCP_FRAMING_STREAM, NULL), -EINVAL);
    cr_assert_eq(jktcp_transport_ops(&ok, sizeof ok, NULL, 0, &t), -EINVAL);
    cr_assert_eq(jktcp_transport_ops(&ok, sizeof ok, NULL, 3, &t), -EINVAL);
    bad = ok;
    bad.read = NULL;
    cr_assert_eq(jktcp_transport_ops(&bad, sizeof bad, NULL, JKTCP_FRAMING_STREAM, &t), -EINVAL);
    bad = ok;
    bad.write = NULL;
    cr_assert_eq(jktcp_transport_ops(&bad, sizeof bad, NULL, JKTCP_FRAMING_STREAM, &t), -EINVAL);
    bad = ok;
    bad.poll_fd = -1;
    cr_assert_eq(jktcp_transport_ops(&bad, sizeof bad, NULL, JKTCP_FRAMING_PACKET, &t), -EINVAL);
    cr_assert_eq(jktcp_transport_ops(&ok, sizeof ok, NULL, JKTCP_FRAMING_PACKET, &t), 0);
    jktcp_transport_free(t);
    jktcp_transport_free(NULL);
    close(efd);
}

Test(transport, fd_bad_args)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    jktcp_transport *t;
    cr_assert_eq(jktcp_transport_fd(-1, JKTCP_FRAMING_STREAM, &t), -EINVAL);
    cr_assert_eq(jktcp_transport_fd(sv[0], 0, &t), -EINVAL);
    cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_STREAM, NULL), -EINVAL);
    cr_assert_eq(jktcp_transport_fd2(sv[0], -1, JKTCP_FRAMING_STREAM, &t), -EINVAL);
    cr_assert_eq(jktcp_transport_fd2(-1, sv[0], JKTCP_FRAMING_PACKET, &t), -EINVAL);
    int closed = dup(sv[0]);
    close(closed);
    cr_assert_eq(jktcp_transport_fd(closed, JKTCP_FRAMING_STREAM, &t), -EINVAL);
    close(sv[0]);
    close(sv[1]);
}

Test(transport, set_flags)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    jktcp_transport *t;
    cr_assert_eq(jktcp_transport_fd(sv[0], JKTCP_FRAMING_STREAM, &t), 0);
    cr_assert_eq(jktcp_transport_set_flags(t, 1u << 2), -EINVAL);
    cr_assert_eq(jktcp_transport_set_flags(t, ~0u), -EINVAL);
    cr_assert_eq(jktcp_transport_set_flags(NULL, 0), -EINVAL);
    cr_assert_eq(jktcp_transport_set_flags(t, JKTCP_TRANSPORT_COALESCE), 0);
    cr_assert_eq(jktcp_transport_set_flags(t, JKTCP_TRANSPORT_CLOSE_FD), 0);
    jktcp_transport_free(t);
    errno = 0;
    cr_assert_eq(fcntl(sv[0], F_GETFD), -1, "CLOSE_FD closes the fd");
    cr_assert_eq(errno, EBADF);
    cr_assert_geq(fcntl(sv[1], F_GETFD), 0);
    close(sv[1]);
}

/* Separate pipes: the poll fd must also wake when the write pipe drains. */
Test(transport, fd2_pipes_poll_for_writability, .timeout = 30)
{
    int in[2], out[2];
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    jktcp_transport *t;
    cr_assert_eq(jktcp_transport_fd2(in[0], out[1], JKTCP_FRAMING_STREAM, &t), 0);
    int pfd = jk_transport_poll_fd(t);
    cr_assert_eq(jk_transport_poll_events(t), POLLIN);
    uint8_t f[1000], sink[4096];
    uint64_t rng = 20;
    make_frame(f, sizeof f, 4, 0, &rng);
    int r;
    while ((r = jk_transport_send(t, f, sizeof f)) == 0)
        ;
    cr_assert_eq(r, -EAGAIN);
    cr_assert_eq(wait_fd(pfd, POLLIN, 0), 0, "pipe full, nothing to read");
    while (wait_fd(out[0], POLLIN, 0) > 0)
        cr_assert_gt(read(out[0], sink, sizeof sink), 0);
    cr_assert_gt(wait_fd(pfd, POLLIN, 5000), 0, "writability wakes the poll fd");
    cr_assert_eq(jk_transport_send(t, f, sizeof f), 0);
    cr_assert_eq(wait_fd(pfd, POLLIN, 0), 0, "POLLOUT interest dropped again");
    write_full(in[1], f, sizeof f);
    cr_assert_gt(wait_fd(pfd, POLLIN, 5000), 0);
    const uint8_t *got;
    size_t len;
    cr_assert_eq(jk_transport_recv(t, &got, &len), 1);
    cr_assert_eq(len, sizeof f);
    cr_assert_eq(jktcp_transport_set_flags(t, JKTCP_TRANSPORT_CLOSE_FD), 0);
    jktcp_transport_free(t);
    close(in[1]);
    close(out[0]);
}
