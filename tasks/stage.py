"""What every stage's ``main()`` shares: argument parsing, logging, seeding, clean failures."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Callable

import torch

from tokenclean.config import ParamsError, load_params
from tokenclean.formats import DataError
from tokenclean.locks import Busy, exclusive

OUT = Path("out")  # every stage writes only under out/<stage>/
# Held by the stage command running in this repository: DVC releases its own repository lock while a
# stage's command runs, so without this a second `dvc repro` or flow could start a stage meanwhile.
STAGE_LOCK = Path(".dvc/tmp/tokenclean-stage.lock")

log = logging.getLogger("tokenclean")


def stage_main(name: str, run: Callable[..., object], argv=None, per_round: bool = False) -> None:
    """Parse ``--params`` (and ``--round`` for the evolve_* stages), run, and turn bad input into exit 2."""
    parser = argparse.ArgumentParser(prog=f"python -m tasks.{name}", description=run.__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if per_round:
        parser.add_argument("--round", required=True, help="a round named in evolve.rounds")
    args = parser.parse_args(argv)
    label = f"{name}@{args.round}" if per_round else name
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {label}: %(message)s", datefmt="%H:%M:%S")
    try:
        with one_stage_at_a_time(label):
            params = load_params(args.params)
            torch.manual_seed(params.seed)
            run(params, args.round) if per_round else run(params)
    except (ParamsError, DataError, FloatingPointError, FileNotFoundError, ValueError, Busy) as err:
        print(f"error in stage '{label}': {err}", file=sys.stderr)
        sys.exit(2)


def one_stage_at_a_time(label: str):
    """The repository's stage lock (:data:`STAGE_LOCK`); none outside a DVC repository, and none in a
    launched data-parallel worker, whose launcher holds it."""
    if not STAGE_LOCK.parent.parent.is_dir() or "LOCAL_RANK" in os.environ:
        return contextlib.nullcontext()
    return exclusive(STAGE_LOCK, f"stage {label}", "another stage is running in this repository (a second "
                     "`dvc repro` or flow?); wait for it to end, then run again")
