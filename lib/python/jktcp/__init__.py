# SPDX-License-Identifier: MIT
"""jktcp: a userspace TCP/IP stack for pipes that carry raw IP packets.

Pure ctypes bindings of libjktcp's threaded API (``include/jktcp.h``)::

    import jktcp

    with jktcp.Handle(jktcp.tun("jk0"), local="198.18.0.2", peer="198.18.0.1") as h:
        with h.connect(80, timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            print(s.recv(65536))

* :class:`Handle` — one endpoint on its own I/O thread; ``connect``,
  ``listen``, and for asyncio ``open_connection`` / ``start_server``.
* :class:`Stream` — a connection, used like a socket (``recv``, ``recv_into``,
  ``send``, ``sendall``, ``shutdown``, ``close``, timeouts, ``info()``).
* :class:`Listener` — ``accept()``.
* transports: :func:`tun`, :func:`fd`, :func:`stream_object`, and
  :func:`faulty` (drop, duplicate, reorder, corrupt frames: for tests).

Errors are the built-in exceptions (ConnectionRefusedError,
ConnectionResetError, BrokenPipeError, TimeoutError, ``OSError(errno, text)``).
The library is found through ``$JKTCP_LIBRARY``, a copy in this package's
directory, or the system path. ``python -m jktcp --help``: a small netcat.
"""
from ._ffi import (LIBRARY_PATH, LIBRARY_VERSION, LIBRARY_VERSION_NUMBER, VERSION_NUMBER,
                   Congestion, FaultConfig, FaultDir, FaultDirStats, FaultStats, Framing, Info, Option,
                   PollEvent, State, Stats, TransportFlag, state_name, strerror)
from ._core import Handle, Listener, Stream
from .transports import (FaultyTransport, FdTransport, ObjectTransport, Transport, faulty, fd,
                         stream_object, tun)

__version__ = "0.2.0"

__all__ = [
    "Handle", "Stream", "Listener",
    "Transport", "FdTransport", "ObjectTransport", "FaultyTransport",
    "tun", "fd", "stream_object", "faulty",
    "Framing", "TransportFlag", "PollEvent", "Option", "Congestion", "State", "Info", "Stats",
    "FaultDir", "FaultConfig", "FaultDirStats", "FaultStats",
    "strerror", "state_name",
    "LIBRARY_PATH", "LIBRARY_VERSION", "LIBRARY_VERSION_NUMBER", "VERSION_NUMBER",
    "__version__",
]
