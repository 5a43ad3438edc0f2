"""Crash recovery: training checkpoints and scoring shards in a scratch folder outside DVC outputs.

DVC deletes a stage's outputs before it runs the stage again, so state worth resuming from
lives elsewhere: ``<recovery.dir>/<stage>/<key>/``. The key hashes everything the result
depends on (params, seed, input data, start weights), so a rerun with other inputs never
resumes from stale state; it starts over in a folder of its own. A stage that finishes
removes its folder. Every write is atomic: a kill mid-write leaves the previous state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tokenclean.io import atomic_path, file_hash
from tokenclean.model import distributed

log = logging.getLogger(__name__)

LATEST = "latest"  # names the newest complete training checkpoint folder


def run_key(**parts) -> str:
    """A short hash of JSON-able ``parts``; paths count by their content (:func:`file_hash`)."""
    text = json.dumps({k: file_hash(v) if isinstance(v, Path) else v for k, v in parts.items()},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scratch(root: str | Path, stage: str, **parts) -> Path:
    return Path(root) / stage / run_key(**parts)


def clear(folder: Path | None) -> None:
    """Remove a finished stage's scratch folder (and its stage folder once empty)."""
    if folder is None or not distributed.is_main():
        return
    shutil.rmtree(folder, ignore_errors=True)
    stage_dir = folder.parent
    if stage_dir.is_dir() and not any(stage_dir.iterdir()):
        stage_dir.rmdir()


class TrainState:
    """Save and restore everything an optimizer step depends on: trainable weights, AdamW moments,
    the learning-rate schedule, RNG states and the training curve so far. Resuming is bit-identical on CPU.

    ``folder=None`` or ``every=0`` turns checkpointing off.
    """

    def __init__(self, folder: Path | None, every: int):
        self.folder, self.every = folder, every

    def restore(self, model, opt, sched) -> tuple[int, list[dict]]:
        """(steps done, their curve rows) of the newest checkpoint, loaded into the objects; (0, []) if none."""
        pointer = self.folder / LATEST if self.folder else None
        if pointer is None or not pointer.exists():
            return 0, []
        ckpt = self.folder / pointer.read_text().strip()
        meta = json.loads((ckpt / "state.json").read_text())
        tensors = load_file(ckpt / "state.safetensors")
        for name, p in _trainable(model).items():
            p.data.copy_(tensors[f"param.{name}"])
        state = {int(i): {k: tensors[f"opt.{i}.{k}"] for k in keys} for i, keys in meta["opt_keys"].items()}
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        sched.load_state_dict(meta["sched"])
        torch.set_rng_state(tensors["rng.cpu"])
        if torch.cuda.is_available() and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        log.info("resuming from step %d of an interrupted run (%s)", meta["step"], ckpt)
        return meta["step"], meta["curve"]

    def after_step(self, step: int, total: int, model, opt, sched, curve: list[dict]) -> None:
        if self.folder is not None and self.every > 0 and step % self.every == 0 and step < total:
            self.save(step, model, opt, sched, curve)

    def save(self, step: int, model, opt, sched, curve: list[dict]) -> None:
        if not distributed.is_main():
            return
        sd = opt.state_dict()
        tensors = {f"param.{n}": p.detach().contiguous() for n, p in _trainable(model).items()}
        tensors.update({f"opt.{i}.{k}": v.contiguous() for i, s in sd["state"].items() for k, v in s.items()})
        tensors["rng.cpu"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        meta = {"step": step, "curve": curve, "sched": sched.state_dict(), "param_groups": sd["param_groups"],
                "opt_keys": {str(i): sorted(s) for i, s in sd["state"].items()}}
        name = f"step-{step:08d}"
        with atomic_path(self.folder / name) as tmp:
            tmp.mkdir()
            save_file({k: v.cpu() for k, v in tensors.items()}, tmp / "state.safetensors")
            (tmp / "state.json").write_text(json.dumps(meta))
        with atomic_path(self.folder / LATEST) as tmp:  # the pointer moves only once the folder is complete
            tmp.write_text(name)
        for old in self.folder.glob("step-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)


def _trainable(model) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


@dataclass
class Shards:
    """Where a scoring pass keeps its finished shards (``folder=None``: nowhere), and their size."""

    folder: Path | None
    tokens: int

    def load(self, name: str) -> dict[int, np.ndarray] | None:
        """A finished shard's {row: float32 per-token NLL}, or None if it is not there."""
        path = self.folder / f"{name}.safetensors" if self.folder is not None else None
        if path is None or not path.exists():
            return None
        t = {k: v.numpy() for k, v in load_file(path).items()}
        parts = np.split(t["values"], np.cumsum(t["lengths"])[:-1]) if len(t["rows"]) else []
        return {int(r): part for r, part in zip(t["rows"], parts)}

    def save(self, name: str, rows: dict[int, np.ndarray]) -> None:
        """One finished shard, ragged: row ids, lengths and the values end to end. Every process saves
        its own shards (their names carry the rank)."""
        if self.folder is None:
            return
        order = sorted(rows)
        flat = np.concatenate([rows[r] for r in order]) if order else np.zeros(0, np.float32)
        with atomic_path(self.folder / f"{name}.safetensors") as tmp:
            save_file({"rows": torch.tensor(order, dtype=torch.int64),
                       "lengths": torch.tensor([len(rows[r]) for r in order], dtype=torch.int64),
                       "values": torch.from_numpy(np.ascontiguousarray(flat, np.float32))}, tmp)
