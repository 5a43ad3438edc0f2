"""Benchmark of `tokenclean audit stats` on a synthetic run of 10 million response tokens.

    python bench/audit_stats.py [--tokens 10000000] [--dir DIR]

Writes a fixed-model run (pool, scores, mask, tokenizer) of that size where the pipeline
writes it, then times, in one process: reading and aligning the artifacts, the statistics,
and the whole command (``audit stats --json``, tokenizer and output included).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the cli package, when run as a script

from tokenclean import columns as C  # noqa: E402
from tokenclean.audit.load import load_round  # noqa: E402
from tokenclean.audit.stats import round_stats  # noqa: E402
from tokenclean.cli.main import main as cli_main  # noqa: E402
from tokenclean.io import write_table  # noqa: E402
from tokenclean.layout import BASE, LocalFiles, round_paths  # noqa: E402
from tokenclean.method.selection import top_k  # noqa: E402
from tokenclean.model.modeling import train_tokenizer  # noqa: E402

PROMPT = 32  # prompt tokens per sample, not learned


def ragged(values: np.ndarray, lengths: np.ndarray, type_) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type_))


def write_run(root: Path, tokens: int, seed: int = 0) -> None:
    """Samples of 50-350 response tokens after a prompt; token ids Zipf-like; the global top 60% kept."""
    rng = np.random.default_rng(seed)
    tok = train_tokenizer([f"word{i} and more words {i % 7}" for i in range(2000)], vocab_size=1024)
    tok.save_pretrained(root / BASE)
    lengths = rng.integers(50, 351, tokens // 150 + 10)  # more than enough; cut at the token count
    lengths = lengths[: np.searchsorted(np.cumsum(lengths), tokens) + 1]
    lengths[-1] -= lengths.sum() - tokens
    n, total = len(lengths), tokens + PROMPT * len(lengths)
    resp = np.minimum(rng.zipf(1.3, tokens), 1018) + 5  # ids 6..1023, the special tokens left out
    is_resp = np.ones(total, bool)
    starts = np.concatenate([[0], np.cumsum(lengths + PROMPT)[:-1]])
    is_resp[(starts[:, None] + np.arange(PROMPT)).ravel()] = False
    ids = rng.integers(6, 1024, total).astype(np.int32)
    ids[is_resp] = resp
    labels = np.where(is_resp, ids, C.IGNORE).astype(np.int32)
    kinds = np.where(is_resp, 0, -1).astype(np.int8)
    kinds[is_resp] = rng.choice(3, tokens, p=[0.2, 0.75, 0.05])
    scores = rng.normal(size=tokens).astype(np.float32)
    p, sids = round_paths("fixed"), [f"s{i:07d}" for i in range(n)]
    full = lengths + PROMPT
    write_table(pa.table({C.SAMPLE_ID: sids, C.INPUT_IDS: ragged(ids, full, pa.int32()),
                          C.LABELS: ragged(labels, full, pa.int32()), C.KINDS: ragged(kinds, full, pa.int8())}),
                root / p.data)
    write_table(pa.table({C.SAMPLE_ID: sids, C.SCORES: ragged(scores, lengths, pa.float32())}), root / p.scores)
    keep = top_k(scores, int(0.6 * tokens))
    write_table(pa.table({C.SAMPLE_ID: sids, C.KEEP: ragged(keep, lengths, pa.bool_())}), root / p.keep)
    print(f"run: {n:,} samples, {tokens:,} response tokens, {total:,} tokens in all")


def timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    print(f"{label:<44} {time.perf_counter() - t0:6.2f} s")
    return out


def bench(root: Path) -> None:
    files, p = LocalFiles(root), round_paths("fixed")
    r = timed("read + align (load_round)", lambda: load_round(files, p))
    s = timed("statistics (round_stats)", lambda: round_stats(r))
    assert s["tokens"] == len(r.keep)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        t0 = time.perf_counter()
        code = cli_main(["audit", "stats", "--repo", str(root), "--json"])
        elapsed = time.perf_counter() - t0
    print(f"{'whole command: audit stats --json':<44} {elapsed:6.2f} s  (exit {code})")


def run(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=10_000_000, help="response tokens (default: 10 million)")
    parser.add_argument("--dir", type=Path, help="where to write the run (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        root = args.dir or Path(tmp)
        timed("write the synthetic run", lambda: write_run(root, args.tokens))
        bench(root)


if __name__ == "__main__":
    run()
