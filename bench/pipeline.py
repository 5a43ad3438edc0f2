"""The whole pipeline on a model and your data, every stage timed: ``tokenclean init``, then each DVC stage.

    python -m bench.pipeline --random 1b --data data/gsm8k.jsonl --columns prompt=question,completion=answer \\
        --answer answer --marker '####' --json bench/results/gpu-pipeline.json

Run in the project's root (a scratch copy: it rewrites params.yaml and out/). ``--random SHAPE`` first builds a
model of a benchmark shape (``bench/workload.py``: ``1b`` is Llama 3.2 1B) with random weights and a byte-level
BPE tokenizer trained on the data, saved under models/; speed does not depend on the weights. The run is the
fixed-model pipeline (rounds ``warmup`` and ``fixed``) unless ``--all-rounds``. Each stage runs as
``dvc repro -s <stage>`` in pipeline order, timed; scoring and training tokens/s count every token of the round's
data (scoring: two passes). Writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tokenclean.layout import BASE_ROUND, MODELS, round_paths

FIXED_ROUNDS = ("warmup", "fixed")


def random_model(shape: str, data: Path, columns: dict[str, str], folder: Path) -> Path:
    """A model of ``shape`` with random bf16 weights and a tokenizer trained on the data's text."""
    import torch
    from transformers import LlamaForCausalLM

    from bench.workload import llama_config
    from tokenclean.model.modeling import train_tokenizer

    texts = []
    with open(data) as f:
        for line in f:
            rec = json.loads(line)
            texts.append(" ".join(str(rec.get(columns.get(k, k), "")) for k in ("prompt", "completion")))
    tok = train_tokenizer(texts, 8192)
    config = llama_config(shape)
    config.pad_token_id, config.eos_token_id, config.bos_token_id = tok.pad_token_id, tok.eos_token_id, None
    config.vocab_size = max(config.vocab_size, len(tok))  # the shape's LM head; never smaller than the tokenizer
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def run(cmd: list[str], log) -> float:
    """Run ``cmd`` with its output into ``log``; its wall time, or exit with its status."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        log.flush()
        sys.exit(f"`{' '.join(cmd)}` failed with exit {proc.returncode}")
    return time.perf_counter() - t0


def set_params(all_rounds: bool, evaluate: dict) -> list[str]:
    """Keep the fixed-model rounds only (unless ``all_rounds``) and set evaluation's limits; the rounds."""
    raw = yaml.safe_load(Path("params.yaml").read_text())
    if not all_rounds:
        raw["rounds"] = {k: v for k, v in raw["rounds"].items() if k in FIXED_ROUNDS}
    raw["evaluate"].update(evaluate)
    Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return list(raw["rounds"])


def stages(rounds: list[str]) -> list[str]:
    per_round = [f"{s}@{r}" for r in rounds for s in ("data", "score", "select", "train", "evaluate")]
    return ["generate", "base", "check", "prepare", "split", *per_round, "summary", "report", "export"]


def throughput(name: str, seconds: dict[str, float]) -> dict:
    """Tokens of the round's data, and tokens/s of its scoring (two passes) and training."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    paths = round_paths(name)
    ids = pq.read_table(paths.data, columns=["input_ids"])["input_ids"]
    tokens = int(pc.sum(pc.list_value_length(ids)).as_py())
    out = {"round": name, "samples": len(ids), "tokens": tokens}
    if f"score@{name}" in seconds and yaml.safe_load(Path("params.yaml").read_text())["rounds"][name]["reference"] \
            != BASE_ROUND:
        out["score_tok_per_s"] = 2 * tokens / seconds[f"score@{name}"]
    if f"train@{name}" in seconds:
        meta = json.loads((paths.model / "meta.json").read_text())
        out["train_tok_per_s"] = tokens * meta["config"]["epochs"] / seconds[f"train@{name}"]
    return out


def environment() -> dict:
    import torch
    import transformers

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
    return {"device": device, "torch": torch.__version__, "transformers": transformers.__version__}


def report(args, model: str, seconds: dict, rounds: list[str]) -> dict:
    """Every figure so far, written to ``--json`` after each stage: a run cut short keeps what it measured."""
    done = [r for r in rounds if f"train@{r}" in seconds]
    result = {**environment(), "model": model, "data": str(args.data), "seconds": seconds,
              "rounds": [throughput(r, seconds) for r in done], "total_seconds": sum(seconds.values())}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a local model folder or hub id (or --random)")
    ap.add_argument("--random", help="build a random-weight model of this bench/workload.py shape (1b, 3b)")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--columns", default="")
    ap.add_argument("--answer")
    ap.add_argument("--marker")
    ap.add_argument("--all-rounds", action="store_true", help="also the self-evolving rounds")
    ap.add_argument("--limit", type=int, default=64, help="evaluate.limit: held-out prompts generated for")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--log", type=Path, default=Path("pipeline.log"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    columns = dict(p.split("=", 1) for p in args.columns.split(",") if p)
    py, seconds = sys.executable, {}
    with open(args.log, "w") as log:
        if not Path(".git").exists():  # a copy without git (a GPU machine): DVC runs without an SCM
            run([py, "-m", "dvc", "config", "--local", "core.no_scm", "true"], log)
        model = args.model
        if args.random:
            t0 = time.perf_counter()
            model = str(random_model(args.random, args.data, columns, MODELS / f"llama-{args.random}-random"))
            seconds["build the random model"] = time.perf_counter() - t0
        init = [py, "-m", "tokenclean.cli", "init", "--model", model, "--data", str(args.data)]
        init += [a for flag, v in (("--columns", args.columns), ("--answer", args.answer), ("--marker", args.marker))
                 if v for a in (flag, v)]
        seconds["tokenclean init"] = run(init, log)
        rounds = set_params(args.all_rounds, {"limit": args.limit, "max_new_tokens": args.max_new_tokens})
        for stage in stages(rounds):
            seconds[stage] = run([py, "-m", "dvc", "repro", "-s", stage], log)
            print(f"{stage}: {seconds[stage]:.1f} s", flush=True)
            result = report(args, model, seconds, rounds)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
