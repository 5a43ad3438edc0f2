"""Inline SVG bar charts for the HTML report: no plotting library, no script, no network at view time.

Every bar carries a ``<title>``, so hovering shows its exact value.
"""

from __future__ import annotations

from html import escape


def stacked_bars(categories: list[str], series: dict[str, list[float]], colors: dict[str, str], title: str,
                 fmt: str = "{:,.0f}", width: int = 560, height: int = 220) -> str:
    """Vertical bars, one per category, each stacking the values of every series."""
    left, right, top_pad, bottom = 56, 8, 44, 42
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    totals = [sum(v[i] for v in series.values()) for i in range(len(categories))]
    peak = max(totals, default=0) or 1
    slot = plot_w / max(len(categories), 1)
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{left}" y="14" class="ct">{escape(title)}</text>']
    out += _axis(left, top_pad, plot_w, plot_h, peak, fmt)
    every = max(1, -(-len(categories) // 10))  # at most about ten category labels
    for i, cat in enumerate(categories):
        x, y = left + i * slot, top_pad + plot_h
        for name, values in series.items():
            h = values[i] / peak * plot_h
            y -= h
            tip = f"{escape(cat)} · {escape(name)}: {fmt.format(values[i])}"
            out.append(f'<rect x="{x + slot * 0.1:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
                       f'fill="{colors[name]}"><title>{tip}</title></rect>')
        if i % every == 0:
            out.append(f'<text x="{x + slot / 2:.1f}" y="{top_pad + plot_h + 14}" class="cx">{escape(cat)}</text>')
    out += _legend(colors, width - right, series)
    out.append("</svg>")
    return "\n".join(out)


def _axis(left: float, top: float, w: float, h: float, peak: float, fmt: str) -> list[str]:
    lines = [f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" class="ax"/>']
    for frac in (0, 0.5, 1):
        y = top + h - frac * h
        lines.append(f'<line x1="{left - 3}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" class="grid"/>')
        lines.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="cy">{fmt.format(frac * peak)}</text>')
    return lines


def _legend(colors: dict[str, str], right: float, series: dict) -> list[str]:
    if len(series) < 2:
        return []
    out, x = [], right
    for name in reversed(list(series)):
        x -= 8 * len(name) + 22
        out.append(f'<rect x="{x:.0f}" y="20" width="10" height="10" fill="{colors[name]}"/>'
                   f'<text x="{x + 14:.0f}" y="29" class="cl">{escape(name)}</text>')
    return out


STANDALONE_STYLE = ("<style>text{font:11px sans-serif;fill:#333}.ct{font-weight:bold;font-size:12px}"
                    ".cy{text-anchor:end}.cx{text-anchor:middle}.ax{stroke:#333}.grid{stroke:#ddd}</style>")


def line_chart(xs: list[float], series: dict[str, list[float | None]], colors: dict[str, str], title: str,
               x_label: str, fmt: str = "{:.1f}", y_range: tuple[float, float] | None = None,
               width: int = 560, height: int = 260) -> str:
    """One line with point markers per series over shared numeric ``xs``; a None value leaves a gap.
    The y axis spans ``y_range``, or the values with a margin.

    A standalone SVG document (its own style), so it shows as an image, e.g. in a README.
    """
    left, right, top_pad, bottom = 56, 24, 44, 48
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    values = [v for vs in series.values() for v in vs if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    low, high = y_range or (low - 0.05 * (high - low or 1), high + 0.05 * (high - low or 1))
    x0, x1 = min(xs), max(xs)
    px = lambda x: left + (x - x0) / ((x1 - x0) or 1) * plot_w  # noqa: E731
    py = lambda y: top_pad + plot_h - (y - low) / (high - low) * plot_h  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           STANDALONE_STYLE, '<rect width="100%" height="100%" fill="#fff"/>',
           f'<text x="{left}" y="14" class="ct">{escape(title)}</text>']
    for frac in (0, 0.5, 1):
        y, v = top_pad + plot_h - frac * plot_h, low + frac * (high - low)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" class="cy">{fmt.format(v)}</text>')
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{top_pad + plot_h + 16}" class="cx">{x:g}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 8}" class="cx">{escape(x_label)}</text>')
    for name, vs in series.items():
        points = [(px(x), py(v), v, x) for x, v in zip(xs, vs) if v is not None]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b, _, _ in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colors[name]}" stroke-width="2"/>')
        out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{colors[name]}"><title>{escape(name)} at {x:g}: '
                f'{fmt.format(v)}</title></circle>' for a, b, v, x in points]
    out += [s.replace('class="cl"', "") for s in _legend(colors, width - right, series)]
    out.append("</svg>")
    return "\n".join(out) + "\n"
