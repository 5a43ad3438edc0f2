"""Every round side by side: one row of figures per round, and every round's training curve.

The `summary` stage writes these as out/summary/rounds.{json,csv,md} and out/summary/curves.csv (what
`dvc plots` draws); the `report` stage draws the same rows as inline SVG, so the plots also open offline.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tokenclean import columns as C
from tokenclean.audit.difficulty import kept_by_difficulty
from tokenclean.io import read_json
from tokenclean.layout import BASE, round_paths

COLUMNS = ("round", "name", "reference", "start", "samples", "tokens", "tokens_kept", "kept_share", "answer_kept",
           "boilerplate_dropped", "noise_dropped", "score_auc", "zero_kept_share", "kept_q1", "kept_q2", "kept_q3",
           "kept_q4", "train_loss", "eval_loss", "accuracy")
CURVE_COLUMNS = ("round", *C.CURVE)
FLOATS = {"loss", "lr", "grad_norm"}  # the rest of a curve row counts steps and tokens


def round_figures(name: str, root: Path = Path(".")) -> dict:
    """The round's data, selection, training and evaluation figures (its lm-eval tasks included), from the
    small JSON files its stages write."""
    p = round_paths(name)
    select = read_json(root / p.select / "summary.json")
    train = read_json(root / p.model / "meta.json")["train"]
    return {"samples": select["samples"], "tokens": select["tokens"], "tokens_kept": select["tokens_kept"],
            "train_loss": train["final_loss"], **read_json(root / p.select / "metrics.json"),
            **read_json(root / p.metrics)}


def round_row(index: int, name: str, reference: str, start: str, root: Path = Path(".")) -> dict:
    """:func:`round_figures` with the round's place in the chain and its kept share by sample difficulty
    (a pass over its scores)."""
    p = round_paths(name)
    return {"round": index, "name": name, "reference": reference, "start": start, **round_figures(name, root),
            **kept_by_difficulty(root / p.scores, root / p.keep)}


def read_curve(path) -> list[dict]:
    """One training curve (``train/curve.csv``) as rows of numbers; none if the file is missing."""
    try:
        with open(path, newline="") as f:
            return [{k: (float(v) if k in FLOATS else int(v)) for k, v in row.items()}
                    for row in csv.DictReader(f)]
    except FileNotFoundError:  # a checkpoint trained before curves were written
        return []


def curves(names: list[str], root: Path = Path(".")) -> list[dict]:
    """Every round's curve (the tiny base's pretraining first, where there is one), each row tagged with its round."""
    sources = [("base", root / BASE / "curve.csv"), *((n, root / round_paths(n).curve) for n in names)]
    return [{"round": name, **row} for name, path in sources for row in read_curve(path)]
