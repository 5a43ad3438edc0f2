"""From SFT records to the prepared layout: read the source, split it, render chats, label assistant tokens.

A prepared table has one row per sample: ``sample_id``, ``input_ids``, ``labels`` (-100 off the
response), ``kinds`` (ground truth of the synthetic data, -1 elsewhere), ``answer`` and ``prompt``.
Every bad record of every split is collected first and reported at once (:func:`formats.check`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from tokenclean import columns as C
from tokenclean.config import DataCfg, Params
from tokenclean.data import sources
from tokenclean.data.formats import SUFFIXES, Problem, Raw, check, duplicates, normalise, read_records
from tokenclean.data.render import render
from tokenclean.errors import DataError
from tokenclean.io import file_hash, read_table
from tokenclean.layout import DATA, GENERATE

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
    content hash (or its hub name, split and revision) and the tokenizer's files."""
    src = Path(source_path(params))
    source = file_hash(src) if src.exists() else f"{params.data.source}:{params.data.split}@{params.data.revision}"
    return {"stage": "prepare", "config": {**params.data.model_dump(), "chat_template": params.model.chat_template},
            "inputs": {"source": source, "base": file_hash(base)}}


def find_split_file(directory: Path, split: str) -> Path | None:
    return next((directory / f"{split}{s}" for s in SUFFIXES if (directory / f"{split}{s}").exists()), None)


def load_source(data: DataCfg, source: str | None = None) -> dict[str, tuple[list[Raw], list[Problem]]]:
    """Raw records by split: a local file (all 'pool'), a directory of pool/warmup/eval files
    (the generated default data), or a hub dataset's split."""
    source = source or data.source
    synthetic = Path(source).is_relative_to(GENERATE)  # the generate stage's output, not the user's
    if not synthetic and not sources.is_path(source):
        ds = sources.hub_dataset(source, data.split, data.revision)
        origin = f"{source}[{data.split}]"
        return {"pool": ([Raw(r, f"{origin} record {i}", i, source.replace("/", "_")) for i, r in
                          enumerate(ds, 1)], [])}
    path = Path(source) if synthetic else sources.local(source, str(DATA), "data.source")
    if path.is_file():
        return {"pool": read_records(path, data.field)}
    found = {s: find_split_file(path, s) for s in SPLITS}
    if found["pool"] is None:
        raise DataError(f"{path}: directory has no pool.jsonl/.json/.parquet; add one or name a file")
    return {s: read_records(f, data.field) for s, f in found.items() if f}


def split_sources(params: Params) -> tuple[dict[str, list[dict]], list[Problem]]:
    """Normalised samples of the warmup, pool and eval splits (files of the source, or carved from
    the pool), and every problem found on the way: malformed records and ids repeated across splits."""
    data, problems, splits = params.data, [], {}
    raw = load_source(data, source_path(params))
    for name in ("eval", "warmup"):
        spec = getattr(data, name)
        if name not in raw and isinstance(spec, str):
            raw[name] = read_records(sources.local(spec, str(DATA), f"data.{name}"), data.field)
    for name, (raws, bad) in raw.items():
        splits[name], found = normalise(raws, data)
        problems += bad + found
    for name in ("eval", "warmup"):
        if name not in splits:
            try:
                splits[name], splits["pool"] = _carve(splits["pool"], getattr(data, name), name, data.seed)
            except DataError:  # too few good records: the bad ones are the news
                check(problems, data.on_error, f"data.source '{data.source}'")
                raise
    problems += duplicates([s for name in SPLITS for s in splits.get(name, [])])
    return splits, problems


def drop(samples: list[dict], problems: list[Problem]) -> list[dict]:
    """``samples`` without those a problem names (by where, and by id for repeats)."""
    bad = {p.where for p in problems}
    return [s for s in samples if s["where"] not in bad]


def to_table(tok, samples: list[dict], max_len: int) -> tuple[pa.Table, dict, list[Problem]]:
    """Render and label ``samples``: the prepared table, counts of truncated and dropped samples,
    and a problem for each sample the template cannot render."""
    rows, problems = {k: [] for k in SCHEMA.names}, []
    truncated = empty = 0
    for s in tqdm(samples, desc="render", unit="sample", mininterval=2):
        try:
            ids, labels, kinds, cut = render(tok, s["messages"], max_len, s["meta"].get("spans"))
        except DataError as err:
            problems.append(Problem(s["where"], str(err), s["id"]))
            continue
        truncated += cut
        if (labels == C.IGNORE).all():
            empty += 1
            continue
        for k, v in ((C.SAMPLE_ID, s["id"]), (C.INPUT_IDS, ids), (C.LABELS, labels), (C.KINDS, kinds),
                     (C.ANSWER, s["meta"].get("answer")), (C.PROMPT, json.dumps(s["messages"][:-1]))):
            rows[k].append(v)
    table = pa.table({k: [v.tolist() if hasattr(v, "tolist") else v for v in vals] for k, vals in rows.items()},
                     schema=SCHEMA)
    return table, {"samples": len(samples), "truncated": truncated, "dropped_no_response": empty}, problems


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
    raws, problems = [], []
    for f in sft_files(source):
        got, bad = read_records(f, params.data.field)
        raws += got
        problems += bad
    samples, bad = normalise(raws, params.data)
    problems += bad + duplicates(samples)
    table, stats, bad = to_table(tok, drop(samples, problems), params.data.max_seq_len)
    skipped = check(problems + bad, params.data.on_error, str(source))
    if table.num_rows == 0:
        raise DataError(f"{source}: no sample with a response token after truncation; raise data.max_seq_len")
    return table, {**stats, **skipped, "source": "sft"}
