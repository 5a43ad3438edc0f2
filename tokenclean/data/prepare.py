"""From SFT records to the prepared layout: read the source, split it, render chats, label assistant tokens.

A prepared table has one row per sample: ``sample_id``, ``input_ids``, ``labels`` (-100 off the
response), ``kinds`` (ground truth of the synthetic data, -1 elsewhere), ``answer`` and ``prompt``.

The source streams through twice, so memory does not grow with the records' text: the first pass
checks every record and keeps ~100 bytes per good sample (its id and record number), enough to
carve warm-up and eval off the pool and find ids repeated across splits; every problem is then
reported at once (:func:`formats.check`). The second pass renders and writes each split a batch
at a time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from tokenclean import columns as C
from tokenclean.config import DataCfg, Params
from tokenclean.data import sources
from tokenclean.data.formats import (
    SUFFIXES,
    Problem,
    Raw,
    check,
    duplicates,
    iter_records,
    normalise,
    read_records,
    to_sample,
)
from tokenclean.data.render import render
from tokenclean.errors import DataError
from tokenclean.io import TableWriter, file_hash, ragged
from tokenclean.layout import DATA, GENERATE

SPLITS = ("warmup", "pool", "eval")
SCHEMA = pa.schema([(C.SAMPLE_ID, pa.string()), (C.INPUT_IDS, pa.list_(pa.int32())), (C.LABELS, pa.list_(pa.int32())),
                    (C.KINDS, pa.list_(pa.int8())), (C.ANSWER, pa.string()), (C.PROMPT, pa.string()),
                    (C.TRUNCATED, pa.bool_())])
BATCH = 1024  # samples rendered per written batch


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


Records = Callable[[], Iterator[Raw | Problem]]  # a split's records from the start, on every call


def _hub_records(ds, source: str, split: str) -> Iterator[Raw]:
    origin = f"{source}[{split}]"
    return (Raw(r, f"{origin} record {i}", i, source.replace("/", "_")) for i, r in enumerate(ds, 1))


def split_records(data: DataCfg, source: str | None = None) -> dict[str, Records]:
    """Each split's records: a local file (all 'pool'), a directory of pool/warmup/eval files (the
    generated default data), or a hub dataset's split; plus warmup/eval files that params name."""
    source = source or data.source
    synthetic = Path(source).is_relative_to(GENERATE)  # the generate stage's output, not the user's
    if not synthetic and not sources.is_path(source):
        ds = sources.hub_dataset(source, data.split, data.revision)
        found = {"pool": partial(_hub_records, ds, source, data.split)}
    else:
        path = Path(source) if synthetic else sources.local(source, str(DATA), "data.source")
        files = {"pool": path} if path.is_file() else {s: find_split_file(path, s) for s in SPLITS}
        if files["pool"] is None:
            raise DataError(f"{path}: directory has no pool.jsonl/.json/.parquet; add one or name a file")
        found = {s: partial(iter_records, f, data.field) for s, f in files.items() if f}
    for name in ("eval", "warmup"):
        spec = getattr(data, name)
        if name not in found and isinstance(spec, str):
            found[name] = partial(iter_records, sources.local(spec, str(DATA), f"data.{name}"), data.field)
    return {s: found[s] for s in SPLITS if s in found}


@dataclass
class Scan:
    """The first pass: per source split, its good samples' ids in order, and every problem."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def scan(records: dict[str, Records], data: DataCfg) -> Scan:
    out = Scan()
    for name, read in records.items():
        ids = out.ids[name] = []
        for got in tqdm(read(), desc=f"check {name}", unit="record", mininterval=2):
            got = got if isinstance(got, Problem) else to_sample(got, data)
            if isinstance(got, Problem):
                out.problems.append(got)
            else:
                ids.append(got["id"])
    return out


def carve(n: int, data: DataCfg, carved: list[str]) -> np.ndarray:
    """The split (an index into SPLITS) of each of the pool's ``n`` good samples: the ``carved`` splits
    (eval, then warm-up) drawn at random off the pool, each by count (int) or share (float)."""
    label, rest = np.full(n, SPLITS.index("pool"), np.int8), np.arange(n)
    for name in carved:
        spec = getattr(data, name)
        k = spec if isinstance(spec, int) else int(round(float(spec) * len(rest)))
        if not 0 < k < len(rest):
            raise DataError(f"data.{name} = {spec!r} leaves no samples on one side of {len(rest)}; change data.{name}")
        order = list(range(len(rest)))
        random.Random(f"{name}-{data.seed}").shuffle(order)
        chosen = np.zeros(len(rest), bool)
        chosen[order[:k]] = True
        label[rest[chosen]] = SPLITS.index(name)
        rest = rest[~chosen]
    return label


@dataclass
class Plan:
    """Where each good sample goes: ``route[source][i]`` is its split (index into SPLITS), -1 to drop."""

    route: dict[str, np.ndarray]
    problems: list[Problem]


def plan(records: dict[str, Records], data: DataCfg) -> Plan:
    """Check every record, carve the missing splits off the pool, and drop every repeat of an id
    (in the order warm-up, pool, eval)."""
    found = scan(records, data)
    carved = [s for s in ("eval", "warmup") if s not in records]
    try:
        route = {s: np.full(len(ids), SPLITS.index(s), np.int8) for s, ids in found.ids.items()}
        route["pool"] = carve(len(found.ids["pool"]), data, carved)
    except DataError:  # too few good records: the bad ones are the news
        check(found.problems, data.on_error, f"data.source '{data.source}'")
        raise
    repeats = _repeats(found.ids, route)
    for source, i in repeats:
        route[source][i] = -1
    problems = found.problems + (_repeat_problems(records, data, found.ids, route, repeats) if repeats else [])
    return Plan(route, problems)


def _logical_order(route: dict[str, np.ndarray], only: dict[str, np.ndarray]) -> Iterator[tuple[str, int]]:
    """(source, position) of the samples ``only`` marks, in the order warm-up, pool, eval."""
    for split in range(len(SPLITS)):
        for source, r in route.items():
            yield from ((source, int(i)) for i in np.flatnonzero((r == split) & only[source]))


def _repeats(ids: dict[str, list[str]], route: dict[str, np.ndarray]) -> list[tuple[str, int]]:
    """(source, position) of every sample whose id an earlier one has, in the order warm-up, pool, eval.
    Only ids whose hash repeats are compared as strings: 8 bytes a sample, not a dict of every id."""
    hashes = {s: np.fromiter((hash(x) for x in v), np.int64, len(v)) for s, v in ids.items()}
    values, counts = np.unique(np.concatenate(list(hashes.values())), return_counts=True)
    suspects = values[counts > 1]
    if not len(suspects):
        return []
    seen, out = set(), []
    for source, i in _logical_order(route, {s: np.isin(h, suspects) for s, h in hashes.items()}):
        x = ids[source][i]
        (out.append((source, i)) if x in seen else seen.add(x))
    return out


def _repeat_problems(records, data, ids, route, repeats) -> list[Problem]:
    """The problems of repeated ids, with both places named: one more read, only when there are repeats."""
    wanted = {ids[s][i] for s, i in repeats}
    where: dict[str, dict[int, str]] = {s: {} for s in records}
    for s, read in records.items():
        good = 0
        for got in read():
            got = got if isinstance(got, Problem) else to_sample(got, data)
            if not isinstance(got, Problem):
                if got["id"] in wanted:
                    where[s][good] = got["where"]
                good += 1
    firsts = _logical_order(route, {s: np.array([x in wanted for x in v], bool) for s, v in ids.items()})
    return duplicates([{"id": ids[s][i], "where": where[s][i]} for s, i in [*firsts, *repeats]])


class Rendered:
    """Samples rendered and labelled into the prepared columns, taken out as a table a batch at a time,
    with the counts the stats report."""

    def __init__(self, tok, max_len: int):
        self.tok, self.max_len = tok, max_len
        self.rows: dict[str, list] = {k: [] for k in SCHEMA.names}
        self.stats = {"samples": 0, "truncated": 0, "dropped_no_response": 0, "response_tokens": 0}

    def add(self, s: dict) -> Problem | None:
        """Render one sample; the problem if its template cannot render it."""
        self.stats["samples"] += 1
        try:
            ids, labels, kinds, cut = render(self.tok, s["messages"], self.max_len, s["meta"].get("spans"))
        except DataError as err:
            return Problem(s["where"], str(err), s["id"])
        self.stats["truncated"] += cut
        response = int((labels != C.IGNORE).sum())
        if not response:
            self.stats["dropped_no_response"] += 1
            return None
        self.stats["response_tokens"] += response
        for k, v in ((C.SAMPLE_ID, s["id"]), (C.INPUT_IDS, ids), (C.LABELS, labels), (C.KINDS, kinds),
                     (C.ANSWER, s["meta"].get("answer")), (C.PROMPT, json.dumps(s["messages"][:-1])),
                     (C.TRUNCATED, bool(cut))):
            self.rows[k].append(v)
        return None

    def __len__(self) -> int:
        return len(self.rows[C.SAMPLE_ID])

    def take(self) -> pa.Table:
        """The rows rendered since the last take."""
        cols = {k: (ragged(v, SCHEMA.field(k).type.value_type) if k in (C.INPUT_IDS, C.LABELS, C.KINDS) else v)
                for k, v in self.rows.items()}
        self.rows = {k: [] for k in SCHEMA.names}
        return pa.table(cols, schema=SCHEMA)


def to_table(tok, samples: list[dict], max_len: int) -> tuple[pa.Table, dict, list[Problem]]:
    """Render and label ``samples`` in memory (a round's few files): the table, its stats, and a
    problem for each sample the template cannot render."""
    out = Rendered(tok, max_len)
    problems = [p for p in map(out.add, samples) if p is not None]
    return out.take(), out.stats, problems


def write_splits(records: dict[str, Records], route: Plan, params: Params, tok, paths: dict[str, Path],
                 meta: dict, keep_eval: bool = False) -> tuple[dict, list[Problem], list[dict]]:
    """The second pass: render every routed sample into its split's table, a batch at a time.
    Returns (stats per split, render problems, the eval samples if ``keep_eval``). The tables land
    only if the whole pass succeeds and no problem stops it (``data.on_error``)."""
    data, problems, kept_eval = params.data, [], []
    out = {s: Rendered(tok, data.max_seq_len) for s in paths}
    with ExitStack() as stack:
        writers = {s: stack.enter_context(TableWriter(paths[s], SCHEMA, meta)) for s in paths}
        for source, read in records.items():
            where_to, good = route.route[source], 0
            for got in tqdm(read(), desc=f"render {source}", unit="record", mininterval=2):
                sample = got if isinstance(got, Problem) else to_sample(got, data)
                if isinstance(sample, Problem):
                    continue
                split, good = int(where_to[good]), good + 1
                if split < 0:
                    continue
                name = SPLITS[split]
                problems += [p] if (p := out[name].add(sample)) else []
                kept_eval += [sample] if keep_eval and name == "eval" else []
                if len(out[name]) >= BATCH:
                    writers[name].write(out[name].take())
        for name, rendered in out.items():
            writers[name].write(rendered.take())
        skipped = check(route.problems + problems, data.on_error, f"data.source '{data.source}'")
        for name, writer in writers.items():
            if writer.rows == 0:
                raise DataError(f"split '{name}' has no sample with a response token after truncation; "
                                "raise data.max_seq_len")
    return {s: r.stats for s, r in out.items()}, skipped, kept_eval


def is_prepared(path: Path) -> bool:
    return path.suffix == ".parquet" and {C.INPUT_IDS, C.LABELS} <= set(pq.read_schema(path).names)


def sft_files(source: Path) -> list[Path]:
    if not source.exists():
        raise FileNotFoundError(f"{source}: round data not found; fix the round's 'data' in rounds")
    files = sorted(f for f in source.rglob("*") if f.suffix in SUFFIXES) if source.is_dir() else [source]
    if not files:
        raise DataError(f"{source}: no {'/'.join(SUFFIXES)} files in the round's data directory")
    return files


def sft_table(params: Params, source: Path, tok) -> tuple[pa.Table, dict]:
    """(table, stats) of a round's SFT files (new data, a few files: in memory) in the prepared layout,
    read, checked and rendered exactly like the prepare stage does."""
    raws, problems = [], []
    for f in sft_files(source):
        got, bad = read_records(f, params.data.field)
        raws += got
        problems += bad
    samples, bad = normalise(raws, params.data)
    problems += bad + duplicates(samples)
    repeated = {p.where for p in problems}
    table, stats, bad = to_table(tok, [s for s in samples if s["where"] not in repeated], params.data.max_seq_len)
    skipped = check(problems + bad, params.data.on_error, str(source))
    if table.num_rows == 0:
        raise DataError(f"{source}: no sample with a response token after truncation; raise data.max_seq_len")
    return table, {**stats, **skipped, "source": "sft"}
