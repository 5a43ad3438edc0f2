"""Masked SFT: loss normalised over the accumulated batch; every trainable parameter moves."""

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tests.test_scoring import make_rows
from tokenclean.columns import IGNORE
from tokenclean.config import FinetuneCfg
from tokenclean.model.batching import collate
from tokenclean.model.checkpoint import load_checkpoint, prepare_finetune, save_checkpoint, trainable_parameters
from tokenclean.model.training import accumulate, lr_lambda, plan_steps, train


def tiny_model(seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=128)
    return LlamaForCausalLM(cfg)


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_one_micro_batch_and_four_give_the_same_gradient():
    ids, labels = make_rows(n=8, seed=2)
    model = tiny_model()
    accumulate(model, [collate(ids, labels, 0)])
    whole = grads(model)
    model.zero_grad()
    accumulate(model, [collate(ids[i : i + 2], labels[i : i + 2], 0) for i in range(0, 8, 2)])
    parts = grads(model)
    assert whole.keys() == parts.keys()
    for name in whole:
        torch.testing.assert_close(whole[name], parts[name], atol=1e-6, rtol=1e-4)


def test_loss_is_mean_over_kept_tokens_of_the_whole_step():
    ids, labels = make_rows(n=4, seed=3)
    model = tiny_model()
    loss = accumulate(model, [collate(ids[:1], labels[:1], 0), collate(ids[1:], labels[1:], 0)])
    with torch.no_grad():
        logits = [model(input_ids=torch.as_tensor(x)[None]).logits[0] for x in ids]
    nll = torch.cat([torch.nn.functional.cross_entropy(lg[:-1], torch.as_tensor(y[1:]).long(), ignore_index=IGNORE,
                                                       reduction="none")[torch.as_tensor(y[1:]) != IGNORE]
                     for lg, y in zip(logits, labels)])
    assert abs(loss - float(nll.mean())) < 1e-5


def test_dropped_tokens_give_no_gradient():
    ids, labels = make_rows(n=1, seed=4)
    masked = [np.full_like(labels[0], IGNORE)]
    masked[0][np.flatnonzero(labels[0] != IGNORE)[:1]] = labels[0][labels[0] != IGNORE][:1]
    m1, m2 = tiny_model(), tiny_model()
    accumulate(m1, [collate(ids, masked, 0)])
    extra = masked[0].copy()
    # a token whose label is IGNORE contributes nothing, whatever its input id
    accumulate(m2, [collate([ids[0]], [extra], 0)])
    for (_n, a), b in zip(grads(m1).items(), grads(m2).values()):
        torch.testing.assert_close(a, b)


def test_every_trainable_parameter_changes_full_and_lora(tmp_path):
    ids, labels = make_rows(n=6, seed=5)
    for method in ("full", "lora"):
        cfg = FinetuneCfg(method=method, epochs=2, lr=1e-2, batch_tokens=128, lora_r=4)
        model = prepare_finetune(tiny_model(), cfg, tmp_path)
        before = {n: p.detach().clone() for n, p in trainable_parameters(model).items()}
        stats = train(model, ids, labels, cfg, pad_id=0, seed=0)
        after = trainable_parameters(model)
        unchanged = [n for n in before if torch.equal(before[n], after[n])]
        assert not unchanged, f"{method}: parameters did not change: {unchanged[:5]}"
        assert stats["steps"] > 0


def test_samples_with_zero_kept_tokens_are_skipped():
    ids, labels = make_rows(n=4, seed=6)
    labels[1] = np.full_like(labels[1], IGNORE)
    stats = train(tiny_model(), ids, labels, FinetuneCfg(method="full", epochs=1, batch_tokens=64), pad_id=0, seed=0)
    assert stats["samples_skipped"] == 1 and stats["samples"] == 3


def test_the_curve_has_one_row_per_step_with_its_rate_norm_and_tokens():
    ids, labels = make_rows(n=10, seed=3)
    cfg = FinetuneCfg(method="full", epochs=2, batch_tokens=64, lr=1e-3, warmup_ratio=0.25, max_grad_norm=0.5)
    stats = train(tiny_model(), ids, labels, cfg, pad_id=0, seed=0)
    curve, steps = stats["curve"], plan_steps([len(x) for x in ids], cfg, 0)
    assert [row["step"] for row in curve] == list(range(1, stats["steps"] + 1)) and len(curve) == len(steps)
    factor = lr_lambda(len(steps), cfg.warmup_ratio, cfg.schedule)
    assert [row["lr"] for row in curve] == pytest.approx([cfg.lr * factor(s) for s in range(len(steps))])
    assert [row["loss"] for row in curve][0] == stats["first_loss"]
    assert all(row["grad_norm"] > 0 for row in curve)  # the norm before clipping: it may exceed max_grad_norm
    kept = [int((np.asarray(y) != IGNORE).sum()) for y in labels]
    assert [row["kept_tokens"] for row in curve] == [sum(kept[i] for mb in s for i in mb) for s in steps]
    assert [row["tokens"] for row in curve] == [sum(len(ids[i]) for mb in s for i in mb) for s in steps]


def test_plan_is_seeded_and_covers_fractional_epochs():
    cfg = FinetuneCfg(epochs=1.5, batch_tokens=40, grad_accum=2)
    lengths = [10, 20, 30, 40, 5, 7, 9]
    a, b, c = plan_steps(lengths, cfg, 0), plan_steps(lengths, cfg, 0), plan_steps(lengths, cfg, 1)
    assert a == b and a != c
    n_batches = len({tuple(mb) for step in a for mb in step})
    assert sum(len(s) for s in a) >= n_batches


def test_a_step_count_from_all_processes_scales_the_loss_and_gradient():
    ids, labels = make_rows(n=4, seed=7)
    m1, m2 = tiny_model(), tiny_model()
    batch = [collate(ids, labels, 0)]
    own = int(sum((np.asarray(y) != IGNORE).sum() for y in labels))
    full = accumulate(m1, batch)
    half = accumulate(m2, batch, n_kept=2 * own)  # as if another process held as many kept tokens
    assert abs(half - full / 2) < 1e-6
    for (_n, a), b in zip(grads(m1).items(), grads(m2).values()):
        torch.testing.assert_close(b, a / 2, atol=1e-7, rtol=1e-5)


def test_trainable_adapter_stays_fp32_on_half_precision_weights(tmp_path):
    base = tiny_model()
    base.save_pretrained(tmp_path / "base")
    cfg = FinetuneCfg(method="lora", lora_r=4)
    save_checkpoint(prepare_finetune(tiny_model(), cfg, tmp_path / "base"), None, tmp_path / "ckpt", {})
    for trainable, adapter_dtype in ((True, torch.float32), (False, torch.bfloat16)):
        model = load_checkpoint(tmp_path / "ckpt", tmp_path / "base", "bfloat16", torch.device("cpu"), trainable)
        dtypes = {n: p.dtype for n, p in model.named_parameters()}
        assert {d for n, d in dtypes.items() if "lora_" in n} == {adapter_dtype}
        assert {d for n, d in dtypes.items() if "lora_" not in n} == {torch.bfloat16}


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_run_resumed_from_its_last_checkpoint_ends_with_the_same_weights(tmp_path, device, method, caplog):
    """The in-process half of tests/test_resume.py: checkpoints every 2 steps; a second run from the
    same start finds the last one, does only the remaining steps, and lands on the same weights."""
    from tokenclean.model.recovery import TrainState

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    ids, labels = make_rows(n=12, seed=7)
    cfg = FinetuneCfg(method=method, epochs=3, lr=1e-2, batch_tokens=96, lora_r=4)
    runs = []
    caplog.set_level("INFO", logger="tokenclean.model.recovery")
    for _ in range(2):  # the second run resumes from the first's last checkpoint (it is never cleared here)
        model = prepare_finetune(tiny_model().to(device), cfg, tmp_path)
        stats = train(model, ids, labels, cfg, pad_id=0, seed=0, state=TrainState(tmp_path / "scratch", every=2))
        runs.append(({n: p.detach().cpu() for n, p in trainable_parameters(model).items()}, stats))
    (first, first_stats), (second, second_stats) = runs
    done = int((tmp_path / "scratch" / "latest").read_text().split("-")[1])
    assert 0 < done < first_stats["steps"] and first_stats == second_stats
    assert caplog.text.count(f"resuming from step {done} ") == 1  # the second run, and only it, resumed
    for name in first:
        if device == "cpu":
            assert torch.equal(first[name], second[name]), name
        else:  # CUDA kernels are not promised to be bitwise deterministic
            torch.testing.assert_close(first[name], second[name], rtol=1e-4, atol=1e-5)


def test_learning_rate_warms_up_then_decays_linearly_or_by_cosine_to_zero():

    linear, cosine = lr_lambda(100, 0.1, "linear"), lr_lambda(100, 0.1, "cosine")
    assert [linear(s) for s in (0, 4, 9)] == [0.1, 0.5, 1.0] == [cosine(s) for s in (0, 4, 9)]
    assert linear(55) == 0.5 and abs(cosine(55) - 0.5) < 1e-12  # half way through the decay
    assert abs(linear(32) - (1 - 22 / 90)) < 1e-12 and cosine(32) > linear(32)  # cosine stays higher early
    assert linear(100) == 0.0 and abs(cosine(100)) < 1e-12
