"""Reading SFT records from local files or the hub and normalising them to chat messages.

Built-in formats (``data.format: auto`` detects them per record, in this order):
- ``messages``: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``
- ``sharegpt``: ``conversations`` of ``{"from": "human"|"gpt"|"system", "value": str}``
  (``data.roles`` maps ``from`` values onto roles)
- ``prompt_completion``: ``prompt`` / ``completion``
- ``alpaca``: ``instruction`` / optional ``input`` / ``output``
``data.columns`` renames the user's fields onto these (``{prompt: question, completion: answer}``).
An optional ``id`` becomes the sample id and an optional ``meta`` object is carried along.

Every problem is collected, not raised: a :class:`Problem` names the record (``file:line`` for
JSON Lines, ``file record N`` otherwise; both count from 1) and the reason, so one run reports
every bad record (:func:`check`), or skips them with ``data.on_error: skip``.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from tokenclean.columns import RECORD_FIELDS as FIELDS
from tokenclean.columns import ROLES
from tokenclean.errors import DataError
from tokenclean.layout import natural_key

SUFFIXES = (".jsonl", ".json", ".parquet")
SHOWN = 20  # problems spelt out in one report; the rest are counted


@dataclass(frozen=True)
class Raw:
    """One record as read, and where it came from."""

    value: object
    where: str
    number: int  # 1-based record number in its file
    origin: str


@dataclass(frozen=True)
class Problem:
    where: str
    reason: str
    id: str | None = None

    def __str__(self) -> str:
        return f"{self.where}{f' (id {self.id})' if self.id else ''}: {self.reason}"


def check(problems: list[Problem], on_error: str, what: str) -> dict:
    """Stop with every problem listed (``on_error: stop``), or return what skipping them counts."""
    if not problems:
        return {}
    problems = sorted(problems, key=lambda p: natural_key(p.where))  # in file order, whatever found them
    if on_error == "stop":
        shown = "\n  ".join(str(p) for p in problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise DataError(f"{len(problems)} bad record(s) in {what}:\n  {shown}{more}\nfix them, or set "
                        "data.on_error: skip to leave them out (counted in the stage's stats)")
    return {"skipped": len(problems), "skipped_records": [p.id or p.where for p in problems]}


# ---- files ------------------------------------------------------------------------------------


def _not_utf8(path: Path, line: int, col: int, byte: int) -> DataError:
    return DataError(f"{path}:{line}:{col}: not UTF-8 (byte 0x{byte:02x}); re-encode the file as UTF-8")


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # a byte-order mark is valid UTF-8 and is dropped
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise _not_utf8(path, line, e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1, data[e.start]) from None


def _json_records(path: Path, text: str, field: str | None) -> list:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        hint = ("; it looks like JSON Lines (one object per line): rename it to .jsonl"
                if e.msg == "Extra data" and text.lstrip().startswith("{") else "")
        raise DataError(f"{path}:{e.lineno}:{e.colno}: malformed JSON ({e.msg}){hint}") from None
    if isinstance(data, dict):
        if field is None:
            raise DataError(f"{path}: the top level is an object with keys {sorted(data)}, not a list of records; "
                            "set data.field to the key that holds the records")
        if not isinstance(data.get(field), list):
            raise DataError(f"{path}: data.field is '{field}', but the top-level keys holding lists are "
                            f"{sorted(k for k, v in data.items() if isinstance(v, list))}")
        data = data[field]
    if not isinstance(data, list):
        raise DataError(f"{path}: the top level is a {type(data).__name__}; expected a list of records")
    return data


def _jsonl_records(path: Path) -> Iterator[Raw | Problem]:
    """One line at a time: memory stays flat however long the file is. Lines end at ``\\n`` only, so a
    raw U+2028 inside a JSON string (valid JSON) does not split a record."""
    empty = True
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            raw = raw[3:] if i == 1 and raw.startswith(codecs.BOM_UTF8) else raw  # a byte-order mark is dropped
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _not_utf8(path, i, e.start + 1, raw[e.start]) from None
            if not line.strip():
                continue
            empty = False
            try:
                yield Raw(json.loads(line), f"{path}:{i}", i, str(path))
            except json.JSONDecodeError as e:
                yield Problem(f"{path}:{i}", f"malformed JSON line ({e.msg} at column {e.colno})")
    if empty:
        raise DataError(f"{path}: empty file; point data.source at a file with records")


def iter_records(path: Path, field: str | None = None) -> Iterator[Raw | Problem]:
    """Records of one local JSON, JSONL or Parquet file, and a :class:`Problem` for each line that is
    not JSON. JSON Lines and Parquet stream (a row group at a time); a ``.json`` file is one document,
    parsed whole, so large data belongs in JSON Lines or Parquet."""
    if path.suffix == ".jsonl":
        yield from _jsonl_records(path)
        return
    if path.suffix == ".parquet":
        rows = (r for batch in pq.ParquetFile(path).iter_batches(batch_size=4096) for r in batch.to_pylist())
    else:
        text = _decode(path)
        if not text.strip():
            raise DataError(f"{path}: empty file; point data.source at a file with records")
        rows = _json_records(path, text, field)
    for i, r in enumerate(rows, 1):
        yield Raw(r, f"{path} record {i}", i, str(path))


def read_records(path: Path, field: str | None = None) -> tuple[list[Raw], list[Problem]]:
    """All of :func:`iter_records`: (records, problems)."""
    raws, problems = [], []
    for r in iter_records(path, field):
        (raws if isinstance(r, Raw) else problems).append(r)
    return raws, problems


# ---- records -> messages ----------------------------------------------------------------------


def _rename(obj: dict, columns: dict[str, str]) -> dict:
    """The record with the user's field names replaced by the format's (``columns``: ours -> theirs)."""
    theirs = {v: k for k, v in columns.items()}
    return {theirs.get(k, k): v for k, v in obj.items()} if theirs else obj


def _text(rec: dict, field: str, optional: bool = False) -> str:
    value = rec.get(field)
    if value is None and optional:
        return ""
    if value is None:
        raise DataError(f"missing field '{field}' (fields found: {sorted(rec)})")
    if not isinstance(value, str):
        raise DataError(f"field '{field}' must be a string, got {type(value).__name__}")
    return value


def detect_format(rec: dict) -> str:
    for fmt, fields in FIELDS.items():
        if rec.get(fields[0]) is not None:
            return fmt
    raise DataError(f"no 'messages', 'conversations', 'prompt'/'completion' or 'instruction'/'output' field "
                    f"(fields found: {sorted(rec)}); map yours with data.columns")


def _check_messages(msgs, field: str, columns: dict[str, str], roles: dict[str, str] | None = None) -> list[dict]:
    if not isinstance(msgs, list) or not msgs:
        raise DataError(f"field '{field}' must be a non-empty list")
    role_key, content_key = ("from", "value") if roles is not None else ("role", "content")
    out = []
    for j, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise DataError(f"{field}[{j}] must be an object with '{role_key}' and '{content_key}'")
        m = _rename(m, columns)
        try:
            role, content = _text(m, role_key), _text(m, content_key)
        except DataError as err:
            raise DataError(f"{field}[{j}]: {err}") from None
        if roles is not None:
            if role not in roles:
                raise DataError(f"{field}[{j}].{role_key} is '{role}'; map it onto a role in data.roles "
                                f"(mapped now: {sorted(roles)})")
            role = roles[role]
        if role not in ROLES:
            raise DataError(f"{field}[{j}].{role_key} is '{role}'; use one of {sorted(ROLES)}")
        if role == "assistant" and not content.strip():
            raise DataError(f"{field}[{j}] is an empty assistant turn; remove the sample or fill it")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "assistant":
        raise DataError("the conversation must end with an assistant turn")
    return out


def to_messages(rec: dict, fmt: str, columns: dict[str, str], roles: dict[str, str]) -> list[dict]:
    """Chat messages of one record (already renamed by ``columns``); DataError says what is wrong."""
    fmt = detect_format(rec) if fmt == "auto" else fmt
    if fmt == "messages":
        return _check_messages(rec.get("messages"), "messages", columns)
    if fmt == "sharegpt":
        return _check_messages(rec.get("conversations"), "conversations", columns, roles)
    if fmt == "prompt_completion":
        msgs = [{"role": "user", "content": _text(rec, "prompt")},
                {"role": "assistant", "content": _text(rec, "completion")}]
    else:
        instruction, extra = _text(rec, "instruction"), _text(rec, "input", optional=True)
        msgs = [{"role": "user", "content": f"{instruction}\n\n{extra}" if extra.strip() else instruction},
                {"role": "assistant", "content": _text(rec, "output")}]
    return _check_messages(msgs, "messages", {})


def _sample(raw: Raw, data) -> dict:
    if not isinstance(raw.value, dict):
        raise DataError(f"expected a JSON object, got {type(raw.value).__name__}")
    rec = _rename(raw.value, data.columns)
    idx, meta = rec.get("id"), rec.get("meta")
    if idx is None:  # absent or null: the file's name and the record's number
        idx = f"{Path(raw.origin).stem}-{raw.number:06d}"
    elif not isinstance(idx, (str, int)) or isinstance(idx, bool):
        raise DataError(f"field 'id' must be a string or an integer, got {type(idx).__name__}")
    if meta is not None and not isinstance(meta, dict):
        raise DataError(f"field 'meta' must be an object, got {type(meta).__name__}")
    sample = {"id": str(idx), "messages": to_messages(rec, data.format, data.columns, data.roles),
              "meta": meta or {}, "where": raw.where}
    if data.answer is not None:  # the reference answer, read from the user's own field name
        answer = raw.value.get(data.answer)
        if not isinstance(answer, (str, int, float)) or isinstance(answer, bool):
            found = "missing" if answer is None else f"a {type(answer).__name__}"
            raise DataError(f"the answer field '{data.answer}' (data.answer) is {found}; it must be a string or "
                            f"a number (fields found: {sorted(raw.value)})")
        sample["meta"] = {**sample["meta"], "answer": str(answer)}
    return sample


def to_sample(raw: Raw, data) -> dict | Problem:
    """One record as a ``{"id", "messages", "meta", "where"}`` sample (``data``: the params' data
    section), or the :class:`Problem` that stops it becoming one."""
    try:
        return _sample(raw, data)
    except DataError as err:
        rid = raw.value.get("id") if isinstance(raw.value, dict) else None
        return Problem(raw.where, str(err), None if rid is None else str(rid))


def normalise(raws: list[Raw], data) -> tuple[list[dict], list[Problem]]:
    """:func:`to_sample` of every record: (samples, problems)."""
    samples, problems = [], []
    for raw in raws:
        got = to_sample(raw, data)
        (problems if isinstance(got, Problem) else samples).append(got)
    return samples, problems


def duplicates(samples: list[dict]) -> list[Problem]:
    """A problem for every sample whose id an earlier sample has (across every split given)."""
    first, problems = {}, []
    for s in samples:
        if s["id"] in first:
            problems.append(Problem(s["where"], f"duplicate sample id {s['id']!r} (first at {first[s['id']]}); "
                                    "make the 'id' field unique across warm-up, pool and eval", s["id"]))
        else:
            first[s["id"]] = s["where"]
    return problems
