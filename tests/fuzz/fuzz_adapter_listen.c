/* SPDX-License-Identifier: MIT */
/* libFuzzer target: passive opens. An adapter over a jktcp_port (fake
 * clock) listens on port 80; the fuzzer, as the peer, sends SYNs, ACKs,
 * RSTs and data from a few peer ports to the listening port and to others,
 * and the app accepts whatever gets established and reads, writes, shuts
 * down, closes or aborts it.
 *
 * Input: [cfg0][cfg1][backlog] then ops until the input ends:
 *   0..2   SYN-ish: [peer port sel][flags^SYN][iss:4][wnd:2][opts...]
 *   3..6   segment on a known connection: [model sel] + fz_structured args
 *   7      in-order data / ACK of everything on a known connection
 *   8      raw frame (2-byte length + bytes)
 *   9      clock advance + poll
 *   10     accept
 *   11..13 app op on a slot: [slot][op] (read, write, shutdown, close,
 *          abort, info)
 *   14     unlisten / listen again
 *   15     poll
 * At the end every timer runs out and the adapter is freed (with the
 * listener, if still there). */
#include "fuzz_adapter.h"

static struct fz_env env;

#define LISTEN_PORT 80

/* The sel-th current (not retired) model, or NULL. */
static struct fz_model *pick_model(struct fz_env *e, uint8_t sel)
{
    struct fz_model *cur[FZ_MODELS];
    int n = 0;
    for (int i = 0; i < FZ_MODELS; i++)
        if (e->m[i].used && !e->m[i].retired)
            cur[n++] = &e->m[i];
    return n ? cur[sel % n] : NULL;
}

static void peer_syn(struct fz_env *e, struct fz_in *in)
{
    uint8_t sel = fz_u8(in);
    uint16_t rport = (uint16_t)(40000 + (sel & 3));
    uint16_t lport = (sel & 4) ? (uint16_t)(81 + ((sel >> 3) & 1)) : LISTEN_PORT;
    struct fz_model *m = fz_model_find(e, lport, rport);
    if (!m || !fz_live(e, m)) /* a new connection: a new model */
        m = fz_model_new(e, lport, rport);
    struct fz_segspec sp;
    memset(&sp, 0, sizeof sp);
    sp.lport = lport;
    sp.rport = rport;
    sp.flags = fz_u8(in) ^ JK_SYN;
    sp.seq = fz_u32(in);
    sp.wnd = fz_u16(in);
    if (m && !m->have_iss)
        m->peer_iss = sp.seq;
    if (sel & 0x10)
        sp.len = fz_u8(in);
    if (m && (sel & 0x20))
        sp.ack = m->our_max;
    fz_opts(e, m, in, &sp.opt, 0);
    fz_send(e, m, &sp);
}

static void accept_one(struct fz_env *e, jktcp_conn_listener *l)
{
    jktcp_conn *c = NULL;
    int r = jktcp_adapter_accept(l, 0, &c);
    fz_drain(e);
    if (r == -EAGAIN)
        return;
    FZ_CHECK(r == 0 && c, "accept returned %d", r);
    FZ_CHECK(c->tcp.lport == LISTEN_PORT, "accepted a connection on port %u", c->tcp.lport);
    struct fz_slot *sl = NULL;
    for (int i = 0; i < FZ_SLOTS && !sl; i++)
        if (!e->s[i].c)
            sl = &e->s[i];
    if (!sl) { /* no room: close it right away */
        struct fz_slot tmp;
        fz_slot_bind(e, &tmp, c);
        fz_app_close(e, &tmp, false);
        return;
    }
    fz_slot_bind(e, sl, c);
    for (int i = 0; i < FZ_SLOTS; i++)
        FZ_CHECK(&e->s[i] == sl || !e->s[i].c || e->s[i].c != c, "accepted twice");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    struct fz_env *e = &env;
    fz_env_init(e, &in);
    int backlog = fz_u8(&in) % 6; /* 0: the default */

    jktcp_conn_listener *l = NULL;
    FZ_CHECK(jktcp_adapter_listen(e->a, LISTEN_PORT, backlog, &l) == 0, "listen");
    jktcp_conn_listener *dup;
    FZ_CHECK(jktcp_adapter_listen(e->a, LISTEN_PORT, 1, &dup) == -EADDRINUSE, "listen twice");

    for (int ops = 0; in.n && ops < FZ_MAX_OPS; ops++) {
        uint8_t op = fz_u8(&in) % 16;
        if (op <= 2) {
            peer_syn(e, &in);
        } else if (op <= 7) {
            struct fz_model *m = pick_model(e, fz_u8(&in));
            if (!m)
                continue;
            if (op == 7)
                fz_in_order(e, m, &in);
            else
                fz_structured(e, m, &in);
        } else if (op == 8) {
            fz_raw(e, &in);
        } else if (op == 9) {
            fz_clock_op(e, &in);
        } else if (op == 10) {
            if (l)
                accept_one(e, l);
        } else if (op <= 13) {
            uint8_t sel = fz_u8(&in);
            fz_app_op(e, &e->s[sel % FZ_SLOTS], (uint8_t)((sel >> 2) % 6), &in);
        } else if (op == 14) {
            if (l) {
                jktcp_adapter_unlisten(l);
                l = NULL;
                fz_drain(e);
            } else {
                FZ_CHECK(jktcp_adapter_listen(e->a, LISTEN_PORT, backlog, &l) == 0, "relisten");
            }
        } else {
            fz_poll(e);
        }
    }
    fz_run_out(e);
    if (l && (size & 1)) {
        jktcp_adapter_unlisten(l);
        fz_drain(e);
    }
    for (int i = 0; i < FZ_SLOTS; i++)
        if (e->s[i].c) {
            fz_check_info(e, &e->s[i]);
            fz_app_close(e, &e->s[i], i & 1);
        }
    fz_run_out(e);
    fz_env_free(e);
    return 0;
}
