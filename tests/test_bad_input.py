"""Bad input stops with a message naming the file, line and field, and leaves no partial output."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, write_tiny_params
from tokenclean.config import ParamsError, load_params
from tokenclean.formats import DataError, load_source, normalise

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def load(tmp_path, lines: list[str], name="d.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines))
    return normalise(load_source(str(path))["pool"], "auto")


@pytest.mark.parametrize("bad, message", [
    ("{not json", r"d.jsonl:2: malformed JSON line"),
    (json.dumps({"prompt": "x"}), r"d.jsonl:2: missing field 'completion'"),
    (json.dumps({"prompt": "x", "completion": 3}), r"d.jsonl:2: field 'completion' must be a string, got int"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "  "}]}),
     r"d.jsonl:2: messages\[1\] is an empty assistant turn"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}]}), r"d.jsonl:2: the conversation must end with an assistant turn"),
    (json.dumps({"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]}),
     r"d.jsonl:2: messages\[0\].role is 'bot'"),
    (json.dumps({"text": "x"}), r"d.jsonl:2: no 'messages', 'prompt'/'completion' or 'instruction'/'output' field"),
])
def test_bad_records_name_file_line_and_field(tmp_path, bad, message):
    with pytest.raises(DataError, match=message):
        load(tmp_path, [json.dumps(GOOD), bad])


def test_empty_and_non_utf8_files(tmp_path):
    with pytest.raises(DataError, match="empty file"):
        load(tmp_path, ["  "])
    path = tmp_path / "b.jsonl"
    path.write_bytes(b'{"prompt": "\xff"}')
    with pytest.raises(DataError, match="not UTF-8"):
        load_source(str(path))


def test_misspelt_params_key_suggests_the_right_one(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("select:\n  data_prp: 0.5\n")
    with pytest.raises(ParamsError, match="unknown key 'select.data_prp'; did you mean 'data_prop'"):
        load_params(path)
    path.write_text("select:\n  data_prop: 0\n")
    with pytest.raises(ParamsError, match="select.data_prop"):
        load_params(path)


def test_prepare_stage_fails_cleanly_and_writes_nothing(tmp_path, tiny_run):
    """The CLI exits non-zero with the message, and out/prepare is never created."""
    import shutil

    (tmp_path / "out").mkdir()
    shutil.copytree(tiny_run / "out" / "base", tmp_path / "out" / "base")
    (tmp_path / "bad.jsonl").write_text(json.dumps(GOOD) + "\n{oops\n")
    write_tiny_params(tmp_path / "params.yaml", data={"source": "bad.jsonl", "warmup": 1, "eval": 1})
    proc = subprocess.run([sys.executable, "-m", "tasks.prepare"], cwd=tmp_path, capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert "bad.jsonl:2: malformed JSON line" in proc.stderr
    assert not (tmp_path / "out" / "prepare").exists()
