"""The DVC side of the flows: which stages exist, in what order, running one, reading dvc.lock.

DVC owns staleness and caching: a flow asks DVC to reproduce one stage at a time, and DVC
skips it when nothing it depends on changed. No Prefect here, so this is testable alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

import yaml
from dvc.exceptions import ReproductionError
from dvc.repo import Repo
from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro


@contextlib.contextmanager
def _repo(root: Path):
    old, path = Path.cwd(), os.environ.get("PATH", "")
    os.chdir(root)  # stage commands run from the repository root, like `dvc repro`
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"  # ... and with this environment's python
    try:
        with Repo(str(root)) as repo:
            yield repo
    finally:
        os.chdir(old)
        os.environ["PATH"] = path


def round_of(stage: str) -> str | None:
    """``evolve_train@r2`` -> ``r2``; None for a stage that is not per round."""
    return stage.split("@", 1)[1] if "@" in stage else None


def stage_order(root: Path, targets: list[str] | None = None) -> list[str]:
    """Stages (all, or those the targets need), upstream first, in exactly the order `dvc repro` takes.

    The same order matters: dvc.lock lists stages in the order they first ran, so any other
    order would leave a different (if equivalent) dvc.lock.
    """
    with _repo(root) as repo:
        stages = collect_stages(repo, targets or ["dvc.yaml"])
        return [s.addressing for s in plan_repro(get_active_graph(repo.index.graph), stages)]


class StageFailed(RuntimeError):
    """A stage's command failed; the message ends with what the stage printed."""


@contextlib.contextmanager
def tee_stderr(keep: int = 4000):
    """Stage commands inherit file descriptor 2: pass it through live, and keep its tail."""
    tail = bytearray()
    read_end, write_end = os.pipe()
    saved = os.dup(2)

    def pump():
        while chunk := os.read(read_end, 65536):
            os.write(saved, chunk)
            tail.extend(chunk)
            del tail[:-keep]

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    os.dup2(write_end, 2)
    try:
        yield tail
    finally:
        os.dup2(saved, 2)
        os.close(write_end)
        thread.join()
        os.close(read_end)
        os.close(saved)


def repro(root: Path, stage: str) -> bool:
    """Reproduce one stage if DVC finds it changed; True if it ran."""
    with _repo(root) as repo, tee_stderr() as tail:
        try:
            return bool(repo.reproduce(stage, single_item=True))
        except ReproductionError as err:
            said = tail.decode(errors="replace").strip().splitlines()[-8:]
            raise StageFailed(f"stage '{stage}' failed in {root}:\n" + "\n".join(said)) from err


def lock_hashes(root: Path, stage: str) -> dict[str, str]:
    """``{output path: md5}`` of a stage as recorded in dvc.lock."""
    lock = yaml.safe_load((root / "dvc.lock").read_text()) or {}
    outs = (lock.get("stages") or {}).get(stage, {}).get("outs") or []
    return {o["path"]: o.get("md5", "") for o in outs}
