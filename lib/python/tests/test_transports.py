# SPDX-License-Identifier: MIT
"""stream_object with every method shape, and callbacks that fail."""
from __future__ import annotations

import errno
import socket
import time

import pytest

import jktcp
from conftest import KERNEL4, LOCAL4, Pattern, recv_exact


class RecvSend:
    """Only recv/send (bytes in, count out)."""

    def __init__(self, sock):
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()

    def setblocking(self, flag):
        self.sock.setblocking(flag)

    def recv(self, n):
        return self.sock.recv(n)

    def send(self, b):
        return self.sock.send(b)

    def close(self):
        self.sock.close()


class ReadWrite:
    """Only read/write, file-like: None when nothing is ready."""

    def __init__(self, sock):
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()

    def read(self, n):
        try:
            return self.sock.recv(n)
        except BlockingIOError:
            return None

    def write(self, b):
        assert isinstance(b, bytes)  # write() gets a copy, never jktcp's buffer
        try:
            return self.sock.send(b)
        except BlockingIOError:
            return None

    def close(self):
        self.sock.close()


SHAPES = {
    "recv_into/send": lambda s: s,
    "readinto/write (SocketIO)": lambda s: s.makefile("rwb", buffering=0),
    "recv/send": RecvSend,
    "read/write": ReadWrite,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_stream_object_shapes(shape):
    a, b = socket.socketpair()
    obj = SHAPES[shape](a)
    ha = jktcp.Handle(jktcp.stream_object(obj), local=LOCAL4, peer=KERNEL4)
    hb = jktcp.Handle(jktcp.fd(b, "stream"), local=KERNEL4, peer=LOCAL4)
    b.close()
    pat = Pattern(5)
    with ha, hb, hb.listen(9000) as lst:
        with ha.connect(9000, timeout=5) as s, lst.accept(timeout=5) as r:
            s.sendall(pat.chunk(0, 1_000_000))
            assert pat.check(0, recv_exact(r, 1_000_000))
            r.sendall(b"back")
            assert recv_exact(s, 4) == b"back"
        cs = ha.transport.callback_stats()
        assert cs["read_calls"] > 0 and cs["write_calls"] > 0 and cs["write_bytes"] > 1_000_000
        assert ha.transport.last_exception is None
    obj.close()  # a SocketIO keeps its socket open until it is closed itself
    a.close()


def test_callback_exception_fails_the_transport_not_the_process():
    """An exception in a callback never reaches C: the transport fails with
    its errno, streams get ENETDOWN, Handle.error() and last_exception say why."""
    a, b = socket.socketpair()

    class Exploding(RecvSend):
        armed = False

        def recv(self, n):
            if self.armed:
                raise RuntimeError("boom in recv")
            return super().recv(n)

    obj = Exploding(a)
    ha = jktcp.Handle(jktcp.stream_object(obj), local=LOCAL4, peer=KERNEL4)
    hb = jktcp.Handle(jktcp.fd(b, "stream"), local=KERNEL4, peer=LOCAL4)
    b.close()
    with ha, hb, hb.listen(9001) as lst:
        s = ha.connect(9001, timeout=5)
        r = lst.accept(timeout=5)
        obj.armed = True
        r.sendall(b"wake the reader")
        s.settimeout(5)
        with pytest.raises(OSError) as ei:
            s.recv(10)
        assert ei.value.errno == errno.ENETDOWN
        assert ha.error() == -errno.EIO
        assert isinstance(ha.transport.last_exception, RuntimeError)
        with pytest.raises(OSError) as ei:
            ha.connect(9001, timeout=1)
        assert ei.value.errno == errno.ENETDOWN
        s.close()
        r.close()
    a.close()


def test_end_of_stream_from_the_object():
    """The object reports end of stream (recv returns b''): the handle's
    transport error is -EPIPE."""
    a, b = socket.socketpair()
    ha = jktcp.Handle(jktcp.stream_object(RecvSend(a), close=True), local=LOCAL4, peer=KERNEL4)
    b.close()  # the far end goes away
    with ha:
        deadline = time.monotonic() + 5
        while ha.error() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ha.error() == -errno.EPIPE
        with pytest.raises(OSError) as ei:
            ha.connect(80, timeout=1)
        assert ei.value.errno == errno.ENETDOWN
    assert ha.transport is None


def thread_states() -> int:
    """How many PyThreadStates the interpreter has (public C API)."""
    import ctypes
    api = ctypes.pythonapi
    api.PyInterpreterState_Get.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Next.restype = ctypes.c_void_p
    api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
    n, ts = 0, api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while ts:
        n += 1
        ts = api.PyThreadState_Next(ts)
    return n


def test_io_thread_state_kept_then_deleted():
    """The first callback on an I/O thread keeps its thread state (fast
    callbacks); closing the handle deletes it: none leak."""
    before = thread_states()
    for _ in range(10):
        a, b = socket.socketpair()
        h = jktcp.Handle(jktcp.stream_object(RecvSend(a)), local=LOCAL4, peer=KERNEL4)
        s = h.connect_nowait(80)  # a SYN goes out: a write callback on the I/O thread
        deadline = time.monotonic() + 5
        while h.transport.write_calls == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert h.transport._tstate is not None
        assert thread_states() == before + 1
        s.close()
        h.close(linger=0)
        a.close()
        b.close()
    assert thread_states() == before


def test_no_pin_on_python_threads():
    """Inside the library calls that may call back on a Python thread, the
    callback never keeps (and so never deletes) that thread's state."""
    import threading
    from jktcp import _ffi

    out = []

    def run():
        with _ffi.LibraryCall():
            out.append(_ffi.pin_thread_state())
        out.append(getattr(_ffi.tls, "lib_call", None))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert out == [None, 0]


def test_faulty_transport():
    """jktcp.faulty: 2 % loss, reordering and duplicates both ways on one
    side of a back-to-back pair; every byte still arrives; blackout stalls."""
    a, b = socket.socketpair()
    ft = jktcp.faulty(jktcp.fd(a, "stream"), seed=7,
                      both={"drop": 0.02, "reorder": 0.02, "duplicate": 0.01})
    a.close()
    ha = jktcp.Handle(ft, local=LOCAL4, peer=KERNEL4, rto_min_ms=20)
    hb = jktcp.Handle(jktcp.fd(b, "stream"), local=KERNEL4, peer=LOCAL4, rto_min_ms=20)
    b.close()
    pat = Pattern(11)
    with ha, hb, hb.listen(9100) as lst:
        with ha.connect(9100, timeout=10) as s, lst.accept(timeout=10) as r:
            r.settimeout(20)
            s.sendall(pat.chunk(0, 1_000_000))
            assert pat.check(0, recv_exact(r, 1_000_000))
        st = ft.stats()
        assert st.out.frames > 100 and st.out.dropped > 0 and st.in_.dropped >= 0
        assert st.out.passed >= st.out.frames - st.out.dropped
        ft.blackout(True)
        with pytest.raises(TimeoutError):
            ha.connect(9100, timeout=0.3)
        assert ft.stats().out.blackout > 0
        ft.blackout(False)
        with ha.connect(9100, timeout=10):
            pass
    with pytest.raises(OSError) as ei:
        ft.stats()
    assert ei.value.errno == errno.EBADF
    with pytest.raises(TypeError):
        jktcp.faulty(jktcp.fd(0), both={"nonsense": 1})
