"""mitmproxy flow objects -> :class:`~privaudit.model.Exchange`.

Shared by the file readers and the live addon, so a flow is normalised the
same way whether it was just captured or read back a year later.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..model import CertInfo, DnsRecord, Exchange, Message, WsMessage


def _text(v: bytes | str) -> str:
    if isinstance(v, str):
        return v
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        return v.decode("latin-1")


def _message(m: Any) -> Message:
    """An HTTP request/response -> Message with Content-Encoding removed."""
    headers = tuple((_text(k), _text(v)) for k, v in m.headers.fields)
    error = None
    raw = m.raw_content
    if raw is None:
        body = b""
    else:
        try:
            body = m.get_content(strict=True) or b""
        except ValueError as e:
            # Keep the raw bytes: detection still searches them, and the report
            # counts the body as undecodable.
            body = raw
            error = f"cannot remove Content-Encoding {m.headers.get('content-encoding', '')!r}: {e}"
    return Message(
        headers=headers,
        body=body,
        content_type=(m.headers.get("content-type") or "").lower(),
        body_decode_error=error,
    )


def _cert(server_conn: Any) -> CertInfo | None:
    certs = getattr(server_conn, "certificate_list", None) or []
    if not certs:
        return None
    return cert_facts(certs[0])


def cert_facts(c: Any) -> CertInfo | None:
    """A mitmproxy ``Cert`` -> the facts privaudit keeps as evidence."""

    def first(pairs: list[tuple[str, str]], key: str) -> str | None:
        for k, v in pairs:
            if k == key:
                return v
        return None

    try:
        subject = c.subject
        issuer = c.issuer
        sans: list[str] = []
        for n in c.altnames:
            value = getattr(n, "value", n)
            sans.append(str(value))
        return CertInfo(
            subject_cn=first(subject, "CN"),
            subject_o=first(subject, "O"),
            subject_c=first(subject, "C"),
            issuer_cn=first(issuer, "CN"),
            issuer_o=first(issuer, "O"),
            sans=tuple(sans),
            sha256=c.fingerprint().hex(),
        )
    except Exception:  # a certificate we cannot parse is no evidence, not an error
        return None


def _addr_host(addr: Any) -> str | None:
    if not addr:
        return None
    host = str(addr[0])
    return host.strip("[]")


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def _tls_version(server_conn: Any) -> str | None:
    v = getattr(server_conn, "tls_version", None)
    return str(v) if v else None


def flow_to_exchange(flow: Any, index: int, source: str = "", server_ip: str | None = None) -> Exchange:
    """Normalises any mitmproxy flow (HTTP, TCP, UDP, DNS, ...) into an Exchange."""
    from mitmproxy import http

    sc = flow.server_conn
    peer_ip = server_ip or _addr_host(getattr(sc, "peername", None))
    if peer_ip and not _is_ip(peer_ip):
        # Old dumps sometimes store a host name as the peer; that is no address.
        peer_ip = None
    error = flow.error.msg if getattr(flow, "error", None) else None
    start = getattr(flow, "timestamp_created", None)
    sni = getattr(sc, "sni", None)

    if isinstance(flow, http.HTTPFlow):
        req = flow.request
        scheme = req.scheme
        ws: tuple[WsMessage, ...] = ()
        if flow.websocket is not None:
            scheme = "wss" if scheme == "https" else "ws"
            ws = tuple(
                WsMessage(
                    from_client=bool(m.from_client),
                    is_text=bool(m.is_text),
                    content=m.content.encode("utf-8", "surrogateescape") if isinstance(m.content, str) else bytes(m.content),
                    timestamp=m.timestamp,
                )
                for m in flow.websocket.messages
            )
        tls = bool(getattr(sc, "tls_established", False)) or req.scheme == "https"
        return Exchange(
            index=index,
            kind="http",
            host=req.pretty_host.lower().rstrip("."),
            port=req.port,
            scheme=scheme,
            method=req.method,
            url=req.pretty_url,
            request=_message(req),
            response=_message(flow.response) if flow.response is not None else None,
            websocket=ws,
            server_ip=peer_ip,
            tls=tls,
            tls_version=_tls_version(sc),
            sni=sni,
            cert=_cert(sc),
            timestamp_start=req.timestamp_start or start,
            error=error,
            source=source,
            http_version=req.http_version,
            streamed=req.raw_content is None or (flow.response is not None and flow.response.raw_content is None),
        )

    kind = {"TCPFlow": "tcp", "UDPFlow": "udp", "DNSFlow": "dns"}.get(type(flow).__name__, "other")
    addr_host = _addr_host(getattr(sc, "address", None))
    host = (sni or addr_host or peer_ip or "").lower()
    dns: tuple[DnsRecord, ...] = ()
    if kind == "dns":
        q = flow.request.question if getattr(flow, "request", None) else None
        if q is not None:
            host = q.name.lower().rstrip(".")
        if getattr(flow, "response", None) is not None:
            recs = []
            for rr in flow.response.answers:
                try:
                    j = rr.to_json()
                    recs.append(DnsRecord(name=j["name"].lower().rstrip("."), type=j["type"], value=str(j["data"]).rstrip(".")))
                except Exception:
                    continue
            dns = tuple(recs)
    port = getattr(sc, "address", None)
    return Exchange(
        index=index,
        kind=kind,  # type: ignore[arg-type]
        host=host,
        port=int(port[1]) if port else None,
        server_ip=peer_ip if peer_ip else (addr_host if addr_host and _is_ip(addr_host) else None),
        tls=bool(getattr(sc, "tls_established", False)),
        tls_version=_tls_version(sc),
        sni=sni,
        cert=_cert(sc),
        timestamp_start=start,
        error=error,
        dns=dns,
        source=source,
    )
