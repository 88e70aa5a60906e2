"""Server-rendered SVG: alerts per month by kind; TLP badge classes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from markupsafe import Markup, escape

KIND_COLOURS = {
    "seized_weapon": ("#1f5fa8", "Seized weapons"),
    "trace_request": ("#8a4b08", "Trace requests"),
    "suspicious_procurement": ("#5b2a86", "Suspicious procurement"),
}


def tlp_class(tlp: str | None) -> str:
    """The CSS class of a TLP badge (FIRST TLP 2.0 colours, see console.css)."""
    return "tlp-" + (tlp or "none").replace("+", "-")


def months_back(now: datetime, count: int) -> list[str]:
    """The last `count` months as `YYYY-MM`, oldest first."""
    year, month = now.year, now.month
    out: list[str] = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def alerts_per_month(rows: Iterable[tuple[str, datetime]], months: list[str]) -> Markup:
    """A grouped bar chart of (kind, time) pairs over `months`, as an accessible SVG."""
    counts = Counter((kind, at.strftime("%Y-%m")) for kind, at in rows)
    kinds = list(KIND_COLOURS)
    top = max([counts[(k, m)] for k in kinds for m in months] + [1])
    width, height, left, bottom, top_pad = 560, 220, 36, 40, 10
    plot_h = height - bottom - top_pad
    slot = (width - left) / len(months)
    bar = slot / (len(kinds) + 1)
    summary = "; ".join(
        f"{m}: " + ", ".join(f"{KIND_COLOURS[k][1]} {counts[(k, m)]}" for k in kinds)
        for m in months
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height + 30}" role="img" '
        f'aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Alerts per month, by kind</title>',
        f'<desc id="chart-desc">{escape(summary)}</desc>',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width}" y2="{top_pad + plot_h}" '
        'stroke="#333"/>',
        f'<text x="4" y="{top_pad + 10}" font-size="11" fill="#222">{top}</text>',
        f'<text x="4" y="{top_pad + plot_h}" font-size="11" fill="#222">0</text>',
    ]
    for i, month in enumerate(months):
        x0 = left + i * slot + bar / 2
        for j, kind in enumerate(kinds):
            value = counts[(kind, month)]
            h = plot_h * value / top
            colour, name = KIND_COLOURS[kind]
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{top_pad + plot_h - h:.1f}" '
                f'width="{bar - 1:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(name)}, {month}: {value}</title></rect>"
            )
        parts.append(
            f'<text x="{left + i * slot + slot / 2:.1f}" y="{top_pad + plot_h + 16}" '
            f'font-size="11" text-anchor="middle" fill="#222">{month}</text>'
        )
    for j, kind in enumerate(kinds):
        colour, name = KIND_COLOURS[kind]
        x = left + j * 180
        y = height + 12
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + 16}" y="{y + 11}" font-size="12" fill="#222">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text part above is escaped
