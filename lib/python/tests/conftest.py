# SPDX-License-Identifier: MIT
"""Shared fixtures: a private network namespace, a TUN device, kernel servers.

NETWORK RULE: traffic goes only to loopback or to addresses inside the
namespace these tests run in (198.18.0.0/15, fd00::/8): the kernel side is
198.18.0.1 / fd00::1 on the TUN device ``jkpy0``, jktcp is 198.18.0.2 /
fd00::2 at its far end. The tests run in a private namespace: the Criterion
test (tests/system/test_python.c) unshares one before it starts pytest; run by
hand as root, this file unshares one itself before any test; anywhere else
the tests that need the kernel skip.
"""
from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)
if PKG_ROOT not in sys.path:
    sys.path.insert(0, PKG_ROOT)

import jktcp  # noqa: E402

TUN = "jkpy0"
MTU = 16000
KERNEL4, LOCAL4 = "198.18.0.1", "198.18.0.2"
KERNEL6, LOCAL6 = "fd00::1", "fd00::2"
_ALLOWED = [ipaddress.ip_network(n) for n in
            ("198.18.0.0/15", "fd00::/8", "127.0.0.0/8", "::1/128")]

REPORT: List[str] = []


def report(line: str) -> None:
    """A figure for the summary at the end of the run (and JKTCP_PY_REPORT)."""
    REPORT.append(line)
    path = os.environ.get("JKTCP_PY_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: D103
    if REPORT:
        terminalreporter.section("jktcp figures")
        for line in REPORT:
            terminalreporter.write_line(line)


def check_addr(addr: str) -> str:
    """Refuse any address outside the test namespace's ranges and loopback."""
    ip = ipaddress.ip_address(addr)
    if not any(ip in n for n in _ALLOWED):
        raise AssertionError(f"test traffic to {addr} is not allowed")
    return addr


# ---------------------------------------------------------------------------
# The namespace: set up once, at import, while pytest has no other thread
# ---------------------------------------------------------------------------

def _netns_ino(pid: str) -> Optional[int]:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        pass


def _enter_netns() -> str:
    """'' when in a private namespace (entered here if need be), else why not."""
    own, init = _netns_ino("self"), _netns_ino("1")
    if own is None:
        return "no /proc/self/ns/net"
    if init is None or own == init:
        if threading.active_count() != 1:
            return "cannot unshare: other threads are running"
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
            return f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())} (needs root)"
        if _netns_ino("self") == init:
            return "still in the initial namespace"
    for dev in ("default", "all"):
        for key, val in (("accept_dad", "0"), ("dad_transmits", "0"),
                         ("router_solicitations", "0"), ("accept_ra", "0"), ("autoconf", "0"),
                         ("disable_ipv6", "0")):
            _write(f"/proc/sys/net/ipv6/conf/{dev}/{key}", val)
    r = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"ip link set lo up: {r.stderr.strip()}"
    return ""


NETNS_PROBLEM = _enter_netns()

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB


def _make_tun() -> str:
    """Create the persistent TUN device jkpy0 with the kernel-side addresses;
    '' or why not."""
    try:
        f = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"/dev/net/tun: {e.strerror}"
    try:
        fcntl.ioctl(f, TUNSETIFF, struct.pack("16sH22x", TUN.encode(), 0x1001))
        fcntl.ioctl(f, TUNSETPERSIST, 1)
    except OSError as e:
        return f"TUNSETIFF: {e.strerror}"
    finally:
        os.close(f)
    for key, val in (("accept_dad", "0"), ("dad_transmits", "0"), ("router_solicitations", "0"),
                     ("accept_ra", "0"), ("autoconf", "0"), ("disable_ipv6", "0")):
        _write(f"/proc/sys/net/ipv6/conf/{TUN}/{key}", val)
    for cmd in (["ip", "link", "set", TUN, "mtu", str(MTU), "txqueuelen", "1000"],
                ["ip", "addr", "add", KERNEL4 + "/24", "dev", TUN],
                ["ip", "-6", "addr", "add", KERNEL6 + "/64", "dev", TUN, "nodad"],
                ["ip", "link", "set", TUN, "up"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            return f"{' '.join(cmd)}: {r.stderr.strip()}"
    return ""


_TUN_STATE: dict = {}


@pytest.fixture(scope="session")
def tun_device() -> str:
    """The TUN device's name (created once per run; attach with jktcp.tun)."""
    if NETNS_PROBLEM:
        pytest.skip(f"no private network namespace: {NETNS_PROBLEM}")
    if "problem" not in _TUN_STATE:
        _TUN_STATE["problem"] = _make_tun()
    if _TUN_STATE["problem"]:
        pytest.skip(f"no TUN device: {_TUN_STATE['problem']}")
    return TUN


def addrs(family: int):
    """(kernel address, jktcp address) for a family."""
    return (KERNEL6, LOCAL6) if family == socket.AF_INET6 else (KERNEL4, LOCAL4)


def wait_kernel_addr(family: int, timeout: float = 3.0) -> None:
    """Wait until the kernel takes frames for its address (IPv6 inserts its
    local route from a workqueue after the address appears)."""
    kernel, local = addrs(family)
    end = time.monotonic() + timeout
    while True:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.bind((kernel, 0))
                s.connect((local, 9))
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.01)


@pytest.fixture
def make_handle(tun_device):
    """make_handle(family=AF_INET, **kw) -> a Handle attached to the TUN
    (closed at the end of the test)."""
    made: List[jktcp.Handle] = []

    def make(family: int = socket.AF_INET, **kw) -> jktcp.Handle:
        kernel, local = addrs(family)
        wait_kernel_addr(family)
        kw.setdefault("mtu", MTU)
        h = jktcp.Handle(jktcp.tun(tun_device), local=local, peer=check_addr(kernel), **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close(linger=0.2)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

from kserver import Pattern  # noqa: E402  (shared with the server process)

__all__ = ["Pattern", "KernelServer", "recv_exact", "report", "check_addr", "addrs", "b2b",
           "poll_readable", "wait_kernel_addr", "KERNEL4", "LOCAL4", "KERNEL6", "LOCAL6", "MTU",
           "PKG_ROOT", "TUN"]

KSERVER = os.path.join(HERE, "kserver.py")


def recv_exact(stream, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        d = stream.recv(n - len(out))
        if not d:
            raise EOFError(f"EOF after {len(out)} of {n} bytes")
        out += d
    return bytes(out)


# ---------------------------------------------------------------------------
# Kernel-side servers: kernel sockets in this namespace, in a child process
# ---------------------------------------------------------------------------

class KernelServer:
    """A kernel TCP server on the TUN's kernel address (see kserver.py).

    modes: echo (until EOF, then close), sink (read to EOF; verify pattern
    ``seed`` if given, else count), source (send ``nbytes`` of pattern
    ``seed``, then close), hold (accept, never read, until stopped).
    """

    def __init__(self, mode: str, family: int = socket.AF_INET, *, seed: Optional[int] = None,
                 nbytes: int = 0, rcvbuf: int = 0):
        self.mode = mode
        kernel, _ = addrs(family)
        self.addr = check_addr(kernel)
        self.proc = subprocess.Popen(
            [sys.executable, KSERVER, mode, kernel, str(-1 if seed is None else seed),
             str(nbytes), str(rcvbuf)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            self.proc.kill()
            raise RuntimeError(f"kserver did not start: {line}")
        self.port = int(line[1])
        self.final: Optional[dict] = None

    def _cmd(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stats(self) -> dict:
        return self.final if self.final is not None else self._cmd("stats")

    def reset_all(self) -> int:
        """Close every open connection with RST (SO_LINGER 0); how many."""
        return self._cmd("rst")["reset"]

    def wait_done(self, n: int, timeout: float = 20.0) -> dict:
        end = time.monotonic() + timeout
        while True:
            st = self.stats()
            if st["done"] >= n:
                return st
            if time.monotonic() > end:
                raise TimeoutError(f"kernel {self.mode} server: {st['done']} of {n} done")
            time.sleep(0.01)

    def wait_accepted(self, n: int, timeout: float = 5.0) -> None:
        end = time.monotonic() + timeout
        while self.stats()["accepted"] < n:
            if time.monotonic() > end:
                raise TimeoutError("kernel server: no connection")
            time.sleep(0.005)

    def close(self) -> dict:
        if self.final is None:
            try:
                self.final = self._cmd("close")
            except (OSError, ValueError):
                self.final = {}
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdin.close()
            self.proc.stdout.close()
        return self.final


@pytest.fixture
def kserver(tun_device):
    """kserver(mode, family=AF_INET, **kw) -> a running KernelServer."""
    made: List[KernelServer] = []

    def make(mode: str, family: int = socket.AF_INET, **kw) -> KernelServer:
        wait_kernel_addr(family)
        s = KernelServer(mode, family, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


# ---------------------------------------------------------------------------
# Back-to-back handles over a socketpair (no kernel TCP involved)
# ---------------------------------------------------------------------------

def b2b(kind_a: str = "fd", **kw):
    """Two handles joined by a Unix stream socketpair (stream framing).
    kind_a: 'fd' (jktcp.fd) or 'object' (jktcp.stream_object, Python
    callbacks). Returns (handle_a at 198.18.0.2, handle_b at 198.18.0.1)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    if kind_a == "object":
        ta = jktcp.stream_object(a, close=True)
    else:
        ta = jktcp.fd(a, "stream")
        a.close()
    tb = jktcp.fd(b, "stream")
    b.close()
    ha = jktcp.Handle(ta, local=LOCAL4, peer=KERNEL4, **kw)
    hb = jktcp.Handle(tb, local=KERNEL4, peer=LOCAL4, **kw)
    return ha, hb


def poll_readable(fd: int, timeout: float) -> bool:
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(int(timeout * 1000)))
