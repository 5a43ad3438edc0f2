"""Stage `select@<round>`: the round's keep mask over its response tokens, plus metrics and a summary."""

from __future__ import annotations

import numpy as np

from tokenclean import columns as C
from tokenclean.config import Params
from tokenclean.data.rows import check_made_from, load_rows
from tokenclean.io import file_hash, write_json, write_table
from tokenclean.layout import round_paths
from tokenclean.method.kinds import kind_metrics
from tokenclean.method.masks import keep_table
from tokenclean.method.selection import select, split_keep, summary
from tokenclean.stage import log, stage_main


def run(params: Params, name: str) -> None:
    """Write out/rounds/<round>/select/keep.parquet (sample_id, keep), metrics.json and summary.json."""
    paths, cfg = round_paths(name), params.round_select(name)
    s = load_rows(paths.scores, (C.SAMPLE_ID, C.SCORES))
    pool = load_rows(paths.data, (C.SAMPLE_ID, C.KINDS, C.LABELS, C.INPUT_IDS))
    pool_hash = check_made_from(paths.scores, paths.data, pool, "rerun the score stage on these data (dvc repro)")
    if s[C.SAMPLE_ID] != pool[C.SAMPLE_ID]:
        raise ValueError(f"{paths.scores} was not computed from {paths.data} (sample ids differ); "
                         "rerun the score stage")
    lengths = np.array([len(x) for x in s[C.SCORES]])
    flat = np.concatenate(s[C.SCORES]) if len(lengths) else np.zeros(0, np.float32)
    keep = select(flat, lengths, cfg.strategy, cfg.data_prop, cfg.threshold, cfg.seed)
    scores_hash = file_hash(paths.scores)
    meta = {"stage": "select", "config": cfg.model_dump(), "inputs": {"data": pool_hash, "scores": scores_hash}}
    write_table(keep_table(s[C.SAMPLE_ID], split_keep(keep, lengths)), paths.keep, meta)
    info = {**summary(flat, keep, lengths), "strategy": cfg.strategy, "data_prop": cfg.data_prop,
            "scores_sha256": scores_hash, "data_sha256": file_hash(paths.data)}
    metrics = {"kept_share": info["kept_share"]}
    kinds = np.concatenate([k[lab != C.IGNORE] for k, lab in zip(pool[C.KINDS], pool[C.LABELS])])
    if (kinds >= 0).all():  # ground truth exists: synthetic data
        km, info["score_by_kind"] = kind_metrics(flat, keep, kinds)
        metrics.update(km)
    write_json(metrics, paths.select / "metrics.json")
    write_json(info, paths.select / "summary.json")
    log.info("kept %d of %d tokens (%s, data_prop %.2f): %s", info["tokens_kept"], info["tokens"], cfg.strategy,
             cfg.data_prop, metrics)


def main(argv=None) -> None:
    stage_main("select", run, argv, per_round=True)


if __name__ == "__main__":
    main()
