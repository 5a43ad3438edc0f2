"""Per-token negative log-likelihood from hidden states, in chunks, at response positions only.

The LM head runs on the gathered response positions in chunks of ``chunk`` rows, so no
``batch x length x vocab`` logits tensor is ever built: memory is ``chunk x vocab``.
Batches are length-sorted under a token budget; on CUDA they go without an attention mask
(see :func:`tokenclean.batching.needs_mask`). In a launched process group each process
scores every N-th batch and all get every result back (:mod:`tokenclean.distributed`).
"""

from __future__ import annotations

import numpy as np
import torch

from tokenclean import distributed, kernels as K
from tokenclean.align import predictor_positions, response_positions
from tokenclean.batching import collate, needs_mask, token_budget_batches
from tokenclean.columns import IGNORE


def _parts(model):
    """(decoder, lm_head) of a causal LM, looking through a PEFT wrapper."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.get_decoder(), inner.get_output_embeddings()


def response_hidden(model, batch: dict, targets: torch.Tensor | None = None):
    """(hidden states that predict the labelled tokens, those tokens), flat in row-major order."""
    labels = batch["labels"] if targets is None else targets
    decoder, _ = _parts(model)
    hidden = decoder(
        input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"), position_ids=batch.get("position_ids")
    ).last_hidden_state
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
    out = []
    for s in range(0, len(y), chunk):
        logits = head(h[s : s + chunk]).float()
        out.append(torch.logsumexp(logits, -1) - logits.gather(-1, y[s : s + chunk, None]).squeeze(-1))
    nll = torch.cat(out) if out else h.new_zeros(0, dtype=torch.float32)
    return nll.sum() if reduction == "sum" else nll


def token_nll(model, batch: dict, chunk: int = 4096, targets: torch.Tensor | None = None,
              kernels: str = "torch") -> torch.Tensor:
    """NLL of every labelled token of a padded batch, flat in row-major (sample, position) order.

    ``targets`` (defaults to ``batch["labels"]``) selects which labelled positions to score.
    """
    h, y = response_hidden(model, batch, targets)
    return head_nll(model, h, y, chunk, kernels)


@torch.inference_mode()
def score_dataset(model, ids_list, labels_list, pad_id: int, batch_tokens: int, chunk: int, desc="NLL",
                  kernels: str = "torch"):
    """Per-sample float32 arrays of response-token NLL, in the input's sample order."""
    model.eval()
    device = next(model.parameters()).device
    K.apply(model, kernels)
    batches = distributed.share(token_budget_batches([len(x) for x in ids_list], batch_tokens))
    pending = []  # results stay on the device until the end: no copy back stalls the next batch
    with K.rope(model, kernels):
        for rows in distributed.progress(batches, desc=desc, unit="batch", mininterval=2):
            batch = collate([ids_list[r] for r in rows], [labels_list[r] for r in rows], pad_id, device=device,
                            mask=needs_mask(device))
            counts = [int((np.asarray(labels_list[r]) != IGNORE).sum()) for r in rows]
            pending.append((rows, counts, token_nll(model, batch, chunk, kernels=kernels)))
    local = {}
    for rows, counts, nll in pending:
        for r, part in zip(rows, np.split(nll.float().cpu().numpy(), np.cumsum(counts)[:-1])):
            local[r] = part.astype(np.float32)
    out = distributed.gather(local, len(ids_list))
    bad = [i for i, x in enumerate(out) if not np.isfinite(x).all()]
    if bad:
        raise FloatingPointError(f"non-finite loss in {len(bad)} samples (first: row {bad[0]}); check the model and data")
    return out


def score_base_and_reference(model, ids_list, labels_list, pad_id: int, batch_tokens: int, chunk: int,
                             kernels: str = "torch"):
    """(base NLL, reference NLL) from one model holding the reference as a LoRA adapter.

    The reference pass runs with the adapter, the base pass with it disabled: one model in
    memory, loaded once, for both.
    """
    args = (ids_list, labels_list, pad_id, batch_tokens, chunk)
    ref = score_dataset(model, *args, desc="reference NLL", kernels=kernels)
    with model.disable_adapter():
        base = score_dataset(model, *args, desc="base NLL", kernels=kernels)
    return base, ref
