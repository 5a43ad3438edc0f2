"""Keep masks as data: one boolean per response token, and labels with the dropped tokens set to -100."""

from __future__ import annotations

import pyarrow as pa

from tokenclean import columns as C
from tokenclean.data.rows import check_made_from, load_rows
from tokenclean.method.align import apply_keep


def keep_table(sample_ids: list, keep_per_sample: list) -> pa.Table:
    return pa.table({C.SAMPLE_ID: sample_ids,
                     C.KEEP: pa.array([k.tolist() for k in keep_per_sample], pa.list_(pa.bool_()))})


def masked_labels(data, keep_path) -> tuple[list, list]:
    """Rows of ``data`` with the keep mask applied; refuses a mask made from other data."""
    rows, keep = load_rows(data), load_rows(keep_path, (C.SAMPLE_ID, C.KEEP))
    check_made_from(keep_path, data, rows, "rerun score and select on these data (dvc repro)")
    if rows[C.SAMPLE_ID] != keep[C.SAMPLE_ID]:
        raise ValueError(f"{keep_path} was not made from {data} (sample ids differ); rerun score and select")
    return rows[C.INPUT_IDS], [apply_keep(y, k) for y, k in zip(rows[C.LABELS], keep[C.KEEP])]
