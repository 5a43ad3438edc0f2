"""A round's cleaned data as any trainer takes it: token ids, attention mask, and labels with the
prompt and every dropped token set to -100, plus a readable text that marks the kept spans.

    datasets.load_dataset("parquet", data_files="out/export/fixed.parquet", split="train")

gives rows a ``transformers`` ``DataCollatorForSeq2Seq`` pads as they are (docs/export.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from tokenclean import columns as C
from tokenclean.data.rows import load_rows
from tokenclean.io import atomic_path, write_table
from tokenclean.method.masks import masked_labels

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


def cleaned_table(data: Path, keep: Path, tok) -> pa.Table:
    """One row per sample of ``data`` with the mask ``keep`` applied to its labels."""
    ids = load_rows(data, (C.SAMPLE_ID,))[C.SAMPLE_ID]
    inputs, labels = masked_labels(data, keep)
    return pa.table({
        C.SAMPLE_ID: ids,
        C.INPUT_IDS: [x.tolist() for x in inputs],
        ATTENTION_MASK: [[1] * len(x) for x in inputs],
        C.LABELS: [y.tolist() for y in labels],
        TEXT: [marked_text(tok, x, y) for x, y in zip(inputs, labels)],
    }, schema=SCHEMA)


def write_export(table: pa.Table, path: Path, meta: dict) -> None:
    """Parquet (``.parquet``) or JSON Lines (``.jsonl``), by the path's suffix."""
    if path.suffix == ".parquet":
        write_table(table, path, meta)
        return
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for row in table.to_pylist():
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
