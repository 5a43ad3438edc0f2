"""Stage `train`: masked SFT from the base on the pool, dropped tokens' labels set to -100."""

from __future__ import annotations

from tasks.dataset import check_made_from, load_rows
from tasks.finetune import finetune
from tasks.stage import OUT, stage_main
from tokenclean import columns as C
from tokenclean.align import apply_keep
from tokenclean.config import Params
from tokenclean.io import file_hash


def masked_labels(data, keep_path) -> tuple[list, list]:
    """Pool rows with the keep mask applied; refuses a mask made from other data."""
    rows, keep = load_rows(data), load_rows(keep_path, (C.SAMPLE_ID, C.KEEP))
    check_made_from(keep_path, data, rows, "rerun score and select on these data (dvc repro)")
    if rows[C.SAMPLE_ID] != keep[C.SAMPLE_ID]:
        raise ValueError(f"{keep_path} was not made from {data} (sample ids differ); rerun score and select")
    return rows[C.INPUT_IDS], [apply_keep(y, k) for y, k in zip(rows[C.LABELS], keep[C.KEEP])]


def run(params: Params, out=OUT / "train" / "model", data=OUT / "prepare" / "pool.parquet",
        keep=OUT / "select" / "keep.parquet", base=OUT / "base") -> None:
    """Write out/train/model (LoRA adapter or full weights, plus meta.json)."""
    ids, labels = masked_labels(data, keep)
    meta = {"data_sha256": file_hash(data), "keep_sha256": file_hash(keep)}
    finetune(params, params.train, ids, labels, base, out, meta, "train")


def main(argv=None) -> None:
    stage_main("train", run, argv)


if __name__ == "__main__":
    main()
