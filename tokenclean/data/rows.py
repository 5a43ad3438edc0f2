"""Reading prepared tables back as numpy rows, and checking what an artifact was made from."""

from __future__ import annotations

import numpy as np

from tokenclean import columns as C
from tokenclean.io import read_table, rows_hash, table_meta


def load_rows(path, columns=(C.SAMPLE_ID, C.INPUT_IDS, C.LABELS)) -> dict[str, list]:
    table = read_table(path, list(columns))
    out = {}
    for name in columns:
        col = table.column(name)
        if name == C.SAMPLE_ID or not hasattr(col.type, "value_type"):
            out[name] = col.to_pylist()
        else:
            arr = col.combine_chunks()
            out[name] = np.split(arr.flatten().to_numpy(zero_copy_only=False),
                                 np.cumsum(arr.value_lengths().to_numpy())[:-1])
    return out


def data_hash(rows: dict) -> str:
    """The content hash artifacts record of the data they were made from (:func:`tokenclean.io.rows_hash`)."""
    return rows_hash(rows[C.INPUT_IDS], rows[C.LABELS])


def check_made_from(artifact, data, rows: dict, rerun: str) -> str:
    """Refuse ``artifact`` (a Parquet table) unless its metadata says it was made from these data rows;
    returns the rows' :func:`data_hash`."""
    made, actual = table_meta(artifact).get("inputs", {}).get("data"), data_hash(rows)
    if made != actual:
        recorded = f"recorded data hash {made[:12]}" if made else "no recorded data hash"
        raise ValueError(f"{artifact} was not made from {data} ({recorded}, the data's is {actual[:12]}); {rerun}")
    return actual
