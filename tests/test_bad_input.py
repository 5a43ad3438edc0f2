"""Bad input stops with a message naming the file, line and field, and leaves no partial output."""

import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.records import samples_of
from tests.shell import stage_cmd, stage_in_process
from tests.tiny import write_tiny_params
from tokenclean.data.formats import read_records
from tokenclean.errors import DataError
from tokenclean.params_file import ParamsError, load_params

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def load(tmp_path, lines: list[str], name="d.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines))
    return samples_of(path)


@pytest.mark.parametrize("bad, message", [
    ("{not json", r"d.jsonl:2: malformed JSON line"),
    (json.dumps({"prompt": "x"}), r"d.jsonl:2: missing field 'completion'"),
    (json.dumps({"prompt": "x", "completion": 3}), r"d.jsonl:2: field 'completion' must be a string, got int"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "  "}]}),
     r"d.jsonl:2: messages\[1\] is an empty assistant turn"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}]}),
     r"d.jsonl:2: the conversation must end with an assistant turn"),
    (json.dumps({"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]}),
     r"d.jsonl:2: messages\[0\].role is 'bot'"),
    (json.dumps({"text": "x"}), r"d.jsonl:2: no 'messages', 'conversations', 'prompt'/'completion' or "
     r"'instruction'/'output' field \(fields found: \['text'\]\)"),
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
        read_records(path)


@pytest.mark.parametrize("text, message", [
    ("select:\n  data_prp: 0.5\n", "unknown key 'select.data_prp'; did you mean 'data_prop'"),
    ("select:\n  data_prop: 0\n", "select.data_prop"),
    ("compute:\n  kernels: liger\n  compile: true\n", "compute.compile works with compute.kernels: torch"),
])
def test_bad_params_are_refused_at_load_naming_the_key(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=message):
        load_params(path)
    path.write_text("compute:\n  compile: true\n")  # with the default kernels (torch) it loads
    assert load_params(path).compute.compile


def test_prepare_stage_fails_cleanly_and_writes_nothing(tmp_path, tiny_run):
    """The CLI exits non-zero with the message, and out/prepare is never created."""
    (tmp_path / "out").mkdir()
    shutil.copytree(tiny_run / "out" / "base", tmp_path / "out" / "base")
    (tmp_path / "data").mkdir()
    (tmp_path / "data/bad.jsonl").write_text(json.dumps(GOOD) + "\n{oops\n")
    write_tiny_params(tmp_path / "params.yaml", data={"source": "data/bad.jsonl", "warmup": 1, "eval": 1})
    proc = stage_cmd(tmp_path, "prepare")
    assert proc.returncode == 2
    assert "data/bad.jsonl:2: malformed JSON line" in proc.stderr
    assert not (tmp_path / "out" / "prepare").exists()


def hub_base(tmp_path, tiny_run, edit) -> Path:
    """A copy of the tiny base as a local 'hub' model dir, its tokenizer changed by ``edit``."""
    from tokenclean.model.modeling import load_tokenizer

    model_dir = tmp_path / "models" / "hub_model"  # under models/: the base stage's tracked folder
    shutil.copytree(tiny_run / "out" / "base", model_dir)
    tok = load_tokenizer(model_dir)
    edit(tok)
    for old in ("chat_template.jinja", "tokenizer_config.json"):  # written afresh: nothing of the old left
        (model_dir / old).unlink(missing_ok=True)
    tok.save_pretrained(model_dir)
    return model_dir


@pytest.mark.parametrize("edit, message", [
    (lambda t: setattr(t, "chat_template", None),
     "has no chat template: give it one .* or set model.chat_template: plain"),
    (lambda t: setattr(t, "eos_token", None), "has no end-of-sequence token, so a response could never end"),
])
def test_tokenizer_without_template_or_eos_stops_the_base_stage(tmp_path, tiny_run, edit, message):
    hub_base(tmp_path, tiny_run, edit)
    write_tiny_params(tmp_path / "params.yaml", model={"base": "models/hub_model"})
    proc = stage_in_process(tmp_path, "base")
    assert proc.returncode == 2 and re.search(message, proc.stderr), proc.stderr[-2000:]
    assert not (tmp_path / "out" / "base").exists()


def test_plain_chat_template_is_an_explicit_choice(tmp_path, tiny_run):
    from tokenclean.data.render import PLAIN_TEMPLATE
    from tokenclean.model.modeling import load_tokenizer

    hub_base(tmp_path, tiny_run, lambda t: setattr(t, "chat_template", None))
    write_tiny_params(tmp_path / "params.yaml", model={"base": "models/hub_model", "chat_template": "plain"})
    assert stage_in_process(tmp_path, "base").returncode == 0
    assert load_tokenizer(tmp_path / "out" / "base").chat_template == PLAIN_TEMPLATE


def test_tokenizer_larger_than_the_model_vocabulary_is_refused(tmp_path, tiny_run):
    hub_base(tmp_path, tiny_run, lambda t: t.add_tokens([f"<extra{i}>" for i in range(50)]))
    for part in ("data", "score", "select"):
        shutil.copytree(tiny_run / "out/rounds/warmup" / part, tmp_path / "out/rounds/warmup" / part)
    write_tiny_params(tmp_path / "params.yaml", model={"base": "models/hub_model"})
    assert stage_in_process(tmp_path, "base").returncode == 0
    proc = stage_in_process(tmp_path, "train", "--round", "warmup")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert re.search(r"the tokenizer has \d+ tokens but the model embeds only \d+", proc.stderr), proc.stderr[-2000:]
    assert not (tmp_path / "out/rounds/warmup/train").exists()


def test_non_finite_loss_names_the_sample(tiny_run):
    import torch

    from tokenclean import columns as C
    from tokenclean.data.rows import load_rows
    from tokenclean.method.scoring import score_dataset
    from tokenclean.model.modeling import load_base

    rows = load_rows(tiny_run / "out" / "prepare" / "pool.parquet")
    model = load_base(tiny_run / "out" / "base", "float32", torch.device("cpu"))
    ids = rows[C.INPUT_IDS]
    for k in range(1, len(ids)):  # sample k holds a token that no earlier sample has (not as its last token)
        unseen = set(ids[k][:-1].tolist()).difference(*(x.tolist() for x in ids[:k]))
        if unseen:
            break
    with torch.no_grad():  # an inf embedding: every later position of sample k gets a NaN loss
        model.get_input_embeddings().weight[min(unseen)] = float("inf")
    with pytest.raises(FloatingPointError, match=rf"first sample '{re.escape(rows[C.SAMPLE_ID][k])}'"):
        score_dataset(model, ids[: k + 1], rows[C.LABELS][: k + 1], 0, 1024, 64, sample_ids=rows[C.SAMPLE_ID][: k + 1])


@pytest.mark.parametrize("section, value", [("select", 0), ("select", 1.5), ("select", -0.2), ("evolve", 0)])
def test_data_prop_outside_zero_one_is_refused_at_load(tmp_path, section, value):
    raw = {"select": {"data_prop": value}} if section == "select" else {
        "evolve": {"rounds": {"r0": {"prev": "base", "data": "x", "select": {"data_prop": value}}}}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"data_prop"):
        load_params(path)


def test_long_samples_are_truncated_and_counted_never_dropped(tmp_path, tiny_run):
    long = {"messages": [{"role": "user", "content": "say it"}, {"role": "assistant", "content": "answer " * 200}]}
    (tmp_path / "data").mkdir()
    (tmp_path / "data/d.jsonl").write_text(
        "\n".join(json.dumps(x) for x in [GOOD, long, GOOD | {"id": "g2"}, long | {"id": "l2"}]))
    shutil.copytree(tiny_run / "out" / "base", tmp_path / "out" / "base")
    write_tiny_params(tmp_path / "params.yaml",
                      data={"source": "data/d.jsonl", "warmup": 1, "eval": 1, "max_seq_len": 64})
    proc = stage_in_process(tmp_path, "prepare")
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = json.loads((tmp_path / "out" / "prepare" / "stats.json").read_text())
    assert sum(s["truncated"] for s in stats.values()) == 2
    assert sum(s["samples"] for s in stats.values()) == 4
    assert "were longer than data.max_seq_len=64 and were truncated" in proc.stderr
    flags = {}  # each prepared sample says whether it was cut: the audit marks those
    for split in ("warmup", "pool", "eval"):
        t = pq.read_table(tmp_path / "out" / "prepare" / f"{split}.parquet", columns=["sample_id", "truncated"])
        flags.update(zip(t.column("sample_id").to_pylist(), t.column("truncated").to_pylist()))
    assert sorted(k for k, cut in flags.items() if cut) == ["d-000002", "l2"]  # record 2 (no id) and l2


def test_duplicate_sample_ids_are_refused_naming_the_id(tmp_path):
    from tokenclean.data.formats import duplicates

    samples = load(tmp_path, [json.dumps(GOOD | {"id": "a"}), json.dumps(GOOD | {"id": "b"}),
                              json.dumps(GOOD | {"id": "a"})])
    (problem,) = duplicates(samples)
    assert re.search(r"d\.jsonl:3 \(id a\): duplicate sample id 'a' \(first at .*d\.jsonl:1\)", str(problem))
