"""flows/pipeline.py on a two-stage DVC repository: DVC's order, one stage at a time, the
repository lock held for a whole flow, and a failing stage's own message."""

import time

import pytest

from flows.pipeline import Busy, Pipeline, StageFailed
from tests.repos import sh

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


def test_a_failing_stage_reports_what_it_printed(repo):
    (repo / "in.txt").write_text(" ")
    with Pipeline(repo) as p, pytest.raises(StageFailed, match="error in stage b: empty input"):
        for stage in p.stage_order():
            p.repro(stage)
