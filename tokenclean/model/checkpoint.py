"""Fine-tuning setup and checkpoints: safetensors (full weights or a LoRA adapter) plus meta.json.

A LoRA checkpoint names its base in ``adapter_config.json`` (the path or hub id of
``model.base``), so ``peft.AutoPeftModelForCausalLM.from_pretrained(dir)`` loads it on its
own from the repository root; :func:`load_checkpoint` does the same and applies ``dtype``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from tokenclean.io import atomic_path, read_json, write_json
from tokenclean.model import distributed
from tokenclean.model.modeling import base_source, default_device, load_base, resolve_dtype


def prepare_finetune(model, cfg, base_dir: str | Path):
    """Wrap ``model`` for training: a fresh LoRA adapter on every linear layer, or all weights."""
    if cfg.method == "full":
        return model
    lora = LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules="all-linear", task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    peft_model.peft_config["default"].base_model_name_or_path = base_source(base_dir)[0]
    return peft_model


def save_checkpoint(model, tokenizer, path: str | Path, meta: dict) -> None:
    """Write weights (fp32 on disk, whatever the compute dtype) and meta.json atomically.

    In a launched process group only the first process writes; the others hold the same weights.
    """
    if not distributed.is_main():
        return
    kind = "lora" if isinstance(model, PeftModel) else "full"
    for cfg in getattr(model, "peft_config", {}).values():
        # PEFT keeps target modules as a set, whose order varies between processes: sort it so
        # adapter_config.json, and with it the checkpoint's hash in dvc.lock, is reproducible.
        cfg.target_modules = sorted(cfg.target_modules)
    with atomic_path(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if kind == "full":
            tokenizer.save_pretrained(tmp)
        write_json({**meta, "kind": kind}, Path(tmp) / "meta.json")


def load_checkpoint(path: str | Path, base_dir: str | Path, dtype="auto", device=None, trainable=False):
    """Load a checkpoint written by :func:`save_checkpoint` (LoRA on top of the base, or full)."""
    path, device = Path(path), device or default_device()
    meta = read_json(path / "meta.json")
    if meta["kind"] == "full":
        return load_base(path, dtype, device)
    base = load_base(base_dir, dtype, device)
    model = PeftModel.from_pretrained(base, path, is_trainable=trainable)
    if trainable:  # the adapter keeps PEFT's fp32 weights, the optimizer's precision (see training.mixed_precision)
        return model.to(device)
    return model.to(device=device, dtype=resolve_dtype(dtype, device))


def trainable_parameters(model) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}
