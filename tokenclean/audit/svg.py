"""Inline SVG bar charts for the HTML report: no plotting library, no script, no network at view time.

Every bar carries a ``<title>``, so hovering shows its exact value.
"""

from __future__ import annotations

import math
from html import escape


def stacked_bars(categories: list[str], series: dict[str, list[float]], colors: dict[str, str], title: str,
                 fmt: str = "{:,.0f}", width: int = 560, height: int = 220, log: bool = False,
                 tips: list[str] | None = None, labels: int = 10) -> str:
    """Vertical bars, one per category, each stacking the values of every series.

    ``log``: a bar's height is log10(1 + its total), split between the series in proportion, so a
    bin of 10,000 does not flatten bins of 10 (ticks at powers of ten). ``tips`` names each bar in its
    hover text (default: the category); ``labels``: at most this many category labels under the axis.
    """
    left, right, top_pad, bottom = 56, 8, 44, 42
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    totals = [sum(v[i] for v in series.values()) for i in range(len(categories))]
    peak = max(totals, default=0) or 1
    scale = (lambda t: math.log10(1 + t) / math.log10(1 + peak)) if log else (lambda t: t / peak)
    slot = plot_w / max(len(categories), 1)
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{left}" y="14" class="ct">{escape(title)}</text>']
    out += _log_axis(left, top_pad, plot_w, plot_h, peak) if log else _axis(left, top_pad, plot_w, plot_h, peak, fmt)
    every = max(1, -(-len(categories) // labels))
    for i, cat in enumerate(categories):
        x, y = left + i * slot, top_pad + plot_h
        bar_h = scale(totals[i]) * plot_h
        for name, values in series.items():
            h = bar_h * values[i] / totals[i] if totals[i] else 0
            y -= h
            tip = f"{escape(tips[i] if tips else cat)} · {escape(name)}: {fmt.format(values[i])}"
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


def _log_axis(left: float, top: float, w: float, h: float, peak: float) -> list[str]:
    lines = [f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" class="ax"/>']
    top_power = int(math.log10(peak)) if peak >= 1 else 0
    for k in range(top_power + 1):
        y = top + h - math.log10(1 + 10**k) / math.log10(1 + peak) * h
        lines.append(f'<line x1="{left - 3}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" class="grid"/>')
        lines.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="cy">{10**k:,}</text>')
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
               width: int = 560, height: int = 260, x_names: list[str] | None = None) -> str:
    """One line with point markers per series over shared numeric ``xs``; a None value leaves a gap.
    The y axis spans ``y_range``, or the values with a margin; ``x_names`` labels the x ticks (e.g. rounds).

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
    for i, x in enumerate(xs):
        tick = escape(x_names[i]) if x_names else f"{x:g}"
        out.append(f'<text x="{px(x):.1f}" y="{top_pad + plot_h + 16}" class="cx">{tick}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 8}" class="cx">{escape(x_label)}</text>')
    for name, vs in series.items():
        points = [(px(x), py(v), v, x) for x, v in zip(xs, vs) if v is not None]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b, _, _ in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colors[name]}" stroke-width="2"/>')
        at = (lambda x: escape(x_names[xs.index(x)])) if x_names else (lambda x: f"{x:g}")  # noqa: E731
        out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{colors[name]}"><title>{escape(name)} at {at(x)}: '
                f'{fmt.format(v)}</title></circle>' for a, b, v, x in points]
    out += [s.replace('class="cl"', "") for s in _legend(colors, width - right, series)]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def curve_chart(series: dict[str, list[tuple[float, float]]], colors: dict[str, str], title: str, x_label: str,
                fmt: str = "{:.3g}", width: int = 560, height: int = 260) -> str:
    """Lines over each series' own x values (training curves of rounds of different lengths); hover a
    line for its name, its last point for the final value."""
    left, right, top_pad, bottom = 64, 24, 44, 48
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    points = [p for ps in series.values() for p in ps]
    if not points:
        return ""
    (x0, x1), (low, high) = [(min(v), max(v)) for v in zip(*points)]
    pad = 0.05 * (high - low or 1)
    low, high = (max(0.0, low - pad) if low >= 0 else low - pad), high + pad  # no negative tick for a count
    px = lambda x: left + (x - x0) / ((x1 - x0) or 1) * plot_w  # noqa: E731
    py = lambda y: top_pad + plot_h - (y - low) / (high - low) * plot_h  # noqa: E731
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{left}" y="14" class="ct">{escape(title)}</text>']
    for frac in (0, 0.5, 1):
        y, v = top_pad + plot_h - frac * plot_h, low + frac * (high - low)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" class="cy">{fmt.format(v)}</text>')
        out.append(f'<text x="{left + frac * plot_w:.1f}" y="{top_pad + plot_h + 16}" class="cx">'
                   f'{x0 + frac * (x1 - x0):,.0f}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 8}" class="cx">{escape(x_label)}</text>')
    for name, ps in series.items():
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ps)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colors[name]}" stroke-width="1.5">'
                   f'<title>{escape(name)}</title></polyline>')
        (xe, ye) = ps[-1]
        out.append(f'<circle cx="{px(xe):.1f}" cy="{py(ye):.1f}" r="3" fill="{colors[name]}"><title>{escape(name)}, '
                   f'step {xe:,.0f}: {fmt.format(ye)}</title></circle>')
    out += _legend(colors, width - right, series)
    out.append("</svg>")
    return "\n".join(out)
