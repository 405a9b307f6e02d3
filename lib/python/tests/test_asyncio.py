# SPDX-License-Identifier: MIT
"""asyncio: 32 streams on one loop, servers, errors — the loop never blocks."""
from __future__ import annotations

import asyncio
import socket
import time

import pytest

import jktcp
from conftest import Pattern, report

MiB = 1 << 20


class LoopWatch:
    """Measures the longest gap between ticks of a 1 ms heartbeat task: a
    blocking call on the loop would show up as a long gap."""

    def __init__(self):
        self.worst = 0.0
        self._task = None

    async def _beat(self):
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.001)
            now = time.monotonic()
            self.worst = max(self.worst, now - last)
            last = now

    def start(self):
        self._task = asyncio.ensure_future(self._beat())

    def stop(self):
        self._task.cancel()


def test_32_streams_on_one_loop(make_handle, kserver):
    srv = kserver("echo")
    h = make_handle()
    per = 512 * 1024
    pat = Pattern(1000)  # stream i carries the pattern from offset i * 7919

    async def one(i: int) -> int:
        reader, writer = await h.open_connection(srv.port, timeout=10)
        base = i * 7919

        async def send():
            off = 0
            while off < per:
                n = min(64 * 1024, per - off)
                writer.write(pat.chunk(base + off, n))
                await writer.drain()
                off += n
            writer.write_eof()

        sender = asyncio.ensure_future(send())
        off = 0
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            assert pat.check(base + off, data), f"stream {i}: wrong bytes at {off}"
            off += len(data)
        await sender
        assert writer.get_extra_info("peername") == ("198.18.0.1", srv.port)
        assert isinstance(writer.get_extra_info("jktcp_stream"), jktcp.Stream)
        writer.close()
        await writer.wait_closed()
        return off

    async def main():
        watch = LoopWatch()
        watch.start()
        t0 = time.monotonic()
        got = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(32))), 40)
        dt = time.monotonic() - t0
        watch.stop()
        return got, dt, watch.worst

    got, dt, worst = asyncio.run(main())
    assert got == [per] * 32
    report(f"asyncio: 32 streams on one loop, {32 * per / MiB:.0f} MiB echoed and verified in "
           f"{dt:.2f} s ({32 * per / dt / MiB:.1f} MiB/s); longest gap between loop iterations "
           f"{worst * 1000:.1f} ms (32 streams' callbacks in one iteration)")


def test_start_server_with_kernel_clients(make_handle):
    h = make_handle()
    nclients = 16
    payload = 100_000

    async def handle_client(reader, writer):
        data = await reader.read()  # to EOF
        writer.write(data[::-1])
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    def client(i: int, out: list) -> None:
        c = socket.create_connection(("198.18.0.2", 9090), timeout=10)
        msg = bytes([i]) * payload + b"end"
        c.sendall(msg)
        c.shutdown(socket.SHUT_WR)
        buf = bytearray()
        while True:
            d = c.recv(65536)
            if not d:
                break
            buf += d
        c.close()
        out.append(bytes(buf) == msg[::-1])

    async def main():
        server = await h.start_server(handle_client, 9090)
        async with server:
            assert server.is_serving()
            results: list = []
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(asyncio.gather(*(
                loop.run_in_executor(None, client, i, results) for i in range(nclients))), 30)
            return results

    results = asyncio.run(main())
    assert results == [True] * nclients


def test_create_connection_protocol_and_errors(make_handle, kserver):
    srv = kserver("echo")
    h = make_handle()

    class Echo(asyncio.Protocol):
        def __init__(self):
            self.data = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def data_received(self, data):
            self.data += data
            if len(self.data) >= 5:
                self.transport.close()

        def connection_made(self, transport):
            self.transport = transport

        def connection_lost(self, exc):
            self.done.set_result(exc)

    async def main():
        tr, proto = await h.create_connection(Echo, srv.port)
        tr.write(b"hel")
        tr.writelines([b"l", b"o"])
        assert await asyncio.wait_for(proto.done, 5) is None
        assert bytes(proto.data) == b"hello"
        closed_port = srv.port + 1 if srv.port < 65535 else srv.port - 1
        with pytest.raises(ConnectionRefusedError):
            await h.open_connection(closed_port)
        # a reset arrives as ConnectionResetError from the reader
        hold = socket.socket()
        hold.bind(("198.18.0.1", 0))
        hold.listen()
        r, w = await h.open_connection(hold.getsockname()[1])
        c, _ = await asyncio.get_running_loop().run_in_executor(None, hold.accept)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        c.close()
        hold.close()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(r.read(), 5)
        w.close()
        # cancelling a connect leaves nothing behind
        t = asyncio.ensure_future(h.open_connection(srv.port))
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    asyncio.run(main())


def test_backpressure_pauses_writer(make_handle, kserver):
    """A kernel reader that never reads: drain() waits instead of buffering
    without bound, and the loop keeps running."""
    hold = kserver("hold", rcvbuf=64 * 1024)
    h = make_handle(sndbuf=256 * 1024)

    async def main():
        watch = LoopWatch()
        watch.start()
        r, w = await h.open_connection(hold.port)
        sent = 0
        with pytest.raises(asyncio.TimeoutError):
            async def fill():
                nonlocal sent
                while True:
                    w.write(b"x" * 65536)
                    sent += 65536
                    await w.drain()
            await asyncio.wait_for(fill(), 1.0)
        assert w.transport.get_write_buffer_size() <= 64 * 1024 + 65536
        assert sent < 8 * MiB
        w.transport.abort()
        watch.stop()
        return watch.worst

    worst = asyncio.run(main())
    assert worst < 0.5, f"the loop stalled {worst:.3f} s"


def test_unanswered_connect_never_blocks_the_loop():
    """A SYN into a pipe nobody reads: open_connection times out through
    asyncio while a 1 ms heartbeat keeps ticking (no kernel needed)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    h = jktcp.Handle(jktcp.fd(a, "stream"), local="198.18.0.2", peer="198.18.0.1")
    a.close()

    async def main():
        watch = LoopWatch()
        watch.start()
        t0 = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await h.open_connection(80, timeout=0.5)
        dt = time.monotonic() - t0
        results = await asyncio.gather(*(asyncio.wait_for(h.open_connection(80), 0.3)
                                         for _ in range(8)), return_exceptions=True)
        watch.stop()
        return dt, results, watch.worst

    try:
        dt, results, worst = asyncio.run(main())
    finally:
        h.close(linger=0)
        b.close()
    assert 0.45 < dt < 1.5, dt
    assert all(isinstance(r, asyncio.TimeoutError) for r in results), results
    assert worst < 0.25, f"the loop stalled {worst * 1000:.1f} ms"
