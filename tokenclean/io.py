"""Artifact I/O: ragged Parquet tables, JSON, content hashes. Every write is atomic.

A stage writes into a temporary sibling path and renames it into place, so a crash or a
bad input never leaves a half-written artifact that DVC or a later stage could trust.

Big tables stream: :class:`TableWriter` appends record batches (one Parquet row group each) and
:func:`iter_batches` reads them back a bounded number of rows at a time, so a stage's memory
follows its batch, not the pool (a 200M-token pool is 800 MB per int32 column).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        yield tmp
        if path.is_dir():  # a directory cannot be replaced in one step; a file can (os.replace)
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


META_KEY = b"tokenclean"  # Parquet schema metadata: the config and input hashes a table was made from


def with_meta(table: pa.Table, meta: dict | None) -> pa.Table:
    if meta is None:
        return table
    return table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta, sort_keys=True)})


def table_meta(path: str | Path) -> dict:
    """What :func:`write_table` recorded with ``meta=``; {} for a table written without."""
    raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


ROW_GROUP = 8192  # rows per Parquet row group: a reader holds one group (~8 MB at 256 tokens a row)


def write_table(table: pa.Table, path: str | Path, meta: dict | None = None, **options) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(with_meta(table, meta), tmp, **{"compression": "zstd", "row_group_size": ROW_GROUP, **options})


class TableWriter:
    """A Parquet table written a batch at a time, atomically: the file appears only when the
    ``with`` block ends without error. ``write`` takes a table or a dict of columns."""

    def __init__(self, path: str | Path, schema: pa.Schema, meta: dict | None = None, **options):
        self.path, self.schema, self.rows = Path(path), with_meta(schema.empty_table(), meta).schema, 0
        self.options = {"compression": "zstd", **options}

    def __enter__(self) -> TableWriter:
        self._atomic = atomic_path(self.path)
        self._writer = pq.ParquetWriter(self._atomic.__enter__(), self.schema, **self.options)
        return self

    def write(self, batch: pa.Table | dict) -> None:
        table = batch if isinstance(batch, pa.Table) else pa.table(batch, schema=self.schema.remove_metadata())
        if table.num_rows:
            self._writer.write_table(table.cast(self.schema), row_group_size=ROW_GROUP)
            self.rows += table.num_rows

    def __exit__(self, *exc) -> None:
        self._writer.close()
        self._atomic.__exit__(*exc)


def iter_batches(path: str | Path, columns: list[str] | None = None, rows: int | None = None) -> Iterator[pa.Table]:
    """The table at ``path`` as consecutive tables of exactly ``rows`` rows (default :data:`ROW_GROUP`;
    the last may be shorter), whatever its row groups: two tables of one length read in lockstep stay
    aligned. Memory: about one row group and one batch."""
    path, rows = Path(path), rows or ROW_GROUP
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing artifact; run the stage that writes it (dvc repro)")
    pending, size = [], 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
        pending.append(batch)
        size += batch.num_rows
        while size >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(pending)


def copy_table(source: str | Path, path: str | Path, meta: dict | None = None) -> int:
    """The table at ``source`` written to ``path`` with ``meta``, streamed; its row count."""
    with TableWriter(path, pq.read_schema(source), meta) as out:
        for batch in iter_batches(source):
            out.write(batch)
    return out.rows


def num_rows(path: str | Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def read_table(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing artifact; run the stage that writes it (dvc repro)")
    return pq.read_table(path, columns=columns)


def ragged(arrays: list, value_type: pa.DataType) -> pa.ListArray:
    """One list per sample from numpy arrays, in one copy (no Python object per token): the ragged columns
    of every artifact (tokens, labels, kinds, losses, scores, keep masks)."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    dtype = value_type.to_pandas_dtype()
    flat = np.concatenate(arrays).astype(dtype, copy=False) if len(arrays) else np.zeros(0, dtype)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, value_type))


def write_json(obj, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_csv(rows: list[dict], columns, path: str | Path) -> None:
    """Rows as CSV with a header (what `dvc plots` reads); keys outside ``columns`` are left out."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def file_hash(path: str | Path) -> str:
    """sha256 of a file, or of a directory's files (relative names and contents, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


class RowsHash:
    """sha256 of ragged integer columns, fed any number of rows at a time: each column hashes every
    row as its length then its values (int64), and the digest hashes the columns' digests. So the
    hash depends on the rows only, never on how they were batched or encoded.

    What a mask or a training checkpoint was made from is recorded as this hash of the pool's
    ``input_ids`` and ``labels``: it changes with any token, not with the file's encoding.
    """

    def __init__(self, columns: int):
        self._hashes = [hashlib.sha256() for _ in range(columns)]

    def update(self, *columns) -> RowsHash:
        """Each column as a list of per-row arrays, or an Arrow list array."""
        for h, rows in zip(self._hashes, columns, strict=True):
            if isinstance(rows, (pa.ListArray, pa.ChunkedArray)):
                rows = rows.combine_chunks() if isinstance(rows, pa.ChunkedArray) else rows
                lengths = rows.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
                values = rows.flatten().to_numpy(zero_copy_only=False)
            else:
                lengths = np.fromiter((len(r) for r in rows), np.int64, len(rows))
                values = np.concatenate(rows) if len(rows) else np.zeros(0, np.int64)
            framed = np.empty(len(lengths) + int(lengths.sum()), np.int64)
            heads = np.cumsum(lengths + 1) - lengths - 1  # where each row's length goes
            is_value = np.ones(len(framed), bool)
            is_value[heads] = False
            framed[heads], framed[is_value] = lengths, values
            h.update(framed.tobytes())
        return self

    def hexdigest(self) -> str:
        return hashlib.sha256(b"".join(h.digest() for h in self._hashes)).hexdigest()


def rows_hash(*columns) -> str:
    """:class:`RowsHash` of whole columns (lists of per-sample arrays)."""
    return RowsHash(len(columns)).update(*columns).hexdigest()


def table_hash(table: pa.Table, columns: list[str]) -> str:
    """Content hash of some list columns' values and row boundaries, independent of file encoding."""
    h = hashlib.sha256()
    for name in columns:
        col = table.column(name).combine_chunks()
        h.update(name.encode() + b"\0")
        h.update(col.value_lengths().to_numpy(zero_copy_only=False).astype("int64").tobytes())
        h.update(col.flatten().to_numpy(zero_copy_only=False).astype("int64").tobytes())
    return h.hexdigest()
