"""The headline numbers of a token audit, as JSON (reports/tokens.json) and as a Markdown table.

The Markdown is what a Prefect artifact shows next to the link to the full HTML report.
"""

from __future__ import annotations

from tokenclean.audit.markdown import markdown_table

HEADLINE = ("round", "samples", "tokens", "kept", "kept_share", "samples_zero_kept")


def headline(stats: dict) -> dict:
    """One round's headline numbers from :func:`tokenclean.audit.stats.round_stats`."""
    kinds = stats["kinds"] or {}
    shares = {f"{name}_kept_share": k["kept_share"] for name, k in kinds.items()}
    return {**{k: stats[k] for k in HEADLINE}, **shares}


def summary_markdown(summary: dict) -> str:
    """A table of the rounds in ``reports/tokens.json`` and the report's path."""
    rounds = summary["rounds"]
    kinds = [k for k in ("answer_kept_share", "boilerplate_kept_share", "noise_kept_share")
             if any(k in r for r in rounds)]
    head = ["round", "samples", "tokens", "kept share", "samples with none kept", *(k.replace("_", " ") for k in kinds)]
    rows = [[r["round"], f"{r['samples']:,}", f"{r['tokens']:,}", _pct(r["kept_share"]), f"{r['samples_zero_kept']:,}",
             *(_pct(r.get(k)) for k in kinds)] for r in rounds]
    return f"Token audit: `{summary['report']}`\n\n" + markdown_table(head, rows)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"
