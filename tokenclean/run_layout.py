"""Where a run's rounds keep their artifacts, and which rounds a run has.

A run has rounds. The fixed-model pipeline is one round named ``fixed``; self-evolving
rounds live under ``out/evolve/<round>/``, in the order of ``evolve.rounds`` in
``params.yaml``. Everything here reads through a *files* object, so the same code audits
the workspace (:class:`LocalFiles`) or any git revision (the command line passes a reader
backed by DVC's cache or remote).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from tokenclean.io import read_table

FIXED = "fixed"
EVOLVE_DIR = "out/evolve"
TOKENIZER_DIR = "out/base"


@dataclass(frozen=True)
class RoundPaths:
    """Repository-relative paths of one round's artifacts (POSIX style, as DVC names them)."""

    name: str
    data: str
    scores: str
    keep: str


def round_paths(name: str) -> RoundPaths:
    if name == FIXED:
        return RoundPaths(name, "out/prepare/pool.parquet", "out/score/scores.parquet", "out/select/keep.parquet")
    d = f"{EVOLVE_DIR}/{name}"
    return RoundPaths(name, f"{d}/data/pool.parquet", f"{d}/score/scores.parquet", f"{d}/select/keep.parquet")


class Files(Protocol):
    """Read-only access to a repository's files at one state (workspace or revision)."""

    def read_table(self, path: str, columns: list[str] | None = None) -> pa.Table: ...
    def column_names(self, path: str) -> list[str]: ...
    def read_text(self, path: str) -> str: ...
    def exists(self, path: str) -> bool: ...
    def subdirs(self, path: str) -> list[str]: ...
    def local_dir(self, path: str, dest: Path, skip=()) -> Path: ...


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


def evolve_order(params: dict | None) -> list[str]:
    """Round names in ``evolve.rounds`` order: a mapping name -> {prev, ...}, or a list of names or {name: ...}."""
    rounds = ((params or {}).get("evolve") or {}).get("rounds") or []
    if isinstance(rounds, dict):
        return [str(k) for k in rounds]
    return [str(r["name"]) if isinstance(r, dict) else str(r) for r in rounds]


def round_names(files: Files, order: list[str] | None = None) -> list[str]:
    """``fixed``, then the self-evolving rounds in order, each only once its keep mask exists.

    ``order`` defaults to ``evolve.rounds`` of the run's ``params.yaml``; rounds found on disk
    but not listed (or with no params file) follow in natural order of their folder names.
    A round still running (data but no mask yet) is left out.
    """
    if order is None:
        params = yaml.safe_load(files.read_text("params.yaml")) if files.exists("params.yaml") else None
        order = evolve_order(params if isinstance(params, dict) else None)
    found = sorted(files.subdirs(EVOLVE_DIR), key=natural_key) if files.exists(EVOLVE_DIR) else []
    evolve = [n for n in order if n in found] + [n for n in found if n not in order]
    return [n for n in [FIXED, *evolve] if files.exists(round_paths(n).keep)]


def default_round(names: list[str]) -> str:
    """``fixed`` when it exists, else the last self-evolving round."""
    if not names:
        raise FileNotFoundError("no round found: neither out/select/keep.parquet nor out/evolve/<round>/select/ "
                                "exists; run the pipeline first (dvc repro)")
    return FIXED if FIXED in names else names[-1]

