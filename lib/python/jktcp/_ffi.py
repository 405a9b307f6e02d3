# SPDX-License-Identifier: MIT
"""Low-level ctypes mirror of ``include/jktcp.h`` (threaded API and transports).

Everything here is private to the package: the library handle ``lib``, the
structs (mirrored field for field, passed with ``sizeof``), the enum values
(explicit in the header, copied verbatim) and the error helpers.

Loading order for the shared library:

1. ``$JKTCP_LIBRARY`` (a path; if it is set and cannot be loaded the import fails),
2. a ``libjktcp.so*`` inside the package directory (wheels may ship one),
3. the system search path (``ctypes.util.find_library("jktcp")``, then ``libjktcp.so.1``).

The library's ``jktcp_version_number()`` must be ABI-compatible with
``VERSION_NUMBER`` below: the same major and, while the major is 0, the same
minor. Otherwise the import fails with an ``ImportError`` naming both.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import enum
import errno as _errno
import glob
import os
import threading
import time
from ctypes import (CFUNCTYPE, POINTER, Structure, byref, c_char_p, c_int, c_long, c_size_t,
                    c_ssize_t, c_uint, c_uint8, c_uint16, c_uint32, c_uint64, c_int32, c_void_p,
                    sizeof)
from typing import Any, Callable, Dict, Optional, Tuple

# ---------------------------------------------------------------------------
# Version this binding was written for (JKTCP_VERSION_* in include/jktcp.h)
# ---------------------------------------------------------------------------
VERSION_MAJOR = 0
VERSION_MINOR = 2
VERSION_PATCH = 0
VERSION_NUMBER = (VERSION_MAJOR << 16) | (VERSION_MINOR << 8) | VERSION_PATCH

# ---------------------------------------------------------------------------
# Enums (explicit values, never renumbered: copied from the header)
# ---------------------------------------------------------------------------


class Framing(enum.IntEnum):
    """``enum jktcp_framing``: how frames sit on a file descriptor / callback pair."""

    STREAM = 1  #: bytes back to back; lengths from the IP headers (CDTunnel over TLS)
    PACKET = 2  #: one frame per read()/write() (TUN device, SOCK_SEQPACKET)
    TUN_OFFLOAD = 3  #: jktcp.fd only: a TUN fd opened with IFF_VNET_HDR, offloads on


class TransportFlag(enum.IntFlag):
    """``enum jktcp_transport_flag``."""

    COALESCE = 1 << 0  #: stream framing: several frames per write call
    CLOSE_FD = 1 << 1  #: close the fd when the transport is freed


class PollEvent(enum.IntEnum):
    """``enum jktcp_poll_event``: which readiness fd."""

    READ = 1
    WRITE = 2


class Congestion(enum.IntEnum):
    """``enum jktcp_cc``: congestion controllers (``Option.CONGESTION``,
    ``Stream.set_congestion``)."""

    OFF = 0
    NEWRENO = 1
    CUBIC = 2
    BBR = 3


class Option(enum.IntEnum):
    """``enum jktcp_option`` (``jktcp_adapter_set_option``)."""

    SNDBUF = 1
    RCVBUF = 2
    NODELAY = 3
    DELACK_US = 4
    CONGESTION = 5
    TIMEWAIT_MS = 6
    KEEPALIVE_MS = 7
    RTO_MIN_MS = 8
    RTO_MAX_MS = 9
    RTO_INIT_MS = 10
    MAX_RETRIES = 11
    SACK = 12
    TIMESTAMPS = 13
    MAX_CONNS = 14
    OOO_RANGES = 15
    TAIL_PROBE = 16
    PMTU_PROBE = 17
    BUSY_POLL_US = 18


class State(enum.IntEnum):
    """``enum jktcp_state`` (``Info.state``)."""

    CLOSED = 0
    LISTEN = 1
    SYN_SENT = 2
    SYN_RCVD = 3
    ESTABLISHED = 4
    FIN_WAIT_1 = 5
    FIN_WAIT_2 = 6
    CLOSING = 7
    TIME_WAIT = 8
    CLOSE_WAIT = 9
    LAST_ACK = 10


# ---------------------------------------------------------------------------
# Structs (mirrored exactly; every call that takes one also takes sizeof)
# ---------------------------------------------------------------------------


class _Id(Structure):
    _fields_ = [("id", c_uint64)]


class HandleId(_Id):
    """``jktcp_handle``: ``struct { uint64_t id; }``, passed by value."""


class StreamId(_Id):
    """``jktcp_stream``: ``struct { uint64_t id; }``, passed by value."""


class ListenerId(_Id):
    """``jktcp_listener``: ``struct { uint64_t id; }``, passed by value."""


class _Struct(Structure):
    """A struct the library fills: readable as attributes or as a dict."""

    def as_dict(self) -> Dict[str, int]:
        return {name: getattr(self, name) for name, _ in self._fields_}

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"{type(self).__name__}({body})"


class Info(_Struct):
    """``jktcp_info``: one connection's state and counters (``Stream.info()``)."""

    _fields_ = [
        ("state", c_int),
        ("local_port", c_uint16),
        ("remote_port", c_uint16),
        ("bytes_sent", c_uint64),
        ("bytes_received", c_uint64),
        ("bytes_queued", c_uint64),
        ("bytes_readable", c_uint64),
        ("srtt_us", c_uint32),
        ("rttvar_us", c_uint32),
        ("rto_us", c_uint32),
        ("retransmits", c_uint32),
        ("timeouts", c_uint32),
        ("tail_probes", c_uint32),
        ("recoveries", c_uint32),
        ("mss", c_uint32),
        ("cwnd", c_uint32),
        ("ssthresh", c_uint32),
        ("snd_wnd", c_uint32),
        ("rcv_wnd", c_uint32),
        ("snd_wscale", c_uint8),
        ("rcv_wscale", c_uint8),
        ("sack", c_uint8),
        ("timestamps", c_uint8),
        ("pmtu", c_uint32),
        ("soft_error", c_int32),
        ("congestion", c_uint32),
        ("dsacks", c_uint32),
        ("delivery_rate", c_uint64),
        ("pacing_rate", c_uint64),
        ("spurious", c_uint32),
        ("undos", c_uint32),
        ("spurious_rtos", c_uint32),
    ]

    @property
    def state_name(self) -> str:
        """``jktcp_state_name(state)``, e.g. ``"ESTABLISHED"``."""
        return state_name(self.state)


class Stats(_Struct):
    """``jktcp_stats``: adapter counters (``Handle.stats()``)."""

    _fields_ = [(n, c_uint64) for n in (
        "frames_in", "frames_out", "bytes_in", "bytes_out",
        "drop_short", "drop_version", "drop_length", "drop_checksum", "drop_fragment",
        "drop_options", "drop_address", "ignored_proto", "drop_no_conn", "drop_invalid",
        "rst_sent", "retransmits", "conns_active", "conns_opened", "io_wakeups",
        "acks_limited", "icmp_in", "icmp_ignored", "pmtu_probes", "pmtu_probe_fails",
        "pmtu_blackholes", "frags_reassembled", "io_sleeps", "io_caller_wakes")]


class FaultDir(_Struct):
    """``jktcp_fault_dir``: what a faulty transport does to one direction."""

    _fields_ = [
        ("drop", ctypes.c_double),
        ("duplicate", ctypes.c_double),
        ("reorder", ctypes.c_double),
        ("corrupt", ctypes.c_double),
        ("truncate", ctypes.c_double),
        ("delay", ctypes.c_double),
        ("reorder_frames", c_uint),
        ("reorder_max_us", c_uint),
        ("corrupt_bits", c_uint),
        ("delay_us", c_uint),
        ("mtu", c_uint),
        ("mtu_icmp", c_int),
    ]


class FaultLink(_Struct):
    """``jktcp_fault_link``: a direction's bottleneck (rate, propagation delay, queue)."""

    _fields_ = [
        ("rate_bps", c_uint64),
        ("delay_us", c_uint),
        ("queue_bytes", c_uint),
    ]


class FaultConfig(_Struct):
    """``jktcp_fault_config``."""

    _fields_ = [
        ("in_", FaultDir),  # "in" in C
        ("out", FaultDir),
        ("seed", c_uint64),
        ("pool_frames", c_uint),
        ("slot_bytes", c_uint),
        ("link_in", FaultLink),
        ("link_out", FaultLink),
    ]


class FaultDirStats(_Struct):
    """``jktcp_fault_dir_stats``."""

    _fields_ = [(n, c_uint64) for n in (
        "frames", "passed", "dropped", "blackout", "duplicated", "reordered", "corrupted",
        "truncated", "delayed", "pool_full", "too_big")]


class FaultLinkStats(_Struct):
    """``jktcp_fault_link_stats``."""

    _fields_ = [(n, c_uint64) for n in (
        "frames", "queue_drops", "ring_full", "max_queue_bytes", "queue_us_total")]


class FaultStats(_Struct):
    """``jktcp_fault_stats``: counters of a faulty transport, per direction."""

    _fields_ = [("in_", FaultDirStats), ("out", FaultDirStats),
                ("link_in", FaultLinkStats), ("link_out", FaultLinkStats)]


READ_FN = CFUNCTYPE(c_ssize_t, c_void_p, c_void_p, c_size_t)
WRITE_FN = CFUNCTYPE(c_ssize_t, c_void_p, c_void_p, c_size_t)
CLOSE_FN = CFUNCTYPE(None, c_void_p)


class IoOps(Structure):
    """``jktcp_io_ops``: caller-supplied transport functions."""

    _fields_ = [
        ("read", READ_FN),
        ("write", WRITE_FN),
        ("close", CLOSE_FN),
        ("poll_fd", c_int),
    ]


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def _candidates() -> Tuple[Optional[str], list]:
    env = os.environ.get("JKTCP_LIBRARY")
    if env:
        return env, [env]
    found = []
    for pat in ("libjktcp.so.1", "libjktcp.so.*", "libjktcp.so"):
        found.extend(sorted(glob.glob(os.path.join(_PKG_DIR, pat))))
    name = ctypes.util.find_library("jktcp")
    if name:
        found.append(name)
    found.append("libjktcp.so.1")
    seen, out = set(), []
    for c in found:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return None, out


def check_version(number: int, where: str = "libjktcp") -> None:
    """Raise ImportError unless the library version ``number`` is ABI-compatible."""
    major, minor, patch = number >> 16, (number >> 8) & 0xFF, number & 0xFF
    ok = major == VERSION_MAJOR and (major != 0 or minor == VERSION_MINOR)
    if not ok:
        raise ImportError(
            f"jktcp: {where} is version {major}.{minor}.{patch} (0x{number:06x}); this Python "
            f"package was written for {VERSION_MAJOR}.{VERSION_MINOR}.x (0x{VERSION_NUMBER:06x}) "
            f"and cannot use it. Point JKTCP_LIBRARY at a matching libjktcp.so.")


def _load() -> Tuple[ctypes.CDLL, str]:
    env, cands = _candidates()
    errors = []
    for c in cands:
        try:
            # CDLL, not PyDLL: the GIL is released during every call.
            return ctypes.CDLL(c, use_errno=False), c
        except OSError as e:
            errors.append(f"{c}: {e}")
            if env:
                break
    where = "JKTCP_LIBRARY=" + env if env else "the package directory and the system path"
    raise ImportError(f"jktcp: cannot load libjktcp from {where} ({'; '.join(errors)}). "
                      f"Build it (make) and set JKTCP_LIBRARY=/path/to/libjktcp.so.1")


lib, LIBRARY_PATH = _load()


def _proto(name: str, restype: Any, *argtypes: Any) -> None:
    try:
        f = getattr(lib, name)
    except AttributeError as e:
        raise ImportError(f"jktcp: {LIBRARY_PATH} has no {name}: not a jktcp "
                          f"{VERSION_MAJOR}.{VERSION_MINOR} library") from e
    f.restype = restype
    f.argtypes = list(argtypes)


_proto("jktcp_version_number", c_uint)
_proto("jktcp_version", c_char_p)
check_version(lib.jktcp_version_number(), LIBRARY_PATH)

_P = POINTER(c_void_p)
_proto("jktcp_strerror", c_char_p, c_int)
_proto("jktcp_state_name", c_char_p, c_int)
# transports
_proto("jktcp_transport_fd", c_int, c_int, c_int, _P)
_proto("jktcp_transport_fd2", c_int, c_int, c_int, c_int, _P)
_proto("jktcp_transport_ops", c_int, POINTER(IoOps), c_size_t, c_void_p, c_int, _P)
_proto("jktcp_transport_set_flags", c_int, c_void_p, c_uint)
_proto("jktcp_transport_free", None, c_void_p)
_proto("jktcp_transport_faulty", c_int, c_void_p, POINTER(FaultConfig), c_size_t, _P)
_proto("jktcp_transport_fault_blackout", c_int, c_void_p, c_int)
_proto("jktcp_transport_fault_stats", c_int, c_void_p, POINTER(FaultStats), c_size_t)
# adapter (only until it moves onto a handle)
_proto("jktcp_adapter_new", c_int, c_void_p, c_char_p, c_char_p, _P)
_proto("jktcp_adapter_free", None, c_void_p)
_proto("jktcp_adapter_set_mtu", c_int, c_void_p, c_uint)
_proto("jktcp_adapter_set_mss", c_int, c_void_p, c_uint)
_proto("jktcp_adapter_set_option", c_int, c_void_p, c_int, c_long)
_proto("jktcp_adapter_get_option", c_int, c_void_p, c_int, POINTER(c_long))
_proto("jktcp_adapter_pcap", c_int, c_void_p, c_char_p)
# handle
_proto("jktcp_handle_start", c_int, c_void_p, POINTER(HandleId))
_proto("jktcp_handle_close", c_int, HandleId, c_int)
_proto("jktcp_handle_error", c_int, HandleId)
_proto("jktcp_handle_connect", c_int, HandleId, c_int, c_int, POINTER(StreamId))
_proto("jktcp_handle_listen", c_int, HandleId, c_int, c_int, POINTER(ListenerId))
_proto("jktcp_handle_pcap", c_int, HandleId, c_char_p)
_proto("jktcp_handle_stats", c_int, HandleId, POINTER(Stats), c_size_t)
# listener
_proto("jktcp_listener_accept", c_int, ListenerId, c_int, POINTER(StreamId))
_proto("jktcp_listener_close", c_int, ListenerId)
_proto("jktcp_listener_poll_fd", c_int, ListenerId)
# stream
_proto("jktcp_stream_read", c_ssize_t, StreamId, c_void_p, c_size_t, c_int)
_proto("jktcp_stream_write", c_ssize_t, StreamId, c_void_p, c_size_t, c_int)
_proto("jktcp_stream_write_all", c_ssize_t, StreamId, c_void_p, c_size_t, c_int)
_proto("jktcp_stream_shutdown", c_int, StreamId)
_proto("jktcp_stream_close", c_int, StreamId)
_proto("jktcp_stream_abort", c_int, StreamId)
_proto("jktcp_stream_error", c_int, StreamId)
_proto("jktcp_stream_info", c_int, StreamId, POINTER(Info), c_size_t)
_proto("jktcp_stream_set_congestion", c_int, StreamId, c_int)
_proto("jktcp_stream_poll_fd", c_int, StreamId, c_int)

LIBRARY_VERSION: str = lib.jktcp_version().decode()
LIBRARY_VERSION_NUMBER: int = lib.jktcp_version_number()


def strerror(code: int) -> str:
    """``jktcp_strerror``: text for a (negative or positive) errno."""
    s = lib.jktcp_strerror(int(code))
    return s.decode() if s else f"error {code}"


def state_name(state: int) -> str:
    s = lib.jktcp_state_name(int(state))
    return s.decode() if s else str(state)


# ---------------------------------------------------------------------------
# Errors and signals
# ---------------------------------------------------------------------------

_check_signals_c = ctypes.pythonapi.PyErr_CheckSignals
_check_signals_c.restype = c_int
_check_signals_c.argtypes = []


def check_signals() -> None:
    """Run pending Python signal handlers now (``PyErr_CheckSignals``).

    Called when a C call returned -EINTR: a handler that raises (the default
    SIGINT handler raises KeyboardInterrupt) propagates from here; otherwise
    the caller retries with the remaining timeout (PEP 475). ``pythonapi`` is
    a PyDLL, so the exception a handler set is raised by ctypes itself.
    """
    _check_signals_c()


def error(code: int, timeout: Optional[float] = None, what: Optional[str] = None) -> OSError:
    """The exception for a negative errno returned by the library.

    ``OSError(errno, text)`` picks the built-in subclass by itself
    (ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
    TimeoutError for -ETIMEDOUT, BlockingIOError for -EAGAIN, ...). A wait
    that ran out (-EAGAIN with a positive timeout) is ``TimeoutError("timed
    out")``, as a socket with a timeout raises.
    """
    e = -int(code)
    if e == _errno.EAGAIN and timeout is not None and timeout > 0:
        exc: OSError = TimeoutError("timed out")
    elif what:
        exc = OSError(e, strerror(code), what)
    else:
        exc = OSError(e, strerror(code))
    return exc


EINTR = -_errno.EINTR
EAGAIN = -_errno.EAGAIN
EBADF = -_errno.EBADF
EINPROGRESS = -_errno.EINPROGRESS

INT_MAX = 2**31 - 1


class Deadline:
    """Turns a timeout in seconds (None = forever, 0 = never wait) into the
    milliseconds left for each (re)try of a C call."""

    __slots__ = ("timeout", "end")

    def __init__(self, timeout: Optional[float]):
        self.timeout = timeout
        self.end = None if timeout is None or timeout <= 0 else time.monotonic() + timeout

    def ms(self) -> int:
        if self.timeout is None:
            return -1
        if self.end is None:
            return 0
        left = self.end - time.monotonic()
        if left <= 0:
            return 0
        return min(INT_MAX, int(left * 1000 + 0.999))

    def expired(self) -> bool:
        if self.end is None:
            return self.timeout is not None
        return time.monotonic() >= self.end


def call_blocking(fn: Callable[..., int], args: tuple, timeout: Optional[float]) -> int:
    """``fn(*args, timeout_ms)``, retried on -EINTR after running the signal
    handlers, with the remaining timeout each time (PEP 475)."""
    dl = Deadline(timeout)
    while True:
        r = fn(*args, dl.ms())
        if r != EINTR:
            return r
        check_signals()


# ---------------------------------------------------------------------------
# Buffers: the address of any object with the buffer protocol, zero-copy
# ---------------------------------------------------------------------------


class _PyBuffer(Structure):
    _fields_ = [
        ("buf", c_void_p),
        ("obj", c_void_p),
        ("len", c_ssize_t),
        ("itemsize", c_ssize_t),
        ("readonly", c_int),
        ("ndim", c_int),
        ("format", c_char_p),
        ("shape", c_void_p),
        ("strides", c_void_p),
        ("suboffsets", c_void_p),
        ("internal", c_void_p),
    ]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.restype = c_int
_get_buffer.argtypes = [ctypes.py_object, POINTER(_PyBuffer), c_int]
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.restype = None
_release_buffer.argtypes = [POINTER(_PyBuffer)]
_memview_from_memory = ctypes.pythonapi.PyMemoryView_FromMemory
_memview_from_memory.restype = ctypes.py_object
_memview_from_memory.argtypes = [c_void_p, c_ssize_t, c_int]
_PyBUF_SIMPLE = 0
_PyBUF_WRITABLE = 1
_PyBUF_READ = 0x100
_PyBUF_WRITE = 0x200


class Buffer:
    """``with Buffer(obj, writable) as (addr, length):`` a C-contiguous buffer's
    address, held (the object cannot be resized or freed) until the block ends.
    Raises TypeError / BufferError as ``memoryview`` would."""

    __slots__ = ("_view", "_held")

    def __init__(self, obj: Any, writable: bool = False):
        self._view = _PyBuffer()
        _get_buffer(obj, byref(self._view), _PyBUF_WRITABLE if writable else _PyBUF_SIMPLE)
        self._held = True

    def __enter__(self) -> Tuple[int, int]:
        return self._view.buf or 0, self._view.len

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            _release_buffer(byref(self._view))

    def __del__(self) -> None:
        self.release()


def memory_view(addr: int, length: int, writable: bool) -> memoryview:
    """A memoryview over C memory (valid only while the C side keeps it)."""
    return _memview_from_memory(addr, length, _PyBUF_WRITE if writable else _PyBUF_READ)


# ---------------------------------------------------------------------------
# Callback bookkeeping
# ---------------------------------------------------------------------------

#: ``tls.in_callback`` is true while a transport callback runs on a jktcp I/O
#: thread: finalisers then must not call jktcp_handle_close there (it joins
#: that very thread) and hand it to another thread instead.
tls = threading.local()


def in_io_callback() -> bool:
    return getattr(tls, "in_callback", False)


# A ctypes callback on a thread Python did not create (the I/O thread) makes
# a new PyThreadState on entry and destroys it on return (PyGILState_Ensure /
# _Release): about 100 us per call, and threading.local starts afresh each
# time. One extra PyGILState_Ensure on the first callback keeps the thread
# state for the thread's life, so later callbacks only take the GIL. Once the
# I/O thread has been joined (jktcp_handle_close returned 0), the owner
# deletes that thread state: drop_thread_state().
_gil_ensure = ctypes.pythonapi.PyGILState_Ensure
_gil_ensure.restype = c_int
_gil_ensure.argtypes = []
_tstate_get = ctypes.pythonapi.PyThreadState_Get
_tstate_get.restype = c_void_p
_tstate_get.argtypes = []
_tstate_clear = ctypes.pythonapi.PyThreadState_Clear
_tstate_clear.restype = None
_tstate_clear.argtypes = [c_void_p]
_tstate_delete = ctypes.pythonapi.PyThreadState_Delete
_tstate_delete.restype = None
_tstate_delete.argtypes = [c_void_p]


def pin_thread_state() -> Optional[int]:
    """In a transport callback: keep the calling thread's thread state if it
    is a thread Python did not create (the I/O thread); returns it (to pass
    to drop_thread_state once the thread is gone), or None on a Python thread.

    The library calls back on a Python thread only from inside the calls
    marked with ``LibraryCall`` (the adapter's teardown on the closing thread
    writes its last RSTs through the transport); a Python thread's own state
    must never be pinned (nor, later, deleted)."""
    if getattr(tls, "lib_call", 0):
        return None
    _gil_ensure()
    return _tstate_get()


class LibraryCall:
    """``with LibraryCall():`` around a library call that may run transport
    callbacks on this (Python) thread: jktcp_adapter_new, jktcp_adapter_free,
    jktcp_transport_free, jktcp_handle_close."""

    def __enter__(self) -> None:
        tls.lib_call = getattr(tls, "lib_call", 0) + 1

    def __exit__(self, *exc: Any) -> None:
        tls.lib_call -= 1


def drop_thread_state(tstate: int) -> None:
    """Delete the thread state of an I/O thread that has ended (GIL held)."""
    _tstate_clear(tstate)
    _tstate_delete(tstate)


__all__ = [
    "Framing", "TransportFlag", "PollEvent", "Option", "State", "Info", "Stats", "IoOps",
    "FaultDir", "FaultConfig", "FaultDirStats", "FaultStats",
    "HandleId", "StreamId", "ListenerId", "lib", "LIBRARY_PATH", "LIBRARY_VERSION",
    "LIBRARY_VERSION_NUMBER", "VERSION_NUMBER", "check_version", "strerror", "state_name",
    "error", "check_signals", "call_blocking", "Deadline", "Buffer", "memory_view", "sizeof",
]
