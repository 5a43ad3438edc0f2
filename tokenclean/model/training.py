"""Masked SFT: cross-entropy on kept response tokens only, normalised over the accumulated batch.

The loss of an optimizer step is ``sum(NLL of kept tokens) / (kept tokens in all its
micro-batches)``, so the gradient does not depend on how a step is cut into micro-batches,
and a short sample weighs per token exactly as a long one. The LM head runs only on kept
positions (see :mod:`tokenclean.method.scoring`).

In a launched process group every process follows the same plan and takes every N-th
micro-batch of each step; gradients are summed across processes before the optimizer step,
so N processes compute the same step as one (up to float summation order).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time

import numpy as np
import torch
from peft.helpers import disable_input_dtype_casting

from tokenclean.columns import IGNORE
from tokenclean.method.scoring import head_nll, response_hidden
from tokenclean.model import distributed
from tokenclean.model import kernels as K
from tokenclean.model.batching import collate, needs_mask, token_budget_batches
from tokenclean.model.recovery import TrainState

log = logging.getLogger(__name__)


def mixed_precision(model):
    """bf16 autocast where fp32 trainable weights (PEFT's adapters) sit on bf16/fp16 frozen ones, on CUDA.

    Adapter matmuls then run in half precision on tensor cores instead of casting every input
    to fp32, while the optimizer keeps fp32 adapter weights. Elsewhere: no change.
    """
    device = next(model.parameters()).device
    dtypes = {p.dtype for p in model.parameters()}
    half = dtypes & {torch.bfloat16, torch.float16}
    if device.type != "cuda" or torch.float32 not in dtypes or not half:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(torch.autocast("cuda", dtype=half.pop()))
    stack.enter_context(disable_input_dtype_casting(model))
    return stack


def accumulate(model, micro_batches: list[dict], chunk: int = 4096, n_kept: int | None = None,
               kernels: str = "torch") -> float:
    """Backward over one optimizer step's micro-batches; returns their share of the step's mean token loss.

    ``n_kept`` is the step's kept-token count over all processes (default: these micro-batches').
    """
    if n_kept is None:
        n_kept = sum(int((b["labels"] != IGNORE).sum()) for b in micro_batches)
    total = 0.0
    for b in micro_batches:
        with mixed_precision(model):  # no fused RoPE here: measured slower in training steps than PyTorch's
            h, y = response_hidden(model, b)
            loss = head_nll(model, h, y, chunk, kernels, reduction="sum") / max(n_kept, 1)
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


def lr_lambda(total: int, warmup_ratio: float, schedule: str = "linear"):
    """The learning-rate factor of step ``s``: a linear warm-up over ``warmup_ratio`` of the ``total``
    steps, then a linear or cosine decay that reaches 0 after the last step."""
    warm = max(1, int(total * warmup_ratio))

    def factor(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        done = (s - warm) / max(1, total - warm)
        return max(0.0, 1 - done if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * done)))

    return factor


def _sync_grads(params: list[torch.Tensor], loss: float) -> float:
    """Sum gradients (and the step loss) over processes; a process without a micro-batch adds zeros."""
    if distributed.world_size() <= 1:
        return loss
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    total = torch.tensor([loss], device=params[0].device)
    distributed.sum_([p.grad for p in params] + [total])
    return float(total)


def train(model, ids_list, labels_list, cfg, pad_id: int, seed: int, desc: str = "train", kernels: str = "torch",
          state: TrainState | None = None) -> dict:
    """Fine-tune ``model`` in place on rows whose labels keep at least one token.

    Returns its statistics; ``curve`` holds one row per optimizer step (:data:`tokenclean.columns.CURVE`).

    With ``state``, every ``state.every`` steps the full training state is saved to its scratch
    folder, and a run that finds one there continues from it (bit-identical on CPU).
    """
    rows = [i for i, y in enumerate(labels_list) if (np.asarray(y) != IGNORE).any()]
    skipped = len(labels_list) - len(rows)
    if skipped:
        log.info("skipping %d samples with zero kept tokens", skipped)
    if not rows:
        raise ValueError("no sample has a kept token: nothing to train on (check select.data_prop and the scores)")
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    K.apply(model, kernels)
    params = [p for p in model.parameters() if p.requires_grad]
    distributed.broadcast_(params)
    if cfg.grad_accum % distributed.world_size():
        log.warning("grad_accum %d is not a multiple of %d processes: some idle in every step", cfg.grad_accum,
                    distributed.world_size())
    kept = [int((np.asarray(labels_list[r]) != IGNORE).sum()) for r in rows]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = plan_steps([len(ids_list[r]) for r in rows], cfg, seed)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(len(steps), cfg.warmup_ratio, cfg.schedule))
    state = state or TrainState(None, 0)
    done, history = state.restore(model, opt, sched)
    model.train()
    bar = distributed.progress(steps[done:], desc=desc, unit="step", mininterval=2, initial=done, total=len(steps))
    clock, seen = time.perf_counter(), 0
    for n, step in enumerate(bar, start=done):
        n_kept = sum(kept[i] for mb in step for i in mb)
        n_tokens = sum(len(ids_list[rows[i]]) for mb in step for i in mb)
        lr = sched.get_last_lr()[0]  # the rate this step uses
        micro = [collate([ids_list[rows[i]] for i in mb], [labels_list[rows[i]] for i in mb], pad_id, device=device,
                         mask=needs_mask(device)) for mb in distributed.share(step)]
        loss = _sync_grads(params, accumulate(model, micro, n_kept=n_kept, kernels=kernels))
        if not math.isfinite(loss):
            batch_rows = sorted(rows[i] for mb in step for i in mb)
            raise FloatingPointError(f"non-finite training loss at step {n} (data rows {batch_rows[:8]}): "
                                     f"lower {desc}.lr, or use float32/bfloat16 rather than float16")
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)  # the norm before clipping
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        history.append({"step": n + 1, "loss": loss, "lr": lr, "grad_norm": float(norm), "tokens": n_tokens,
                        "kept_tokens": n_kept})
        seen += n_tokens
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{seen / (time.perf_counter() - clock):,.0f}", refresh=False)
        state.after_step(n + 1, len(steps), model, opt, sched, history)
    model.eval()
    if seen:  # wall-clock speed goes to the log only: every saved figure must be the same on a rerun
        log.info("%s: %d steps, %.0f tokens/s", desc, len(steps) - done, seen / (time.perf_counter() - clock))
    losses = [h["loss"] for h in history]
    return {"steps": len(steps), "samples": len(rows), "samples_skipped": skipped,
            "first_loss": losses[0], "final_loss": float(np.mean(losses[-10:])), "curve": history}
