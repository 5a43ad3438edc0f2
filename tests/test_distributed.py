"""Data-parallel stages on 2 CPU processes (gloo) give what one process gives, gathered in sample order."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tasks import score as score_stage
from tasks import train as train_stage
from tests.shell import ROOT
from tests.tiny import write_tiny_params
from tokenclean import columns as C
from tokenclean.data.rows import load_rows
from tokenclean.model import distributed
from tokenclean.params_file import parse_params


@pytest.fixture
def run_dir(tiny_run, tmp_path):
    """A copy of the tiny run's inputs, so the stages below write their own outputs."""
    for part in ("base", "prepare", "rounds/base", "rounds/warmup/train", "rounds/fixed/data", "rounds/fixed/select"):
        shutil.copytree(tiny_run / "out" / part, tmp_path / "out" / part)
    return tmp_path


def stage_env() -> dict:
    """The environment of a stage subprocess: tasks/ is not installed, so the project root goes first on the path."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def stage_cli(stage: str, cwd, params_path) -> None:
    """``python -m tasks.<stage>``, which re-runs itself under accelerate launch on 2 processes."""
    env = stage_env()
    done = subprocess.run([sys.executable, "-m", f"tasks.{stage}", "--params", str(params_path), "--round", "fixed"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"running tasks.{stage} on 2 processes" in done.stderr


def adapter_weights(path) -> dict:
    return load_file(path / "adapter_model.safetensors")


def in_process(stage, cwd, params_path):
    """The same stage on one process and one thread, seeded as its command line seeds it."""
    params = parse_params(yaml.safe_load(params_path.read_text()))
    threads, old = torch.get_num_threads(), os.getcwd()
    torch.set_num_threads(1)
    os.chdir(cwd)
    try:
        torch.manual_seed(params.seed)
        stage.run(params.model_copy(update={"compute": params.compute.model_copy(update={"processes": 1})}), "fixed")
    finally:
        os.chdir(old)
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_score_stage_on_two_processes_gives_the_one_process_scores(run_dir):
    params_path = write_tiny_params(run_dir / "params.yaml", compute={"processes": 2})
    stage_cli("score", run_dir, params_path)
    scores, columns = (run_dir / "out/rounds/fixed/score/scores.parquet",
                       (C.SAMPLE_ID, C.LOSS_BASE, C.LOSS_REF, C.SCORES))
    two = load_rows(scores, columns)
    in_process(score_stage, run_dir, params_path)
    one = load_rows(scores, columns)
    assert (two[C.SAMPLE_ID] == one[C.SAMPLE_ID]
            == load_rows(run_dir / "out/rounds/fixed/data/pool.parquet")[C.SAMPLE_ID])
    for column in (C.LOSS_BASE, C.LOSS_REF, C.SCORES):
        for a, b in zip(two[column], one[column]):
            np.testing.assert_array_equal(a, b)  # each sample scored in the same batch as on one process


@pytest.mark.slow
@pytest.mark.parametrize("compute, train, atol", [
    ({}, {"batch_tokens": 256, "grad_accum": 2}, 1e-7),
    # 3 micro-batches a step: one process accumulates two (no all-reduce on the first), the other one
    ({"packing": True, "gradient_checkpointing": True}, {"batch_tokens": 192, "grad_accum": 3}, 1e-6),
], ids=["plain", "packed-checkpointed-uneven"])
def test_train_stage_on_two_processes_ends_with_the_one_process_weights(run_dir, compute, train, atol):
    params_path = write_tiny_params(run_dir / "params.yaml", compute={"processes": 2, **compute},
                                    train={"method": "lora", "epochs": 2, "lora_r": 4, **train})
    stage_cli("train", run_dir, params_path)
    two = adapter_weights(run_dir / "out" / "rounds" / "fixed" / "train" / "model")
    in_process(train_stage, run_dir, params_path)
    one = adapter_weights(run_dir / "out" / "rounds" / "fixed" / "train" / "model")
    assert two.keys() == one.keys() and two
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=atol, rtol=10 * atol)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fsdp_full_finetuning_ends_with_the_plain_one_process_weights(run_dir):
    """FSDP2 through accelerate on 2 GPUs where there are 2 (else its code path on one): the same weights."""
    n = min(2, torch.cuda.device_count())
    params_path = write_tiny_params(run_dir / "params.yaml", compute={"processes": n, "fsdp": True},
                                    model={"dtype": "float32"},
                                    train={"method": "full", "epochs": 2, "batch_tokens": 256, "grad_accum": 2})
    env = stage_env()
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *distributed.FSDP, "--num_processes", str(n),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
           str(distributed.free_port()), "-m", "tasks.train", "--params", str(params_path), "--round", "fixed"]
    done = subprocess.run(cmd, cwd=run_dir, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    model = run_dir / "out" / "rounds" / "fixed" / "train" / "model" / "model.safetensors"
    sharded = load_file(model)
    in_process(train_stage, run_dir, params_path)
    one = load_file(model)
    assert sharded.keys() == one.keys() and one
    for name in one:
        torch.testing.assert_close(sharded[name], one[name], atol=1e-5, rtol=1e-4)


def test_fsdp_is_for_full_finetuning(tmp_path):
    from tokenclean.model.finetune import finetune

    params = parse_params(yaml.safe_load(write_tiny_params(tmp_path / "p.yaml", compute={"fsdp": True}).read_text()))
    with pytest.raises(ValueError, match="compute.fsdp shards full fine-tuning"):
        finetune(params, params.train, [], [], tmp_path, tmp_path / "out", {}, "train@fixed")


def test_several_processes_need_a_stage_command():
    with pytest.raises(ValueError, match="needs a stage command"):
        distributed.launch(2)
    distributed.launch(1)  # one process: nothing to do


def test_gather_puts_results_in_order_and_misses_nothing():
    assert distributed.gather({1: "b", 0: "a"}, 2) == ["a", "b"]
    with pytest.raises(RuntimeError, match="computed by no process"):
        distributed.gather({0: "a"}, 2)
    assert distributed.share(list(range(5))) == list(range(5)) and distributed.world_size() == 1
