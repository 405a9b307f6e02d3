# SPDX-License-Identifier: MIT
"""python -m jktcp: a small netcat over jktcp.

Connects to (or accepts one connection from) the peer at the far end of a
frame pipe and copies stdin to the stream and the stream to stdout. The end
of stdin is sent as FIN (half-close) and reading goes on; the netcat ends
once both directions are done (when stdin is a terminal, as soon as the peer
closed), or on Ctrl-C (exit status 130).
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from typing import List, Optional

EPILOG = """\
transports (one of):
  --tun NAME        an existing TUN device (packet framing); jktcp is its far end
  --fd N            an inherited file descriptor (--framing, default packet)
  --unix PATH       connect to a Unix stream socket carrying frames back to back
  --tcp HOST:PORT   connect to a TCP socket carrying frames back to back
                    (e.g. a CDTunnel relay; only to hosts you run)

examples:
  python -m jktcp --tun jk0 --local 198.18.0.2 --peer 198.18.0.1 connect 80 < req
  python -m jktcp --unix /run/tunnel.sock --local fd00::2 --peer fd00::1 listen 8080
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m jktcp", description="netcat over jktcp: pipe stdin/stdout through a "
        "TCP connection made by jktcp over a raw IP frame pipe.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t = p.add_mutually_exclusive_group(required=True)
    t.add_argument("--tun", metavar="NAME", help="attach to TUN device NAME")
    t.add_argument("--fd", metavar="N", type=int, help="use file descriptor N")
    t.add_argument("--unix", metavar="PATH", help="connect to a Unix stream socket")
    t.add_argument("--tcp", metavar="HOST:PORT", help="connect to a TCP socket")
    p.add_argument("--framing", choices=("packet", "stream"),
                   help="framing on the transport (default: packet for --tun/--fd, "
                        "stream for --unix/--tcp)")
    p.add_argument("--local", required=True, metavar="ADDR", help="jktcp's own IP address")
    p.add_argument("--peer", required=True, metavar="ADDR", help="the peer's IP address")
    p.add_argument("--mtu", type=int, help="largest frame jktcp sends (default 1500)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="seconds to wait for the connection (default: no limit)")
    p.add_argument("--linger", type=float, default=5.0, metavar="S",
                   help="seconds to let queued data drain at exit (default 5)")
    p.add_argument("--pcap", metavar="FILE", help="capture every frame to FILE")
    p.add_argument("-v", "--verbose", action="store_true", help="report on stderr")
    p.add_argument("mode", choices=("connect", "listen"))
    p.add_argument("port", type=int)
    return p


def _transport(args: argparse.Namespace):  # -> jktcp.Transport
    import jktcp
    if args.tun:
        if args.framing == "stream":
            raise SystemExit("jktcp: a TUN device carries packets (no --framing stream)")
        return jktcp.tun(args.tun)
    if args.fd is not None:
        return jktcp.fd(args.fd, args.framing or "packet")
    if args.unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(args.unix)
    else:
        host, sep, port = args.tcp.rpartition(":")
        if not sep:
            raise SystemExit("jktcp: --tcp wants HOST:PORT")
        s = socket.create_connection((host.strip("[]"), int(port)))
    with s:
        return jktcp.fd(s, args.framing or "stream")


def _pump_stdin(stream, done: threading.Event, failed: List[BaseException]) -> None:
    try:
        while True:
            data = os.read(0, 65536)
            if not data:
                stream.shutdown()
                break
            stream.sendall(data)
    except BaseException as e:  # the stream closed under us, or stdin failed
        if not done.is_set():
            failed.append(e)
    finally:
        done.set()


def _write_out(data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(1, view)
        view = view[n:]


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    import jktcp

    def say(msg: str) -> None:
        if args.verbose:
            print(f"jktcp: {msg}", file=sys.stderr, flush=True)

    try:
        with jktcp.Handle(_transport(args), local=args.local, peer=args.peer, mtu=args.mtu,
                          pcap=args.pcap) as h:
            try:
                if args.mode == "connect":
                    stream = h.connect(args.port, timeout=args.timeout)
                else:
                    with h.listen(args.port, 1) as listener:
                        say(f"listening on {args.local}:{args.port}")
                        stream = listener.accept(timeout=args.timeout)
                with stream:
                    info = stream.info()
                    say(f"connected {args.local}:{info.local_port} <-> "
                        f"{args.peer}:{info.remote_port}")
                    done, failed = threading.Event(), []
                    threading.Thread(target=_pump_stdin, args=(stream, done, failed),
                                     name="stdin", daemon=True).start()
                    while True:
                        data = stream.recv(65536)
                        if not data:
                            break
                        _write_out(data)
                    say("peer closed")
                    if not os.isatty(0):
                        done.wait()  # what stdin still has goes out (half-close)
                    if failed:
                        raise failed[0]
            finally:
                h.close(linger=args.linger)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except (OSError, ValueError) as e:
        print(f"jktcp: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
