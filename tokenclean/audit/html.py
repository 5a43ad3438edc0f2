"""The token audit of a run as one self-contained HTML page (inline CSS, SVG and a few lines of script).

Input is what the terminal audit shows: per-round statistics (:mod:`tokenclean.audit.stats`)
and token rows of some samples (:mod:`tokenclean.audit.sample`). Nothing is fetched at view
time, so the file can be archived with its run and opened anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

from tokenclean.audit.rounds import COLUMNS
from tokenclean.audit.sample import Sample, TokenRow
from tokenclean.audit.svg import curve_chart, line_chart, stacked_bars
from tokenclean.audit.token_text import visible

GREEN, RED, GREY = "#3a9d5d", "#d9534f", "#8a8f98"
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")
TINT_POS, TINT_NEG = (58, 157, 93), (217, 83, 79)  # a score's tint: the reference improved on the base, or not
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
.tokens .k{background:var(--t);box-shadow:inset 0 -2px #3a9d5d}
.tokens .d{background:var(--t);color:#8a1c1c;text-decoration:line-through;box-shadow:inset -1px 0 #fff}
.bykeep .tokens .k{background:#c9efd4} .bykeep .tokens .d{background:#f8d0cf}
.tokens .cut{background:#fff3cd;color:#7a5b00;font-style:italic;padding:0 4px} .trunc{color:#7a5b00}
details{margin:4px 0} summary{cursor:pointer} .muted{color:#777} .legend span{padding:0 6px;margin-right:6px}
.grad{display:inline-block;width:160px;height:12px;vertical-align:middle;border:1px solid #ccc}
.toolbar{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:6px 0} .toolbar input.filter{width:220px}
.follow h4{margin:8px 0 2px}
"""
SCRIPT = """
function samplesIn(list) { return Array.prototype.slice.call(list.querySelectorAll(':scope > details.sample')); }
function num(d, key) { var v = parseFloat(d.dataset[key]); return isNaN(v) ? null : v; }
document.querySelectorAll('.samples').forEach(function (block) {
  var list = block.querySelector('.list');
  block.querySelector('button.expand').addEventListener('click', function () {
    samplesIn(list).forEach(function (d) { d.open = true; });
  });
  block.querySelector('button.collapse').addEventListener('click', function () {
    samplesIn(list).forEach(function (d) { d.open = false; });
  });
  block.querySelector('select.sort').addEventListener('change', function (e) {
    var parts = e.target.value.split('-'), key = parts[0], sign = parts[1] === 'desc' ? -1 : 1;
    var items = samplesIn(list);
    items.sort(function (a, b) {
      var x = num(a, key), y = num(b, key);
      if (x === null || y === null) { return (x === null) - (y === null) || num(a, 'i') - num(b, 'i'); }
      return sign * (x - y) || num(a, 'i') - num(b, 'i');
    });
    items.forEach(function (d) { list.appendChild(d); });
  });
  block.querySelector('input.filter').addEventListener('input', function (e) {
    var q = e.target.value.toLowerCase();
    samplesIn(list).forEach(function (d) {
      var text = (d.dataset.id + ' ' + d.querySelector('.tokens').textContent).toLowerCase();
      d.style.display = text.indexOf(q) >= 0 ? '' : 'none';
    });
  });
});
document.querySelectorAll('input.bykeep').forEach(function (box) {
  box.addEventListener('change', function () { document.body.classList.toggle('bykeep', box.checked); });
});
"""


@dataclass(frozen=True)
class RoundReport:
    stats: dict  # tokenclean.audit.stats.round_stats
    samples: list[Sample]  # the samples shown
    figures: dict = field(default_factory=dict)  # tokenclean.audit.rounds.round_figures: training and evaluation
    curve: list[dict] = field(default_factory=list)  # the round's training curve, one row per step


@dataclass(frozen=True)
class Followed:
    """One sample in every round that has it."""

    id: str
    rounds: list[tuple[str, Sample, float]]  # (round, the sample there, the round's tint scale)


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def table(headers: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_report(rounds: list[RoundReport], title: str = "Token audit", note: str = "",
                  follow: list[Followed] = ()) -> str:
    nav = "".join(f'<a href="#round-{escape(r.stats["round"])}">{escape(r.stats["round"])}</a>' for r in rounds)
    body = [f"<h1>{escape(title)}</h1>", f'<p class="muted">{escape(note)}</p>' if note else "",
            f'<nav>rounds: {nav} · <a href="#plots">plots</a> · <a href="#follow">across rounds</a></nav>',
            overview(rounds), plots(rounds), *(round_section(r) for r in rounds), follow_section(follow)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + f"\n<script>{SCRIPT}</script>\n</body></html>\n")


FIGURES = {"eval_loss": ("held-out loss", "{:.3f}"), "accuracy": ("accuracy", "{:.3f}"),
           "score_auc": ("score AUC", "{:.3f}")}


def task_keys(rounds: list[RoundReport]) -> list[str]:
    """Evaluation figures beyond :data:`FIGURES` (lm-eval tasks), in first-seen order."""
    own = {*COLUMNS, *FIGURES}
    keys = [k for r in rounds for k, v in r.figures.items() if k not in own and isinstance(v, int | float)]
    return list(dict.fromkeys(keys))


def present(v):
    """``v``, or None where it is missing or NaN (an evaluation figure that could not be computed)."""
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def figure(v, fmt: str = "{:.3f}") -> str:
    return "–" if present(v) is None else fmt.format(v)


def overview(rounds: list[RoundReport]) -> str:
    """One row per round, and the kept share and kind split of every round side by side."""
    stats = [r.stats for r in rounds]
    tasks = task_keys(rounds)
    rows = [[s["round"], f"{s['samples']:,}", f"{s['tokens']:,}", f"{s['kept']:,}", pct(s["kept_share"]),
             f"{s['samples_zero_kept']:,}", *kind_cells(s),
             *(figure(r.figures.get(k), f) for k, (_, f) in FIGURES.items()),
             *(figure(r.figures.get(k)) for k in tasks)]
            for s, r in zip(stats, rounds)]
    kinds = any(s["kinds"] for s in stats)
    headers = ["round", "samples", "response tokens", "kept", "kept share", "samples with none kept"]
    headers += ["answer kept", "boilerplate dropped", "noise dropped"] if kinds else []
    headers += [name for name, _ in FIGURES.values()] + tasks
    names = [s["round"] for s in stats]
    charts = [stacked_bars(names, {"kept share": [s["kept_share"] or 0 for s in stats]}, {"kept share": GREEN},
                           "share of response tokens kept", fmt="{:.0%}")]
    if kinds:
        for kind in ("answer", "boilerplate", "noise"):
            shares = [(s["kinds"] or {}).get(kind, {}).get("kept_share") or 0 for s in stats]
            charts.append(stacked_bars(names, {"kept": shares, "dropped": [1 - x if x else 0 for x in shares]},
                                       {"kept": GREEN, "dropped": RED}, f"{kind} tokens kept", fmt="{:.0%}", width=360))
    return (f'<section id="overview"><h2>Overview</h2>{table(headers, rows, "overview")}'
            f'<div class="grid2">{"".join(charts)}</div></section>')


ROUND_PLOTS = {"eval_loss": "held-out loss", "accuracy": "free-generation accuracy", "kept_share": "share kept",
               "answer_kept": "answer tokens kept", "noise_dropped": "noise tokens dropped", "score_auc": "score AUC"}
CURVE_PLOTS = {"loss": "training loss", "lr": "learning rate", "grad_norm": "gradient norm (before clipping)",
               "kept_tokens": "kept tokens per step"}


def plots(rounds: list[RoundReport]) -> str:
    """What `dvc plots show` draws, as inline SVG: one chart per figure against round (by name), and the
    training curves of every round against optimizer step."""
    names = [r.stats["round"] for r in rounds]
    charts = []
    for key, title in ROUND_PLOTS.items():
        values = [present(r.figures.get(key)) for r in rounds]
        if any(v is not None for v in values):
            charts.append(line_chart(list(range(len(names))), {title: values}, {title: PALETTE[0]}, title, "round",
                                     fmt="{:.3f}", width=360, height=220, x_names=names))
    colors = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    curves = {r.stats["round"]: r.curve for r in rounds if r.curve}
    for key, title in CURVE_PLOTS.items():
        series = {n: [(row["step"], row[key]) for row in c] for n, c in curves.items()}
        charts.append(curve_chart(series, {n: colors[n] for n in series}, title, "optimizer step"))
    empty = "" if curves else '<p class="muted">No training curves (checkpoints trained before curves were kept).</p>'
    return f'<section id="plots"><h2>Plots</h2>{empty}<div class="grid2">{"".join(charts)}</div></section>'


def kind_cells(s: dict) -> list[str]:
    if not s["kinds"]:
        return []
    k = s["kinds"]
    share = lambda name, part: (k[name][part] / k[name]["tokens"]) if k[name]["tokens"] else None  # noqa: E731
    return [pct(share("answer", "kept")), pct(share("boilerplate", "dropped")), pct(share("noise", "dropped"))]


def round_section(r: RoundReport) -> str:
    s = r.stats
    name = escape(s["round"])
    evals = " · ".join(f"{label} {figure(r.figures[k], f)}" for k, (label, f) in FIGURES.items() if k in r.figures)
    parts = [f'<section id="round-{name}" class="round"><h2>Round {name}</h2>',
             f"<p>{s['samples']:,} samples · {s['tokens']:,} response tokens · {s['kept']:,} kept "
             f"({pct(s['kept_share'])}) · {s['samples_zero_kept']:,} samples with no kept token"
             + (f" · {evals}" if evals else "") + "</p>",
             f'<div class="grid2">{"".join(round_charts(s))}</div>', stat_tables(s), samples_block(r), "</section>"]
    return "\n".join(parts)


def round_charts(s: dict) -> list[str]:
    h = s["sample_kept_share"]
    charts = [stacked_bars([f"{e:.1f}" for e in h["edges"][:-1]], {"samples": h["counts"]}, {"samples": GREY},
                           "samples by share of their tokens kept")]
    if s["scores"]:
        sh = s["scores"]["histogram"]
        edges = sh["edges"]
        centres = [f"{(a + b) / 2:.2g}" for a, b in zip(edges, edges[1:])]
        ranges = [f"score {a:.3g} to {b:.3g}" for a, b in zip(edges, edges[1:])]
        charts.append(stacked_bars(centres, {"kept": sh["kept"], "dropped": sh["dropped"]},
                                   {"kept": GREEN, "dropped": RED}, "response tokens by score (log scale)",
                                   log=True, tips=ranges, labels=6))
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


def tint_scale(stats: dict) -> float:
    """The |score| that gets full colour: the larger of the 1st and 99th percentiles' magnitudes, so a
    few extreme tokens do not wash out the rest."""
    d = (stats.get("scores") or {}).get("all")
    return max(abs(d["p1"]), abs(d["p99"]), 1e-6) if d else 1.0


def legend(scale: float) -> str:
    neg, pos = (f"rgba({r},{g},{b},0.85)" for r, g, b in (TINT_NEG, TINT_POS))
    return (f'<p class="legend tokens"><span class="p">prompt</span> score '
            f'<span>{-scale:.2g}</span><span class="grad" style="background:linear-gradient(90deg,{neg},#fff,{pos})">'
            f'</span><span>+{scale:.2g}</span> <span class="k" style="--t:#fff">kept (underlined)</span>'
            f'<span class="d" style="--t:#fff">dropped (struck)</span> ✂ truncated · hover a token for its '
            "score · ␣ space · ↵ newline · ◌ first bytes of a split character</p>")


def samples_block(r: RoundReport) -> str:
    scale = tint_scale(r.stats)
    items = [sample_html(sample, scale, i, opened=i == 0) for i, sample in enumerate(r.samples)]
    toolbar = ('<div class="toolbar"><button class="expand">expand all</button>'
               '<button class="collapse">collapse all</button><label>sort by <select class="sort">'
               '<option value="i-asc">file order</option><option value="kept-asc">kept share, lowest first</option>'
               '<option value="kept-desc">kept share, highest first</option>'
               '<option value="score-asc">mean score, lowest first</option>'
               '<option value="score-desc">mean score, highest first</option></select></label>'
               '<input class="filter" placeholder="filter: sample id or token text">'
               '<label><input type="checkbox" class="bykeep"> colour by kept/dropped</label></div>')
    return (f'<div class="samples"><h3>Samples ({len(r.samples)} of {r.stats["samples"]:,} shown)</h3>'
            f'{legend(scale)}{toolbar}<div class="list">' + "".join(items) + "</div></div>")


def sample_html(sample: Sample, scale: float, i: int, opened: bool = False) -> str:
    resp = [t for t in sample.rows if t.response]
    kept = sum(bool(t.keep) for t in resp)
    scores = [t.score for t in resp if t.score is not None]
    mean = sum(scores) / len(scores) if scores else None
    share = f"{kept / len(resp):.6g}" if resp else ""
    cut = ' · <span class="trunc">✂ truncated</span>' if sample.truncated else ""
    sid = escape(sample.id)
    return (f'<details class="sample" data-id="{sid}" data-i="{i}" data-kept="{share}" '
            f'data-score="{"" if mean is None else f"{mean:.6g}"}"{" open" if opened else ""}><summary>{sid} · '
            f'{kept} of {len(resp)} kept{"" if mean is None else f" · mean score {mean:.3f}"}{cut}</summary>'
            f'<div class="tokens">{tokens_html(sample.rows, scale, sample.truncated)}</div></details>')


def follow_section(follow: list[Followed]) -> str:
    """A few samples shown in every round that holds them (the fixed round and the self-evolving round
    whose chunk has it, for example): how each round's reference judged the same tokens."""
    if not follow:
        return ""
    items = []
    for f in follow:
        views = "".join(f'<h4>round {escape(name)}</h4><div class="tokens">{tokens_html(s.rows, scale, s.truncated)}'
                        "</div>" for name, s, scale in f.rounds)
        items.append(f'<details class="sample follow" data-id="{escape(f.id)}"><summary>{escape(f.id)} · in rounds '
                     f'{", ".join(escape(n) for n, _, _ in f.rounds)}</summary>{views}</details>')
    return (f'<section id="follow"><h2>Across rounds</h2><p class="muted">{len(follow)} samples, each in every '
            "round whose data holds it.</p>" + "".join(items) + "</section>")


def tint(score: float | None, scale: float) -> str:
    if score is None or not math.isfinite(score) or score == 0:
        return "#fff"
    r, g, b = TINT_POS if score > 0 else TINT_NEG
    return f"rgba({r},{g},{b},{min(1.0, abs(score) / scale) * 0.85:.2f})"


def tokens_html(rows: list[TokenRow], scale: float = 1.0, truncated: bool = False) -> str:
    out, j = [], 0
    for t in rows:
        if not t.response:
            out.append(f'<span class="p{" s" if t.special else ""}">{escape(visible(t.text, spaces=False))}</span>')
            continue
        tip = [f"#{j}", "kept" if t.keep else "dropped", f"score {t.score:.3f}" if t.score is not None else "no score",
               *([t.kind] if t.kind else []), f"id {t.token_id}",
               *([f"bytes {t.split_bytes}"] if t.split_bytes else [])]
        cls = "k" if t.keep else "d"
        out.append(f'<span class="{cls}" style="--t:{tint(t.score, scale)}" title="{escape(" · ".join(tip))}">'
                   f"{escape(visible(t.text))}</span>")
        j += 1
    if truncated:
        out.append('<span class="cut" title="longer than data.max_seq_len: cut here when prepared; the rest was '
                   'never scored or trained on">✂ truncated</span>')
    return "".join(out)
