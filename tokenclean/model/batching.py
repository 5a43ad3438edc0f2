"""Ragged rows to batches: padded (rows x longest) or packed (one row of samples end to end).

Padding lives only in memory, for the length of one batch. A packed batch has none: its samples
sit end to end in one row, each with positions counting from 0, and attention never crosses
from one sample into another (see :mod:`tokenclean.model.packing`). Both give every token the
same loss up to float rounding; packing spends no compute on padding and gives every batch
about the same shape.
"""

from __future__ import annotations

import numpy as np
import torch

from tokenclean.columns import IGNORE


def token_budget_batches(lengths, budget: int, order=None, packed: bool = False) -> list[list[int]]:
    """Group row indices so each batch's size stays within ``budget`` tokens.

    The size is rows x longest for a padded batch, the sum of lengths for a ``packed`` one (a
    sample longer than the budget gets a batch of its own). ``order`` defaults to longest first,
    which keeps padding small and puts the largest batch first, so an out-of-memory error shows at once.
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable") if order is None else order
    batches, cur, longest, total = [], [], 0, 0
    for i in order:
        n = int(lengths[i])
        size = total + n if packed else max(longest, n) * (len(cur) + 1)
        if cur and size > budget:
            batches.append(cur)
            cur, longest, total = [], 0, 0
        cur.append(int(i))
        longest, total = max(longest, n), total + n
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


def collate_packed(ids_list, labels_list, device=None) -> dict[str, torch.Tensor]:
    """Samples end to end in one row, positions restarting at 0 for each: no padding, no mask.

    Without a mask, the model reads where each sample starts from the position ids (a position
    that does not follow its predecessor by one), and attends within samples only. A sample's
    first token has no predictor inside it, so it must be unlabelled (as prepare leaves it).
    """
    if any(len(y) and int(y[0]) != IGNORE for y in labels_list):
        raise ValueError("a packed sample's first token cannot be learned (no token before it predicts it)")
    ids = torch.as_tensor(np.concatenate([np.asarray(x) for x in ids_list]), dtype=torch.long)[None]
    labels = torch.as_tensor(np.concatenate([np.asarray(y) for y in labels_list]), dtype=torch.long)[None]
    lengths = [len(x) for x in ids_list]
    positions = torch.as_tensor(np.concatenate([np.arange(n) for n in lengths]), dtype=torch.long)[None]
    # the sample starts once per batch, for a varlen kernel (tokenclean.model.packing); SDPA ignores them
    starts = torch.as_tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.int32)
    out = {"input_ids": ids, "labels": labels, "position_ids": positions, "cu_seq_lens_q": starts,
           "cu_seq_lens_k": starts}
    out = {k: v.to(device) for k, v in out.items()} if device is not None else out
    return {**out, "max_length_q": max(lengths), "max_length_k": max(lengths)}


def make_batch(ids_list, labels_list, pad_id: int, device, packed: bool) -> dict[str, torch.Tensor]:
    """The batch a scoring or training pass runs on: packed, or right-padded (masked on CPU only)."""
    if packed:
        return collate_packed(ids_list, labels_list, device)
    return collate(ids_list, labels_list, pad_id, device=device, mask=needs_mask(device))
