"""Shared fixtures: a tiny config and one tiny end-to-end run of every stage (session-scoped)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[1]

# Small enough that the whole chain runs in seconds on 2 CPU cores.
TINY = {
    "synthetic": {"lexicon": 8, "pool": 48, "warmup": 16, "eval": 8, "pretrain_docs": 80},
    "base": {"vocab_size": 320, "hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64,
             "steps": 4, "batch_tokens": 1024},
    "warmup": {"method": "lora", "epochs": 1, "batch_tokens": 512, "lora_r": 4},
    "train": {"method": "lora", "epochs": 1, "batch_tokens": 512, "lora_r": 4},
    "score": {"batch_tokens": 1024, "chunk": 64},
    "evaluate": {"max_new_tokens": 4, "batch_size": 8},
    "evolve": {
        "chunks": 3,
        "train": {"method": "lora", "epochs": 1, "batch_tokens": 512, "lora_r": 4},
        "rounds": {f"r{i}": {"prev": f"r{i - 1}" if i else "base", "data": f"out/evolve/split/{i}.parquet"} for i in range(3)},
    },
    "flows": {"retries": 0, "retry_delay_s": 0},
}


def write_tiny_params(path: Path, **overrides) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in {**TINY, **overrides}.items():
        raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_params():
    from tokenclean.config import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY.items():
        raw[section] = {**raw[section], **values}
    return parse_params(raw)


def run_stages(work: Path, params, evolve: bool = True) -> Path:
    """Every stage's run() in order in ``work`` (fixed-model, then the self-evolving rounds)."""
    from tasks import (base, evaluate, evolve_data, evolve_evaluate, evolve_score, evolve_select, evolve_split,
                       evolve_train, generate, prepare, score, select, train, warmup)

    old = Path.cwd()
    os.chdir(work)
    try:
        (work / "data").mkdir()
        shutil.copytree(ROOT / "lm_eval_tasks", work / "lm_eval_tasks")
        for stage in (generate, base, prepare, warmup, score, select, train, evaluate):
            stage.run(params)
        if evolve:
            evolve_split.run(params)
            for name in params.evolve.rounds:
                for stage in (evolve_data, evolve_score, evolve_select, evolve_train, evolve_evaluate):
                    stage.run(params, name)
    finally:
        os.chdir(old)
    return work


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_params):
    """One tiny run of every stage, shared by the session's tests."""
    return run_stages(tmp_path_factory.mktemp("tiny_run"), tiny_params)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_run):
    from tokenclean.modeling import load_tokenizer

    return load_tokenizer(tiny_run / "out" / "base")


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (SQLite) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
