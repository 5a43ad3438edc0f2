"""Keep masks as data: one boolean per response token, and labels with the dropped tokens set to -100."""

from __future__ import annotations

import pyarrow as pa

from tokenclean import columns as C
from tokenclean.data.rows import aligned, check_made_from, load_rows
from tokenclean.io import ragged, rows_hash
from tokenclean.method.align import apply_keep

KEEP_SCHEMA = pa.schema([(C.SAMPLE_ID, pa.string()), (C.KEEP, pa.list_(pa.bool_()))])


def keep_table(sample_ids: list, keep_per_sample: list) -> pa.Table:
    return pa.table({C.SAMPLE_ID: pa.array(sample_ids, pa.string()), C.KEEP: ragged(keep_per_sample, pa.bool_())},
                    schema=KEEP_SCHEMA)


def masked_labels(data, keep_path) -> tuple[list, list]:
    """Rows of ``data`` with the keep mask applied; refuses a mask made from other data."""
    rows, keep = load_rows(data), load_rows(keep_path, (C.SAMPLE_ID, C.KEEP))
    rerun = "rerun score and select on these data (dvc repro)"
    check_made_from(keep_path, data, rerun, rows_hash(rows[C.INPUT_IDS], rows[C.LABELS]))  # the rows read once
    aligned(rows, keep, f"{keep_path} was not made from {data}; {rerun}")
    return rows[C.INPUT_IDS], [apply_keep(y, k) for y, k in zip(rows[C.LABELS], keep[C.KEEP])]
