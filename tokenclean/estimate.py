"""A run's cost before it starts: tokens from the data, FLOPs from the model's size, time from rates.

Back of the envelope, said as such. A forward pass costs 2 FLOPs per parameter per token; training
6 (forward, and a backward pass twice as costly) for full fine-tuning and 4 for LoRA (no weight
gradients for the frozen weights). Scoring makes two forward passes (base and reference); every
round trains ``epochs`` passes over its data and evaluates the held-out split once. The CPU rate
is this machine's float32 matmul rate, measured in a second, times the share a model pass reaches
(assumed: half for scoring, a third for training); the GPU rates are the useful TFLOP/s the speed
benchmark measured at the 1B shape on one H100 (docs/performance.md).
"""

from __future__ import annotations

import time

import numpy as np

from tokenclean.config import Params
from tokenclean.layout import BASE_ROUND, SPLIT, prepared

GPU = {"name": "one H100 (the 1B benchmark, kernels: torch)", "score": 309.9e12, "train": 153.9e12}
CPU_SHARE = {"score": 0.5, "train": 1 / 3}


def cpu_matmul_rate(seconds: float = 1.0) -> float:
    """float32 FLOP/s of a 1024x1024 matrix product on this machine, over about ``seconds``."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - t0)


def round_tokens(params: Params, split_tokens: dict[str, int]) -> dict[str, int]:
    """Tokens of each round's data: a prepared split, or a chunk of the pool (rounds over other files: 0)."""
    out = {}
    for name, spec in params.rounds.items():
        if spec.data in {str(prepared(s)) for s in split_tokens}:
            out[name] = next(n for s, n in split_tokens.items() if spec.data == str(prepared(s)))
        elif spec.data.startswith(str(SPLIT)):
            out[name] = split_tokens.get("pool", 0) // params.split.chunks
        else:
            out[name] = 0
    return out


def flops(params: Params, n_params: int, split_tokens: dict[str, int]) -> dict[str, float]:
    """FLOPs of scoring and of training (with evaluation) over every round."""
    score = train = 0.0
    for name, tokens in round_tokens(params, split_tokens).items():
        cfg = params.round_train(name)
        if params.rounds[name].reference != BASE_ROUND:
            score += 2 * 2 * n_params * tokens
        train += (6 if cfg.method == "full" else 4) * n_params * tokens * cfg.epochs
        train += 2 * n_params * split_tokens.get("eval", 0)
    return {"score": score, "train": train}


def estimate(params: Params, n_params: int, split_tokens: dict[str, int], cpu_rate: float | None = None) -> dict:
    """Tokens, FLOPs and expected hours on this CPU and on a GPU."""
    work = flops(params, n_params, split_tokens)
    cpu_rate = cpu_rate or cpu_matmul_rate()
    cpu = sum(f / (cpu_rate * CPU_SHARE[k]) for k, f in work.items())
    gpu = sum(f / GPU[k] for k, f in work.items())
    return {"tokens": split_tokens, "model_parameters": n_params, "flops": work,
            "cpu_matmul_flops": cpu_rate, "hours_this_cpu": cpu / 3600, "hours_gpu": gpu / 3600, "gpu": GPU["name"]}


def model_parameters(name: str, revision: str | None = None) -> int:
    """Parameters of a model from its config alone (built on the meta device: no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(name, revision=revision)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return int(sum(p.numel() for p in model.parameters()))


def mean_tokens(tok, samples: list[dict], max_len: int) -> float:
    """Mean rendered length of ``samples``, truncated at ``max_len``."""
    from tokenclean.data.render import render

    return float(np.mean([len(render(tok, s["messages"], max_len)[0]) for s in samples])) if samples else 0.0
