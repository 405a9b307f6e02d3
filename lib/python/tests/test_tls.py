# SPDX-License-Identifier: MIT
"""The caller-ops transport from Python: TLS (the CDTunnel shape) and its cost.

jktcp's frames travel back to back inside a real TLS session (ssl module,
self-signed certificate made with the openssl CLI) over a Unix socketpair;
a bridge thread terminates TLS and moves each frame into the TUN device,
where the kernel's TCP answers:

  jktcp --ops callbacks--> SSLSocket ==TLS== SSLSocket --bridge--> TUN --> kernel TCP
"""
from __future__ import annotations

import errno
import os
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

import jktcp
from conftest import KERNEL4, LOCAL4, MTU, Pattern, b2b, report
from jktcp.transports import IFF_NO_PI, IFF_TUN, TUNSETIFF

MiB = 1 << 20


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("no openssl CLI")
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "1", "-subj", "/CN=jktcp-test"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(cert), str(key))
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(str(cert))
    return server, client


def tls_pair(contexts):
    """A connected (client, server) pair of SSLSockets over a socketpair."""
    sctx, cctx = contexts
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    server = sctx.wrap_socket(b, server_side=True, do_handshake_on_connect=False)
    client = cctx.wrap_socket(a, server_hostname="jktcp-test", do_handshake_on_connect=False)
    err: list = []

    def hs():
        try:
            server.do_handshake()
        except BaseException as e:
            err.append(e)

    t = threading.Thread(target=hs)
    t.start()
    client.do_handshake()
    t.join(10)
    assert not err, err
    return client, server


def frame_len(buf) -> int:
    """Length of the IP frame at the start of buf, 0 if not known yet."""
    if len(buf) < 6:
        return 0
    v = buf[0] >> 4
    if v == 4:
        return buf[2] << 8 | buf[3]
    if v == 6:
        return 40 + (buf[4] << 8 | buf[5])
    raise ValueError(f"bad IP version {v}: framing lost")


class TlsTunBridge(threading.Thread):
    """TLS server side <-> TUN: frames back to back one way, one per write the other."""

    def __init__(self, tls: ssl.SSLSocket, tun_name: str):
        super().__init__(name="tls-tun-bridge", daemon=True)
        self.tls = tls
        self.tun = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
        import fcntl
        import struct
        fcntl.ioctl(self.tun, TUNSETIFF, struct.pack("16sH22x", tun_name.encode(),
                                                      IFF_TUN | IFF_NO_PI))
        os.set_blocking(self.tun, False)
        tls.setblocking(False)
        self.stop_r, self.stop_w = os.pipe()
        self.error = None
        self.frames_up = self.frames_down = 0

    def run(self):
        out = bytearray()   # TUN -> TLS
        inb = bytearray()   # TLS -> TUN
        tls, tun = self.tls, self.tun
        try:
            while True:
                want_w = [tls] if out else []
                timeout = 0 if tls.pending() else 1.0
                r, w, _ = select.select([tun, tls, self.stop_r], want_w, [], timeout)
                if self.stop_r in r:
                    return
                while len(out) < 4 * MiB:
                    try:
                        f = os.read(tun, 65536)
                    except BlockingIOError:
                        break
                    out += f
                    self.frames_up += 1
                while out:
                    try:
                        n = tls.send(out[:256 * 1024])
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        break
                    del out[:n]
                while True:
                    try:
                        d = tls.recv(256 * 1024)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        break
                    if not d:
                        return  # jktcp side closed the TLS session
                    inb += d
                pos = 0
                while True:
                    n = frame_len(inb[pos:pos + 6])
                    if not n or len(inb) - pos < n:
                        break
                    try:
                        os.write(tun, inb[pos:pos + n])
                    except OSError as e:  # a full TUN queue drops, as a link would
                        if e.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.EINVAL, errno.EIO):
                            raise
                    self.frames_down += 1
                    pos += n
                del inb[:pos]
        except BaseException as e:
            self.error = e
        finally:
            os.close(tun)

    def stop(self):
        os.write(self.stop_w, b"x")
        self.join(10)
        os.close(self.stop_r)
        os.close(self.stop_w)


def test_tls_transport_bridged_into_tun(tun_device, kserver, tls_contexts):
    srv = kserver("echo")
    client, server = tls_pair(tls_contexts)
    bridge = TlsTunBridge(server, tun_device)
    bridge.start()
    transport = jktcp.stream_object(client, "stream", close=True)
    nbytes = 8 * MiB
    try:
        with jktcp.Handle(transport, local=LOCAL4, peer=KERNEL4, mtu=MTU) as h:
            pat = Pattern(42)
            t0 = time.monotonic()
            with h.connect(srv.port, timeout=10) as s:
                s.settimeout(30)

                def send():
                    off = 0
                    while off < nbytes:
                        n = min(256 * 1024, nbytes - off)
                        s.sendall(pat.chunk(off, n))
                        off += n
                    s.shutdown()

                sender = threading.Thread(target=send)
                sender.start()
                off = 0
                buf = bytearray(256 * 1024)
                mv = memoryview(buf)
                while True:
                    n = s.recv_into(buf)
                    if n == 0:
                        break
                    assert pat.check(off, mv[:n]), f"wrong bytes at {off}"
                    off += n
                sender.join(30)
                assert off == nbytes
            dt = time.monotonic() - t0
            st = h.stats()
            assert h.error() == 0
        assert transport.obj_closed  # close=True: the library's close op closed it
    finally:
        bridge.stop()
        server.close()
    assert bridge.error is None, bridge.error
    assert transport.last_exception is None, transport.last_exception
    cs = transport.callback_stats()
    frames = st.frames_in + st.frames_out
    report(f"tls: {nbytes // MiB} MiB echoed through TLS -> bridge -> TUN -> kernel and verified "
           f"in {dt:.2f} s ({nbytes / dt / MiB:.1f} MiB/s each way); {frames} frames, "
           f"{cs['read_calls'] + cs['write_calls']} Python callbacks, "
           f"{cs['seconds'] * 1e6 / frames:.1f} us in callbacks per frame (TLS included)")


def test_callback_cost_per_frame():
    """The same transfer between two back-to-back handles over a Unix
    socketpair (MTU 1500: many frames), once with handle A on jktcp.fd (C
    I/O) and once on jktcp.stream_object (Python callbacks on A's I/O
    thread). The difference in process CPU time per frame through A is the
    cost of the Python callbacks (best of 3 runs each, alternated)."""
    nbytes = 16 * MiB
    chunk = 256 * 1024
    data = os.urandom(chunk)
    best: dict = {}
    for kind in ("fd", "object") * 3:
        ha, hb = b2b(kind, mtu=1500)
        with ha, hb, hb.listen(7000) as lst:
            s = ha.connect(7000, timeout=5)
            r = lst.accept(timeout=5)
            got = [0]

            def sink():
                buf = bytearray(chunk)
                while True:
                    n = r.recv_into(buf)
                    if not n:
                        break
                    got[0] += n

            t = threading.Thread(target=sink)
            cpu0, wall0 = time.process_time(), time.monotonic()
            t.start()
            for _ in range(nbytes // chunk):
                s.sendall(data)
            s.shutdown()
            t.join(60)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            assert got[0] == nbytes
            st = ha.stats()
            frames = st.frames_in + st.frames_out
            s.close()
            r.close()
            cb = ha.transport.callback_stats() if kind == "object" else None
        run = {"cpu": cpu, "wall": wall, "frames": frames, "per_frame": cpu / frames, "cb": cb}
        if kind not in best or run["per_frame"] < best[kind]["per_frame"]:
            best[kind] = run
    fd, ob = best["fd"], best["object"]
    extra_us = (ob["per_frame"] - fd["per_frame"]) * 1e6
    cb = ob["cb"]
    calls = cb["read_calls"] + cb["write_calls"]
    report(f"callbacks: {nbytes // MiB} MiB handle-to-handle at MTU 1500, {ob['frames']} frames "
           f"through A: fd {fd['per_frame'] * 1e6:.1f} us CPU/frame ({nbytes / fd['wall'] / MiB:.0f}"
           f" MiB/s), Python callbacks {ob['per_frame'] * 1e6:.1f} us CPU/frame "
           f"({nbytes / ob['wall'] / MiB:.0f} MiB/s) -> {extra_us:.1f} us per frame for the "
           f"callbacks ({calls / ob['frames']:.2f} calls/frame, "
           f"{cb['seconds'] * 1e6 / ob['frames']:.1f} us/frame inside the Python bodies, syscalls included)")
    assert ob["frames"] > nbytes / 1500
    assert extra_us < 500, "Python callbacks cost more than 0.5 ms per frame"
