"""Stage `evolve_train`: masked SFT of one round, continuing from its predecessor's model.

Round 0 fine-tunes the base (all tokens: its mask keeps everything); round t loads round
t-1's checkpoint, a LoRA adapter stays trainable, full weights stay full, and trains on.
"""

from __future__ import annotations

from tasks.finetune import finetune
from tasks.rounds import BASE, EVOLVE, check_round, prev_model, round_paths
from tasks.stage import stage_main
from tasks.train import masked_labels
from tokenclean.config import Params
from tokenclean.io import file_hash


def run(params: Params, name: str, evolve=EVOLVE, base=BASE) -> None:
    """Write out/evolve/<round>/train/model (LoRA adapter or full weights, plus meta.json)."""
    check_round(params, name)
    paths, prev = round_paths(name, evolve), prev_model(params, name, evolve)
    ids, labels = masked_labels(paths.data, paths.keep)
    cfg = params.evolve.round_train(name)
    meta = {"round": name, "prev": params.evolve.rounds[name].prev, "data_sha256": file_hash(paths.data),
            "keep_sha256": file_hash(paths.keep)}  # finetune adds base_sha256 and prev_sha256
    finetune(params, cfg, ids, labels, base, paths.model, meta, f"evolve_train@{name}", start=prev)


def main(argv=None) -> None:
    stage_main("evolve_train", run, argv, per_round=True)


if __name__ == "__main__":
    main()
