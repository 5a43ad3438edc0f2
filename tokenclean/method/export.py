"""A round's cleaned data as any trainer takes it: token ids, attention mask, and labels with the
prompt and every dropped token set to -100, plus a readable text that marks the kept spans.

    datasets.load_dataset("parquet", data_files="out/export/fixed.parquet", split="train")

gives rows a ``transformers`` ``DataCollatorForSeq2Seq`` pads as they are (docs/export.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from tokenclean import columns as C
from tokenclean.data.rows import aligned, check_made_from, iter_rows
from tokenclean.io import TableWriter, atomic_path, num_rows, ragged
from tokenclean.method.align import apply_keep

ATTENTION_MASK, TEXT = "attention_mask", "text"
OPEN, CLOSE = "[[", "]]"  # around each kept span in the text column
SCHEMA = pa.schema([(C.SAMPLE_ID, pa.string()), (C.INPUT_IDS, pa.list_(pa.int32())),
                    (ATTENTION_MASK, pa.list_(pa.int8())), (C.LABELS, pa.list_(pa.int32())), (TEXT, pa.string())])


def marked_text(tok, ids: np.ndarray, labels: np.ndarray) -> str:
    """The sample's text with every run of kept tokens (label not -100) between ``[[`` and ``]]``."""
    kept = labels != C.IGNORE
    edges = np.flatnonzero(np.diff(kept.astype(np.int8))) + 1
    parts = []
    for run in np.split(np.arange(len(ids)), edges):
        if len(run):
            text = tok.decode(ids[run].tolist())
            parts.append(f"{OPEN}{text}{CLOSE}" if kept[run[0]] else text)
    return "".join(parts)


def cleaned_batches(data: Path, keep: Path, tok) -> Iterator[pa.Table]:
    """The rows of ``data`` with the mask ``keep`` applied to their labels, a read batch at a time."""
    stale = f"{keep} was not made from {data}; rerun score and select on these data (dvc repro)"
    check_made_from(keep, data, stale)
    for rows, mask in zip(iter_rows(data), iter_rows(keep, (C.SAMPLE_ID, C.KEEP)), strict=True):
        aligned(rows, mask, stale)
        inputs, labels = rows[C.INPUT_IDS], [apply_keep(y, k) for y, k in zip(rows[C.LABELS], mask[C.KEEP])]
        yield pa.table({
            C.SAMPLE_ID: rows[C.SAMPLE_ID],
            C.INPUT_IDS: ragged(inputs, pa.int32()),
            ATTENTION_MASK: ragged([np.ones(len(x), np.int8) for x in inputs], pa.int8()),
            C.LABELS: ragged(labels, pa.int32()),
            TEXT: [marked_text(tok, x, y) for x, y in zip(inputs, labels)],
        }, schema=SCHEMA)


def cleaned_table(data: Path, keep: Path, tok) -> pa.Table:
    """All of :func:`cleaned_batches` as one table (small data; the export stage streams)."""
    return pa.concat_tables(cleaned_batches(data, keep, tok)) if num_rows(data) else SCHEMA.empty_table()


def write_export(batches: Iterable[pa.Table], path: Path, meta: dict) -> int:
    """Parquet (``.parquet``) or JSON Lines (``.jsonl``), by the path's suffix, a batch at a time; the row count."""
    if path.suffix == ".parquet":
        with TableWriter(path, SCHEMA, meta) as out:
            for batch in batches:
                out.write(batch)
        return out.rows
    rows = 0
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for batch in batches:
            for row in batch.to_pylist():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows += batch.num_rows
    return rows
