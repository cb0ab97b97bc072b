"""DNS evidence, looked up only when the user asks for it (``--resolve``).

The capture is the primary record: the addresses the app talked to and the
CNAME answers its own DNS flows carried. Resolving names again at audit time
adds what the capture may lack (the CNAME chain behind a host, which often
names the CDN or cloud that really serves it), but it is a second look taken
later, possibly from another network, so:

- nothing is resolved unless the caller asks, and then only through the DNS
  server the caller names (``dns.resolver.Resolver(configure=False)`` with
  explicit nameservers); the system resolver is used only when the caller
  passes ``nameserver="system"``;
- every piece of evidence built from an answer says it was resolved at audit
  time and through which server (see :meth:`Locator.describe`'s ``resolved``);
- resolved addresses never join an endpoint's ``ips`` (the contract keeps those
  for addresses from the capture).

A DNS server that does not answer at all is a :class:`ConfigError` (the user
named a wrong server), unless ``best_effort=True``, where it becomes one
warning and the audit goes on without DNS evidence. A server that answers but
refuses or fails one name (REFUSED, SERVFAIL, NXDOMAIN) is recorded on that
name's :class:`DnsAnswer` and never stops the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# dnspython is imported where it is used: most audits never resolve anything,
# and importing it costs a noticeable share of start-up.

from privaudit.errors import ConfigError
from privaudit.jurisdiction.addresses import parse_ip

#: The value of ``nameserver`` that selects the system's configured resolver.
SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """What one DNS server said about one host name at audit time."""

    host: str
    """The name asked about, lower-case, without the trailing dot."""
    cnames: tuple[str, ...] = ()
    """The CNAME chain in order: the host's alias target, that name's target, ...
    (lower-case, no trailing dot). Empty when the host is not an alias."""
    addresses: tuple[str, ...] = ()
    """A then AAAA answers for the end of the chain, in answer order."""
    server: str = ""
    """The DNS server that answered, e.g. "127.0.0.1:53" or "system"."""
    error: str | None = None
    """Why there is no (full) answer: "NXDOMAIN", "REFUSED", "no answer", a
    timeout...; None when the server answered normally."""

    def to_json(self) -> dict:
        return {
            "host": self.host,
            "cnames": list(self.cnames),
            "addresses": list(self.addresses),
            "server": self.server,
            "error": self.error,
        }


def parse_nameserver(spec: str, default_port: int = 53) -> tuple[str, int]:
    """``--nameserver`` text to (address, port): "127.0.0.1", "127.0.0.1:5353",
    "::1", "[::1]:5353", or "system"; a port in the text wins over
    ``default_port``. A host name is refused: resolving the resolver's own
    name would need a resolver."""
    text = spec.strip()
    if text.lower() == SYSTEM:
        return SYSTEM, default_port
    host, port = text, default_port
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"--nameserver {spec!r}: expected [IPv6]:port, e.g. [::1]:5353")
        port_text = rest[1:]
        if rest and not port_text.isdigit():
            raise ConfigError(f"--nameserver {spec!r}: the port must be a number")
        port = int(port_text) if port_text else default_port
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        if not port_text.isdigit():
            raise ConfigError(f"--nameserver {spec!r}: the port must be a number")
        port = int(port_text)
    if parse_ip(host) is None or "%" in host:
        raise ConfigError(
            f"--nameserver {spec!r}: give the DNS server's IP address (e.g. 127.0.0.1 or 127.0.0.1:5353), "
            f"or {SYSTEM!r} for this machine's resolver"
        )
    if not 0 < port < 65536:
        raise ConfigError(f"--nameserver {spec!r}: port {port} is out of range")
    return host, port


def cname_chain(host: str, cnames: Mapping[str, Sequence[str]], limit: int = 16) -> list[str]:
    """Follows ``name -> [targets]`` from ``host``: the first target not yet
    seen at each step, at most ``limit`` steps (answers can loop). Names are
    compared lower-case without the trailing dot."""

    def norm(name: str) -> str:
        return name.strip().rstrip(".").lower()

    table: dict[str, list[str]] = {}
    for name, targets in cnames.items():
        table.setdefault(norm(name), []).extend(norm(t) for t in targets)
    chain: list[str] = []
    current = norm(host)
    seen = {current}
    for _ in range(limit):
        nxt = next((t for t in table.get(current, ()) if t not in seen), None)
        if nxt is None:
            break
        seen.add(nxt)
        chain.append(nxt)
        current = nxt
    return chain


def _resolver(nameserver: str, port: int, timeout: float) -> tuple[dns.resolver.Resolver, str]:
    import dns.exception, dns.name, dns.rdatatype, dns.resolver  # noqa: E401 (lazy, see top)
    address, port = parse_nameserver(nameserver, port)
    if address == SYSTEM:
        try:
            resolver = dns.resolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration as exc:
            raise ConfigError(f"--nameserver system: this machine has no DNS resolver configured ({exc})") from exc
        label = SYSTEM
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [address]
        resolver.port = port
        label = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.cache = None
    return resolver, label


class _Unreachable(Exception):
    """The DNS server gave no answer at all."""


def _query(resolver: dns.resolver.Resolver, name: dns.name.Name, rdtype: str) -> tuple[dns.resolver.Answer | None, str | None]:
    """One query: (answer, None), or (None, why) for a name the server would
    not answer; raises _Unreachable when the server did not answer at all."""
    import dns.exception, dns.name, dns.rdatatype, dns.resolver  # noqa: E401 (lazy, see top)
    try:
        return resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False), None
    except dns.resolver.NXDOMAIN:
        return None, "NXDOMAIN (the name does not exist)"
    except dns.resolver.YXDOMAIN:
        return None, "YXDOMAIN"
    except dns.resolver.NoNameservers as exc:
        errors = exc.kwargs.get("errors") or []
        answered = [str(err[3]) for err in errors if len(err) > 4 and err[4] is not None]
        if answered:
            return None, f"the server answered {', '.join(dict.fromkeys(answered))}"
        raise _Unreachable("; ".join(str(err[3]) for err in errors) or str(exc)) from exc
    except dns.exception.Timeout as exc:
        raise _Unreachable(f"no answer within {resolver.lifetime:g} s") from exc


def _chain_and_addresses(host: str, answers: Iterable[dns.resolver.Answer]) -> tuple[list[str], list[str]]:
    import dns.exception, dns.name, dns.rdatatype, dns.resolver  # noqa: E401 (lazy, see top)
    links: dict[str, list[str]] = {}
    addresses: list[str] = []
    for answer in answers:
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.CNAME:
                for rr in rrset:
                    links.setdefault(rrset.name.to_text(), []).append(rr.target.to_text())
            elif rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and rrset.name == answer.canonical_name:
                addresses.extend(rr.address for rr in rrset if rr.address not in addresses)
    return cname_chain(host, links), addresses


def resolve_hosts(
    hosts: Iterable[str],
    nameserver: str,
    port: int = 53,
    timeout: float = 2.0,
    *,
    best_effort: bool = False,
    warnings: list[str] | None = None,
) -> dict[str, DnsAnswer]:
    """Asks ``nameserver`` (an IP address, optionally with ":port" as
    :func:`parse_nameserver` reads it, or ``"system"``) for the A and AAAA
    records of each host and returns, per host, the CNAME chain and addresses.

    IP literals are skipped (they are not names). ``timeout`` bounds each
    query. If the server does not answer at all: :class:`ConfigError`, or with
    ``best_effort=True`` one message appended to ``warnings`` and every host
    left unresolved (``error`` says why), without waiting on the server again.
    """
    import dns.exception, dns.name, dns.rdatatype, dns.resolver  # noqa: E401 (lazy, see top)
    resolver, label = _resolver(nameserver, port, timeout)
    out: dict[str, DnsAnswer] = {}
    unreachable: str | None = None
    for raw in hosts:
        host = raw.strip().strip("[]").rstrip(".").lower()
        if not host or host in out or parse_ip(host) is not None:
            continue
        if unreachable is not None:
            out[host] = DnsAnswer(host, server=label, error=unreachable)
            continue
        try:
            qname = dns.name.from_text(host)
        except dns.exception.DNSException as exc:
            out[host] = DnsAnswer(host, server=label, error=f"not a DNS name: {exc}")
            continue
        answers: list[dns.resolver.Answer] = []
        errors: list[str] = []
        try:
            for rdtype in ("A", "AAAA"):
                answer, why = _query(resolver, qname, rdtype)
                if answer is not None:
                    answers.append(answer)
                elif why is not None and why not in errors:
                    errors.append(why)
        except _Unreachable as exc:
            message = f"DNS server {label} did not answer ({exc}) while resolving {host}"
            if not best_effort:
                raise ConfigError(f"{message}; check --nameserver, or drop --resolve") from None
            unreachable = f"not resolved: DNS server {label} did not answer"
            if warnings is not None:
                warnings.append(f"{message}; continuing without DNS evidence (best effort)")
            out[host] = DnsAnswer(host, server=label, error=unreachable)
            continue
        chain, addresses = _chain_and_addresses(host, answers)
        # One type answered is a full answer: servers often refuse or fail
        # AAAA for a name that only has A records.
        error = None if addresses or chain else ("; ".join(errors) or "no A/AAAA records")
        out[host] = DnsAnswer(host, tuple(chain), tuple(addresses), label, error)
    return out
