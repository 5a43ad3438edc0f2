"""On CUDA: bf16 scores and training steps agree with the fp32 CPU reference; fused kernels agree with PyTorch."""

import copy
import importlib.util

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama import modeling_llama

from tokenclean.columns import IGNORE
from tokenclean.method.scoring import score_dataset, token_nll
from tokenclean.model import kernels as K
from tokenclean.model import packing
from tokenclean.model.batching import collate, collate_packed
from tokenclean.model.training import accumulate

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
needs_liger = pytest.mark.skipif(importlib.util.find_spec("liger_kernel") is None, reason="needs liger-kernel")
CUDA = torch.device("cuda")
ORIGINAL_ROPE = modeling_llama.apply_rotary_pos_emb


def model_fp32(seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=4096, hidden_size=256, num_hidden_layers=2, num_attention_heads=8,
                      num_key_value_heads=2, intermediate_size=704, max_position_embeddings=1024)
    return LlamaForCausalLM(cfg).eval()


def rows(n=24, seed=0, vocab=4096):
    """Fresh random samples of 16-400 tokens, a prompt of up to a third, holes in the labels."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(n):
        x = rng.integers(0, vocab, rng.integers(16, 400))
        y = x.copy()
        y[: rng.integers(1, len(x) // 3 + 2)] = IGNORE
        y[rng.random(len(x)) < 0.3] = IGNORE
        ids.append(x)
        labels.append(y)
    return ids, labels


def lora(model):
    """A LoRA adapter with non-zero weights on every linear layer, so it changes the model."""
    return get_peft_model(model, LoraConfig(r=8, target_modules="all-linear", init_lora_weights=False))


def flat(arrays):
    return np.concatenate(arrays)


def test_bf16_scores_on_gpu_match_fp32_on_cpu():
    ids, labels = rows(seed=1)
    cpu = model_fp32()
    gpu = copy.deepcopy(cpu).to(CUDA, torch.bfloat16)
    ref = flat(score_dataset(cpu, ids, labels, 0, batch_tokens=2048, chunk=512))
    out = flat(score_dataset(gpu, ids, labels, 0, batch_tokens=2048, chunk=512))
    assert out.shape == ref.shape and np.isfinite(out).all()
    assert np.abs(out - ref).mean() < 0.01 and np.abs(out - ref).max() < 0.1


def test_gpu_batches_without_a_mask_equal_masked_ones():
    ids, labels = rows(seed=2)
    model = model_fp32().to(CUDA, torch.bfloat16)
    with torch.inference_mode():
        masked = token_nll(model, collate(ids, labels, 0, device=CUDA)).float().cpu().numpy()
        bare = token_nll(model, collate(ids, labels, 0, device=CUDA, mask=False)).float().cpu().numpy()
    assert np.abs(bare - masked).mean() < 0.005 and np.abs(bare - masked).max() < 0.05


def adapter_grads(model, batch, kernels="torch"):
    model.zero_grad()
    loss = accumulate(model, [batch], kernels=kernels)
    return loss, {n: p.grad.float().cpu() for n, p in model.named_parameters() if p.requires_grad}


def cosine(a, b):
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def lora_bf16():
    """A LoRA model on CUDA as training holds it: bf16 frozen weights, an fp32 adapter (PEFT's layout)."""
    model = lora(model_fp32()).to(CUDA)
    for p in model.parameters():
        p.data = p.data.float() if p.requires_grad else p.data.to(torch.bfloat16)
    return model


def assert_same_step(a, b):
    """Two (loss, adapter gradients) of one training step agree within bf16 tolerance."""
    (loss_a, g_a), (loss_b, g_b) = a, b
    assert abs(loss_a - loss_b) < 0.01 * loss_a
    assert g_a.keys() == g_b.keys() and g_a
    assert min(cosine(g_a[n], g_b[n]) for n in g_a) > 0.99


def test_lora_step_on_bf16_weights_matches_fp32_gradient():
    ids, labels = rows(n=8, seed=3)
    cpu = lora(model_fp32())
    gpu = copy.deepcopy(cpu).to(CUDA)
    for _name, p in gpu.named_parameters():
        p.data = p.data.float() if p.requires_grad else p.data.to(torch.bfloat16)  # PEFT's layout: fp32 adapter
    loss_cpu, g_cpu = adapter_grads(cpu, collate(ids, labels, 0))
    loss_gpu, g_gpu = adapter_grads(gpu, collate(ids, labels, 0, device=CUDA, mask=False))
    assert abs(loss_gpu - loss_cpu) < 0.02 * loss_cpu
    assert g_cpu.keys() == g_gpu.keys() and g_cpu
    assert min(cosine(g_gpu[n], g_cpu[n]) for n in g_cpu) > 0.99
    assert all(p.dtype == torch.float32 for p in gpu.parameters() if p.requires_grad)


def test_lora_reference_pass_matches_the_peft_forward():
    ids, labels = rows(seed=6)
    model = lora(model_fp32()).to(CUDA, torch.bfloat16)
    plain = copy.deepcopy(model)  # never given the accumulating LoRA forward
    out = flat(score_dataset(model, ids, labels, 0, batch_tokens=2048, chunk=512))
    with torch.inference_mode():
        batches = [collate(ids[i : i + 6], labels[i : i + 6], 0, device=CUDA, mask=False)
                   for i in range(0, len(ids), 6)]
        ref = np.concatenate([token_nll(plain, b).float().cpu().numpy() for b in batches])
    assert np.abs(out - ref).mean() < 0.005 and np.abs(out - ref).max() < 0.05


@needs_liger
def test_liger_scores_match_pytorch():
    ids, labels = rows(seed=4)
    torch_model = lora(model_fp32()).to(CUDA, torch.bfloat16)
    liger_model = copy.deepcopy(torch_model)
    a = flat(score_dataset(torch_model, ids, labels, 0, batch_tokens=2048, chunk=512))
    b = flat(score_dataset(liger_model, ids, labels, 0, batch_tokens=2048, chunk=512, kernels="liger"))
    assert np.abs(a - b).mean() < 0.005 and np.abs(a - b).max() < 0.05
    def patched(model):
        return sum(getattr(m, "_tokenclean_fused", False) for m in model.modules())
    assert patched(torch_model) == 2 * 7  # the LoRA linears only
    assert patched(liger_model) == 2 * (3 + 7) + 1  # per layer two norms, the MLP, 7 LoRA linears; the final norm
    assert modeling_llama.apply_rotary_pos_emb is ORIGINAL_ROPE  # swapped for the pass only
    with K.rope(liger_model, "liger"):
        assert modeling_llama.apply_rotary_pos_emb is not ORIGINAL_ROPE


@needs_liger
def test_liger_training_gradient_matches_pytorch():
    ids, labels = rows(n=8, seed=5)
    base = lora_bf16()
    fused = copy.deepcopy(base)
    K.apply(fused, "liger")
    batch = collate(ids, labels, 0, device=CUDA, mask=False)
    assert_same_step(adapter_grads(base, batch), adapter_grads(fused, batch, kernels="liger"))


def test_packed_varlen_scores_match_padded_ones():
    ids, labels = rows(seed=7)
    padded_model = model_fp32().to(CUDA, torch.bfloat16)
    packed_model = copy.deepcopy(padded_model)
    a = flat(score_dataset(padded_model, ids, labels, 0, batch_tokens=2048, chunk=512))
    b = flat(score_dataset(packed_model, ids, labels, 0, batch_tokens=2048, chunk=512, packed=True))
    assert packed_model.config._attn_implementation == packing.NAME  # the varlen kernel ran
    assert a.shape == b.shape and np.abs(a - b).mean() < 0.005 and np.abs(a - b).max() < 0.05


def test_packed_varlen_training_gradient_matches_padded():
    ids, labels = rows(n=8, seed=8)
    base = lora_bf16()
    packed = copy.deepcopy(base)
    assert packing.use_varlen(packed)
    assert_same_step(adapter_grads(base, collate(ids, labels, 0, device=CUDA, mask=False)),
                     adapter_grads(packed, collate_packed(ids, labels, device=CUDA)))


def test_compiled_layers_give_the_same_packed_scores_and_step():
    ids, labels = rows(seed=9)
    plain = lora(model_fp32()).to(CUDA, torch.bfloat16)
    compiled = copy.deepcopy(plain)
    K.compile_layers(compiled)
    a = flat(score_dataset(plain, ids, labels, 0, batch_tokens=2048, chunk=512, packed=True))
    b = flat(score_dataset(compiled, ids, labels, 0, batch_tokens=2048, chunk=512, packed=True))
    assert a.shape == b.shape and np.abs(a - b).mean() < 0.005 and np.abs(a - b).max() < 0.05
    ids, labels = rows(n=8, seed=10)
    base = lora_bf16()
    fast = copy.deepcopy(base)
    K.compile_layers(fast)
    assert_same_step(adapter_grads(base, collate_packed(ids, labels, device=CUDA)),
                     adapter_grads(fast, collate_packed(ids, labels, device=CUDA)))
    assert all(layer._compiled_call_impl is not None for layer in fast.get_base_model().model.layers)
