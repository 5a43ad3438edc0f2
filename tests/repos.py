"""Temporary git + DVC repositories holding a copy of the project on the tiny config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, write_tiny_params

COPY = ["tokenclean", "tasks", "flows", "data", "lm_eval_tasks", "dvc.yaml", ".gitignore", ".dvcignore"]
GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1", **GIT_ID}


def sh(cmd: str, cwd: Path, check: bool = True) -> str:
    proc = subprocess.run(cmd, cwd=cwd, shell=True, capture_output=True, text=True, env=env())
    if check and proc.returncode:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def make_repo(work: Path, **overrides) -> Path:
    """A fresh checkout: project files, tiny params, one commit, nothing run yet."""
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, work / name)
    write_tiny_params(work / "params.yaml", **overrides)
    sh("git init -q && dvc init -q && git add -A && git commit -qm init", work)
    return work


def ran(output: str) -> set[str]:
    """Stages `dvc repro` ran, from its output."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def commit_all(repo: Path, message: str) -> None:
    sh(f"git add -A && git commit -qm '{message}'", repo)
