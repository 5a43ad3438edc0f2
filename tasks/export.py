"""Stage `export`: every round's cleaned data as out/export/<round>.parquet (and .jsonl on request):
``sample_id``, ``input_ids``, ``attention_mask``, ``labels`` (-100 on the prompt and on dropped
tokens) and ``text`` with the kept spans marked, for training with any trainer."""

from __future__ import annotations

from tokenclean.config import Params
from tokenclean.io import file_hash, iter_batches
from tokenclean.layout import BASE, exported, round_paths
from tokenclean.method.export import cleaned_batches, write_export
from tokenclean.model.modeling import load_tokenizer
from tokenclean.stage import log, stage_main


def run(params: Params, base=BASE) -> None:
    """Write out/export/<round>.parquet for every round (and .jsonl with export.jsonl)."""
    tok = load_tokenizer(base)
    for name in params.rounds:
        paths = round_paths(name)
        meta = {"stage": "export", "config": {"round": name},
                "inputs": {"data": file_hash(paths.data), "keep": file_hash(paths.keep)}}
        rows = write_export(cleaned_batches(paths.data, paths.keep, tok), exported(name), meta)
        if params.export.jsonl:  # the same rows, read back rather than cleaned and decoded again
            write_export(iter_batches(exported(name)), exported(name, "jsonl"), meta)
        log.info("round %s: %d samples -> %s", name, rows, exported(name))


def main(argv=None) -> None:
    stage_main("export", run, argv)


if __name__ == "__main__":
    main()
