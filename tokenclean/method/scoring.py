"""Per-token negative log-likelihood from hidden states, in chunks, at response positions only.

The LM head runs on the gathered response positions in chunks of ``chunk`` rows, so no
``batch x length x vocab`` logits tensor is ever built: memory is ``chunk x vocab``.
Batches are length-sorted under a token budget, right-padded (on CUDA without an attention mask,
see :func:`tokenclean.model.batching.needs_mask`) or packed (``packed``: no padding at all).
In a launched process group each process scores every N-th batch and all get every result back
(:mod:`tokenclean.model.distributed`).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from tokenclean.columns import IGNORE
from tokenclean.method.align import predictor_positions, response_positions
from tokenclean.model import distributed
from tokenclean.model import kernels as K
from tokenclean.model.batching import make_batch, token_budget_batches
from tokenclean.model.packing import unwrapped, use_varlen
from tokenclean.model.recovery import Shards

log = logging.getLogger(__name__)


def _parts(model):
    """(decoder, lm_head) of a causal LM, looking through a PEFT wrapper."""
    inner = unwrapped(model)
    return inner.get_decoder(), inner.get_output_embeddings()


def response_hidden(model, batch: dict, targets: torch.Tensor | None = None):
    """(hidden states that predict the labelled tokens, those tokens), flat in row-major order."""
    labels = batch["labels"] if targets is None else targets
    decoder, _ = _parts(model)
    # everything but the labels: ids, and a mask and positions (padded) or sample starts (packed). No
    # KV cache: nothing is generated, and with a cache transformers would not read packed positions
    hidden = decoder(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).last_hidden_state
    rows, cols = response_positions(labels)
    return hidden[rows, predictor_positions(cols)], labels[rows, cols]


def head_nll(model, h: torch.Tensor, y: torch.Tensor, chunk: int = 4096, kernels: str = "torch",
             reduction: str = "none") -> torch.Tensor:
    """NLL of tokens ``y`` predicted from hidden states ``h`` through the model's LM head (float32).

    ``reduction`` is ``none`` (one value per token) or ``sum``.
    """
    _, head = _parts(model)
    if K.fused(kernels, h.device):
        return K.head_nll(h, head, y, chunk, reduction)
    chunk_nll = K.compiled_head(model) or K.chunk_nll
    out = [chunk_nll(head, h[s : s + chunk], y[s : s + chunk]) for s in range(0, len(y), chunk)]
    nll = torch.cat(out) if out else h.new_zeros(0, dtype=torch.float32)
    return nll.sum() if reduction == "sum" else nll


def token_nll(model, batch: dict, chunk: int = 4096, targets: torch.Tensor | None = None,
              kernels: str = "torch") -> torch.Tensor:
    """NLL of every labelled token of a padded batch, flat in row-major (sample, position) order.

    ``targets`` (defaults to ``batch["labels"]``) selects which labelled positions to score.
    """
    h, y = response_hidden(model, batch, targets)
    return head_nll(model, h, y, chunk, kernels)


def shard_plan(batches: list[list[int]], lengths: list[int], shard_tokens: int) -> list[list[list[int]]]:
    """Consecutive batches grouped into shards of at least ``shard_tokens`` tokens (the last may be smaller).

    Shards only group the batches of the unsharded plan, so every batch, and every score, is the
    same however the work is cut.
    """
    shards, current, size = [], [], 0
    for rows in batches:
        current.append(rows)
        size += sum(lengths[r] for r in rows)
        if size >= shard_tokens:
            shards.append(current)
            current, size = [], 0
    return shards + ([current] if current else [])


def _score_batches(model, batches, ids_list, labels_list, pad_id, chunk, kernels, bar,
                   packed: bool = False) -> dict[int, np.ndarray]:
    device = next(model.parameters()).device
    pending = []  # results stay on the device until the shard ends: no copy back stalls the next batch
    for rows in batches:
        batch = make_batch([ids_list[r] for r in rows], [labels_list[r] for r in rows], pad_id, device, packed)
        counts = [int((np.asarray(labels_list[r]) != IGNORE).sum()) for r in rows]
        pending.append((rows, counts, token_nll(model, batch, chunk, kernels=kernels)))
        bar.update()
    local = {}
    for rows, counts, nll in pending:
        for r, part in zip(rows, np.split(nll.float().cpu().numpy(), np.cumsum(counts)[:-1])):
            local[r] = part.astype(np.float32)
    return local


@torch.inference_mode()
def score_dataset(model, ids_list, labels_list, pad_id: int, batch_tokens: int, chunk: int, desc="NLL",
                  kernels: str = "torch", shards: Shards | None = None, sample_ids: list | None = None,
                  window: int = 0, packed: bool = False):
    """Per-sample float32 arrays of response-token NLL, in the input's sample order.

    ``packed``: batches of samples end to end (:func:`tokenclean.model.batching.collate_packed`),
    ``batch_tokens`` real tokens each; the same losses as padded batches up to float rounding.

    With ``shards``, finished shards are saved as they complete and reused by a rerun (``window``:
    which window of a streamed pool these rows are, part of the shards' names).
    A non-finite loss names its sample (``sample_ids``, else the row).
    """
    model.eval()
    K.apply(model, kernels)
    if packed:
        use_varlen(model)
    lengths = [len(x) for x in ids_list]
    batches = distributed.share(token_budget_batches(lengths, batch_tokens, packed=packed))
    shards = shards or Shards(None, 1 << 62)
    plan = shard_plan(batches, lengths, shards.tokens)
    local, reused = {}, 0
    with K.rope(model, kernels), distributed.progress(total=len(batches), desc=desc, unit="batch",
                                                      mininterval=2) as bar:
        for i, group in enumerate(plan):
            name = f"{desc.replace(' ', '_')}-w{window:05d}-{distributed.rank()}of{distributed.world_size()}-{i:05d}"
            done = shards.load(name)
            if done is None:
                shards.save(name, done := _score_batches(model, group, ids_list, labels_list, pad_id, chunk,
                                                         kernels, bar, packed))
            else:
                reused += 1
                bar.update(len(group))
            local.update(done)
    if reused:
        log.info("%s: reused %d of %d shards from an interrupted run", desc, reused, len(plan))
    out = distributed.gather(local, len(ids_list))
    check_finite(out, sample_ids)
    return out


def check_finite(losses: list[np.ndarray], sample_ids: list | None = None) -> None:
    bad = [i for i, x in enumerate(losses) if not np.isfinite(x).all()]
    if bad:
        name = (lambda i: f"sample {sample_ids[i]!r}") if sample_ids is not None else (lambda i: f"row {i}")
        raise FloatingPointError(f"non-finite (NaN or infinite) loss in {len(bad)} samples, first {name(bad[0])}: "
                                 "check the model's weights (a diverged checkpoint?) and model.dtype "
                                 "(float16 overflows: use bfloat16 or float32)")


def score_base_and_reference(model, ids_list, labels_list, pad_id: int, batch_tokens: int, chunk: int,
                             kernels: str = "torch", shards: Shards | None = None, sample_ids: list | None = None,
                             window: int = 0, packed: bool = False):
    """(base NLL, reference NLL) from one model holding the reference as a LoRA adapter.

    The reference pass runs with the adapter, the base pass with it disabled: one model in
    memory, loaded once, for both.
    """
    args = (ids_list, labels_list, pad_id, batch_tokens, chunk)
    extra = dict(kernels=kernels, shards=shards, sample_ids=sample_ids, window=window, packed=packed)
    ref = score_dataset(model, *args, desc="reference NLL", **extra)
    with model.disable_adapter():
        base = score_dataset(model, *args, desc="base NLL", **extra)
    return base, ref
