/* SPDX-License-Identifier: MIT */
/* pcap writer: byte layout, that a real reader (tshark) accepts it, and
 * what an adapter's capture records. */
#include <criterion/criterion.h>

#include "pcap.h"
#include "rig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static size_t ipv4_frame(uint8_t *buf, size_t len, uint8_t last_src_byte)
{
    memset(buf, 0, len);
    buf[0] = 0x45;
    buf[2] = (uint8_t)(len >> 8);
    buf[3] = (uint8_t)len;
    buf[8] = 64;
    buf[9] = 253; /* experimental protocol: no dissector noise */
    memcpy(buf + 12, (uint8_t[]){10, 0, 0, last_src_byte, 10, 0, 0, 2}, 8);
    for (size_t i = 20; i < len; i++)
        buf[i] = (uint8_t)i;
    return len;
}

static size_t ipv6_frame(uint8_t *buf, size_t len)
{
    memset(buf, 0, len);
    buf[0] = 0x60;
    buf[4] = (uint8_t)((len - 40) >> 8);
    buf[5] = (uint8_t)(len - 40);
    buf[6] = 253;
    buf[7] = 64;
    buf[8] = 0xfd;  /* src fd00::1 */
    buf[23] = 1;
    buf[24] = 0xfd; /* dst fd00::2 */
    buf[39] = 2;
    return len;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4); /* host order: the magic tells readers which */
    return v;
}

static uint16_t rd16h(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

struct capture {
    char path[64];
    uint8_t frames[3][1500];
    size_t len[3];
    time_t before, after;
};

static void write_capture(struct capture *c)
{
    strcpy(c->path, "/tmp/jktcp-pcap-XXXXXX");
    int fd = mkstemp(c->path);
    cr_assert_geq(fd, 0);
    close(fd);
    c->len[0] = ipv4_frame(c->frames[0], 40, 1);
    c->len[1] = ipv6_frame(c->frames[1], 60);
    c->len[2] = ipv4_frame(c->frames[2], 1500, 3);
    struct jk_pcap *p;
    c->before = time(NULL);
    cr_assert_eq(jk_pcap_open(c->path, &p), 0);
    for (int i = 0; i < 3; i++)
        jk_pcap_write(p, c->frames[i], c->len[i]);
    jk_pcap_close(p);
    c->after = time(NULL);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static uint8_t buf[1 << 16];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

Test(pcap, global_header_and_records)
{
    struct capture c;
    write_capture(&c);
    size_t n;
    const uint8_t *b = read_file(c.path, &n);
    unlink(c.path);
    cr_assert_eq(n, 24 + 3 * 16 + c.len[0] + c.len[1] + c.len[2]);
    cr_assert_eq(rd32(b), 0xa1b2c3d4u);
    cr_assert_eq(rd16h(b + 4), 2);
    cr_assert_eq(rd16h(b + 6), 4);
    cr_assert_eq(rd32(b + 8), 0, "thiszone");
    cr_assert_eq(rd32(b + 12), 0, "sigfigs");
    cr_assert_eq(rd32(b + 16), 262144, "snaplen");
    cr_assert_eq(rd32(b + 20), 101, "LINKTYPE_RAW");
    const uint8_t *r = b + 24;
    for (int i = 0; i < 3; i++) {
        cr_assert(rd32(r) >= (uint32_t)c.before && rd32(r) <= (uint32_t)c.after, "ts_sec");
        cr_assert_lt(rd32(r + 4), 1000000, "ts_usec");
        cr_assert_eq(rd32(r + 8), c.len[i], "incl_len");
        cr_assert_eq(rd32(r + 12), c.len[i], "orig_len");
        cr_assert(memcmp(r + 16, c.frames[i], c.len[i]) == 0);
        r += 16 + c.len[i];
    }
}

Test(pcap, open_errors_and_null)
{
    struct jk_pcap *p = (struct jk_pcap *)&p;
    cr_assert_eq(jk_pcap_open("/nonexistent-dir/x.pcap", &p), -ENOENT);
    cr_assert_null(p);
    cr_assert_eq(jk_pcap_open(NULL, &p), -EINVAL);
    jk_pcap_write(NULL, (const uint8_t *)"x", 1);
    jk_pcap_close(NULL);
}

Test(pcap, tshark_reads_it)
{
    if (access("/usr/bin/tshark", X_OK) != 0)
        cr_skip_test("tshark is not installed");
    struct capture c;
    write_capture(&c);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "/usr/bin/tshark -r %s -T fields -e ip.src -e ipv6.src 2>/dev/null",
             c.path);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    char out[4][128] = {{0}};
    int lines = 0;
    while (lines < 4 && fgets(out[lines], sizeof out[lines], f))
        lines++;
    int status = pclose(f);
    unlink(c.path);
    cr_assert_eq(status, 0, "tshark failed");
    cr_assert_eq(lines, 3);
    cr_assert_str_eq(out[0], "10.0.0.1\t\n");
    cr_assert_str_eq(out[1], "\tfd00::1\n");
    cr_assert_str_eq(out[2], "10.0.0.3\t\n");
}

/* Records in a capture whose IPv4 source ends in src (198.18.0.<src>). */
static int count_from(const uint8_t *b, size_t n, uint8_t src)
{
    int count = 0;
    for (size_t off = 24; off + 16 <= n;) {
        uint32_t incl = rd32(b + off + 8);
        cr_assert_leq(off + 16 + incl, n, "a record runs past the end");
        cr_assert_geq(incl, 20);
        count += b[off + 16 + 15] == src;
        off += 16 + incl;
    }
    return count;
}

/* An adapter's capture (a wrapper around its transport) records every
 * frame the adapter received and every one it handed on, while it runs;
 * turning it on and off leaves the adapter's poll fd as it was. */
Test(pcap, adapter_capture_both_directions)
{
    char path[] = "/tmp/jktcp-pcap-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    struct rig_pair p;
    rig_pair_up(&p);
    int pfd = jktcp_adapter_fd(p.a);
    cr_assert_eq(jktcp_adapter_pcap(p.a, path), 0);
    cr_assert_eq(jktcp_adapter_fd(p.a), pfd);
    jktcp_conn *bc, *c = rig_pair_connect(&p, &bc);
    cr_assert_not_null(c);
    jktcp_stats st;
    cr_assert_eq(jktcp_adapter_stats(p.a, &st, sizeof st), 0);
    cr_assert_eq(jktcp_adapter_pcap(p.a, NULL), 0);
    cr_assert_eq(jktcp_adapter_fd(p.a), pfd);
    rig_pair_down(&p); /* A's RST on free: after the capture stopped */
    size_t n;
    const uint8_t *b = read_file(path, &n);
    unlink(path);
    cr_assert_gt(st.frames_out, 0);
    cr_assert_gt(st.frames_in, 0);
    cr_assert_eq(count_from(b, n, 2), (int)st.frames_out, "frames A sent");
    cr_assert_eq(count_from(b, n, 1), (int)st.frames_in, "frames A received");
}
