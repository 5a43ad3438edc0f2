"""Reading prepared tables back as numpy rows, and checking what an artifact was made from."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from tokenclean import columns as C
from tokenclean.io import RowsHash, iter_batches, read_table, table_meta

TOKENS = (C.SAMPLE_ID, C.INPUT_IDS, C.LABELS)


def as_rows(table: pa.Table, columns=TOKENS) -> dict[str, list]:
    """Columns of ``table``: Python values for scalar columns, one numpy array per row for list columns."""
    out = {}
    for name in columns:
        col = table.column(name)
        if name == C.SAMPLE_ID or not hasattr(col.type, "value_type"):
            out[name] = col.to_pylist()
        else:
            arr = col.combine_chunks()
            out[name] = np.split(arr.flatten().to_numpy(zero_copy_only=False),
                                 np.cumsum(arr.value_lengths().to_numpy())[:-1]) if len(arr) else []
    return out


def load_rows(path, columns=TOKENS) -> dict[str, list]:
    """A whole table as :func:`as_rows`; for small tables (evaluation, training). Pools stream: :func:`iter_rows`."""
    return as_rows(read_table(path, list(columns)), columns)


def iter_rows(path, columns=TOKENS, rows: int | None = None) -> Iterator[dict[str, list]]:
    """The table at ``path`` as :func:`as_rows` dicts of ``rows`` rows each (default
    :data:`tokenclean.io.ROW_GROUP`; the last may be shorter), in order."""
    for batch in iter_batches(path, list(columns), rows):
        yield as_rows(batch, columns)


def data_hash(path) -> str:
    """The content hash artifacts record of the data they were made from: :class:`tokenclean.io.RowsHash`
    of ``input_ids`` and ``labels``, streamed."""
    h = RowsHash(2)
    for batch in iter_batches(path, [C.INPUT_IDS, C.LABELS]):
        h.update(batch.column(C.INPUT_IDS), batch.column(C.LABELS))
    return h.hexdigest()


def check_made_from(artifact, data, rerun: str, actual: str | None = None) -> str:
    """Refuse ``artifact`` (a Parquet table) unless its metadata says it was made from the table
    ``data``; returns the data's :func:`data_hash` (``actual``, when the caller already has it)."""
    made, actual = table_meta(artifact).get("inputs", {}).get("data"), actual or data_hash(data)
    if made != actual:
        recorded = f"recorded data hash {made[:12]}" if made else "no recorded data hash"
        raise ValueError(f"{artifact} was not made from {data} ({recorded}, the data's is {actual[:12]}); {rerun}")
    return actual


def aligned(first: dict, second: dict, what: str) -> None:
    """Two batches read in lockstep must hold the same samples in the same order."""
    if first[C.SAMPLE_ID] != second[C.SAMPLE_ID]:
        raise ValueError(f"{what} (sample ids differ)")
