"""Fine-tuning one round and saving its checkpoint (the `train` stage of every round)."""

from __future__ import annotations

import logging
from pathlib import Path

from tokenclean.columns import CURVE
from tokenclean.config import FinetuneCfg, Params
from tokenclean.io import file_hash, rows_hash, write_csv
from tokenclean.model import distributed, recovery
from tokenclean.model.checkpoint import load_checkpoint, prepare_finetune, save_checkpoint
from tokenclean.model.kernels import compile_layers
from tokenclean.model.modeling import check_vocab, load_base, load_tokenizer
from tokenclean.model.training import full_state_dict, train

log = logging.getLogger("tokenclean")


def start_model(params: Params, cfg: FinetuneCfg, base: Path, tok, start: Path | None):
    """The base with a fresh adapter (or all weights trainable), or the checkpoint ``start`` to train on."""
    if start is not None:  # a LoRA adapter stays a trainable adapter, full weights stay full
        return load_checkpoint(start, base, params.model.dtype, trainable=True)
    model = load_base(base, params.model.dtype)
    check_vocab(model, tok)
    return prepare_finetune(model, cfg, base)


def finetune(params: Params, cfg: FinetuneCfg, ids, labels, base: Path, out: Path, meta: dict, name: str,
             start: Path | None = None, curve: Path | None = None) -> dict:
    """Train and save; with ``compute.processes > 1`` data-parallel, the first process saving.

    ``meta`` goes into the checkpoint's meta.json with the hashes of the base and starting weights;
    ``curve`` gets one CSV row per optimizer step."""
    c = params.compute
    if c.fsdp and cfg.method != "full":
        raise ValueError(f"compute.fsdp shards full fine-tuning; {name} trains a LoRA adapter, which fits on "
                         "one GPU beside its base: set compute.fsdp: false, or train.method: full")
    distributed.launch(c.processes, fsdp=c.fsdp)
    tok = load_tokenizer(base)
    model = start_model(params, cfg, base, tok, start)
    compile_layers(model, c.compile)
    base_hash = file_hash(base)  # prev: the weights training starts from (the base unless ``start``)
    weights = {"base_sha256": base_hash, "prev_sha256": file_hash(start) if start else base_hash}
    # a checkpoint is resumed only by a run of the same params, inputs and start weights
    folder = recovery.scratch(params.recovery.dir, name, config=cfg.model_dump(), seed=params.seed,
                              dtype=params.model.dtype, kernels=c.kernels, processes=c.processes,
                              packing=c.packing, compile=c.compile, data=rows_hash(ids, labels), **weights)
    # sharded weights are not saved mid-run: an interrupted FSDP run starts over
    state = recovery.TrainState(folder, 0 if distributed.sharded() else params.recovery.train_every)
    stats = train(model, ids, labels, cfg, tok.pad_token_id, params.seed, desc=name, kernels=c.kernels, state=state,
                  packed=c.packing, checkpointing=c.gradient_checkpointing)
    steps = stats.pop("curve")
    if distributed.sharded():
        model = gathered(model, params, base, start)
    save_checkpoint(model, tok, out, {**meta, **weights, "train": stats, "config": cfg.model_dump()})
    if curve is not None and distributed.is_main():
        write_csv(steps, CURVE, curve)
    recovery.clear(folder)
    log.info("%s: %d steps from %s, loss %.3f -> %.3f, saved %s", name, stats["steps"], start or base,
             stats["first_loss"], stats["final_loss"], out)
    return stats


def gathered(model, params: Params, base: Path, start: Path | None):
    """The trained weights FSDP left sharded, whole in a fresh model on the first process's CPU (None elsewhere)."""
    state = full_state_dict(model)  # every process takes part in the gather
    if not distributed.is_main():
        return None
    whole = load_base(start or base, params.model.dtype, device="cpu")
    whole.load_state_dict(state)
    return whole
