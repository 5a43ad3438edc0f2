"""The one alignment rule between labels, logits and per-token artifacts.

A causal LM predicts token ``j`` from the hidden state at position ``j - 1``. A *response
position* is a ``j`` with ``labels[j] != IGNORE``. Per-token artifacts (losses, scores, keep
masks) hold one value per response position, in order; nothing else is stored, so no
padding ever reaches disk and left or right padding of a batch cannot shift anything.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

from tokenclean.columns import IGNORE

if TYPE_CHECKING:
    import torch


def response_positions(labels: np.ndarray | torch.Tensor):
    """Indices ``j`` of the tokens that are learned (``labels[j] != IGNORE``).

    For a tensor, one index tensor per dimension (``rows, cols`` for a padded batch),
    in row-major order; for a 1-D array, the positions.
    """
    # torch is only looked up, never imported here: the stages that work on numpy rows (select, the
    # audit) then start without torch's ~1 s import
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(labels, torch.Tensor):
        return (labels != IGNORE).nonzero(as_tuple=True)
    return np.flatnonzero(np.asarray(labels) != IGNORE)


def predictor_positions(positions):
    """Positions whose hidden state predicts the tokens at ``positions``."""
    return positions - 1


def apply_keep(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Labels with dropped response tokens set to IGNORE (``keep`` has one entry per response token)."""
    labels = np.array(labels, copy=True)
    pos = response_positions(labels)
    if len(pos) != len(keep):
        raise ValueError(f"keep mask has {len(keep)} entries but the sample has {len(pos)} response tokens")
    labels[pos[~np.asarray(keep, dtype=bool)]] = IGNORE
    return labels
