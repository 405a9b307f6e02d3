/* SPDX-License-Identifier: MIT */
/* libFuzzer target: an active connection of a single-threaded adapter over
 * a jktcp_port, with a fake clock.
 *
 * Input:
 *   [cfg0][cfg1]                  adapter options (fz_env_init)
 *   [hs][peer iss:4][wnd:2][opts...]  the handshake: connect(timeout 0), pull
 *                                 our SYN, answer per hs & 3: 0/1 SYN-ACK,
 *                                 2 RST, 3 a bare SYN (simultaneous open)
 *   then ops until the input ends: one byte op, then its arguments
 *     0..5   peer segment, fields relative to the live rcv_nxt/snd_una/window
 *     6      raw frame (2-byte length + bytes)
 *     7      in-order data / ACK of everything
 *     8      clock advance + poll
 *     9      poll
 *     10..15 app: read, write, shutdown, close, abort, info
 * At the end every timer runs out and the adapter is freed. */
#include "fuzz_adapter.h"

static struct fz_env env;

#define PEER_PORT 443

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    struct fz_env *e = &env;
    fz_env_init(e, &in);

    jktcp_conn *c = NULL;
    int r = jktcp_conn_connect(e->a, PEER_PORT, 0, &c);
    FZ_CHECK(r == -EINPROGRESS && c, "connect returned %d", r);
    struct fz_model *m = fz_model_get(e, c->tcp.lport, PEER_PORT);
    fz_slot_bind(e, &e->s[0], c);

    /* Our SYN. */
    fz_drain(e);
    FZ_CHECK(m->have_iss && m->our_iss == c->tcp.iss, "no SYN sent");

    uint8_t hs = fz_u8(&in);
    m->peer_iss = fz_u32(&in);
    struct fz_segspec sp;
    memset(&sp, 0, sizeof sp);
    sp.lport = m->lport;
    sp.rport = PEER_PORT;
    sp.seq = m->peer_iss;
    sp.ack = m->our_iss + 1;
    sp.wnd = fz_u16(&in);
    fz_opts(e, m, &in, &sp.opt, m->our_iss + 1);
    switch (hs & 3) {
    case 2: sp.flags = JK_RST | JK_ACK; break;
    case 3: sp.flags = JK_SYN; sp.ack = 0; break;
    default: sp.flags = JK_SYN | JK_ACK; break;
    }
    if (hs & 4)
        sp.len = fz_u8(&in); /* data on the SYN */
    fz_send(e, m, &sp);

    for (int ops = 0; in.n && ops < FZ_MAX_OPS; ops++) {
        uint8_t op = fz_u8(&in) % 16;
        if (op <= 5)
            fz_structured(e, m, &in);
        else if (op == 6)
            fz_raw(e, &in);
        else if (op == 7)
            fz_in_order(e, m, &in);
        else if (op == 8)
            fz_clock_op(e, &in);
        else if (op == 9)
            fz_poll(e);
        else
            fz_app_op(e, &e->s[0], (uint8_t)(op - 10), &in);
    }
    if (e->s[0].c && (hs & 0x80))
        fz_app_close(e, &e->s[0], false);
    fz_run_out(e);
    if (e->s[0].c) {
        fz_check_info(e, &e->s[0]);
        fz_app_close(e, &e->s[0], hs & 0x40);
    }
    fz_env_free(e);
    return 0;
}
