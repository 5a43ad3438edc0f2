"""Integration: `dvc repro` in a temporary git repository on the tiny config.

Checks the whole DAG runs, a second repro runs nothing, and changing only select.data_prop
re-runs exactly select, train and evaluate.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, write_tiny_params

pytestmark = pytest.mark.slow
COPY = ["tokenclean", "tasks", "flows", "data", "dvc.yaml"]


def sh(cmd, cwd, check=True):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(cmd, cwd=cwd, shell=True, capture_output=True, text=True, env=env)
    if check and proc.returncode:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    work = tmp_path_factory.mktemp("dvc_repo")
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, work / name)
    write_tiny_params(work / "params.yaml")
    sh("git init -q && dvc init -q && git add -A && git commit -qm init", work)
    return work


def ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def test_repro_runs_everything_then_nothing_then_only_what_changed(repo):
    first = sh("dvc repro", repo)
    assert ran(first) == {"generate", "base", "prepare", "warmup", "score", "select", "train", "evaluate"}
    assert "kept_share" in sh("dvc metrics show", repo) and "eval_loss" in sh("dvc metrics show", repo)

    assert ran(sh("dvc repro", repo)) == set()

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["select"]["data_prop"] = 0.4
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(sh("dvc repro", repo)) == {"select", "train", "evaluate"}


def test_misspelt_param_fails_the_stage_with_a_suggestion(repo):
    text = (repo / "params.yaml").read_text()
    try:
        (repo / "params.yaml").write_text(text.replace("data_prop:", "data_prp:"))
        out = sh("dvc repro -f -s select", repo, check=False)
        assert "did you mean 'data_prop'" in out
    finally:
        (repo / "params.yaml").write_text(text)
