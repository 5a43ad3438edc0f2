"""Ground-truth metrics of a selection on the synthetic data (tokens carry a known kind)."""

from __future__ import annotations

import numpy as np

from tokenclean.columns import ANSWER_KIND, BOILERPLATE_KIND, KIND_NAMES, NOISE_KIND


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = (ends - (counts - 1) / 2.0)[inverse]  # 1-based average ranks
    return float((avg_rank[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def kind_metrics(scores: np.ndarray, keep: np.ndarray, kinds: np.ndarray) -> dict:
    """Shares kept or dropped per kind, score AUC (answer vs the rest) and score quantiles per kind."""
    def share(mask, kept=True):
        return float((keep[mask] == kept).mean()) if mask.any() else None

    out = {
        "answer_kept": share(kinds == ANSWER_KIND),
        "boilerplate_dropped": share(kinds == BOILERPLATE_KIND, kept=False),
        "noise_dropped": share(kinds == NOISE_KIND, kept=False),
        "score_auc": roc_auc(scores, kinds == ANSWER_KIND),
    }
    dist = {}
    for k, name in KIND_NAMES.items():
        s = scores[kinds == k]
        if len(s):
            q = np.quantile(s, [0.1, 0.5, 0.9])
            dist[name] = {"tokens": int(len(s)), "mean": float(s.mean()),
                          "p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2])}
    return out, dist


class GroundTruth:
    """Scores, keep and kinds of a selection, gathered batch by batch while every token has a kind
    (the synthetic data); the first token without one (a user's data: kind -1) ends the gathering,
    so a large pool of real data is never held."""

    def __init__(self):
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = []

    def add(self, scores: np.ndarray, keep: np.ndarray, kinds_per_sample: list[np.ndarray]) -> None:
        if self.parts is None:
            return
        kinds = np.concatenate(kinds_per_sample) if kinds_per_sample else np.zeros(0, np.int8)
        self.parts = [*self.parts, (scores, keep, kinds)] if (kinds >= 0).all() else None

    @property
    def gathering(self) -> bool:
        """False once a token without a kind was seen: nothing more is worth collecting."""
        return self.parts is not None

    @property
    def known(self) -> bool:
        return bool(self.parts)

    def metrics(self) -> tuple[dict, dict]:
        """:func:`kind_metrics` over everything gathered."""
        return kind_metrics(*(np.concatenate(col) for col in zip(*self.parts)))
