"""What an IP address says by itself: whether it can have a country at all,
and the registry (RIR) country from the embedded ``iptocc`` database.

``iptocc`` ships the five regional internet registries' delegation files
inside its wheel, so a look-up is offline. The country it gives is where the
address block is *registered*, which for cloud providers and CDNs can differ
from where the server stands; the locator says so in its reasons.
"""

from __future__ import annotations

import ipaddress

import iptocc

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DOCUMENTATION = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_BENCHMARK = ipaddress.ip_network("198.18.0.0/15")


def parse_ip(text: str) -> IPAddress | None:
    """An address from capture text: strips [brackets], ``%zone`` and unwraps
    IPv4-mapped IPv6 (``::ffff:1.2.3.4``, as dual-stack proxies report peers)."""
    text = text.strip().strip("[]").split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def non_public_reason(addr: IPAddress) -> str | None:
    """Why ``addr`` cannot belong to any country, or None for a public address."""
    if addr.is_loopback:
        return "loopback address (this machine)"
    if addr.is_unspecified:
        return "unspecified address"
    if addr.is_link_local:
        return "link-local address"
    if addr.is_multicast:
        return "multicast address"
    if any(addr in net for net in _DOCUMENTATION if net.version == addr.version):
        return "documentation address (RFC 5737 / RFC 3849), not routed on the internet"
    if addr.version == 4 and addr in _SHARED:
        return "carrier-grade NAT shared address (RFC 6598)"
    if addr.version == 4 and addr in _BENCHMARK:
        return "benchmarking address (RFC 2544)"
    if addr.is_reserved:
        return "reserved address"
    if addr.is_private:
        return "private-use address (RFC 1918 / RFC 4193)"
    if not addr.is_global:
        return "special-purpose address, not globally routable"
    return None


def registry_country(addr: IPAddress) -> str | None:
    """The RIR-registered country of a public address, or None if unlisted."""
    return iptocc.country_code(str(addr))
