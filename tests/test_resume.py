"""Interrupted stages: killed with SIGKILL, rerun, and ending exactly where an uninterrupted run ends."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.shell import ROOT
from tests.tiny import write_tiny_params
from tokenclean.io import file_hash, read_json

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def stage_dir(tiny_run: Path, tmp: Path, inputs: list[str], **params) -> Path:
    """A working folder with the tiny run's ``inputs`` (paths under out/) and tiny params plus ``params``."""
    tmp.mkdir()
    for name in inputs:
        shutil.copytree(tiny_run / "out" / name, tmp / "out" / name)
    write_tiny_params(tmp / "params.yaml", **params)
    return tmp


def start(cwd: Path, module: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; fail if it ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the stage ended before it could be killed:\n{proc.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, "timed out waiting for a checkpoint"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def finish(cwd: Path, module: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


# Many short steps, a checkpoint every 3: the kill lands after a checkpoint and well before the end.
LONG = {"method": "full", "epochs": 20, "batch_tokens": 256, "lora_r": 4}
LONG_TRAIN = {"train": LONG, "recovery": {"train_every": 3}}
FIXED_INPUTS = ["base", "rounds/base", "rounds/fixed/data", "rounds/fixed/select"]
STAGES = {  # stage command, the tiny run's outputs it reads, params, what it writes
    "train@fixed": (["tasks.train", "--round", "fixed"], FIXED_INPUTS, LONG_TRAIN, "out/rounds/fixed/train"),
    "train@r2": (["tasks.train", "--round", "r2"], ["base", "rounds/base", "rounds/r1/train", "rounds/r2"],
                 {"train": {**LONG, "method": "lora"}, "recovery": {"train_every": 3}},
                 "out/rounds/r2/train"),  # LoRA, as the tiny run's rounds: a round keeps its start's kind
}


def inputs_of(tiny_run, tmp, stage):
    module, inputs, params, out = STAGES[stage]
    work = stage_dir(tiny_run, tmp, inputs, **params)
    shutil.rmtree(work / out, ignore_errors=True)  # copied with out/rounds/r2: the output to make again
    return work, module, work / out


@pytest.mark.slow  # three tiny training runs in subprocesses (~30 s each stage)
@pytest.mark.parametrize("stage", list(STAGES))
def test_killed_training_resumes_to_bit_identical_weights(tmp_path, tiny_run, stage):
    whole, module, whole_out = inputs_of(tiny_run, tmp_path / "whole", stage)
    finish(whole, *module)
    assert not any((whole / ".tokenclean" / "scratch").iterdir())  # a finished stage leaves no scratch behind

    cut, module, cut_out = inputs_of(tiny_run, tmp_path / "cut", stage)
    scratch = cut / ".tokenclean" / "scratch"
    kill_when(start(cut, *module), lambda: any(scratch.glob("*/*/latest")))
    assert not cut_out.exists()  # killed mid-training: no output at all
    assert "resuming from step" in finish(cut, *module)

    [name] = [p.name for p in (whole_out / "model").glob("*.safetensors")]  # full weights or an adapter
    a, b = (load_file(d / "model" / name) for d in (whole_out, cut_out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read_json(whole_out / "model/meta.json")["train"] == read_json(cut_out / "model/meta.json")["train"]
    assert (whole_out / "curve.csv").read_bytes() == (cut_out / "curve.csv").read_bytes()  # every step, once
    assert not any(scratch.iterdir())


@pytest.mark.slow
def test_training_state_of_other_inputs_is_not_resumed(tmp_path, tiny_run):
    """A checkpoint belongs to its params and inputs: other params start over in a folder of their own."""
    cut = stage_dir(tiny_run, tmp_path / "cut", FIXED_INPUTS, **LONG_TRAIN)
    scratch = cut / ".tokenclean" / "scratch" / "train@fixed"
    kill_when(start(cut, "tasks.train", "--round", "fixed"), lambda: any(scratch.glob("*/latest")))
    write_tiny_params(cut / "params.yaml", **{**LONG_TRAIN, "train": {**LONG_TRAIN["train"], "lr": 1e-3}})
    assert "resuming" not in finish(cut, "tasks.train", "--round", "fixed")


@pytest.mark.slow  # the score stage twice, one of them killed after its first shard
def test_killed_scoring_resumes_from_its_shards(tmp_path, tiny_run):
    inputs = ["base", "rounds/warmup/train", "rounds/fixed/data"]
    shards = {"score": {"batch_tokens": 128, "chunk": 64}, "recovery": {"score_shard_tokens": 256}}
    score = ("tasks.score", "--round", "fixed")
    whole = stage_dir(tiny_run, tmp_path / "whole", inputs, **shards)
    finish(whole, *score)

    cut = stage_dir(tiny_run, tmp_path / "cut", inputs, **shards)
    folder = cut / ".tokenclean" / "scratch" / "score@fixed"
    kill_when(start(cut, *score), lambda: len(list(folder.glob("*/*.safetensors"))) >= 2)
    left = cut / "out/rounds/fixed/score"
    assert not left.exists() or not list(left.glob("[!.]*")), "no artifact after a kill, at most hidden temp files"
    log = finish(cut, *score)
    assert "shards from an interrupted run" in log
    scores = "out/rounds/fixed/score/scores.parquet"
    assert file_hash(whole / scores) == file_hash(cut / scores)
    assert not folder.exists()
