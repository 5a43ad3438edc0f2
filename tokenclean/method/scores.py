"""Scoring a round: base and reference NLL of every response token, and the scores table.

``scores.parquet`` has one row per sample: ragged float32 ``loss_base``, ``loss_ref`` and
``scores = loss_base - loss_ref``, one entry per response token (:mod:`tokenclean.method.align`).
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from tokenclean import columns as C
from tokenclean.config import Params
from tokenclean.data.rows import data_hash, load_rows
from tokenclean.io import file_hash, write_json, write_table
from tokenclean.model import distributed, recovery
from tokenclean.model.recovery import Shards

log = logging.getLogger("tokenclean")


def pool_losses(params: Params, ids, labels, base, reference, shards: Shards | None = None, sample_ids=None):
    """(loss_base, loss_ref) per sample. A LoRA reference is loaded once: the base pass disables the adapter.
    ``shards`` keeps finished work for a rerun. In a launched process group every process gets all
    losses back, in sample order.
    """
    # imported here: a round scored against the base loads no model, and these imports take ~4 s
    from tokenclean.method.scoring import score_base_and_reference, score_dataset
    from tokenclean.model.checkpoint import load_checkpoint
    from tokenclean.model.modeling import check_vocab, load_base, load_tokenizer

    tok = load_tokenizer(base)
    args = (ids, labels, tok.pad_token_id, params.score.batch_tokens, params.score.chunk)
    extra = dict(kernels=params.compute.kernels, shards=shards, sample_ids=sample_ids)
    model = load_checkpoint(reference, base, params.model.dtype)
    check_vocab(model, tok)
    if hasattr(model, "disable_adapter"):
        return score_base_and_reference(model, *args, **extra)
    ref = score_dataset(model, *args, desc="reference NLL", **extra)
    del model
    base_nll = score_dataset(load_base(base, params.model.dtype), *args, desc="base NLL", **extra)
    return base_nll, ref


def score_round(params: Params, stage: str, data, base, reference, out) -> None:
    """Score ``data`` with base and reference into ``out``, resumably: finished shards survive a crash.

    With ``compute.processes > 1`` the stage runs data-parallel (:func:`tokenclean.model.distributed.launch`).
    ``reference=None`` is the base itself: every score is 0 by definition, so no model runs and
    no losses are written.
    """
    rows = load_rows(data)
    if reference is None:
        meta = {"stage": stage, "config": None, "inputs": {"data": data_hash(rows), "base": file_hash(base)}}
        return write_zero_scores(rows, out, data, meta)
    distributed.launch(params.compute.processes)
    inputs = {"data": data_hash(rows), "base": file_hash(base),
              "reference": file_hash(reference) if reference else None}
    c = params.compute
    folder = recovery.scratch(params.recovery.dir, stage, **inputs, score=params.score.model_dump(),
                              dtype=params.model.dtype, kernels=c.kernels, processes=c.processes,
                              shard_tokens=params.recovery.score_shard_tokens)
    shards = Shards(folder, params.recovery.score_shard_tokens)
    lb, lr = pool_losses(params, rows[C.INPUT_IDS], rows[C.LABELS], base, reference, shards, rows[C.SAMPLE_ID])
    meta = {"stage": stage, "config": params.score.model_dump(), "inputs": inputs}
    write_scores(rows[C.SAMPLE_ID], lb, lr, out, data, meta)
    recovery.clear(folder)


def write_zero_scores(rows: dict, out, data, meta: dict) -> None:
    """scores.parquet with a 0 per response token (no loss columns) and meta.json."""
    zeros = [np.zeros(int((y != C.IGNORE).sum()), np.float32) for y in rows[C.LABELS]]
    table = pa.table({C.SAMPLE_ID: rows[C.SAMPLE_ID], C.SCORES: ragged_f32(zeros)})
    save_scores_table(table, out / "scores.parquet", meta)
    tokens = int(sum(len(z) for z in zeros))
    write_json({"data_sha256": file_hash(data), "tokens": tokens, "reference": None}, out / "meta.json")
    log.info("reference is the base: %d response tokens, every score 0, no model run", tokens)


def ragged_f32(arrays: list) -> pa.ListArray:
    """One float32 list per sample, straight from numpy (no Python float per token)."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    values = np.concatenate(arrays).astype(np.float32) if len(arrays) else np.zeros(0, np.float32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.float32()))


def scores_table(sample_ids: list, lb: list, lr: list) -> pa.Table:
    return pa.table({
        C.SAMPLE_ID: sample_ids,
        C.LOSS_BASE: ragged_f32(lb),
        C.LOSS_REF: ragged_f32(lr),
        C.SCORES: ragged_f32([b - r for b, r in zip(lb, lr)]),
    })


def save_scores_table(table: pa.Table, path, meta: dict | None = None) -> None:
    """zstd Parquet without dictionary pages: float losses rarely repeat, so a dictionary only adds bytes."""
    write_table(table, path, meta, use_dictionary=False)


def write_scores(sample_ids: list, lb: list, lr: list, out, data, meta: dict | None = None) -> None:
    """scores.parquet (ragged float32, one entry per response token) and meta.json under ``out``.

    In a launched process group only the first process writes.
    """
    if not distributed.is_main():
        return
    save_scores_table(scores_table(sample_ids, lb, lr), out / "scores.parquet", meta)
    flat_b, flat_r = np.concatenate(lb), np.concatenate(lr)
    write_json({"data_sha256": file_hash(data), "tokens": int(len(flat_b)), "mean_loss_base": float(flat_b.mean()),
                "mean_loss_ref": float(flat_r.mean())}, out / "meta.json")
    log.info("scored %d tokens: mean loss base %.3f, reference %.3f", len(flat_b), flat_b.mean(), flat_r.mean())
