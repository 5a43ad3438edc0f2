"""Where the GPU time of scoring and masked SFT goes: kernel time by kind, from torch.profiler.

    python -m bench.profile --shape 1b --variants liger+pack,torch+pack --json profile.json

For each variant it profiles the project's scorer (both passes, as ``bench.speed`` times them) and
trainer (LoRA r=64) on the benchmark's samples, then sums the CUDA kernels' own time by kind
(:data:`KINDS`, matched on kernel names). Beside the wall time it reports:

- ``busy``: the share of wall time some kernel ran (the rest is the GPU waiting on the host);
- ``matmul_efficiency``: the useful matmul FLOPs (:func:`bench.workload.forward_flops`) over the time
  spent in matmul kernels, as a share of the bf16 matmul rate measured in the same run. The
  benchmark's headline share is about (matmul time / wall) x this efficiency, so the two say
  whether a miss comes from slow matmuls or from time outside them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from bench.speed import KEEP, TRAIN_TOKENS, clock, environment, matmul_rate, prepared_model, variant  # noqa: E402
from bench.workload import forward_flops, keep_share, sft_samples  # noqa: E402
from tokenclean.config import FinetuneCfg  # noqa: E402
from tokenclean.method.scoring import score_dataset  # noqa: E402
from tokenclean.model.training import train  # noqa: E402

# (kind, kernel-name pattern), first match wins. cuBLAS/CUTLASS kernel names vary by GPU and release.
KINDS = [
    ("memcpy/memset", r"^Memcpy|^Memset|memcpy|memset"),
    ("attention", r"flash|fmha|attn|attention"),
    ("matmul", r"gemm|cutlass|nvjet|xmma|cublas|Kernel2|sm\d\d_|wgmma|splitKreduce"),
    ("cross-entropy", r"cross_entropy|softmax|logsumexp|nll_loss"),
    ("norm/activation/rope (fused)", r"rms_norm|swiglu|rope|triton_"),
    ("element-wise (PyTorch)", r"elementwise|vectorized|unrolled|reduce|Reduce|index|cat|copy|fill|where|mul|add"),
]


def kind(name: str) -> str:
    return next((k for k, pattern in KINDS if re.search(pattern, name)), "other")


def kernel_times(prof) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """Seconds of CUDA kernel self time per kind, and the 12 longest kernels."""
    by_kind: dict[str, float] = defaultdict(float)
    kernels = []
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0)
        if t <= 0 or e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        by_kind[kind(e.key)] += t / 1e6
        kernels.append((e.key[:120], t / 1e6))
    return dict(by_kind), sorted(kernels, key=lambda x: -x[1])[:12]


def profiled(fn, device) -> tuple[float, dict, list]:
    activities = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * (device.type == "cuda")
    with profile(activities=activities) as prof:
        t0 = clock(device)
        fn()
        wall = clock(device) - t0
    by_kind, top = kernel_times(prof)
    return wall, by_kind, top


def row(work: str, name: str, wall: float, by_kind: dict, top: list, flops: float, peak: float) -> dict:
    mm = by_kind.get("matmul", 0.0)
    busy = sum(by_kind.values())
    return {"work": work, "variant": name, "wall_seconds": wall, "busy": busy / wall,
            "share_of_wall": {k: v / wall for k, v in sorted(by_kind.items(), key=lambda x: -x[1])},
            "matmul_share": flops / wall / peak, "matmul_efficiency": flops / mm / peak if mm else None,
            "top_kernels": [{"name": n, "share_of_wall": t / wall} for n, t in top]}


def profile_variant(shape: str, name: str, device, peak: float, n_score: int, steps: int) -> list[dict]:
    kernels, packed, compiled = variant(name)
    samples = sft_samples(shape, n_score)
    model = prepared_model(shape, device, FinetuneCfg(method="lora", lora_r=64, lora_alpha=16), compiled, cast=True)
    score = lambda: score_dataset(model, samples.ids, samples.labels, 0, 32768, 4096, kernels=kernels,  # noqa: E731
                                  packed=packed)
    score()  # warm-up: Triton and torch.compile build their kernels outside the profile
    flops = forward_flops(shape, samples.lengths, samples.labelled())
    rows = [row("score", name, *profiled(score, device), flops, peak)]
    del model
    budget = TRAIN_TOKENS[shape]
    cfg = FinetuneCfg(method="lora", lora_r=64, lora_alpha=16, epochs=1, lr=1e-4, batch_tokens=budget)
    masked = keep_share(sft_samples(shape, 4000 if device.type == "cuda" else 64, seed=2), KEEP)  # as bench.speed
    take = int(np.searchsorted(np.cumsum(masked.lengths), steps * budget * 0.95)) + 1  # ~steps full micro-batches
    part, warm = masked.subset(range(min(take, len(masked.ids)))), masked.subset(range(0, len(masked.ids), 8))
    model = prepared_model(shape, device, cfg, compiled)
    run = dict(pad_id=0, seed=0, kernels=kernels, packed=packed)
    train(model, warm.ids, warm.labels, cfg, **run)
    flops = 2 * forward_flops(shape, part.lengths, part.labelled())
    rows.append(row("train", name, *profiled(lambda: train(model, part.ids, part.labels, cfg, **run), device),
                    flops, peak))
    return rows


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="1b")
    p.add_argument("--variants", default="liger+pack,torch+pack")
    p.add_argument("--score-samples", type=int, default=300)
    p.add_argument("--train-steps", type=int, default=8)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peak = matmul_rate(device, 8192 if device.type == "cuda" else 512)
    rows = []
    for name in a.variants.split(","):
        for r in profile_variant(a.shape, name, device, peak, a.score_samples, a.train_steps):
            print(json.dumps(r), flush=True)
            rows.append(r)
    if a.json:
        a.json.write_text(json.dumps({"environment": {**environment(device), "bf16_matmul_tflops": peak / 1e12,
                                                      "shape": a.shape}, "results": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
