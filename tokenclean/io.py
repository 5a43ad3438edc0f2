"""Artifact I/O: ragged Parquet tables, JSON, content hashes. Every write is atomic.

A stage writes into a temporary sibling path and renames it into place, so a crash or a
bad input never leaves a half-written artifact that DVC or a later stage could trust.
"""

from __future__ import annotations

import contextlib
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


def write_table(table: pa.Table, path: str | Path, meta: dict | None = None, **options) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(with_meta(table, meta), tmp, **{"compression": "zstd", **options})


def read_table(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing artifact; run the stage that writes it (dvc repro)")
    return pq.read_table(path, columns=columns)


def write_json(obj, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


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


def rows_hash(*columns) -> str:
    """sha256 of ragged integer columns (lists of per-sample arrays): row lengths and values.

    What a mask or a training checkpoint was made from is recorded as this hash of the pool's
    ``input_ids`` and ``labels``: it changes with any token, not with the file's encoding.
    """
    h = hashlib.sha256()
    for rows in columns:
        h.update(np.asarray([len(r) for r in rows], np.int64).tobytes())
        if len(rows):
            h.update(np.concatenate([np.asarray(r, np.int64) for r in rows]).tobytes())
    return h.hexdigest()


def table_hash(table: pa.Table, columns: list[str]) -> str:
    """Content hash of some list columns' values and row boundaries, independent of file encoding."""
    h = hashlib.sha256()
    for name in columns:
        col = table.column(name).combine_chunks()
        h.update(name.encode() + b"\0")
        h.update(col.value_lengths().to_numpy(zero_copy_only=False).astype("int64").tobytes())
        h.update(col.flatten().to_numpy(zero_copy_only=False).astype("int64").tobytes())
    return h.hexdigest()
