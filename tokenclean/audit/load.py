"""One round's response tokens as flat arrays: what the audit statistics and diffs work on.

Ragged Parquet columns become one flat numpy array plus sample offsets, so every statistic
is a handful of vectorised operations, whatever the number of tokens. Response tokens are
found with the single rule of :mod:`tokenclean.method.align`, applied to the flattened labels
(the rule is per position, so flattening keeps every sample's tokens in order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tokenclean import columns as C
from tokenclean.layout import Files, RoundPaths
from tokenclean.method.align import response_positions


@dataclass(frozen=True)
class RoundTokens:
    """Response tokens of one round, flat; sample ``i`` owns ``[offsets[i], offsets[i+1])``."""

    name: str
    sample_ids: np.ndarray  # str, one per sample
    offsets: np.ndarray  # int64, samples + 1
    token_ids: np.ndarray  # int64, the label (= token id) at each response position
    keep: np.ndarray  # bool
    scores: np.ndarray | None  # float32; None when the round's scores are missing
    kinds: np.ndarray | None  # int8 ground truth; None unless every response token has one

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def flat_list(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Values and row offsets of a list column (respects slicing; nulls count as empty)."""
    col = table.column(name).combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy().astype(np.int64)
    values = pc.list_flatten(col).to_numpy(zero_copy_only=False)
    return values, np.concatenate([[0], np.cumsum(lengths)])


def rows_in_order(table: pa.Table, ids: pa.Array, what: str) -> pa.Table:
    """``table``'s rows reordered to follow ``ids``; every id must be there."""
    own = table.column(C.SAMPLE_ID).combine_chunks()
    if own.equals(ids):
        return table
    idx = pc.index_in(ids, value_set=own)
    if idx.null_count:
        missing = ids.filter(pc.is_null(idx))[0].as_py()
        raise ValueError(f"{what} has no sample '{missing}'; the mask was not made from this data")
    return table.take(idx)


def check_lengths(ids: np.ndarray, expected: np.ndarray, got: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(expected != got)
    if len(bad):
        i = bad[0]
        raise ValueError(f"{what}: sample '{ids[i]}' has {got[i]} values for {expected[i]} response tokens "
                         f"({len(bad)} samples differ)")


def load_round(files: Files, paths: RoundPaths) -> RoundTokens:
    """Read one round's data, scores and mask, aligned by sample id, as flat arrays."""
    has_kinds = C.KINDS in files.column_names(paths.data)  # only data prepared by this project has kinds
    data = files.read_table(paths.data, [C.SAMPLE_ID, C.LABELS] + [C.KINDS] * has_kinds)
    if not files.exists(paths.keep):
        raise FileNotFoundError(f"{paths.keep}: missing mask of round '{paths.name}'; run its select stage (dvc repro)")
    keep_t = files.read_table(paths.keep, [C.SAMPLE_ID, C.KEEP])
    ids = keep_t.column(C.SAMPLE_ID).combine_chunks()
    data = rows_in_order(data, ids, paths.data)
    labels, tok_off = flat_list(data, C.LABELS)
    pos = response_positions(labels)
    in_resp = np.zeros(len(labels) + 1, np.int64)
    in_resp[1:] = np.cumsum(labels != C.IGNORE)
    offsets = in_resp[tok_off]  # response tokens before each sample's first token
    sample_ids = np.asarray(ids.to_pylist(), dtype=str)
    keep = _per_token(keep_t, C.KEEP, offsets, sample_ids, paths.keep)
    scores = _optional_scores(files, paths, ids, offsets, sample_ids)
    kinds = None
    if has_kinds:
        kinds = flat_list(data, C.KINDS)[0][pos].astype(np.int8)
        kinds = kinds if len(kinds) and (kinds >= 0).all() else None
    return RoundTokens(paths.name, sample_ids, offsets, labels[pos].astype(np.int64), keep.astype(bool), scores, kinds)


def _per_token(table: pa.Table, name: str, offsets: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    values, off = flat_list(table, name)
    check_lengths(ids, np.diff(offsets), np.diff(off), what)
    return values


def _optional_scores(files: Files, paths: RoundPaths, ids: pa.Array, offsets, sample_ids) -> np.ndarray | None:
    if not files.exists(paths.scores):
        return None
    table = rows_in_order(files.read_table(paths.scores, [C.SAMPLE_ID, C.SCORES]), ids, paths.scores)
    return _per_token(table, C.SCORES, offsets, sample_ids, paths.scores).astype(np.float32)
