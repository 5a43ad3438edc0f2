"""Stage `split`: cut the prepared pool into ``split.chunks`` chunks, in pool order.

Chunk i is the data of the round whose ``data`` names ``out/split/<i>.parquet``.
"""

from __future__ import annotations

import numpy as np

from tokenclean.config import Params
from tokenclean.io import TableWriter, file_hash, iter_batches, num_rows, write_json
from tokenclean.layout import SPLIT, chunk, prepared
from tokenclean.stage import log, stage_main


def run(params: Params) -> None:
    """Write out/split/<i>.parquet for i < split.chunks, and chunks.json."""
    data = prepared("pool")
    rows, n = num_rows(data), params.split.chunks
    if n > rows:
        raise ValueError(f"split.chunks = {n} is more than the {rows} pool samples; lower it")
    sizes = np.diff(np.linspace(0, rows, n + 1).round().astype(int)).tolist()
    made_from = {"data": file_hash(data)}
    batches = iter_batches(data)
    pending = next(batches)
    for i, size in enumerate(sizes):  # streamed: one read batch in memory, however large the pool
        meta = {"stage": "split", "config": {"chunks": n, "chunk": i}, "inputs": made_from}
        with TableWriter(chunk(i), pending.schema, meta) as out:
            while out.rows < size:
                if not pending.num_rows:
                    pending = next(batches)
                take = min(size - out.rows, pending.num_rows)
                out.write(pending.slice(0, take))
                pending = pending.slice(take)
    write_json({"chunks": sizes, "data_sha256": made_from["data"]}, SPLIT / "chunks.json")
    log.info("split %d pool samples into %d chunks of %s", rows, n, sizes)


def main(argv=None) -> None:
    stage_main("split", run, argv)


if __name__ == "__main__":
    main()
