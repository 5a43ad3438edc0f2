"""Stage `evolve_split`: cut the prepared pool into ``evolve.chunks`` chunks, in pool order.

Chunk i is the data of the round whose ``data`` names ``out/evolve/split/<i>.parquet``.
"""

from __future__ import annotations

import numpy as np

from tasks.rounds import EVOLVE, chunk_path
from tasks.stage import OUT, log, stage_main
from tokenclean.config import Params
from tokenclean.io import file_hash, read_table, write_json, write_table


def run(params: Params, out=EVOLVE, data=OUT / "prepare" / "pool.parquet") -> None:
    """Write out/evolve/split/<i>.parquet for i < evolve.chunks, and chunks.json."""
    table, n = read_table(data), params.evolve.chunks
    if n > table.num_rows:
        raise ValueError(f"evolve.chunks = {n} is more than the {table.num_rows} pool samples; lower it")
    bounds = np.linspace(0, table.num_rows, n + 1).round().astype(int)
    made_from = {"data": file_hash(data)}
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        meta = {"stage": "evolve_split", "config": {"chunks": n, "chunk": i}, "inputs": made_from}
        write_table(table.slice(a, b - a), chunk_path(i, out), meta)
    sizes = np.diff(bounds).tolist()
    write_json({"chunks": sizes, "data_sha256": made_from["data"]}, out / "split" / "chunks.json")
    log.info("split %d pool samples into %d chunks of %s", table.num_rows, n, sizes)


def main(argv=None) -> None:
    stage_main("evolve_split", run, argv)


if __name__ == "__main__":
    main()
