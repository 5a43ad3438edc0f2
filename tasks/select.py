"""Stage `select@<round>`: the round's keep mask over its response tokens, plus metrics and a summary."""

from __future__ import annotations

import numpy as np

from tokenclean import columns as C
from tokenclean.config import Params
from tokenclean.data.rows import aligned, check_made_from, iter_rows
from tokenclean.io import TableWriter, file_hash, iter_batches, num_rows, write_json
from tokenclean.layout import round_paths
from tokenclean.method.kinds import GroundTruth
from tokenclean.method.masks import KEEP_SCHEMA, keep_table
from tokenclean.method.selection import Tally, masker, split_keep
from tokenclean.stage import log, stage_main


def run(params: Params, name: str) -> None:
    """Write out/rounds/<round>/select/keep.parquet (sample_id, keep), metrics.json and summary.json,
    streaming the scores and the data a batch at a time."""
    paths, cfg = round_paths(name), params.round_select(name)
    stale = f"{paths.scores} was not computed from {paths.data}; rerun the score stage on these data (dvc repro)"
    pool_hash = check_made_from(paths.scores, paths.data, stale)
    if num_rows(paths.scores) != num_rows(paths.data):
        raise ValueError(f"{stale} (row counts differ)")

    def scores():
        batches = iter_batches(paths.scores, [C.SCORES])
        return (b.column(C.SCORES).combine_chunks().flatten().to_numpy() for b in batches)

    mask, tally, truth = masker(cfg.strategy, cfg.data_prop, cfg.threshold, cfg.seed, scores), Tally(), GroundTruth()
    scores_hash = file_hash(paths.scores)
    meta = {"stage": "select", "config": cfg.model_dump(), "inputs": {"data": pool_hash, "scores": scores_hash}}
    with TableWriter(paths.keep, KEEP_SCHEMA, meta) as out:
        for s, pool in zip(iter_rows(paths.scores, (C.SAMPLE_ID, C.SCORES)),
                           iter_rows(paths.data, (C.SAMPLE_ID, C.KINDS, C.LABELS))):
            aligned(s, pool, stale)
            lengths = np.array([len(x) for x in s[C.SCORES]], np.int64)
            flat = np.concatenate(s[C.SCORES]) if len(lengths) else np.zeros(0, np.float32)
            keep = mask(flat, lengths)
            out.write(keep_table(s[C.SAMPLE_ID], split_keep(keep, lengths)))
            tally.add(flat, keep, lengths)
            if truth.gathering:  # a user's data stops it at the first batch
                truth.add(flat, keep, [k[y != C.IGNORE] for k, y in zip(pool[C.KINDS], pool[C.LABELS])])
    info = {**tally.summary(), "strategy": cfg.strategy, "data_prop": cfg.data_prop,
            "scores_sha256": scores_hash, "data_sha256": file_hash(paths.data)}
    metrics = {"kept_share": info["kept_share"]}
    if truth.known:  # ground truth exists: synthetic data
        km, info["score_by_kind"] = truth.metrics()
        metrics.update(km)
    write_json(metrics, paths.select / "metrics.json")
    write_json(info, paths.select / "summary.json")
    log.info("kept %d of %d tokens (%s, data_prop %.2f): %s", info["tokens_kept"], info["tokens"], cfg.strategy,
             cfg.data_prop, metrics)


def main(argv=None) -> None:
    stage_main("select", run, argv, per_round=True)


if __name__ == "__main__":
    main()
