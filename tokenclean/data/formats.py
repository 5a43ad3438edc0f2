"""Reading SFT records from local files or the hub and normalising them to chat messages.

Accepted shapes (``data.format: auto`` detects them per record):
- ``messages``: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``
- ``prompt`` / ``completion``
- Alpaca: ``instruction`` / optional ``input`` / ``output``
An optional ``id`` becomes the sample id and an optional ``meta`` is carried along.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from tokenclean.errors import DataError  # noqa: F401 - callers import it from here too

ROLES = {"system", "user", "assistant"}
SUFFIXES = (".jsonl", ".json", ".parquet")


def _where(path, i: int) -> str:
    return f"{path}:{i + 1}" if str(path).endswith(".jsonl") else f"{path} record {i}"


def read_records(path: Path) -> list[dict]:
    """Records of one local JSON, JSONL or Parquet file."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}); re-encode the file as UTF-8") from None
    if not text.strip():
        raise DataError(f"{path}: empty file; point data.source at a file with records")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
        return data if isinstance(data, list) else [data]
    records = []
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{i + 1}: malformed JSON line ({e.msg}); fix or remove that line") from None
    return records


def _text(rec: dict, field: str, where: str, optional: bool = False) -> str:
    value = rec.get(field)
    if value is None and optional:
        return ""
    if value is None:
        raise DataError(f"{where}: missing field '{field}'")
    if not isinstance(value, str):
        raise DataError(f"{where}: field '{field}' must be a string, got {type(value).__name__}")
    return value


def detect_format(rec: dict, where: str) -> str:
    for fmt, key in (("messages", "messages"), ("prompt_completion", "prompt"), ("alpaca", "instruction")):
        if rec.get(key) is not None:
            return fmt
    raise DataError(f"{where}: no 'messages', 'prompt'/'completion' or 'instruction'/'output' field")


def _check_messages(msgs, where: str) -> list[dict]:
    if not isinstance(msgs, list) or not msgs:
        raise DataError(f"{where}: field 'messages' must be a non-empty list")
    out = []
    for j, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise DataError(f"{where}: messages[{j}] must be an object with 'role' and 'content'")
        role, content = _text(m, "role", f"{where} messages[{j}]"), _text(m, "content", f"{where} messages[{j}]")
        if role not in ROLES:
            raise DataError(f"{where}: messages[{j}].role is '{role}'; use one of {sorted(ROLES)}")
        if role == "assistant" and not content.strip():
            raise DataError(f"{where}: messages[{j}] is an empty assistant turn; remove the sample or fill it")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "assistant":
        raise DataError(f"{where}: the conversation must end with an assistant turn")
    return out


def to_messages(rec: dict, fmt: str, where: str) -> list[dict]:
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    fmt = detect_format(rec, where) if fmt == "auto" else fmt
    if fmt == "messages":
        return _check_messages(rec.get("messages"), where)
    if fmt == "prompt_completion":
        msgs = [{"role": "user", "content": _text(rec, "prompt", where)},
                {"role": "assistant", "content": _text(rec, "completion", where)}]
    else:
        instruction, extra = _text(rec, "instruction", where), _text(rec, "input", where, optional=True)
        msgs = [{"role": "user", "content": f"{instruction}\n\n{extra}" if extra.strip() else instruction},
                {"role": "assistant", "content": _text(rec, "output", where)}]
    return _check_messages(msgs, where)


def normalise(records: list[tuple], fmt: str) -> list[dict]:
    """``(record, origin, index)`` triples to ``{"id", "messages", "meta", "where"}``."""
    out = []
    for rec, origin, i in records:
        where = _where(origin, i)
        msgs = to_messages(rec, fmt, where)
        idx = rec.get("id", f"{Path(str(origin)).stem}-{i:06d}")
        out.append({"id": str(idx), "messages": msgs, "meta": rec.get("meta") or {}, "where": where})
    return out


def find_split_file(directory: Path, split: str) -> Path | None:
    for suffix in SUFFIXES:
        if (directory / f"{split}{suffix}").exists():
            return directory / f"{split}{suffix}"
    return None


def load_source(source: str, split: str = "train") -> dict[str, list[dict]]:
    """Raw records by split: a local file (all 'pool'), a directory of pool/warmup/eval files, or a hub dataset."""
    path = Path(source)
    if path.is_file():
        return {"pool": [(r, path, i) for i, r in enumerate(read_records(path))]}
    if path.is_dir():
        found = {s: find_split_file(path, s) for s in ("pool", "warmup", "eval")}
        if found["pool"] is None:
            raise DataError(f"{path}: directory has no pool.jsonl/.json/.parquet; add one or name a file")
        return {s: [(r, f, i) for i, r in enumerate(read_records(f))] for s, f in found.items() if f}
    if source.count("/") <= 1 and not source.startswith((".", "/")) and not path.suffix:
        import datasets  # the hub path; only imported when used

        ds = datasets.load_dataset(source, split=split)
        return {"pool": [(r, f"{source}[{split}]", i) for i, r in enumerate(ds)]}
    raise DataError(f"data.source '{source}' is neither an existing file or directory nor a hub dataset name")
