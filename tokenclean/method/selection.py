"""Token selection in linear time over flat score arrays; ties go to the earlier token.

All strategies return one boolean array over the flattened response tokens of the pool
(sample order, then position order), which :func:`split_keep` cuts back into samples.
"""

from __future__ import annotations

import numpy as np

STRATEGIES = ("global", "per_sample", "random", "full", "threshold")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` highest scores; among equal scores the earliest win. O(n)."""
    n = len(scores)
    keep = np.zeros(n, dtype=bool)
    if k <= 0:
        return keep
    if k >= n:
        keep[:] = True
        return keep
    cut = np.partition(scores, n - k)[n - k]  # k-th largest value
    keep[scores > cut] = True
    ties = np.flatnonzero(scores == cut)[: k - int(keep.sum())]
    keep[ties] = True
    return keep


def n_keep(n: int, data_prop: float) -> int:
    return int(np.floor(n * data_prop + 0.5))


def select(scores: np.ndarray, lengths: np.ndarray, strategy: str, data_prop: float, threshold=0.0, seed=0):
    """Keep mask over flat ``scores`` (``lengths`` = response tokens per sample)."""
    n = len(scores)
    if strategy == "global":
        return top_k(scores, n_keep(n, data_prop))
    if strategy == "full":
        return np.ones(n, dtype=bool)
    if strategy == "threshold":
        return scores > threshold
    if strategy == "random":
        keep = np.zeros(n, dtype=bool)
        keep[np.random.default_rng(seed).choice(n, n_keep(n, data_prop), replace=False)] = True
        return keep
    if strategy == "per_sample":
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        parts = [top_k(scores[a:b], n_keep(b - a, data_prop)) for a, b in zip(bounds[:-1], bounds[1:])]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    raise ValueError(f"unknown select.strategy '{strategy}'; use one of {STRATEGIES}")


def split_keep(keep: np.ndarray, lengths) -> list[np.ndarray]:
    return np.split(keep, np.cumsum(lengths)[:-1])


def summary(scores: np.ndarray, keep: np.ndarray, lengths) -> dict:
    kept_per_sample = np.add.reduceat(keep, np.cumsum(np.r_[0, lengths[:-1]])) if len(lengths) else np.zeros(0)
    return {
        "tokens": int(len(scores)),
        "tokens_kept": int(keep.sum()),
        "kept_share": float(keep.mean()) if len(keep) else 0.0,
        "min_kept_score": float(scores[keep].min()) if keep.any() else None,
        "samples": int(len(lengths)),
        "samples_zero_kept": int((np.asarray(kept_per_sample)[np.asarray(lengths) > 0] == 0).sum()),
    }
