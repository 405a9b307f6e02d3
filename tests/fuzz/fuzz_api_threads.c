/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the threaded API (handles, streams, listeners, ids)
 * driven by 2..4 threads at once.
 *
 * Per input: a handle (jktcp at 198.18.0.2) whose peer is a second adapter
 * B (198.18.0.1) that a pump thread drives; the pump also carries frames
 * between the two jktcp_port objects (as tests/support/rig.c does, but self-
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
 * listener-fd-stop, handle-close-linger; grep tolerate() in
 * fuzz_api_threads*.[ch] for what each allows). Default: strict.
 *
 * Files (one translation unit: the headers hold static functions):
 *  - fuzz_api_threads_world.h: the invariant check, the peer and its pump,
 *    the shared state and registry of ids, set-up and tear-down, the
 *    fd/thread leak check, the watchdog;
 *  - fuzz_api_threads_ops.h: the ops, the calls they make and the returns
 *    each call may give;
 *  - this file: libFuzzer's entry points and the end of an input (the
 *    rule 7 fd check, closing the leftovers).
 */
#include "fuzz_api_threads_ops.h" /* includes fuzz_api_threads_world.h */

/* ---- libFuzzer's entry points -------------------------------------------- */

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
