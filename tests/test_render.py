"""Rendering: decoded label spans are exactly the assistant contents plus the end-of-turn token."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.records import samples_of
from tokenclean.columns import IGNORE
from tokenclean.data.render import PLAIN_TEMPLATE, render

CHAT = {"messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Repeat: apple river"},
    {"role": "assistant", "content": "Sure: apple river"},
    {"role": "user", "content": "Again, with ünïcode ✓"},
    {"role": "assistant", "content": "Here you go:\n  apple  river ✓"},
]}
RECORDS = [
    CHAT,
    {"prompt": "Say in Zorbish: stone", "completion": "Answer: kiru"},
    {"instruction": "Translate to Zorbish:", "input": "stone cloud", "output": "Of course: kiru bola"},
    {"instruction": "Repeat: hill", "output": " hill "},
]


def label_spans(ids, labels):
    """Maximal runs of labelled positions, as token id lists."""
    runs, cur = [], []
    for t, y in zip(ids, labels):
        if y != IGNORE:
            cur.append(int(t))
        elif cur:
            runs.append(cur)
            cur = []
    return runs + ([cur] if cur else [])


@pytest.fixture(params=["own template", "plain template"])
def tokenizer(request, tiny_tokenizer):
    tok = tiny_tokenizer
    if request.param == "plain template":
        tok = tok.__class__.from_pretrained(tok.name_or_path)
        # what model.chat_template: plain sets (tokenclean.model.modeling.load_tokenizer)
        tok.chat_template = PLAIN_TEMPLATE
    return tok


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_every_format_labels_exactly_the_assistant_turns(tmp_path, tokenizer, suffix):
    path = tmp_path / f"data{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in RECORDS))
    elif suffix == ".json":
        path.write_text(json.dumps(RECORDS))
    samples = []
    if suffix == ".parquet":  # one file per format: a Parquet file has one schema
        for i, rec in enumerate(RECORDS):
            pq.write_table(pa.Table.from_pylist([rec]), tmp_path / f"d{i}.parquet")
            samples += samples_of(tmp_path / f"d{i}.parquet")
    else:
        samples = samples_of(path)
    assert len(samples) == len(RECORDS)
    eot = tokenizer.eos_token
    for s in samples:
        ids, labels, _, truncated = render(tokenizer, s["messages"], 512)
        assert not truncated and len(ids) == len(labels)
        spans = [tokenizer.decode(r) for r in label_spans(ids, labels)]
        expected = [m["content"] + eot for m in s["messages"] if m["role"] == "assistant"]
        assert spans == expected


def test_truncation_is_reported(tiny_tokenizer):
    ids, labels, _, truncated = render(tiny_tokenizer, CHAT["messages"], 10)
    assert truncated and len(ids) == len(labels) == 10


def test_plain_template_is_documented_shape(tiny_tokenizer):
    assert "### {{ m['role'] | capitalize }}" in PLAIN_TEMPLATE


def test_synthetic_kinds_are_aligned_to_tokens(tiny_run, tiny_tokenizer):
    from tokenclean.columns import INPUT_IDS, KINDS, LABELS
    t = pq.read_table(tiny_run / "out" / "prepare" / "pool.parquet").to_pylist()
    for row in t[:10]:
        ids, labels, kinds = map(np.asarray, (row[INPUT_IDS], row[LABELS], row[KINDS]))
        assert ((labels != IGNORE) == (kinds >= 0)).all()
        assert kinds[labels != IGNORE][-1] == 1  # the end-of-turn token is boilerplate
