"""Where each self-evolving round keeps its artifacts, written once for every evolve_* stage.

    out/evolve/split/<i>.parquet         the prepared pool cut into evolve.chunks chunks
    out/evolve/base/train/model.json     round 0's predecessor: a pointer to out/base
    out/evolve/<round>/data/pool.parquet the round's tokenised data (a chunk, or SFT files)
    out/evolve/<round>/score/            loss_base - loss_model(prev), per response token
    out/evolve/<round>/select/           keep mask, metrics.json, summary.json
    out/evolve/<round>/train/model/      the round's model, trained on from its predecessor's
    out/evolve/<round>/evaluate/         metrics.json, examples.json

DVC templates have no conditionals, so every round depends on ``out/evolve/<prev>/train``
(its predecessor's checkpoint, not its evaluation); the ``evolve_base`` stage gives round 0
such a folder for ``prev: base``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.stage import OUT
from tokenclean.config import Params

EVOLVE = OUT / "evolve"
BASE = OUT / "base"


@dataclass(frozen=True)
class RoundPaths:
    name: str
    root: Path

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
    def model(self) -> Path:
        return self.root / "train" / "model"

    @property
    def evaluate(self) -> Path:
        return self.root / "evaluate"


def round_paths(name: str, evolve: Path = EVOLVE) -> RoundPaths:
    return RoundPaths(name, evolve / name)


def chunk_path(i: int, evolve: Path = EVOLVE) -> Path:
    return evolve / "split" / f"{i}.parquet"


def prev_model(params: Params, name: str, evolve: Path = EVOLVE) -> Path | None:
    """The checkpoint a round starts from and scores against; None for the base itself."""
    prev = params.evolve.rounds[name].prev
    return None if prev == "base" else round_paths(prev, evolve).model


def check_round(params: Params, name: str) -> None:
    if name not in params.evolve.rounds:
        raise ValueError(f"no round '{name}' in evolve.rounds (rounds: {list(params.evolve.rounds)})")
