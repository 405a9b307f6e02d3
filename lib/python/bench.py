# SPDX-License-Identifier: MIT
"""Throughput of the Python package (jktcp.Handle through ctypes) against the kernel.

The Python counterpart of the "jktcp handle upload/download x1" rows of
tools/jktcp-bench (run by ``make bench`` after the C table): one stream over a
TUN device whose far end is the Linux kernel, IPv6, 256 KiB ``sendall`` /
``recv_into`` calls, the median of --runs runs, each in a fresh private network
namespace (a child process of this script). Next to each figure, the C handle's
for the same case, measured in the same run by ``jktcp-bench`` restricted to
that row, its runs alternating with the Python ones, and the ratio Python / C.

    JKTCP_LIBRARY=build/libjktcp.so.X python3 lib/python/bench.py \\
        [--runs N] [--mib N] [--mtu 1500,16000] [--quick] [--c-bench PATH | --no-c]

The options mean what they mean to jktcp-bench (``make bench BENCH_ARGS=...``
passes the same ones to both); JKTCP_BENCH_ONLY=<substring> keeps the rows
whose name ("python handle upload x1", ...) contains it.

NETWORK RULE: traffic goes only to addresses inside the namespace each run
creates: the kernel is fd00::1 on the TUN device, jktcp is fd00::2 at its far
end (tests/support/netns.h's addresses, as in the C bench).
"""
from __future__ import annotations

import argparse
import ctypes
import fcntl
import ipaddress
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
from typing import List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTS = os.path.join(HERE, "tests")
KSERVER = os.path.join(TESTS, "kserver.py")

TUN = "jkpyb0"
KERNEL6, LOCAL6 = "fd00::1", "fd00::2"
_ALLOWED = [ipaddress.ip_network(n) for n in ("198.18.0.0/15", "fd00::/8")]
CHUNK = 256 * 1024
SKIP = "skip"


def check_addr(addr: str) -> str:
    ip = ipaddress.ip_address(addr)
    if not any(ip in n for n in _ALLOWED):
        raise SystemExit(f"bench: traffic to {addr} is not allowed")
    return addr


# ---------------------------------------------------------------------------
# One measurement, in a child process with its own network namespace
# (what tests/conftest.py does for the pytest suite)
# ---------------------------------------------------------------------------

def _write(path: str, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        pass


def _quiet_ipv6(dev: str) -> None:
    for key, val in (("accept_dad", "0"), ("dad_transmits", "0"), ("router_solicitations", "0"),
                     ("accept_ra", "0"), ("autoconf", "0"), ("disable_ipv6", "0")):
        _write(f"/proc/sys/net/ipv6/conf/{dev}/{key}", val)


def _sh(cmd: List[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")


def enter_netns() -> str:
    """Unshare a private network namespace; '' or why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        return f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())} (needs root)"
    for dev in ("default", "all"):
        _quiet_ipv6(dev)
    _sh(["ip", "link", "set", "lo", "up"])
    return ""


def make_tun(mtu: int) -> str:
    """The persistent TUN device with the kernel's address (it goes with the
    namespace); '' or why not."""
    try:
        f = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"/dev/net/tun: {e.strerror}"
    try:
        fcntl.ioctl(f, 0x400454CA, struct.pack("16sH22x", TUN.encode(), 0x1001))  # TUNSETIFF
        fcntl.ioctl(f, 0x400454CB, 1)  # TUNSETPERSIST
    except OSError as e:
        return f"TUNSETIFF: {e.strerror}"
    finally:
        os.close(f)
    _quiet_ipv6(TUN)
    _sh(["ip", "link", "set", TUN, "mtu", str(mtu), "txqueuelen", "1000"])
    _sh(["ip", "-6", "addr", "add", check_addr(KERNEL6) + "/64", "dev", TUN, "nodad"])
    _sh(["ip", "link", "set", TUN, "up"])
    # The kernel takes frames for its address once its local route is in
    # (inserted from a workqueue after the address appears).
    end = time.monotonic() + 3
    while True:
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
                s.bind((KERNEL6, 0))
                s.connect((check_addr(LOCAL6), 9))
            out = subprocess.run(["ip", "-6", "route", "show", "table", "local"],
                                 capture_output=True, text=True).stdout
            if f"local {KERNEL6} " in out:
                return ""
        except OSError:
            pass
        if time.monotonic() > end:
            return f"{KERNEL6} did not become usable"
        time.sleep(0.005)


class KernelServer:
    """A kernel sink or source on fd00::1 in a child process (tests/kserver.py,
    with a source that sends one buffer over and over: no copy per send)."""

    def __init__(self, mode: str, nbytes: int = 0):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--kserver", mode, check_addr(KERNEL6),
             "-1", str(nbytes), "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            self.proc.kill()
            raise RuntimeError(f"kserver did not start: {line}")
        self.port = int(line[1])

    def _cmd(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def wait_done(self, timeout: float = 30.0) -> dict:
        end = time.monotonic() + timeout
        while True:
            st = self._cmd("stats")
            if st["done"] >= 1 or time.monotonic() > end:
                return st
            time.sleep(0.001)

    def close(self) -> None:
        try:
            self._cmd("close")
            self.proc.wait(5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def kserver_main(argv: List[str]) -> None:
    sys.path.insert(0, TESTS)
    import kserver

    def do_source(self, c, res) -> None:
        buf = memoryview(random.Random(7).randbytes(CHUNK))
        off = 0
        while off < self.nbytes:
            n = min(CHUNK, self.nbytes - off)
            c.sendall(buf[:n])
            off += n
            with self.lock:
                self.bytes_out += n
        res["bytes"] = off

    kserver.Server.do_source = do_source
    sys.argv = [KSERVER] + argv
    kserver.main()


def measure(direction: str, mtu: int, nbytes: int) -> float:
    """MB/s of one transfer of nbytes through a jktcp.Handle (this process
    must be in its own namespace)."""
    sys.path.insert(0, HERE)
    import jktcp

    srv = KernelServer("sink" if direction == "up" else "source", nbytes)
    try:
        with jktcp.Handle(jktcp.tun(TUN), local=LOCAL6, peer=check_addr(KERNEL6), mtu=mtu) as h:
            with h.connect(srv.port, timeout=3) as s:
                s.settimeout(30)
                if direction == "up":
                    buf = random.Random(7).randbytes(CHUNK)
                    mv = memoryview(buf)
                    t0 = time.monotonic()
                    sent = 0
                    while sent < nbytes:
                        k = min(CHUNK, nbytes - sent)
                        s.sendall(mv[:k] if k < CHUNK else buf)
                        sent += k
                    s.shutdown()
                    rbuf = bytearray(CHUNK)
                    while s.recv_into(rbuf) > 0:
                        pass
                    st = srv.wait_done()
                    dt = time.monotonic() - t0
                    got = st["bytes_in"]
                else:
                    rbuf = bytearray(CHUNK)
                    got = 0
                    t0 = time.monotonic()
                    while True:
                        n = s.recv_into(rbuf)
                        if n == 0:
                            break
                        got += n
                    dt = time.monotonic() - t0
            h.close(linger=1.0)
    finally:
        srv.close()
    if got != nbytes:
        raise RuntimeError(f"{got} of {nbytes} bytes")
    return nbytes / dt / 1e6


def child_main(direction: str, mtu: int, nbytes: int) -> None:
    """--run: print 'mbps X', 'skip WHY' or 'error WHY' as the last line."""
    why = enter_netns()
    if not why:
        why = make_tun(mtu)
    if why:
        print(f"{SKIP} {why}", flush=True)
        return
    try:
        print(f"mbps {measure(direction, mtu, nbytes):.3f}", flush=True)
    except Exception as e:  # noqa: BLE001  (reported by the parent)
        print(f"error {type(e).__name__}: {e}", flush=True)


# ---------------------------------------------------------------------------
# The parent: alternate C and Python runs, print the rows
# ---------------------------------------------------------------------------

def run_python(direction: str, mtu: int, mib: int) -> Tuple[Optional[float], str]:
    try:
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--run", direction,
                            str(mtu), str(mib)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    lines = r.stdout.strip().splitlines()
    last = lines[-1] if lines else f"no output (exit {r.returncode}): {r.stderr.strip()[-300:]}"
    if last.startswith("mbps "):
        return float(last.split()[1]), ""
    return None, last


def run_c(cbench: str, name: str, mtu: int, mib: int) -> Optional[float]:
    """One run of jktcp-bench's row `name` at this MTU (its MB/s), or None."""
    env = dict(os.environ, JKTCP_BENCH_ONLY=name)
    try:
        r = subprocess.run([cbench, "--runs", "1", "--mib", str(mib), "--mtu", str(mtu)],
                           capture_output=True, text=True, timeout=600, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in r.stdout.splitlines():
        f = [x.strip() for x in line.split("|")]
        if len(f) > 4 and f[1] == name and f[2] == str(mtu):
            try:
                v = float(f[3])
            except ValueError:
                return None
            return v if v > 0 else None
    return None


def median(vals: List[Optional[float]]) -> float:
    """The middle run, failed ones (None) counting as -1, as jktcp-bench does."""
    v = sorted(x if x is not None else -1.0 for x in vals)
    return v[len(v) // 2]


def fmt(v: Optional[float]) -> str:
    return f"{v:.1f}" if v is not None else "—"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--kserver":
        kserver_main(sys.argv[2:])
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "--run":
        child_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) << 20)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median); default 3")
    ap.add_argument("--mib", type=int, default=256, help="MiB per transfer; default 256")
    ap.add_argument("--mtu", default="1500,16000", help="MTUs, comma-separated")
    ap.add_argument("--quick", action="store_true", help="1 run, 64 MiB")
    ap.add_argument("--c-bench", default=os.path.join(ROOT, "build", "tools", "jktcp-bench"),
                    help="jktcp-bench for the C figures (default: build/tools/jktcp-bench)")
    ap.add_argument("--no-c", action="store_true", help="Python figures only")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.mib = 1, 64
    runs = max(1, min(15, a.runs))
    mtus = [int(m) for m in a.mtu.split(",") if m.strip()]
    cbench = None if a.no_c or not os.access(a.c_bench, os.X_OK) else a.c_bench
    only = os.environ.get("JKTCP_BENCH_ONLY")
    cases = [(f"python handle {d} x1", f"jktcp handle {d} x1", short)
             for d, short in (("upload", "up"), ("download", "down"))]
    rows = [(mtu, py, c, d) for mtu in mtus for py, c, d in cases if not only or only in py]
    if not rows:
        return 0

    v, why = run_python("up", mtus[0], 1)  # can it run here at all? (1 MiB, untimed)
    if v is None and why.startswith(SKIP):
        print(f"python bench: skipped: {why[len(SKIP) + 1:]}")
        return 0

    sys.path.insert(0, HERE)
    import jktcp  # for the version line (the child processes import it too)
    lib = os.environ.get("JKTCP_LIBRARY") or "the library on the default path"
    print(f"\npython bench: jktcp {jktcp.__version__} through ctypes ({lib}), "
          f"Python {sys.version.split()[0]}\n{runs} run(s) per figure (median), {a.mib} MiB per "
          f"transfer, IPv6, one stream, {CHUNK >> 10} KiB sendall / recv_into")
    if cbench:
        print("C = the same case through jktcp-bench, its runs alternating with the Python ones; "
              "py/C = Python / C\n")
    else:
        print("C reference: the \"jktcp handle upload/download x1\" rows of jktcp-bench's table\n")
    print(f"| {'case':<28} | {'MTU':>5} | {'MB/s':>8} | {'C MB/s':>8} | {'py/C':>5} "
          f"| runs (python; C) |")
    print("|" + "|".join("-" * n for n in (30, 7, 10, 10, 7, 18)) + "|")
    for mtu, py, cname, d in rows:
        pv: List[Optional[float]] = []
        cv: List[Optional[float]] = []
        for _ in range(runs):
            if cbench:
                cv.append(run_c(cbench, cname, mtu, a.mib))
            v, why = run_python(d, mtu, a.mib)
            if v is None:
                print(f"python bench: {py} MTU {mtu}: {why}", file=sys.stderr)
            pv.append(v)
        pm = median(pv)
        cm = median(cv) if cbench else None
        pm_s = f"{pm:.1f}" if pm > 0 else "—"
        cm_s = f"{cm:.1f}" if cm is not None and cm > 0 else "—"
        ratio = f"{pm / cm:.2f}" if pm > 0 and cm is not None and cm > 0 else "—"
        all_runs = " ".join(fmt(x) for x in pv)
        if cbench:
            all_runs += "; " + " ".join(fmt(x) for x in cv)
        print(f"| {py:<28} | {mtu:5d} | {pm_s:>8} | {cm_s:>8} | {ratio:>5} "
              f"| {all_runs} |", flush=True)
    return 0  # failed runs show as — (and on stderr), as jktcp-bench's -1


if __name__ == "__main__":
    sys.exit(main())
