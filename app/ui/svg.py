"""Pictures drawn on the server as inline SVG: the run duration trend, stage timing bars and a
cluster's link graph. No script draws them, so they work offline, without JavaScript, and
under a strict Content-Security-Policy; each carries a text equivalent for screen readers."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from app.core.vocabulary import RUN_MODES

# Large enough to read a cluster, small enough not to draw a hairball.
GRAPH_MAX_NODES = 150


def _e(value: Any) -> str:
    return str(escape("" if value is None else str(value)))


def _fmt_s(v: float) -> str:
    if v == 0:
        return "0 s"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.1f} s" if v < 100 else f"{v:.0f} s"


# ----------------------------------------------------------------------------- runs
def duration_trend(points: Sequence[tuple[Any, float]], width: int = 720, height: int = 180) -> Markup:
    """Each finished run's duration, oldest left; FULL and INCR as two series, dry runs hollow."""
    if not points:
        return Markup('<p class="muted">No finished runs yet.</p>')
    left, right, top, bottom = 52, 12, 12, 28
    w, h = width - left - right, height - top - bottom
    top_s = max(s for _, s in points) or 1.0
    n = len(points)

    def xy(i: int, s: float) -> tuple[float, float]:
        x = left + (w * (i + 0.5) / n)
        return round(x, 1), round(top + h - h * s / top_s, 1)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="trend-title trend-desc">',
        '<title id="trend-title">Run durations</title>',
        f'<desc id="trend-desc">{n} most recent runs, oldest first; longest {_e(_fmt_s(top_s))}, '
        f"latest {_e(_fmt_s(points[-1][1]))} ({_e(points[-1][0].mode)}).</desc>",
    ]
    for frac in (0.0, 0.5, 1.0):
        y = round(top + h - h * frac, 1)
        parts.append(f'<line class="grid" x1="{left}" y1="{y}" x2="{left + w}" y2="{y}"/>')
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + 4}" text-anchor="end">{_e(_fmt_s(top_s * frac))}</text>'
        )
    parts.append(f'<text class="axis" x="{left}" y="{height - 8}">older</text>')
    parts.append(f'<text class="axis" x="{left + w}" y="{height - 8}" text-anchor="end">newer</text>')
    for mode in RUN_MODES:
        pts = [xy(i, s) for i, (r, s) in enumerate(points) if r.mode == mode]
        if len(pts) > 1:
            coords = " ".join(f"{x},{y}" for x, y in pts)
            parts.append(f'<polyline class="series-{mode.lower()}" points="{coords}"/>')
    for i, (r, s) in enumerate(points):
        x, y = xy(i, s)
        cls = f"dot-{r.mode.lower()}" + (" dry" if r.dry_run else "") + (" failed" if r.status == "FAILED" else "")
        kind = "dry run" if r.dry_run else "run"
        parts.append(
            f'<a href="/ui/runs/{_e(r.id)}"><circle class="{cls}" cx="{x}" cy="{y}" r="4">'
            f"<title>{_e(r.id)}: {_e(r.mode)} {kind}, {_e(r.status)}, {_e(_fmt_s(s))}</title></circle></a>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def stage_bars(stages: Sequence[tuple[str, float, int | None, int | None]], width: int = 720) -> Markup:
    """One bar per stage, its length the stage's share of the longest one."""
    if not stages:
        return Markup('<p class="muted">No stage has finished yet.</p>')
    row, label_w, value_w = 22, 170, 80
    height = row * len(stages) + 6
    longest = max(s for _, s, _, _ in stages) or 1.0
    total = sum(s for _, s, _, _ in stages)
    bar_w = width - label_w - value_w
    parts = [
        f'<svg class="chart stages" viewBox="0 0 {width} {height}" role="img" aria-labelledby="stages-title">',
        f'<title id="stages-title">Stage timings: {len(stages)} stages, {_e(_fmt_s(total))} in all</title>',
    ]
    for i, (name, secs, rows_in, rows_out) in enumerate(stages):
        y = 3 + i * row
        bw = max(1.0, round(bar_w * secs / longest, 1))
        rows = f", rows in {rows_in if rows_in is not None else '–'}, out {rows_out if rows_out is not None else '–'}"
        parts.append(
            f"<g><title>{_e(name)}: {_e(_fmt_s(secs))}{_e(rows)}</title>"
            f'<text class="label" x="{label_w - 8}" y="{y + 15}" text-anchor="end">{_e(name)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{bw}" height="{row - 8}" rx="2"/>'
            f'<text class="value" x="{label_w + bw + 6}" y="{y + 15}">{_e(_fmt_s(secs))}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# ----------------------------------------------------------------------------- link graph
@dataclass
class Graph:
    nodes: list[str]
    # (a, b) -> labels of the identifiers the edge stands for
    edges: dict[tuple[str, str], list[str]] = field(default_factory=dict)


def build_graph(members: Sequence[str], edges: Sequence[dict[str, Any]]) -> Graph:
    g = Graph(nodes=list(members))
    known = set(members)
    for e in edges:
        a, b = e["left_entity_key"], e["right_entity_key"]
        if a not in known or b not in known or a == b:
            continue
        key = (a, b) if a < b else (b, a)
        g.edges.setdefault(key, []).append(f"{e['identifier_type']}: {e['identifier_value_norm']}")
    return g


def layout(g: Graph, seed_text: str = "", iterations: int = 200) -> dict[str, tuple[float, float]]:
    """Fruchterman-Reingold on numpy arrays, in the unit square; deterministic per cluster."""
    n = len(g.nodes)
    if n == 1:
        return {g.nodes[0]: (0.5, 0.5)}
    seed = int.from_bytes(hashlib.sha256((seed_text or "|".join(g.nodes)).encode()).digest()[:4], "big")
    rng = np.random.default_rng(seed)
    # Start on a circle (stable, no overlaps), jittered so that symmetric graphs can unfold.
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pos = np.c_[np.cos(angle), np.sin(angle)] * 0.5 + rng.normal(0, 0.02, (n, 2))
    index = {k: i for i, k in enumerate(g.nodes)}
    ei = np.array([[index[a], index[b]] for a, b in g.edges], dtype=int).reshape(-1, 2)
    k = math.sqrt(1.0 / n)
    temp = 0.1
    for _ in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.maximum(np.linalg.norm(delta, axis=-1), 1e-3)
        disp = ((k * k / dist**2)[:, :, None] * delta).sum(axis=1)  # repulsion
        if len(ei):
            d = pos[ei[:, 0]] - pos[ei[:, 1]]
            dl = np.maximum(np.linalg.norm(d, axis=1), 1e-3)
            f = (dl / k)[:, None] * d  # attraction along edges
            np.add.at(disp, ei[:, 0], -f)
            np.add.at(disp, ei[:, 1], f)
        length = np.maximum(np.linalg.norm(disp, axis=1), 1e-9)
        pos += disp / length[:, None] * np.minimum(length, temp)[:, None]
        temp *= 0.97
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    span = np.where(hi - lo < 1e-9, 1.0, hi - lo)
    unit = (pos - lo) / span
    return {key: (float(unit[i, 0]), float(unit[i, 1])) for key, i in index.items()}


def _short(key: str, limit: int = 22) -> str:
    """Keys differ at their end ('shop_orders:ORD-0000000237'): keep the end."""
    return key if len(key) <= limit else "…" + key[-(limit - 1) :]


def link_graph(
    g: Graph,
    *,
    seed_text: str = "",
    path: Sequence[str] = (),
    focus: str | None = None,
    width: int = 900,
    height: int | None = None,
) -> Markup:
    """Records as nodes (coloured by source table), identifiers as labelled edges; the records
    and hops of ``path`` highlighted (a hop may join two holders of one value that the stored
    star edges link only through the value's anchor record, so hops are drawn on their own)."""
    height = height or min(560, 240 + 12 * len(g.nodes))  # a few records need no tall canvas
    pos = layout(g, seed_text)
    pad, xpad = 50, 100  # room for the labels under the outermost records
    tables = sorted({k.split(":", 1)[0] for k in g.nodes})
    colour = {t: i % 8 for i, t in enumerate(tables)}

    def at(key: str) -> tuple[float, float]:
        x, y = pos[key]
        return round(xpad + x * (width - 2 * xpad), 1), round(pad + y * (height - 2 * pad), 1)

    on_path = set(path)
    hops = {(a, b) if a < b else (b, a) for a, b in zip(path, path[1:], strict=False)}
    label_edges = len(g.edges) <= 40
    parts = [
        f'<svg class="graph" viewBox="0 0 {width} {height}" role="img" aria-labelledby="graph-title graph-desc">',
        f'<title id="graph-title">Link graph: {len(g.nodes)} records, {len(g.edges)} links</title>',
        '<desc id="graph-desc">Records are circles coloured by source table; a line joins records that share an '
        "identifier. The table of links below lists the same.</desc>",
    ]
    for (a, b), labels in sorted(g.edges.items()):
        (x1, y1), (x2, y2) = at(a), at(b)
        cls = "edge on-path" if (a, b) in hops else "edge"
        text = "; ".join(sorted(set(labels)))
        parts.append(
            f'<g class="{cls}"><title>{_e(a)} — {_e(b)}: {_e(text)}</title>'
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/>'
        )
        if label_edges:
            first = sorted(set(labels))[0]
            more = f" +{len(set(labels)) - 1}" if len(set(labels)) > 1 else ""
            parts.append(
                f'<text class="edge-label" x="{round((x1 + x2) / 2, 1)}" y="{round((y1 + y2) / 2 - 3, 1)}" '
                f'text-anchor="middle">{_e(first if len(first) <= 30 else first[:29] + "…")}{_e(more)}</text>'
            )
        parts.append("</g>")
    for a, b in sorted(hops - set(g.edges)):
        (x1, y1), (x2, y2) = at(a), at(b)
        parts.append(
            f'<g class="edge on-path hop"><title>{_e(a)} — {_e(b)} share an identifier</title>'
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/></g>'
        )
    for key in g.nodes:
        x, y = at(key)
        table = key.split(":", 1)[0]
        cls = f"node c{colour[table]}" + (" on-path" if key in on_path else "") + (" focus" if key == focus else "")
        parts.append(
            f'<g class="{cls}" data-key="{_e(key)}" tabindex="0" role="button" '
            f'aria-label="record {_e(key)}"><title>{_e(key)}</title>'
            f'<circle cx="{x}" cy="{y}" r="9"/>'
            f'<text x="{x}" y="{y + 22}" text-anchor="middle">{_e(_short(key))}</text></g>'
        )
    parts.append("</svg>")
    legend = "".join(f'<li><span class="swatch c{colour[t]}"></span>{_e(t)}</li>' for t in tables)
    return Markup("".join(parts) + f'<ul class="legend" aria-label="source tables">{legend}</ul>')
