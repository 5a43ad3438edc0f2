"""Stage `base`: the base model. Pretrains the built-in tiny Llama, or records a hub id / local dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tokenclean.columns import CURVE, IGNORE
from tokenclean.config import FinetuneCfg, Params
from tokenclean.data import sources
from tokenclean.data.render import render_text
from tokenclean.errors import DataError
from tokenclean.io import atomic_path, file_hash, write_csv, write_json
from tokenclean.layout import BASE, BASE_ROUND, GENERATE, round_paths
from tokenclean.model.modeling import load_tokenizer, tiny_llama, train_tokenizer
from tokenclean.model.training import train
from tokenclean.stage import log, stage_main


def pretrain_tiny(params: Params, corpus: Path):
    chats = [json.loads(line)["messages"] for line in corpus.read_text().splitlines()]
    tok = train_tokenizer((" ".join(m["content"] for m in c) for c in chats), params.base.vocab_size)
    docs = [np.asarray(tok(render_text(tok, c), add_special_tokens=False)["input_ids"], np.int32) for c in chats]
    labels = [np.r_[IGNORE, d[1:]].astype(np.int32) for d in docs]  # whole documents are learned
    torch.manual_seed(params.base.seed)
    model = tiny_llama(tok, params.base)
    n_tokens = sum(len(d) for d in docs)
    cfg = FinetuneCfg(method="full", lr=params.base.lr, batch_tokens=params.base.batch_tokens,
                      epochs=params.base.steps * params.base.batch_tokens / n_tokens,
                      weight_decay=params.base.weight_decay, warmup_ratio=params.base.warmup_ratio,
                      schedule=params.base.schedule)
    log.info("pretraining %.2fM parameters on %d tokens for %.1f epochs",
             sum(p.numel() for p in model.parameters()) / 1e6, n_tokens, cfg.epochs)
    stats = train(model, docs, labels, cfg, tok.pad_token_id, params.base.seed, desc="pretrain")
    return model, tok, stats


def run(params: Params) -> None:
    """Write out/base (the pretrained tiny model, or source.json naming model.base) and the pointer
    out/rounds/base/train/model.json that rounds whose reference or start is the base depend on."""
    write_base(params, BASE, GENERATE / "pretrain.jsonl")
    pointer = round_paths(BASE_ROUND).train / "model.json"
    write_json({"model": str(BASE), "source": params.model.base, "revision": params.model.revision,
                "sha256": file_hash(BASE)}, pointer)


def write_base(params: Params, out: Path, corpus) -> None:
    if params.model.base != "tiny":
        source = sources.model_source(params.model)
        with atomic_path(out) as tmp:
            tmp.mkdir()
            write_json(source, tmp / "source.json")
            try:  # a tokenizer that cannot load or render SFT data stops here, before any other stage
                load_tokenizer(tmp)
            except OSError as e:
                raise DataError(f"cannot load the tokenizer of model.base '{params.model.base}': "
                                f"{str(e).splitlines()[0]}") from None
        log.info("base model: %s", source)
        return
    model, tok, stats = pretrain_tiny(params, Path(corpus))
    steps = stats.pop("curve")
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_json({"kind": "full", "pretrain": stats, "config": params.base.model_dump()}, tmp / "meta.json")
        write_csv(steps, CURVE, tmp / "curve.csv")
    log.info("pretraining loss %.3f -> %.3f", stats["first_loss"], stats["final_loss"])


def main(argv=None) -> None:
    stage_main("base", run, argv)


if __name__ == "__main__":
    main()
