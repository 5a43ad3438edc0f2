"""Alignment: per-token NLL is the same under left and right padding and equals a plain computation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from tokenclean.batching import collate, token_budget_batches
from tokenclean.columns import IGNORE
from tokenclean.scoring import score_dataset, token_nll


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=128)
    return LlamaForCausalLM(cfg).eval()


def make_rows(n=7, seed=0):
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(n):
        length, prompt = rng.integers(5, 40), rng.integers(1, 4)
        x = rng.integers(1, 97, size=length)
        y = x.copy()
        y[:prompt] = IGNORE
        y[rng.random(length) < 0.2] = IGNORE  # holes, as a keep mask leaves
        y[0] = IGNORE
        ids.append(x)
        labels.append(y)
    return ids, labels


def plain_nll(model, x, y):
    """Reference: full logits of one unpadded sample, shifted by one, at labelled positions."""
    with torch.no_grad():
        logits = model(input_ids=torch.as_tensor(x)[None]).logits[0]
    nll = F.cross_entropy(logits[:-1], torch.as_tensor(x[1:]), reduction="none")
    return nll[torch.as_tensor(y[1:]) != IGNORE].numpy()


def test_left_right_padding_and_plain_agree(model):
    ids, labels = make_rows()
    flat = {}
    for side in ("left", "right"):
        with torch.no_grad():
            flat[side] = token_nll(model, collate(ids, labels, pad_id=0, side=side), chunk=5).numpy()
    expected = np.concatenate([plain_nll(model, x, y) for x, y in zip(ids, labels)])
    np.testing.assert_allclose(flat["left"], flat["right"], atol=1e-5)
    np.testing.assert_allclose(flat["right"], expected, atol=1e-5)


def test_score_dataset_returns_input_order_and_counts(model):
    ids, labels = make_rows(n=11, seed=1)
    out = score_dataset(model, ids, labels, pad_id=0, batch_tokens=64, chunk=7)
    for x, y, nll in zip(ids, labels, out):
        assert nll.dtype == np.float32 and len(nll) == int((y != IGNORE).sum())
        np.testing.assert_allclose(nll, plain_nll(model, x, y), atol=1e-5)


def test_chunk_size_does_not_change_results(model):
    ids, labels = make_rows()
    batch = collate(ids, labels, pad_id=0)
    with torch.no_grad():
        a, b = token_nll(model, batch, chunk=1), token_nll(model, batch, chunk=10_000)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_token_budget_batches_cover_every_row_once_within_budget():
    lengths = [5, 40, 17, 3, 40, 8, 22]
    batches = token_budget_batches(lengths, budget=64)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(max(lengths[i] for i in b) * len(b) <= 64 or len(b) == 1 for b in batches)
