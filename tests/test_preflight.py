"""Checks before any training (`tokenclean check`, the check stage): each failure exits 2 within
seconds with a message, on a project folder with the tiny base as a local model under models/."""

import json
import shutil
import time

from tests.tiny import write_tiny_params

GOOD = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a {i}"}],
         "final": str(i)} for i in range(8)]


def project(tmp_path, tiny_run, records=GOOD, **params):
    """A folder with the tiny base copied to models/tiny-chat, data/sft.jsonl and params naming both."""
    shutil.copytree(tiny_run / "out/base", tmp_path / "models/tiny-chat")
    (tmp_path / "data").mkdir()
    (tmp_path / "data/sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    shutil.copytree(tiny_run / "lm_eval_tasks", tmp_path / "lm_eval_tasks")
    data = {"source": "data/sft.jsonl", "warmup": 2, "eval": 2, **params.pop("data", {})}
    write_tiny_params(tmp_path / "params.yaml", model={"base": "models/tiny-chat"}, data=data,
                      evaluate={"lm_eval": {"tasks": []}}, **params)
    return tmp_path


def check(repo, monkeypatch, capsys) -> tuple[int, str, float]:
    from tokenclean.cli.main import main

    monkeypatch.chdir(repo)
    t0 = time.monotonic()
    code = main(["check"])
    out = capsys.readouterr()
    return code, out.out + out.err, time.monotonic() - t0


def fails(repo, monkeypatch, capsys, message):
    code, out, seconds = check(repo, monkeypatch, capsys)
    assert code == 2 and message in out, out
    assert seconds < 30, f"a check should fail within seconds, took {seconds:.0f} s"
    assert not (repo / "out/base").exists() and not list((repo / "out").glob(".check-*")), "nothing left behind"
    return out


def test_a_good_project_passes_every_check(tmp_path, tiny_run, monkeypatch, capsys):
    code, out, _ = check(project(tmp_path, tiny_run, data={"answer": "final"}), monkeypatch, capsys)
    assert code == 0, out
    assert "models/tiny-chat, 320 tokens, 320 embeddings" in out and "ok  answers: every record has 'final'" in out
    assert "(warmup 2, pool 4, eval 2)" in out and "ok  chat template" in out and "4 checks passed" in out


def test_a_model_that_cannot_embed_its_tokenizer_fails(tmp_path, tiny_run, monkeypatch, capsys):
    repo = project(tmp_path, tiny_run)
    config = json.loads((repo / "models/tiny-chat/config.json").read_text())
    (repo / "models/tiny-chat/config.json").write_text(json.dumps({**config, "vocab_size": 100}))
    fails(repo, monkeypatch, capsys, "but the model embeds only 100")


def test_missing_lm_eval_task_data_fails(tmp_path, tiny_run, monkeypatch, capsys):
    repo = project(tmp_path, tiny_run)
    task = (repo / "lm_eval_tasks/zorbish_gen.yaml").read_text().replace("out/prepare/lm_eval/zorbish.jsonl",
                                                                        "data/gone.jsonl")
    (repo / "lm_eval_tasks/zorbish_gen.yaml").write_text(task)
    write_tiny_params(repo / "params.yaml", model={"base": "models/tiny-chat"},
                      data={"source": "data/sft.jsonl", "warmup": 2, "eval": 2},
                      evaluate={"lm_eval": {"tasks": ["zorbish_gen"]}})
    fails(repo, monkeypatch, capsys, "lm-eval tasks without their data")


def test_a_missing_answer_field_fails(tmp_path, tiny_run, monkeypatch, capsys):
    records = [*GOOD[:5], {k: v for k, v in GOOD[5].items() if k != "final"}, *GOOD[6:]]
    out = fails(project(tmp_path, tiny_run, records, data={"answer": "final"}), monkeypatch, capsys,
                "the answer field 'final' (data.answer) is missing")
    assert "data/sft.jsonl:6" in out


def test_a_template_that_does_not_render_fails(tmp_path, tiny_run, monkeypatch, capsys):
    repo = project(tmp_path, tiny_run)
    config = json.loads((repo / "models/tiny-chat/tokenizer_config.json").read_text())
    config["chat_template"] = "{{ raise_exception('this template takes no assistant turns') }}"
    (repo / "models/tiny-chat/tokenizer_config.json").write_text(json.dumps(config))
    (repo / "models/tiny-chat/chat_template.jinja").unlink(missing_ok=True)
    fails(repo, monkeypatch, capsys, "does not render: the chat template cannot render this conversation: "
          "this template takes no assistant turns")


def test_the_check_stage_runs_before_prepare():
    import yaml

    from tests.shell import ROOT

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert "out/check/passed.json" in stages["prepare"]["deps"] and "out/base" in stages["check"]["deps"]


def test_init_sets_up_your_model_and_data_and_the_pipeline_runs_to_the_end(tmp_path, tiny_run, monkeypatch, capsys):
    from tests.tiny import make_repo, run_stages
    from tokenclean.cli.main import main
    from tokenclean.io import read_json
    from tokenclean.params_file import load_params

    repo = make_repo(tmp_path / "repo")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tiny_run / "out/base", elsewhere / "chat-model")
    rows = [{"question": f"what is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(40)]
    (elsewhere / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.chdir(repo)
    code = main(["init", "--model", str(elsewhere / "chat-model"), "--data", str(elsewhere / "qa.jsonl"),
                 "--columns", "prompt=question,completion=answer", "--answer", "answer", "--marker", "####"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (repo / "models/chat-model/config.json").is_symlink() and (repo / "data/qa.jsonl").is_symlink()
    params = load_params(repo / "params.yaml")
    assert params.model.base == "models/chat-model" and params.data.source == "data/qa.jsonl"
    assert params.data.answer == "answer" and params.evaluate.answer_marker == "####"
    assert params.data.max_seq_len == 2048 and not params.evaluate.lm_eval.tasks, "the real-model defaults"
    assert "ok  answers: every record has 'answer'" in out and "estimate: " in out and " on this CPU (" in out
    assert not (repo / "out/base").exists(), "nothing of the default run is left among the results"
    run_stages(repo, params)
    metrics = read_json(repo / "out/rounds/fixed/evaluate/metrics.json")
    assert "eval_loss" in metrics and 0 <= metrics["accuracy"] <= 1
    assert not (repo / "out/generate/pool.jsonl").exists(), "no synthetic data for your own source"
