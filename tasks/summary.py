"""Stage `summary`: one row per round (data, tokens kept, selection and evaluation
metrics) as JSON, as CSV for the DVC plots of metric against round, and as a Markdown table;
and every round's training curve in one CSV for the DVC plots of loss against step."""

from __future__ import annotations

from tokenclean.audit.markdown import markdown_table
from tokenclean.audit.rounds import COLUMNS, CURVE_COLUMNS, curves, round_row
from tokenclean.config import Params
from tokenclean.io import atomic_path, write_csv, write_json
from tokenclean.layout import SUMMARY
from tokenclean.stage import log, stage_main


def to_markdown(rows: list[dict]) -> str:
    cols = [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    return markdown_table(cols, [[fmt(r.get(c)) for c in cols] for r in rows])


def run(params: Params, out=SUMMARY) -> None:
    """Write out/summary/rounds.json, rounds.csv, rounds.md and curves.csv."""
    rows = [round_row(i, name, r.reference, r.start) for i, (name, r) in enumerate(params.rounds.items())]
    write_json(rows, out / "rounds.json")
    write_csv(rows, COLUMNS, out / "rounds.csv")
    write_csv(curves(list(params.rounds)), CURVE_COLUMNS, out / "curves.csv")
    with atomic_path(out / "rounds.md") as tmp:
        tmp.write_text(to_markdown(rows))
    log.info("%d rounds:\n%s", len(rows), to_markdown(rows))


def main(argv=None) -> None:
    stage_main("summary", run, argv)


if __name__ == "__main__":
    main()
