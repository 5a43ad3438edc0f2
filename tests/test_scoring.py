"""Alignment: per-token NLL is the same under left and right padding, with or without a mask, \
and equals a plain computation."""

import copy
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from tokenclean.columns import IGNORE
from tokenclean.method.scoring import head_nll, response_hidden, score_base_and_reference, score_dataset, token_nll
from tokenclean.model import kernels
from tokenclean.model.batching import collate, needs_mask, token_budget_batches
from tokenclean.model.kernels import fused


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


def test_right_padding_without_a_mask_gives_the_masked_scores(model):
    ids, labels = make_rows(n=9, seed=3)
    with torch.no_grad():
        masked = token_nll(model, collate(ids, labels, pad_id=0))
        bare = collate(ids, labels, pad_id=0, mask=False)
        assert set(bare) == {"input_ids", "labels"}
        np.testing.assert_allclose(token_nll(model, bare).numpy(), masked.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="right-padded"):
        collate(ids, labels, pad_id=0, side="left", mask=False)
    assert needs_mask("cpu") and not needs_mask("cuda")


def test_head_sum_is_the_sum_of_token_losses(model):
    ids, labels = make_rows(n=5, seed=4)
    with torch.no_grad():
        h, y = response_hidden(model, collate(ids, labels, pad_id=0))
        per_token, total = head_nll(model, h, y, chunk=3), head_nll(model, h, y, chunk=3, reduction="sum")
    assert per_token.shape == y.shape and per_token.dtype == torch.float32
    assert abs(float(total) - float(per_token.sum())) < 1e-4


def test_one_model_scores_reference_with_adapter_and_base_without(model):
    ids, labels = make_rows(n=6, seed=5)
    plain = score_dataset(model, ids, labels, pad_id=0, batch_tokens=64, chunk=8)
    lora = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    base, ref = score_base_and_reference(lora, ids, labels, pad_id=0, batch_tokens=64, chunk=8)
    for p, b, r in zip(plain, base, ref):
        np.testing.assert_array_equal(p, b)  # adapter off: exactly the base model
        assert np.abs(r - b).max() > 1e-4  # adapter on: a different model
    np.testing.assert_array_equal(score_dataset(lora, ids, labels, 0, 64, 8)[0], ref[0])  # adapter back on after


def test_fused_kernels_only_on_cuda_and_known_names():
    assert not fused("liger", "cpu") and not fused("torch", "cuda") and fused("liger", "cuda")
    with pytest.raises(ValueError, match="unknown compute.kernels"):
        fused("triton", "cpu")


def test_lora_accumulating_forward_equals_peft(model):
    """The fused path's LoRA forward (one matrix product adds the adapter), checked here in fp32."""
    ids, labels = make_rows(n=5, seed=6)
    lora = get_peft_model(copy.deepcopy(model),
                          LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)).eval()
    batch = collate(ids, labels, pad_id=0)
    with torch.inference_mode():
        expected = token_nll(lora, batch)
        layers = [m for m in lora.modules() if kernels._is_lora_linear(m)]
        for m in layers:
            m.forward = types.MethodType(kernels._lora_forward, m)
        np.testing.assert_allclose(token_nll(lora, batch).numpy(), expected.numpy(), atol=1e-5)
        with lora.disable_adapter():
            np.testing.assert_allclose(token_nll(lora, batch).numpy(), token_nll(model, batch).numpy(), atol=1e-6)
    assert len(layers) == 2 * 7
