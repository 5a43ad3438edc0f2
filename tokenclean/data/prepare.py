"""From SFT records to the prepared layout: read the source, split it, render chats, label assistant tokens.

A prepared table has one row per sample: ``sample_id``, ``input_ids``, ``labels`` (-100 off the
response), ``kinds`` (ground truth of the synthetic data, -1 elsewhere), ``answer`` and ``prompt``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from tokenclean import columns as C
from tokenclean.config import Params
from tokenclean.data.formats import SUFFIXES, DataError, load_source, normalise, read_records
from tokenclean.data.render import render
from tokenclean.io import file_hash, read_table
from tokenclean.layout import GENERATE

SPLITS = ("warmup", "pool", "eval")
SCHEMA = pa.schema([(C.SAMPLE_ID, pa.string()), (C.INPUT_IDS, pa.list_(pa.int32())), (C.LABELS, pa.list_(pa.int32())),
                    (C.KINDS, pa.list_(pa.int8())), (C.ANSWER, pa.string()), (C.PROMPT, pa.string())])


def _carve(samples: list, spec, name: str, seed: int) -> tuple[list, list]:
    """Split ``spec`` samples (int count or float fraction) off ``samples`` at random."""
    n = spec if isinstance(spec, int) else int(round(float(spec) * len(samples)))
    if not 0 < n < len(samples):
        raise DataError(f"data.{name} = {spec!r} leaves no samples on one side of {len(samples)}; change data.{name}")
    idx = list(range(len(samples)))
    random.Random(f"{name}-{seed}").shuffle(idx)
    chosen = set(idx[:n])
    return [s for i, s in enumerate(samples) if i in chosen], [s for i, s in enumerate(samples) if i not in chosen]


def source_path(params: Params) -> str:
    return str(GENERATE) if params.data.source == "synthetic" else params.data.source


def provenance(params: Params, base) -> dict:
    """What the prepared tables record they were made from: the data config, the source's
    content hash (or its hub name and split) and the tokenizer's files."""
    src = Path(source_path(params))
    source = file_hash(src) if src.exists() else f"{params.data.source}:{params.data.split}"
    return {"stage": "prepare", "config": {**params.data.model_dump(), "chat_template": params.model.chat_template},
            "inputs": {"source": source, "base": file_hash(base)}}


def split_sources(params: Params) -> dict[str, list[dict]]:
    """Normalised samples of the warmup, pool and eval splits: files of the source, or carved from the pool."""
    source = source_path(params)
    raw = load_source(source, params.data.split)
    splits = {k: normalise(v, params.data.format) for k, v in raw.items()}
    for name in ("eval", "warmup"):
        spec = getattr(params.data, name)
        if name in splits:
            continue
        if isinstance(spec, str):
            splits[name] = normalise([(r, spec, i) for i, r in enumerate(read_records(Path(spec)))], params.data.format)
        else:
            splits[name], splits["pool"] = _carve(splits["pool"], spec, name, params.data.seed)
    return splits


def _check_unique(samples: list[dict]) -> None:
    seen = set()
    for s in samples:
        if s["id"] in seen:
            raise DataError(f"{s['where']}: duplicate sample id {s['id']!r}; make the 'id' field unique")
        seen.add(s["id"])


def to_table(tok, samples: list[dict], max_len: int) -> tuple[pa.Table, dict]:
    """Render and label ``samples``: the prepared table, and counts of truncated and dropped samples."""
    rows = {k: [] for k in SCHEMA.names}
    truncated = empty = 0
    for s in tqdm(samples, desc="render", unit="sample", mininterval=2):
        try:
            ids, labels, kinds, cut = render(tok, s["messages"], max_len, s["meta"].get("spans"))
        except DataError as err:
            raise DataError(f"{s['where']} (id {s['id']}): {err}") from None
        truncated += cut
        if (labels == C.IGNORE).all():
            empty += 1
            continue
        for k, v in ((C.SAMPLE_ID, s["id"]), (C.INPUT_IDS, ids), (C.LABELS, labels), (C.KINDS, kinds),
                     (C.ANSWER, s["meta"].get("answer")), (C.PROMPT, json.dumps(s["messages"][:-1]))):
            rows[k].append(v)
    _check_unique(samples)
    table = pa.table({k: [v.tolist() if hasattr(v, "tolist") else v for v in vals] for k, vals in rows.items()},
                     schema=SCHEMA)
    return table, {"samples": len(samples), "truncated": truncated, "dropped_no_response": empty}


def is_prepared(path: Path) -> bool:
    return path.suffix == ".parquet" and {C.INPUT_IDS, C.LABELS} <= set(pq.read_schema(path).names)


def sft_files(source: Path) -> list[Path]:
    if not source.exists():
        raise FileNotFoundError(f"{source}: round data not found; fix the round's 'data' in rounds")
    files = sorted(f for f in source.rglob("*") if f.suffix in SUFFIXES) if source.is_dir() else [source]
    if not files:
        raise DataError(f"{source}: no {'/'.join(SUFFIXES)} files in the round's data directory")
    return files


def round_table(params: Params, source: Path, tok) -> tuple[pa.Table, dict]:
    """(table, stats) of a round's data in the prepared layout: a prepared table as it is, or SFT
    files read, checked and rendered exactly like the prepare stage does."""
    if is_prepared(source):
        table = read_table(source)
        return table, {"samples": table.num_rows, "source": "prepared"}
    records = [(r, f, i) for f in sft_files(source) for i, r in enumerate(read_records(f))]
    table, stats = to_table(tok, normalise(records, params.data.format), params.data.max_seq_len)
    if table.num_rows == 0:
        raise DataError(f"{source}: no sample with a response token after truncation; raise data.max_seq_len")
    return table, {**stats, "source": "sft"}
