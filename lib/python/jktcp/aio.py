# SPDX-License-Identifier: MIT
"""asyncio on jktcp streams, driven by their readiness fds.

The event loop never blocks: every jktcp call made from the loop uses
timeout 0 (-EAGAIN: not ready), and readiness comes from the fds of
``jktcp_stream_poll_fd`` / ``jktcp_listener_poll_fd`` registered with
``loop.add_reader`` (they poll *readable*, level-triggered, for either
condition). A connect is started with timeout 0 (-EINPROGRESS); the stream's
write fd signals its end and ``jktcp_stream_error`` gives the result.

The transport below is a real ``asyncio.Transport``, so the standard
``asyncio.StreamReader`` / ``StreamWriter`` and any ``asyncio.Protocol``
work on it unchanged::

    reader, writer = await handle.open_connection(80)
    writer.write(b"GET / HTTP/1.0\\r\\n\\r\\n")
    await writer.drain()
    body = await reader.read()
    writer.close()
    await writer.wait_closed()
"""
from __future__ import annotations

import asyncio
import ctypes
import errno
import threading
from typing import Any, Callable, Optional, Tuple

from . import _ffi
from ._core import Handle, Listener, Stream
from ._ffi import EAGAIN, Buffer, StreamId, error, lib

_READ_SIZE = 256 * 1024
_READ_BUDGET = 4 * 1024 * 1024  # bytes per wake-up before yielding to other callbacks
_tls = threading.local()


def _read_buffer() -> int:
    """The address of this thread's read buffer: reads from the loop copy out
    of it at once (ctypes.string_at), so every transport of a loop shares it."""
    buf = getattr(_tls, "buf", None)
    if buf is None:
        buf = _tls.buf = ctypes.create_string_buffer(_READ_SIZE)
    return ctypes.addressof(buf)


class StreamTransport(asyncio.Transport):
    """An ``asyncio.Transport`` over a connected :class:`jktcp.Stream`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stream: Stream,
                 protocol: asyncio.BaseProtocol, waiter: Optional[asyncio.Future] = None,
                 extra: Optional[dict] = None):
        super().__init__(extra)
        self._loop = loop
        self._stream = stream
        self._sid: StreamId = stream._sid
        self._protocol = protocol
        self._rfd = stream.readable_fd()
        self._wfd = stream.writable_fd()
        self._wbuf = bytearray()
        self._closing = False
        self._conn_lost = False
        self._paused = False
        self._reading = False
        self._writing = False
        self._eof_pending = False
        self._eof_sent = False
        self._protocol_paused = False
        self._high, self._low = 64 * 1024, 16 * 1024
        self._extra.setdefault("jktcp_stream", stream)
        self._extra.setdefault("socket", None)
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    # -- extra info ---------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in ("peername", "sockname") and name not in self._extra:
            try:
                info = self._stream.info()
                h = self._stream.handle
                self._extra["peername"] = (h.peer, info.remote_port)
                self._extra["sockname"] = (h.local, info.local_port)
            except OSError:
                return default
        return self._extra.get(name, default)

    # -- reading ------------------------------------------------------------
    def _start_reading(self) -> None:
        if self._closing or self._paused or self._reading:
            return
        self._reading = True
        self._loop.add_reader(self._rfd, self._read_ready)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._rfd)

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        """Stop reading: the receive buffer fills and the window closes."""
        self._paused = True
        self._stop_reading()

    def resume_reading(self) -> None:
        self._paused = False
        if not self._closing:
            self._start_reading()

    def _read_ready(self) -> None:
        got = 0
        addr = _read_buffer()
        while self._reading and got < _READ_BUDGET:
            n = lib.jktcp_stream_read(self._sid, addr, _READ_SIZE, 0)
            if n > 0:
                got += n
                try:
                    self._protocol.data_received(ctypes.string_at(addr, n))
                except BaseException as exc:
                    self._fatal(exc, "protocol.data_received() failed")
                    return
                continue
            if n == EAGAIN or n == _ffi.EINTR:
                return
            if n == 0:
                self._stop_reading()
                try:
                    keep_open = self._protocol.eof_received()
                except BaseException as exc:
                    self._fatal(exc, "protocol.eof_received() failed")
                    return
                if not keep_open:
                    self.close()
                return
            self._fatal(error(n), "read failed")
            return

    # -- writing ------------------------------------------------------------
    def write(self, data: Any) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not "
                            f"{type(data).__name__!r}")
        if self._eof_pending or self._eof_sent:
            raise RuntimeError("cannot call write() after write_eof()")
        if self._conn_lost or self._closing:
            return
        if not data:
            return
        if not self._wbuf:
            with Buffer(data) as (addr, length):
                n = lib.jktcp_stream_write(self._sid, addr, length, 0)
            if n == length:
                return
            if n < 0 and n not in (EAGAIN, _ffi.EINTR):
                self._fatal(error(n), "write failed")
                return
            data = memoryview(data).cast("B")[max(n, 0):]
            self._wbuf += data
            self._start_writing()
        else:
            self._wbuf += data
        self._maybe_pause_protocol()

    def _start_writing(self) -> None:
        if not self._writing:
            self._writing = True
            self._loop.add_reader(self._wfd, self._write_ready)

    def _stop_writing(self) -> None:
        if self._writing:
            self._writing = False
            self._loop.remove_reader(self._wfd)

    def _write_ready(self) -> None:
        while self._wbuf:
            size = len(self._wbuf)
            cbuf = (ctypes.c_char * size).from_buffer(self._wbuf)
            n = lib.jktcp_stream_write(self._sid, cbuf, size, 0)
            del cbuf
            if n > 0:
                del self._wbuf[:n]
                continue
            if n == EAGAIN or n == _ffi.EINTR:
                break
            self._wbuf.clear()
            self._fatal(error(n), "write failed")
            return
        self._maybe_resume_protocol()
        if self._wbuf:
            return
        self._stop_writing()
        if self._closing:
            self._call_connection_lost(None)
        elif self._eof_pending:
            self._eof_pending = False
            self._shutdown()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof_pending or self._eof_sent:
            return
        if self._wbuf:
            self._eof_pending = True
        else:
            self._shutdown()

    def _shutdown(self) -> None:
        self._eof_sent = True
        rc = lib.jktcp_stream_shutdown(self._sid)  # answered at once by the I/O thread
        if rc < 0 and rc != -errno.ENOTCONN:
            self._fatal(error(rc), "shutdown failed")

    def get_write_buffer_size(self) -> int:
        return len(self._wbuf)

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: Optional[int] = None,
                                low: Optional[int] = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if len(self._wbuf) <= self._high or self._protocol_paused:
            return
        self._protocol_paused = True
        try:
            self._protocol.pause_writing()
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": "protocol.pause_writing() failed", "exception": exc,
                "transport": self, "protocol": self._protocol})

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and len(self._wbuf) <= self._low:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except BaseException as exc:
                self._loop.call_exception_handler({
                    "message": "protocol.resume_writing() failed", "exception": exc,
                    "transport": self, "protocol": self._protocol})

    # -- closing ------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Close after the buffered data was handed to jktcp (which then
        delivers it and sends FIN)."""
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._wbuf:
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        self._force_close(None, abort=True)

    def _fatal(self, exc: BaseException, message: str) -> None:
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler({
                "message": message, "exception": exc, "transport": self,
                "protocol": self._protocol})
        self._force_close(exc)

    def _force_close(self, exc: Optional[BaseException], abort: bool = False) -> None:
        if self._conn_lost:
            return
        self._wbuf.clear()
        self._stop_writing()
        if not self._closing:
            self._closing = True
            self._stop_reading()
        self._conn_lost = True
        self._loop.call_soon(self._call_connection_lost, exc, abort)

    def _call_connection_lost(self, exc: Optional[BaseException], abort: bool = False) -> None:
        self._conn_lost = True
        self._stop_reading()
        self._stop_writing()  # the fds leave the loop before the stream closes (rule 7)
        try:
            if self._protocol is not None:
                self._protocol.connection_lost(exc)
        finally:
            if abort:
                self._stream.abort()
            else:
                self._stream.close()
            self._protocol = None  # type: ignore[assignment]

    def __del__(self) -> None:
        if not getattr(self, "_conn_lost", True) and not self._stream.closed:
            import warnings
            warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._stream.close()

    def __repr__(self) -> str:
        return f"<jktcp.aio.StreamTransport stream={self._stream.id}>"

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol


def _set_result_unless_cancelled(fut: asyncio.Future, result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


async def _wait_fd(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    fut = loop.create_future()
    loop.add_reader(fd, _set_result_unless_cancelled, fut, None)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def connect_stream(handle: Handle, port: int, *, timeout: Optional[float] = None
                         ) -> Stream:
    """Connect without blocking the loop: a :class:`jktcp.Stream` once the
    handshake is done (ConnectionRefusedError, TimeoutError, ... otherwise)."""
    loop = asyncio.get_running_loop()
    stream = handle.connect_nowait(port)
    try:
        wfd = stream.writable_fd()
        if timeout is None:
            await _wait_fd(loop, wfd)
        else:
            await asyncio.wait_for(_wait_fd(loop, wfd), timeout)
        e = stream.error()
        if e < 0:
            raise error(e, what=f"connect to port {port}")
    except BaseException:
        stream.abort()
        raise
    return stream


async def create_connection(handle: Handle, protocol_factory: Callable[[], Any], port: int,
                            *, timeout: Optional[float] = None) -> Tuple[StreamTransport, Any]:
    """``loop.create_connection`` over jktcp: ``(transport, protocol)``."""
    stream = await connect_stream(handle, port, timeout=timeout)
    return await wrap_stream(stream, protocol_factory)


async def wrap_stream(stream: Stream, protocol_factory: Callable[[], Any]
                      ) -> Tuple[StreamTransport, Any]:
    """Put a connected stream under an asyncio protocol."""
    loop = asyncio.get_running_loop()
    protocol = protocol_factory()
    waiter = loop.create_future()
    try:
        transport = StreamTransport(loop, stream, protocol, waiter)
    except BaseException:
        stream.close()
        raise
    try:
        await waiter
    except BaseException:
        transport.close()
        raise
    return transport, protocol


async def open_connection(handle: Handle, port: int, *, limit: int = 2**16,
                          timeout: Optional[float] = None
                          ) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` over jktcp: ``(StreamReader, StreamWriter)``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await create_connection(handle, lambda: protocol, port, timeout=timeout)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


class Server(asyncio.AbstractServer):
    """What :func:`start_server` returns: serving until closed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, listener: Listener,
                 factory: Callable[[], Any]):
        self._loop = loop
        self._listener = listener
        self._factory = factory
        self._fd = listener.fileno()
        self._serving = False
        self._closed = loop.create_future()
        self._transports: "set[StreamTransport]" = set()

    @property
    def listener(self) -> Listener:
        return self._listener

    @property
    def port(self) -> int:
        return self._listener.port

    @property
    def sockets(self) -> tuple:
        return ()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if not self._serving and not self._listener.closed:
            self._serving = True
            self._loop.add_reader(self._fd, self._accept_ready)

    def _accept_ready(self) -> None:
        sid = StreamId()
        for _ in range(128):
            rc = lib.jktcp_listener_accept(self._listener._lid, 0, ctypes.byref(sid))
            if rc == EAGAIN or rc == _ffi.EINTR:
                return
            if rc < 0:  # closed under us, or the handle stopped
                self._loop.call_exception_handler({
                    "message": "jktcp listener failed", "exception": error(rc)})
                self.close()
                return
            stream = Stream(self._listener.handle, sid.id)
            try:
                protocol = self._factory()
                StreamTransport(self._loop, stream, protocol)
            except BaseException as exc:
                stream.abort()
                self._loop.call_exception_handler({
                    "message": "jktcp server: protocol factory failed", "exception": exc})

    def close(self) -> None:
        if self._serving:
            self._serving = False
            self._loop.remove_reader(self._fd)  # before the listener closes its fd
        if not self._listener.closed:
            self._listener.close()
        if not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    async def serve_forever(self) -> None:
        await self.start_serving()
        try:
            await self._closed
        finally:
            self.close()

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()


async def create_server(handle: Handle, protocol_factory: Callable[[], Any], port: int, *,
                        backlog: int = 0, start_serving: bool = True) -> Server:
    """``loop.create_server`` over jktcp (a listener on local ``port``)."""
    loop = asyncio.get_running_loop()
    server = Server(loop, handle.listen(port, backlog), protocol_factory)
    if start_serving:
        await server.start_serving()
    return server


async def start_server(handle: Handle, client_connected_cb: Callable[..., Any], port: int,
                       *, limit: int = 2**16, backlog: int = 0,
                       start_serving: bool = True) -> Server:
    """``asyncio.start_server`` over jktcp: ``client_connected_cb(reader,
    writer)`` (a function or a coroutine) for every connection accepted."""
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await create_server(handle, factory, port, backlog=backlog,
                               start_serving=start_serving)


__all__ = ["StreamTransport", "Server", "connect_stream", "create_connection", "wrap_stream",
           "open_connection", "create_server", "start_server"]
