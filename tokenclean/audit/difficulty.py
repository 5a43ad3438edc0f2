"""Who a round's selection favours: the kept share by sample difficulty, and samples left with nothing.

The paper's "Matthew effect": a reference that already knows some samples scores their tokens higher, so
selection can keep more of the easy samples and less of the hard ones, round after round. A sample's
difficulty is the base model's mean loss over its response tokens; samples fall into quartiles of it
(``kept_q1`` easiest ... ``kept_q4`` hardest), each the share of its response tokens kept. Rounds scored
against the base have no losses (every token is kept): they get none of these figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from tokenclean import columns as C
from tokenclean.data.rows import iter_rows


def kept_by_difficulty(scores: Path, keep: Path) -> dict[str, float]:
    """``kept_q1``..``kept_q4`` and ``zero_kept_share`` of a round (empty without base losses)."""
    if C.LOSS_BASE not in pq.read_schema(scores).names:
        return {}
    loss, kept, tokens = [], [], []
    for s, k in zip(iter_rows(scores, (C.SAMPLE_ID, C.LOSS_BASE)), iter_rows(keep, (C.SAMPLE_ID, C.KEEP)),
                    strict=True):
        loss += [float(x.mean()) if len(x) else 0.0 for x in s[C.LOSS_BASE]]
        kept += [int(x.sum()) for x in k[C.KEEP]]
        tokens += [len(x) for x in k[C.KEEP]]
    loss, kept, tokens = np.array(loss), np.array(kept), np.array(tokens)
    quartile = np.digitize(loss, np.quantile(loss, [0.25, 0.5, 0.75])) if len(loss) else loss
    out = {f"kept_q{q + 1}": float(kept[quartile == q].sum() / max(1, tokens[quartile == q].sum()))
           for q in range(4)}
    return {**out, "zero_kept_share": float((kept[tokens > 0] == 0).mean()) if (tokens > 0).any() else 0.0}
