"""The normalised data that flows between privaudit's stages.

source  -> :class:`Exchange` (one per captured flow, HTTP or not)
detect  -> :class:`Finding`
jurisdiction -> :class:`EndpointInfo`
audit   -> the findings document (``privaudit.audit``)

Everything here is a frozen dataclass with plain-value fields so each stage can
be used and tested on its own, pickled to worker processes, and compared in
tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: The categories fixed by the outside contract (CONTRACT.md). A project may add
#: more; these names and meanings stay.
CATEGORIES: tuple[str, ...] = (
    "email",
    "phone",
    "name",
    "national_id",
    "payment_card",
    "credentials",
    "location",
    "advertising_id",
    "device_id",
    "device_info",
    "network_info",
    "installed_apps",
    "contacts",
    "chat_content",
    "behavioral",
)

SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")

FlowKind = Literal["http", "tcp", "udp", "dns", "other"]


@dataclass(frozen=True, slots=True)
class Message:
    """One HTTP request or response, content-decoded where possible."""

    headers: tuple[tuple[str, str], ...]
    """Header (name, value) pairs in wire order; names as sent."""
    body: bytes
    """The body with Content-Encoding removed (gzip, deflate, br, zstd), or the
    raw bytes if it could not be decoded (then ``body_decode_error`` says why)."""
    content_type: str = ""
    """The Content-Type header value, lower-cased, parameters kept."""
    body_decode_error: str | None = None
    """Why the Content-Encoding could not be removed, if it could not."""

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


@dataclass(frozen=True, slots=True)
class WsMessage:
    """One WebSocket message."""

    from_client: bool
    """True for messages the app sent."""
    is_text: bool
    content: bytes
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class CertInfo:
    """The facts of a server's leaf TLS certificate privaudit keeps as evidence."""

    subject_cn: str | None = None
    subject_o: str | None = None
    subject_c: str | None = None
    issuer_cn: str | None = None
    issuer_o: str | None = None
    sans: tuple[str, ...] = ()
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One DNS answer seen in a captured DNS flow (for CNAME evidence)."""

    name: str
    type: str
    value: str


@dataclass(frozen=True, slots=True)
class Exchange:
    """One captured flow, normalised from a mitmproxy flow file or a HAR entry.

    Non-HTTP flows (TCP, UDP, DNS) are exchanges too, with ``kind`` saying so,
    so they are counted and reported, never dropped.
    """

    index: int
    """0-based position of the flow across all inputs, in input order."""
    kind: FlowKind
    host: str
    """The host the app asked for: Host header / :authority / SNI, else the
    address. Lower-cased, without port. Attacker-controlled: escape on output."""
    port: int | None = None
    scheme: str = ""
    """"http", "https", "ws", "wss", or "" for non-HTTP flows."""
    method: str = ""
    url: str = ""
    request: Message | None = None
    response: Message | None = None
    websocket: tuple[WsMessage, ...] = ()
    server_ip: str | None = None
    """The address the app (through the proxy) actually talked to: mitmproxy's
    server peername, HAR ``serverIPAddress``. ``None`` if the capture lacks it."""
    tls: bool = False
    """Whether the connection to the server was encrypted."""
    tls_version: str | None = None
    sni: str | None = None
    cert: CertInfo | None = None
    timestamp_start: float | None = None
    error: str | None = None
    """The flow's error message (connection killed, TLS failure, ...)."""
    dns: tuple[DnsRecord, ...] = ()
    """DNS answers, for DNS flows."""
    source: str = ""
    """Path of the input file the flow came from."""
    http_version: str = ""
    streamed: bool = False
    """True if a body was streamed through the proxy without being kept."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data found in one flow at one location."""

    flow_index: int
    host: str
    side: Literal["request", "response"]
    category: str
    rule: str
    method: str
    """How it was found: "pattern", "key", "canary"."""
    encoding: str | None
    """The decoding chain that revealed the value, e.g. "base64+json", or None."""
    location: str
    """Where in the flow, e.g. "request.body $.header.openudid"."""
    severity: str
    evidence: str
    """A redacted excerpt; never the full raw value unless asked."""

    def to_json(self) -> dict:
        return {
            "flow_index": self.flow_index,
            "host": self.host,
            "side": self.side,
            "category": self.category,
            "rule": self.rule,
            "method": self.method,
            "encoding": self.encoding,
            "location": self.location,
            "severity": self.severity,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence about where an endpoint's data goes."""

    kind: str
    """"geoip", "rir", "asn", "entity", "tls", "cname", "tld", "demo"."""
    detail: str
    country: str | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "detail": self.detail, "country": self.country}


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    country: str | None
    parent: str | None = None
    parent_country: str | None = None
    source: str | None = None
    """A public source that names the domain's owner."""


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """What the jurisdiction stage says about one host."""

    host: str
    ips: tuple[str, ...]
    hosting_country: str | None
    asn: int | None = None
    as_org: str | None = None
    operator: Operator | None = None
    jurisdictions: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    confidence: str = "low"
    """"high", "medium" or "low"."""
    confidence_reasons: tuple[str, ...] = ()
