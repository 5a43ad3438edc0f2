"""Scoring a round: base and reference NLL of every response token, and the scores table.

``scores.parquet`` has one row per sample: ragged float32 ``loss_base``, ``loss_ref`` and
``scores = loss_base - loss_ref``, one entry per response token (:mod:`tokenclean.method.align`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from tokenclean import columns as C
from tokenclean.config import Params
from tokenclean.data.rows import data_hash, iter_rows
from tokenclean.io import TableWriter, file_hash, ragged, write_json
from tokenclean.model import distributed, recovery
from tokenclean.model.recovery import Shards

log = logging.getLogger("tokenclean")


class Scorer:
    """The models of one scoring run, loaded once: ``scorer(ids, labels, ...)`` gives (loss_base,
    loss_ref) per sample. A LoRA reference holds both (the base pass disables the adapter); a
    full-weight reference is loaded beside the base, because the data stream past both a window at
    a time (twice the model memory: 2 x 2.5 GB in bf16 at 1B; LoRA needs one copy)."""

    def __init__(self, params: Params, base, reference):
        # imported here: a round scored against the base loads no model, and these imports take ~4 s
        from tokenclean.model.checkpoint import load_checkpoint
        from tokenclean.model.kernels import compile_layers
        from tokenclean.model.modeling import check_vocab, load_base, load_tokenizer

        tok = load_tokenizer(base)
        self.params, self.pad = params, tok.pad_token_id
        self.model = load_checkpoint(reference, base, params.model.dtype)
        check_vocab(self.model, tok)
        self.lora = hasattr(self.model, "disable_adapter")
        self.base = None if self.lora else load_base(base, params.model.dtype)
        for model in (self.model, self.base):
            if model is not None:
                compile_layers(model, params.compute.compile)

    def __call__(self, ids, labels, shards: Shards | None = None, sample_ids=None, window: int = 0):
        """In a launched process group every process gets all losses back, in sample order."""
        from tokenclean.method.scoring import score_base_and_reference, score_dataset

        p = self.params
        args = (ids, labels, self.pad, p.score.batch_tokens, p.score.chunk)
        extra = dict(kernels=p.compute.kernels, shards=shards, sample_ids=sample_ids, window=window,
                     packed=p.compute.packing)
        if self.lora:
            return score_base_and_reference(self.model, *args, **extra)
        ref = score_dataset(self.model, *args, desc="reference NLL", **extra)
        return score_dataset(self.base, *args, desc="base NLL", **extra), ref


def windows(data, tokens: int) -> Iterator[dict[str, list]]:
    """The rows of ``data`` in consecutive windows of whole read batches, each just over ``tokens``
    tokens: scoring sorts and batches by length within a window, and holds one window's losses."""
    window, size = [], 0
    for rows in iter_rows(data):
        window.append(rows)
        size += sum(len(x) for x in rows[C.INPUT_IDS])
        if size >= tokens:
            yield _joined(window)
            window, size = [], 0
    if window:
        yield _joined(window)


def _joined(parts: list[dict]) -> dict[str, list]:
    return {k: [x for part in parts for x in part[k]] for k in parts[0]}


def score_round(params: Params, stage: str, data, base, reference, out) -> None:
    """Score ``data`` with base and reference into ``out``, a window of ``score.window_tokens`` at a
    time, resumably: finished shards survive a crash.

    With ``compute.processes > 1`` the stage runs data-parallel (:func:`tokenclean.model.distributed.launch`).
    ``reference=None`` is the base itself: every score is 0 by definition, so no model runs and
    no losses are written.
    """
    if reference is None:
        meta = {"stage": stage, "config": None, "inputs": {"data": data_hash(data), "base": file_hash(base)}}
        return write_zero_scores(data, out, meta)
    distributed.launch(params.compute.processes)
    inputs = {"data": data_hash(data), "base": file_hash(base), "reference": file_hash(reference)}
    c = params.compute
    folder = recovery.scratch(params.recovery.dir, stage, **inputs, score=params.score.model_dump(),
                              dtype=params.model.dtype, kernels=c.kernels, processes=c.processes,
                              packing=c.packing, shard_tokens=params.recovery.score_shard_tokens)
    shards, scorer = Shards(folder, params.recovery.score_shard_tokens), Scorer(params, base, reference)
    meta = {"stage": stage, "config": params.score.model_dump(), "inputs": inputs}
    with ScoresWriter(out, data, meta, losses=True) as writer:
        for i, rows in enumerate(windows(data, params.score.window_tokens)):
            lb, lr = scorer(rows[C.INPUT_IDS], rows[C.LABELS], shards, rows[C.SAMPLE_ID], window=i)
            writer.write(rows[C.SAMPLE_ID], lb, lr)
    recovery.clear(folder)


SCORES_SCHEMA = pa.schema([(C.SAMPLE_ID, pa.string()), (C.LOSS_BASE, pa.list_(pa.float32())),
                           (C.LOSS_REF, pa.list_(pa.float32())), (C.SCORES, pa.list_(pa.float32()))])
ZERO_SCHEMA = pa.schema([SCORES_SCHEMA.field(C.SAMPLE_ID), SCORES_SCHEMA.field(C.SCORES)])


class ScoresWriter:
    """``out/scores.parquet`` written a window at a time, and ``out/meta.json`` with its token count
    and mean losses. zstd without dictionary pages: float losses rarely repeat, so a dictionary only
    adds bytes. In a launched process group only the first process writes."""

    def __init__(self, out: Path, data, meta: dict, losses: bool):
        self.out, self.data, self.losses = Path(out), data, losses
        self.main = distributed.is_main()
        self.table = TableWriter(self.out / "scores.parquet", SCORES_SCHEMA if losses else ZERO_SCHEMA, meta,
                                 use_dictionary=False)
        self.tokens, self.sum_base, self.sum_ref = 0, 0.0, 0.0

    def __enter__(self) -> ScoresWriter:
        if self.main:
            self.table.__enter__()
        return self

    def write(self, sample_ids: list, lb: list, lr: list | None = None) -> None:
        if not self.main:
            return
        scores = [b - r for b, r in zip(lb, lr)] if lr is not None else lb
        columns = {C.SAMPLE_ID: sample_ids, C.SCORES: ragged(scores, pa.float32())}
        if self.losses:
            columns.update({C.LOSS_BASE: ragged(lb, pa.float32()), C.LOSS_REF: ragged(lr, pa.float32())})
            self.sum_base += float(sum(x.sum(dtype=np.float64) for x in lb))
            self.sum_ref += float(sum(x.sum(dtype=np.float64) for x in lr))
        self.table.write(pa.table({k: columns[k] for k in self.table.schema.names}))
        self.tokens += int(sum(len(x) for x in lb))

    def __exit__(self, *exc) -> None:
        if not self.main:
            return
        self.table.__exit__(*exc)
        if exc[0] is not None:
            return
        info = {"data_sha256": file_hash(self.data), "tokens": self.tokens}
        if self.losses:
            n = max(self.tokens, 1)
            info.update(mean_loss_base=self.sum_base / n, mean_loss_ref=self.sum_ref / n)
            log.info("scored %d tokens: mean loss base %.3f, reference %.3f", self.tokens, info["mean_loss_base"],
                     info["mean_loss_ref"])
        else:
            info["reference"] = None
            log.info("reference is the base: %d response tokens, every score 0, no model run", self.tokens)
        write_json(info, self.out / "meta.json")


def write_zero_scores(data, out, meta: dict) -> None:
    """scores.parquet with a 0 per response token (no loss columns) and meta.json."""
    with ScoresWriter(out, data, meta, losses=False) as writer:
        for rows in iter_rows(data, (C.SAMPLE_ID, C.LABELS)):
            writer.write(rows[C.SAMPLE_ID], [np.zeros(int((y != C.IGNORE).sum()), np.float32) for y in rows[C.LABELS]])
