"""Stage `split`: cut the prepared pool into ``split.chunks`` chunks, in pool order.

Chunk i is the data of the round whose ``data`` names ``out/split/<i>.parquet``.
"""

from __future__ import annotations

import numpy as np

from tokenclean.config import Params
from tokenclean.io import file_hash, read_table, write_json, write_table
from tokenclean.layout import SPLIT, chunk, prepared
from tokenclean.stage import log, stage_main


def run(params: Params) -> None:
    """Write out/split/<i>.parquet for i < split.chunks, and chunks.json."""
    data = prepared("pool")
    table, n = read_table(data), params.split.chunks
    if n > table.num_rows:
        raise ValueError(f"split.chunks = {n} is more than the {table.num_rows} pool samples; lower it")
    bounds = np.linspace(0, table.num_rows, n + 1).round().astype(int)
    made_from = {"data": file_hash(data)}
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        meta = {"stage": "split", "config": {"chunks": n, "chunk": i}, "inputs": made_from}
        write_table(table.slice(a, b - a), chunk(i), meta)
    sizes = np.diff(bounds).tolist()
    write_json({"chunks": sizes, "data_sha256": made_from["data"]}, SPLIT / "chunks.json")
    log.info("split %d pool samples into %d chunks of %s", table.num_rows, n, sizes)


def main(argv=None) -> None:
    stage_main("split", run, argv)


if __name__ == "__main__":
    main()
