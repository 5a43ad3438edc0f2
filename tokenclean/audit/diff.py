"""How two keep masks over the same samples differ (two rounds, two runs, or two revisions).

Samples are matched by id. A shared sample is compared only if both sides hold the same
response tokens (same ids in the same order); otherwise its masks say nothing comparable
(different tokenizer or data) and it is counted apart.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tokenclean.audit.load import RoundTokens
from tokenclean.audit.stats import per_sample_sums
from tokenclean.columns import KIND_NAMES


def gather(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Flat indices of the tokens of ``rows``, row after row (no Python loop over rows)."""
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.repeat(starts - firsts, lengths) + np.arange(lengths.sum(), dtype=np.int64)


def matched_rows(a: RoundTokens, b: RoundTokens) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows of ``a`` and ``b`` holding the same sample with the same response tokens (in ``a``'s order),
    and the number of shared samples whose tokens differ."""
    _, ia, ib = np.intersect1d(a.sample_ids, b.sample_ids, assume_unique=True, return_indices=True)
    order = np.argsort(ia, kind="stable")
    ia, ib = ia[order], ib[order]
    same = a.lengths[ia] == b.lengths[ib]
    ia_s, ib_s = ia[same], ib[same]
    offsets = np.concatenate([[0], np.cumsum(a.lengths[ia_s])])
    differs = per_sample_sums(a.token_ids[gather(a.offsets, ia_s)] != b.token_ids[gather(b.offsets, ib_s)], offsets) > 0
    return ia_s[~differs], ib_s[~differs], int((~same).sum() + differs.sum())


def top_tokens(token_ids: np.ndarray, top: int, label: Callable[[int], str] | None) -> list[dict]:
    counts = np.bincount(token_ids) if len(token_ids) else np.zeros(0, np.int64)
    order = np.argsort(-counts, kind="stable")[:top]
    return [{"token_id": int(t), **({"text": label(int(t))} if label else {}), "count": int(counts[t])}
            for t in order if counts[t] > 0]


def round_diff(a: RoundTokens, b: RoundTokens, top: int = 10, examples: int = 3,
               label: Callable[[int], str] | None = None) -> dict:
    """Agreement, Jaccard of the kept sets, flips in each direction, top flipped tokens, examples."""
    ia, ib, mismatched = matched_rows(a, b)
    xa, xb = gather(a.offsets, ia), gather(b.offsets, ib)
    ka, kb, ids = a.keep[xa], b.keep[xb], a.token_ids[xa]
    lost, gained = ka & ~kb, ~ka & kb  # kept -> dropped, dropped -> kept
    n, either = len(ka), int((ka | kb).sum())
    flips = per_sample_sums(lost | gained, np.concatenate([[0], np.cumsum(a.lengths[ia])]))
    worst = np.argsort(-flips, kind="stable")[:examples]
    return {
        "a": a.name, "b": b.name, "samples_a": len(a.sample_ids), "samples_b": len(b.sample_ids),
        "shared_samples": len(ia) + mismatched, "compared_samples": len(ia), "token_mismatch_samples": mismatched,
        "tokens": n, "kept_a": int(ka.sum()), "kept_b": int(kb.sum()),
        "both_kept": int((ka & kb).sum()), "both_dropped": int((~ka & ~kb).sum()),
        "kept_to_dropped": int(lost.sum()), "dropped_to_kept": int(gained.sum()),
        "agreement": float((ka == kb).mean()) if n else None,
        "jaccard": float((ka & kb).sum() / either) if either else None,
        "samples_with_flips": int((flips > 0).sum()),
        "top_kept_to_dropped": top_tokens(ids[lost], top, label),
        "top_dropped_to_kept": top_tokens(ids[gained], top, label),
        "examples": [{"sample_id": str(a.sample_ids[ia[i]]), "flips": int(flips[i])} for i in worst if flips[i] > 0],
        "kinds": _kind_flips(a.kinds[xa], lost, gained) if a.kinds is not None else None,
    }


def _kind_flips(kinds: np.ndarray, lost: np.ndarray, gained: np.ndarray) -> dict:
    n = max(KIND_NAMES) + 1
    down, up = np.bincount(kinds[lost], minlength=n), np.bincount(kinds[gained], minlength=n)
    return {name: {"kept_to_dropped": int(down[k]), "dropped_to_kept": int(up[k])} for k, name in KIND_NAMES.items()}
