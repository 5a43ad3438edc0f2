"""The published Token Cleaning recipe's way of scoring and training: the baseline of bench.speed.

Scoring: fp32 weights under bf16 autocast, batches of 6 in file order padded to the longest,
full-vocabulary logits, per-token cross-entropy, each row padded to 2048 positions and
turned into Python lists, then a Python sort over all response tokens for the global top-k.
Training: LoRA r=64 on every linear layer, fp32 weights under bf16 autocast, batches of 6
in file order padded to the longest, gradient checkpointing, the loss over full logits.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model

from bench.workload import Samples
from tokenclean.columns import IGNORE

BATCH = 6
ROW = 2048
LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def padded(samples: Samples, start: int, device):
    """Rows ``start .. start + BATCH`` right-padded to their longest: ids, labels, attention mask."""
    ids, labels = samples.ids[start : start + BATCH], samples.labels[start : start + BATCH]
    width = max(len(x) for x in ids)
    x = torch.zeros(len(ids), width, dtype=torch.long)
    y = torch.full((len(ids), width), IGNORE, dtype=torch.long)
    mask = torch.zeros(len(ids), width, dtype=torch.long)
    for r, (a, b) in enumerate(zip(ids, labels)):
        x[r, : len(a)], y[r, : len(b)], mask[r, : len(a)] = torch.as_tensor(a), torch.as_tensor(b), 1
    return x.to(device), y.to(device), mask.to(device)


def _autocast(device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def token_losses(model, samples: Samples) -> list[list[float]]:
    """Per-position losses of every sample, each a Python list of ROW floats (position j-1 predicts j)."""
    device = next(model.parameters()).device
    rows: list[list[float]] = []
    with _autocast(device):
        for start in range(0, len(samples.ids), BATCH):
            x, y, mask = padded(samples, start, device)
            logits = model(input_ids=x, attention_mask=mask).logits
            vocab = logits.shape[-1]
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), y[:, 1:].reshape(-1), reduction="none")
            loss = F.pad(loss.view(len(x), -1), (0, ROW - loss.numel() // len(x)))
            rows.extend(loss.float().cpu().tolist())
    return rows


def per_token(rows: list[list[float]], samples: Samples) -> list[np.ndarray]:
    """The losses of the response tokens only, as the project stores them (for comparison)."""
    return [np.asarray(row, dtype=np.float32)[np.flatnonzero(y != IGNORE) - 1] for row, y in zip(rows, samples.labels)]


def select(base: list[list[float]], ref: list[list[float]], samples: Samples, share: float) -> int:
    """Global top-k the recipe's way: (score, sample, position) tuples sorted in Python; returns k."""
    tokens = []
    for i, labels in enumerate(samples.labels):
        for j, label in enumerate(labels.tolist()):
            if j and label != IGNORE:
                tokens.append((base[i][j - 1] - ref[i][j - 1], i, j))
    top = sorted(tokens, key=lambda t: t[0], reverse=True)[: int(len(tokens) * share)]
    return len(top)


def lora_model(model):
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    return get_peft_model(model, LoraConfig(r=64, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_MODULES))


def train_steps(model, samples: Samples, steps: int, first: int = 0, lr: float = 1e-4) -> int:
    """``steps`` optimizer steps on batches from row ``first`` on (wrapping); returns real tokens seen."""
    device = next(model.parameters()).device
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    tokens = 0
    for s in range(steps):
        x, y, mask = padded(samples, (first + s * BATCH) % len(samples.ids), device)
        with _autocast(device):
            loss = model(input_ids=x, attention_mask=mask, labels=y).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
    return tokens
