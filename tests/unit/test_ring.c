/* SPDX-License-Identifier: MIT */
/*
 * Suite `ring`: lib/ring.c, the single-producer/single-consumer byte ring
 * behind every send and receive buffer — sizes, full and empty, partial
 * reads and writes, wrap-around of the buffer and of the free-running
 * 32-bit indices, put_at/produce beyond the tail, iovecs, a random run
 * against a plain FIFO, two threads at once (run under TSan too), and
 * trimming: the free pages go back, the held bytes stay.
 */
#include "minitest.h"
#include "ring.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void ring_up(struct jk_ring *r, uint32_t size)
{
    JT_ASSERT(jk_ring_init(r, size) == 0, "init %u", size);
}

static void fill(uint8_t *p, uint32_t n, uint32_t seed)
{
    for (uint32_t i = 0; i < n; i++)
        p[i] = (uint8_t)((seed + i) * 131u >> 3);
}

/* Put the ring's indices at pos (an empty ring anywhere in index space). */
static void seek(struct jk_ring *r, uint32_t pos)
{
    atomic_store(&r->head, pos);
    atomic_store(&r->tail, pos);
}

JT_TEST(ring, sizes, 10)
{
    struct jk_ring r;
    static const struct {
        uint32_t ask, size, cap;
    } cases[] = {
        {0, 4096, 1}, {1, 4096, 1}, {4096, 4096, 4096}, {4097, 8192, 4097}, {5000, 8192, 5000},
        {1u << 20, 1u << 20, 1u << 20},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ring_up(&r, cases[i].ask);
        JT_ASSERT(r.size == cases[i].size && r.mask == r.size - 1 && r.cap == cases[i].cap,
                  "ask %u: size %u cap %u", cases[i].ask, r.size, r.cap);
        JT_ASSERT(jk_ring_used(&r) == 0 && jk_ring_free_space(&r) == r.cap, "empty");
        jk_ring_free(&r);
        JT_ASSERT(r.buf == NULL, "freed");
    }
    JT_ASSERT(jk_ring_init(&r, (1u << 30) + 1) == -EINVAL, "over 1 GiB: -EINVAL");
}

JT_TEST(ring, full_and_empty, 10)
{
    struct jk_ring r;
    ring_up(&r, 5000); /* cap below the allocation: the cap bounds it */
    static uint8_t in[6000], out[6000];
    fill(in, sizeof in, 7);
    JT_ASSERT(jk_ring_read(&r, out, 10) == 0, "empty: read 0");
    JT_ASSERT(jk_ring_write(&r, in, 6000) == 5000, "write is cut at cap");
    JT_ASSERT(jk_ring_used(&r) == 5000 && jk_ring_free_space(&r) == 0, "full");
    JT_ASSERT(jk_ring_write(&r, in, 1) == 0, "full: write 0");
    JT_ASSERT(jk_ring_read(&r, out, 6000) == 5000 && !memcmp(in, out, 5000), "read it all");
    JT_ASSERT(jk_ring_used(&r) == 0 && jk_ring_read(&r, out, 1) == 0, "empty again");
    JT_ASSERT(jk_ring_write(&r, in, 0) == 0 && jk_ring_read(&r, out, 0) == 0, "zero lengths");
    jk_ring_free(&r);

    ring_up(&r, 0); /* cap 1 */
    JT_ASSERT(jk_ring_write(&r, in, 2) == 1 && jk_ring_write(&r, in, 1) == 0, "cap 1");
    JT_ASSERT(jk_ring_read(&r, out, 2) == 1 && out[0] == in[0], "one byte");
    jk_ring_free(&r);
}

JT_TEST(ring, partial_reads_and_writes, 10)
{
    struct jk_ring r;
    ring_up(&r, 4096);
    static uint8_t in[4096], out[4096];
    fill(in, sizeof in, 1);
    JT_ASSERT(jk_ring_write(&r, in, 100) == 100, "write 100");
    JT_ASSERT(jk_ring_write(&r, in + 100, 50) == 50, "write 50");
    JT_ASSERT(jk_ring_read(&r, out, 30) == 30 && jk_ring_used(&r) == 120, "read 30");
    JT_ASSERT(jk_ring_read(&r, out + 30, 200) == 120 && jk_ring_used(&r) == 0, "read the rest");
    JT_ASSERT(!memcmp(in, out, 150), "bytes in order");
    jk_ring_free(&r);
}

JT_TEST(ring, wraps_around_the_buffer, 10)
{
    struct jk_ring r;
    ring_up(&r, 4096);
    static uint8_t in[4096], out[4096];
    for (uint32_t start = 0; start < 4096; start += 509) {
        seek(&r, start);
        fill(in, sizeof in, start);
        memset(out, 0, sizeof out);
        JT_ASSERT(jk_ring_write(&r, in, 4096) == 4096, "fill from %u", start);
        JT_ASSERT(jk_ring_read(&r, out, 4096) == 4096 && !memcmp(in, out, 4096),
                  "read back from %u", start);
    }
    seek(&r, 4000);
    jk_ring_put_at(&r, 4000, in, 200); /* 96 bytes at the end, 104 at the start */
    jk_ring_get_at(&r, 4000, out, 200);
    JT_ASSERT(!memcmp(in, out, 200), "put_at/get_at across the end");
    JT_ASSERT(!memcmp(r.buf, in + 96, 104) && !memcmp(r.buf + 4000, in, 96), "placed by mask");
    jk_ring_free(&r);
}

JT_TEST(ring, indices_wrap_at_2_32, 10)
{
    struct jk_ring r;
    ring_up(&r, 5000);
    static uint8_t in[5000], out[5000];
    fill(in, sizeof in, 3);
    seek(&r, UINT32_MAX - 1000);
    JT_ASSERT(jk_ring_write(&r, in, 5000) == 5000, "write across 2^32");
    JT_ASSERT(jk_ring_used(&r) == 5000 && jk_ring_free_space(&r) == 0, "used across 2^32");
    JT_ASSERT(atomic_load(&r.tail) == 5000 - 1001, "tail wrapped");
    JT_ASSERT(jk_ring_read(&r, out, 2000) == 2000 && jk_ring_used(&r) == 3000, "partial read");
    JT_ASSERT(jk_ring_read(&r, out + 2000, 3000) == 3000 && !memcmp(in, out, 5000), "in order");
    jk_ring_free(&r);
}

JT_TEST(ring, iov_describes_one_or_two_parts, 10)
{
    struct jk_ring r;
    ring_up(&r, 4096);
    struct iovec iov[2];
    JT_ASSERT(jk_ring_iov(&r, 10, 0, iov) == 0, "empty range");
    JT_ASSERT(jk_ring_iov(&r, 10, 100, iov) == 1 && iov[0].iov_base == r.buf + 10 &&
                  iov[0].iov_len == 100, "inside");
    JT_ASSERT(jk_ring_iov(&r, 4000, 96, iov) == 1 && iov[0].iov_len == 96, "up to the end");
    JT_ASSERT(jk_ring_iov(&r, 4096 * 3 + 4000, 200, iov) == 2 && iov[0].iov_base == r.buf + 4000 &&
                  iov[0].iov_len == 96 && iov[1].iov_base == r.buf && iov[1].iov_len == 104,
              "across the end (any lap)");
    jk_ring_free(&r);
}

/* The receive side: bytes placed beyond the tail (out of order) are not
 * readable until produced; the send side: consume drops acknowledged bytes. */
JT_TEST(ring, put_beyond_tail_then_produce, 10)
{
    struct jk_ring r;
    ring_up(&r, 4096);
    uint8_t in[300], out[300];
    fill(in, sizeof in, 9);
    seek(&r, 4090);
    jk_ring_put_at(&r, 4090 + 100, in + 100, 200); /* a later island first */
    JT_ASSERT(jk_ring_used(&r) == 0, "not published");
    jk_ring_put_at(&r, 4090, in, 100); /* the hole fills */
    jk_ring_produce(&r, 300);
    JT_ASSERT(jk_ring_used(&r) == 300, "published");
    jk_ring_consume(&r, 50);
    JT_ASSERT(jk_ring_used(&r) == 250, "consumed 50");
    JT_ASSERT(jk_ring_read(&r, out, 300) == 250 && !memcmp(out, in + 50, 250), "the rest");
    jk_ring_free(&r);
}

/* xorshift32 */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

JT_TEST(ring, random_against_a_fifo, 20)
{
    struct jk_ring r;
    ring_up(&r, 6000);
    static uint8_t model[6000], buf[7000];
    uint32_t used = 0, wseq = 0, s = 12345;
    seek(&r, UINT32_MAX - 50000); /* the indices wrap during the run */
    for (int op = 0; op < 100000; op++) {
        uint32_t n = rnd(&s) % 7000;
        if (rnd(&s) & 1) {
            for (uint32_t i = 0; i < n; i++)
                buf[i] = (uint8_t)(wseq + i);
            uint32_t w = jk_ring_write(&r, buf, n);
            uint32_t want = n < 6000 - used ? n : 6000 - used;
            JT_ASSERT(w == want, "op %d: wrote %u of %u, want %u", op, w, n, want);
            for (uint32_t i = 0; i < w; i++)
                model[used + i] = (uint8_t)(wseq + i);
            used += w;
            wseq += w;
        } else {
            uint32_t got = jk_ring_read(&r, buf, n);
            uint32_t want = n < used ? n : used;
            JT_ASSERT(got == want && !memcmp(buf, model, got), "op %d: read %u, want %u", op, got,
                      want);
            memmove(model, model + got, used - got);
            used -= got;
        }
        JT_ASSERT(jk_ring_used(&r) == used, "op %d: used %u, want %u", op, jk_ring_used(&r), used);
    }
    jk_ring_free(&r);
}

/* ---- two threads ------------------------------------------------------- */

#define SPSC_BYTES (16u << 20)

static struct jk_ring spsc;

static void *producer(void *arg)
{
    (void)arg;
    uint8_t buf[3000];
    uint32_t seq = 0, s = 99;
    while (seq < SPSC_BYTES) {
        uint32_t n = 1 + rnd(&s) % sizeof buf;
        if (n > SPSC_BYTES - seq)
            n = SPSC_BYTES - seq;
        for (uint32_t i = 0; i < n; i++)
            buf[i] = (uint8_t)((seq + i) * 7u);
        uint32_t w = jk_ring_write(&spsc, buf, n);
        seq += w;
        if (w < n)
            sched_yield();
    }
    return NULL;
}

JT_TEST(ring, one_producer_one_consumer, 60)
{
    ring_up(&spsc, 8192);
    pthread_t th;
    JT_ASSERT(pthread_create(&th, NULL, producer, NULL) == 0, "pthread_create");
    uint8_t buf[5000];
    uint32_t seq = 0, s = 7, bad = 0;
    while (seq < SPSC_BYTES) {
        uint32_t got = jk_ring_read(&spsc, buf, 1 + rnd(&s) % sizeof buf);
        for (uint32_t i = 0; i < got; i++)
            bad += buf[i] != (uint8_t)((seq + i) * 7u);
        seq += got;
        if (!got)
            sched_yield();
    }
    pthread_join(th, NULL);
    JT_ASSERT(bad == 0, "%u bytes differ", bad);
    JT_ASSERT(jk_ring_used(&spsc) == 0, "drained");
    jk_ring_free(&spsc);
}

/* Pages of r's buffer in memory (mincore). */
static size_t ring_resident(const struct jk_ring *r)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE), n = (r->size + ps - 1) / ps, in = 0;
    unsigned char v[256];
    JT_ASSERT(n <= sizeof v && mincore(r->buf, r->size, v) == 0, "mincore");
    for (size_t i = 0; i < n; i++)
        in += v[i] & 1;
    return in;
}

JT_TEST(ring, trim_gives_back_free_pages_only, 10)
{
    struct jk_ring r;
    ring_up(&r, 256 * 1024);
    static uint8_t in[256 * 1024], out[256 * 1024];
    fill(in, sizeof in, 9);
    seek(&r, 0xffffffffu - 100000); /* the held bytes wrap the buffer and the indices */
    JT_ASSERT(jk_ring_write(&r, in, sizeof in) == sizeof in, "fill");
    JT_ASSERT(jk_ring_read(&r, out, 200000) == 200000, "read most");
    size_t before = ring_resident(&r);
    jk_ring_trim(&r);
    size_t after = ring_resident(&r), ps = (size_t)sysconf(_SC_PAGESIZE);
    JT_ASSERT(before == r.size / ps, "every page was touched: %zu", before);
    JT_ASSERT(after <= (sizeof in - 200000) / ps + 2, "held bytes' pages only: %zu", after);
    JT_ASSERT(jk_ring_read(&r, out + 200000, sizeof in) == sizeof in - 200000, "the rest");
    JT_ASSERT(memcmp(in, out, sizeof in) == 0, "no held byte lost");
    jk_ring_trim(&r);
    JT_ASSERT(ring_resident(&r) == 0, "empty: every page goes");
    JT_ASSERT(jk_ring_write(&r, in, 5000) == 5000 && jk_ring_read(&r, out, 5000) == 5000 &&
                  memcmp(in, out, 5000) == 0,
              "usable again");
    jk_ring_free(&r);
}
