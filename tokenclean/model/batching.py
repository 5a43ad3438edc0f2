"""Ragged rows to padded batches. Padding lives only in memory, for the length of one batch."""

from __future__ import annotations

import numpy as np
import torch

from tokenclean.columns import IGNORE


def token_budget_batches(lengths, budget: int, order=None) -> list[list[int]]:
    """Group row indices so each batch's padded size (rows x longest) stays within ``budget``.

    ``order`` defaults to longest first, which keeps padding small and puts the largest
    batch first, so an out-of-memory error shows at once.
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable") if order is None else order
    batches, cur, longest = [], [], 0
    for i in order:
        longest_if = max(longest, int(lengths[i]))
        if cur and longest_if * (len(cur) + 1) > budget:
            batches.append(cur)
            cur, longest_if = [], int(lengths[i])
        cur.append(int(i))
        longest = longest_if
    if cur:
        batches.append(cur)
    return batches


def needs_mask(device) -> bool:
    """Whether right-padded batches on ``device`` carry an attention mask.

    A causal model never lets a real token see the padding to its right, so a right-padded
    batch needs no mask: on CUDA, leaving it out lets attention run the fused flash kernel
    (a mask forces a slower one). On CPU the masked path stays, the reference the tests
    and the recorded CPU results come from.
    """
    return torch.device(device).type != "cuda"


def collate(ids_list, labels_list, pad_id: int, side: str = "right", device=None,
            mask: bool = True) -> dict[str, torch.Tensor]:
    """Pad to the longest row. Position ids count real tokens only, so left padding shifts nothing.

    ``mask=False`` (right padding only) leaves out ``attention_mask`` and ``position_ids``:
    the model's default causal attention and positions are then exact for every real token.
    """
    if not mask and side != "right":
        raise ValueError("only right-padded batches may go without an attention mask")
    width = max(len(x) for x in ids_list)
    n = len(ids_list)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    labels = torch.full((n, width), IGNORE, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    for r, (x, y) in enumerate(zip(ids_list, labels_list)):
        sl = slice(0, len(x)) if side == "right" else slice(width - len(x), width)
        ids[r, sl] = torch.tensor(np.asarray(x), dtype=torch.long)
        labels[r, sl] = torch.tensor(np.asarray(y), dtype=torch.long)
        attn[r, sl] = 1
    out = {"input_ids": ids, "labels": labels}
    if mask:
        out.update(attention_mask=attn, position_ids=(attn.cumsum(-1) - 1).clamp(min=0))
    return {k: v.to(device) for k, v in out.items()} if device is not None else out
