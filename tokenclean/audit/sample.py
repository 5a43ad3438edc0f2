"""One sample of one round, token by token: text piece, response or not, kept or dropped, score, kind.

The terminal view and the HTML report both render these rows, so what a user sees in either
is the same data. Response tokens are placed with :func:`tokenclean.method.align.response_positions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tokenclean import columns as C
from tokenclean.audit.load import RoundTokens
from tokenclean.audit.stats import per_sample_sums
from tokenclean.audit.token_text import TokenText
from tokenclean.columns import KIND_NAMES
from tokenclean.layout import Files, RoundPaths
from tokenclean.method.align import response_positions


@dataclass(frozen=True)
class TokenRow:
    text: str  # the characters this token completes (see tokenclean.audit.token_text)
    token_id: int
    position: int
    response: bool
    keep: bool | None = None  # response tokens only
    score: float | None = None
    kind: str | None = None
    special: bool = False
    split_bytes: str = ""  # hex of the token's bytes when it does not hold whole characters (a split character)


def find_sample(r: RoundTokens, sample: str | int) -> int:
    """Row of a sample given by id, or by index in the round (negative counts from the end)."""
    hit = np.flatnonzero(r.sample_ids == str(sample))
    if len(hit):
        return int(hit[0])
    try:
        i = int(sample)
    except ValueError:
        raise ValueError(f"round '{r.name}' has no sample '{sample}' (give a sample id or an index)") from None
    if not -len(r.sample_ids) <= i < len(r.sample_ids):
        raise ValueError(f"sample index {i} out of range: round '{r.name}' has {len(r.sample_ids)} samples")
    return i % len(r.sample_ids)


class SampleTokens(NamedTuple):
    input_ids: np.ndarray
    labels: np.ndarray
    truncated: bool  # cut at data.max_seq_len when prepared (False for data without the column)


def token_data(files: Files, paths: RoundPaths, sample_ids) -> dict[str, SampleTokens]:
    """Token ids, labels and truncation of some samples of a round's data, by sample id (one read of the file)."""
    wanted = pa.array([str(i) for i in sample_ids], pa.string())  # typed: an empty list would be of null type
    if not len(wanted):
        return {}
    cut = C.TRUNCATED in files.column_names(paths.data)  # data prepared before the column existed has none
    table = files.read_table(paths.data, [C.SAMPLE_ID, C.INPUT_IDS, C.LABELS] + [C.TRUNCATED] * cut)
    table = table.filter(pc.is_in(table.column(C.SAMPLE_ID), value_set=wanted))
    flags = table.column(C.TRUNCATED).to_pylist() if cut else [False] * table.num_rows
    return {sid: SampleTokens(np.asarray(ids), np.asarray(labels), bool(f)) for sid, ids, labels, f in
            zip(*(table.column(c).to_pylist() for c in (C.SAMPLE_ID, C.INPUT_IDS, C.LABELS)), flags)}


def pick_samples(r: RoundTokens, k: int) -> list[int]:
    """Up to ``k`` rows: a few samples with no kept token first (worth a look), then rows spread evenly."""
    if k <= 0 or not len(r.sample_ids):
        return []
    zero = np.flatnonzero(per_sample_sums(r.keep, r.offsets) == 0)[: max(k // 5, 1)]
    spread = np.linspace(0, len(r.sample_ids) - 1, k).round().astype(int)
    return list(dict.fromkeys([*zero.tolist(), *spread.tolist()]))[:k]


@dataclass(frozen=True)
class Sample:
    id: str
    rows: list[TokenRow]
    truncated: bool = False


def rows_of_samples(files: Files, paths: RoundPaths, r: RoundTokens, picked: list[int],
                    text: TokenText) -> list[Sample]:
    """The samples at rows ``picked``, token by token, in that order."""
    data = token_data(files, paths, r.sample_ids[picked])
    out = []
    for i in picked:
        d = data[str(r.sample_ids[i])]
        out.append(Sample(str(r.sample_ids[i]), sample_rows(r, i, d.input_ids, d.labels, text), d.truncated))
    return out


def sample_rows(r: RoundTokens, row: int, input_ids, labels, text: TokenText) -> list[TokenRow]:
    """Rows of every token of a sample, in order (pieces decoded over the whole sequence)."""
    a, b = r.offsets[row], r.offsets[row + 1]
    pos = response_positions(labels)
    if len(pos) != b - a:
        raise ValueError(f"sample '{r.sample_ids[row]}': {len(pos)} response tokens in the data, {b - a} in the mask")
    keep = r.keep[a:b]
    at = {int(p): j for j, p in enumerate(pos)}
    out = []
    for p, (tid, piece) in enumerate(zip(input_ids, text.pieces(input_ids))):
        j = at.get(p)
        extra = {} if j is None else {
            "keep": bool(keep[j]), "score": None if r.scores is None else float(r.scores[a + j]),
            "kind": None if r.kinds is None else KIND_NAMES.get(int(r.kinds[a + j]))}
        raw = text.token_bytes(tid)
        split = raw.hex(" ") if piece.encode() != raw and not text.is_special(tid) else ""
        out.append(TokenRow(piece, int(tid), p, j is not None, special=text.is_special(tid), split_bytes=split,
                            **extra))
    return out
