# SPDX-License-Identifier: MIT
"""python -m jktcp: the netcat, over a TUN and over a Unix stream socket."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import KERNEL4, LOCAL4, PKG_ROOT, Pattern, check_addr, wait_kernel_addr

ENV = dict(os.environ, PYTHONPATH=PKG_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def nc(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jktcp", *args], env=ENV, **kw)


def test_help():
    r = subprocess.run([sys.executable, "-m", "jktcp", "--help"], env=ENV, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    for word in ("--tun", "--fd", "--unix", "--tcp", "connect", "listen", "--local", "--peer"):
        assert word in r.stdout
    r = subprocess.run([sys.executable, "-m", "jktcp", "connect", "80"], env=ENV,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "required" in r.stderr


def test_connect_over_tun(tun_device, kserver):
    """stdin goes to a kernel echo server and comes back on stdout."""
    srv = kserver("echo")
    data = Pattern(9).chunk(0, 1_000_000)
    p = nc("--tun", tun_device, "--local", LOCAL4, "--peer", check_addr(KERNEL4), "--mtu", "16000",
           "--timeout", "5", "connect", str(srv.port), stdin=subprocess.PIPE,
           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(data, timeout=30)
    assert p.returncode == 0, err.decode()
    assert out == data


def test_listen_over_tun(tun_device):
    """A kernel client connects to the netcat's listener: both directions."""
    wait_kernel_addr(socket.AF_INET)
    to_client = b"from the netcat's stdin\n" * 1000
    p = nc("--tun", tun_device, "--local", LOCAL4, "--peer", KERNEL4, "-v", "--timeout", "10",
           "listen", "8123", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
           stderr=subprocess.PIPE)
    try:
        line = p.stderr.readline().decode()
        assert "listening" in line, line
        c = socket.create_connection((check_addr(LOCAL4), 8123), timeout=10)
        c.sendall(b"from the kernel client\n" * 500)
        c.shutdown(socket.SHUT_WR)
        p.stdin.write(to_client)
        p.stdin.close()
        got = bytearray()
        while True:
            d = c.recv(65536)
            if not d:
                break
            got += d
        c.close()
        out = p.stdout.read()
        rc = p.wait(15)
        assert rc == 0, p.stderr.read().decode()
        assert bytes(got) == to_client
        assert out == b"from the kernel client\n" * 500
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            f.close()


@pytest.mark.parametrize("via", ["unix", "tcp", "fd"])
def test_connect_over_stream_transports(tmp_path, via):
    """--unix / --tcp / --fd: frames back to back over a Unix or loopback TCP
    stream socket (or an inherited socketpair fd) whose far end is another
    jktcp handle (no kernel TCP between the two ends)."""
    import jktcp

    done = {}
    # The far end listens before the netcat's SYN can arrive: its handle runs
    # over one end of a socketpair, relayed to the connection once accepted.
    x, y = socket.socketpair()
    far = jktcp.Handle(jktcp.fd(x, "stream"), local=KERNEL4, peer=LOCAL4)
    x.close()
    lst = far.listen(7777)
    pass_fds = ()
    if via == "unix":
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(str(tmp_path / "tunnel.sock"))
        where = ["--unix", str(tmp_path / "tunnel.sock")]
    elif via == "tcp":
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.bind((check_addr("127.0.0.1"), 0))
        where = ["--tcp", "127.0.0.1:%d" % ls.getsockname()[1]]
    else:
        ls = None
        mine, theirs = socket.socketpair()
        pass_fds = (theirs.fileno(),)
        where = ["--fd", str(theirs.fileno()), "--framing", "stream"]
    if ls is not None:
        ls.listen(1)

    def relay(src, dst):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def far_end():
        conn = ls.accept()[0] if ls is not None else mine
        relays = [threading.Thread(target=relay, args=(conn, y), daemon=True),
                  threading.Thread(target=relay, args=(y, conn), daemon=True)]
        for r in relays:
            r.start()
        with lst.accept(timeout=10) as s:
            s.settimeout(10)
            buf = bytearray()
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            s.sendall(b"got %d bytes" % len(buf))
            done["got"] = bytes(buf)
        lst.close()
        far.close()
        y.close()
        conn.close()

    t = threading.Thread(target=far_end)
    t.start()
    p = nc(*where, "--local", LOCAL4, "--peer", KERNEL4, "connect", "7777", pass_fds=pass_fds,
           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if via == "fd":
        theirs.close()
    out, err = p.communicate(b"hello over " + via.encode() + b"!" * 1000, timeout=30)
    t.join(15)
    if ls is not None:
        ls.close()
    assert p.returncode == 0, err.decode()
    assert done["got"] == b"hello over " + via.encode() + b"!" * 1000
    assert out == b"got %d bytes" % len(done["got"])


def test_refused_and_interrupted(tun_device, kserver):
    hold = kserver("hold")
    closed_port = hold.port + 1 if hold.port < 65535 else hold.port - 1
    r = subprocess.run([sys.executable, "-m", "jktcp", "--tun", tun_device, "--local", LOCAL4,
                        "--peer", KERNEL4, "connect", str(closed_port)], env=ENV,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "refused" in r.stderr, r.stderr
    p = nc("--tun", tun_device, "--local", LOCAL4, "--peer", KERNEL4, "-v", "connect",
           str(hold.port), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = p.stderr.readline().decode()
        assert "connected" in line, line
        t0 = time.monotonic()
        p.send_signal(2)  # Ctrl-C while blocked in recv
        assert p.wait(5) == 130
        assert time.monotonic() - t0 < 2
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()
