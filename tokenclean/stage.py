"""What every stage's ``main()`` shares: argument parsing, logging, seeding, the stage lock, clean failures."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from tokenclean.config import Params
from tokenclean.errors import DataError
from tokenclean.layout import stage_outputs
from tokenclean.locks import Busy, exclusive
from tokenclean.params_file import ParamsError, load_params

# Held by the stage command running in this repository: DVC releases its own repository lock while a
# stage's command runs, so without this a second `dvc repro` or flow could start a stage meanwhile.
STAGE_LOCK = Path(".dvc/tmp/tokenclean-stage.lock")

log = logging.getLogger("tokenclean")


def stage_main(name: str, run: Callable[..., object], argv=None, per_round: bool = False) -> None:
    """Parse ``--params`` (and ``--round`` for the per-round stages), run, and turn bad input into exit 2."""
    parser = argparse.ArgumentParser(prog=f"python -m tasks.{name}", description=run.__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if per_round:
        parser.add_argument("--round", required=True, help="a round named in the params' rounds")
    args = parser.parse_args(argv)
    label = f"{name}@{args.round}" if per_round else name
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {label}: %(message)s", datefmt="%H:%M:%S")
    try:
        with one_stage_at_a_time(label), all_or_nothing(stage_outputs(name, getattr(args, "round", None))):
            params = load_params(args.params)
            if "torch" in sys.modules:  # a stage that uses torch imports it at load; the rest skip its ~1.5 s
                sys.modules["torch"].manual_seed(params.seed)
            if per_round:
                check_round(params, args.round)
                run(params, args.round)
            else:
                run(params)
    except (ParamsError, DataError, FloatingPointError, FileNotFoundError, ValueError, Busy) as err:
        print(f"error in stage '{label}': {err}", file=sys.stderr)
        sys.exit(2)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def all_or_nothing(outputs: list[Path]):
    """A stage's outputs change together or not at all. Each file is already written atomically
    (:func:`tokenclean.io.atomic_path`), but a stage writes several: the previous outputs are
    moved aside first (a rename), and on any failure the new ones are removed and the previous
    ones moved back. Under DVC there is nothing to move aside (it deletes outs before a run), so
    a failed stage leaves no output at all."""
    if "LOCAL_RANK" in os.environ:  # a launched data-parallel worker: its launcher holds the transaction
        yield
        return
    aside = []
    for path in outputs:
        if path.exists():
            previous = path.with_name(f".{path.name}.previous")
            _remove(previous)  # left by a killed run: its outputs were restored or replaced since
            os.replace(path, previous)
            aside.append((path, previous))
    ok = False
    try:
        yield
        ok = True
    except SystemExit as err:
        ok = err.code in (0, None)  # exit 0: a launcher whose workers all succeeded
        raise
    finally:
        for _, previous in aside if ok else ():
            _remove(previous)
        if not ok:
            for path in outputs:
                _remove(path)
            for path, previous in aside:
                os.replace(previous, path)


def check_round(params: Params, name: str) -> None:
    if name not in params.rounds:
        raise ValueError(f"no round '{name}' in rounds (rounds: {list(params.rounds)})")


def one_stage_at_a_time(label: str):
    """The repository's stage lock (:data:`STAGE_LOCK`); none outside a DVC repository, and none in a
    launched data-parallel worker, whose launcher holds it."""
    if not STAGE_LOCK.parent.parent.is_dir() or "LOCAL_RANK" in os.environ:
        return contextlib.nullcontext()
    return exclusive(STAGE_LOCK, f"stage {label}", "another stage is running in this repository (a second "
                     "`dvc repro` or flow?); wait for it to end, then run again")
