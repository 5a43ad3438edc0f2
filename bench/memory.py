"""Peak memory and time of the streaming stages on a generated pool, each stage its own process.

    python -m bench.memory --samples 2000000 --tokens 100      # the 200M-token pool of docs/performance.md
    python -m bench.memory --samples 20000 --reference <a checkpoint folder>      # scoring with models

It writes a pool of ``--samples`` prompt/completion records of about ``--tokens`` tokens each to
``data/pool.jsonl`` of a scratch project, then runs ``prepare``, ``data@fixed``, ``score@fixed``,
``select@fixed`` and ``tokenclean export`` there as the pipeline does (``python -m tasks.<stage>``),
and records each one's wall time and peak resident memory (the child's ``ru_maxrss``).

The round's reference is the base unless ``--reference`` names a checkpoint: then scoring runs the
models (at 2M parameters on two CPU cores, ~2 minutes a million tokens); without one, every score is
0 and ``score`` streams the data without a model, which keeps a 200M-token run to CPU minutes. The
memory of the model passes does not grow with the pool: they hold one window (``score.window_tokens``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tokenclean.layout import BASE, PREPARE, prepared, round_paths

ROOT = Path(__file__).resolve().parents[1]


def words_per_token(tok, rng: random.Random) -> float:
    """How many of :func:`_word`'s words one token of this tokenizer holds, measured on 2,000 words."""
    text = " ".join(_word(rng) for _ in range(2000))
    return 2000 / len(tok(text)["input_ids"])


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 7)))


def write_pool(path: Path, samples: int, tokens: int, tok, seed: int = 0) -> None:
    """``samples`` records, prompt a quarter and completion three quarters of about ``tokens`` tokens."""
    rng = random.Random(seed)
    words = max(4, int(tokens * words_per_token(tok, rng)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i in range(samples):
            text = [_word(rng) for _ in range(words)]
            cut = words // 4
            f.write(json.dumps({"id": f"s{i}", "prompt": " ".join(text[:cut]),
                                "completion": " ".join(text[cut:])}) + "\n")


def project(folder: Path, base: Path, reference: Path | None, max_len: int, window: int | None) -> None:
    """A scratch project: the base (and reference) linked in, params for one fixed-model round."""
    warmup = folder / round_paths("warmup").train
    warmup.parent.mkdir(parents=True, exist_ok=True)
    (folder / BASE).symlink_to(base.resolve())
    if reference is not None:
        warmup.symlink_to(reference.resolve())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source="data/pool.jsonl", warmup=0.001, eval=0.001)
    params["profile"]["data"] = {"max_seq_len": max_len}
    if window:
        params["score"]["window_tokens"] = window
    params["rounds"] = {"warmup": {"data": str(prepared("warmup")), "reference": "base", "start": "base"},
                        "fixed": {"data": str(prepared("pool")),
                                  "reference": "warmup" if reference is not None else "base", "start": "base"}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def measured(name: str, cmd: list[str], folder: Path) -> dict:
    """Run ``cmd`` in ``folder``; its wall time and peak resident memory."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "TQDM_DISABLE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=folder, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{name} failed (exit {os.waitstatus_to_exitcode(status)})")
    row = {"stage": name, "seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024)}
    print(json.dumps(row), flush=True)
    return row


def pool_tokens(folder: Path) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(folder / prepared("pool"), columns=["input_ids"])
    stats = json.loads((folder / PREPARE / "stats.json").read_text())["pool"]
    tokens = int(pc.sum(pc.list_value_length(table["input_ids"])).as_py())
    return {"pool_samples": table.num_rows, "pool_tokens": tokens, "pool_response_tokens": stats["response_tokens"]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--tokens", type=int, default=100, help="tokens per sample, about")
    ap.add_argument("--base", type=Path, default=ROOT / BASE, help="model dir with its tokenizer")
    ap.add_argument("--reference", type=Path, help="a checkpoint to score against (default: the base, no model)")
    ap.add_argument("--window", type=int, help="score.window_tokens (default: params.yaml's)")
    ap.add_argument("--dir", type=Path, help="scratch project folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        project(folder, args.base, args.reference, max_len=2 * args.tokens + 64, window=args.window)
        t0 = time.perf_counter()
        write_pool(folder / "data/pool.jsonl", args.samples, args.tokens, AutoTokenizer.from_pretrained(args.base))
        rows = [{"stage": "generate the pool", "seconds": round(time.perf_counter() - t0, 1)}]
        py = sys.executable
        for name, cmd in (("prepare", [py, "-m", "tasks.prepare"]),
                          ("data@fixed", [py, "-m", "tasks.data", "--round", "fixed"]),
                          ("score@fixed", [py, "-m", "tasks.score", "--round", "fixed"]),
                          ("select@fixed", [py, "-m", "tasks.select", "--round", "fixed"]),
                          ("export", [py, "-m", "tokenclean.cli", "export", "--round", "fixed",
                                      "--out", "fixed.parquet"])):
            rows.append(measured(name, cmd, folder))
        result = {"samples": args.samples, **pool_tokens(folder), "scored_with_models": args.reference is not None,
                  "score_window_tokens": yaml.safe_load((folder / "params.yaml").read_text())["score"]["window_tokens"],
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores", "stages": rows}
    for r in result["stages"][1:]:
        r["seconds_per_m_tokens"] = round(r["seconds"] / (result["pool_tokens"] / 1e6), 2)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
