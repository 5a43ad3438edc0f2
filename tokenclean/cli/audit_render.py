"""Terminal rendering of the audit (rich): colours for a person, ``--plain`` brackets for a file or a test.

Token text goes into ``rich.text.Text`` objects, never into markup strings, so a token such as
``[/b]`` prints as itself.
"""

from __future__ import annotations

import os
import sys

from rich import box
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from tokenclean.audit.sample import TokenRow
from tokenclean.audit.token_text import visible

PROMPT = "dim"
KEPT = ("green", "bright_green")  # alternating shades, so adjacent tokens stay apart
DROPPED = ("red strike", "bright_red strike")
FLIP = {"both kept": "green", "both dropped": "dim red strike", "kept -> dropped": "black on red",
        "dropped -> kept": "black on green"}
PLAIN = {"both kept": "[{}]", "both dropped": "{{{}}}", "kept -> dropped": "-[{}]", "dropped -> kept": "+[{}]"}


def console(plain: bool) -> Console:
    """Plain: no styles at all and a fixed width (100, or $COLUMNS), so the output is the same on every
    terminal and in a pipe. Tables fold long cells onto more lines rather than cut them (:func:`folding_table`)."""
    if plain:
        width = int(os.environ.get("COLUMNS") or 100)
        return Console(file=sys.stdout, color_system=None, width=width, highlight=False, emoji=False, markup=False)
    return Console(highlight=False, emoji=False, markup=False)


def folding_table(*headers: str, **options) -> Table:
    """A table whose cells wrap at the console's width instead of being cut with an ellipsis."""
    return Table(*(Column(h, overflow="fold") for h in headers), box=box.SIMPLE, **options)


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def token_line(rows: list[TokenRow], plain: bool, marks=None) -> Text:
    """The sample as text: non-response tokens dimmed, response tokens styled (``marks``: diff states)."""
    text, n = Text(), 0
    for t in rows:
        if not t.response:
            text.append(visible(t.text, spaces=False), style=PROMPT)
            continue
        piece = visible(t.text)
        if marks is not None:
            state = marks[n]
            text.append(PLAIN[state].format(piece) if plain else piece, style=FLIP[state])
        else:
            wrap = "[{}]" if t.keep else "{{{}}}"
            text.append(wrap.format(piece) if plain else piece, style=(KEPT if t.keep else DROPPED)[n % 2])
        n += 1
    return text


CUT = "✂ truncated: the conversation was longer than data.max_seq_len and was cut here; the rest was never seen"


def show(con: Console, r, row: int, rows: list[TokenRow], scores: bool = False, plain: bool = False,
         truncated: bool = False) -> None:
    resp = [t for t in rows if t.response]
    kept = sum(bool(t.keep) for t in resp)
    con.print(f"round {r.name} · sample {r.sample_ids[row]} (#{row} of {len(r.sample_ids)}) · "
              f"{len(resp)} response tokens, {kept} kept ({pct(kept / len(resp) if resp else None)})")
    if plain:
        con.print("legend: prompt as is, [kept], {dropped}; ␣ space, ↵ newline, ◌ first bytes of a split character")
    else:
        con.print(Text.assemble(("prompt", PROMPT), "  ", ("kept", KEPT[0]), "  ", ("dropped", DROPPED[0]),
                                "   ␣ space  ↵ newline  ◌ first bytes of a split character"))
    con.print(token_line(rows, plain), soft_wrap=True)
    if truncated:
        con.print(Text(CUT, style="bold yellow"))
    if scores:
        con.print(score_table(resp))


def score_table(resp: list[TokenRow]) -> Table:
    kinds = any(t.kind for t in resp)
    out = Table(box=box.SIMPLE, pad_edge=False)
    for name in ("#", "pos", "token", "kept", "score", *(("kind",) if kinds else ())):
        out.add_column(name, justify="left" if name in ("token", "kind", "kept") else "right", overflow="fold")
    for j, t in enumerate(resp):
        score = "-" if t.score is None else f"{t.score:.3f}"
        token = visible(t.text, newline="↵") + (f" ‹{t.split_bytes}›" if t.split_bytes else "")
        cells = [str(j), str(t.position), Text(token), "yes" if t.keep else "no", score]
        out.add_row(*cells, *((t.kind or "-",) if kinds else ()), style=None if t.keep else "red")
    return out


def stats(con: Console, s: dict) -> None:
    con.rule(f"round {s['round']}")
    con.print(f"{s['samples']:,} samples · {s['tokens']:,} response tokens · {s['kept']:,} kept "
              f"({pct(s['kept_share'])}) · {s['samples_zero_kept']:,} samples with no kept token"
              + (f" (e.g. {', '.join(s['zero_kept_examples'])})" if s["samples_zero_kept"] else ""))
    if s["scores"]:
        section(con, "score distribution", score_dist_table(s["scores"]))
    if s["kinds"]:
        section(con, "by ground-truth kind", kinds_table(s["kinds"]))
    section(con, "most dropped tokens", tokens_table(s["most_dropped"]) if s["most_dropped"] else None)
    section(con, "most kept tokens", tokens_table(s["most_kept"]) if s["most_kept"] else None)
    con.print(histogram("samples by share of their tokens kept", s["sample_kept_share"]))


def section(con: Console, title: str, table: Table | None) -> None:
    con.print(Text(title, style="bold"))
    con.print(table if table is not None else "  (none)\n")


def score_dist_table(scores: dict) -> Table:
    keys = ("n", "mean", "min", "p1", "p10", "p25", "p50", "p75", "p90", "p99", "max")
    table = folding_table("score", *keys, pad_edge=False)
    for part in ("all", "kept", "dropped"):
        d = scores[part]
        table.add_row(part, *(["-"] * len(keys) if d is None else [f"{d['n']:,}"] + [f"{d[k]:.2f}" for k in keys[1:]]))
    return table


def kinds_table(kinds: dict) -> Table:
    table = folding_table("kind", "tokens", "kept", "dropped", "kept share")
    for name, k in kinds.items():
        table.add_row(name, f"{k['tokens']:,}", f"{k['kept']:,}", f"{k['dropped']:,}", pct(k["kept_share"]))
    return table


def tokens_table(rows: list[dict]) -> Table:
    table = folding_table("token", "id", "count", "kept", "dropped", "kept rate")
    for r in rows:
        table.add_row(Text(r.get("text", "")), str(r["token_id"]), f"{r['count']:,}", f"{r['kept']:,}",
                      f"{r['dropped']:,}", pct(r["kept_rate"]))
    return table


def histogram(title: str, h: dict, width: int = 40) -> Text:
    edges, counts = h["edges"], h["counts"]
    top = max(counts) or 1
    lines = [title]
    for lo, hi, c in zip(edges[:-1], edges[1:], counts):
        lines.append(f"  {lo:.1f}-{hi:.1f} │{'█' * round(width * c / top):<{width}} {c:,}")
    return Text("\n".join(lines) + "\n")


def diff(con: Console, d: dict) -> None:
    con.rule(f"{d['a']}  vs  {d['b']}")
    con.print(f"{d['shared_samples']:,} shared samples "
              f"({d['samples_a']:,} in {d['a']}, {d['samples_b']:,} in {d['b']}); "
              f"{d['compared_samples']:,} compared, {d['token_mismatch_samples']:,} left out (different tokens)")
    con.print(f"{d['tokens']:,} tokens · agreement {pct(d['agreement'])} · Jaccard of kept sets "
              f"{'n/a' if d['jaccard'] is None else format(d['jaccard'], '.3f')} "
              f"· kept {d['kept_a']:,} -> {d['kept_b']:,}")
    con.print(f"flipped: {d['kept_to_dropped']:,} kept -> dropped, {d['dropped_to_kept']:,} dropped -> kept, "
              f"in {d['samples_with_flips']:,} samples")
    if not d["tokens"]:
        con.print("nothing to compare: no shared sample with the same response tokens")
        return
    for key, title in (("top_kept_to_dropped", "kept -> dropped"), ("top_dropped_to_kept", "dropped -> kept")):
        table = folding_table("token", "id", "count")
        for r in d[key]:
            table.add_row(Text(r.get("text", "")), str(r["token_id"]), f"{r['count']:,}")
        section(con, f"most frequent tokens flipped {title}", table if d[key] else None)
    if d["kinds"]:
        table = folding_table("kind", "kept -> dropped", "dropped -> kept")
        for name, k in d["kinds"].items():
            table.add_row(name, f"{k['kept_to_dropped']:,}", f"{k['dropped_to_kept']:,}")
        section(con, "flips by ground-truth kind", table)


def diff_example(con: Console, ex: dict, rows: list[TokenRow], keep_b, plain: bool = False) -> None:
    resp = [t for t in rows if t.response]
    marks = [("both " + ("kept" if a else "dropped")) if a == b else ("kept -> dropped" if a else "dropped -> kept")
             for a, b in zip((t.keep for t in resp), keep_b)]
    legend = Text("   ").join(Text(PLAIN[m].format(m)) if plain else Text(m, style=FLIP[m]) for m in PLAIN)
    con.print(Text.assemble("\n", (f"sample {ex['sample_id']}: {ex['flips']} flipped", "bold")), soft_wrap=True)
    con.print(legend, soft_wrap=True)
    con.print(token_line(rows, plain, marks), soft_wrap=True)
