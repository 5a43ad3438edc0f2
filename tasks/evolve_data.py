"""Stage `evolve_data`: a round's tokenised data, from a pool chunk or from new SFT files.

A prepared chunk (``out/evolve/split/<i>.parquet``) is taken as is; SFT files (one file,
or a directory of ``.jsonl``/``.json``/``.parquet`` files, as the retrain flow stores them)
are read, checked and rendered exactly like the ``prepare`` stage does.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from tasks.prepare import to_table
from tasks.rounds import BASE, EVOLVE, check_round, round_paths
from tasks.stage import log, stage_main
from tokenclean import columns as C
from tokenclean.config import Params
from tokenclean.formats import SUFFIXES, DataError, normalise, read_records
from tokenclean.io import file_hash, read_table, write_json, write_table
from tokenclean.modeling import load_tokenizer


def is_prepared(path: Path) -> bool:
    return path.suffix == ".parquet" and {C.INPUT_IDS, C.LABELS} <= set(pq.read_schema(path).names)


def sft_files(source: Path) -> list[Path]:
    if not source.exists():
        raise FileNotFoundError(f"{source}: round data not found; fix the round's 'data' in evolve.rounds")
    files = sorted(f for f in source.rglob("*") if f.suffix in SUFFIXES) if source.is_dir() else [source]
    if not files:
        raise DataError(f"{source}: no {'/'.join(SUFFIXES)} files in the round's data directory")
    return files


def round_table(params: Params, source: Path, base: Path):
    """(table, stats) of a round's data in the prepared layout."""
    if is_prepared(source):
        table = read_table(source)
        return table, {"samples": table.num_rows, "source": "prepared"}
    records = [(r, f, i) for f in sft_files(source) for i, r in enumerate(read_records(f))]
    table, stats = to_table(load_tokenizer(base), normalise(records, params.data.format), params.data.max_seq_len)
    if table.num_rows == 0:
        raise DataError(f"{source}: no sample with a response token after truncation; raise data.max_seq_len")
    return table, {**stats, "source": "sft"}


def run(params: Params, name: str, evolve=EVOLVE, base=BASE) -> None:
    """Write out/evolve/<round>/data/pool.parquet and stats.json."""
    check_round(params, name)
    paths = round_paths(name, evolve)
    source = Path(params.evolve.rounds[name].data)
    table, stats = round_table(params, source, base)
    meta = {"stage": "evolve_data", "config": {"round": name, "format": params.data.format,
                                               "max_seq_len": params.data.max_seq_len},
            "inputs": {"source": file_hash(source), "base": file_hash(base)}}
    write_table(table, paths.data, meta)
    write_json(stats, paths.data.parent / "stats.json")
    log.info("round %s: %s", name, stats)


def main(argv=None) -> None:
    stage_main("evolve_data", run, argv, per_round=True)


if __name__ == "__main__":
    main()
