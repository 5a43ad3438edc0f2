"""Entry point: ``tokenclean <command> ...`` (also ``python -m tokenclean.cli``).

Each command module exposes ``add_parser(subparsers)``, which registers its parser and sets
``func`` (called with the parsed arguments, returns an exit code). Adding a command is one
import and one entry in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import os
import sys

from tokenclean import __version__
from tokenclean.cli import audit, check, compare, export, init

COMMANDS = (init, check, audit, compare, export)
EXAMPLES = """\
examples:
  tokenclean init --model models/my-model --data data/sft.jsonl   your model and data: params, checks, cost
  tokenclean check                                           model, data and lm-eval tasks, before any training
  tokenclean audit show --round fixed --sample 11 --scores   one sample's kept and dropped tokens
  tokenclean audit stats --round fixed                       what a round kept, by token and kind
  tokenclean audit diff fixed r4                             two rounds over their shared samples
  tokenclean audit show --rev HEAD~1                         the run at an earlier commit, through DVC
  tokenclean compare                                         methods by tasks from DVC experiments
  tokenclean export --round fixed --format jsonl             a round's cleaned data for any trainer
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenclean", epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Token-level data cleaning for SFT: inspect and compare runs.")
    parser.add_argument("--version", action="version", version=f"tokenclean {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
