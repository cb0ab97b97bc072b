"""Live overhead: mitmdump with the privaudit addon against mitmdump without it.

``python -m privaudit.bench.live [--seconds 10] [--rounds 3] [--connections 8]``

Same loopback load, run side by side: a keep-alive HTTP/1.1 backend on
loopback (a separate process), mitmdump in regular proxy mode in front of it,
and ``wrk`` sending POSTs of 1–4 KB JSON bodies in absolute form (as a device
configured with an HTTP proxy does) through the proxy. Each round runs the
plain proxy and the proxy with the addon (recording every flow to a flow file,
with the canary file given) back to back, alternating which goes first; the
figures are the medians over rounds. It prints requests/s, the throughput
ratio, and latency percentiles (p50, p99) for both; it does not judge them.

Needs ``wrk`` (Debian package ``wrk``; ``scripts/system-deps.sh`` installs it).
"""

from __future__ import annotations

import argparse
import json
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


def run_one(backend_port: int, with_addon: bool, seconds: int, connections: int, work: Path, extra: list[str] = ()) -> dict:
    port = _free_port()
    cmd = [_mitmdump(), "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
           "--set", f"confdir={work / 'mitm'}"]
    if with_addon:
        from privaudit.capture import addon_path

        flows = work / f"flows-{time.monotonic_ns()}.mitm"
        cmd += ["-s", addon_path(), "--set", f"privaudit_flowfile={flows}",
                "--set", f"privaudit_canaries={work / 'canaries.yaml'}"]
        for opt in extra:
            cmd += ["--set", opt]
    proxy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_port(port)
        lua = work / "post.lua"
        url = f"http://127.0.0.1:{backend_port}/v1/events"
        lua.write_text(WRK_LUA.replace("__URL__", url).replace("__HOST__", f"127.0.0.1:{backend_port}"))
        r = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua),
                            f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=seconds + 60)
        if r.returncode != 0:
            raise RuntimeError(f"wrk failed: {r.stderr.strip()}")
        res = parse_wrk(r.stdout)
        res["with_addon"] = with_addon
        return res
    finally:
        proxy.send_signal(signal.SIGINT)
        try:
            proxy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proxy.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m privaudit.bench.live", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
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
        try:
            bport = int(backend.stdout.readline())
            results: dict[bool, list[dict]] = {False: [], True: []}
            for rnd in range(a.rounds):
                order = (False, True) if rnd % 2 == 0 else (True, False)
                for with_addon in order:
                    res = run_one(bport, with_addon, a.seconds, a.connections, work, a.set)
                    results[with_addon].append(res)
                    print(f"round {rnd + 1} {'with addon   ' if with_addon else 'without addon'}: "
                          f"{res['rps']:8.1f} req/s  p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms"
                          f"  non-2xx {res['non2xx']} {res['socket_errors']}", flush=True)
        finally:
            backend.kill()
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p50_ms", "p99_ms")} for k, v in results.items()}
    ratio = med[True]["rps"] / med[False]["rps"]
    added = med[True]["p99_ms"] - med[False]["p99_ms"]
    print(f"median without addon: {med[False]['rps']:.1f} req/s, p99 {med[False]['p99_ms']:.2f} ms")
    print(f"median with addon:    {med[True]['rps']:.1f} req/s, p99 {med[True]['p99_ms']:.2f} ms")
    print(f"throughput ratio (with/without): {ratio:.3f}; p99 latency added: {added:+.2f} ms")
    if a.json:
        Path(a.json).write_text(json.dumps({"rounds": {str(k): v for k, v in results.items()}, "median": {str(k): v for k, v in med.items()},
                                            "ratio": ratio, "p99_added_ms": added}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
