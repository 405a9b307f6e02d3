# SPDX-License-Identifier: MIT
"""Handle, Stream and Listener: the threaded jktcp API as Python objects.

One Python object per id (lifetime rules in include/jktcp.h / docs/ffi.md):
streams and listeners keep their Handle alive, so the handle is closed last
when everything is collected; every object closes its id once (explicitly,
with ``with``, or in ``__del__`` with a ResourceWarning), and because ids are
never reused a late or doubled close only gets -EBADF, which is ignored.
"""
from __future__ import annotations

import atexit
import errno
import io
import os
import select
import signal
import socket
import threading
import warnings
import weakref
from ctypes import byref, c_void_p, sizeof
from typing import Any, Callable, Iterator, Optional, Tuple

from . import _ffi
from ._ffi import (EBADF, EINPROGRESS, EINTR, INT_MAX, Buffer, Deadline, HandleId,
                   Info, ListenerId, Option, PollEvent, Stats, StreamId, check_signals, error,
                   lib)
from .transports import Transport

_OPTIONS = {o.name.lower(): o for o in Option}

_live_handles: "weakref.WeakSet[Handle]" = weakref.WeakSet()


def _close_all_handles() -> None:
    """atexit: stop every I/O thread while the interpreter still runs, so that
    no transport callback tries to enter Python during finalisation."""
    for h in list(_live_handles):
        try:
            h.close()
        except Exception:
            pass


atexit.register(_close_all_handles)


def _timeout_arg(timeout: Optional[float]) -> Optional[float]:
    if timeout is None:
        return None
    t = float(timeout)
    if t < 0:
        raise ValueError("timeout must be None or >= 0")
    return t


def _ms(seconds: Optional[float]) -> int:
    if seconds is None:
        return -1
    return min(INT_MAX, max(0, int(seconds * 1000 + 0.5)))


def _port(port: int) -> int:
    p = int(port)
    if not 1 <= p <= 65535:
        raise ValueError(f"port must be 1..65535, not {port!r}")
    return p


def _check(rc: int, what: str = "") -> int:
    if rc < 0:
        raise error(rc, what=what or None)
    return rc


# ---------------------------------------------------------------------------
# Handle
# ---------------------------------------------------------------------------


class Handle:
    """One TCP/IP endpoint on its own I/O thread (``jktcp_handle``).

    ``Handle(transport, local, peer, mtu=None, mss=None, pcap=None, **options)``
    creates the adapter over ``transport`` (which it then owns), applies the
    MTU, MSS cap and options (keyword names are the ``JKTCP_OPT_*`` names in
    lower case: ``sndbuf=1 << 20, nodelay=1, rto_min_ms=50, ...``) and starts
    the I/O thread. Thread-safe: share it between any number of threads.

    ``local`` and ``peer`` are address text, both IPv4 or both IPv6.
    """

    def __init__(self, transport: Transport, local: str, peer: str, *,
                 mtu: Optional[int] = None, mss: Optional[int] = None,
                 pcap: Optional[str] = None, **options: int):
        self._closed = True
        self._transport: Optional[Transport] = None
        if not isinstance(transport, Transport):
            raise TypeError("transport must come from jktcp.tun(), jktcp.fd(), "
                            "jktcp.stream_object() or jktcp.faulty()")
        opts = []
        for name, value in options.items():
            opt = _OPTIONS.get(name)
            if opt is None:
                raise TypeError(f"unknown option {name!r}; options: {', '.join(_OPTIONS)}")
            opts.append((opt, int(value)))
        self.local, self.peer = str(local), str(peer)
        t = transport._take()
        a = c_void_p()
        with _ffi.LibraryCall():  # on failure it frees the transport: callbacks run here
            rc = lib.jktcp_adapter_new(t, self.local.encode(), self.peer.encode(), byref(a))
        if rc < 0:  # the adapter freed the transport too
            transport._freed()
            raise error(rc, what=f"local={self.local!r} peer={self.peer!r}")
        hid = HandleId()
        try:
            if mtu is not None:
                _check(lib.jktcp_adapter_set_mtu(a, int(mtu)), f"mtu={mtu}")
            if mss is not None:
                _check(lib.jktcp_adapter_set_mss(a, int(mss)), f"mss={mss}")
            for opt, value in opts:
                _check(lib.jktcp_adapter_set_option(a, int(opt), value),
                       f"{opt.name.lower()}={value}")
            if pcap is not None:
                _check(lib.jktcp_adapter_pcap(a, os.fsencode(pcap)), f"pcap={pcap}")
            # The I/O thread inherits this mask: with every signal blocked there,
            # process-directed signals (Ctrl-C) go to a Python thread, whose
            # blocked jktcp call then returns -EINTR.
            old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
            try:
                rc = lib.jktcp_handle_start(a, byref(hid))
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
            _check(rc, "jktcp_handle_start")
        except BaseException:
            with _ffi.LibraryCall():
                lib.jktcp_adapter_free(a)  # frees the transport
            transport._freed()
            raise
        self._hid = hid
        self._id = hid.id
        self._transport = transport
        self._closed = False
        _live_handles.add(self)

    # -- properties ---------------------------------------------------------
    @property
    def id(self) -> int:
        """The handle's 64-bit id (never reused in the process)."""
        return self._id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def transport(self) -> Optional[Transport]:
        """The transport while the handle runs (None once closed)."""
        return self._transport

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (f"<jktcp.Handle id={getattr(self, '_id', 0)} {getattr(self, 'local', '?')}->"
                f"{getattr(self, 'peer', '?')} {state}>")

    # -- streams and listeners ----------------------------------------------
    def connect(self, port: int, timeout: Optional[float] = None) -> "Stream":
        """Open a stream to the peer's ``port``.

        ``timeout`` in seconds (None: until the SYN retries decide). Raises
        ConnectionRefusedError, TimeoutError (the attempt is abandoned),
        OSError(ENETDOWN) if the transport failed, OSError(EBADF) on a closed
        handle. ``timeout=0`` is :meth:`connect_nowait`.
        """
        port = _port(port)
        timeout = _timeout_arg(timeout)
        if timeout == 0:
            return self.connect_nowait(port)
        dl = Deadline(timeout)
        sid = StreamId()
        while True:
            rc = lib.jktcp_handle_connect(self._hid, port, dl.ms(), byref(sid))
            if rc != EINTR:
                break
            check_signals()  # the attempt was abandoned: run handlers, try again
            if dl.expired():
                raise TimeoutError("timed out")
        if rc == EINPROGRESS:  # a rounding of the deadline down to 0 ms
            lib.jktcp_stream_close(sid)
            raise TimeoutError("timed out")
        _check(rc, f"connect to port {port}")
        return Stream(self, sid.id)

    def connect_nowait(self, port: int) -> "Stream":
        """Start a connect without waiting for the network (timeout 0).

        Returns a stream that is connecting: its :meth:`Stream.writable_fd`
        polls readable once the handshake completed or failed, and
        :meth:`Stream.error` then says which (0 or a negative errno, like
        SO_ERROR); :meth:`Stream.wait_connected` does both.
        """
        port = _port(port)
        sid = StreamId()
        rc = lib.jktcp_handle_connect(self._hid, port, 0, byref(sid))
        if rc not in (0, EINPROGRESS):
            raise error(rc, what=f"connect to port {port}")
        return Stream(self, sid.id)

    def listen(self, port: int, backlog: int = 0) -> "Listener":
        """Accept connections the peer opens to local ``port`` (backlog <= 0: 128)."""
        port = _port(port)
        lid = ListenerId()
        _check(lib.jktcp_handle_listen(self._hid, port, int(backlog), byref(lid)),
               f"listen on port {port}")
        return Listener(self, lid.id, port)

    # -- asyncio -------------------------------------------------------------
    async def open_connection(self, port: int, **kwds: Any) -> Tuple[Any, Any]:
        """asyncio: ``reader, writer = await handle.open_connection(port)``
        (asyncio.StreamReader / StreamWriter; see :mod:`jktcp.aio`)."""
        from . import aio
        return await aio.open_connection(self, port, **kwds)

    async def start_server(self, client_connected_cb: Callable[..., Any], port: int,
                           **kwds: Any) -> Any:
        """asyncio: serve connections to local ``port`` with
        ``client_connected_cb(reader, writer)`` (see :mod:`jktcp.aio`)."""
        from . import aio
        return await aio.start_server(self, client_connected_cb, port, **kwds)

    async def create_connection(self, protocol_factory: Callable[[], Any], port: int,
                                **kwds: Any) -> Tuple[Any, Any]:
        """asyncio: ``transport, protocol`` like ``loop.create_connection``."""
        from . import aio
        return await aio.create_connection(self, protocol_factory, port, **kwds)

    # -- the rest --------------------------------------------------------------
    def error(self) -> int:
        """``jktcp_handle_error``: 0 while the transport works, else its own
        error as a negative errno (-EPIPE: end of stream, -EPROTO: lost framing)."""
        return lib.jktcp_handle_error(self._hid)

    def stats(self) -> Stats:
        """Adapter counters (``jktcp_stats``)."""
        st = Stats()
        _check(lib.jktcp_handle_stats(self._hid, byref(st), sizeof(st)), "stats")
        return st

    def pcap(self, path: Optional[str]) -> None:
        """Capture every frame in and out to ``path`` (None stops)."""
        _check(lib.jktcp_handle_pcap(self._hid, None if path is None else os.fsencode(path)),
               "pcap")

    def close(self, linger: Optional[float] = None) -> None:
        """Stop the I/O thread and free the adapter and transport.

        Closed streams' queued data gets up to ``linger`` seconds (None: the
        library's default, 1 s; 0: none) to be delivered; then every
        connection is reset and open streams and listeners return ESHUTDOWN
        until closed. Safe to call twice and from any thread (not from a
        transport callback).
        """
        if self._closed:
            return
        self._closed = True
        _live_handles.discard(self)
        with _ffi.LibraryCall():  # the adapter's teardown writes its last frames here
            rc = lib.jktcp_handle_close(self._hid, _ms(linger))
        if rc == 0:  # only the closer that got 0 knows the I/O thread is gone
            tr, self._transport = self._transport, None
            if tr is not None:
                tr._freed()
        elif rc != EBADF:
            raise error(rc)

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_closed", True):
            return
        warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self)
        if _ffi.in_io_callback():
            # jktcp_handle_close joins an I/O thread: never on one of them.
            self._closed = True
            threading.Thread(target=_close_later, args=(self._hid, self._transport),
                             name="jktcp-close", daemon=True).start()
            return
        try:
            self.close()
        except Exception:
            pass


def _close_later(hid: HandleId, transport: Optional[Transport]) -> None:
    with _ffi.LibraryCall():
        rc = lib.jktcp_handle_close(hid, -1)
    if rc == 0 and transport is not None:
        transport._freed()


# ---------------------------------------------------------------------------
# Stream
# ---------------------------------------------------------------------------


class Stream:
    """A connection of a handle (``jktcp_stream``), used like a socket.

    Thread-safe: several threads may recv, send and close one stream at once
    (reads are serialised among readers, writes among writers). Timeouts
    follow ``socket``: ``settimeout(None)`` blocks (default), ``0`` never
    waits (BlockingIOError), ``t > 0`` raises TimeoutError after ``t`` seconds.
    Signals interrupt a blocked call; their handlers run and the call goes on
    with the time left, unless a handler raised (Ctrl-C: KeyboardInterrupt).
    """

    def __init__(self, handle: Handle, stream_id: int):
        self._closed = True
        self._handle = handle
        self._sid = StreamId(stream_id)
        self._id = stream_id
        self._timeout: Optional[float] = None
        self._rfd: Optional[int] = None
        self._wfd: Optional[int] = None
        self._closed = False

    @property
    def id(self) -> int:
        return self._id

    @property
    def handle(self) -> Handle:
        return self._handle

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<jktcp.Stream id={self._id}{' closed' if self._closed else ''}>"

    # -- timeouts ---------------------------------------------------------------
    def settimeout(self, timeout: Optional[float]) -> None:
        self._timeout = _timeout_arg(timeout)

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    # -- data -------------------------------------------------------------------
    def _read(self, addr: int, length: int) -> int:
        t = self._timeout
        dl = Deadline(t)
        while True:
            r = lib.jktcp_stream_read(self._sid, addr, length, dl.ms())
            if r >= 0:
                return r
            if r != EINTR:
                raise error(r, t)
            check_signals()

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes; ``b""`` at end of stream."""
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if bufsize == 0:
            return b""
        buf = bytearray(bufsize)
        with Buffer(buf, True) as (addr, _):
            n = self._read(addr, bufsize)
        if n == bufsize:
            return bytes(buf)
        return memoryview(buf)[:n].tobytes()

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        """Read into a writable buffer; returns the byte count (0 at end of stream)."""
        with Buffer(buffer, True) as (addr, length):
            if nbytes < 0:
                raise ValueError("negative buffersize in recv_into")
            if nbytes > length:
                raise ValueError("buffer too small for requested bytes")
            if nbytes == 0:
                nbytes = length
            if nbytes == 0:
                return 0
            return self._read(addr, nbytes)

    def send(self, data: Any) -> int:
        """Queue bytes; returns how many were taken (fewer than all only when
        the timeout ran out or a signal handler ran)."""
        t = self._timeout
        with Buffer(data) as (addr, length):
            dl = Deadline(t)
            while True:
                r = lib.jktcp_stream_write(self._sid, addr, length, dl.ms())
                if r >= 0:
                    if r < length:
                        check_signals()
                    return r
                if r != EINTR:
                    raise error(r, t)
                check_signals()

    def sendall(self, data: Any) -> None:
        """Queue all of ``data`` (the timeout applies to the whole call)."""
        t = self._timeout
        with Buffer(data) as (addr, length):
            dl = Deadline(t)
            off = 0
            while off < length or length == 0:
                r = lib.jktcp_stream_write(self._sid, addr + off, length - off, dl.ms())
                if r >= 0:
                    if length == 0:
                        return
                    off += r
                    if off < length:
                        check_signals()
                        if dl.expired():
                            raise TimeoutError("timed out")
                    continue
                if r != EINTR:
                    raise error(r, t)
                check_signals()

    def shutdown(self, how: int = socket.SHUT_WR) -> None:
        """Send FIN after the queued bytes (half-close); reading goes on.
        ``SHUT_WR`` and ``SHUT_RDWR`` do that; jktcp has no read-side shutdown."""
        if how not in (socket.SHUT_WR, socket.SHUT_RDWR):
            raise ValueError("jktcp streams shut down the write side only (SHUT_WR)")
        while True:
            rc = lib.jktcp_stream_shutdown(self._sid)
            if rc != EINTR:
                break
            check_signals()
        _check(rc)

    def close(self) -> None:
        """Graceful close: queued data is still delivered, then FIN (RST if
        received data was left unread). Ends the id; later calls raise
        OSError(EBADF). Threads blocked on the stream get EBADF."""
        if self._closed:
            return
        self._closed = True
        lib.jktcp_stream_close(self._sid)  # 0, or -EBADF if another thread was first

    def abort(self) -> None:
        """Reset the connection (RST) and end the id."""
        if self._closed:
            return
        self._closed = True
        lib.jktcp_stream_abort(self._sid)

    # -- state and readiness -------------------------------------------------
    def error(self) -> int:
        """``jktcp_stream_error``: 0 while healthy, -EINPROGRESS while a
        non-blocking connect is under way, else the negative errno its calls
        would fail with (-EBADF once closed)."""
        return lib.jktcp_stream_error(self._sid)

    def info(self) -> Info:
        """Connection state and counters (``jktcp_info``)."""
        info = Info()
        _check(lib.jktcp_stream_info(self._sid, byref(info), sizeof(info)), "info")
        return info

    def set_congestion(self, cc: int) -> None:
        """``jktcp_stream_set_congestion``: this stream's congestion controller
        (a ``Congestion``), at any time; the new one takes over the window in
        use; ``OSError`` (EINVAL) for anything else."""
        _check(lib.jktcp_stream_set_congestion(self._sid, int(cc)), "set_congestion")

    def _poll_fd(self, ev: PollEvent) -> int:
        return _check(lib.jktcp_stream_poll_fd(self._sid, int(ev)))

    def readable_fd(self) -> int:
        """An fd that polls readable (POLLIN, level-triggered) while a read
        would not block. Owned by the stream: never close it; stop polling
        it before closing the stream."""
        if self._rfd is None or self._closed:
            self._rfd = self._poll_fd(PollEvent.READ)
        return self._rfd

    def writable_fd(self) -> int:
        """An fd that polls *readable* while a write would not block (and
        when a non-blocking connect finished). Owned by the stream."""
        if self._wfd is None or self._closed:
            self._wfd = self._poll_fd(PollEvent.WRITE)
        return self._wfd

    def fileno(self) -> int:
        """The read readiness fd, so ``select``/``selectors`` can wait for
        data; use :meth:`writable_fd` (polled for *reading*) for writability."""
        return self.readable_fd()

    def wait_connected(self, timeout: Optional[float] = None) -> None:
        """For a stream from :meth:`Handle.connect_nowait`: wait until the
        handshake finished and raise its error, if any."""
        p = select.poll()
        p.register(self.writable_fd(), select.POLLIN)
        if not p.poll(None if timeout is None else _ms(timeout)):
            raise TimeoutError("timed out")
        e = self.error()
        if e < 0:
            raise error(e)

    def makefile(self, mode: str = "rb", buffering: int = -1) -> Any:
        """A binary file object over the stream ('rb', 'wb' or 'rwb')."""
        if set(mode) - set("rwb") or "b" not in mode:
            raise ValueError("only binary modes 'rb', 'wb', 'rwb'")
        raw = _StreamIO(self, "r" in mode, "w" in mode)
        if buffering == 0:
            return raw
        size = io.DEFAULT_BUFFER_SIZE if buffering < 0 else buffering
        if "r" in mode and "w" in mode:
            return io.BufferedRWPair(raw, raw, size)
        if "r" in mode:
            return io.BufferedReader(raw, size)
        return io.BufferedWriter(raw, size)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_closed", True):
            return
        warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self)
        self.close()  # never blocks: safe on any thread, in any order


class _StreamIO(io.RawIOBase):
    def __init__(self, stream: Stream, readable: bool, writable: bool):
        super().__init__()
        self._s, self._r, self._w = stream, readable, writable

    def readable(self) -> bool:
        return self._r

    def writable(self) -> bool:
        return self._w

    def readinto(self, b: Any) -> int:
        return self._s.recv_into(b)

    def write(self, b: Any) -> int:
        return self._s.send(b)


# ---------------------------------------------------------------------------
# Listener
# ---------------------------------------------------------------------------


class Listener:
    """Accepts connections the peer opens to a local port (``jktcp_listener``)."""

    def __init__(self, handle: Handle, listener_id: int, port: int):
        self._closed = True
        self._handle = handle
        self._lid = ListenerId(listener_id)
        self._id = listener_id
        self.port = port
        self._timeout: Optional[float] = None
        self._fd: Optional[int] = None
        self._closed = False

    @property
    def id(self) -> int:
        return self._id

    @property
    def handle(self) -> Handle:
        return self._handle

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<jktcp.Listener id={self._id} port={self.port}{' closed' if self._closed else ''}>"

    def settimeout(self, timeout: Optional[float]) -> None:
        self._timeout = _timeout_arg(timeout)

    def gettimeout(self) -> Optional[float]:
        return self._timeout

    def accept(self, timeout: Any = ...) -> Stream:
        """Wait for a connection; ``timeout`` defaults to :meth:`gettimeout`."""
        t = self._timeout if timeout is ... else _timeout_arg(timeout)
        dl = Deadline(t)
        sid = StreamId()
        while True:
            rc = lib.jktcp_listener_accept(self._lid, dl.ms(), byref(sid))
            if rc == 0:
                return Stream(self._handle, sid.id)
            if rc != EINTR:
                raise error(rc, t)
            check_signals()

    def __iter__(self) -> Iterator[Stream]:
        """Accept connections until the listener is closed."""
        while True:
            try:
                yield self.accept()
            except OSError as e:
                if e.errno in (errno.EBADF, errno.ESHUTDOWN):
                    return
                raise

    def fileno(self) -> int:
        """An fd that polls readable while accept would not block. Owned by
        the listener (never close it; stop polling it before closing)."""
        if self._fd is None or self._closed:
            self._fd = _check(lib.jktcp_listener_poll_fd(self._lid))
        return self._fd

    def close(self) -> None:
        """Stop listening: blocked accepts raise EBADF, connections not yet
        accepted are reset."""
        if self._closed:
            return
        self._closed = True
        lib.jktcp_listener_close(self._lid)

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_closed", True):
            return
        warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self)
        self.close()


__all__ = ["Handle", "Stream", "Listener"]
