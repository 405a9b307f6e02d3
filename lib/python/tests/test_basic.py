# SPDX-License-Identifier: MIT
"""Loading, ABI mirror, errors, timeouts, use after close, half-close, info."""
from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
from ctypes import sizeof

import pytest

import jktcp
from jktcp import _ffi
from conftest import PKG_ROOT, Pattern, b2b, poll_readable, recv_exact

FAMILIES = [pytest.param(socket.AF_INET, id="v4"), pytest.param(socket.AF_INET6, id="v6")]


def test_version_and_library():
    assert jktcp.LIBRARY_VERSION.startswith("jktcp 0.2.")
    assert jktcp.LIBRARY_VERSION_NUMBER >> 8 == jktcp.VERSION_NUMBER >> 8
    env = os.environ.get("JKTCP_LIBRARY")
    if env:
        assert os.path.samefile(jktcp.LIBRARY_PATH, env)


def test_version_check_refuses_other_abi():
    _ffi.check_version(0x000200)
    _ffi.check_version(0x000209)  # another patch level is compatible
    for bad in (0x000300, 0x000100, 0x010200):
        with pytest.raises(ImportError, match="cannot use it"):
            _ffi.check_version(bad)


def test_bad_library_path_is_import_error(tmp_path):
    env = dict(os.environ, JKTCP_LIBRARY=str(tmp_path / "nope.so"), PYTHONPATH=PKG_ROOT)
    r = subprocess.run([sys.executable, "-c", "import jktcp"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "JKTCP_LIBRARY" in r.stderr, r.stderr


def test_library_found_in_package_dir(tmp_path):
    """Without JKTCP_LIBRARY, a libjktcp.so.1 inside the package directory
    (what `make install` links there) is loaded."""
    import shutil
    pkg = tmp_path / "jktcp"
    shutil.copytree(os.path.join(PKG_ROOT, "jktcp"), pkg,
                    ignore=shutil.ignore_patterns("__pycache__", "libjktcp.so*"))
    os.symlink(os.path.realpath(jktcp.LIBRARY_PATH), pkg / "libjktcp.so.1")
    env = {k: v for k, v in os.environ.items() if k not in ("JKTCP_LIBRARY", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-c", "import jktcp; print(jktcp.LIBRARY_PATH)"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(pkg / "libjktcp.so.1")


def test_struct_mirror_matches_header():
    """Sizes and offsets the C test measured with sizeof/offsetof on the header."""
    abi = os.environ.get("JKTCP_ABI")
    if not abi:
        pytest.skip("JKTCP_ABI not set (run through tests/system/test_python.c)")
    want = dict(kv.split("=") for kv in abi.split(","))
    have = {
        "info": sizeof(jktcp.Info), "stats": sizeof(jktcp.Stats),
        "io_ops": sizeof(_ffi.IoOps), "id": sizeof(_ffi.StreamId),
        "info.bytes_sent": jktcp.Info.bytes_sent.offset,
        "info.srtt_us": jktcp.Info.srtt_us.offset,
        "info.snd_wscale": jktcp.Info.snd_wscale.offset,
        "info.pmtu": jktcp.Info.pmtu.offset,
        "info.soft_error": jktcp.Info.soft_error.offset,
        "stats.io_wakeups": jktcp.Stats.io_wakeups.offset,
        "stats.frags_reassembled": jktcp.Stats.frags_reassembled.offset,
        "io_ops.close": _ffi.IoOps.close.offset,
        "io_ops.poll_fd": _ffi.IoOps.poll_fd.offset,
        "fault_config": sizeof(jktcp.FaultConfig), "fault_config.out": jktcp.FaultConfig.out.offset,
        "fault_config.seed": jktcp.FaultConfig.seed.offset,
        "fault_dir.mtu_icmp": jktcp.FaultDir.mtu_icmp.offset,
        "fault_stats": sizeof(jktcp.FaultStats), "fault_stats.out": jktcp.FaultStats.out.offset,
    }
    assert set(want) == set(have)
    for k, v in want.items():
        assert have[k] == int(v), f"{k}: ctypes {have[k]}, C {v}"
    enums = {"JKTCP_FRAMING_STREAM": jktcp.Framing.STREAM, "JKTCP_FRAMING_PACKET":
             jktcp.Framing.PACKET, "JKTCP_POLL_READ": jktcp.PollEvent.READ,
             "JKTCP_POLL_WRITE": jktcp.PollEvent.WRITE,
             "JKTCP_TRANSPORT_CLOSE_FD": jktcp.TransportFlag.CLOSE_FD,
             "JKTCP_OPT_PMTU_PROBE": jktcp.Option.PMTU_PROBE,
             "JKTCP_OPT_SNDBUF": jktcp.Option.SNDBUF, "JKTCP_LAST_ACK": jktcp.State.LAST_ACK,
             "JKTCP_FRAMING_TUN_OFFLOAD": jktcp.Framing.TUN_OFFLOAD}
    want_enums = dict(kv.split("=") for kv in os.environ["JKTCP_ABI_ENUMS"].split(","))
    assert set(want_enums) == set(enums)
    for k, v in want_enums.items():
        assert int(enums[k]) == int(v), f"{k}: Python {int(enums[k])}, C {v}"


def test_bad_arguments():
    with pytest.raises(OSError) as ei:
        jktcp.Handle(jktcp.fd(os.open("/dev/null", os.O_RDWR), "stream"),
                               local="198.18.0.2", peer="not an address")
    assert ei.value.errno == errno.EINVAL
    t = jktcp.fd(os.open("/dev/null", os.O_RDWR), "stream")
    with pytest.raises(TypeError, match="unknown option"):
        jktcp.Handle(t, local="198.18.0.2", peer="198.18.0.1", no_such_option=1)
    t.close()
    with pytest.raises(ValueError):
        jktcp.fd(0, "sideways")
    with pytest.raises(OSError) as ei:
        jktcp.tun("jkpy-none")
    assert ei.value.errno == errno.ENODEV
    ha, hb = b2b()
    with ha, hb:
        with pytest.raises(ValueError):
            ha.connect(0)
        with pytest.raises(ValueError):
            ha.listen(70000)
        with pytest.raises(ValueError, match="already"):  # a transport is used once
            jktcp.Handle(ha.transport, local="198.18.0.2", peer="198.18.0.1")
    with pytest.raises(OSError) as ei:
        jktcp.Handle(jktcp.fd(os.open("/dev/null", os.O_RDWR)), local="198.18.0.2",
                     peer="198.18.0.1", mtu=10)
    assert ei.value.errno == errno.EINVAL


def test_transport_used_twice():
    a, b = socket.socketpair()
    t = jktcp.fd(a, "stream")
    h = jktcp.Handle(t, local="198.18.0.2", peer="198.18.0.1")
    with h, pytest.raises(ValueError, match="already"):
        jktcp.Handle(t, local="198.18.0.2", peer="198.18.0.1")
    a.close()
    b.close()


@pytest.mark.parametrize("family", FAMILIES)
def test_echo_and_info(make_handle, kserver, family):
    srv = kserver("echo", family)
    h = make_handle(family)
    with h.connect(srv.port, timeout=5) as s:
        pat = Pattern(7)
        data = pat.chunk(0, 300000)
        s.sendall(data)
        assert recv_exact(s, len(data)) == data
        info = s.info()
        assert info.state == jktcp.State.ESTABLISHED and info.state_name == "ESTABLISHED"
        assert info.remote_port == srv.port and info.bytes_received == len(data)
        assert info.mss > 1000 and info.pmtu == 16000
        assert info.congestion == jktcp.Congestion.BBR and info.delivery_rate > 0
        s.set_congestion(jktcp.Congestion.CUBIC)
        assert s.info().congestion == jktcp.Congestion.CUBIC
        with pytest.raises(OSError):
            s.set_congestion(9)
        ba = bytearray(10)
        s.sendall(memoryview(b"0123456789"))
        assert s.recv_into(ba, 4) == 4 and ba[:4] == b"0123"
        assert recv_exact(s, 6) == b"456789"
        st = h.stats()
        assert st.frames_in > 0 and st.conns_active >= 1
    assert h.error() == 0


def test_connect_refused_and_timeouts(make_handle, kserver):
    srv = kserver("hold")
    h = make_handle()
    closed_port = srv.port + 1 if srv.port < 65535 else srv.port - 1
    with pytest.raises(ConnectionRefusedError):
        h.connect(closed_port, timeout=5)
    with h.connect(srv.port, timeout=5) as s:
        s.settimeout(0.2)
        assert s.gettimeout() == 0.2
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            s.recv(10)
        dt = time.monotonic() - t
        assert 0.15 < dt < 2.0, dt
        s.setblocking(False)
        assert s.gettimeout() == 0.0
        with pytest.raises(BlockingIOError):
            s.recv(10)
        with pytest.raises(ValueError):
            s.settimeout(-1)


def test_half_close_and_reset(make_handle, kserver):
    src = kserver("source", nbytes=1 << 20, seed=3)
    h = make_handle()
    with h.connect(src.port, timeout=5) as s:
        got = recv_exact(s, 1 << 20)
        assert Pattern(3).check(0, got)
        assert s.recv(10) == b""  # end of stream
        s.sendall(b"still writable after the peer's FIN")
    echo = kserver("echo")
    with h.connect(echo.port, timeout=5) as s:
        s.sendall(b"abc")
        s.shutdown()
        assert recv_exact(s, 3) == b"abc"
        assert s.recv(1) == b""
        with pytest.raises(BrokenPipeError):
            s.sendall(b"after shutdown")
    # a kernel socket closed with SO_LINGER 0 resets the connection
    hold = kserver("hold")
    with h.connect(hold.port, timeout=5) as s:
        hold.wait_accepted(1)
        assert hold.reset_all() == 1
        s.settimeout(5)
        with pytest.raises(ConnectionResetError):
            s.recv(10)
        assert s.error() == -errno.ECONNRESET


def test_use_after_close_is_ebadf(make_handle, kserver):
    srv = kserver("echo")
    h = make_handle()
    s = h.connect(srv.port, timeout=5)
    lst = h.listen(4000)
    rfd = s.readable_fd()
    assert rfd >= 0 and s.fileno() == rfd and s.writable_fd() != rfd
    assert lst.fileno() >= 0
    s.close()
    s.close()  # twice: nothing happens
    for call in (lambda: s.recv(1), lambda: s.recv_into(bytearray(1)), lambda: s.send(b"x"),
                 lambda: s.sendall(b"x"), s.shutdown, s.info, s.fileno, s.writable_fd):
        with pytest.raises(OSError) as ei:
            call()
        assert ei.value.errno == errno.EBADF
    assert s.error() == -errno.EBADF
    lst.close()
    with pytest.raises(OSError) as ei:
        lst.accept(timeout=0)
    assert ei.value.errno == errno.EBADF
    with pytest.raises(OSError) as ei:
        lst.fileno()
    assert ei.value.errno == errno.EBADF
    # streams and listeners outlive their handle: ESHUTDOWN until closed
    s2 = h.connect(srv.port, timeout=5)
    l2 = h.listen(4001)
    h.close()
    h.close()
    with pytest.raises(OSError) as ei:
        s2.recv(1)
    assert ei.value.errno == errno.ESHUTDOWN
    with pytest.raises(OSError) as ei:
        l2.accept()
    assert ei.value.errno == errno.ESHUTDOWN
    s2.close()
    l2.close()
    with pytest.raises(OSError) as ei:
        s2.recv(1)
    assert ei.value.errno == errno.EBADF
    for call in (lambda: h.connect(srv.port), lambda: h.listen(5000), h.stats):
        with pytest.raises(OSError) as ei:
            call()
        assert ei.value.errno == errno.EBADF
    assert h.error() == -errno.EBADF


def test_listener_accepts_kernel_clients(make_handle, tun_device):
    h = make_handle()
    with h.listen(8080, backlog=8) as lst:
        lst.settimeout(5)
        got = []
        for i in range(3):
            c = socket.create_connection(("198.18.0.2", 8080), timeout=5)
            with lst.accept() as s:
                c.sendall(b"hello %d" % i)
                got.append(recv_exact(s, 7))
                s.sendall(b"bye")
                assert c.recv(3) == b"bye"
            c.close()
        assert got == [b"hello 0", b"hello 1", b"hello 2"]
        with pytest.raises(TimeoutError):
            lst.accept(timeout=0.05)
        with pytest.raises(BlockingIOError):
            lst.accept(timeout=0)


def test_nonblocking_connect_and_readiness(make_handle, kserver):
    srv = kserver("echo")
    h = make_handle()
    s = h.connect_nowait(srv.port)
    try:
        s.wait_connected(timeout=5)
        assert s.error() == 0
        assert not poll_readable(s.readable_fd(), 0)
        assert poll_readable(s.writable_fd(), 0)
        s.sendall(b"ping")
        assert poll_readable(s.readable_fd(), 5)
        assert s.recv(4) == b"ping"
    finally:
        s.close()
    refused = h.connect_nowait(srv.port + 1 if srv.port < 65535 else srv.port - 1)
    with pytest.raises(ConnectionRefusedError):
        refused.wait_connected(timeout=5)
    refused.close()


def test_makefile(make_handle, kserver):
    srv = kserver("echo")
    h = make_handle()
    with h.connect(srv.port, timeout=5) as s:
        f = s.makefile("rwb")
        f.write(b"line one\nline two\n")
        f.flush()
        assert f.readline() == b"line one\n"
        assert f.readline() == b"line two\n"


def test_options_and_pcap(make_handle, kserver, tmp_path):
    srv = kserver("echo")
    pcap = tmp_path / "x.pcap"
    h = make_handle(sndbuf=1 << 20, rcvbuf=1 << 20, nodelay=1, delack_us=0, max_conns=16,
                    mss=1000, pcap=str(pcap))
    with h.connect(srv.port, timeout=5) as s:
        s.sendall(b"x" * 5000)
        assert len(recv_exact(s, 5000)) == 5000
        assert s.info().mss <= 1000
    h.close()
    assert pcap.stat().st_size > 24 + 5000
