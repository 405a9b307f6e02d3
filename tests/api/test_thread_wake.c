/* SPDX-License-Identifier: MIT */
/*
 * Suite `thread`, wakes_*: how often the I/O thread wakes callers blocked
 * on streams. An output pass runs every JK_BATCH frames of a step; with
 * many streams each pass has news for most of them, and a futex wake per
 * stream per pass cost the I/O thread 46% of its time with 64 streams
 * downloading. The wake of a caller already asleep waits, in passes with
 * more input to come in the same step, until the input has drained
 * (stream.c signal_event / jk_io_wake_pending): at most two per stream
 * per step. Against the kernel in a private namespace; built on
 * minitest.h, so it runs under ThreadSanitizer too (make test-tsan).
 */
#include "minitest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jktcp.h"
#include "kserver.h"
#include "netns.h"
#include "streamio.h"
#include "thread_test.h"

enum { NSTREAMS = 16, PER_STREAM = 4 * MiB, CHUNK = 256 * 1024 };

struct reader {
    jktcp_stream s;
    uint32_t seed;
    uint64_t got, bad_at;
    ssize_t end;
    pthread_t th;
};

/* Read to EOF in big reads, checking the pattern. */
static void *reader_main(void *arg)
{
    struct reader *r = arg;
    uint8_t *buf = malloc(CHUNK);
    r->bad_at = UINT64_MAX;
    for (;;) {
        ssize_t n = jktcp_stream_read(r->s, buf, CHUNK, IO_TIMEOUT);
        if (n <= 0) {
            r->end = n;
            break;
        }
        size_t at = jkt_pattern_check(buf, (size_t)n, r->got, r->seed);
        if (at != (size_t)n && r->bad_at == UINT64_MAX)
            r->bad_at = r->got + at;
        r->got += (uint64_t)n;
    }
    free(buf);
    return NULL;
}

/* 16 kernel sources send 4 MiB each at once to 16 readers, all data
 * verified. The frames of a step are spread over the streams, so a wake
 * per stream per output pass comes every few frames; at most two per
 * stream per step are far fewer (measured on 2 cores: one per 23.6-24.0
 * frames with the wake at each pass, one per 63-67 now; asserted one per
 * 32, and by design at most two per stream per turn of the I/O loop). */
JT_TEST(thread, wakes_callers_once_per_step, 120)
{
    struct tt t;
    tt_up(&t, AF_INET6, 1500);
    /* 256 KiB windows: most of the data comes while the readers read
     * (with 4 MiB ones it would all be buffered before they start) */
    jktcp_handle h = tt_handle(&t, NULL, 0, 256 * 1024);
    struct jkt_server srv = {.nbytes = PER_STREAM, .seed = 0x3A3A};
    server_up(&t, &srv, JKT_SRV_SOURCE);
    struct reader r[NSTREAMS];
    memset(r, 0, sizeof r);
    for (int i = 0; i < NSTREAMS; i++) {
        r[i].s = connect_ok(h, srv.port);
        r[i].seed = srv.seed;
    }
    jktcp_stats st0, st1;
    JT_ASSERT(jktcp_handle_stats(h, &st0, sizeof st0) == 0, "stats");
    for (int i = 0; i < NSTREAMS; i++)
        start_thread(&r[i].th, reader_main, &r[i]);
    for (int i = 0; i < NSTREAMS; i++)
        join_or_fail(r[i].th, 100000, "reader");
    assert_no_thread_failures();
    JT_ASSERT(jktcp_handle_stats(h, &st1, sizeof st1) == 0, "stats");
    for (int i = 0; i < NSTREAMS; i++) {
        JT_ASSERT(r[i].end == 0, "stream %d ended with %zd (%s)", i, r[i].end, err_name(r[i].end));
        JT_ASSERT(r[i].got == PER_STREAM, "stream %d: %llu of %u bytes", i,
                  (unsigned long long)r[i].got, (unsigned)PER_STREAM);
        JT_ASSERT(r[i].bad_at == UINT64_MAX, "stream %d: data wrong from %llu", i,
                  (unsigned long long)r[i].bad_at);
    }
    uint64_t frames = st1.frames_in - st0.frames_in;
    uint64_t wakes = st1.io_caller_wakes - st0.io_caller_wakes;
    JT_LOG("%d streams, %llu frames in, %llu caller wake-ups (one per %.1f frames)", NSTREAMS,
           (unsigned long long)frames, (unsigned long long)wakes,
           wakes ? (double)frames / (double)wakes : 0.0);
    JT_ASSERT(wakes > 0, "no wake-up counted: readers must have slept at least once");
    uint64_t turns = st1.io_wakeups - st0.io_wakeups;
    JT_ASSERT(wakes <= 2 * NSTREAMS * turns, "%llu wake-ups in %llu turns of the loop",
              (unsigned long long)wakes, (unsigned long long)turns);
    JT_ASSERT(wakes * 32 < frames, "%llu wake-ups for %llu frames",
              (unsigned long long)wakes, (unsigned long long)frames);
    for (int i = 0; i < NSTREAMS; i++)
        JT_ASSERT(jktcp_stream_close(r[i].s) == 0, "close");
    tt_down(&t);
    jkt_server_stop(&srv);
}
