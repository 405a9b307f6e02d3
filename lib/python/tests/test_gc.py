# SPDX-License-Identifier: MIT
"""Lifetimes: objects collected in any order, closed under blocked threads,
unclosed at exit — never a crash, and ResourceWarning like socket."""
from __future__ import annotations

import errno
import gc
import itertools
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest

import jktcp
from conftest import KERNEL4, LOCAL4, PKG_ROOT, b2b, recv_exact


def make_world(kind: str):
    """A b2b pair with a connected stream each way and a listener, over fd or
    Python-callback transports."""
    ha, hb = b2b(kind)
    lst = hb.listen(7100)
    sa = ha.connect(7100, timeout=5)
    sb = lst.accept(timeout=5)
    sa.sendall(b"ping")
    assert recv_exact(sb, 4) == b"ping"
    return {"ha": ha, "hb": hb, "lst": lst, "sa": sa, "sb": sb}


@pytest.mark.parametrize("kind", ["fd", "object"])
def test_collected_in_every_order(kind):
    names = ["ha", "hb", "lst", "sa", "sb"]
    orders = list(itertools.permutations(names))[::7]  # 18 of the 120 orders
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for order in orders:
            w = make_world(kind)
            for name in order:  # drop the references one by one; collect after each
                del w[name]
                gc.collect()
            assert not w
        # a cycle holding everything: finalisers run in whatever order gc picks
        for _ in range(3):
            w = make_world(kind)
            w["self"] = w
            for o in list(w.values()):
                if o is not w:
                    o.cycle = w
            del w
            gc.collect()
    unclosed = [str(c.message) for c in caught if issubclass(c.category, ResourceWarning)]
    assert any("unclosed <jktcp.Stream" in m for m in unclosed)
    assert any("unclosed <jktcp.Handle" in m for m in unclosed)
    assert any("unclosed <jktcp.Listener" in m for m in unclosed)


@pytest.mark.parametrize("kind", ["fd", "object"])
def test_closed_in_every_order(kind):
    names = ["ha", "hb", "lst", "sa", "sb"]
    for order in list(itertools.permutations(names))[::11]:
        w = make_world(kind)
        for name in order:
            w[name].close()
        for name in order:  # twice: nothing happens
            w[name].close()


def test_close_under_blocked_threads():
    """Threads blocked in recv/accept when the stream, listener or handle is
    closed from another thread get EBADF / ESHUTDOWN at once."""
    w = make_world("fd")
    results = {}

    def blocked(name, call):
        t0 = time.monotonic()
        try:
            call()
            results[name] = ("returned", time.monotonic() - t0)
        except OSError as e:
            results[name] = (errno.errorcode.get(e.errno, e.errno), time.monotonic() - t0)

    lst2 = w["ha"].listen(7200)
    # a second connection for the stream closed under its reader: closing sa
    # itself would send FIN to sb, whose reader could then see a clean EOF
    sc = w["ha"].connect(7100, timeout=5)
    sd = w["lst"].accept(timeout=5)
    threads = [
        threading.Thread(target=blocked, args=("recv-stream-closed", lambda: sc.recv(1))),
        threading.Thread(target=blocked, args=("accept-listener-closed", lst2.accept)),
        threading.Thread(target=blocked, args=("recv-handle-closed", lambda: w["sb"].recv(1))),
        threading.Thread(target=blocked, args=("accept-handle-closed", w["lst"].accept)),
    ]
    for t in threads:
        t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    sc.close()
    lst2.close()
    w["hb"].close(linger=0)
    for t in threads:
        t.join(5)
    took = time.monotonic() - t0
    assert {k: v[0] for k, v in results.items()} == {
        "recv-stream-closed": "EBADF", "accept-listener-closed": "EBADF",
        "recv-handle-closed": "ESHUTDOWN", "accept-handle-closed": "ESHUTDOWN"}, results
    assert took < 2.0, (took, results)
    for o in list(w.values()) + [sd]:
        o.close()


def test_handle_dropped_inside_a_callback_thread(monkeypatch):
    """A Handle whose last reference goes away while the I/O thread of
    another handle runs Python (a transport callback collects garbage) is
    closed from a helper thread: jktcp_handle_close never runs on an I/O thread."""
    box = []

    class Dropper:
        """A socket-like object whose recv_into drops the victim handle."""

        def __init__(self, sock):
            self.sock = sock

        def fileno(self):
            return self.sock.fileno()

        def setblocking(self, flag):
            self.sock.setblocking(flag)

        def recv_into(self, b):
            if box:
                box.clear()  # the victim's last reference, on this I/O thread
                gc.collect()
            return self.sock.recv_into(b)

        def send(self, b):
            return self.sock.send(b)

    import jktcp._core as core
    deferred = []
    real = core._close_later

    def spy(hid, transport):
        deferred.append((threading.current_thread().name, hid.id))
        real(hid, transport)

    monkeypatch.setattr(core, "_close_later", spy)
    gc.collect()  # earlier tests' garbage would be finalised on the I/O thread too
    a, b = socket.socketpair()
    x, y = socket.socketpair()
    victim = jktcp.Handle(jktcp.fd(x, "stream"), local=LOCAL4, peer=KERNEL4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        box.append(victim)
        victim_id = victim.id
        del victim
        with jktcp.Handle(jktcp.stream_object(Dropper(a)), local=LOCAL4, peer=KERNEL4) as h:
            s = h.connect_nowait(80)  # the SYN goes into b
            b.send(b"\x45")  # wake the transport: a read callback runs
            deadline = time.monotonic() + 5
            while box and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not box
            s.close()
    deadline = time.monotonic() + 5
    while ("jktcp-close", victim_id) not in deferred and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ("jktcp-close", victim_id) in deferred, deferred
    for o in (a, b, x, y):
        o.close()


EXIT_SCRIPT = r"""
import socket, sys, gc
sys.path.insert(0, sys.argv[1])
import jktcp
a, b = socket.socketpair()
c, d = socket.socketpair()
ha = jktcp.Handle(jktcp.stream_object(a), local="198.18.0.2", peer="198.18.0.1")
hb = jktcp.Handle(jktcp.fd(b, "stream"), local="198.18.0.1", peer="198.18.0.2")
hc = jktcp.Handle(jktcp.fd(c, "stream"), local="198.18.0.2", peer="198.18.0.1")
lst = hb.listen(80)
s = ha.connect(80, timeout=5)
r = lst.accept(timeout=5)
s.sendall(b"x" * 100000)          # unread data everywhere
pending = hc.connect_nowait(81)   # never answered
cycle = [ha, hb, s, r, lst]
cycle.append(cycle)
if sys.argv[2] == "exit":
    sys.exit(3)                     # everything left open at exit
raise RuntimeError("boom")          # or an exception unwinding past them
"""


@pytest.mark.parametrize("how", ["exit", "raise"])
def test_unclosed_objects_at_interpreter_exit(how):
    r = subprocess.run([sys.executable, "-X", "dev", "-c", EXIT_SCRIPT, PKG_ROOT, how],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == (3 if how == "exit" else 1), r.stderr
    assert "Fatal" not in r.stderr and "Segmentation" not in r.stderr, r.stderr
    if how == "raise":
        assert "RuntimeError: boom" in r.stderr
