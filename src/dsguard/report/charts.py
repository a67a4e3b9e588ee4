"""Server-side SVG charts for the HTML report.

The report must open on an air-gapped laptop, so charts are plain SVG drawn here rather than a
JavaScript library fetched at view time. Every piece of text goes through ``el`` (which escapes
text and attribute values), because labels are often attacker-controlled: sender addresses,
display names, subjects. Styling uses presentation attributes and CSS classes only, never a
``style`` attribute, so the report's Content-Security-Policy can forbid inline styles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from markupsafe import Markup, escape

Attr = str | int | float | None
Child = str | Markup | None

# One palette for every chart and badge, so a colour means the same thing everywhere.
STATUS_COLORS = {
    "suspected": "#c8334a",
    "ungoverned": "#e89b2d",
    "registered": "#1f8a70",
    "trusted": "#8fa3b8",
}
STATUS_LABELS = {
    "suspected": "suspected (in an alert)",
    "ungoverned": "ungoverned (no in-date exception)",
    "registered": "registered (in-date exception)",
    "trusted": "authenticated or connector",
}
SEVERITY_COLORS = {
    "critical": "#8e1537",
    "high": "#d6453d",
    "medium": "#ee9b30",
    "low": "#5b9bb5",
    "informational": "#a3acb9",
}
CHECK_COLORS = {
    "FAIL": "#d6453d",
    "ERROR": "#7b3fa0",
    "MANUAL": "#ee9b30",
    "PASS": "#2f9e6e",
    "NOT_APPLICABLE": "#b8c0cc",
}
PATH_COLORS = {
    "direct_send": "#c8334a",
    "anonymous_external": "#e0703a",
    "partner_connector": "#4b7bd1",
    "onprem_connector": "#6a5acd",
    "authenticated": "#2f9e6e",
    "unknown": "#8b95a5",
}


def _num(value: float) -> str:
    """Short coordinates keep a big report small: 12.0 → '12', 3.14159 → '3.1'."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def el(tag: str, attrs: Mapping[str, Attr] | None = None, *children: Child) -> Markup:
    """One SVG element; text children and attribute values are escaped, Markup is kept.

    Attribute names use ``_`` for ``-`` (``text_anchor`` → ``text-anchor``); ``None`` values
    are left out.
    """
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None:
            continue
        if isinstance(value, float):
            value = _num(value)
        parts.append(f'{name.rstrip("_").replace("_", "-")}="{escape(str(value))}"')
    head = " ".join(parts)
    body = Markup("").join(escape(c) for c in children if c is not None)
    if not body:
        return Markup(f"<{head}/>")
    return Markup(f"<{head}>{body}</{tag}>")


def title(text: str) -> Markup:
    """A hover tooltip (SVG ``<title>``)."""
    return el("title", None, text)


def svg(width: float, height: float, label: str, *children: Child, cls: str = "") -> Markup:
    """The outer element: scales to its container, announced to screen readers by ``label``."""
    return el(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {_num(width)} {_num(height)}",
            "role": "img",
            "aria_label": label,
            "class": f"chart {cls}".strip(),
            "preserveAspectRatio": "xMinYMin meet",
        },
        title(label),
        *children,
    )


def clip(text: str, limit: int) -> str:
    """Labels longer than ``limit`` end in an ellipsis; the full text goes in the title."""
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 to at least ``maximum`` (1, 2, 2.5 or 5 × 10ⁿ steps)."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    top = math.ceil(maximum / step) * step
    return [i * step for i in range(round(top / step) + 1)]


def ink_on(color: str) -> str:
    """White or dark text, whichever reads on a ``#rrggbb`` fill."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#1c2433" if 0.299 * r + 0.587 * g + 0.114 * b > 170 else "#ffffff"


def fmt_int(value: float) -> str:
    return f"{round(value):,}"


def _legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> Markup:
    out: list[Markup] = []
    cx = x
    for label, color in items:
        out.append(el("rect", {"x": cx, "y": y - 9, "width": 11, "height": 11, "rx": 2,
                               "fill": color}))
        out.append(el("text", {"x": cx + 16, "y": y, "class": "legend"}, label))
        cx += 16 + 6.6 * len(label) + 22
    return el("g", {"class": "legend"}, *out)


def empty_chart(label: str, message: str, width: float = 960, height: float = 120) -> Markup:
    return svg(width, height, label,
               el("rect", {"x": 0.5, "y": 0.5, "width": width - 1, "height": height - 1,
                           "rx": 8, "class": "empty-frame"}),
               el("text", {"x": width / 2, "y": height / 2 + 5, "text_anchor": "middle",
                           "class": "muted"}, message), cls="empty")


# --------------------------------------------------------------------------- time series


def stacked_days(
    days: Sequence[date],
    series: Mapping[str, Sequence[int]],
    colors: Mapping[str, str],
    labels: Mapping[str, str],
    label: str,
    width: float = 960,
    height: float = 280,
) -> Markup:
    """Stacked columns per day: the trend a CISO reads and the split an analyst acts on."""
    if not days:
        return empty_chart(label, "No internal-looking anonymous mail in the observed period.")
    left, right, top, bottom = 56.0, 12.0, 34.0, 30.0
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(series[k][i] for k in series) for i in range(len(days))]
    ticks = nice_ticks(max(totals) or 1)
    y_max = ticks[-1]
    slot = plot_w / len(days)
    bar_w = max(1.0, slot * 0.78)
    parts: list[Markup] = [
        _legend(left, 14, [(labels.get(k, k), colors[k]) for k in series]),
    ]
    for t in ticks:
        y = top + plot_h - plot_h * t / y_max
        parts.append(el("line", {"x1": left, "x2": width - right, "y1": y, "y2": y,
                                 "class": "grid"}))
        parts.append(el("text", {"x": left - 8, "y": y + 4, "text_anchor": "end",
                                 "class": "axis"}, fmt_int(t)))
    step = max(1, math.ceil(len(days) / 12))
    for i, d in enumerate(days):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        segments: list[Markup] = []
        for key, values in series.items():
            v = values[i]
            if v <= 0:
                continue
            h = plot_h * v / y_max
            y -= h
            segments.append(el("rect", {"x": x, "y": y, "width": bar_w, "height": h,
                                        "fill": colors[key]},
                               title(f"{d.isoformat()}: {fmt_int(v)} {labels.get(key, key)}")))
        tip = f"{d.isoformat()} ({d.strftime('%a')}): {fmt_int(totals[i])} messages"
        parts.append(el("g", {"class": "bar"}, title(tip), *segments))
        if i % step == 0:
            parts.append(el("text", {"x": left + i * slot + slot / 2, "y": height - 10,
                                     "text_anchor": "middle", "class": "axis"},
                            d.strftime("%d %b")))
    parts.append(el("line", {"x1": left, "x2": width - right, "y1": top + plot_h,
                             "y2": top + plot_h, "class": "baseline"}))
    return svg(width, height, label, *parts)


# --------------------------------------------------------------------------- bars


def hbars(
    items: Sequence[tuple[str, float, str]],
    label: str,
    width: float = 460,
    label_width: float = 120,
    bar_height: float = 22,
) -> Markup:
    """Horizontal bars with the value at the end: alerts by severity and the like."""
    if not items:
        return empty_chart(label, "Nothing to show.", width, 80)
    gap = 8.0
    height = len(items) * (bar_height + gap) + gap
    peak = max(v for _, v, _ in items) or 1
    plot_w = width - label_width - 60
    parts: list[Markup] = []
    for i, (name, value, color) in enumerate(items):
        y = gap + i * (bar_height + gap)
        w = max(0.0, plot_w * value / peak)
        parts.append(el("text", {"x": label_width - 8, "y": y + bar_height / 2 + 4,
                                 "text_anchor": "end", "class": "label"}, name))
        parts.append(el("rect", {"x": label_width, "y": y, "width": max(w, 1.5),
                                 "height": bar_height, "rx": 3, "fill": color},
                        title(f"{name}: {fmt_int(value)}")))
        parts.append(el("text", {"x": label_width + w + 6, "y": y + bar_height / 2 + 4,
                                 "class": "value"}, fmt_int(value)))
    return svg(width, height, label, *parts)


def stacked_hbars(
    rows: Sequence[tuple[str, Mapping[str, int]]],
    colors: Mapping[str, str],
    label: str,
    width: float = 460,
    label_width: float = 90,
    bar_height: float = 20,
    legend: bool = True,
) -> Markup:
    """One bar per row split by status: posture by family, requirements by coverage."""
    if not rows:
        return empty_chart(label, "Nothing to show.", width, 80)
    gap = 8.0
    top = 26.0 if legend else 6.0
    height = top + len(rows) * (bar_height + gap)
    peak = max(sum(c.values()) for _, c in rows) or 1
    plot_w = width - label_width - 50
    parts: list[Markup] = []
    if legend:
        used = [k for k in colors if any(c.get(k) for _, c in rows)]
        parts.append(_legend(label_width, 12, [(k.replace("_", " ").lower(), colors[k])
                                               for k in used]))
    for i, (name, counts) in enumerate(rows):
        y = top + i * (bar_height + gap)
        parts.append(el("text", {"x": label_width - 8, "y": y + bar_height / 2 + 4,
                                 "text_anchor": "end", "class": "label"}, name))
        x = label_width
        for key, color in colors.items():
            n = counts.get(key, 0)
            if not n:
                continue
            w = plot_w * n / peak
            parts.append(el("rect", {"x": x, "y": y, "width": w, "height": bar_height,
                                     "fill": color},
                            title(f"{name}: {n} {key.replace('_', ' ').lower()}")))
            if w > 18:
                parts.append(el("text", {"x": x + w / 2, "y": y + bar_height / 2 + 4,
                                         "text_anchor": "middle", "class": "inbar",
                                         "fill": ink_on(color)}, str(n)))
            x += w
        parts.append(el("text", {"x": x + 6, "y": y + bar_height / 2 + 4, "class": "value"},
                        str(sum(counts.values()))))
    return svg(width, height, label, *parts)


# --------------------------------------------------------------------------- timeline


@dataclass
class TimelineEvent:
    lane: str
    start: datetime
    end: datetime
    size: int
    color: str
    tip: str


def timeline(
    lanes: Sequence[str],
    events: Sequence[TimelineEvent],
    label: str,
    width: float = 960,
    lane_height: float = 36,
    label_width: float = 330,
) -> Markup:
    """Campaigns on a time axis: one lane per kind, one mark per alert sized by messages."""
    if not events:
        return empty_chart(label, "No alert in the observed period.")
    top, bottom, right = 12.0, 30.0, 16.0
    height = top + len(lanes) * lane_height + bottom
    t0 = min(e.start for e in events)
    t1 = max(e.end for e in events)
    day0 = datetime.combine(t0.date(), datetime.min.time(), tzinfo=t0.tzinfo)
    day1 = datetime.combine(t1.date() + timedelta(days=1), datetime.min.time(), tzinfo=t1.tzinfo)
    span = (day1 - day0).total_seconds() or 1.0
    plot_w = width - label_width - right

    def x_of(t: datetime) -> float:
        return label_width + plot_w * (t - day0).total_seconds() / span

    parts: list[Markup] = []
    n_days = (day1 - day0).days
    step = max(1, math.ceil(n_days / 12))
    for i in range(0, n_days + 1, step):
        d = day0 + timedelta(days=i)
        x = x_of(d)
        parts.append(el("line", {"x1": x, "x2": x, "y1": top, "y2": height - bottom,
                                 "class": "grid"}))
        if i < n_days:
            parts.append(el("text", {"x": x + 3, "y": height - 10, "class": "axis"},
                            d.strftime("%d %b")))
    index = {name: i for i, name in enumerate(lanes)}
    counts = {name: 0 for name in lanes}
    for e in events:
        counts[e.lane] = counts.get(e.lane, 0) + 1
    for name, i in index.items():
        y = top + i * lane_height
        if i % 2 == 0:
            parts.append(el("rect", {"x": 0, "y": y, "width": width, "height": lane_height,
                                     "class": "lane"}))
        parts.append(el("text", {"x": 8, "y": y + lane_height / 2 + 4, "class": "label"},
                        el("tspan", None, clip(name, 46)),
                        el("tspan", {"class": "count", "dx": 6}, str(counts[name])),
                        title(f"{name}: {counts[name]} alert(s)")))
    peak = max(e.size for e in events) or 1
    for e in sorted(events, key=lambda ev: -ev.size):
        y = top + index[e.lane] * lane_height + lane_height / 2
        xa, xb = x_of(e.start), x_of(e.end)
        r = 3.5 + 9.0 * math.sqrt(e.size / peak)
        marks: list[Markup] = [title(e.tip)]
        if xb - xa > 2:
            marks.append(el("line", {"x1": xa, "x2": xb, "y1": y, "y2": y, "stroke": e.color,
                                     "stroke_width": 4, "stroke_linecap": "round",
                                     "opacity": 0.55}))
        marks.append(el("circle", {"cx": xa, "cy": y, "r": r, "fill": e.color,
                                   "fill_opacity": 0.78, "stroke": "#fff", "stroke_width": 1}))
        parts.append(el("g", {"class": "event"}, *marks))
    return svg(width, height, label, *parts)


# --------------------------------------------------------------------------- sankey


@dataclass
class FlowNode:
    key: str
    label: str
    column: int
    color: str
    tip: str = ""
    value: float = 0.0
    y: float = 0.0
    h: float = 0.0
    out_y: float = 0.0
    in_y: float = 0.0


@dataclass
class FlowLink:
    source: str
    target: str
    value: float
    color: str
    tip: str = ""
    y0: float = 0.0  # layout: where the band leaves its source
    y1: float = 0.0  # and where it enters its target


@dataclass
class FlowDiagram:
    """Columns of nodes joined by weighted links; ``sankey`` lays it out."""

    nodes: dict[str, FlowNode] = field(default_factory=dict)
    links: list[FlowLink] = field(default_factory=list)

    def node(self, key: str, label: str, column: int, color: str, tip: str = "") -> None:
        if key not in self.nodes:
            self.nodes[key] = FlowNode(key, label, column, color, tip)

    def link(self, source: str, target: str, value: float, color: str, tip: str = "") -> None:
        for existing in self.links:
            if (existing.source, existing.target, existing.color) == (source, target, color):
                existing.value += value
                return
        self.links.append(FlowLink(source, target, value, color, tip))


def sankey(
    diagram: FlowDiagram,
    headings: Sequence[str],
    label: str,
    width: float = 1000,
    height: float = 460,
    label_room: tuple[float, float] = (265, 265),
) -> Markup:
    """A layered flow diagram: band widths are message counts, colours the governance state.

    Nodes are sorted by volume within a column and links leave and enter in the order of the
    node at the other end, which keeps crossings few without an iterative layout.
    """
    if not diagram.links:
        return empty_chart(label, "No mail on these paths in the observed period.", width)
    top, bottom = 30.0, 8.0
    node_w, pad, min_slot = 14.0, 8.0, 16.0
    ncols = max(n.column for n in diagram.nodes.values()) + 1
    left, right = label_room
    xs = [left + i * (width - left - right - node_w) / max(1, ncols - 1) for i in range(ncols)]
    ins: dict[str, float] = {}
    outs: dict[str, float] = {}
    for lk in diagram.links:
        outs[lk.source] = outs.get(lk.source, 0) + lk.value
        ins[lk.target] = ins.get(lk.target, 0) + lk.value
    columns: list[list[FlowNode]] = [[] for _ in range(ncols)]
    for node in diagram.nodes.values():
        node.value = max(ins.get(node.key, 0), outs.get(node.key, 0))
        if node.value > 0:
            columns[node.column].append(node)
    # Every node gets a slot tall enough for its label; small flows keep a readable row.
    busiest = max((len(col) for col in columns), default=1)
    height = max(height, top + bottom + busiest * (min_slot + pad) + 60)
    plot_h = height - top - bottom

    def fits(col: list[FlowNode], s: float) -> bool:
        return sum(max(min_slot, n.value * s) for n in col) + pad * (len(col) - 1) <= plot_h

    scale = min(
        (plot_h - pad * (len(col) - 1)) / (sum(n.value for n in col) or 1)
        for col in columns if col
    )
    for col in columns:
        lo, hi = 0.0, scale
        if col and not fits(col, hi):
            for _ in range(40):  # bisect the largest scale at which this column fits
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if fits(col, mid) else (lo, mid)
            scale = lo
    for col in columns:
        col.sort(key=lambda n: (n.key.startswith("~"), -n.value))
        used = sum(max(min_slot, n.value * scale) for n in col) + pad * (len(col) - 1)
        y = top + max(0.0, (plot_h - used) / 2)
        for n in col:
            n.h = max(2.0, n.value * scale)
            slot = max(min_slot, n.h)
            n.y = n.out_y = n.in_y = y + (slot - n.h) / 2
            y += slot + pad
    nodes = diagram.nodes
    parts: list[Markup] = []
    for i, heading in enumerate(headings[:ncols]):
        # Headings sit over the labels: left of the first column, right of the others.
        anchor = "end" if i == 0 else "start"
        hx = xs[i] + node_w if i == 0 else xs[i]
        parts.append(el("text", {"x": hx, "y": 14, "text_anchor": anchor, "class": "heading"},
                        heading))
    ordered = list(diagram.links)
    for lk in sorted(ordered, key=lambda lk: (nodes[lk.source].y, nodes[lk.target].y)):
        src = nodes[lk.source]
        lk.y0 = src.out_y
        src.out_y += lk.value * scale
    for lk in sorted(ordered, key=lambda lk: (nodes[lk.target].y, nodes[lk.source].y)):
        dst = nodes[lk.target]
        lk.y1 = dst.in_y
        dst.in_y += lk.value * scale
    link_parts: list[Markup] = []
    for lk in sorted(ordered, key=lambda lk: -lk.value):
        src, dst = nodes[lk.source], nodes[lk.target]
        w = max(0.8, lk.value * scale)
        x0 = xs[src.column] + node_w
        x1 = xs[dst.column]
        y0, y1 = lk.y0, lk.y1
        mx = (x0 + x1) / 2
        d = (f"M{_num(x0)},{_num(y0)} C{_num(mx)},{_num(y0)} {_num(mx)},{_num(y1)} "
             f"{_num(x1)},{_num(y1)} L{_num(x1)},{_num(y1 + w)} C{_num(mx)},{_num(y1 + w)} "
             f"{_num(mx)},{_num(y0 + w)} {_num(x0)},{_num(y0 + w)} Z")
        tip = lk.tip or f"{src.label} → {dst.label}: {fmt_int(lk.value)}"
        link_parts.append(el("path", {"d": d, "fill": lk.color, "class": "flow"}, title(tip)))
    parts.append(el("g", {"class": "flows"}, *link_parts))
    for col in columns:
        for n in col:
            x = xs[n.column]
            tip = n.tip or f"{n.label}: {fmt_int(n.value)} messages"
            parts.append(el("rect", {"x": x, "y": n.y, "width": node_w, "height": n.h,
                                     "fill": n.color, "rx": 2, "class": "node"}, title(tip)))
            if n.column == 0:
                lx, anchor = x - 6, "end"
            elif n.column == ncols - 1:
                lx, anchor = x + node_w + 6, "start"
            else:
                lx, anchor = x + node_w + 6, "start"
            text = clip(n.label, 30 if n.column in (0, ncols - 1) else 24)
            ly = n.y + n.h / 2 + 4
            parts.append(el("text", {"x": lx, "y": ly, "text_anchor": anchor,
                                     "class": "node-label"},
                            el("tspan", None, text),
                            el("tspan", {"class": "count", "dx": 5}, fmt_int(n.value)),
                            title(tip)))
    return svg(width, height, label, *parts, cls="sankey")


def legend_items(keys: Iterable[str]) -> list[tuple[str, str]]:
    """``(label, colour)`` for governance states, in the order given."""
    return [(STATUS_LABELS[k], STATUS_COLORS[k]) for k in keys]
