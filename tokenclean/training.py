"""Masked SFT: cross-entropy on kept response tokens only, normalised over the accumulated batch.

The loss of an optimizer step is ``sum(NLL of kept tokens) / (kept tokens in all its
micro-batches)``, so the gradient does not depend on how a step is cut into micro-batches,
and a short sample weighs per token exactly as a long one. The LM head runs only on kept
positions (see :func:`tokenclean.scoring.token_nll`).
"""

from __future__ import annotations

import logging
import math
import random

import numpy as np
import torch
from tqdm.auto import tqdm

from tokenclean.batching import collate, token_budget_batches
from tokenclean.columns import IGNORE
from tokenclean.scoring import token_nll

log = logging.getLogger(__name__)


def accumulate(model, micro_batches: list[dict], chunk: int = 4096) -> float:
    """Backward over one optimizer step's micro-batches; returns the step's mean token loss."""
    n_kept = sum(int((b["labels"] != IGNORE).sum()) for b in micro_batches)
    total = 0.0
    for b in micro_batches:
        loss = token_nll(model, b, chunk).sum() / max(n_kept, 1)
        loss.backward()
        total += float(loss.detach())
    return total


def plan_steps(lengths, cfg, seed: int) -> list[list[list[int]]]:
    """Optimizer steps as lists of micro-batches of row indices.

    Batches are length-sorted (little padding), then their order is shuffled per epoch with
    ``seed``; ``cfg.epochs`` may be fractional.
    """
    batches = token_budget_batches(lengths, cfg.batch_tokens)
    rng = random.Random(seed)
    n_micro = max(1, math.ceil(cfg.epochs * len(batches)))
    order: list[list[int]] = []
    while len(order) < n_micro:
        epoch = batches[:]
        rng.shuffle(epoch)
        order.extend(epoch)
    order = order[:n_micro]
    return [order[i : i + cfg.grad_accum] for i in range(0, n_micro, cfg.grad_accum)]


def lr_lambda(total: int, warmup_ratio: float):
    warm = max(1, int(total * warmup_ratio))
    return lambda s: (s + 1) / warm if s < warm else max(0.0, 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))


def train(model, ids_list, labels_list, cfg, pad_id: int, seed: int, desc: str = "train") -> dict:
    """Fine-tune ``model`` in place on rows whose labels keep at least one token."""
    rows = [i for i, y in enumerate(labels_list) if (np.asarray(y) != IGNORE).any()]
    skipped = len(labels_list) - len(rows)
    if skipped:
        log.info("skipping %d samples with zero kept tokens", skipped)
    if not rows:
        raise ValueError("no sample has a kept token: nothing to train on (check select.data_prop and the scores)")
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = plan_steps([len(ids_list[r]) for r in rows], cfg, seed)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(len(steps), cfg.warmup_ratio))
    model.train()
    losses = []
    bar = tqdm(steps, desc=desc, unit="step", mininterval=2)
    for step in bar:
        micro = [collate([ids_list[rows[i]] for i in mb], [labels_list[rows[i]] for i in mb], pad_id, device=device) for mb in step]
        loss = accumulate(model, micro)
        if not math.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at step {len(losses)}; lower {desc}.lr")
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
    model.eval()
    return {"steps": len(steps), "samples": len(rows), "samples_skipped": skipped,
            "first_loss": losses[0], "final_loss": float(np.mean(losses[-10:]))}
