/* SPDX-License-Identifier: MIT */
/* The lossy link to the kernel (see lossylink.h). */
#include "lossylink.h"

#include <stdio.h>

/* The kernel peer is set up, inside the namespace, so that what is measured
 * is jktcp and not the kernel's own limits:
 * - its retransmission floor and ceiling (rto_min 20 ms, rto_max 1 s): its
 *   backoff would otherwise reach 120 s;
 * - tcp_retries2 255 (and TCP_USER_TIMEOUT on the servers' sockets, which
 *   the callers set): the kernel's give-up budget runs from the first resend
 *   of a recovery, and at 20% loss its recoveries run into each other for
 *   longer than that; once it dropped a healthy connection silently (no
 *   RST) and a test waited out its limit;
 * - the congestion control of a kernel sender, where the caller asks: a new
 *   namespace inherits the host's default, and cubic (Debian's) does not
 *   move 64 MiB at 20% loss even from one kernel to another. */
int jkt_lossy_kernel(const struct jkt_tun *tun, const char *default_cc, char *out, size_t cap)
{
    char cc[96] = "";
    if (default_cc)
        snprintf(cc, sizeof cc, "sysctl -qw net.ipv4.tcp_congestion_control=%s 2>&1; ", default_cc);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "ip route replace 198.18.0.0/24 dev %s proto kernel scope link src %s "
             "rto_min 20ms 2>&1; sysctl -qw net.ipv4.tcp_rto_max_ms=1000 2>&1; "
             "sysctl -qw net.ipv4.tcp_retries2=255 2>&1; %sip route show dev %s 2>&1",
             tun->name, JKT_KERNEL_IP4, cc, tun->name);
    return jkt_sh(cmd, out, cap);
}

int jkt_fast_rto(jktcp_adapter *a, long rto_min, long retries, long rto_max)
{
    int rc = jktcp_adapter_set_option(a, JKTCP_OPT_RTO_MIN_MS, rto_min);
    if (rc == 0)
        rc = jktcp_adapter_set_option(a, JKTCP_OPT_RTO_INIT_MS, 100);
    if (rc == 0 && retries)
        rc = jktcp_adapter_set_option(a, JKTCP_OPT_MAX_RETRIES, retries);
    if (rc == 0 && rto_max)
        rc = jktcp_adapter_set_option(a, JKTCP_OPT_RTO_MAX_MS, rto_max);
    return rc;
}

int jkt_lossy_adapter(int tunfd, const jktcp_fault_config *cfg, jktcp_transport **ft,
                      jktcp_adapter **a)
{
    jktcp_transport *inner;
    *a = NULL;
    int rc = jktcp_transport_fd(tunfd, JKTCP_FRAMING_PACKET, &inner);
    if (rc < 0)
        return rc;
    rc = jktcp_transport_faulty(inner, cfg, sizeof *cfg, ft); /* owns inner, also on failure */
    if (rc < 0)
        return rc;
    rc = jktcp_adapter_new(*ft, JKT_LOCAL_IP4, JKT_KERNEL_IP4, a); /* owns *ft, likewise */
    if (rc < 0)
        return rc;
    rc = jkt_fast_rto(*a, JKT_LOSSY_RTO_MIN_MS, JKT_LOSSY_RETRIES, JKT_LOSSY_RTO_MAX_MS);
    if (rc < 0) {
        jktcp_adapter_free(*a);
        *a = NULL;
    }
    return rc;
}

jktcp_fault_dir loss_faults(double loss)
{
    return (jktcp_fault_dir){.drop = loss, .duplicate = loss / 2, .reorder = loss / 2,
                             .reorder_frames = 3, .reorder_max_us = 2000};
}
