"""The data-flow picture of the executive summary, laid out in Python.

Three columns: data category → recipient (the operator, or the host when no
operator is known) → country (every jurisdiction of the recipient's hosts).
The template only draws the boxes, curves and labels computed here; numbers
and class names are ours, labels are untrusted text that the template escapes.
SVG text does not wrap, so labels are cut to fit their box.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

#: Nodes per column; the rest are merged into one "N more" node.
MAX_NODES = 12

WIDTH = 960
NODE_W = (230, 290, 210)
COL_X = (8, 335, WIDTH - 8 - 210)
NODE_H = 26
GAP = 10
TOP = 34  # below the column headings
#: Characters that fit a box at the label size (CJK glyphs count double).
LABEL_CHARS = (34, 44, 30)


#: Colours per class, as SVG presentation attributes (fill, stroke, text):
#: inline SVG in WeasyPrint does not take the page's stylesheet.
NODE_COLOURS = {
    "cat": ("#eef2f6", "#5b6570", "#1b1f24"),
    "cat-key": ("#fde68a", "#a16207", "#422006"),
    "rcp-first": ("#e0ecff", "#1d4ed8", "#1e3a8a"),
    "rcp-third": ("#fee2e2", "#b91c1c", "#7f1d1d"),
    "rcp-unknown": ("#f3f4f6", "#6b7280", "#1f2937"),
    "ctry": ("#e6f4ea", "#2f6f4f", "#14532d"),
    "ctry-foreign": ("#ffedd5", "#c2410c", "#7c2d12"),
    "ctry-state": ("#8b0000", "#8b0000", "#ffffff"),
    "more": ("#ffffff", "#9ca3af", "#4b5563"),
}
EDGE_COLOURS = {"edge": ("#9ca3af", "1.2"), "edge-foreign": ("#ea8a4c", "1.6"), "edge-state": ("#b91c1c", "1.8")}


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    css: str  # "cat", "cat-key", "rcp-first", "rcp-third", "rcp-unknown", "ctry", "ctry-foreign", "ctry-state", "more"
    x: int
    y: int
    w: int
    h: int

    @property
    def fill(self) -> str:
        return NODE_COLOURS[self.css][0]

    @property
    def stroke(self) -> str:
        return NODE_COLOURS[self.css][1]

    @property
    def text_fill(self) -> str:
        return NODE_COLOURS[self.css][2]

    @property
    def label_x(self) -> int:
        return self.x + 8

    @property
    def label_y(self) -> int:
        return self.y + self.h // 2 + 5


@dataclass(frozen=True)
class Edge:
    d: str  # SVG path data: numbers only
    css: str  # "edge", "edge-foreign", "edge-state"

    @property
    def stroke(self) -> str:
        return EDGE_COLOURS[self.css][0]

    @property
    def stroke_width(self) -> str:
        return EDGE_COLOURS[self.css][1]


@dataclass(frozen=True)
class FlowMap:
    width: int
    height: int
    headings: list[tuple[int, str]]  # (x, heading)
    nodes: list[Node]
    edges: list[Edge]
    empty: bool


def _columns(ch: str) -> int:
    # Hangul, Han and other wide scripts start at U+1100 (Hangul Jamo); a rough
    # but safe measure for cutting labels, which only errs towards shorter.
    return 2 if ord(ch) >= 0x1100 else 1


def fit(label: str, chars: int) -> str:
    """``label`` cut with an ellipsis to at most ``chars`` display columns."""
    if sum(map(_columns, label)) <= chars:
        return label
    out, width = [], 0
    for ch in label:
        w = _columns(ch)
        if width + w > chars - 1:
            break
        out.append(ch)
        width += w
    return "".join(out) + "…"


def _column(items: list[tuple[str, str, str]], col: int, more_label) -> tuple[list[Node], dict[str, str]]:
    """Nodes for ``items`` (key, label, css) and a map key -> node id (merged
    keys map to the "more" node)."""
    shown = items if len(items) <= MAX_NODES else items[: MAX_NODES - 1]
    rest = items[len(shown):]
    nodes, where = [], {}
    for i, (key, label, css) in enumerate(shown):
        nid = f"c{col}n{i}"
        nodes.append(Node(nid, fit(label, LABEL_CHARS[col]), css, COL_X[col], TOP + i * (NODE_H + GAP),
                          NODE_W[col], NODE_H))
        where[key] = nid
    if rest:
        nid = f"c{col}more"
        nodes.append(Node(nid, fit(more_label(len(rest)), LABEL_CHARS[col]), "more", COL_X[col],
                          TOP + len(shown) * (NODE_H + GAP), NODE_W[col], NODE_H))
        for key, _, _ in rest:
            where[key] = nid
    return nodes, where


def _curve(a: Node, b: Node) -> str:
    x1, y1 = a.x + a.w, a.y + a.h // 2
    x2, y2 = b.x, b.y + b.h // 2
    mid = (x1 + x2) // 2
    return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"


def build_flowmap(
    categories: list[tuple[str, str, str]],
    recipients: list[tuple[str, str, str]],
    countries: list[tuple[str, str, str]],
    cat_to_rcp: Iterable[tuple[str, str]],
    rcp_to_country: Iterable[tuple[str, str]],
    headings: tuple[str, str, str],
    more_label,
) -> FlowMap:
    """Columns are lists of (key, label, css) in display order; links are
    pairs of keys. ``more_label(n)`` names a merged node."""
    columns = [_column(items, i, more_label) for i, items in enumerate((categories, recipients, countries))]
    rows = max(max(len(nodes) for nodes, _ in columns), 1)
    # Shorter columns are centred against the longest one.
    for nodes, _ in columns:
        shift = (rows - len(nodes)) * (NODE_H + GAP) // 2
        nodes[:] = [replace(n, y=n.y + shift) for n in nodes]
    (cat_nodes, cat_at), (rcp_nodes, rcp_at), (ctry_nodes, ctry_at) = columns
    by_id = {n.id: n for n in cat_nodes + rcp_nodes + ctry_nodes}
    ctry_css = {ctry_at[k]: css for k, _, css in countries if k in ctry_at}
    edges: list[Edge] = []
    seen: set[tuple[str, str]] = set()
    # Edges into a recipient take the colour of where that recipient sends on.
    rcp_worst: dict[str, str] = {}
    rank = {"edge": 0, "edge-foreign": 1, "edge-state": 2}
    second = []
    for r, c in rcp_to_country:
        if r not in rcp_at or c not in ctry_at:
            continue
        a, b = rcp_at[r], ctry_at[c]
        if (a, b) in seen:
            continue
        seen.add((a, b))
        css = {"ctry-state": "edge-state", "ctry-foreign": "edge-foreign"}.get(ctry_css.get(b, ""), "edge")
        second.append(Edge(_curve(by_id[a], by_id[b]), css))
        if rank[css] > rank.get(rcp_worst.get(a, "edge"), 0):
            rcp_worst[a] = css
    for cat, r in cat_to_rcp:
        if cat not in cat_at or r not in rcp_at:
            continue
        a, b = cat_at[cat], rcp_at[r]
        if (a, b) in seen:
            continue
        seen.add((a, b))
        edges.append(Edge(_curve(by_id[a], by_id[b]), rcp_worst.get(b, "edge")))
    edges.extend(second)
    # Plain edges first so the coloured ones are drawn on top.
    edges.sort(key=lambda e: rank[e.css])
    height = TOP + rows * (NODE_H + GAP) + 4
    return FlowMap(
        width=WIDTH,
        height=height,
        headings=[(COL_X[i], headings[i]) for i in range(3)],
        nodes=cat_nodes + rcp_nodes + ctry_nodes,
        edges=edges,
        empty=not (cat_nodes and rcp_nodes),
    )
