"""First and third parties: which endpoints belong to the app's own company.

Works on the findings document's ``endpoints`` list (plain dicts), so it can
run on a fresh audit or on a saved document. Each endpoint gets

``party``        "first" or "third"
``party_reason`` one sentence a reader can check
``party_rule``   which rule decided (stable keys, for reports and tests):

=========================  ===================================================
``own-domain``             its registrable domain is one the user named
``own-operator``           its operator runs one of the user's own domains
``inferred-most-contacted`` (no own domains given) its registrable domain is the
                           one the app contacted most, by ``flow_count``
``inferred-login``         (no own domains given) its registrable domain is a
                           login endpoint's
``inferred-operator``      (no own domains given) its operator runs the
                           most-contacted or login registrable domain
``third-party``            none of the above
=========================  ===================================================

Domains are compared as registrable domains (``chat.example.com`` and
``api.example.com`` are both ``example.com``; under a suffix the Public Suffix
List does not know, such as ``.test``, the last two labels), operators by name, ignoring case
and punctuation. A company in the same group (same parent) as the first party
is still a separate legal person, so a third party; its reason says it is an
affiliate.
"""

from __future__ import annotations

from collections.abc import Sequence

from privaudit.jurisdiction.addresses import parse_ip
from privaudit.jurisdiction.asn import norm_name
from privaudit.jurisdiction.operators import OperatorMap, registrable_domain


def _reg(host: str) -> str:
    """The registrable domain; for names under suffixes the Public Suffix List
    does not know (``.example``, ``.test``, ``.internal``) the last two labels;
    an IP literal or a single label stands for itself."""
    host = host.strip().strip("[]").rstrip(".").lower()
    reg = registrable_domain(host)
    if reg:
        return reg
    if parse_ip(host) is not None or "." not in host:
        return host
    return ".".join(host.split(".")[-2:])


def _op(ep: dict) -> tuple[str | None, str | None]:
    op = ep.get("operator") or {}
    return op.get("name"), op.get("parent")


def _most_contacted(endpoints: list[dict]) -> tuple[str, int] | None:
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for ep in endpoints:
        reg = _reg(ep["host"])
        counts[reg] = counts.get(reg, 0) + int(ep.get("flow_count") or 0)
        seen = ep.get("first_seen") or "\uffff"
        first[reg] = min(first.get(reg, seen), seen)
    if not counts:
        return None
    best = min(counts, key=lambda r: (-counts[r], first[r], r))
    return best, counts[best]


def classify_parties(
    endpoints: list[dict],
    own_domains: Sequence[str] = (),
    login_hosts: Sequence[str] = (),
    *,
    operators: OperatorMap | None = None,
) -> list[dict]:
    """Copies of ``endpoints`` with ``party``, ``party_reason`` and
    ``party_rule`` added (see the module docstring); the input is not changed.

    ``own_domains`` (the user's ``--own-domain``) win when given; otherwise the
    first party is inferred from the most-contacted registrable domain and the
    ``login_hosts`` (hosts the app logged in at), and every reason says it was
    inferred. ``operators`` is used to find the operator of an own domain no
    endpoint shows (default: the shipped operator map, loaded only then).
    """
    out = [dict(ep) for ep in endpoints]
    # registrable domain -> (rule, reason, how an operator's reason names it)
    first_regs: dict[str, tuple[str, str, str]] = {}
    if own_domains:
        for d in own_domains:
            reg = _reg(d)
            first_regs.setdefault(
                reg, ("own-domain", f"registrable domain {reg} is one of your own domains", f"your own domain {reg}")
            )
        op_rule, basis = "own-operator", "your own domains: " + ", ".join(first_regs)
    else:
        top = _most_contacted(out)
        if top is not None:
            reg, n = top
            where = f"most-contacted registrable domain {reg} ({n} flow{'s' if n != 1 else ''})"
            first_regs[reg] = ("inferred-most-contacted", f"inferred: {where}", where)
        for host in login_hosts:
            where = f"login endpoint {host.strip().lower()}"
            first_regs.setdefault(_reg(host), ("inferred-login", f"inferred: {where}", where))
        op_rule = "inferred-operator"
        basis = "inferred first party: " + ", ".join(first_regs) if first_regs else "no first party could be inferred"

    # operator name key -> (name, rule, where); and the first party's parents
    first_ops: dict[str, tuple[str, str, str]] = {}
    first_parents: list[str | None] = []

    def add_operator(name: str | None, parent: str | None, where: str) -> None:
        if name and norm_name(name) not in first_ops:
            first_ops[norm_name(name)] = (name, op_rule, where)
            first_parents.append(parent)

    for ep in out:
        reg = _reg(ep["host"])
        if reg in first_regs:
            add_operator(*_op(ep), first_regs[reg][2])
    missing = [r for r in first_regs if not any(_reg(ep["host"]) == r for ep in out)]
    if own_domains and missing:
        # An own domain the app never contacted still names its operator.
        omap = operators if operators is not None else OperatorMap.default()
        for reg in missing:
            entry = omap.lookup(reg)
            if entry is not None:
                add_operator(entry.operator.name, entry.operator.parent, first_regs[reg][2])

    # The first party's company group: its operators and their parents.
    group = set(first_ops) | {norm_name(p) for p in first_parents if p}
    for ep in out:
        reg = _reg(ep["host"])
        name, parent = _op(ep)
        if reg in first_regs:
            rule, why, _ = first_regs[reg]
            ep.update(party="first", party_rule=rule, party_reason=why)
        elif name and norm_name(name) in first_ops:
            op_name, rule, where = first_ops[norm_name(name)]
            prefix = "inferred: " if rule.startswith("inferred") else ""
            ep.update(
                party="first",
                party_rule=rule,
                party_reason=f"{prefix}operated by {op_name}, which also runs {where}",
            )
        else:
            why = f"third party: not run by the first party ({basis})"
            if name and parent and norm_name(parent) in group:
                why += f"; {name} is an affiliate (same group, parent {parent}) but a separate company"
            ep.update(party="third", party_rule="third-party", party_reason=why)
    return out
