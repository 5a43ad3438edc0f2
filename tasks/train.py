"""Stage `train@<round>`: masked SFT of the round's data, dropped tokens' labels set to -100.

Training starts from the round's ``start``: the base (a fresh adapter, or every weight
trainable), or an earlier round's checkpoint (a LoRA adapter stays a trainable adapter,
full weights stay full) for a self-evolving round.
"""

from __future__ import annotations

from tokenclean.config import Params
from tokenclean.io import file_hash
from tokenclean.layout import BASE, model_dir, round_paths
from tokenclean.method.masks import masked_labels
from tokenclean.model.finetune import finetune
from tokenclean.stage import stage_main


def run(params: Params, name: str, base=BASE) -> None:
    """Write out/rounds/<round>/train/model (LoRA adapter or full weights, plus meta.json) and
    train/curve.csv (loss, learning rate, gradient norm and tokens per optimizer step)."""
    paths, r = round_paths(name), params.rounds[name]
    ids, labels = masked_labels(paths.data, paths.keep)
    meta = {"round": name, "reference": r.reference, "start": r.start, "data_sha256": file_hash(paths.data),
            "keep_sha256": file_hash(paths.keep)}  # finetune adds base_sha256 and prev_sha256
    finetune(params, params.round_train(name), ids, labels, base, paths.model, meta, f"train@{name}",
             start=model_dir(r.start), curve=paths.curve)


def main(argv=None) -> None:
    stage_main("train", run, argv, per_round=True)


if __name__ == "__main__":
    main()
