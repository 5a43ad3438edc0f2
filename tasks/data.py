"""Stage `data@<round>`: the round's tokenised data, from a prepared split or chunk, or from new SFT files.

A prepared table (``out/prepare/*.parquet``, ``out/split/<i>.parquet``) is taken as it is; SFT
files (one file, or a directory of ``.jsonl``/``.json``/``.parquet`` files, as the retrain flow
stores them) are read, checked and rendered exactly like the ``prepare`` stage does.
"""

from __future__ import annotations

from pathlib import Path

from tokenclean.config import Params
from tokenclean.data.prepare import is_prepared, sft_table
from tokenclean.io import copy_table, file_hash, write_json, write_table
from tokenclean.layout import BASE, round_paths
from tokenclean.stage import log, stage_main


def run(params: Params, name: str, base=BASE) -> None:
    """Write out/rounds/<round>/data/pool.parquet and stats.json."""
    paths, source = round_paths(name), Path(params.rounds[name].data)
    if not source.exists():
        raise FileNotFoundError(f"{source}: round data not found; fix the round's 'data' in rounds")
    meta = {"stage": "data", "config": {"round": name, "format": params.data.format,
                                        "max_seq_len": params.data.max_seq_len},
            "inputs": {"source": file_hash(source), "base": file_hash(base)}}
    if is_prepared(source):  # a prepared split or chunk: copied as it is, streamed
        stats = {"samples": copy_table(source, paths.data, meta), "source": "prepared"}
    else:
        from tokenclean.model.modeling import load_tokenizer  # here: a prepared table needs no tokenizer (~3 s)

        table, stats = sft_table(params, source, load_tokenizer(base))
        write_table(table, paths.data, meta)
    write_json(stats, paths.data.parent / "stats.json")
    log.info("round %s: %s", name, stats)


def main(argv=None) -> None:
    stage_main("data", run, argv, per_round=True)


if __name__ == "__main__":
    main()
