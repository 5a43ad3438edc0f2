"""flows/pipeline.py on a two-stage DVC repository: DVC's order, one stage at a time, the
repository lock held for a whole flow, and a failing stage's own message."""

import subprocess
import time

import pytest

from flows.pipeline import Busy, Pipeline, StageFailed
from tests.shell import ROOT, env, sh

pytestmark = pytest.mark.slow

DVC_YAML = """stages:
  a:
    cmd: python a.py
    deps: [a.py, in.txt]
    outs: [a.txt]
  b:
    cmd: python b.py
    deps: [b.py, a.txt]
    outs: [b.txt]
"""
A = "open('a.txt', 'w').write(open('in.txt').read().upper())\n"
B = """import sys
text = open('a.txt').read()
if not text.strip():
    sys.exit("error in stage b: empty input")
open('b.txt', 'w').write(text * 2)
"""


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "in.txt").write_text("x")
    (tmp_path / "a.py").write_text(A)
    (tmp_path / "b.py").write_text(B)
    sh("git init -q && dvc init -q && git add -A && git commit -qm init", tmp_path)
    return tmp_path


def test_stages_run_in_dvc_order_once_then_skip(repo):
    with Pipeline(repo) as p:
        assert p.stage_order() == ["a", "b"] and p.stage_order(["a"]) == ["a"]
        assert [p.repro(s) for s in p.stage_order()] == [True, True]
        assert [p.repro(s) for s in p.stage_order()] == [False, False]
    assert (repo / "b.txt").read_text() == "XX"


def test_an_open_pipeline_keeps_other_runs_out(repo):
    with Pipeline(repo):
        start = time.monotonic()
        out = sh("dvc repro", repo, check=False)
        assert "Unable to acquire lock" in out and time.monotonic() - start < 30
        with pytest.raises(Busy, match="in use by another `dvc repro` or flow run"):
            Pipeline(repo).__enter__()
    assert "Running stage 'a'" in sh("dvc repro", repo)


def test_a_failing_stage_reports_what_it_printed_and_its_exit_status(repo):
    (repo / "in.txt").write_text(" ")
    lines = []
    with Pipeline(repo) as p, pytest.raises(StageFailed, match="error in stage b: empty input") as failed:
        for stage in p.stage_order():
            p.repro(stage, on_line=lines.append)
    assert failed.value.exit_code == 1  # sys.exit("message") exits with 1
    assert "error in stage b: empty input" in lines, "each line the stage printed reached the callback"


def test_a_second_dvc_repro_fails_fast_and_the_first_completes(repo):
    """Two `dvc repro` on one repository: the second stops at the stage the first runs; a flow does not
    start; the first's outputs are whole. Stage a holds the stage lock as every tokenclean stage does."""
    (repo / "a.py").write_text(
        f"import pathlib, sys, time\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from tokenclean.stage import one_stage_at_a_time\n"
        "with one_stage_at_a_time('a'):\n    pathlib.Path('started').touch()\n"
        "    while not pathlib.Path('go').exists():\n        time.sleep(0.05)\n"
        + "".join("    " + x for x in A.splitlines(True)))
    first = subprocess.Popen(["dvc", "repro"], cwd=repo, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    deadline = time.monotonic() + 120
    while not (repo / "started").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0]
        time.sleep(0.05)
    start = time.monotonic()
    second = sh("dvc repro", repo, check=False)  # DVC locks the running stage's files: 'a.txt' is busy
    assert "failed to reproduce 'a'" in second and "is busy" in second and time.monotonic() - start < 30
    with pytest.raises(Busy, match=r"a `dvc repro` is running a stage \(pid \d+: stage a\)"):
        Pipeline(repo).__enter__()
    (repo / "go").touch()
    assert first.wait(timeout=120) == 0, first.communicate()[0]
    assert (repo / "b.txt").read_text() == "XX"
    assert "up to date" in sh("dvc status", repo)


def test_a_stage_refuses_to_start_while_another_runs(tmp_path, monkeypatch, capsys):
    """What stops a stage that a second `dvc repro` slips in while a flow's stage runs (DVC lets go of
    its lock during a stage command)."""
    from tokenclean.locks import exclusive
    from tokenclean.stage import STAGE_LOCK, stage_main

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc").mkdir()
    ran = []
    with exclusive(STAGE_LOCK, "stage train"), pytest.raises(SystemExit) as stop:
        stage_main("score", lambda params: ran.append(1), ["--params", str(ROOT / "params.yaml")])
    assert stop.value.code == 2 and ran == []
    err = capsys.readouterr().err
    assert ("error in stage 'score'" in err and "held by pid" in err
            and "another stage is running in this repository" in err)
    stage_main("score", lambda params: ran.append(1), ["--params", str(ROOT / "params.yaml")])
    assert ran == [1]
