/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the stream framer (JKTCP_FRAMING_STREAM) of a caller-ops
 * transport. The read callback hands the input out in chunk sizes chosen
 * by the input's first bytes, with -EAGAIN now and then; every frame
 * jk_transport_recv returns is compared with an independent split of the
 * byte stream by jk_frame_length. Each frame is then sent back through the
 * same transport (one write() per frame, or coalesced) to a write callback
 * that takes partial writes and -EAGAIN; the written stream must be the
 * frames back to back.
 *
 * Input: [flags][8 read-chunk codes][8 write-chunk codes] stream bytes... */
#include "fuzz_common.h"
#include "transport.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct feed {
    const uint8_t *data;
    size_t len, off;
    uint8_t rcode[8], wcode[8];
    unsigned ri, wi;
    bool ragain, wagain; /* the previous call returned -EAGAIN */
    bool coalesce;

    uint8_t *out; /* what the transport wrote */
    size_t out_len, out_cap;
    /* ends of the frames handed to jk_transport_send, in stream offsets */
    size_t *ends;
    size_t nends, ends_cap, cur; /* cur: the frame the next written byte belongs to */
};

/* Chunk size for a code: 0 = -EAGAIN (never twice in a row), else small
 * sizes, frame-ish sizes or everything. */
static size_t chunk_of(uint8_t code, size_t len, bool *again, bool last_again)
{
    *again = false;
    if (code == 0 && !last_again) {
        *again = true;
        return 0;
    }
    size_t n;
    switch (code >> 6) {
    case 0: n = (code & 63) + 1; break;               /* 1..64 */
    case 1: n = ((size_t)(code & 63) + 1) * 97; break;  /* ~100..6200 */
    case 2: n = ((size_t)(code & 63) + 1) * 4099; break; /* ~4k..260k */
    default: n = len; break;
    }
    return n < len ? n : len;
}

static ssize_t f_read(void *ctx, void *buf, size_t len)
{
    struct feed *f = ctx;
    bool again;
    size_t n = chunk_of(f->rcode[f->ri++ % 8], len, &again, f->ragain);
    f->ragain = again;
    if (again)
        return -EAGAIN;
    if (f->off == f->len)
        return 0;
    if (n > f->len - f->off)
        n = f->len - f->off;
    memcpy(buf, f->data + f->off, n);
    f->off += n;
    return (ssize_t)n;
}

static ssize_t f_write(void *ctx, const void *buf, size_t len)
{
    struct feed *f = ctx;
    FZ_CHECK(len > 0, "empty write");
    FZ_CHECK(f->nends > 0 && f->ends[f->nends - 1] >= f->out_len + len,
             "write of %zu at %zu runs past the frames given (%zu)", len, f->out_len,
             f->nends ? f->ends[f->nends - 1] : 0);
    while (f->cur < f->nends && f->ends[f->cur] <= f->out_len)
        f->cur++;
    if (!f->coalesce)
        FZ_CHECK(f->out_len + len <= f->ends[f->cur],
                 "non-coalesced write of %zu at %zu crosses the frame end %zu", len, f->out_len,
                 f->ends[f->cur]);
    bool again;
    size_t n = chunk_of(f->wcode[f->wi++ % 8], len, &again, f->wagain);
    f->wagain = again;
    if (again)
        return -EAGAIN;
    FZ_CHECK(f->out_len + n <= f->out_cap, "output overflow");
    memcpy(f->out + f->out_len, buf, n);
    f->out_len += n;
    return (ssize_t)n;
}

static int poll_fd = -1;

/* Upper bound of what the transport may hold (its STREAM_BUF). */
#define STREAM_HELD_MAX (256u * 1024u + JK_MAX_FRAME)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 17)
        return 0;
    if (poll_fd < 0)
        poll_fd = eventfd(0, EFD_CLOEXEC);
    struct feed f = {0};
    f.coalesce = data[0] & 1;
    memcpy(f.rcode, data + 1, 8);
    memcpy(f.wcode, data + 9, 8);
    f.data = data + 17;
    f.len = size - 17;
    f.out_cap = f.len;
    f.out = malloc(f.out_cap + 1);
    f.ends_cap = f.len / 20 + 2;
    f.ends = malloc(f.ends_cap * sizeof *f.ends);
    FZ_CHECK(f.out && f.ends, "oom");

    jktcp_io_ops ops = {.read = f_read, .write = f_write, .close = NULL, .poll_fd = poll_fd};
    jktcp_transport *t;
    FZ_CHECK(jktcp_transport_ops(&ops, sizeof ops, &f, JKTCP_FRAMING_STREAM, &t) == 0, "transport");
    if (f.coalesce)
        FZ_CHECK(jktcp_transport_set_flags(t, JKTCP_TRANSPORT_COALESCE) == 0, "flags");

    /* Reference split of the whole stream. */
    size_t ref = 0;
    int expect_end = -EPIPE;
    int r;
    size_t last_zero_off = SIZE_MAX;
    for (;;) {
        const uint8_t *frame;
        size_t len;
        r = jk_transport_recv(t, &frame, &len);
        if (r < 0)
            break;
        if (r == 0) {
            /* -EAGAIN from the read callback, never twice without progress. */
            FZ_CHECK(f.off != last_zero_off, "recv makes no progress at %zu", f.off);
            last_zero_off = f.off;
            continue;
        }
        FZ_CHECK(r == 1, "recv returned %d", r);
        long want = jk_frame_length(f.data + ref, f.len - ref);
        FZ_CHECK(want > 0 && (size_t)want <= f.len - ref,
                 "recv gave a frame where the stream has none (ref %ld at %zu)", want, ref);
        FZ_CHECK(len == (size_t)want, "frame of %zu, header says %ld", len, want);
        FZ_CHECK(jk_frame_length(frame, len) == (long)len, "frame's own header disagrees");
        FZ_CHECK(memcmp(frame, f.data + ref, len) == 0, "frame bytes differ at %zu", ref);
        ref += len;

        /* Echo it: the transport takes it whole or not at all. */
        FZ_CHECK(f.nends < f.ends_cap, "ends overflow");
        size_t base = f.nends ? f.ends[f.nends - 1] : 0;
        for (int tries = 0;; tries++) {
            f.ends[f.nends++] = base + len;
            int s = jk_transport_send(t, frame, len);
            if (s == 0)
                break;
            f.nends--;
            FZ_CHECK(s == -EAGAIN, "send returned %d", s);
            /* every flush writes >= 1 byte: -EAGAIN never comes twice in a row */
            FZ_CHECK((size_t)tries <= 2 * (len + STREAM_HELD_MAX) + 8, "send never accepts the frame");
            int fl = jk_transport_flush(t);
            FZ_CHECK(fl == 0 || fl == -EAGAIN, "flush returned %d", fl);
        }
    }
    long tail = ref < f.len ? jk_frame_length(f.data + ref, f.len - ref) : 0;
    if (tail < 0)
        expect_end = -EPROTO;
    FZ_CHECK(r == expect_end, "recv ended with %d, expected %d (at %zu of %zu, next %ld)", r,
             expect_end, ref, f.len, tail);
    FZ_CHECK(jk_transport_recv(t, &(const uint8_t *){0}, &(size_t){0}) == r, "error not sticky");
    if (r == -EPIPE)
        FZ_CHECK(tail == 0 || (size_t)tail > f.len - ref, "EPIPE with a whole frame left");

    for (int tries = 0; jk_transport_pending(t) || tries == 0; tries++) {
        int fl = jk_transport_flush(t);
        FZ_CHECK(fl == 0 || fl == -EAGAIN, "flush returned %d", fl);
        FZ_CHECK((size_t)tries <= 2 * STREAM_HELD_MAX + 8, "flush never finishes");
        if (fl == 0)
            break;
    }
    FZ_CHECK(!jk_transport_pending(t), "output still held");
    FZ_CHECK(f.out_len == ref, "wrote %zu bytes, echoed %zu", f.out_len, ref);
    FZ_CHECK(memcmp(f.out, f.data, ref) == 0, "echoed stream differs");

    jktcp_transport_free(t);
    free(f.out);
    free(f.ends);
    return 0;
}
