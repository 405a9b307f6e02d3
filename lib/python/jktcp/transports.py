# SPDX-License-Identifier: MIT
"""Transports: where a Handle's raw IP frames come from and go to.

A transport is handed to exactly one :class:`jktcp.Handle`, which owns it from
then on (the library frees it when the handle closes). Three kinds:

* :func:`tun` — attach to an existing TUN device (``IFF_TUN | IFF_NO_PI``,
  packet framing): jktcp is the far end of the kernel's interface.
* :func:`fd` — any file descriptor or socket carrying frames, one per
  read/write (``framing="packet"``: TUN, ``SOCK_SEQPACKET``, ``SOCK_DGRAM``) or
  back to back (``framing="stream"``: a Unix or TCP stream socket, a pipe).
* :func:`stream_object` — a Python object with ``recv``/``send`` or
  ``read``/``write`` (e.g. an ``ssl.SSLSocket``: iOS's CDTunnel shape). The
  library calls back into Python on its I/O thread for every read and write.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import time
from ctypes import byref, c_void_p, sizeof
from typing import Any, Dict, Optional, Union

from . import _ffi
from ._ffi import EAGAIN, Framing, IoOps, TransportFlag, lib

try:  # ssl is optional in a Python build
    import ssl as _ssl

    _WOULD_BLOCK: tuple = (BlockingIOError, InterruptedError, _ssl.SSLWantReadError,
                           _ssl.SSLWantWriteError)
    _SSL_EOF: tuple = (_ssl.SSLZeroReturnError, _ssl.SSLEOFError)
    _SSL_ERROR: tuple = (_ssl.SSLError,)
except ImportError:  # pragma: no cover
    _WOULD_BLOCK = (BlockingIOError, InterruptedError)
    _SSL_EOF = ()
    _SSL_ERROR = ()

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

FramingArg = Union[str, int, Framing]


def _framing(f: FramingArg) -> Framing:
    if isinstance(f, str):
        try:
            return Framing[f.upper()]
        except KeyError:
            raise ValueError(f"framing must be 'packet', 'stream' or 'tun_offload', not {f!r}"
                             ) from None
    return Framing(f)


class Transport:
    """Base class: a not-yet-used jktcp transport.

    ``Handle(transport, ...)`` takes it (once; a second use is ValueError).
    A transport that never reaches a handle releases what it holds (its fd)
    when closed or collected.
    """

    framing: Framing

    def __init__(self, framing: FramingArg):
        self.framing = _framing(framing)
        self._state = "new"  # new -> taken (library owns it) -> freed

    # -- what subclasses provide -------------------------------------------
    def _create(self) -> c_void_p:  # pragma: no cover - abstract
        raise NotImplementedError

    def _release(self) -> None:
        """Free what the transport holds while it is still ours."""

    # -- used by Handle ----------------------------------------------------
    def _take(self) -> c_void_p:
        if self._state != "new":
            raise ValueError(f"{self!r} was already given to a Handle")
        t = self._create()
        self._state = "taken"
        return t

    def _freed(self) -> None:
        """The library freed the transport (the handle closed or failed)."""
        self._state = "freed"

    def close(self) -> None:
        """Release an unused transport (no-op once a Handle took it)."""
        if self._state == "new":
            self._state = "freed"
            self._release()

    def __del__(self) -> None:
        if getattr(self, "_state", None) == "new":
            self.close()

    def __repr__(self) -> str:
        return f"<jktcp.{type(self).__name__} {self.framing.name.lower()} {self._state}>"


class FdTransport(Transport):
    """Frames over a file descriptor the transport owns (closed with it)."""

    def __init__(self, fd: int, framing: FramingArg, *, coalesce: bool = False,
                 label: str = ""):
        super().__init__(framing)
        self._fd = fd
        self.coalesce = coalesce
        self.label = label or f"fd {fd}"

    def _create(self) -> c_void_p:
        t = c_void_p()
        rc = lib.jktcp_transport_fd(self._fd, int(self.framing), byref(t))
        if rc < 0:
            raise _ffi.error(rc, what=self.label)
        flags = TransportFlag.CLOSE_FD | (TransportFlag.COALESCE if self.coalesce else 0)
        rc = lib.jktcp_transport_set_flags(t, int(flags))
        if rc < 0:
            with _ffi.LibraryCall():
                lib.jktcp_transport_free(t)  # without CLOSE_FD: the fd stays ours
            raise _ffi.error(rc, what=self.label)
        self._fd = -1  # the library closes it now
        return t

    def _release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"<jktcp.FdTransport {self.label} {self.framing.name.lower()} {self._state}>"


def fd(fd_or_socket: Any, framing: FramingArg = "packet", *, coalesce: bool = False
       ) -> FdTransport:
    """A transport over a file descriptor or anything with ``fileno()``.

    The descriptor is duplicated: the transport owns (and closes) the
    duplicate and the caller keeps its own. The open file is switched to
    non-blocking mode, which the caller's object shares: do not use it for
    I/O afterwards. ``coalesce=True`` lets stream framing put several frames
    in one write (off by default: iOS's CDTunnel forwarder needs one per write).
    """
    num = fd_or_socket.fileno() if hasattr(fd_or_socket, "fileno") else int(fd_or_socket)
    if num < 0:
        raise OSError(errno.EBADF, "not an open file descriptor")
    return FdTransport(os.dup(num), framing, coalesce=coalesce, label=f"fd {num}")


def tun(name: str, *, create: bool = False) -> FdTransport:
    """Attach to the TUN device ``name`` (``IFF_TUN | IFF_NO_PI``: packet framing).

    The device must exist in this network namespace (``ip tuntap add dev NAME
    mode tun``, addresses and ``up`` set by whoever configures it) and must not
    be attached elsewhere (OSError EBUSY). ``create=True`` lets the kernel
    create a non-persistent device if there is none (needs CAP_NET_ADMIN).
    """
    if len(name.encode()) >= 16:
        raise ValueError(f"TUN name {name!r} is longer than 15 bytes")
    if not create:
        try:
            socket.if_nametoindex(name)
        except OSError:
            raise OSError(errno.ENODEV, f"no network interface {name!r} in this network "
                                        f"namespace (create it with: ip tuntap add dev {name} "
                                        f"mode tun)") from None
    f = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(f, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError as e:
        os.close(f)
        raise OSError(e.errno, f"TUNSETIFF {name}: {os.strerror(e.errno or 0)}") from None
    return FdTransport(f, Framing.PACKET, label=f"tun {name}")


class ObjectTransport(Transport):
    """Frames through a Python object's methods, called on the I/O thread.

    Reads use ``recv_into``/``readinto`` (zero-copy into jktcp's buffer) or
    ``recv``/``read``; writes use ``send`` (given a memoryview of jktcp's
    buffer, valid during the call) or ``write`` (given bytes). The object is
    switched to non-blocking mode: a read with nothing ready must raise
    BlockingIOError / ``ssl.SSLWantReadError`` or return None. The callbacks
    never raise into C: an exception becomes a negative errno (the handle's
    transport then fails: streams get ENETDOWN and ``Handle.error()`` says
    why); the last one is kept in ``last_exception``.

    Counters (``callback_stats()``) time every call from inside Python.
    """

    def __init__(self, obj: Any, framing: FramingArg = "stream", *, close: bool = False,
                 poll_fd: Optional[int] = None):
        super().__init__(framing)
        self.obj = obj
        self._close_obj = close
        if poll_fd is None:
            poll_fd = obj.fileno()
        self.poll_fd = int(poll_fd)
        if hasattr(obj, "setblocking"):
            obj.setblocking(False)
        else:
            os.set_blocking(self.poll_fd, False)
        if hasattr(obj, "recv_into"):
            self._read, self._into = obj.recv_into, True
        elif hasattr(obj, "readinto"):
            self._read, self._into = obj.readinto, True
        elif hasattr(obj, "recv"):
            self._read, self._into = obj.recv, False
        elif hasattr(obj, "read"):
            self._read, self._into = obj.read, False
        else:
            raise TypeError(f"{type(obj).__name__} has no recv_into/readinto/recv/read")
        if hasattr(obj, "send"):
            self._write, self._write_view = obj.send, True
        elif hasattr(obj, "write"):
            self._write, self._write_view = obj.write, False
        else:
            raise TypeError(f"{type(obj).__name__} has no send/write")
        self.read_calls = self.write_calls = 0
        self.read_bytes = self.write_bytes = 0
        self.callback_ns = 0
        self.last_exception: Optional[BaseException] = None
        self.obj_closed = False
        self._ops: Optional[IoOps] = None
        self._tstate: Optional[int] = None  # the I/O thread's pinned PyThreadState

    def _create(self) -> c_void_p:
        ops = IoOps()
        ops.read = _ffi.READ_FN(self._on_read)
        ops.write = _ffi.WRITE_FN(self._on_write)
        ops.close = _ffi.CLOSE_FN(self._on_close)
        ops.poll_fd = self.poll_fd
        t = c_void_p()
        rc = lib.jktcp_transport_ops(byref(ops), sizeof(ops), None, int(self.framing), byref(t))
        if rc < 0:
            raise _ffi.error(rc, what="jktcp_transport_ops")
        # The library copied the struct, not the callbacks: they live as long
        # as this object, which the Handle keeps until jktcp_handle_close returned.
        self._ops = ops
        return t

    def _fail(self, e: BaseException, code: int) -> int:
        self.last_exception = e
        return -code

    def _on_read(self, ctx: Any, buf: int, length: int) -> int:
        if self._tstate is None:
            self._tstate = _ffi.pin_thread_state()  # once, on the I/O thread
        tls = _ffi.tls
        tls.in_callback = True
        t0 = time.perf_counter_ns()
        mv = None
        try:
            self.read_calls += 1
            if self._into:
                mv = _ffi.memory_view(buf, length, True)
                n = self._read(mv)
            else:
                data = self._read(length)
                n = None if data is None else len(data)
                if n:
                    ctypes.memmove(buf, data, n)
            if n is None:
                return EAGAIN
            self.read_bytes += n
            return n
        except _WOULD_BLOCK:
            return EAGAIN
        except _SSL_EOF:
            return 0
        except _SSL_ERROR as e:
            return self._fail(e, errno.EPROTO)
        except OSError as e:
            return self._fail(e, e.errno or errno.EIO)
        except BaseException as e:  # never raise into C
            return self._fail(e, errno.EIO)
        finally:
            if mv is not None:
                try:
                    mv.release()
                except BaseException:
                    pass
            self.callback_ns += time.perf_counter_ns() - t0
            tls.in_callback = False

    def _on_write(self, ctx: Any, buf: int, length: int) -> int:
        if self._tstate is None:
            self._tstate = _ffi.pin_thread_state()  # once, on the I/O thread
        tls = _ffi.tls
        tls.in_callback = True
        t0 = time.perf_counter_ns()
        mv = None
        try:
            self.write_calls += 1
            mv = _ffi.memory_view(buf, length, False)
            n = self._write(mv if self._write_view else mv.tobytes())
            if n is None:
                return EAGAIN
            self.write_bytes += n
            return n
        except _WOULD_BLOCK:
            return EAGAIN
        except _SSL_ERROR as e:
            return self._fail(e, errno.EPROTO)
        except OSError as e:
            return self._fail(e, e.errno or errno.EIO)
        except BaseException as e:
            return self._fail(e, errno.EIO)
        finally:
            if mv is not None:
                try:
                    mv.release()
                except BaseException:
                    pass
            self.callback_ns += time.perf_counter_ns() - t0
            tls.in_callback = False

    def _on_close(self, ctx: Any) -> None:
        tls = _ffi.tls
        tls.in_callback = True
        try:
            if self._close_obj and not self.obj_closed:
                self.obj.close()
            self.obj_closed = True
        except BaseException as e:
            self.last_exception = e
        finally:
            tls.in_callback = False

    def _freed(self) -> None:
        """The handle closed: its I/O thread was joined and the library freed
        the transport, so the callbacks and the thread state may go."""
        super()._freed()
        self._ops = None
        ts, self._tstate = self._tstate, None
        if ts is not None:
            _ffi.drop_thread_state(ts)

    def _release(self) -> None:
        if self._close_obj:
            self.obj.close()

    def callback_stats(self) -> Dict[str, float]:
        """Calls, bytes and the time spent in the Python callbacks so far."""
        calls = self.read_calls + self.write_calls
        return {
            "read_calls": self.read_calls,
            "write_calls": self.write_calls,
            "read_bytes": self.read_bytes,
            "write_bytes": self.write_bytes,
            "seconds": self.callback_ns / 1e9,
            "us_per_call": (self.callback_ns / 1e3 / calls) if calls else 0.0,
        }

    def __repr__(self) -> str:
        return (f"<jktcp.ObjectTransport {type(self.obj).__name__} "
                f"{self.framing.name.lower()} {self._state}>")


def stream_object(obj: Any, framing: FramingArg = "stream", *, close: bool = False,
                  poll_fd: Optional[int] = None) -> ObjectTransport:
    """A transport over a Python object with ``recv``/``send`` or ``read``/``write``.

    Typical use: an ``ssl.SSLSocket`` whose handshake is done, carrying IP
    frames back to back (iOS CDTunnel / RemoteXPC)::

        tls = ctx.wrap_socket(socket.create_connection(addr))
        with jktcp.Handle(jktcp.stream_object(tls), local="fd00::2", peer="fd00::1") as h:
            ...

    ``poll_fd`` (default ``obj.fileno()``) must poll readable whenever a read
    may return data and writable when a write may progress. ``close=True``
    closes the object when the library frees the transport.
    """
    return ObjectTransport(obj, framing, close=close, poll_fd=poll_fd)


class FaultyTransport(Transport):
    """A transport wrapped in jktcp's fault injector (``jktcp_transport_faulty``).

    :meth:`blackout` and :meth:`stats` work while the handle that took it
    runs (the library frees the wrapper with the adapter); otherwise they
    raise OSError(EBADF).
    """

    def __init__(self, inner: Transport, config: "_ffi.FaultConfig"):
        super().__init__(inner.framing)
        self.inner = inner
        self.config = config
        self._ptr: Optional[int] = None

    def _create(self) -> c_void_p:
        t = self.inner._take()
        out = c_void_p()
        with _ffi.LibraryCall():  # takes inner, frees it on failure
            rc = lib.jktcp_transport_faulty(t, byref(self.config), sizeof(self.config), byref(out))
        if rc < 0:
            self.inner._freed()
            raise _ffi.error(rc, what="jktcp_transport_faulty")
        self._ptr = out.value
        return out

    def _freed(self) -> None:
        super()._freed()
        self._ptr = None
        self.inner._freed()

    def _release(self) -> None:
        self.inner.close()

    def _live(self) -> int:
        if self._ptr is None or self._state != "taken":
            raise OSError(errno.EBADF, "the faulty transport is not in a running handle")
        return self._ptr

    def blackout(self, on: bool) -> None:
        """Drop every frame both ways while on (``jktcp_transport_fault_blackout``)."""
        rc = lib.jktcp_transport_fault_blackout(self._live(), 1 if on else 0)
        if rc < 0:
            raise _ffi.error(rc)

    def stats(self) -> "_ffi.FaultStats":
        """Counters so far (``jktcp_transport_fault_stats``); ``.in_`` and ``.out``."""
        st = _ffi.FaultStats()
        rc = lib.jktcp_transport_fault_stats(self._live(), byref(st), sizeof(st))
        if rc < 0:
            raise _ffi.error(rc)
        return st

    def __repr__(self) -> str:
        return f"<jktcp.FaultyTransport over {self.inner!r} {self._state}>"


def faulty(inner: Transport, *, seed: int = 0, both: Optional[Dict[str, float]] = None,
           inbound: Optional[Dict[str, float]] = None,
           outbound: Optional[Dict[str, float]] = None, pool_frames: int = 0,
           slot_bytes: int = 0) -> FaultyTransport:
    """Wrap ``inner`` in jktcp's fault injector (for tests).

    ``both``, ``inbound`` (frames toward jktcp) and ``outbound`` (frames it
    sends) are ``jktcp_fault_dir`` fields: ``drop``, ``duplicate``,
    ``reorder``, ``corrupt``, ``truncate``, ``delay`` (probabilities),
    ``reorder_frames``, ``reorder_max_us``, ``corrupt_bits``, ``delay_us``,
    ``mtu``, ``mtu_icmp``. ``seed`` makes the faults reproducible.
    """
    cfg = _ffi.FaultConfig()
    cfg.seed = seed
    cfg.pool_frames = pool_frames
    cfg.slot_bytes = slot_bytes
    names = {n for n, _ in _ffi.FaultDir._fields_}
    for target, fields in ((cfg.in_, both), (cfg.out, both), (cfg.in_, inbound),
                           (cfg.out, outbound)):
        for k, v in (fields or {}).items():
            if k not in names:
                raise TypeError(f"unknown fault field {k!r}; fields: {', '.join(sorted(names))}")
            setattr(target, k, v)
    return FaultyTransport(inner, cfg)


__all__ = ["Transport", "FdTransport", "ObjectTransport", "FaultyTransport", "fd", "tun",
           "stream_object", "faulty"]
