"""The DVC side of the flows: which stages exist, in what order, running one, reading dvc.lock.

DVC owns staleness and caching: a flow asks DVC to reproduce one stage at a time, and DVC
skips it when nothing it depends on changed. A :class:`Pipeline` holds DVC's repository lock
for as long as it is open, so no `dvc repro` or other flow can slip a stage in between two of
ours; they fail at once instead. DVC lets go of that lock while a stage's command runs; then
the stage lock every stage command holds (:data:`tokenclean.stage.STAGE_LOCK`) stops anything else
from starting a stage. No Prefect here, so this is testable alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import yaml
from dvc.exceptions import ReproductionError
from dvc.lock import LockError
from dvc.repo import Repo, lock_repo
from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro

from tokenclean.locks import Busy, is_held
from tokenclean.stage import STAGE_LOCK


class StageFailed(RuntimeError):
    """A stage's command failed; the message ends with what the stage printed. ``exit_code`` is the
    command's exit status when DVC reported one (2: bad input, which no retry can fix)."""

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        self.exit_code = exit_code


def exit_code_of(err: BaseException) -> int | None:
    """The stage command's exit status, from DVC's "failed to run: ..., exited with N" in the cause chain."""
    while err is not None:
        found = re.search(r"exited with (-?\d+)", str(err))
        if found:
            return int(found.group(1))
        err = err.__cause__ or err.__context__
    return None


def round_of(stage: str) -> str | None:
    """``train@r2`` -> ``r2``; None for a stage that is not per round."""
    return stage.split("@", 1)[1] if "@" in stage else None


class Pipeline:
    """One DVC repository, locked while open; stage commands run from its root with this python."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Pipeline:
        old, path = Path.cwd(), os.environ.get("PATH", "")
        os.chdir(self.root)
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"
        self._stack.callback(os.chdir, old)
        self._stack.callback(os.environ.__setitem__, "PATH", path)
        self.repo = self._stack.enter_context(Repo(str(self.root)))
        try:
            self._stack.enter_context(lock_repo(self.repo))
        except LockError:
            self._stack.close()
            raise Busy(f"{self.root} is in use by another `dvc repro` or flow run; wait for it to end, "
                       "then run again (nothing was changed)") from None
        running = is_held(self.root / STAGE_LOCK)  # DVC lets go of its lock while a stage command runs
        if running:
            self._stack.close()
            raise Busy(f"{self.root}: a `dvc repro` is running a stage ({running}); wait for it to end, "
                       "then run again (nothing was changed)")
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def stage_order(self, targets: list[str] | None = None) -> list[str]:
        """Stages (all, or those the targets need), upstream first, in exactly the order `dvc repro` takes.

        The same order matters: dvc.lock lists stages in the order they first ran, so any other
        order would leave a different (if equivalent) dvc.lock.
        """
        stages = collect_stages(self.repo, targets or ["dvc.yaml"])
        return [s.addressing for s in plan_repro(get_active_graph(self.repo.index.graph), stages)]

    def repro(self, stage: str, on_line: Callable[[str], None] | None = None) -> bool:
        """Reproduce one stage if DVC finds it changed; True if it ran. ``on_line`` gets every line the
        stage's command writes to stderr (its log and progress), as it comes."""
        with tee_stderr(on_line=on_line) as tail:
            try:
                ran = bool(self.repo.reproduce(stage, single_item=True))
            except ReproductionError as err:
                said = tail.decode(errors="replace").strip().splitlines()[-30:]
                raise StageFailed(f"stage '{stage}' failed in {self.root}:\n" + "\n".join(said),
                                  exit_code_of(err)) from err
            finally:
                self.repo._reset()  # dvc.lock changed: forget the cached index before the next stage
        return ran


@contextlib.contextmanager
def tee_stderr(keep: int = 8000, on_line: Callable[[str], None] | None = None):
    """Stage commands inherit file descriptor 2: pass it through live, keep its tail, and hand each
    complete line to ``on_line`` (progress bars redraw with carriage returns: only the last state counts)."""
    tail, partial = bytearray(), bytearray()
    read_end, write_end = os.pipe()
    saved = os.dup(2)

    def pump():
        while chunk := os.read(read_end, 65536):
            os.write(saved, chunk)
            tail.extend(chunk)
            del tail[:-keep]
            if on_line is not None:
                partial.extend(chunk)
                *lines, rest = partial.split(b"\n")
                partial[:] = rest
                for line in lines:
                    text = line.decode(errors="replace").rsplit("\r", 1)[-1].strip()
                    if text:
                        on_line(text)

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


def lock_hashes(root: Path, stage: str) -> dict[str, str]:
    """``{output path: md5}`` of a stage as recorded in dvc.lock."""
    lock = yaml.safe_load((root / "dvc.lock").read_text()) or {}
    outs = (lock.get("stages") or {}).get(stage, {}).get("outs") or []
    return {o["path"]: o.get("md5", "") for o in outs}
