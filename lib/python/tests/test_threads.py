# SPDX-License-Identifier: MIT
"""Threads sharing streams: 64 MiB through the kernel, every byte verified."""
from __future__ import annotations

import socket
import struct
import threading
import time

from conftest import Pattern, report

MiB = 1 << 20
CHUNK = 256 * 1024


def test_8_threads_share_4_streams_64mib(make_handle, kserver):
    """4 streams to a kernel echo server; each is shared by a writer thread and a
    reader thread (8 threads, all at once on one handle); 16 MiB per stream go
    out and come back, checked against the pattern."""
    srv = kserver("echo")
    h = make_handle()
    per_stream = 16 * MiB
    streams = [h.connect(srv.port, timeout=5) for _ in range(4)]
    errors: list = []
    done_bytes = [0] * 4

    def writer(i: int) -> None:
        try:
            pat = Pattern(100 + i)
            off = 0
            while off < per_stream:
                n = min(CHUNK, per_stream - off)
                streams[i].sendall(pat.chunk(off, n))
                off += n
        except BaseException as e:
            errors.append(f"writer {i}: {e!r}")

    def reader(i: int) -> None:
        try:
            pat = Pattern(100 + i)
            buf = bytearray(CHUNK)
            mv = memoryview(buf)
            off = 0
            while off < per_stream:
                n = streams[i].recv_into(buf)
                if n == 0:
                    raise EOFError(f"EOF at {off}")
                if not pat.check(off, mv[:n]):
                    raise AssertionError(f"stream {i}: wrong bytes in [{off}, {off + n})")
                off += n
            done_bytes[i] = off
        except BaseException as e:
            errors.append(f"reader {i}: {e!r}")

    for s in streams:
        s.settimeout(30)
    threads = [threading.Thread(target=f, args=(i,)) for i in range(4) for f in (writer, reader)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    dt = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), "threads stuck"
    assert not errors, errors
    assert done_bytes == [per_stream] * 4
    total = sum(done_bytes)
    for s in streams:
        s.close()
    assert total == 64 * MiB
    report(f"threads: 8 threads on 4 shared streams, 64 MiB echoed through the kernel and "
           f"verified in {dt:.2f} s: {total / dt / MiB:.1f} MiB/s each way")


def test_concurrent_writers_never_interleave(make_handle, tun_device):
    """4 threads sendall() 64 KiB records on ONE stream: each record arrives whole."""
    rec = 64 * 1024
    per_thread = 32
    ksock = socket.socket()
    ksock.bind(("198.18.0.1", 0))
    ksock.listen()
    port = ksock.getsockname()[1]
    h = make_handle()
    s = h.connect(port, timeout=5)
    conn, _ = ksock.accept()
    ksock.close()

    def record(tid: int, seq: int) -> bytes:
        head = struct.pack("!II", tid, seq)
        return head + bytes([(tid * 31 + seq) & 0xFF]) * (rec - len(head))

    errors: list = []

    def writer(tid: int) -> None:
        try:
            for seq in range(per_thread):
                s.sendall(record(tid, seq))
        except BaseException as e:
            errors.append(f"writer {tid}: {e!r}")

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    seen = {t: 0 for t in range(4)}
    conn.settimeout(20)
    buf = bytearray()
    total = 4 * per_thread
    got = 0
    while got < total:
        while len(buf) < rec:
            d = conn.recv(1 << 20)
            assert d, "EOF"
            buf += d
        r = bytes(buf[:rec])
        del buf[:rec]
        tid, seq = struct.unpack("!II", r[:8])
        assert r == record(tid, seq), f"record from thread {tid} seq {seq} is mixed"
        assert seq == seen[tid], f"thread {tid}: seq {seq}, expected {seen[tid]}"
        seen[tid] += 1
        got += 1
    for t in threads:
        t.join(10)
    s.close()
    conn.close()
    assert not errors, errors
    assert seen == {t: per_thread for t in range(4)}
