"""Commands in temporary git + DVC repositories holding a copy of the project: the environment,
shell commands, stage commands, copies, and what `dvc repro` ran."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


COPY = ["tokenclean", "tasks", "flows", "data", "models", "lm_eval_tasks", "dvc.yaml", ".gitignore", ".dvcignore"]


GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
            "TQDM_DISABLE": "1", **GIT_ID}


def sh(cmd: str, cwd: Path, check: bool = True) -> str:
    proc = subprocess.run(cmd, cwd=cwd, shell=True, capture_output=True, text=True, env=env())
    if check and proc.returncode:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def stage_cmd(cwd: Path, stage: str, *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m tasks.<stage> args`` in ``cwd``, as DVC runs it."""
    return subprocess.run([sys.executable, "-m", f"tasks.{stage}", *args], cwd=cwd, capture_output=True, text=True,
                          env={**env(), "PYTHONPATH": str(ROOT), **(extra_env or {})})


def stage_in_process(cwd: Path, stage: str, *args: str) -> subprocess.CompletedProcess:
    """``tasks.<stage>.main(args)`` in this process, in ``cwd``: the exit status and the stage's stderr and log
    lines, as :func:`stage_cmd` returns them, without the 3-5 s a new interpreter spends importing torch,
    transformers and peft (the fast tier's budget; one test per failure path still runs the real command)."""
    err, root = io.StringIO(), logging.getLogger()
    handler, level, code = logging.StreamHandler(err), root.level, 0
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.chdir(cwd), contextlib.redirect_stderr(err):
            importlib.import_module(f"tasks.{stage}").main(list(args))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return subprocess.CompletedProcess([stage, *args], code, "", err.getvalue())


def copy_repo(src: Path, dest: Path) -> Path:
    """A copy of a repository (git, DVC cache and workspace), as a second clone with the same state."""
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def ran(output: str) -> set[str]:
    """Stages `dvc repro` ran, from its output."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def commit_all(repo: Path, message: str) -> None:
    sh(f"git add -A && git commit -qm '{message}'", repo)
