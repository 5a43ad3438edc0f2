"""Per-token negative log-likelihood from hidden states, in chunks, at response positions only.

The LM head runs on the gathered response positions in chunks of ``chunk`` rows, so no
``batch x length x vocab`` logits tensor is ever built: memory is ``chunk x vocab``.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from tokenclean.align import predictor_positions, response_positions
from tokenclean.batching import collate, token_budget_batches
from tokenclean.columns import IGNORE


def _parts(model):
    """(decoder, lm_head) of a causal LM, looking through a PEFT wrapper."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.get_decoder(), inner.get_output_embeddings()


def token_nll(model, batch: dict, chunk: int = 4096, targets: torch.Tensor | None = None) -> torch.Tensor:
    """NLL of every labelled token of a padded batch, flat in row-major (sample, position) order.

    ``targets`` (defaults to ``batch["labels"]``) selects which labelled positions to score;
    training passes the masked labels so the head only sees kept tokens.
    """
    labels = batch["labels"] if targets is None else targets
    decoder, head = _parts(model)
    hidden = decoder(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
    ).last_hidden_state
    rows, cols = response_positions(labels)
    h = hidden[rows, predictor_positions(cols)]
    y = labels[rows, cols]
    out = []
    for s in range(0, len(y), chunk):
        logits = head(h[s : s + chunk]).float()
        out.append(torch.logsumexp(logits, -1) - logits.gather(-1, y[s : s + chunk, None]).squeeze(-1))
    return torch.cat(out) if out else hidden.new_zeros(0, dtype=torch.float32)


@torch.inference_mode()
def score_dataset(model, ids_list, labels_list, pad_id: int, batch_tokens: int, chunk: int, desc="NLL"):
    """Per-sample float32 arrays of response-token NLL, in the input's sample order."""
    model.eval()
    device = next(model.parameters()).device
    out: list = [None] * len(ids_list)
    batches = token_budget_batches([len(x) for x in ids_list], batch_tokens)
    for rows in tqdm(batches, desc=desc, unit="batch", mininterval=2):
        batch = collate([ids_list[r] for r in rows], [labels_list[r] for r in rows], pad_id, device=device)
        nll = token_nll(model, batch, chunk).cpu().numpy()
        counts = (batch["labels"] != IGNORE).sum(-1).cpu().numpy()
        for r, part in zip(rows, np.split(nll, np.cumsum(counts)[:-1])):
            out[r] = part.astype(np.float32)
    bad = [i for i, x in enumerate(out) if not np.isfinite(x).all()]
    if bad:
        raise FloatingPointError(f"non-finite loss in {len(bad)} samples (first: row {bad[0]}); check the model and data")
    return out
