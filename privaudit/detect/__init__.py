"""Detection: find personal data in captured exchanges.

Pipeline API::

    rules = load_rules(extra_dirs=())          # RuleSet, with .digest
    canaries = load_canaries("canaries.yaml")  # optional
    det = Detector(rules, canaries, show_values=False)
    findings = det.scan(exchange)              # list[privaudit.model.Finding]

Rules are YAML data (``rules/detect/<area>/<id>.yaml``, schema in
``rules/schema/rule.schema.json``); see :mod:`.rules`. Decoding of bodies and
values is :mod:`.decode`; canary variants :mod:`.canaries`; severity, dedupe
and redaction :mod:`.detector`; ``privaudit rules list|validate|test`` is
:mod:`.ruletool`.
"""

from __future__ import annotations

from .canaries import Canaries, Canary, canaries_from_mapping, load_canaries
from .decode import Bounds, Decoder, Field, normalize_key
from .detector import BASE_SEVERITY, Detector, redact
from .rules import Rule, RuleSet, load_rules

__all__ = [
    "BASE_SEVERITY",
    "Bounds",
    "Canaries",
    "Canary",
    "Decoder",
    "Detector",
    "Field",
    "Rule",
    "RuleSet",
    "canaries_from_mapping",
    "load_canaries",
    "load_rules",
    "normalize_key",
    "redact",
]
