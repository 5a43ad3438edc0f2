"""Stage `prepare`: read the SFT source, render chats, label assistant tokens, split, write Parquet."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
from tqdm.auto import tqdm

from tasks.stage import OUT, log, stage_main
from tokenclean import columns as C
from tokenclean.config import Params
from tokenclean.formats import DataError, load_source, normalise, read_records
from tokenclean.io import file_hash, write_json, write_table
from tokenclean.lmeval_docs import translation_docs, write_docs
from tokenclean.modeling import load_tokenizer
from tokenclean.render import render
from tokenclean.synthetic import make_lexicon

SPLITS = ("warmup", "pool", "eval")


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
    return str(OUT / "generate") if params.data.source == "synthetic" else params.data.source


def provenance(params: Params, base) -> dict:
    """What the prepared tables record they were made from: the data config, the source's
    content hash (or its hub name and split) and the tokenizer's files."""
    src = Path(source_path(params))
    source = file_hash(src) if src.exists() else f"{params.data.source}:{params.data.split}"
    return {"stage": "prepare", "config": {**params.data.model_dump(), "chat_template": params.model.chat_template},
            "inputs": {"source": source, "base": file_hash(base)}}


def split_sources(params: Params) -> dict[str, list[dict]]:
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


def to_table(tok, samples: list[dict], max_len: int) -> tuple[pa.Table, dict]:
    rows = {k: [] for k in (C.SAMPLE_ID, C.INPUT_IDS, C.LABELS, C.KINDS, C.ANSWER, C.PROMPT)}
    truncated = empty = 0
    for s in tqdm(samples, desc="render", unit="sample", mininterval=2):
        spans = s["meta"].get("spans")
        try:
            ids, labels, kinds, cut = render(tok, s["messages"], max_len, spans)
        except DataError as err:
            raise DataError(f"{s['where']} (id {s['id']}): {err}") from None
        truncated += cut
        if (labels == C.IGNORE).all():
            empty += 1
            continue
        for k, v in ((C.SAMPLE_ID, s["id"]), (C.INPUT_IDS, ids), (C.LABELS, labels), (C.KINDS, kinds),
                     (C.ANSWER, s["meta"].get("answer")), (C.PROMPT, json.dumps(s["messages"][:-1]))):
            rows[k].append(v)
    seen = set()
    for s in samples:
        if s["id"] in seen:
            raise DataError(f"{s['where']}: duplicate sample id {s['id']!r}; make the 'id' field unique")
        seen.add(s["id"])
    schema = pa.schema([(C.SAMPLE_ID, pa.string()), (C.INPUT_IDS, pa.list_(pa.int32())), (C.LABELS, pa.list_(pa.int32())),
                        (C.KINDS, pa.list_(pa.int8())), (C.ANSWER, pa.string()), (C.PROMPT, pa.string())])
    table = pa.table({k: [v.tolist() if hasattr(v, "tolist") else v for v in vals] for k, vals in rows.items()}, schema=schema)
    return table, {"samples": len(samples), "truncated": truncated, "dropped_no_response": empty}


def run(params: Params, out=OUT / "prepare", base=OUT / "base") -> None:
    """Write out/prepare/{warmup,pool,eval}.parquet and stats.json (and lm_eval/zorbish.jsonl for the default data)."""
    tok = load_tokenizer(base)
    stats, meta = {}, provenance(params, base)
    splits = split_sources(params)
    for name, samples in splits.items():
        table, stats[name] = to_table(tok, samples, params.data.max_seq_len)
        if table.num_rows == 0:
            raise DataError(f"split '{name}' has no sample with a response token after truncation; raise data.max_seq_len")
        stats[name]["response_tokens"] = sum(len(x) - x.count(C.IGNORE) for x in table.column(C.LABELS).to_pylist())
        write_table(table, out / f"{name}.parquet", meta)
        log.info("%s: %s", name, stats[name])
        if stats[name]["truncated"]:
            log.warning("%s: %d samples were longer than data.max_seq_len=%d and were truncated (kept; counted in "
                        "stats.json)", name, stats[name]["truncated"], params.data.max_seq_len)
    write_json(stats, out / "stats.json")
    if params.data.source == "synthetic":  # the default data's own lm-eval tasks (lm_eval_tasks/zorbish_*.yaml)
        targets = make_lexicon(params.synthetic.lexicon, params.synthetic.seed).target
        write_docs(translation_docs(tok, splits["eval"], targets), out / "lm_eval" / "zorbish.jsonl")


def main(argv=None) -> None:
    stage_main("prepare", run, argv)


if __name__ == "__main__":
    main()
