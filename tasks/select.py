"""Stage `select`: keep masks over the pool's response tokens, plus metrics and a summary."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tasks.dataset import check_made_from, load_rows
from tasks.stage import OUT, log, stage_main
from tokenclean import columns as C
from tokenclean.config import Params, SelectCfg
from tokenclean.io import file_hash, write_json, write_table
from tokenclean.kinds import kind_metrics
from tokenclean.selection import select, split_keep, summary


def run(params: Params, out=OUT / "select", scores=OUT / "score" / "scores.parquet",
        data=OUT / "prepare" / "pool.parquet", cfg: SelectCfg | None = None) -> None:
    """Write out/select/keep.parquet (sample_id, keep), metrics.json and summary.json."""
    s = load_rows(scores, (C.SAMPLE_ID, C.SCORES))
    pool = load_rows(data, (C.SAMPLE_ID, C.KINDS, C.LABELS, C.INPUT_IDS))
    pool_hash = check_made_from(scores, data, pool, "rerun the score stage on these data (dvc repro)")
    if s[C.SAMPLE_ID] != pool[C.SAMPLE_ID]:
        raise ValueError(f"{scores} was not computed from {data} (sample ids differ); rerun the score stage")
    lengths = np.array([len(x) for x in s[C.SCORES]])
    flat = np.concatenate(s[C.SCORES]) if len(lengths) else np.zeros(0, np.float32)
    cfg = cfg or params.select
    keep = select(flat, lengths, cfg.strategy, cfg.data_prop, cfg.threshold, cfg.seed)
    table = pa.table({C.SAMPLE_ID: s[C.SAMPLE_ID], C.KEEP: pa.array([k.tolist() for k in split_keep(keep, lengths)], pa.list_(pa.bool_()))})
    scores_hash = file_hash(scores)
    meta = {"stage": "select", "config": cfg.model_dump(), "inputs": {"data": pool_hash, "scores": scores_hash}}
    write_table(table, out / "keep.parquet", meta)
    info = {**summary(flat, keep, lengths), "strategy": cfg.strategy, "data_prop": cfg.data_prop,
            "scores_sha256": scores_hash, "data_sha256": file_hash(data)}
    metrics = {"kept_share": info["kept_share"]}
    kinds = np.concatenate([k[lab != C.IGNORE] for k, lab in zip(pool[C.KINDS], pool[C.LABELS])])
    if (kinds >= 0).all():  # ground truth exists: synthetic data
        km, info["score_by_kind"] = kind_metrics(flat, keep, kinds)
        metrics.update(km)
    write_json(metrics, out / "metrics.json")
    write_json(info, out / "summary.json")
    log.info("kept %d of %d tokens (%s, data_prop %.2f): %s", info["tokens_kept"], info["tokens"], cfg.strategy, cfg.data_prop, metrics)


def main(argv=None) -> None:
    stage_main("select", run, argv)


if __name__ == "__main__":
    main()
