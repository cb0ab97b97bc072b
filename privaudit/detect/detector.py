"""The detector: one exchange in, findings out. Pure, no I/O.

What is scanned
    The request side: URL path and query, headers, cookies, body (every layer
    :mod:`~privaudit.detect.decode` can peel), and WebSocket messages the
    client sent. That is what the app disclosed. Responses are the server's
    own data (a profile page showing your phone number is not a leak by the
    app) and are not scanned by the other rules. Two exceptions, reported
    with ``side: "response"``:

    * credentials (``response_credentials=True``, the default): the rules of
      the ``credentials`` category also read the response's Set-Cookie and
      body, because a session or access token issued to the user is what lets
      anyone who reads that response act as the user. A cheap byte pre-check
      (token/session/secret/auth/password/ticket) keeps other responses from
      being decoded at all.
    * canaries (``scan_responses=True``): responses and server WebSocket
      messages are searched for canaries (evidence that the server holds the
      tester's identity); the audit stage decides whether to use it.

Severity (one scheme, documented here)
    1. Base: the rule's own ``severity``; the shipped rules follow
       :data:`BASE_SEVERITY` by category (a rule may deviate and say why in its
       rationale). A canary finding starts from :data:`BASE_SEVERITY`.
    2. +1 step if the flow was cleartext (not TLS): anyone on the path read it.
    3. +1 step for a canary finding: confirmed to be the tester's real data,
       not a look-alike.
    Capped at "critical".

Dedupe (CONTRACT.md)
    One finding per flow, per side, per category, per location. If several
    rules of one category hit one location, the canary wins, then the highest
    severity, then the lowest rule id. A hit on an encoded string that also
    hits (same category) in a field decoded from it is reported once, at the
    innermost location. A raw-body canary hit is reported at
    the body's location only if no decoded field under that body already
    produced a canary hit of that category.

Evidence
    Redacted by default (:func:`redact`): the first and last few characters
    with "…" between, fewer for short values, never the whole value; with
    ``show_values=True`` the matched value itself (cut at 200 characters).
"""

from __future__ import annotations

import re
from bisect import bisect_right

from privaudit import rxcache
from privaudit.model import SEVERITIES, Exchange, Finding, Message

from .canaries import Canaries, CanaryHit
from .decode import MEMO_LIMIT, Bounds, Decoder, Field
from .rules import RuleSet

__all__ = ["Detector", "BASE_SEVERITY", "redact"]

#: Base severity per category (for canary findings, and the shipped rules' default).
BASE_SEVERITY: dict[str, str] = {
    "email": "medium",
    "phone": "high",
    "name": "medium",
    "national_id": "critical",
    "payment_card": "critical",
    "credentials": "high",
    "location": "high",
    "advertising_id": "medium",
    "device_id": "medium",
    "device_info": "low",
    "network_info": "low",
    "installed_apps": "medium",
    "contacts": "high",
    "chat_content": "high",
    "behavioral": "medium",
}

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def raise_severity(sev: str, steps: int) -> str:
    return SEVERITIES[min(len(SEVERITIES) - 1, _RANK[sev] + steps)]


def redact(value: str) -> str:
    """A recognisable but incomplete excerpt: never the whole value.

    >=16 chars: 4 + 4; 9..15: 2 + 2; 5..8: 1 + 1; shorter: only "…".
    """
    v = value.strip().replace("\n", " ")
    n = len(v)
    if n >= 16:
        k = 4
    elif n >= 9:
        k = 2
    elif n >= 5:
        k = 1
    else:
        return "…"
    return f"{v[:k]}…{v[-k:]}"


# A candidate finding is a plain tuple (C-level comparisons, no object per
# hit): (score, side, category, location, rule, method, encoding, severity,
# value). ``score`` orders candidates for one location: the canary wins, then
# the highest severity, then the lowest rule id.
_SCORE, _SIDE, _CAT, _LOC, _RULE, _METHOD, _ENC, _SEV, _VALUE = range(9)


def _neg(s: str) -> tuple[int, ...]:
    # lower rule id wins ties: compare negated code points; the end marker
    # makes a prefix ("device.imei") lower than its extensions
    return tuple(-ord(c) for c in s) + (1,)


_NUMBER_START = frozenset("-0123456789")
# Values no pattern rule is about: decimal numbers (coordinates, prices,
# ratios) and hex ids/digests/UUIDs with at least one letter. Phone, card and
# national-id numbers are never written as either; skipping them saves most
# regex work on analytics traffic, which is full of both.
_NO_PATTERN = rxcache.compile(r"(?:-?\d{1,6}\.\d+|(?=[0-9a-fA-F-]*[a-fA-F])[0-9a-fA-F-]{16,})\Z")
_CREDENTIAL_WORDS = (b"token", b"session", b"secret", b"passw", b"auth", b"ticket", b"sid")
_RESPONSE_BYTES = 256 * 1024


def _worth_decoding(resp: Message | None) -> bool:
    """Whether a response may carry a credential: a Set-Cookie header, or a
    small body mentioning one."""
    if resp is None:
        return False
    for k, _ in resp.headers:
        if len(k) == 10 and k.lower() == "set-cookie":
            return True
    body = resp.body
    if not 0 < len(body) <= _RESPONSE_BYTES:
        return False
    # bytes.lower() + ``in`` is the same test as the case-insensitive regex
    # (ASCII case folding for bytes), and several times faster
    for w in _CREDENTIAL_WORDS:
        if w in body:
            return True
    low = body.lower()
    for w in _CREDENTIAL_WORDS:
        if w in low:
            return True
    return False


_DELETE_DIGITS = str.maketrans("", "", "0123456789")


_NOTHING = ((), (), (), 0)


def _drop_outer(best: dict[tuple[str, str, str], tuple]) -> None:
    """Delete every (side, category, location) whose location is a layer
    prefix ("request.body $.data") of another one of the same side and
    category ("request.body $.data $.phone")."""
    inner = [k for k in best if " " in k[2]]
    if not inner:
        return
    outer = set()
    for side, cat, loc in inner:
        i = loc.find(" ")
        while i != -1:
            k = (side, cat, loc[:i])
            if k in best:
                outer.add(k)
            i = loc.find(" ", i + 1)
    for k in outer:
        del best[k]


def _finding_order(f: Finding) -> tuple:
    return (f.side != "request", f.location, f.category)


class Detector:
    """Runs a :class:`RuleSet` (and optional :class:`Canaries`) over exchanges.

    Build once, call :meth:`scan` per exchange. ``stats`` accumulates:
    ``exchanges``, ``fields``, ``findings``, ``undecodable_bodies`` and
    ``bounds_hit`` (a Counter: ``depth``, ``nesting``, ``fields``,
    ``body_bytes``, ``inflate_bytes``, ``strings``).

    Speed: values are decoded once and shared by every rule and the canary
    automaton. Per scalar field, one dict lookup on (key, value) gives what
    the rules make of it (memoised per detector): the hits of rules whose
    verdict depends on key and value alone, ready to offer, and the few
    rules that must also look at the field's context (endpoint, path,
    siblings, a context word), which are run every time. A miss runs the
    key rules of that key (found by key name, memoised per key) and the
    pattern rules whose cheap pre-checks the value passes (trigger
    substrings, digit count, "a decimal number or a hex id" skip). Rules
    memoise their own value-only verdicts (value regex + validator, record
    shapes, sibling sets). Canaries are one Aho-Corasick pass over all
    values of the exchange plus one per raw text. See
    tests/test_detect_speed.py for the equivalence checks.
    """

    def __init__(
        self,
        rules: RuleSet,
        canaries: Canaries | None = None,
        show_values: bool = False,
        *,
        scan_responses: bool = False,
        response_credentials: bool = True,
        bounds: Bounds | None = None,
    ) -> None:
        self.rules = rules
        self.canaries = canaries if canaries is not None and len(canaries) else None
        self.response_credentials = response_credentials and any(r.category == "credentials" for r in rules)
        self.show_values = show_values
        self.scan_responses = scan_responses and self.canaries is not None
        self.stats: dict = {"exchanges": 0, "fields": 0, "findings": 0}
        self._decoder = Decoder(bounds, self.stats)
        # Pattern-rule gating: each field's value is looked at once (which
        # trigger substrings it holds, how many digits), and only the rules
        # whose "requires" it meets run their regex.
        self._always: tuple = tuple(r for r in rules.pattern_rules if not r.req_substr and not r.req_min_digits)
        by_substr: dict[str, list] = {}
        for r in rules.pattern_rules:
            for s in r.req_substr:
                by_substr.setdefault(s, []).append(r)
        self._by_substr = tuple((s, tuple(rs)) for s, rs in by_substr.items())
        self._by_digits = tuple(
            sorted((r for r in rules.pattern_rules if r.req_min_digits and not r.req_substr), key=lambda r: r.req_min_digits)
        )
        self._min_digits = self._by_digits[0].req_min_digits if self._by_digits else 0
        self._min_len = min((r.req_min_length for r in rules.pattern_rules), default=0)
        self._cand_cache: dict[tuple, tuple] = {}
        self._pattern_memo: dict[str, tuple] = {}
        self._key_plans: dict[str, tuple[tuple, tuple]] = {}
        self._value_memo: dict[tuple[str, str], tuple] = {}
        self._value_memo_old: dict[tuple[str, str], tuple] = {}
        self._has_patterns = bool(rules.pattern_rules)
        self._scores: dict[tuple, tuple] = {}
        self._rule_hits: dict[tuple, tuple] = {}
        self._need_digits = any(r.req_min_digits for r in rules.pattern_rules)
        self._triggers = rxcache.compile("|".join(re.escape(s) for s, _ in self._by_substr)) if self._by_substr else None

    def drop_memos(self) -> None:
        """Empties the memos (they refill as exchanges come; results do not
        change). An audit calls this when the flows are done: the memory then
        holds the endpoints' entries instead, so the peak does not grow with
        the number of endpoints on top of full memos."""
        self._value_memo.clear()
        self._value_memo_old = {}
        self._pattern_memo.clear()
        self._key_plans.clear()
        self._decoder.drop_memos()
        for r in self.rules:
            r.drop_memos()

    def _pattern_candidates(self, v: str) -> tuple[tuple, int]:
        """The pattern rules whose pre-checks ``v`` passes, and its digit count.

        Memoised on the value's signature (which trigger substrings it holds,
        how many digits it has, capped), so the per-field cost is a handful
        of C-level ``in`` tests and one ``str.translate``."""
        if _NO_PATTERN.match(v):
            return (), 0
        digits = len(v) - len(v.translate(_DELETE_DIGITS)) if self._need_digits else 0
        trig = self._triggers
        present = () if trig is None or trig.search(v) is None else tuple(s in v for s, _ in self._by_substr)
        sig = (present, min(digits, 32))
        hit = self._cand_cache.get(sig)
        if hit is None:
            cands = list(self._always)
            for there, (_, rs) in zip(present, self._by_substr):
                if there:
                    cands.extend(r for r in rs if r not in cands)
            cands.extend(r for r in self._by_digits if digits >= r.req_min_digits and r not in cands)
            hit = self._cand_cache[sig] = tuple(cands)
        return hit, digits

    def _pattern_pass(self, f: Field, url: str) -> tuple[tuple, tuple, int]:
        """Pattern rules on one value: (hits of rules that depend on the value
        alone, rules whose regex matched but that depend on the field's
        context, digit count). The first part is memoised per value by
        :meth:`scan`: user agents, versions and flags repeat in every flow."""
        v = f.value
        rules_here, digits = self._pattern_candidates(v)
        free_hits = []
        dependent = []
        for r in rules_here:
            # the bare regex first: most values fail it, and then the
            # validator/context machinery is never entered
            if r.pattern.search(v) is None:
                continue
            if r.context_free:
                cand = r.match(f, url, digits)
                if cand is not None:
                    free_hits.append((r, cand))
            else:
                dependent.append(r)
        return tuple(free_hits), tuple(dependent), digits

    # ------------------------------------------------------------------ scan

    def _score(self, rule_id: str, severity: str, canary: bool) -> tuple:
        k = (rule_id, severity, canary)
        sc = self._scores.get(k)
        if sc is None:
            sc = self._scores[k] = (canary, _RANK[severity], _neg(rule_id))
        return sc

    def _rule_hit(self, r, bump: int, method: str) -> tuple:
        """(score, category, rule id, method, severity) of rule ``r``'s hit,
        memoised per rule, cleartext bump and method."""
        k = (r.id, bump, method)
        h = self._rule_hits.get(k)
        if h is None:
            sev = raise_severity(r.severity, bump)
            h = self._rule_hits[k] = (self._score(r.id, sev, False), r.category, r.id, method, sev)
        return h

    def _key_plan(self, nkey: str) -> tuple[tuple, tuple]:
        """The key rules for a scalar under ``nkey``: (those whose verdict
        depends on the value alone, the others). Memoised per key."""
        krs = self.rules.key_rules_for(nkey, False)
        plan = (tuple(r for r in krs if r.context_free), tuple(r for r in krs if not r.context_free))
        if len(self._key_plans) > 100_000:
            self._key_plans.clear()
        self._key_plans[nkey] = plan
        return plan

    def _value_plan(self, f: Field, url: str) -> tuple:
        """What the rules make of a scalar field's key and value: (hits of the
        rules whose verdict depends on key and value alone as (per-bump
        :meth:`_rule_hit` pair, candidate), key rules and pattern rules that
        also need the field's context, digit count). :meth:`scan` memoises
        it per (key, value): device ids, user agents, versions and flags
        repeat in every flow."""
        free_hits: list = []
        dep_keys: tuple = ()
        nkey = f.nkey
        if nkey:
            plan = self._key_plans.get(nkey)
            if plan is None:
                plan = self._key_plan(nkey)
            free, dep_keys = plan
            for r in free:
                # context-free: Rule.match's context pre-checks are all unset
                cand = r._match_key(f)
                if cand is not None:
                    free_hits.append((r, "key", cand))
        v = f.value
        dep_patterns: tuple = ()
        digits = 0
        if self._has_patterns and len(v) >= self._min_len:
            pm = self._pattern_memo.get(v)
            if pm is None:
                pm = self._pattern_pass(f, url)
                if len(v) <= 256:
                    if len(self._pattern_memo) >= MEMO_LIMIT:
                        self._pattern_memo.clear()
                    self._pattern_memo[v] = pm
            pfree, dep_patterns, digits = pm
            free_hits.extend((r, "pattern", cand) for r, cand in pfree)
        if not free_hits and not dep_keys and not dep_patterns:
            return _NOTHING
        # each hit with its (score, category, rule id, method, severity) for
        # a TLS flow and for a cleartext one
        hits = tuple(((self._rule_hit(r, 0, m), self._rule_hit(r, 1, m)), cand) for r, m, cand in free_hits)
        return hits, dep_keys, dep_patterns, digits

    def scan(self, ex: Exchange) -> list[Finding]:
        """The findings of one exchange, in a stable order."""
        self.stats["exchanges"] += 1
        if ex.kind != "http" and not ex.websocket:
            return []
        fields, raws = self._decoder.exchange(ex, responses=self.scan_responses)
        canary_fields = fields
        if self.response_credentials and not self.scan_responses and _worth_decoding(ex.response):
            fields = fields + self._decoder.response(ex)
        self.stats["fields"] += len(fields)
        cleartext = not (ex.tls or ex.scheme in ("https", "wss"))
        bump = 1 if cleartext else 0
        url = ex.url
        # (side, category, location) -> candidate tuple (see _SCORE...)
        best: dict[tuple[str, str, str], tuple] = {}
        rule_hit = self._rule_hit

        def offer(side: str, loc: str, enc, r, method: str, value: str) -> None:
            score, cat, rid, method, sev = rule_hit(r, bump, method)
            k = (side, cat, loc)
            cur = best.get(k)
            # strict: the first of two equal candidates stays
            if cur is None or score > cur[0]:
                best[k] = (score, side, cat, loc, rid, method, enc, sev, value)

        key_rules_for = self.rules.key_rules_for
        memo = self._value_memo
        value_plan = self._value_plan
        for f in fields:
            side = f.side
            if side != "request":
                self._response_field(f, url, offer)
                continue
            if f.items is not None:
                for r in key_rules_for(f.nkey, True):
                    cand = r.match(f, url)
                    if cand is not None:
                        offer(side, f.location, f.encoding, r, "key", cand)
                continue
            v = f.value
            mk = (f.nkey, v)
            plan = memo.get(mk)
            if plan is None:
                # two generations: a full memo becomes the old one, whose
                # entries move back when asked for, so the hot ones (user
                # agents, versions, flags) survive the turnover
                plan = self._value_memo_old.get(mk)
                if plan is None:
                    plan = value_plan(f, url)
                if len(v) <= 256:
                    if len(memo) >= MEMO_LIMIT:
                        self._value_memo_old = memo
                        memo = self._value_memo = {}
                    memo[mk] = plan
            if plan is _NOTHING:
                continue
            free_hits, dep_keys, dep_patterns, digits = plan
            loc = f.location
            for hits, cand in free_hits:
                # offer(), inlined: most hits are memoised ones
                score, cat, rid, method, sev = hits[bump]
                k = (side, cat, loc)
                cur = best.get(k)
                if cur is None or score > cur[0]:
                    best[k] = (score, side, cat, loc, rid, method, f.encoding, sev, cand)
            for r in dep_keys:
                cand = r.match(f, url)
                if cand is not None:
                    offer(side, f.location, f.encoding, r, "key", cand)
            for r in dep_patterns:
                cand = r.match(f, url, digits)
                if cand is not None:
                    offer(side, f.location, f.encoding, r, "pattern", cand)
        if self.canaries is not None:
            self._canaries(canary_fields, raws, bump, best)
        # A hit on an encoded string and on a field decoded from it is one
        # occurrence: keep the innermost ("request.body $.data $.phone" over
        # "request.body $.data").
        if len(best) > 1:
            _drop_outer(best)
        index, host, evidence = ex.index, ex.host, self._evidence
        out = [
            Finding(index, host, c[_SIDE], c[_CAT], c[_RULE], c[_METHOD], c[_ENC], c[_LOC], c[_SEV], evidence(c[_VALUE]))
            for c in best.values()
        ]
        out.sort(key=_finding_order)
        self.stats["findings"] += len(out)
        return out

    def _response_field(self, f: Field, url: str, offer) -> None:
        """Credentials rules only, on a response field."""
        is_list = f.items is not None
        rules = self.rules.key_rules_for(f.nkey, is_list) if (f.nkey or is_list) else ()
        for r in rules:
            if r.category == "credentials":
                cand = r.match(f, url)
                if cand is not None:
                    offer(f.side, f.location, f.encoding, r, "key", cand)
        if not is_list and "eyJ" in f.value:
            for r in self.rules.pattern_rules:
                if r.category == "credentials":
                    cand = r.match(f, url)
                    if cand is not None:
                        offer(f.side, f.location, f.encoding, r, "pattern", cand)

    # -------------------------------------------------------------- canaries

    def _canaries(self, fields: list[Field], raws, bump: int, best: dict) -> None:
        can = self.canaries
        found_under: set[tuple[str, str, str]] = set()  # (side, category, location)
        score = self._score

        def offer(side, category, location, enc_chain, hit_enc, text) -> None:
            enc = "+".join(e for e in (enc_chain, hit_enc) if e) or None
            sev = raise_severity(BASE_SEVERITY.get(category, "medium"), 1 + bump)
            rid = f"canary.{category}"
            sc = score(rid, sev, True)
            k = (side, category, location)
            cur = best.get(k)
            if cur is None or sc > cur[0]:
                best[k] = (sc, side, category, location, rid, "canary", enc, sev, text)

        # One automaton pass over all field values joined by NUL (never part of
        # a variant, and not a letter or digit, so boundaries still hold);
        # each hit is mapped back to its field by offset.
        values = [f.value if f.items is None else "" for f in fields]
        joined = "\x00".join(values)
        starts: list[int] = []
        per_field: dict[tuple[int, str], CanaryHit] = {}
        for h in can.find(joined):
            if not starts:
                pos = 0
                for v in values:
                    starts.append(pos)
                    pos += len(v) + 1
            i = bisect_right(starts, h.start) - 1
            k = (i, h.canary.category)
            cur = per_field.get(k)
            if cur is None or h.rank < cur.rank:
                per_field[k] = h
        for (i, cat), h in sorted(per_field.items(), key=lambda kv: kv[0]):
            f = fields[i]
            found_under.add((f.side, cat, f.location))
            offer(f.side, cat, f.location, f.encoding, h.encoding, h.text)
        coord_hits: dict[int, dict[str, list[tuple[Field, str]]]] = {}
        if can.coords:
            for i, v in enumerate(values):
                # (a list's value reads "" here: never a number)
                if v[:1] in _NUMBER_START and "." in v:  # coord_parts needs a decimal point
                    for c, part in can.coord_parts(v):
                        coord_hits.setdefault(id(c), {}).setdefault(part, []).append((fields[i], v))
        for parts in coord_hits.values():
            if "lat" in parts and "lon" in parts:
                f, lat = parts["lat"][0]
                lon = parts["lon"][0][1]
                found_under.add((f.side, "location", f.location))
                offer(f.side, "location", f.location, f.encoding, None, f"{lat},{lon}")
        for raw in raws:
            hits = can.find(raw.text)
            if not hits:
                continue
            seen_here = set()
            for h in sorted(hits, key=lambda h: h.rank):
                cat = h.canary.category
                if cat in seen_here:
                    continue
                seen_here.add(cat)
                prefixes = raw.covers or (raw.location,)
                if any(
                    s == raw.side and c == cat and any(loc == p or loc.startswith(p + " ") for p in prefixes)
                    for s, c, loc in found_under
                ):
                    continue
                offer(raw.side, cat, raw.location, None, h.encoding, h.text)

    # -------------------------------------------------------------- evidence

    def _evidence(self, value: str) -> str:
        if self.show_values:
            return value if len(value) <= 200 else value[:200] + "…"
        if value[:1] in ("[", "{"):
            n = value.count(",") + 1
            return f"[{n} items] " + redact(value[1:])
        return redact(value)
