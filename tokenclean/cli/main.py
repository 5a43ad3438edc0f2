"""Entry point: ``tokenclean <command> ...`` (also ``python -m tokenclean.cli``).

Each command module exposes ``add_parser(subparsers)``, which registers its parser and sets
``func`` (called with the parsed arguments, returns an exit code). Adding a command is one
import and one entry in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import os
import sys

from tokenclean.cli import audit, compare

COMMANDS = (audit, compare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenclean",
                                     description="Token-level data cleaning for SFT: inspect and compare runs.")
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
