"""Packed batches (samples end to end, positions restarting) give the padded batches' scores and gradients;
gradient checkpointing gives the same gradient."""

import numpy as np
import pytest
import torch

from tests.test_scoring import make_rows
from tests.test_training import grads, tiny_model
from tokenclean.columns import IGNORE
from tokenclean.config import FinetuneCfg
from tokenclean.method.scoring import score_dataset
from tokenclean.model.batching import collate, collate_packed, token_budget_batches
from tokenclean.model.checkpoint import prepare_finetune
from tokenclean.model.training import accumulate, checkpoint_activations, plan_steps, train


def test_packed_batches_fill_the_budget_and_cover_every_row_once():
    lengths = np.random.default_rng(0).integers(5, 60, 200)
    batches = token_budget_batches(lengths, 128, packed=True)
    assert sorted(i for b in batches for i in b) == list(range(200))
    assert all(lengths[b].sum() <= 128 for b in batches)
    padded = token_budget_batches(lengths, 128)
    assert len(batches) < len(padded)  # no padding: fewer, fuller batches
    assert token_budget_batches([300, 10], 128, packed=True) == [[0], [1]]  # too long: a batch of its own


def test_a_packed_row_restarts_positions_and_marks_sample_starts():
    ids, labels = make_rows(n=3, seed=1)
    b = collate_packed(ids, labels)
    n = [len(x) for x in ids]
    assert b["input_ids"].shape == (1, sum(n)) and "attention_mask" not in b
    assert b["position_ids"][0].tolist() == [p for k in n for p in range(k)]
    assert b["cu_seq_lens_q"].tolist() == [0, n[0], n[0] + n[1], sum(n)] and b["max_length_q"] == max(n)
    bad = [y.copy() for y in labels]
    bad[1][0] = ids[1][0]
    with pytest.raises(ValueError, match="first token cannot be learned"):
        collate_packed(ids, bad)


def test_packed_scores_equal_padded_ones():
    model = tiny_model().eval()
    ids, labels = make_rows(n=30, seed=2)
    padded = score_dataset(model, ids, labels, 0, batch_tokens=96, chunk=7)
    packed = score_dataset(model, ids, labels, 0, batch_tokens=96, chunk=7, packed=True)
    assert len(padded) == len(packed) == 30
    for a, b in zip(padded, packed):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-5)
    # the same row sequence without position restarts would let samples see each other: scores move
    joined = collate_packed(ids[:4], labels[:4])
    joined.pop("position_ids"), joined.pop("cu_seq_lens_q"), joined.pop("cu_seq_lens_k")
    from tokenclean.method.scoring import token_nll
    with torch.no_grad():
        crossed = token_nll(model, joined).numpy()
    assert np.abs(crossed - np.concatenate(padded[:4])).max() > 1e-2


def test_packed_and_padded_training_gradients_are_equal():
    ids, labels = make_rows(n=8, seed=3)
    model = tiny_model()
    accumulate(model, [collate(ids[:4], labels[:4], 0), collate(ids[4:], labels[4:], 0)])
    padded = grads(model)
    model.zero_grad()
    accumulate(model, [collate_packed(ids[:5], labels[:5]), collate_packed(ids[5:], labels[5:])])
    packed = grads(model)
    assert padded.keys() == packed.keys() and padded
    for name in padded:
        torch.testing.assert_close(packed[name], padded[name], atol=1e-6, rtol=1e-4)


def test_gradient_checkpointing_gives_the_same_gradient(tmp_path):
    ids, labels = make_rows(n=6, seed=4)
    cfg = FinetuneCfg(method="lora", lora_r=4)
    plain = prepare_finetune(tiny_model(), cfg, tmp_path)
    accumulate(plain.train(), [collate(ids, labels, 0)])
    ckpt = prepare_finetune(tiny_model(), cfg, tmp_path)
    checkpoint_activations(ckpt, True)
    accumulate(ckpt.train(), [collate(ids, labels, 0)])
    a, b = grads(plain), grads(ckpt)
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-6, rtol=1e-5)


def test_packed_checkpointed_training_ends_where_padded_training_does(tmp_path):
    ids, labels = make_rows(n=16, seed=5)
    cfg = FinetuneCfg(method="full", epochs=2, lr=1e-3, batch_tokens=512, grad_accum=2)
    assert len(plan_steps([len(x) for x in ids], cfg, 0, packed=True)) < len(plan_steps([len(x) for x in ids], cfg, 0))
    one = cfg.model_copy(update={"batch_tokens": 4096, "grad_accum": 1})  # one micro-batch: the same step plans
    runs = {}
    for packed in (False, True):
        m = tiny_model()
        stats = train(m, ids, labels, one, 0, seed=0, packed=packed, checkpointing=packed)
        runs[packed] = (stats, dict(m.named_parameters()))
        assert not any(getattr(x, "gradient_checkpointing", False) for x in m.modules())
    (a, wa), (b, wb) = runs[False], runs[True]
    np.testing.assert_allclose([h["loss"] for h in b["curve"]], [h["loss"] for h in a["curve"]], rtol=1e-4)
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], atol=1e-5, rtol=1e-4)
    assert IGNORE not in (np.concatenate(ids))  # the rows are token ids only


@pytest.mark.slow
def test_compiled_layers_give_the_same_scores_and_gradient(tmp_path):
    """compute.compile on CPU (float32): each layer captured by torch.compile and run as captured (backend
    ``eager``: without inductor's C++ build, ~70 CPU-seconds here) gives the plain layers' packed scores and LoRA
    gradient. Inductor itself on CUDA: tests/test_gpu.py."""
    from tokenclean.model.kernels import compile_layers

    ids, labels = make_rows(n=12, seed=6)
    plain = prepare_finetune(tiny_model(), FinetuneCfg(method="lora", lora_r=4), tmp_path)
    compiled = prepare_finetune(tiny_model(), FinetuneCfg(method="lora", lora_r=4), tmp_path)
    compile_layers(compiled, backend="eager")
    compile_layers(compiled, backend="eager")  # idempotent: compiled once
    from tokenclean.model.kernels import compiled_head
    assert compiled_head(plain) is None and compiled_head(compiled) is not None  # the LM head's chunk loss too
    for a, b in zip(score_dataset(plain, ids, labels, 0, 96, 7, packed=True),
                    score_dataset(compiled, ids, labels, 0, 96, 7, packed=True)):
        np.testing.assert_allclose(a, b, atol=2e-5)
    accumulate(plain.train(), [collate_packed(ids, labels)])
    accumulate(compiled.train(), [collate_packed(ids, labels)])
    a, b = grads(plain), grads(compiled)
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-6, rtol=1e-4)
    assert set(compiled.state_dict()) == set(plain.state_dict())  # compiled in place: checkpoints look the same
