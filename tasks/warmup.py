"""Stage `warmup`: the reference model, the base fine-tuned on the clean warm-up split (all tokens)."""

from __future__ import annotations

from tasks.dataset import load_rows
from tasks.finetune import finetune
from tasks.stage import OUT, stage_main
from tokenclean import columns as C
from tokenclean.config import Params
from tokenclean.io import file_hash


def run(params: Params, out=OUT / "warmup" / "model", data=OUT / "prepare" / "warmup.parquet", base=OUT / "base") -> None:
    """Write out/warmup/model (LoRA adapter or full weights, plus meta.json)."""
    rows = load_rows(data)
    finetune(params, params.warmup, rows[C.INPUT_IDS], rows[C.LABELS], base, out,
                       {"data": str(data), "data_sha256": file_hash(data)}, "warmup")


def main(argv=None) -> None:
    stage_main("warmup", run, argv)


if __name__ == "__main__":
    main()
