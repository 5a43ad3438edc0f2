"""Scoring and masked-SFT speed: the project's code against the published recipe's way, in one run.

    python -m bench.speed --shape 1b,3b,8b    # on a GPU: the table of docs/performance.md
    python -m bench.speed --shape tiny        # seconds on a CPU (what CI runs)

For each shape, on the same random-weight model and the same generated samples, it measures
tokens per second (real tokens through each model pass; padding never counts), peak GPU
memory, and the share of the device's bf16 matmul rate, measured in the same run, that the
useful FLOPs reach (see :func:`bench.workload.forward_flops`):

  (a) score   the project's scorer: two passes (reference with its LoRA adapter, base without)
  (b) score   the recipe's way (bench/recipe.py), two passes of the plain model
  (c) train   optimizer steps of the project's trainer (LoRA r=64, 60% of response tokens kept)
  (d) train   the recipe's loop on the same data
  (e) train   with ``--full``: full fine-tuning of every weight with gradient checkpointing

The project runs once per ``--variants`` entry: kernels (``torch``, ``liger``), ``+pack`` for
packed batches (samples end to end, varlen attention on CUDA), ``+compile`` for every decoder layer
through ``torch.compile`` (regional: one graph that all layers share, dynamic shapes). A variant that
fails (say a kernel torch.compile cannot trace) is reported with its error, and the run goes on.

It also times global selection over ``--select-tokens`` response tokens and measures the bytes
each stored score takes in scores.parquet. Prints a Markdown table; ``--json`` keeps every figure.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars; tqdm reads this when imported

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from bench import recipe  # noqa: E402
from bench.workload import Samples, build_model, forward_flops, keep_share, sft_samples  # noqa: E402
from tokenclean.columns import IGNORE  # noqa: E402
from tokenclean.config import FinetuneCfg  # noqa: E402
from tokenclean.data.rows import load_rows  # noqa: E402
from tokenclean.io import (
    TableWriter,  # noqa: E402
    ragged,  # noqa: E402
)
from tokenclean.method.scores import SCORES_SCHEMA  # noqa: E402
from tokenclean.method.scoring import score_base_and_reference, score_dataset  # noqa: E402
from tokenclean.method.selection import select, split_keep  # noqa: E402
from tokenclean.model.checkpoint import prepare_finetune  # noqa: E402
from tokenclean.model.kernels import compile_layers  # noqa: E402
from tokenclean.model.training import train  # noqa: E402

KEEP = 0.6  # share of response tokens kept, for selection and for masked SFT
# project trainer's micro-batch: what fits 80 GB without checkpointing
TRAIN_TOKENS = {"tiny": 4096, "1b": 16384, "3b": 8192, "8b": 4096}


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def clock(device) -> float:
    """Seconds on a wall clock, once the device has finished what was queued."""
    sync(device)
    return time.perf_counter()


@contextmanager
def measured(device, into: dict):
    """Wall time (after the device finishes) and peak device memory of the block, into ``into``."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = clock(device)
    yield
    into["seconds"] = clock(device) - t0
    into["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


def matmul_rate(device, n: int, reps: int = 10) -> float:
    """FLOP/s of an ``n x n x n`` bf16 matrix product on random data (median of ``reps`` after warm-up)."""
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    times = []
    for i in range(reps + 3):
        t0 = clock(device)
        a @ b
        if i >= 3:
            times.append(clock(device) - t0)
    return 2 * n**3 / float(np.median(times))


def _rate(row: dict, tokens: int, flops: float, peak: float) -> dict:
    row.update(tokens=tokens, tok_per_s=tokens / row["seconds"], tflops=flops / row["seconds"] / 1e12,
               matmul_share=flops / row["seconds"] / peak)
    return row


def score_recipe(shape, samples: Samples, device, peak: float) -> tuple[dict, list]:
    model = build_model(shape, torch.float32, device)
    recipe.token_losses(model, samples.subset(range(recipe.BATCH)))  # warm-up
    row = {"work": "score", "method": "recipe"}
    with measured(device, row):
        base, ref = recipe.token_losses(model, samples), recipe.token_losses(model, samples)
    t0 = time.perf_counter()
    row["kept"] = recipe.select(base, ref, samples, KEEP)
    row["select_seconds"] = time.perf_counter() - t0
    row["select_tokens"] = samples.labelled()
    del model
    flops = 2 * forward_flops(shape, samples.lengths, samples.labelled())
    return _rate(row, 2 * int(samples.lengths.sum()), flops, peak), recipe.per_token(base, samples)


def variant(name: str) -> tuple[str, bool, bool]:
    """``liger+pack+compile`` -> (kernels, packed, compiled)."""
    kernels, *flags = name.split("+")
    if kernels not in ("torch", "liger") or set(flags) - {"pack", "compile"}:
        raise SystemExit(f"unknown variant {name!r}: torch or liger, optionally +pack and +compile")
    return kernels, "pack" in flags, "compile" in flags


def prepared_model(shape, device, cfg: FinetuneCfg, compiled: bool = False, cast: bool = False):
    """The benchmark's model with the fine-tuning ``cfg`` applied (LoRA adapters or every weight trainable).

    ``cast``: adapters in the compute dtype too, as the score stage loads a reference; training keeps fp32
    adapters on bf16 weights. ``compiled``: each decoder layer through ``torch.compile``.
    """
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = prepare_finetune(build_model(shape, dtype, device), cfg, "bench")
    model = model.to(dtype) if cast else model
    compile_layers(model, compiled)  # as compute.compile does in the score and train stages
    return model


def attempt(results: list, shape: str, work: str, name: str, fn) -> object:
    """``fn()``; a failure becomes a row with its error instead of ending the run."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - a variant that cannot run is a result, not a crash
        emit(results, {"work": work, "method": f"project[{name}]", "error": f"{type(e).__name__}: {e}"[:2000]},
             shape)
        gc.collect()
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
        return None


def score_project(shape, samples: Samples, device, peak: float, name: str, batch_tokens: int, chunk: int):
    kernels, packed, compiled = variant(name)
    # the reference as the score stage loads it: base + LoRA adapter, all in the compute dtype,
    # one model for both passes
    model = prepared_model(shape, device, FinetuneCfg(method="lora", lora_r=64, lora_alpha=16), compiled, cast=True)
    args = (samples.ids, samples.labels, 0, batch_tokens, chunk)
    row = {"work": "score", "method": f"project[{name}]"}
    # Warm-up: both passes once, untimed. Triton compiles a kernel variant the first time it meets
    # a new kind of shape; a long run pays that once, a short benchmark must not count it.
    t0 = clock(device)
    score_base_and_reference(model, *args, kernels=kernels, packed=packed)
    row["cold_seconds"] = clock(device) - t0
    # the two passes of tokenclean.method.scoring.score_base_and_reference, timed one by one
    with measured(device, row):
        t0 = clock(device)
        score_dataset(model, *args, kernels=kernels, packed=packed)
        t1 = clock(device)
        with model.disable_adapter():
            nll = score_dataset(model, *args, kernels=kernels, packed=packed)
        row.update(reference_pass_seconds=t1 - t0, base_pass_seconds=clock(device) - t1)
    del model
    flops = 2 * forward_flops(shape, samples.lengths, samples.labelled())
    return _rate(row, 2 * int(samples.lengths.sum()), flops, peak), nll


def agreement(nll: list, other: list, name: str) -> dict:
    """Largest and mean |NLL difference| per response token between two scorers' base passes."""
    d = np.abs(np.concatenate(nll) - np.concatenate(other))
    return {f"max_abs_nll_diff_vs_{name}": float(d.max()), f"mean_abs_nll_diff_vs_{name}": float(d.mean())}


def train_recipe(shape, samples: Samples, device, peak: float, steps: int) -> dict:
    model = recipe.lora_model(build_model(shape, torch.float32, device))
    recipe.train_steps(model, samples, 3)  # warm-up
    row = {"work": "train", "method": "recipe"}
    with measured(device, row):
        tokens = recipe.train_steps(model, samples, steps, first=3 * recipe.BATCH)
    rows = [(3 * recipe.BATCH + i) % len(samples.ids) for i in range(steps * recipe.BATCH)]
    seen = samples.subset(rows)
    del model
    return _rate(row, tokens, 2 * forward_flops(shape, seen.lengths, seen.labelled()), peak)


def train_project(shape, samples: Samples, device, peak: float, name: str, batch_tokens: int, steps: int,
                  full: bool = False) -> dict:
    """LoRA r=64 steps of the project's trainer; ``full``: every weight trained, activations checkpointed."""
    kernels, packed, compiled = variant(name)
    cfg = FinetuneCfg(method="full" if full else "lora", lora_r=64, lora_alpha=16, epochs=1, lr=1e-4,
                      batch_tokens=batch_tokens)
    model = prepared_model(shape, device, cfg, compiled)
    take = int(np.searchsorted(np.cumsum(samples.lengths), steps * batch_tokens * 0.95)) + 1
    part = samples.subset(range(min(take, len(samples.ids))))
    warm = samples.subset(range(0, len(samples.ids), 8))  # all kinds of batch shapes
    run = dict(pad_id=0, seed=0, kernels=kernels, packed=packed, checkpointing=full)
    train(model, warm.ids, warm.labels, cfg.model_copy(update={"epochs": 0.1}) if full else cfg, **run)  # warm-up
    row = {"work": "train", "method": f"project[{name}{',full,checkpointed' if full else ''}]"}
    with measured(device, row):
        stats = train(model, part.ids, part.labels, cfg, **run)
    row["steps"] = stats["steps"]
    del model
    # useful work: forward and the input-gradient pass (2x a forward; LoRA's weight gradients are
    # tiny), plus the weight-gradient pass for full fine-tuning (3x); the checkpointed recompute is overhead
    passes = 3 if full else 2
    return _rate(row, int(part.lengths.sum()), passes * forward_flops(shape, part.lengths, part.labelled()), peak)


def selection(n_tokens: int, shape: str) -> dict:
    """Global top-k over ``n_tokens`` ragged float32 scores, and bytes per stored score in scores.parquet."""
    rng = np.random.default_rng(0)
    lengths: list[int] = []
    while sum(lengths) < n_tokens:
        lengths += [int((y != IGNORE).sum()) for y in sft_samples(shape, 4096, seed=len(lengths)).labels]
    lengths = np.array(lengths[: int(np.searchsorted(np.cumsum(lengths), n_tokens)) + 1])
    scores = np.split(rng.standard_normal(int(lengths.sum()), dtype=np.float32), np.cumsum(lengths)[:-1])
    t0 = time.perf_counter()
    keep = split_keep(select(np.concatenate(scores), lengths, "global", KEEP), lengths)
    row = {"work": "select", "tokens": int(lengths.sum()), "kept": int(sum(k.sum() for k in keep)),
           "select_seconds": time.perf_counter() - t0}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scores.parquet"
        # stand-in losses: random floats, which compress no better than real ones
        lb, lr = (np.split(rng.exponential(2.0, int(lengths.sum())).astype(np.float32), np.cumsum(lengths)[:-1])
                  for _ in range(2))
        with TableWriter(path, SCORES_SCHEMA, use_dictionary=False) as out:  # as the score stage writes it
            out.write({"sample_id": [str(i) for i in range(len(lengths))], "loss_base": ragged(lb, pa.float32()),
                       "loss_ref": ragged(lr, pa.float32()),
                       "scores": ragged([b - r for b, r in zip(lb, lr)], pa.float32())})
        meta = pq.ParquetFile(path).metadata
        idx = next(i for i in range(meta.num_columns) if meta.schema.column(i).path.startswith("scores."))
        stored = sum(meta.row_group(g).column(idx).total_compressed_size for g in range(meta.num_row_groups))
        row.update(bytes_per_score=stored / row["tokens"], file_bytes_per_token=path.stat().st_size / row["tokens"])
        t0 = time.perf_counter()
        load_rows(path, ("sample_id", "scores"))
        row["read_seconds"] = time.perf_counter() - t0
    return row


def environment(device) -> dict:
    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None
    env = {"date": datetime.date.today().isoformat(),
           "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "transformers": ver("transformers"), "peft": ver("peft"),
           "liger_kernel": ver("liger-kernel")}
    return env


def table(results: list[dict]) -> str:
    lines = ["| shape | work | method | tokens/s | peak GiB | TFLOP/s | share of bf16 matmul | vs recipe |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        if r["work"] == "select" or "error" in r:
            continue
        base = next(x for x in results
                    if x.get("shape") == r["shape"] and x["work"] == r["work"] and x["method"] == "recipe")
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        lines.append(f"| {r['shape']} | {r['work']} | {r['method']} | {r['tok_per_s']:,.0f} | {peak} "
                     f"| {r['tflops']:.1f} | {r['matmul_share']:.1%} | {r['tok_per_s'] / base['tok_per_s']:.2f}x |")
    return "\n".join(lines)


def parse(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="1b", help="comma-separated: tiny, 1b, 3b, 8b")
    p.add_argument("--score-samples", type=int, help="samples scored (default: 1000 on GPU, 48 on CPU)")
    p.add_argument("--train-steps", type=int, help="timed optimizer steps of each trainer (default 30 / 3)")
    p.add_argument("--score-tokens", type=int, default=32768, help="project scorer: tokens per batch")
    p.add_argument("--train-tokens", type=int, help="project trainer: tokens per micro-batch (default per shape)")
    p.add_argument("--chunk", type=int, default=4096, help="project: positions per LM-head chunk")
    p.add_argument("--variants", "--kernels", dest="variants",
                   help="comma-separated project variants: torch, liger, each optionally +pack "
                        "(default: torch and torch+pack, and liger and liger+pack on CUDA when liger is installed)")
    p.add_argument("--full", default="",
                   help="comma-separated shapes at which to also time full fine-tuning with gradient "
                        "checkpointing (the last variant)")
    p.add_argument("--select-tokens", type=int,
                   help="tokens for the selection timing (default 10M on GPU, 200k on CPU)")
    p.add_argument("--matmul", type=int, help="matrix size for the bf16 rate (default 8192 on GPU, 512 on CPU)")
    p.add_argument("--json", type=Path, help="write every figure here")
    return p.parse_args(argv)


def emit(results: list, row: dict, shape: str | None = None) -> None:
    row["shape"] = shape
    results.append(row)
    print(json.dumps(row), flush=True)


def report(env: dict, results: list[dict]) -> None:
    print(f"\n{env['device']}, torch {env['torch']}, transformers {env['transformers']}, peft {env['peft']}, "
          f"liger-kernel {env['liger_kernel']}, {env['date']}; bf16 matmul {env['bf16_matmul_tflops']:.0f} TFLOP/s\n")
    print(table(results))
    for r in results:
        if r["work"] == "score" and r["method"] == "recipe":
            print(f"\n{r['shape']}: the recipe's Python sort of its {r['select_tokens']:,} response tokens took "
                  f"{r['select_seconds']:.2f} s", end="")
    sel = results[-1]
    print(f"\nglobal selection of {sel['tokens']:,} tokens: {sel['select_seconds']:.3f} s (reading them: "
          f"{sel['read_seconds']:.2f} s); {sel['bytes_per_score']:.2f} bytes per stored score "
          f"({sel['file_bytes_per_token']:.2f} per token for the whole scores.parquet, both losses included)")


def main(argv=None) -> list[dict]:
    a = parse(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    env = {**environment(device),
           "command": " ".join(["python -m bench.speed", *(argv if argv is not None else sys.argv[1:])])}
    variants = (a.variants or ("torch,torch+pack,liger,liger+pack" if gpu and env["liger_kernel"]
                               else "torch,torch+pack")).split(",")
    peak = matmul_rate(device, a.matmul or (8192 if gpu else 512))
    env["bf16_matmul_tflops"] = peak / 1e12
    print(json.dumps(env), flush=True)
    steps = a.train_steps or (30 if gpu else 3)
    results: list[dict] = []
    for shape in a.shape.split(","):
        samples = sft_samples(shape, a.score_samples or (1000 if gpu else 48))
        row, recipe_nll = score_recipe(shape, samples, device, peak)
        emit(results, row, shape)
        first = None
        for k in variants:
            done = attempt(results, shape, "score", k,
                           lambda: score_project(shape, samples, device, peak, k, a.score_tokens, a.chunk))  # noqa: B023
            if done is None:
                continue
            row, nll = done
            row.update(agreement(nll, recipe_nll, "recipe"))
            row.update(agreement(nll, first[1], first[0]) if first else {})
            first = first or (k, nll)
            emit(results, row, shape)
        del recipe_nll, first
        masked = keep_share(sft_samples(shape, 4000 if gpu else 64, seed=2), KEEP)
        emit(results, train_recipe(shape, masked, device, peak, steps), shape)
        budget = a.train_tokens or TRAIN_TOKENS[shape]
        for k in variants:
            row = attempt(results, shape, "train", k,
                          lambda: train_project(shape, masked, device, peak, k, budget, steps))  # noqa: B023
            if row is not None:
                emit(results, row, shape)
        if shape in a.full.split(","):
            emit(results, train_project(shape, masked, device, peak, variants[-1], budget, steps, full=True), shape)
    emit(results, selection(a.select_tokens or (10_000_000 if gpu else 200_000), "1b" if gpu else "tiny"))
    report(env, results)
    if a.json:
        a.json.write_text(json.dumps({"environment": env, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
