"""The token audit of a run as one self-contained HTML page (inline CSS, SVG and a few lines of script).

Input is what the terminal audit shows: per-round statistics (:mod:`tokenclean.audit.stats`)
and token rows of some samples (:mod:`tokenclean.audit.sample`). Nothing is fetched at view
time, so the file can be archived with its run and opened anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from tokenclean.audit.sample import TokenRow
from tokenclean.audit.svg import stacked_bars
from tokenclean.audit.token_text import visible

GREEN, RED, GREY = "#3a9d5d", "#d9534f", "#8a8f98"
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 16px 40px;color:#222}
h1{margin-bottom:4px} nav a{margin-right:12px} section{border-top:1px solid #ddd;margin-top:24px}
table{border-collapse:collapse;margin:8px 0 16px} th,td{padding:2px 10px;text-align:right;border-bottom:1px solid #eee}
th:first-child,td:first-child{text-align:left} .grid2{display:flex;flex-wrap:wrap;gap:16px 32px}
.chart text{font:11px sans-serif;fill:#444} .chart .ct{font-weight:bold;font-size:12px}
.chart .cx{text-anchor:middle} .chart .cy{text-anchor:end} .chart .ax{stroke:#999} .chart .grid{stroke:#eee}
.tokens{font:13px/1.9 ui-monospace,monospace;white-space:pre-wrap;word-break:break-all;\
padding:6px 8px;background:#fafafa}
.tokens span{border-radius:2px} .tokens .p{color:#999} .tokens .s{font-style:italic}
.tokens .k{background:#c9efd4;box-shadow:inset -1px 0 #fff}
.tokens .d{background:#f8d0cf;color:#8a1c1c;text-decoration:line-through;box-shadow:inset -1px 0 #fff}
details{margin:4px 0} summary{cursor:pointer} .muted{color:#777} .legend span{padding:0 6px;margin-right:6px}
"""
SCRIPT = """
document.querySelectorAll('input.filter').forEach(function (box) {
  box.addEventListener('input', function () {
    var q = box.value.toLowerCase();
    box.parentElement.querySelectorAll('details.sample').forEach(function (d) {
      d.style.display = d.dataset.id.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
    });
  });
});
"""


@dataclass(frozen=True)
class RoundReport:
    stats: dict  # tokenclean.audit.stats.round_stats
    samples: list[tuple[str, list[TokenRow]]]  # (sample id, rows) of the samples shown


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def table(headers: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_report(rounds: list[RoundReport], title: str = "Token audit", note: str = "") -> str:
    nav = "".join(f'<a href="#round-{escape(r.stats["round"])}">{escape(r.stats["round"])}</a>' for r in rounds)
    body = [f"<h1>{escape(title)}</h1>", f'<p class="muted">{escape(note)}</p>' if note else "",
            f"<nav>rounds: {nav}</nav>", overview(rounds), *(round_section(r) for r in rounds)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + f"\n<script>{SCRIPT}</script>\n</body></html>\n")


def overview(rounds: list[RoundReport]) -> str:
    """One row per round, and the kept share and kind split of every round side by side."""
    stats = [r.stats for r in rounds]
    rows = [[s["round"], f"{s['samples']:,}", f"{s['tokens']:,}", f"{s['kept']:,}", pct(s["kept_share"]),
             f"{s['samples_zero_kept']:,}", *kind_cells(s)] for s in stats]
    kinds = any(s["kinds"] for s in stats)
    headers = ["round", "samples", "response tokens", "kept", "kept share", "samples with none kept"]
    headers += ["answer kept", "boilerplate dropped", "noise dropped"] if kinds else []
    names = [s["round"] for s in stats]
    charts = [stacked_bars(names, {"kept share": [s["kept_share"] or 0 for s in stats]}, {"kept share": GREEN},
                           "share of response tokens kept", fmt="{:.0%}")]
    if kinds:
        for kind in ("answer", "boilerplate", "noise"):
            shares = [(s["kinds"] or {}).get(kind, {}).get("kept_share") or 0 for s in stats]
            charts.append(stacked_bars(names, {"kept": shares, "dropped": [1 - x if x else 0 for x in shares]},
                                       {"kept": GREEN, "dropped": RED}, f"{kind} tokens kept", fmt="{:.0%}", width=360))
    return (f'<section id="overview"><h2>Overview</h2>{table(headers, rows)}'
            f'<div class="grid2">{"".join(charts)}</div></section>')


def kind_cells(s: dict) -> list[str]:
    if not s["kinds"]:
        return []
    k = s["kinds"]
    share = lambda name, part: (k[name][part] / k[name]["tokens"]) if k[name]["tokens"] else None  # noqa: E731
    return [pct(share("answer", "kept")), pct(share("boilerplate", "dropped")), pct(share("noise", "dropped"))]


def round_section(r: RoundReport) -> str:
    s = r.stats
    name = escape(s["round"])
    parts = [f'<section id="round-{name}" class="round"><h2>Round {name}</h2>',
             f"<p>{s['samples']:,} samples · {s['tokens']:,} response tokens · {s['kept']:,} kept "
             f"({pct(s['kept_share'])}) · {s['samples_zero_kept']:,} samples with no kept token</p>",
             f'<div class="grid2">{"".join(round_charts(s))}</div>', stat_tables(s), samples_block(r), "</section>"]
    return "\n".join(parts)


def round_charts(s: dict) -> list[str]:
    h = s["sample_kept_share"]
    charts = [stacked_bars([f"{e:.1f}" for e in h["edges"][:-1]], {"samples": h["counts"]}, {"samples": GREY},
                           "samples by share of their tokens kept")]
    if s["scores"]:
        sh = s["scores"]["histogram"]
        charts.append(stacked_bars([f"{e:.2f}" for e in sh["edges"][:-1]],
                                   {"kept": sh["kept"], "dropped": sh["dropped"]},
                                   {"kept": GREEN, "dropped": RED}, "response tokens by score"))
    if s["kinds"]:
        k = s["kinds"]
        split = {part: [v[part] for v in k.values()] for part in ("kept", "dropped")}
        charts.append(stacked_bars(list(k), split, {"kept": GREEN, "dropped": RED},
                                   "kept and dropped tokens by ground-truth kind", width=360))
    return charts


def stat_tables(s: dict) -> str:
    out = []
    if s["scores"]:
        keys = ["n", "mean", "min", "p1", "p10", "p25", "p50", "p75", "p90", "p99", "max"]
        rows = [[part] + (["–"] * len(keys) if d is None else [f"{d['n']:,}"] + [f"{d[k]:.3f}" for k in keys[1:]])
                for part, d in s["scores"].items() if part != "histogram"]
        out.append("<div><h3>Score distribution</h3>" + table(["tokens", *keys], rows, "scores") + "</div>")
    if s["kinds"]:
        rows = [[n, f"{k['tokens']:,}", f"{k['kept']:,}", f"{k['dropped']:,}", pct(k["kept_share"])]
                for n, k in s["kinds"].items()]
        out.append("<div><h3>By ground-truth kind</h3>"
                   + table(["kind", "tokens", "kept", "dropped", "kept share"], rows, "kinds") + "</div>")
    for key, title in (("most_dropped", "Most dropped tokens"), ("most_kept", "Most kept tokens")):
        rows = [[t.get("text", ""), t["token_id"], f"{t['count']:,}", f"{t['kept']:,}", f"{t['dropped']:,}",
                 pct(t["kept_rate"])] for t in s[key]]
        out.append(f"<div><h3>{title}</h3>"
                   + table(["token", "id", "count", "kept", "dropped", "kept rate"], rows, key) + "</div>")
    return '<div class="grid2">' + "".join(out) + "</div>"


def samples_block(r: RoundReport) -> str:
    legend = ('<p class="legend tokens"><span class="p">prompt</span><span class="k">kept</span>'
              '<span class="d">dropped</span>'
              "hover a token for its score · ␣ space · ↵ newline · ◌ first bytes of a split character</p>")
    items = []
    for i, (sid, rows) in enumerate(r.samples):
        resp = [t for t in rows if t.response]
        kept = sum(bool(t.keep) for t in resp)
        opened = " open" if i == 0 else ""  # the first sample unfolded: the page shows tokens at once
        items.append(f'<details class="sample" data-id="{escape(sid)}"{opened}><summary>{escape(sid)} · {kept} of '
                     f'{len(resp)} kept</summary><div class="tokens">{tokens_html(rows)}</div></details>')
    return (f'<div class="samples"><h3>Samples ({len(r.samples)} of {r.stats["samples"]:,} shown)</h3>{legend}'
            '<input class="filter" placeholder="filter by sample id">' + "".join(items) + "</div>")


def tokens_html(rows: list[TokenRow]) -> str:
    out, j = [], 0
    for t in rows:
        if not t.response:
            out.append(f'<span class="p{" s" if t.special else ""}">{escape(visible(t.text, spaces=False))}</span>')
            continue
        tip = [f"#{j}", "kept" if t.keep else "dropped", f"score {t.score:.3f}" if t.score is not None else "no score",
               *([t.kind] if t.kind else []), f"id {t.token_id}",
               *([f"bytes {t.split_bytes}"] if t.split_bytes else [])]
        cls = "k" if t.keep else "d"
        out.append(f'<span class="{cls}" title="{escape(" · ".join(tip))}">{escape(visible(t.text))}</span>')
        j += 1
    return "".join(out)
