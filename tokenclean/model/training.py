"""Masked SFT: cross-entropy on kept response tokens only, normalised over the accumulated batch.

The loss of an optimizer step is ``sum(NLL of kept tokens) / (kept tokens in all its
micro-batches)``, so the gradient does not depend on how a step is cut into micro-batches,
and a short sample weighs per token exactly as a long one. The LM head runs only on kept
positions (see :mod:`tokenclean.method.scoring`).

In a launched process group every process follows the same plan and takes every N-th
micro-batch of each step. The loss is one module (:class:`ResponseLoss`) that accelerate wraps in
DDP or FSDP2 (:func:`tokenclean.model.distributed.wrap`): gradients are all-reduced during the
last micro-batch's backward pass, so N processes compute the same step as one (up to float
summation order).
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
from tokenclean.model.batching import make_batch, token_budget_batches
from tokenclean.model.packing import unwrapped, use_varlen
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


class ResponseLoss(torch.nn.Module):
    """The summed NLL of a batch's labelled tokens: the one forward that DDP and FSDP wrap.

    Wrappers hook a module's forward, so the decoder and the chunked LM head run inside this one.
    """

    def __init__(self, model, chunk: int = 4096, kernels: str = "torch"):
        super().__init__()
        self.model, self.chunk, self.kernels = model, chunk, kernels
        self._no_split_modules = getattr(unwrapped(model), "_no_split_modules", None)  # FSDP's unit: a decoder layer

    def forward(self, **batch) -> torch.Tensor:
        with mixed_precision(self.model):  # no fused RoPE here: measured slower in training steps than PyTorch's
            h, y = response_hidden(self.model, batch)
            return head_nll(self.model, h, y, self.chunk, self.kernels, reduction="sum")


def _loss_module(model, chunk: int, kernels: str):
    wrapped = getattr(model, "module", model)  # DDP keeps the module it wraps here
    return model if isinstance(wrapped, ResponseLoss) else ResponseLoss(model, chunk, kernels)


def accumulate(model, micro_batches: list[dict], chunk: int = 4096, n_kept: int | None = None,
               kernels: str = "torch", dummy: dict | None = None) -> float:
    """Backward over one optimizer step's micro-batches; returns their share of the step's mean token loss.

    ``model``: a causal LM, or its :class:`ResponseLoss` as wrapped for several processes. ``n_kept``
    is the step's kept-token count over all processes (default: these micro-batches'). Wrapped, the
    gradients are all-reduced in the last backward only, and the loss is scaled by the process count
    since the wrappers average gradients where the step needs their sum. A process without a
    micro-batch runs ``dummy`` with weight 0, to take part in that all-reduce.
    """
    loss_fn = _loss_module(model, chunk, kernels)
    if n_kept is None:
        n_kept = sum(int((b["labels"] != IGNORE).sum()) for b in micro_batches)
    acc, scale = distributed.accelerator(), distributed.world_size()
    batches = [(b, 1.0) for b in micro_batches] or ([(dummy, 0.0)] if dummy else [])
    total = 0.0
    for i, (b, weight) in enumerate(batches):
        last = i == len(batches) - 1
        with contextlib.nullcontext() if acc is None or last else acc.no_sync(loss_fn):
            loss = loss_fn(**b) / max(n_kept, 1)
            loss = loss if weight else loss * 0.0
            (loss * scale if scale > 1 else loss).backward()
        total += float(loss.detach())
    return total


def plan_steps(lengths, cfg, seed: int, packed: bool = False) -> list[list[list[int]]]:
    """Optimizer steps as lists of micro-batches of row indices.

    Batches are length-sorted (little padding; ``packed``: filled to the token budget), then their
    order is shuffled per epoch with ``seed``; ``cfg.epochs`` may be fractional.
    """
    batches = token_budget_batches(lengths, cfg.batch_tokens, packed=packed)
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


def checkpoint_activations(model, on: bool) -> None:
    """Recompute each decoder layer's activations in the backward pass (transformers' own switch, by
    its name before and after v5.20). Non-reentrant: frozen inputs (LoRA on frozen embeddings) need no grad hooks."""
    new = hasattr(model, "activation_checkpointing_enable")
    if not on:
        return (model.activation_checkpointing_disable if new else model.gradient_checkpointing_disable)()
    if new:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _prepare(model, cfg, kernels: str, packed: bool, checkpointing: bool):
    """The loss module training steps run and its AdamW, both wrapped for several processes."""
    K.apply(model, kernels)
    if packed:
        use_varlen(model)
    if checkpointing:
        checkpoint_activations(model, True)
    loss_fn = ResponseLoss(model, kernels=kernels)
    params = [p for p in loss_fn.parameters() if p.requires_grad]
    return distributed.wrap(loss_fn, torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay))


def _clip(loss_fn, max_norm: float) -> float:
    """Clip the gradients' global norm; the norm before clipping (over every shard, under FSDP)."""
    acc = distributed.accelerator()
    if acc is None:
        return float(torch.nn.utils.clip_grad_norm_([p for p in loss_fn.parameters() if p.requires_grad], max_norm))
    norm = acc.clip_grad_norm_(loss_fn.parameters(), max_norm)
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)


def train(model, ids_list, labels_list, cfg, pad_id: int, seed: int, desc: str = "train", kernels: str = "torch",
          state: TrainState | None = None, packed: bool = False, checkpointing: bool = False) -> dict:
    """Fine-tune ``model`` in place on rows whose labels keep at least one token.

    Returns its statistics; ``curve`` holds one row per optimizer step (:data:`tokenclean.columns.CURVE`).
    ``packed``: micro-batches of samples end to end (``cfg.batch_tokens`` real tokens each);
    ``checkpointing``: activations recomputed in the backward pass. Neither changes the result
    beyond float rounding. Under FSDP the weights end sharded: :func:`full_state_dict` gathers them.

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
    loss_fn, opt = _prepare(model, cfg, kernels, packed, checkpointing)
    if cfg.grad_accum % distributed.world_size():
        log.warning("grad_accum %d is not a multiple of %d processes: some idle in every step", cfg.grad_accum,
                    distributed.world_size())
    kept = [int((np.asarray(labels_list[r]) != IGNORE).sum()) for r in rows]
    steps = plan_steps([len(ids_list[r]) for r in rows], cfg, seed, packed)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(len(steps), cfg.warmup_ratio, cfg.schedule))
    state = state or TrainState(None, 0)
    done, history = state.restore(model, opt, sched)
    model.train()
    bar = distributed.progress(steps[done:], desc=desc, unit="step", mininterval=2, initial=done, total=len(steps))
    clock, seen = time.perf_counter(), 0

    def batch(mb):
        return make_batch([ids_list[rows[i]] for i in mb], [labels_list[rows[i]] for i in mb], pad_id, device, packed)

    for n, step in enumerate(bar, start=done):
        n_kept = sum(kept[i] for mb in step for i in mb)
        n_tokens = sum(len(ids_list[rows[i]]) for mb in step for i in mb)
        lr = sched.get_last_lr()[0]  # the rate this step uses
        micro = [batch(mb) for mb in distributed.share(step)]
        dummy = None if micro or distributed.world_size() == 1 else batch(step[0])
        loss = distributed.sum_value(accumulate(loss_fn, micro, n_kept=n_kept, dummy=dummy), device)
        if not math.isfinite(loss):
            batch_rows = sorted(rows[i] for mb in step for i in mb)
            raise FloatingPointError(f"non-finite training loss at step {n} (data rows {batch_rows[:8]}): "
                                     f"lower {desc}.lr, or use float32/bfloat16 rather than float16")
        norm = _clip(loss_fn, cfg.max_grad_norm)  # the norm before clipping
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        history.append({"step": n + 1, "loss": loss, "lr": lr, "grad_norm": norm, "tokens": n_tokens,
                        "kept_tokens": n_kept})
        seen += n_tokens
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{seen / (time.perf_counter() - clock):,.0f}", refresh=False)
        state.after_step(n + 1, len(steps), model, opt, sched, history)
    model.eval()
    if checkpointing:
        checkpoint_activations(model, False)
    if seen:  # wall-clock speed goes to the log only: every saved figure must be the same on a rerun
        log.info("%s: %d steps, %.0f tokens/s", desc, len(steps) - done, seen / (time.perf_counter() - clock))
    losses = [h["loss"] for h in history]
    return {"steps": len(steps), "samples": len(rows), "samples_skipped": skipped,
            "first_loss": losses[0], "final_loss": float(np.mean(losses[-10:])), "curve": history}


def full_state_dict(model) -> dict[str, torch.Tensor]:
    """Every weight of a model FSDP2 sharded, whole and on the CPU (collective: every process calls it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
