"""Every artifact path of a run, in one place: stages, flows, the audit, the comparison and the
command line ask here, and no other code spells an output path.

    out/generate/{warmup,pool,eval,pretrain}.jsonl   the offline default data (synthetic source only)
    out/base/                                        the base model (weights + tokenizer, or source.json;
                                                     curve.csv when the tiny base is pretrained here)
    out/prepare/{warmup,pool,eval}.parquet           tokenised splits, stats.json, lm_eval/
    out/split/<i>.parquet                            the pool cut into split.chunks chunks
    out/rounds/base/train/model.json                 the base as a round's reference or start (a pointer)
    out/rounds/<round>/data/pool.parquet             the round's tokenised data
    out/rounds/<round>/score/scores.parquet          loss_base - loss_reference per response token
    out/rounds/<round>/select/keep.parquet           keep mask, metrics.json, summary.json
    out/rounds/<round>/train/model/                  the round's model; train/curve.csv, one row per step
    out/rounds/<round>/evaluate/                     metrics.json, examples.json, lm_eval.json
    out/summary/rounds.{json,csv,md}                 one row per round
    out/summary/curves.csv                           every round's training curve (what `dvc plots` draws)
    out/export/<round>.{parquet,jsonl}               each round's cleaned data, for any trainer
    reports/tokens.{html,json}                       the token audit

Paths are relative to the repository root. The audit reads them through a *files* object, so the
same code reads the workspace (:class:`LocalFiles`) or any git revision (the command line passes a
reader backed by DVC's cache or remote).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from tokenclean.io import read_table

DATA = Path("data")  # the user's SFT files (or links to them): a dependency of prepare
MODELS = Path("models")  # local base models (or links to them): a dependency of base
OUT = Path("out")
GENERATE = OUT / "generate"
BASE = OUT / "base"  # also the tokenizer of every round
CHECK = OUT / "check"
PREPARE = OUT / "prepare"
SPLIT = OUT / "split"
ROUNDS = OUT / "rounds"
SUMMARY = OUT / "summary"
EXPORT = OUT / "export"
REPORTS = Path("reports")
BASE_ROUND = "base"  # the name rounds use for the base model as reference or start
FIXED = "fixed"  # the fixed-model round


def prepared(split: str) -> Path:
    """``out/prepare/<split>.parquet`` for split warmup, pool or eval."""
    return PREPARE / f"{split}.parquet"


def chunk(i: int) -> Path:
    return SPLIT / f"{i}.parquet"


@dataclass(frozen=True)
class RoundPaths:
    """One round's artifacts, relative to the repository root."""

    name: str

    @property
    def root(self) -> Path:
        return ROUNDS / self.name

    @property
    def data(self) -> Path:
        return self.root / "data" / "pool.parquet"

    @property
    def scores(self) -> Path:
        return self.root / "score" / "scores.parquet"

    @property
    def select(self) -> Path:
        return self.root / "select"

    @property
    def keep(self) -> Path:
        return self.select / "keep.parquet"

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def model(self) -> Path:
        return self.train / "model"

    @property
    def curve(self) -> Path:
        return self.train / "curve.csv"

    @property
    def evaluate(self) -> Path:
        return self.root / "evaluate"

    @property
    def metrics(self) -> Path:
        return self.evaluate / "metrics.json"


def round_paths(name: str) -> RoundPaths:
    return RoundPaths(name)


def model_dir(name: str) -> Path | None:
    """The checkpoint of round ``name``; None for the base itself (loaded from :data:`BASE`)."""
    return None if name == BASE_ROUND else round_paths(name).model


class Files(Protocol):
    """Read-only access to a repository's files at one state (workspace or revision)."""

    def read_table(self, path: str | PurePath, columns: list[str] | None = None) -> pa.Table: ...
    def column_names(self, path: str | PurePath) -> list[str]: ...
    def read_text(self, path: str | PurePath) -> str: ...
    def exists(self, path: str | PurePath) -> bool: ...
    def subdirs(self, path: str | PurePath) -> list[str]: ...
    def local_dir(self, path: str | PurePath, dest: Path, skip=()) -> Path: ...


class LocalFiles:
    """The working tree of a repository (what a DVC stage sees)."""

    def __init__(self, root: str | Path = "."):
        self.root = Path(root)

    def read_table(self, path, columns=None):
        return read_table(self.root / path, columns)

    def column_names(self, path):
        if not (self.root / path).exists():
            raise FileNotFoundError(f"{self.root / path}: missing artifact; run the stage that writes it (dvc repro)")
        return pq.read_schema(self.root / path).names

    def read_text(self, path):
        return (self.root / path).read_text()

    def exists(self, path):
        return (self.root / path).exists()

    def subdirs(self, path):
        p = self.root / path
        return sorted(c.name for c in p.iterdir() if c.is_dir()) if p.is_dir() else []

    def local_dir(self, path, dest, skip=()):
        return self.root / path  # already on disk: nothing to copy


def natural_key(name: str):
    """r2 before r10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def round_order(params: dict | None) -> list[str]:
    """Round names in the order of ``rounds`` in a params file read as plain YAML (any revision)."""
    rounds = (params or {}).get("rounds") or {}
    return [str(k) for k in rounds] if isinstance(rounds, dict) else []


def round_names(files: Files, order: list[str] | None = None) -> list[str]:
    """The run's rounds in ``rounds`` order, each only once its keep mask exists.

    ``order`` defaults to the ``rounds`` of the run's own ``params.yaml``; rounds found on disk but
    not listed (or with no params file) follow in natural order of their folder names. A round
    still running (data but no mask yet) is left out.
    """
    if order is None:
        params = yaml.safe_load(files.read_text("params.yaml")) if files.exists("params.yaml") else None
        order = round_order(params if isinstance(params, dict) else None)
    found = sorted(files.subdirs(ROUNDS), key=natural_key)
    return [n for n in [*order, *(n for n in found if n not in order)] if files.exists(round_paths(n).keep)]


def default_round(names: list[str]) -> str:
    """``fixed`` when it exists, else the last round."""
    if not names:
        raise FileNotFoundError(f"no round found: no {ROUNDS}/<round>/select/keep.parquet exists; "
                                "run the pipeline first (dvc repro)")
    return FIXED if FIXED in names else names[-1]


def exported(name: str, fmt: str = "parquet") -> Path:
    """``out/export/<round>.<fmt>``: a round's cleaned data as a trainer takes it."""
    return EXPORT / f"{name}.{fmt}"


def stage_outputs(stage: str, name: str | None = None) -> list[Path]:
    """Every path stage ``stage`` (of round ``name``) writes: its outs, metrics and plots in dvc.yaml
    (a test holds the two equal). A stage changes them together or not at all (:mod:`tokenclean.stage`)."""
    r = round_paths(name or BASE_ROUND)
    return {
        "generate": [GENERATE], "base": [BASE, round_paths(BASE_ROUND).train], "check": [CHECK], "prepare": [PREPARE],
        "split": [SPLIT],
        "data": [r.data.parent], "score": [r.scores.parent],
        "select": [r.keep, r.select / "summary.json", r.select / "metrics.json"], "train": [r.train],
        "evaluate": [r.evaluate / "examples.json", r.evaluate / "lm_eval.json", r.metrics],
        "summary": [SUMMARY / "rounds.json", SUMMARY / "rounds.md", SUMMARY / "rounds.csv", SUMMARY / "curves.csv"],
        "report": [REPORTS / "tokens.html", REPORTS / "tokens.json"], "export": [EXPORT],
    }[stage]
