"""Fine-tuning from the base and saving a checkpoint: shared by the `warmup` and `train` stages."""

from __future__ import annotations

from pathlib import Path

from tasks.stage import log
from tokenclean.checkpoint import prepare_finetune, save_checkpoint
from tokenclean.config import FinetuneCfg, Params
from tokenclean.modeling import check_vocab, load_base, load_tokenizer
from tokenclean.training import train


def finetune_from_base(params: Params, cfg: FinetuneCfg, ids, labels, base: Path, out: Path, meta: dict, name: str):
    tok = load_tokenizer(base)
    model = load_base(base, params.model.dtype)
    check_vocab(model, tok)
    model = prepare_finetune(model, cfg, base)
    stats = train(model, ids, labels, cfg, tok.pad_token_id, params.seed, desc=name)
    save_checkpoint(model, tok, out, {**meta, "train": stats, "config": cfg.model_dump()})
    log.info("%s: %d steps, loss %.3f -> %.3f, saved %s", name, stats["steps"], stats["first_loss"], stats["final_loss"], out)
    return stats
