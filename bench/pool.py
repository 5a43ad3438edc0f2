"""A paper-size pool through the real score and select stages: wall time and peak host memory of each.

    python -m bench.pool --shape 1b --samples 50000 --json bench/results/pool-h200.json   # ~23M tokens, one GPU
    python -m bench.pool --shape tiny --samples 300                                        # seconds on a CPU (CI)

In a scratch folder it builds what the stages read: a random-weight model of a benchmark shape
(:mod:`bench.workload`) as the base (``out/base``, with a small trained tokenizer: speed does not
depend on the vocabulary's contents), a LoRA reference (r=64, non-zero weights) as round
``warmup``'s checkpoint, and generated SFT samples as round ``fixed``'s data. Then it runs
``python -m tasks.score --round fixed`` and ``python -m tasks.select --round fixed`` as DVC runs
them, each timed, with the peak resident memory of its process: the stages' streaming (windows,
shards, Parquet batches) is what keeps host memory flat as the pool grows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from bench.workload import build_model, sft_samples
from tokenclean import columns as C
from tokenclean.config import FinetuneCfg
from tokenclean.data.prepare import SCHEMA
from tokenclean.io import TableWriter, read_json
from tokenclean.layout import BASE, prepared, round_paths

ROOT = Path(__file__).resolve().parents[1]
# the fixed-model rounds; only round fixed runs here, its reference being warmup's checkpoint
ROUNDS = {"warmup": {"data": str(prepared("warmup")), "reference": "base", "start": "base"},
          "fixed": {"data": str(prepared("pool")), "reference": "warmup", "start": "base"}}


def write_pool(shape: str, n: int, path: Path) -> int:
    """``n`` generated samples in the prepare stage's schema, written a batch at a time; their token count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens = 0
    with TableWriter(path, SCHEMA) as out:
        for start in range(0, n, 4096):
            s = sft_samples(shape, min(4096, n - start), seed=start)
            tokens += int(s.lengths.sum())
            out.write({C.SAMPLE_ID: [f"s{start + i}" for i in range(len(s.ids))],
                       C.INPUT_IDS: [x.astype(np.int32) for x in s.ids],
                       C.LABELS: [y.astype(np.int32) for y in s.labels],
                       C.KINDS: [np.full(len(x), -1, np.int8) for x in s.ids],
                       C.ANSWER: [None] * len(s.ids), C.PROMPT: ["[]"] * len(s.ids),
                       C.TRUNCATED: [False] * len(s.ids)})
    return tokens


def write_models(shape: str, device: str) -> None:
    """The base (random weights, bf16 on GPU) and round warmup's LoRA reference, where the stages look."""
    import torch
    from peft import LoraConfig, get_peft_model

    from tokenclean.model.checkpoint import save_checkpoint
    from tokenclean.model.modeling import train_tokenizer

    tok = train_tokenizer([f"sample {i} of the pool" for i in range(200)], 400)
    model = build_model(shape, torch.bfloat16 if device == "cuda" else torch.float32, device)
    model.config.pad_token_id, model.config.eos_token_id = tok.pad_token_id, tok.eos_token_id
    model.save_pretrained(BASE, safe_serialization=True)
    tok.save_pretrained(BASE)
    cfg = FinetuneCfg(lora_r=64, lora_alpha=16)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules="all-linear",
                      init_lora_weights=False)  # non-zero: the reference differs from the base
    save_checkpoint(get_peft_model(model, lora), tok, round_paths("warmup").model, {"stage": "bench.pool"})


def write_params(kernels: str, batch_tokens: int) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["rounds"] = ROUNDS
    raw["compute"].update(kernels=kernels, packing=True)
    raw["score"]["batch_tokens"] = batch_tokens
    Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return Path("params.yaml")


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far in bytes (VmHWM; 0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def stage(name: str, log) -> dict:
    """``python -m tasks.<name> --round fixed`` in this folder: wall seconds and peak resident GiB.

    The peak is read from /proc while the stage runs, not from ``wait4``'s ``ru_maxrss``: a child
    forked from this process inherits its high-water mark (this process holds the model it built).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", f"tasks.{name}", "--round", "fixed"], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, peak_rss(proc.pid))
        time.sleep(0.1)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        log.flush()
        sys.exit(f"tasks.{name} failed: see {log.name}")
    return {"seconds": seconds, "peak_host_gib": peak / 2**30}


def parse(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.pool", description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="1b", help="a bench.workload shape: tiny, 1b, 3b, 8b")
    p.add_argument("--samples", type=int, default=50_000, help="pool size (the paper's pool: ~50k samples)")
    p.add_argument("--kernels", help="compute.kernels (default: liger on CUDA when installed, else torch)")
    p.add_argument("--batch-tokens", type=int, default=32768, help="score.batch_tokens (packed rows)")
    p.add_argument("--dir", type=Path, help="scratch folder (default: a temporary one)")
    p.add_argument("--json", type=Path, help="write the figures here")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    a = parse(argv)
    import importlib.util

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    kernels = a.kernels or ("liger" if device == "cuda" and importlib.util.find_spec("liger_kernel") else "torch")
    with tempfile.TemporaryDirectory() as tmp:
        work = a.dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        old = os.getcwd()
        os.chdir(work)
        try:
            t0 = time.perf_counter()
            tokens = write_pool(a.shape, a.samples, round_paths("fixed").data)
            write_models(a.shape, device)
            write_params(kernels, a.batch_tokens)
            result = {"shape": a.shape, "samples": a.samples, "tokens": tokens, "kernels": kernels, "packing": True,
                      "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                      "setup_seconds": time.perf_counter() - t0}
            with open("stages.log", "w") as log:
                for name in ("score", "select"):
                    result[name] = stage(name, log)
                    print(json.dumps({name: result[name]}), flush=True)
            result["score"]["tok_per_s"] = 2 * tokens / result["score"]["seconds"]  # two passes
            result["select"]["kept_share"] = read_json(round_paths("fixed").select / "summary.json")["kept_share"]
            result["files_bytes"] = {str(p): p.stat().st_size for p in (round_paths("fixed").scores,
                                                                        round_paths("fixed").keep)}
        finally:
            os.chdir(old)
    print(json.dumps(result, indent=1))
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
