"""Held-out evaluation: answers compared after normalisation, the reference read from your own field."""

import json

import pytest

from tokenclean.evaluation.heldout import accuracy, extract_answer, normalise_answer


@pytest.mark.parametrize("text, want", [
    ("$1,200.50", "1200.5"), ("1200.5", "1200.5"), ("72.", "72"), (" 72 ", "72"), ("50%", "50"), ("3.0", "3"),
    ("-$5", "-5"), (".5", "0.5"), ("12,345", "12345"), ("1,2,3", "1,2,3"), ("x = 1", "x = 1"), ("Paris.", "Paris"),
])
def test_numbers_compare_as_numbers(text, want):
    assert normalise_answer(text) == want


def test_accuracy_extracts_after_the_last_marker_on_both_sides():
    reference = "Natalia sold 48/2 = 24 clips in May.\n#### 72"
    generations = ["48 + 24 = 72 clips.\n#### 72", "#### $72.00", "#### 7 #### 73", "72"]
    assert [extract_answer(g, "####") for g in generations] == ["72", "72", "73", "72"]
    assert accuracy(generations, [reference] * 4, "####") == 0.75  # the last has no marker: its whole text, 72
    assert accuracy(["salt=bodi"], ["salt=bodi"], ":") == 1.0


def test_the_answer_field_becomes_the_answer_column(tmp_path, tiny_run, monkeypatch, capsys):
    from tests.test_own_data import fails, project, run_stage
    from tokenclean.io import read_table

    rows = [{"question": f"q{i}", "answer": f"step {i}\n#### {i}", "final": i} for i in range(6)]
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    columns = {"prompt": "question", "completion": "answer"}
    repo = project(tmp_path / "a", tiny_run, {"gsm.jsonl": text}, source="data/gsm.jsonl", columns=columns,
                   answer="final")
    assert run_stage(repo, "prepare", monkeypatch, capsys)[0] == 0
    got = {r["sample_id"]: r["answer"] for s in ("pool", "warmup", "eval")
           for r in read_table(repo / f"out/prepare/{s}.parquet", ["sample_id", "answer"]).to_pylist()}
    assert sorted(got.values()) == [str(i) for i in range(6)]
    repo = project(tmp_path / "b", tiny_run, {"gsm.jsonl": text}, source="data/gsm.jsonl", columns=columns,
                   answer="solution")
    fails(repo, "prepare", monkeypatch, capsys, r"the answer field 'solution' \(data.answer\) is missing; .*"
          r"fields found: \['answer', 'final', 'question'\]")
