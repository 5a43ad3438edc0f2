"""Statistics of one round's keep mask: kept share, scores, zero-kept samples, token strings, kinds.

Everything is a vectorised pass over flat arrays (counts with ``bincount``, per-sample sums
with one cumulative sum, quantiles with partitions), so ten million tokens take seconds.
The result is plain JSON-able data shared by the terminal view and the HTML report.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tokenclean.audit.load import RoundTokens
from tokenclean.columns import KIND_NAMES

QUANTILES = {"p1": 0.01, "p10": 0.1, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p90": 0.9, "p99": 0.99}


def per_sample_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of ``values`` within each sample (empty samples sum to 0, unlike ``np.add.reduceat``)."""
    csum = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    return csum[offsets[1:]] - csum[offsets[:-1]]


def distribution(x: np.ndarray) -> dict | None:
    if len(x) == 0:
        return None
    q = np.quantile(x, list(QUANTILES.values()))
    return {"n": int(len(x)), "mean": float(x.mean(dtype=np.float64)), "min": float(x.min()),
            **{k: float(v) for k, v in zip(QUANTILES, q)}, "max": float(x.max())}


def score_stats(scores: np.ndarray, keep: np.ndarray, bins: int = 30) -> dict:
    """Quantiles of all, kept and dropped scores, and a histogram split by kept and dropped."""
    finite = np.isfinite(scores)
    lo, hi = (float(scores[finite].min()), float(scores[finite].max())) if finite.any() else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    return {
        "all": distribution(scores), "kept": distribution(scores[keep]), "dropped": distribution(scores[~keep]),
        "histogram": {"edges": edges.tolist(),
                      "kept": np.histogram(scores[keep & finite], edges)[0].tolist(),
                      "dropped": np.histogram(scores[~keep & finite], edges)[0].tolist()},
    }


def token_table(token_ids: np.ndarray, keep: np.ndarray, top: int, label: Callable[[int], str] | None) -> dict:
    """The ``top`` most-dropped and most-kept token ids, with counts and kept rates."""
    total = np.bincount(token_ids)
    kept = np.bincount(token_ids[keep], minlength=len(total))
    dropped = total - kept

    def rows(by: np.ndarray) -> list[dict]:
        order = np.argsort(-by, kind="stable")[:top]  # ties: lower token id first
        return [{"token_id": int(t), **({"text": label(int(t))} if label else {}), "count": int(total[t]),
                 "kept": int(kept[t]), "dropped": int(dropped[t]), "kept_rate": float(kept[t] / total[t])}
                for t in order if by[t] > 0]

    return {"most_dropped": rows(dropped), "most_kept": rows(kept)}


def kind_split(kinds: np.ndarray, keep: np.ndarray) -> dict:
    """Kept and dropped tokens per ground-truth kind (answer, boilerplate, noise)."""
    n = max(KIND_NAMES) + 1
    total = np.bincount(kinds, minlength=n)
    kept = np.bincount(kinds[keep], minlength=n)
    return {name: {"tokens": int(total[k]), "kept": int(kept[k]), "dropped": int(total[k] - kept[k]),
                   "kept_share": float(kept[k] / total[k]) if total[k] else None}
            for k, name in KIND_NAMES.items()}


def round_stats(r: RoundTokens, top: int = 15, bins: int = 10, label: Callable[[int], str] | None = None) -> dict:
    """Every statistic of one round (``label`` turns a token id into its display string)."""
    lengths = r.lengths
    kept_per = per_sample_sums(r.keep, r.offsets)
    has = lengths > 0  # bin of a share kept/length in integers: float edges would misplace 3/10 and the like
    share_bins = np.minimum(kept_per[has] * bins // lengths[has], bins - 1)
    zero = np.flatnonzero(kept_per == 0)
    tokens, kept = int(len(r.keep)), int(r.keep.sum())
    return {
        "round": r.name, "samples": int(len(lengths)), "tokens": tokens, "kept": kept,
        "kept_share": kept / tokens if tokens else None,
        "samples_zero_kept": int(len(zero)), "zero_kept_examples": r.sample_ids[zero[:5]].tolist(),
        "sample_kept_share": {"edges": np.linspace(0, 1, bins + 1).tolist(),
                              "counts": np.bincount(share_bins, minlength=bins).tolist()},
        "scores": score_stats(r.scores, r.keep) if r.scores is not None else None,
        **token_table(r.token_ids, r.keep, top, label),
        "kinds": kind_split(r.kinds, r.keep) if r.kinds is not None else None,
    }
