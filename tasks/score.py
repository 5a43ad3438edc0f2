"""Stage `score`: per response token, ``loss_base - loss_ref`` over the pool."""

from __future__ import annotations

import contextlib

import numpy as np
import pyarrow as pa

from tasks.dataset import load_rows
from tasks.stage import OUT, log, stage_main
from tokenclean import columns as C
from tokenclean.checkpoint import load_checkpoint
from tokenclean.config import Params
from tokenclean.io import file_hash, write_json, write_table
from tokenclean.modeling import load_base, load_tokenizer
from tokenclean.scoring import score_dataset


def pool_losses(params: Params, ids, labels, base, reference):
    """(loss_base, loss_ref) per sample. A LoRA reference is loaded once: the base pass disables the adapter."""
    tok = load_tokenizer(base)
    model = load_checkpoint(reference, base, params.model.dtype)
    args = (ids, labels, tok.pad_token_id, params.score.batch_tokens, params.score.chunk)
    ref = score_dataset(model, *args, desc="reference NLL")
    if hasattr(model, "disable_adapter"):
        ctx = model.disable_adapter()
    else:
        model, ctx = load_base(base, params.model.dtype), contextlib.nullcontext()
    with ctx:
        base_nll = score_dataset(model, *args, desc="base NLL")
    return base_nll, ref


def run(params: Params, out=OUT / "score", data=OUT / "prepare" / "pool.parquet",
        base=OUT / "base", reference=OUT / "warmup" / "model") -> None:
    """Write out/score/scores.parquet (sample_id, loss_base, loss_ref, scores) and meta.json."""
    rows = load_rows(data)
    lb, lr = pool_losses(params, rows[C.INPUT_IDS], rows[C.LABELS], base, reference)
    f32 = pa.list_(pa.float32())
    table = pa.table({
        C.SAMPLE_ID: rows[C.SAMPLE_ID],
        C.LOSS_BASE: pa.array([x.tolist() for x in lb], f32),
        C.LOSS_REF: pa.array([x.tolist() for x in lr], f32),
        C.SCORES: pa.array([(b - r).tolist() for b, r in zip(lb, lr)], f32),
    })
    write_table(table, out / "scores.parquet")
    flat_b, flat_r = np.concatenate(lb), np.concatenate(lr)
    write_json({"data_sha256": file_hash(data), "tokens": int(len(flat_b)), "mean_loss_base": float(flat_b.mean()),
                "mean_loss_ref": float(flat_r.mean())}, out / "meta.json")
    log.info("scored %d tokens: mean loss base %.3f, reference %.3f", len(flat_b), flat_b.mean(), flat_r.mean())


def main(argv=None) -> None:
    stage_main("score", run, argv)


if __name__ == "__main__":
    main()
