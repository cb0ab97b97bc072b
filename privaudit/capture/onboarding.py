"""What the tester needs to point a device at the proxy, printed once it listens.

Pure functions of the running proxy's facts (mode, addresses, mitmproxy's
configuration folder, its server descriptions), so they can be tested without
a device: where to point the device for each mode, the WireGuard client
configuration and its QR code for the phone, and how to install and trust
mitmproxy's CA on each platform (mitm.it, or the CA file itself).
"""

from __future__ import annotations

import io
import ipaddress
import platform
import socket
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

CA_PEM = "mitmproxy-ca-cert.pem"
CA_CER = "mitmproxy-ca-cert.cer"
CA_P12 = "mitmproxy-ca-cert.p12"

MODE_DOCS = "https://docs.mitmproxy.org/stable/concepts-modes/"


def mode_type(mode: str) -> str:
    """``"upstream:http://x:3128"`` -> ``"upstream"``; ``"regular@8081"`` -> ``"regular"``."""
    return mode.split("@", 1)[0].split(":", 1)[0].strip().lower() or "regular"


def lan_address() -> str | None:
    """This machine's address on its local network, as a phone would reach it.

    A UDP socket "connected" to a documentation address picks the outgoing
    interface without sending a packet."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent by connect() on UDP
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if ipaddress.ip_address(addr).is_loopback else addr


def local_mode_support(system: str | None = None) -> tuple[bool, str]:
    """Whether ``--mode local:APP`` (capture one desktop app by name) can run here."""
    system = system or platform.system()
    if system == "Windows":
        return True, "local mode works on Windows (run privaudit as Administrator)"
    if system == "Darwin":
        return True, "local mode works on macOS: allow the 'Mitmproxy Redirector' system extension when asked"
    if system == "Linux":
        try:
            import mitmproxy_linux  # noqa: F401  (mitmproxy 12's eBPF redirector)
        except ImportError:
            return False, "local mode on Linux needs mitmproxy 12 or later (Python 3.12+); use regular mode with HTTPS_PROXY instead"
        return True, "local mode on Linux needs root (or CAP_BPF and CAP_NET_ADMIN)"
    return False, f"local mode is not available on {system}; use regular mode"


def qr_text(data: str) -> str:
    """``data`` as a QR code drawn with text blocks, for a phone to scan off the terminal."""
    import qrcode

    qr = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(data)
    qr.make(fit=True)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue().rstrip("\n")


def wireguard_client_conf(conf: str, listen: Sequence[tuple[str, int]], lan: str | None = None) -> str:
    """mitmproxy's client configuration with an ``Endpoint`` a phone can use:
    the port actually bound (mitmproxy writes 0 when asked for any port) and,
    for a proxy listening on every interface, this machine's LAN address."""
    if not listen:
        return conf
    host, port = listen[0]
    out = []
    for line in conf.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "endpoint":
            ep_host, _, ep_port = value.strip().rpartition(":")
            if ep_host.strip("[]") in ("", "0.0.0.0", "::") and lan:
                ep_host = lan
            if ep_port in ("", "0"):
                ep_port = str(port)
            line = f"Endpoint = {ep_host or host}:{ep_port}"
        out.append(line)
    return "\n".join(out)


def _reachable_hint(listen: Sequence[tuple[str, int]]) -> list[str]:
    hosts = {h for h, _ in listen}
    if hosts and all(_is_loopback(h) for h in hosts):
        return [
            "  Note: the proxy listens on loopback only; a phone cannot reach it.",
            "        Restart with --listen-host 0.0.0.0 (and allow the port in the firewall) to audit a phone.",
        ]
    return []


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _point_device(mode: str, listen: Sequence[tuple[str, int]], servers: Iterable[dict], qr: bool) -> list[str]:
    kind = mode_type(mode)
    port = listen[0][1] if listen else None
    lan = lan_address()
    host = lan if lan and not all(_is_loopback(h) for h, _ in listen) else (listen[0][0] if listen else "?")
    lines: list[str] = []
    if kind in ("regular", "upstream"):
        local = listen[0][0] if listen else "127.0.0.1"
        local = "127.0.0.1" if local in ("", "0.0.0.0") else "[::1]" if local == "::" else local
        lines += [
            f"Point the device at the proxy {host}:{port}:",
            f"  phone (same Wi-Fi): Wi-Fi settings > this network > Proxy: Manual, host {host}, port {port}",
            f"  desktop app on this machine: the system proxy settings, or start the app with "
            f"HTTPS_PROXY=http://{local}:{port} HTTP_PROXY=http://{local}:{port}",
        ]
        if kind == "upstream":
            lines.append(f"  the proxy forwards everything to the upstream proxy in {mode.split(':', 1)[1]}")
        lines += _reachable_hint(listen)
    elif kind == "wireguard":
        conf = next((s.get("wireguard_conf") for s in servers if isinstance(s, dict) and s.get("wireguard_conf")), None)
        lines.append("Point the phone at the proxy with the WireGuard app (Android, iOS, macOS, Windows):")
        lines.append("  WireGuard app > + > Scan from QR code (or import this configuration as a file);")
        lines.append(f"  the phone must reach this machine on UDP port {port} (same Wi-Fi; allow the port in the firewall).")
        if conf:
            conf = wireguard_client_conf(conf, listen, lan)
            lines += _reachable_hint(listen)
            lines.append("  Client configuration (it contains a private key: do not store or share it):")
            lines += ["    " + line for line in conf.strip().splitlines()]
            if qr:
                try:
                    lines += ["", qr_text(conf)]
                except ImportError:
                    lines.append("  (install the 'qrcode' package to get a QR code here)")
    elif kind == "local":
        ok, why = local_mode_support()
        app = mode.split(":", 1)[1] if ":" in mode else "(every app)"
        lines.append(f"Capturing the desktop app {app} on this machine directly; start (or restart) it now.")
        lines.append(f"  {why}")
        if not ok:
            lines.append("  Alternative: start the app with HTTPS_PROXY pointing at a regular-mode proxy.")
    elif kind == "transparent":
        lines += [
            f"Route the device's traffic through this machine and redirect ports 80/443 to port {port}",
            "  (Linux: iptables -t nat -A PREROUTING -i IFACE -p tcp --dport 443 -j REDIRECT --to-port "
            f"{port}; see https://docs.mitmproxy.org/stable/howto-transparent/).",
        ]
    elif kind == "reverse":
        target = mode.split(":", 1)[1] if ":" in mode else "?"
        lines += [
            f"Clients connect to {host}:{port} as if it were the server {target}:",
            "  point the app's server address (or the hosts file entry for the server's name) here.",
        ]
    else:
        lines.append(f"See {MODE_DOCS} for how to send traffic to a {kind} proxy.")
    return lines


def _trust_ca(confdir: Path | None) -> list[str]:
    d = Path(confdir) if confdir else Path("~/.mitmproxy")
    pem, cer, p12 = d / CA_PEM, d / CA_CER, d / CA_P12
    return [
        "Install and trust mitmproxy's CA on the device (once per device; remove it after the audit):",
        "  any device: browse to http://mitm.it THROUGH the proxy and follow the steps for its platform.",
        f"  CA files: {pem} (PEM), {cer} (Android/iOS), {p12} (Windows)",
        "  Android: Settings > Security > Encryption & credentials > Install a certificate > CA certificate.",
        "           Apps trust user CAs only if they opt in (Android 7+): audit a debug build, or a rooted/emulator",
        "           device with the CA in the system store.",
        "  iOS/iPadOS: open mitm.it in Safari, install the profile (Settings > General > VPN & Device Management),",
        "           then Settings > General > About > Certificate Trust Settings: turn on full trust for mitmproxy.",
        f"  macOS:   sudo security add-trusted-cert -d -p ssl -p basic -k /Library/Keychains/System.keychain {pem}",
        f"  Windows: certutil -addstore root {cer}   (as Administrator)",
        f"  Linux:   sudo cp {pem} /usr/local/share/ca-certificates/mitmproxy.crt && sudo update-ca-certificates",
        f"           (Firefox keeps its own store; Node/Electron apps: NODE_EXTRA_CA_CERTS={pem})",
        "  An app that still refuses the proxy pins its certificates: meta.json lists it under tls_failures.",
    ]


def onboarding_text(
    mode: str,
    listen_addrs: Sequence[tuple[str, int]],
    confdir: Path | None,
    servers: Iterable[dict] = (),
    *,
    qr: bool = True,
) -> str:
    """Everything the tester needs to start, once the proxy listens."""
    listen = list(listen_addrs)
    lines = [f"privaudit: proxy ({mode}) listening on " + (", ".join(f"{h}:{p}" for h, p in listen) or "?"), ""]
    lines += _point_device(mode, listen, list(servers), qr)
    lines.append("")
    lines += _trust_ca(confdir)
    return "\n".join(lines)


def print_onboarding(ready, mode: str, file=None, qr: bool = True) -> None:
    """Waits for the proxy (a :class:`~privaudit.capture.runner.CaptureReady`) and prints the onboarding."""
    ready.wait()
    if getattr(ready, "error", None):
        return
    text = onboarding_text(mode, ready.listen_addrs, ready.confdir, getattr(ready, "servers", ()) or (), qr=qr)
    print(text, file=file or sys.stderr, flush=True)
