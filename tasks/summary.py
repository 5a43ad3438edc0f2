"""Stage `summary`: one row per round (data, tokens kept, selection and evaluation
metrics) as JSON, as CSV for the DVC plot of metric against round, and as a Markdown table."""

from __future__ import annotations

import csv
import io

from tokenclean.audit.difficulty import kept_by_difficulty
from tokenclean.audit.markdown import markdown_table
from tokenclean.config import Params
from tokenclean.io import atomic_path, read_json, write_json
from tokenclean.layout import SUMMARY, round_paths
from tokenclean.stage import log, stage_main

COLUMNS = ("round", "name", "reference", "start", "samples", "tokens", "tokens_kept", "kept_share", "answer_kept",
           "boilerplate_dropped", "noise_dropped", "score_auc", "zero_kept_share", "kept_q1", "kept_q2", "kept_q3",
           "kept_q4", "train_loss", "eval_loss", "accuracy")


def round_row(index: int, name: str, reference: str, start: str) -> dict:
    p = round_paths(name)
    select, kinds = read_json(p.select / "summary.json"), read_json(p.select / "metrics.json")
    train = read_json(p.model / "meta.json")["train"]
    row = {"round": index, "name": name, "reference": reference, "start": start, "samples": select["samples"],
           "tokens": select["tokens"], "tokens_kept": select["tokens_kept"], "train_loss": train["final_loss"]}
    return {**row, **kinds, **kept_by_difficulty(p.scores, p.keep), **read_json(p.evaluate / "metrics.json")}


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_markdown(rows: list[dict]) -> str:
    cols = [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    return markdown_table(cols, [[fmt(r.get(c)) for c in cols] for r in rows])


def run(params: Params, out=SUMMARY) -> None:
    """Write out/summary/rounds.json, rounds.csv and rounds.md."""
    rows = [round_row(i, name, r.reference, r.start) for i, (name, r) in enumerate(params.rounds.items())]
    write_json(rows, out / "rounds.json")
    for name, text in (("rounds.csv", to_csv(rows)), ("rounds.md", to_markdown(rows))):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text)
    log.info("%d rounds:\n%s", len(rows), to_markdown(rows))


def main(argv=None) -> None:
    stage_main("summary", run, argv)


if __name__ == "__main__":
    main()
