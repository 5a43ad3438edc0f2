"""``tokenclean check``: the checks of the pipeline's ``check`` stage, on demand, before any stage runs.

    tokenclean check                       # params.yaml in this folder
    tokenclean check --params other.yaml

Checks that model.base's tokenizer loads with a chat template and an end-of-sequence token and that
the model embeds all of it, that every record of data.source reads (every problem listed at once),
that the first sample of each split renders, that data.answer is in every record when set, and that
every lm-eval task in evaluate.lm_eval.tasks resolves and has its data. Exit 2 on the first failure.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tokenclean.cli import described


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="check model, data and evaluation tasks before any training",
                       description=described(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    p.add_argument("--repo", type=Path, default=Path("."), help="the project's root (default: here)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tokenclean.params_file import load_params
    from tokenclean.preflight import preflight

    params = load_params(args.params)
    os.chdir(args.repo)  # paths in params (data/, models/, out/) are relative to the project's root
    done = preflight(params, say=lambda what: print(f"ok  {what}", flush=True)).done
    print(f"{len(done)} checks passed")
    return 0
