"""What the benchmark runs on: Llama shapes with random weights, SFT-like samples, FLOP counts.

Speed does not depend on the weights' values, so models are built from a config with a fixed
seed on the device itself. Samples are generated here too, so the benchmark needs nothing
outside the project.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tokenclean.columns import IGNORE

# Llama 3.2 1B and 3B and Llama 3.1 8B shapes; "tiny" runs in seconds on a CPU (CI).
SHAPES = {
    "tiny": dict(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, intermediate_size=128, tie_word_embeddings=True),
    "1b": dict(vocab_size=128256, hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, intermediate_size=8192, tie_word_embeddings=True),
    "3b": dict(vocab_size=128256, hidden_size=3072, num_hidden_layers=28, num_attention_heads=24,
               num_key_value_heads=8, intermediate_size=8192, tie_word_embeddings=True),
    # Llama 3.1 8B, the paper's main scale
    "8b": dict(vocab_size=128256, hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, intermediate_size=14336, tie_word_embeddings=False),
}
# Sample lengths: log-normal (median, sigma) clipped to [shortest, longest], like an SFT set cut at 2048 tokens.
LENGTHS = {"tiny": (40, 0.6, 8, 128), **{s: (350, 0.8, 32, 2048) for s in ("1b", "3b", "8b")}}


def llama_config(shape: str) -> LlamaConfig:
    return LlamaConfig(**SHAPES[shape], max_position_embeddings=4096, attn_implementation="sdpa")


def build_model(shape: str, dtype: torch.dtype, device) -> LlamaForCausalLM:
    """The same random weights on every call: initialised in fp32 with seed 0, then cast."""
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(llama_config(shape))
    model.config.use_cache = False
    return model.to(dtype)


@dataclass
class Samples:
    ids: list[np.ndarray]
    labels: list[np.ndarray]  # IGNORE on the prompt; response tokens otherwise

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.ids])

    def labelled(self) -> int:
        return int(sum((y != IGNORE).sum() for y in self.labels))

    def subset(self, rows) -> Samples:
        return Samples([self.ids[r] for r in rows], [self.labels[r] for r in rows])


def sft_samples(shape: str, n: int, seed: int = 0) -> Samples:
    """``n`` chats: random token ids, a prompt of 10-50% of each sample, the rest response."""
    median, sigma, lo, hi = LENGTHS[shape]
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(median), sigma, n), lo, hi).astype(int)
    vocab = SHAPES[shape]["vocab_size"]
    ids, labels = [], []
    for length in lengths:
        x = rng.integers(0, vocab, length)
        y = x.copy()
        y[: max(1, int(rng.uniform(0.1, 0.5) * length))] = IGNORE
        ids.append(x)
        labels.append(y)
    return Samples(ids, labels)


def keep_share(samples: Samples, share: float, seed: int = 1) -> Samples:
    """The samples with a random ``share`` of response tokens kept (the rest IGNORE), as cleaning leaves them."""
    rng = np.random.default_rng(seed)
    labels = []
    for y in samples.labels:
        y = y.copy()
        y[(y != IGNORE) & (rng.random(len(y)) >= share)] = IGNORE
        labels.append(y)
    return Samples(samples.ids, labels)


def forward_flops(shape: str, lengths, head_rows: int) -> float:
    """Matmul FLOPs of one forward pass over real tokens, with the LM head on ``head_rows`` positions.

    Linear layers on every token, causal attention (QK^T and PV over the lower triangle), and
    the head only where a loss is needed: the work any method must do, padding excluded.
    """
    c = SHAPES[shape]
    d, layers, ff, vocab = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["vocab_size"]
    kv = c["num_key_value_heads"] * d // c["num_attention_heads"]
    lengths = np.asarray(lengths, dtype=np.float64)
    linear = 2 * layers * (2 * d * d + 2 * d * kv + 3 * d * ff) * lengths.sum()
    attention = 2 * 2 * layers * d * (lengths * (lengths + 1) / 2).sum()
    return float(linear + attention + 2 * d * vocab * head_rows)
