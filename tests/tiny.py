"""The tiny config every integration test runs on, and building tiny runs and repositories with it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from tests.shell import COPY, ROOT, sh

# Small enough that the whole chain runs in seconds on 2 CPU cores. Keys set here win over the
# params file's profile, as any explicit key does.
TINY_TRAIN = {"method": "lora", "epochs": 1, "batch_tokens": 512, "lora_r": 4}


TINY = {
    "synthetic": {"lexicon": 8, "pool": 48, "warmup": 16, "eval": 8, "pretrain_docs": 80},
    "base": {"vocab_size": 320, "hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64,
             "steps": 4, "batch_tokens": 1024},
    "train": TINY_TRAIN,
    "score": {"batch_tokens": 1024, "chunk": 64},
    "evaluate": {"max_new_tokens": 4, "batch_size": 8},
    "split": {"chunks": 2},
    # the warm-up and fixed rounds, and a self-evolving chain of two rounds that starts from the warm-up model
    # (26 stages in all: every DVC stage costs 2-6 s on 2 cores, most of it process start and imports)
    "rounds": {
        "warmup": {"data": "out/prepare/warmup.parquet", "reference": "base", "start": "base", "train": {"epochs": 1}},
        "fixed": {"data": "out/prepare/pool.parquet", "reference": "warmup", "start": "base"},
        "r1": {"data": "out/split/0.parquet", "reference": "warmup", "start": "warmup"},
        "r2": {"data": "out/split/1.parquet", "reference": "r1", "start": "r1"},
    },
    "flows": {"retries": 0, "retry_delay_s": 0},
}


def tiny_raw(**overrides) -> dict:
    """params.yaml with the tiny sections (and ``overrides``) merged in, section by section;
    ``rounds`` is replaced whole."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in {**TINY, **overrides}.items():
        merge = isinstance(values, dict) and section != "rounds"
        raw[section] = {**raw.get(section, {}), **values} if merge else values
    return raw


def write_tiny_params(path: Path, **overrides) -> Path:
    path.write_text(yaml.safe_dump(tiny_raw(**overrides), sort_keys=False))
    return path


ROUND_STAGES = ("data", "score", "select", "train", "evaluate")


def run_stages(work: Path, params, rounds: list[str] | None = None) -> Path:
    """Every stage's run() in order in ``work``: the data stages, then each round (default: all)."""
    from tasks import base, check, data, evaluate, generate, prepare, score, select, split, train

    old = Path.cwd()
    os.chdir(work)
    try:
        (work / "data").mkdir(exist_ok=True)
        shutil.copytree(ROOT / "lm_eval_tasks", work / "lm_eval_tasks", dirs_exist_ok=True)
        for stage in (generate, base, check, prepare, split):
            stage.run(params)
        for name in params.rounds if rounds is None else rounds:
            for stage in (data, score, select, train, evaluate):
                stage.run(params, name)
    finally:
        os.chdir(old)
    return work


def make_repo(work: Path, **overrides) -> Path:
    """A fresh checkout: project files, tiny params, one commit, nothing run yet."""
    work.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, work / name)
    write_tiny_params(work / "params.yaml", **overrides)
    sh("git init -q && dvc init -q", work)
    shutil.copytree(ROOT / ".dvc" / "plots", work / ".dvc" / "plots")  # dvc.yaml's plot templates
    sh("git add -A && git commit -qm init", work)
    return work
