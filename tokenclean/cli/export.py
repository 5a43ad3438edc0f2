"""``tokenclean export``: one round's cleaned data as a dataset any trainer takes.

    tokenclean export                               # the fixed round (else the last) -> <round>.cleaned.parquet
    tokenclean export --round r2 --format jsonl     # JSON Lines
    tokenclean export --round fixed --out my.parquet

Columns: sample_id, input_ids, attention_mask, labels (-100 on the prompt and on dropped tokens),
and text with the kept spans between [[ and ]]. The ``export`` stage of dvc.yaml writes every
round's into out/export/; this command writes one round wherever you ask.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tokenclean.cli import described


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a round's cleaned data (Parquet or JSONL) for any trainer",
                       description=described(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--round", help="round to export (default: fixed, else the last round)")
    p.add_argument("--format", choices=("parquet", "jsonl"), default="parquet")
    p.add_argument("--out", type=Path, help="output file (default: <round>.cleaned.<format> here)")
    p.add_argument("--repo", type=Path, default=Path("."), help="the project's root (default: here)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tokenclean.layout import BASE, LocalFiles, default_round, round_names, round_paths
    from tokenclean.method.export import cleaned_batches, write_export
    from tokenclean.model.modeling import load_tokenizer

    root = args.repo
    names = round_names(LocalFiles(root))
    name = args.round or default_round(names)
    if name not in names:
        raise FileNotFoundError(f"round '{name}' has no keep mask; rounds with one: {names or 'none'} (dvc repro)")
    out = args.out or Path(f"{name}.cleaned.{args.format}")
    out = out.with_suffix(f".{args.format}") if out.suffix not in (".parquet", ".jsonl") else out
    paths = round_paths(name)
    batches = cleaned_batches(root / paths.data, root / paths.keep, load_tokenizer(root / BASE))
    rows = write_export(batches, out, {"stage": "export", "config": {"round": name}})
    print(f"{out}: round {name}, {rows} samples")
    return 0
