"""A user's own SFT data in: field mapping, ShareGPT, file shapes, every error at once, skipping,
local versus hub, whole-stage atomicity. Stage-level cases run the stage's main() in process and
assert exit 2, the message, and that no new output was left."""

import json
import re
import shutil
import time

import pytest

from tests.records import samples_of
from tests.tiny import write_tiny_params
from tokenclean.data import sources
from tokenclean.errors import DataError

PAIR = {"question": "What is 2+2?", "answer": "4"}
GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def lines(*records) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"


def project(tmp_path, tiny_run, files: dict, **data):
    """A project folder with the tiny base, ``files`` under data/ and params naming data.source."""
    shutil.copytree(tiny_run / "out/base", tmp_path / "out/base")
    (tmp_path / "data").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    write_tiny_params(tmp_path / "params.yaml", data={"warmup": 1, "eval": 1, **data})
    return tmp_path


def run_stage(repo, stage: str, monkeypatch, capsys) -> tuple[int, str]:
    """``python -m tasks.<stage>`` in process: (exit code, stderr)."""
    import importlib

    monkeypatch.chdir(repo)
    try:
        importlib.import_module(f"tasks.{stage}").main([])
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def fails(repo, stage, monkeypatch, capsys, message: str) -> str:
    code, err = run_stage(repo, stage, monkeypatch, capsys)
    assert code == 2, err[-3000:]
    assert re.search(message, err), err[-3000:]
    assert not (repo / "out" / stage).exists(), "no new output left"
    return err


# ---- field mapping and formats ----------------------------------------------------------------


def test_columns_map_your_field_names_onto_a_format(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(lines(PAIR))
    (qa,) = samples_of(path, columns={"prompt": "question", "completion": "answer"})
    assert qa["messages"] == [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]
    path.write_text(lines({"instruction": "Add", "input": "2+2", "response": "4"}))
    (alpaca,) = samples_of(path, columns={"output": "response"})
    assert alpaca["messages"][-1] == {"role": "assistant", "content": "4"}
    with pytest.raises(DataError, match=r"fields found: \['answer', 'question'\]"):
        path.write_text(lines(PAIR))
        samples_of(path)


def test_unknown_column_key_fails_at_load():
    from tokenclean.config import DataCfg

    with pytest.raises(ValueError, match=r"data.columns maps unknown field\(s\) \['question'\]"):
        DataCfg(columns={"question": "prompt"})


def test_sharegpt_is_detected_and_its_roles_mapped(tmp_path):
    conv = {"conversations": [{"from": "system", "value": "be brief"}, {"from": "human", "value": "hi"},
                              {"from": "gpt", "value": "hello"}]}
    path = tmp_path / "sg.jsonl"
    path.write_text(lines(conv))
    (s,) = samples_of(path)
    assert [m["role"] for m in s["messages"]] == ["system", "user", "assistant"]
    bot = {"conversations": [{"from": "person", "value": "hi"}, {"from": "bot", "value": "hello"}]}
    path.write_text(lines(bot))
    (s,) = samples_of(path, roles={"person": "user", "bot": "assistant"})
    assert s["messages"][-1] == {"role": "assistant", "content": "hello"}
    with pytest.raises(DataError, match=r"sg.jsonl:1: conversations\[0\].from is 'person'; map it onto a role"):
        samples_of(path)


def test_byte_order_mark_is_accepted(tmp_path):
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + lines(GOOD).encode())
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps([GOOD]).encode())
    assert len(samples_of(tmp_path / "bom.jsonl")) == len(samples_of(tmp_path / "bom.json")) == 1


def test_object_at_the_top_is_read_from_data_field_or_refused_naming_its_keys(tmp_path):
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"version": 2, "data": [GOOD, GOOD | {"id": "b"}]}))
    assert len(samples_of(path, field="data")) == 2
    with pytest.raises(DataError, match=r"top level is an object with keys \['data', 'version'\].*set data.field"):
        samples_of(path)
    with pytest.raises(DataError, match=r"data.field is 'rows', but the top-level keys holding lists are \['data'\]"):
        samples_of(path, field="rows")


def test_json_lines_saved_as_json_gets_a_hint(tmp_path):
    path = tmp_path / "lines.json"
    path.write_text(lines(GOOD, GOOD))
    with pytest.raises(DataError, match=r"lines.json:2:1: malformed JSON \(Extra data\); .*rename it to .jsonl"):
        samples_of(path)


def test_non_utf8_byte_is_reported_by_line_and_column(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(lines(GOOD).encode() + b'{"prompt": "caf\xe9", "completion": "x"}\n')
    with pytest.raises(DataError, match=r"latin.jsonl:2:16: not UTF-8 \(byte 0xe9\)"):
        samples_of(path)


def test_records_count_from_one_in_json_as_in_jsonl(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([GOOD, {"prompt": "x"}]))
    (tmp_path / "a.jsonl").write_text(lines(GOOD, {"prompt": "x"}))
    with pytest.raises(DataError, match=r"a.json record 2: missing field 'completion'"):
        samples_of(tmp_path / "a.json")
    with pytest.raises(DataError, match=r"a.jsonl:2: missing field 'completion'"):
        samples_of(tmp_path / "a.jsonl")


def test_meta_of_the_wrong_type_and_null_ids(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(lines(GOOD | {"meta": "note"}))
    with pytest.raises(DataError, match=r"m.jsonl:1: field 'meta' must be an object, got str"):
        samples_of(path)
    path.write_text(lines(*[GOOD | {"id": None}] * 3))
    assert [s["id"] for s in samples_of(path)] == ["m-000001", "m-000002", "m-000003"]


# ---- every error at once, or skipped -------------------------------------------------------------


def test_every_bad_record_is_reported_in_one_run(tmp_path, tiny_run, monkeypatch, capsys):
    bad = [{"prompt": f"p{i}"} for i in range(25)]
    repo = project(tmp_path, tiny_run, {"d.jsonl": lines(*[GOOD | {"id": f"g{i}"} for i in range(4)], *bad, "{x")},
                   source="data/d.jsonl")
    err = fails(repo, "prepare", monkeypatch, capsys, r"26 bad record\(s\) in data.source 'data/d.jsonl'")
    assert err.count("missing field 'completion'") == 20 and "data/d.jsonl:5: missing field" in err
    assert "... and 6 more" in err and "data.on_error: skip" in err


def test_skip_leaves_bad_records_out_and_lists_them(tmp_path, tiny_run, monkeypatch, capsys):
    good = [GOOD | {"id": f"g{i}"} for i in range(4)]
    repo = project(tmp_path, tiny_run, {"d.jsonl": lines(*good, {"id": "no-answer", "prompt": "p"}, "{x")},
                   source="data/d.jsonl", on_error="skip")
    code, err = run_stage(repo, "prepare", monkeypatch, capsys)
    assert code == 0, err[-3000:]
    stats = json.loads((repo / "out/prepare/stats.json").read_text())
    assert stats["skipped"] == {"skipped": 2, "skipped_records": ["no-answer", "data/d.jsonl:6"]}
    assert sum(stats[s]["samples"] for s in ("warmup", "pool", "eval")) == 4


def test_ids_must_be_unique_across_splits(tmp_path, tiny_run, monkeypatch, capsys):
    files = {"d/pool.jsonl": lines(*[GOOD | {"id": f"p{i}"} for i in range(3)]),
             "d/eval.jsonl": lines(GOOD | {"id": "p1"}), "d/warmup.jsonl": lines(GOOD | {"id": "w"})}
    repo = project(tmp_path, tiny_run, files, source="data/d")
    fails(repo, "prepare", monkeypatch, capsys,
          r"duplicate sample id 'p1' \(first at data/d/(pool|eval).jsonl:\d\)")


# ---- local or hub, tracked -----------------------------------------------------------------------


@pytest.mark.parametrize("name, path", [("openai/gsm8k", False), ("Qwen/Qwen2.5-0.5B", False), ("gsm8k", False),
                                        ("./gsm8k", True), ("/abs/x", True), ("~/x", True), ("sft.jsonl", True),
                                        ("a/b/c", True), ("data/missing", True)])
def test_path_like_sources_are_never_looked_up_on_the_hub(name, path):
    assert sources.is_path(name) is path


def test_missing_local_source_fails_at_once(tmp_path, tiny_run, monkeypatch, capsys):
    repo = project(tmp_path, tiny_run, {}, source="data/sft")
    fails(repo, "prepare", monkeypatch, capsys, r"data.source 'data/sft' does not exist \(a path, so it is not looked")


def test_source_outside_data_is_refused_with_the_link_command(tmp_path, tiny_run, monkeypatch, capsys):
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text(lines(*[GOOD | {"id": f"g{i}"} for i in range(4)]))
    repo = project(tmp_path / "repo", tiny_run, {}, source=str(outside))
    fails(repo, "prepare", monkeypatch, capsys, rf"is outside data/.*\n  ln -s {outside} data/elsewhere.jsonl")


@pytest.mark.parametrize("stage, section, name", [("prepare", "data", "nosuch-org/nosuch-data"),
                                                  ("base", "model", "nosuch-org/nosuch-model")])
def test_unreachable_or_unknown_hub_name_exits_2_within_seconds(tmp_path, tiny_run, stage, section, name,
                                                                 monkeypatch, capsys):
    repo = project(tmp_path, tiny_run, {})
    write_tiny_params(repo / "params.yaml", **{section: {("source" if section == "data" else "base"): name}})
    if stage == "base":
        shutil.rmtree(repo / "out/base")
    start = time.monotonic()
    fails(repo, stage, monkeypatch, capsys, rf"'{name}'")
    assert time.monotonic() - start < 30, "no half minute of retries"


@pytest.mark.slow
def test_a_linked_source_and_model_go_stale_when_edited(tiny_run, tmp_path):
    import yaml

    from tests.shell import ran, sh
    from tests.tiny import make_repo

    repo = make_repo(tmp_path / "repo")
    own, model = tmp_path / "own.jsonl", tmp_path / "my-model"
    own.write_text(lines(*[GOOD | {"id": f"g{i}"} for i in range(8)]))
    shutil.copytree(tiny_run / "out/base", model)
    (repo / "data/own.jsonl").symlink_to(own)
    sh(f"cp -rs {model} models/my-model", repo)  # a tree of links: DVC hashes through file links, not folder links
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"].update(source="data/own.jsonl", warmup=2, eval=2)
    params["model"]["base"] = "models/my-model"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(sh("dvc repro prepare", repo)) == {"generate", "base", "check", "prepare"}
    assert "up to date" in sh("dvc status base prepare", repo)
    own.write_text(lines(*[GOOD | {"id": f"g{i}"} for i in range(9)]))  # the original, outside the repository
    assert re.search(r"prepare:\s+changed deps:\s+modified:\s+data", sh("dvc status prepare", repo))
    (model / "config.json").write_text((model / "config.json").read_text() + "\n")
    assert re.search(r"base:\s+changed deps:\s+modified:\s+models", sh("dvc status base", repo))


# ---- whole-stage atomicity -----------------------------------------------------------------------


def test_a_failing_stage_leaves_its_previous_outputs_intact(tmp_path, tiny_run, monkeypatch, capsys):
    long_prompt = {"messages": [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "ok"}]}
    files = {"d/pool.jsonl": lines(*[GOOD | {"id": f"p{i}"} for i in range(3)]),
             "d/eval.jsonl": lines(long_prompt | {"id": "e"})}  # nothing left to learn after truncation
    repo = project(tmp_path, tiny_run, files, source="data/d", max_seq_len=64)
    previous = repo / "out/prepare"
    previous.mkdir(parents=True)
    (previous / "stats.json").write_text("previous")
    code, err = run_stage(repo, "prepare", monkeypatch, capsys)
    assert code == 2 and "split 'eval' has no sample with a response token" in err, err[-3000:]
    assert sorted(p.name for p in previous.iterdir()) == ["stats.json"], "no new pool/warmup beside the old"
    assert (previous / "stats.json").read_text() == "previous"
    assert sorted(p.name for p in (repo / "out").iterdir()) == ["base", "prepare"], "nothing parked left behind"
