# SPDX-License-Identifier: MIT
"""Kernel-side TCP servers for the tests, run in a child process.

The servers are plain kernel sockets bound to the TUN's kernel address
(198.18.0.1 / fd00::1) in the test's private network namespace (the child
inherits it). They run in their own process so that their threads do not
compete with the code under test for the GIL.

    python3 kserver.py MODE ADDR SEED NBYTES RCVBUF

prints ``port N``, then answers one JSON line per command read from stdin:
``stats``, ``rst`` (close every open connection with RST), ``close`` (stop and
exit). It exits when stdin closes. Modes: echo (until EOF, then close), sink
(read to EOF; verify pattern SEED unless it is -1), source (send NBYTES of
pattern SEED, then close), hold (accept, never read).

Also the home of :class:`Pattern`, the deterministic test data.
"""
from __future__ import annotations

import ipaddress
import json
import random
import socket
import struct
import sys
import threading
import time


class Pattern:
    """A deterministic byte stream (period: a prime just under 1 MiB)."""

    PERIOD = 1048573

    def __init__(self, seed: int):
        blk = random.Random(seed).randbytes(self.PERIOD)
        self._two = blk + blk

    def chunk(self, off: int, n: int) -> bytes:
        assert n <= self.PERIOD
        o = off % self.PERIOD
        return self._two[o:o + n]

    def check(self, off: int, data) -> bool:
        data = memoryview(data)
        pos = 0
        while pos < len(data):
            k = min(len(data) - pos, self.PERIOD)
            if self.chunk(off + pos, k) != data[pos:pos + k]:
                return False
            pos += k
        return True


_ALLOWED = [ipaddress.ip_network(n) for n in ("198.18.0.0/15", "fd00::/8")]


class Server:
    def __init__(self, mode: str, addr: str, seed: int, nbytes: int, rcvbuf: int):
        ip = ipaddress.ip_address(addr)
        if not any(ip in n for n in _ALLOWED):
            raise SystemExit(f"kserver: {addr} is not a test address")
        self.mode, self.nbytes, self.rcvbuf = mode, nbytes, rcvbuf
        self.pattern = Pattern(seed) if seed >= 0 else None
        fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.accepted = self.done = self.bytes_in = self.bytes_out = 0
        self.errors: list = []
        self.results: list = []
        self.conns: list = []
        self.stop = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self) -> None:
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.rcvbuf:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            with self.lock:
                self.accepted += 1
                self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c: socket.socket) -> None:
        res = {"bytes": 0, "ok": True}
        try:
            getattr(self, "do_" + self.mode)(c, res)
        except OSError as e:
            if not self.stop:
                res["ok"] = False
                res["error"] = repr(e)
        finally:
            with self.lock:
                self.done += 1
                self.results.append(res)
                if c in self.conns:
                    self.conns.remove(c)
                    c.close()

    def do_echo(self, c, res) -> None:
        buf = bytearray(256 * 1024)
        mv = memoryview(buf)
        while True:
            n = c.recv_into(buf)
            if n == 0:
                return
            c.sendall(mv[:n])
            res["bytes"] += n
            with self.lock:
                self.bytes_in += n
                self.bytes_out += n

    def do_sink(self, c, res) -> None:
        buf = bytearray(256 * 1024)
        mv = memoryview(buf)
        off = 0
        while True:
            n = c.recv_into(buf)
            if n == 0:
                break
            if self.pattern is not None and res["ok"] and not self.pattern.check(off, mv[:n]):
                res["ok"] = False
                with self.lock:
                    self.errors.append(f"sink: pattern mismatch in [{off}, {off + n})")
            off += n
            with self.lock:
                self.bytes_in += n
        res["bytes"] = off

    def do_source(self, c, res) -> None:
        off = 0
        pat = self.pattern or Pattern(0)
        while off < self.nbytes:
            n = min(256 * 1024, self.nbytes - off)
            c.sendall(pat.chunk(off, n))
            off += n
            with self.lock:
                self.bytes_out += n
        res["bytes"] = off

    def do_hold(self, c, res) -> None:
        while not self.stop and c in self.conns:
            time.sleep(0.02)

    def stats(self) -> dict:
        with self.lock:
            return {"accepted": self.accepted, "done": self.done, "bytes_in": self.bytes_in,
                    "bytes_out": self.bytes_out, "errors": list(self.errors),
                    "results": list(self.results), "open": len(self.conns)}

    def reset_all(self) -> dict:
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        return {"reset": len(conns)}

    def close(self) -> dict:
        self.stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return self.stats()


def main() -> None:
    mode, addr, seed, nbytes, rcvbuf = sys.argv[1:6]
    srv = Server(mode, addr, int(seed), int(nbytes), int(rcvbuf))
    print(f"port {srv.port}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "stats":
            out = srv.stats()
        elif cmd == "rst":
            out = srv.reset_all()
        elif cmd == "close":
            print(json.dumps(srv.close()), flush=True)
            return
        else:
            out = {"error": f"unknown command {cmd!r}"}
        print(json.dumps(out), flush=True)
    srv.close()


if __name__ == "__main__":
    main()
