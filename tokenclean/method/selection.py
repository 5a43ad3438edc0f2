"""Token selection in linear time and bounded memory over flat score arrays; ties go to the earlier token.

Every strategy is a :func:`masker`: a function from one batch of flat scores (the response tokens
of consecutive samples, in pool order) to its keep mask. ``global`` and ``random`` need the k-th
largest value over the whole pool first; :func:`kth_largest` finds it exactly in two streamed
passes of 65,536-bin histograms, so a 200M-token pool never has to sit in memory (800 MB of
float32, twice that for ``np.partition``'s copy). :func:`select` is the same on arrays in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

STRATEGIES = ("global", "per_sample", "random", "full", "threshold")
Stream = Callable[[], Iterable[np.ndarray]]  # flat score batches of the pool, from its start, each call


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


def float_keys(scores: np.ndarray) -> np.ndarray:
    """uint32 keys that sort as the float32 ``scores`` do (-0.0 taken as 0.0, as ``==`` does)."""
    bits = (np.asarray(scores, np.float32) + np.float32(0)).view(np.uint32)
    return np.where(bits >> 31, ~bits, bits | np.uint32(1 << 31))


def key_value(key: int) -> np.float32:
    bits = key & 0x7FFFFFFF if key >> 31 else ~key & 0xFFFFFFFF
    return np.array([bits], np.uint32).view(np.float32)[0]


def _last_reaching(counts: np.ndarray, k: int) -> tuple[int, int]:
    """(highest bin at or above which ``k`` values lie, how many lie strictly above it)."""
    at_or_above = np.cumsum(counts[::-1])[::-1]
    b = int(np.flatnonzero(at_or_above >= k)[-1])
    return b, int(at_or_above[b] - counts[b])


def high_bits(stream: Stream) -> np.ndarray:
    """A histogram of the keys' high 16 bits over the whole stream (its sum counts the scores)."""
    high = np.zeros(1 << 16, np.int64)
    for s in stream():
        high += np.bincount(float_keys(s) >> 16, minlength=1 << 16)
    return high


def kth_largest(stream: Stream, k: int, high: np.ndarray | None = None) -> tuple[np.float32, int]:
    """(the k-th largest score, how many scores are strictly greater), exactly, ``1 <= k <= n``:
    a histogram of the keys' high 16 bits (:func:`high_bits`, or ``high`` if already made) finds
    the bin, one of its low 16 bits the value."""
    b, greater = _last_reaching(high_bits(stream) if high is None else high, k)
    low = np.zeros(1 << 16, np.int64)
    for s in stream():
        keys = float_keys(s)
        low += np.bincount(keys[keys >> 16 == b] & 0xFFFF, minlength=1 << 16)
    lo, above = _last_reaching(low, k - greater)
    return key_value((b << 16) | lo), greater + above


def streamed_top_k(stream: Stream, data_prop: float) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`top_k` of the whole stream's ``n_keep`` share, as a mask function over its batches in order."""
    high = high_bits(stream)  # its sum counts the scores: no pass only to count them
    n = int(high.sum())
    k = n_keep(n, data_prop)
    if k <= 0 or k >= n:
        return lambda s: np.full(len(s), k > 0)
    cut, greater = kth_largest(stream, k, high)
    ties = [k - greater]  # tied scores still to keep, earliest first

    def mask(s: np.ndarray) -> np.ndarray:
        keep = s > cut
        tied = np.flatnonzero(s == cut)[: ties[0]]
        keep[tied] = True
        ties[0] -= len(tied)
        return keep

    return mask


def _random_keys(stream: Stream, seed: int) -> Stream:
    """One uniform key per token, the same sequence on every pass (``random`` keeps the top share of them)."""
    def keys():
        rng = np.random.default_rng(seed)
        return (rng.random(len(s), dtype=np.float32) for s in stream())
    return keys


def masker(strategy: str, data_prop: float, threshold: float, seed: int, stream: Stream):
    """``mask(scores, lengths)``: the keep mask of one batch (``lengths`` = response tokens per sample)."""
    if strategy == "full":
        return lambda s, lengths: np.ones(len(s), bool)
    if strategy == "threshold":
        return lambda s, lengths: s > threshold
    if strategy == "per_sample":
        def per_sample(s, lengths):
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            parts = [top_k(s[a:b], n_keep(b - a, data_prop)) for a, b in zip(bounds[:-1], bounds[1:])]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
        return per_sample
    if strategy == "global":
        top = streamed_top_k(stream, data_prop)
        return lambda s, lengths: top(s)
    if strategy == "random":
        keys = _random_keys(stream, seed)
        top, rng = streamed_top_k(keys, data_prop), np.random.default_rng(seed)
        return lambda s, lengths: top(rng.random(len(s), dtype=np.float32))
    raise ValueError(f"unknown select.strategy '{strategy}'; use one of {STRATEGIES}")


def select(scores: np.ndarray, lengths: np.ndarray, strategy: str, data_prop: float, threshold=0.0, seed=0):
    """Keep mask over flat ``scores`` in memory (``lengths`` = response tokens per sample)."""
    return masker(strategy, data_prop, threshold, seed, lambda: [scores])(scores, lengths)


def split_keep(keep: np.ndarray, lengths) -> list[np.ndarray]:
    return np.split(keep, np.cumsum(lengths)[:-1])


class Tally:
    """The selection summary, counted batch by batch (see :func:`summary`)."""

    def __init__(self):
        self.tokens = self.kept = self.samples = self.zero_kept = 0
        self.min_kept: float | None = None

    def add(self, scores: np.ndarray, keep: np.ndarray, lengths: np.ndarray) -> None:
        self.tokens, self.kept, self.samples = self.tokens + len(scores), self.kept + int(keep.sum()), \
            self.samples + len(lengths)
        if keep.any():
            low = float(scores[keep].min())
            self.min_kept = low if self.min_kept is None else min(self.min_kept, low)
        if len(lengths) and len(keep):
            per_sample = np.add.reduceat(keep, np.cumsum(np.r_[0, lengths[:-1]]))
            self.zero_kept += int((per_sample[lengths > 0] == 0).sum())

    def summary(self) -> dict:
        return {"tokens": self.tokens, "tokens_kept": self.kept,
                "kept_share": self.kept / self.tokens if self.tokens else 0.0, "min_kept_score": self.min_kept,
                "samples": self.samples, "samples_zero_kept": self.zero_kept}


def summary(scores: np.ndarray, keep: np.ndarray, lengths) -> dict:
    tally = Tally()
    tally.add(scores, keep, np.asarray(lengths))
    return tally.summary()
