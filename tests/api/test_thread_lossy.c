/* SPDX-License-Identifier: MIT */
/*
 * Suite `thread`, lossy_*: the threaded handle over a lossy link without a
 * kernel: the rig (tests/support/rig.h) with h's end through the fault
 * transport (rig_opts.faults), B echoing. A writer thread streams a pattern
 * while the test thread reads the echo and checks every byte. Built on
 * minitest.h, so it runs under ThreadSanitizer too (make test-tsan).
 *
 * JKTCP_FAULT_SEED=<n> in the environment replaces the default seed.
 */
#include "minitest.h"
#include "netns.h"
#include "rig.h"
#include "streamio.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define E(x) jktcp_strerror((int)(x))
/* No more than B's send buffer (4 MiB): all of the echo always fits it. */
#define LOSSY_BYTES (4u << 20)
#define LOSSY_SEED 0x1055u /* the pattern's */

struct writer {
    jktcp_stream s;
    uint64_t sent;
    long err;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    w->err = jkt_stream_send_pattern(w->s, LOSSY_BYTES, LOSSY_SEED, 20000, &w->sent);
    return NULL;
}

/* 4 MiB each way through a link that drops 5% of the frames in each
 * direction (h's wrapper: out is h->B, in is B->h). Both ends retransmit
 * from a 5 ms floor, as on the fault suite's links. */
JT_TEST(thread, lossy_link_echo, 120)
{
    const char *env = getenv("JKTCP_FAULT_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 0) : 501;
    jktcp_fault_config faults = {.in.drop = 0.05, .out.drop = 0.05, .seed = seed};
    struct rig_opts o = {.rto_init_ms = 100, .rto_min_ms = 5, .peer_rto_min_ms = 5,
                         .max_retries = 15, .faults = &faults};
    struct rig r;
    rig_up(&r, &o);
    jktcp_stream s = rig_connect(&r);
    struct writer w = {.s = s};
    pthread_t th;
    JT_ASSERT(pthread_create(&th, NULL, writer_main, &w) == 0, "writer thread");
    uint64_t got, bad;
    double t0 = rig_now_ms();
    long rerr = jkt_stream_recv_pattern(s, LOSSY_BYTES, LOSSY_SEED, 20000, &got, &bad);
    double dt = rig_now_ms() - t0;
    pthread_join(th, NULL);
    jktcp_info info;
    jktcp_fault_stats st;
    JT_ASSERT(jktcp_stream_info(s, &info, sizeof info) == 0, "stream_info");
    JT_ASSERT(jktcp_transport_fault_stats(r.link.a.ft, &st, sizeof st) == 0, "fault stats");
    JT_LOG("thread/lossy_link_echo seed %" PRIu64 ": %" PRIu64 " B echoed in %.0f ms; h's"
           " retransmits %u (timeouts %u, recoveries %u); frames dropped h->B %" PRIu64
           " of %" PRIu64 ", B->h %" PRIu64 " of %" PRIu64,
           seed, got, dt, info.retransmits, info.timeouts, info.recoveries, st.out.dropped,
           st.out.frames, st.in.dropped, st.in.frames);
    JT_ASSERT(w.err == 0, "seed %" PRIu64 ": write failed after %" PRIu64 " B: %s", seed, w.sent,
              E(w.err));
    JT_ASSERT(rerr == 0, "seed %" PRIu64 ": read failed after %" PRIu64 " B: %s", seed, got,
              E(rerr));
    JT_ASSERT(bad == UINT64_MAX, "seed %" PRIu64 ": DATA CORRUPTION at offset %" PRIu64, seed,
              bad);
    JT_ASSERT(got == LOSSY_BYTES, "seed %" PRIu64 ": echoed %" PRIu64 " B", seed, got);
    JT_ASSERT(st.out.dropped > 0 && st.in.dropped > 0, "the link dropped nothing");
    JT_ASSERT(info.retransmits > 0, "no retransmission: the loss went unnoticed?");
    JT_ASSERT(jktcp_stream_close(s) == 0, "close");
    rig_down(&r);
}
