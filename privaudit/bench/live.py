"""Live overhead: mitmdump with the privaudit addon against mitmdump without it.

``python -m privaudit.bench.live [--seconds 10] [--rounds 3] [--connections 8] [--warmup 2]``

Same loopback load, run side by side: a keep-alive HTTP/1.1 backend on
loopback (a separate process), mitmdump in regular proxy mode in front of it,
and ``wrk`` sending POSTs of 1–4 KB JSON bodies in absolute form (as a device
configured with an HTTP proxy does) through the proxy. Both proxies are
started once: the plain proxy and the proxy with the addon (recording every
flow to a flow file and analysing it live, with the canary file given). Each
round loads one, then the other, for ``--seconds`` each, alternating which
goes first; the figures are the medians over rounds. It prints requests/s,
the throughput ratio, latency percentiles (p50, p99), and the CPU time each
proxy (and, separately, its child processes: the live analysis) spent per
request, which varies less than requests/s on a machine shared with other
work. It does not judge them.

Each proxy first gets ``--warmup`` seconds of the same load, not measured
(both alike): the figures are the steady state of a capture, not mitmproxy's
and the addon's start-up (imports, the analysis loading its rules), which
happens once per session. Before each slice the benchmark waits until
neither proxy nor its child processes use CPU (the live analysis catching up
with the flows of earlier slices), so that neither slice pays for the other
proxy's work; the addon's own analysis during its slice is measured, at the
low priority it runs at.

Needs ``wrk`` (Debian package ``wrk``; ``scripts/system-deps.sh`` installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKEND = r'''
import asyncio, sys
BODY = b'{"ok":true,"answer":"fine","id":12345}'
RESP = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
async def handle(r, w):
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    n = int(line[15:])
            if n:
                await r.readexactly(n)
            w.write(RESP)
            await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        w.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()
asyncio.run(main())
'''

WRK_LUA = r'''
math.randomseed(7)
local bodies = {}
for i = 1, 64 do
  local n = 1024 + (i * 48) % 3072
  local pad = string.rep("x", n - 120)
  bodies[i] = '{"event":"chat_open","device_id":"f0e1d2c3b4a5' .. string.format("%04d", i) ..
              '","model":"SM-S918N","os_version":"14","email":"tester.one@example.org","pad":"' .. pad .. '"}'
end
local i = 0
request = function()
  i = i % 64 + 1
  return wrk.format("POST", "__URL__", {["Content-Type"] = "application/json", ["Host"] = "__HOST__"}, bodies[i])
end
'''

CANARIES = "email: tester.one@example.org\ndevice_id: f0e1d2c3b4a59687\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _mitmdump() -> str:
    exe = Path(sys.executable).with_name("mitmdump")
    return str(exe) if exe.exists() else (shutil.which("mitmdump") or "mitmdump")


def _to_ms(v: str, unit: str) -> float:
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str) -> dict:
    """Requests/s and latency percentiles from ``wrk --latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {}
    for p, v, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        pct[p] = _to_ms(v, unit)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p50_ms": pct.get("50"), "p99_ms": pct.get("99"),
            "non2xx": int(errors.group(1)) if errors else 0, "socket_errors": sock.group(0) if sock else ""}


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _descendants(pid: int) -> list[int]:
    """Processes started by ``pid`` and by those (the analysis process...), from /proc."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        todo += kids
    return out


def _cpu(pid: int) -> tuple[float, dict[int, float]]:
    return _cpu_seconds(pid), {c: _cpu_seconds(c) for c in _descendants(pid)}


class Proxy:
    """One mitmdump (with or without the addon), started once for the whole
    benchmark and measured in slices."""

    def __init__(self, with_addon: bool, work: Path, extra: list[str] = ()) -> None:
        self.with_addon = with_addon
        self.port = _free_port()
        cmd = [_mitmdump(), "-q", "--listen-host", "127.0.0.1", "--listen-port", str(self.port),
               "--set", f"confdir={work / 'mitm'}"]
        if with_addon:
            from privaudit.capture import addon_path

            cmd += ["-s", addon_path(), "--set", f"privaudit_flowfile={work / 'flows.mitm'}",
                    "--set", f"privaudit_canaries={work / 'canaries.yaml'}"]
            for opt in extra:
                cmd += ["--set", opt]
        self.log = open(work / f"mitmdump-{self.port}.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log)
        _wait_port(self.port)

    def wait_quiet(self, timeout: float = 60.0) -> float:
        """Waits until the proxy and its child processes (the analysis catching
        up with earlier slices) use no CPU, so that they do not take it from the
        next slice, whichever proxy that measures. Returns the seconds waited."""
        start = time.monotonic()
        before = self._cpu_total()
        while time.monotonic() - start < timeout:
            time.sleep(0.3)
            now = self._cpu_total()
            if now - before < 0.02:
                break
            before = now
        return time.monotonic() - start

    def _cpu_total(self) -> float:
        own, kids = _cpu(self.proc.pid)
        return own + sum(kids.values())

    def load(self, backend_port: int, seconds: int, connections: int, work: Path, measure: bool = True) -> dict | None:
        lua = work / "post.lua"
        url = f"http://127.0.0.1:{backend_port}/v1/events"
        lua.write_text(WRK_LUA.replace("__URL__", url).replace("__HOST__", f"127.0.0.1:{backend_port}"))
        cpu0, kids0 = _cpu(self.proc.pid)
        r = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua),
                            f"http://127.0.0.1:{self.port}"], capture_output=True, text=True, timeout=seconds + 60)
        cpu1, kids1 = _cpu(self.proc.pid)
        if r.returncode != 0:
            raise RuntimeError(f"wrk failed: {r.stderr.strip()}")
        if not measure:
            return None
        res = parse_wrk(r.stdout)
        res["with_addon"] = self.with_addon
        # CPU time per request: the proxy's own, and its child processes' (the analysis)
        n = max(1.0, res["rps"] * seconds)
        res["proxy_cpu_us"] = (cpu1 - cpu0) / n * 1e6
        res["helpers_cpu_us"] = sum(v - kids0.get(k, 0.0) for k, v in kids1.items()) / n * 1e6
        return res

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=300)  # with the addon, the analysis first catches up
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m privaudit.bench.live", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2, help="seconds of load on each proxy before measuring (default 2)")
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s, to check the command works")
    ap.add_argument("--json", metavar="FILE", help="also write the figures here")
    ap.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                    help="extra mitmproxy option for the with-addon runs (repeatable)")
    a = ap.parse_args(argv)
    if a.quick:
        a.seconds, a.rounds = 2, 1
    if not shutil.which("wrk"):
        print("privaudit.bench.live: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="privaudit-live-") as tmp:
        work = Path(tmp)
        (work / "canaries.yaml").write_text(CANARIES)
        backend = subprocess.Popen([sys.executable, "-c", BACKEND], stdout=subprocess.PIPE, text=True)
        proxies: dict[bool, Proxy] = {}
        try:
            bport = int(backend.stdout.readline())
            results: dict[bool, list[dict]] = {False: [], True: []}
            for with_addon in (False, True):
                proxies[with_addon] = Proxy(with_addon, work, a.set)
                if a.warmup > 0:
                    proxies[with_addon].load(bport, a.warmup, a.connections, work, measure=False)
            for rnd in range(a.rounds):
                order = (False, True) if rnd % 2 == 0 else (True, False)
                for with_addon in order:
                    waited = max(p.wait_quiet() for p in proxies.values())
                    res = proxies[with_addon].load(bport, a.seconds, a.connections, work)
                    results[with_addon].append(res)
                    print(f"round {rnd + 1} {'with addon   ' if with_addon else 'without addon'}: "
                          f"{res['rps']:8.1f} req/s  p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms"
                          f"  proxy CPU {res['proxy_cpu_us']:.0f} us/req (+{res['helpers_cpu_us']:.0f} in its child processes)"
                          f"  non-2xx {res['non2xx']} {res['socket_errors']}  (waited {waited:.1f} s for quiet)", flush=True)
        finally:
            for p in proxies.values():
                p.stop()
            backend.kill()
    metrics = ("rps", "p50_ms", "p99_ms", "proxy_cpu_us", "helpers_cpu_us")
    med = {k: {m: statistics.median(r[m] for r in v) for m in metrics} for k, v in results.items()}
    ratio = med[True]["rps"] / med[False]["rps"]
    added = med[True]["p99_ms"] - med[False]["p99_ms"]
    paired = [w["rps"] / o["rps"] for w, o in zip(results[True], results[False])]
    cpu_ratio = med[False]["proxy_cpu_us"] / med[True]["proxy_cpu_us"] if med[True]["proxy_cpu_us"] else float("nan")
    for k, name in ((False, "without addon:"), (True, "with addon:   ")):
        print(f"median {name} {med[k]['rps']:.1f} req/s, p99 {med[k]['p99_ms']:.2f} ms, "
              f"proxy CPU {med[k]['proxy_cpu_us']:.0f} us/req (+{med[k]['helpers_cpu_us']:.0f} us/req in child processes)")
    print(f"throughput ratio (with/without): {ratio:.3f}; p99 latency added: {added:+.2f} ms")
    print(f"  per round: {' '.join(f'{x:.3f}' for x in paired)}; proxy CPU per request, without/with: {cpu_ratio:.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rounds": {str(k): v for k, v in results.items()}, "median": {str(k): v for k, v in med.items()},
                                            "ratio": ratio, "p99_added_ms": added, "round_ratios": paired,
                                            "proxy_cpu_ratio": cpu_ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
