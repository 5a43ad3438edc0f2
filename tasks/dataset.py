"""Reading prepared splits back as numpy rows (shared by the training and scoring stages)."""

from __future__ import annotations

import numpy as np

from tokenclean import columns as C
from tokenclean.io import read_table


def load_rows(path, columns=(C.SAMPLE_ID, C.INPUT_IDS, C.LABELS)) -> dict[str, list]:
    table = read_table(path, list(columns))
    out = {}
    for name in columns:
        col = table.column(name)
        if name == C.SAMPLE_ID or not hasattr(col.type, "value_type"):
            out[name] = col.to_pylist()
        else:
            arr = col.combine_chunks()
            out[name] = np.split(arr.flatten().to_numpy(zero_copy_only=False), np.cumsum(arr.value_lengths().to_numpy())[:-1])
    return out
