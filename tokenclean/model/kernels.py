"""GPU fast paths, each checked against the pure-PyTorch reference (``tests/test_gpu.py``).

On CUDA, in inference, a LoRA adapter's output is accumulated into its base layer's output
by one matrix product instead of separate scale and add passes over the layer's output.
``compute.kernels: liger`` adds Liger's Triton kernels for RMSNorm, SwiGLU, the LM head fused
with cross-entropy, and (scoring only) rotary embeddings: each reads and writes an activation
once where PyTorch's eager ops make several passes, and the fused head never holds a
``positions x vocabulary`` logits tensor. Module forwards are replaced per model instance;
on CPU nothing changes, so CPU results stay those of the plain PyTorch modules.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import sys
import types

import torch

NAMES = ("torch", "liger")


def fused(kernels: str, device) -> bool:
    """Whether ``kernels`` asks for the fused path and ``device`` can run it."""
    if kernels not in NAMES:
        raise ValueError(f"unknown compute.kernels '{kernels}'; use one of {NAMES}")
    return kernels == "liger" and torch.device(device).type == "cuda"


def _liger():
    try:
        from liger_kernel.transformers import functional
    except ImportError:
        raise ValueError("compute.kernels: liger needs liger-kernel (pip install 'tokenclean[gpu]')") from None
    return functional


def _rms_norm_forward(self, hidden_states):
    return _liger().liger_rms_norm(hidden_states, self.weight, self.variance_epsilon, casting_mode="llama")


def _swiglu_forward(self, x):
    return self.down_proj(_liger().liger_swiglu(self.gate_proj(x), self.up_proj(x)))


def _is_rms_norm(module) -> bool:
    # Llama-style: weight * normalise(x in fp32), cast back; Gemma's (1 + weight) variant has no variance_epsilon
    return (type(module).__name__.endswith("RMSNorm") and hasattr(module, "variance_epsilon")
            and getattr(module, "weight", None) is not None)


def _is_swiglu(module) -> bool:
    act = getattr(getattr(module, "config", None), "hidden_act", None)
    return act in ("silu", "swish") and all(hasattr(module, n) for n in ("gate_proj", "up_proj", "down_proj"))


def _plain_lora(self) -> bool:
    """Inference with plain LoRA adapters (no bias, no variant such as DoRA), none merged or disabled."""
    return not (torch.is_grad_enabled() or self.training or self.disable_adapters or self.merged
                or getattr(self, "lora_variant", None)
                or any(self.lora_B[n].bias is not None for n in self.active_adapters if n in self.lora_B))


def _lora_forward(self, x, *args, **kwargs):
    """Base output += scale * (x A^T) B^T as one accumulating matrix product, when :func:`_plain_lora`."""
    if args or kwargs or not _plain_lora(self):
        return type(self).forward(self, x, *args, **kwargs)
    result = self.base_layer(x)
    flat = result.view(-1, result.shape[-1])
    for name in self.active_adapters:
        if name in self.lora_A:
            a = self.lora_A[name](x.to(self.lora_A[name].weight.dtype)).reshape(len(flat), -1)
            flat.addmm_(a.to(result.dtype), self.lora_B[name].weight.t().to(result.dtype), alpha=self.scaling[name])
    return result


def _is_lora_linear(module) -> bool:
    lora = sys.modules.get("peft.tuners.lora.layer")
    return lora is not None and isinstance(module, lora.Linear)


def apply(model, kernels: str) -> None:
    """On CUDA, route ``model``'s LoRA linears (and with ``liger`` its RMSNorm and SwiGLU) to fast paths.

    Idempotent; on any other device the model stays as it is.
    """
    device = next(model.parameters()).device
    liger = fused(kernels, device)
    if device.type != "cuda":
        return
    for module in model.modules():
        if getattr(module, "_tokenclean_fused", False):
            continue
        if _is_lora_linear(module):
            module.forward = types.MethodType(_lora_forward, module)
        elif liger and _is_rms_norm(module):
            module.forward = types.MethodType(_rms_norm_forward, module)
        elif liger and _is_swiglu(module):
            module.forward = types.MethodType(_swiglu_forward, module)
        else:
            continue
        module._tokenclean_fused = True


# Model families whose attention applies the standard half-split rotary embedding through a
# module-level ``apply_rotary_pos_emb(q, k, cos, sin)``, which Liger's RoPE computes exactly.
ROPE_MODULES = tuple(f"transformers.models.{m}.modeling_{m}" for m in ("llama", "mistral", "qwen2", "qwen3"))


@contextlib.contextmanager
def rope(model, kernels: str):
    """Liger's rotary embedding for the duration of a pass.

    Attention looks ``apply_rotary_pos_emb`` up in its module at call time, so the function is
    swapped there inside this block and put back on the way out, whatever happens.
    """
    names = {type(m).__module__ for m in model.modules()} & set(ROPE_MODULES)
    if not names or not fused(kernels, next(model.parameters()).device):
        yield
        return
    modules = [sys.modules[n] for n in sorted(names)]
    saved = [m.apply_rotary_pos_emb for m in modules]
    for m in modules:
        m.apply_rotary_pos_emb = _liger().liger_rope
    try:
        yield
    finally:
        for m, f in zip(modules, saved):
            m.apply_rotary_pos_emb = f


def head_nll(h: torch.Tensor, head, y: torch.Tensor, chunk: int, reduction: str) -> torch.Tensor:
    """Cross-entropy of ``head(h)`` against ``y`` without materialising the logits (fp32 losses).

    Rows go through the head about ``chunk`` at a time, as on the PyTorch path.
    """
    flce = _liger().liger_fused_linear_cross_entropy
    extra = {}
    if "chunk_mem_const" in inspect.signature(flce).parameters:  # rows per chunk ~ chunk (liger >= 0.8.5)
        rows, width, vocab = max(len(y), 1), h.shape[-1], head.weight.shape[0]
        extra["chunk_mem_const"] = max(1, math.ceil(chunk * vocab / (rows * width)))
    return flce(h, head.weight, y, bias=head.bias, reduction=reduction, **extra)


def compile_layers(model, on: bool = True, backend: str = "inductor") -> None:
    """``torch.compile`` each decoder layer in place (``compute.compile``); idempotent.

    Regional: with PyTorch's default of inlining built-in modules, the layers (16 at 1B) share one
    compiled graph, built in seconds, where compiling the whole model would trace every layer and the
    chunked LM head. ``dynamic``: batch shapes change from batch to batch, and should not each recompile.
    In place, so state-dict names (and saved checkpoints) stay as they are. ``backend``: a CPU test runs the
    captured graphs with ``eager``, without inductor's C++ build.
    """
    if not on:
        return
    from tokenclean.model.packing import unwrapped

    for layer in unwrapped(model).get_decoder().layers:
        if getattr(layer, "_compiled_call_impl", None) is None:
            layer.compile(dynamic=True, backend=backend)
    unwrapped(model)._tokenclean_compiled = backend


def compiled_head(model):
    """For a model of :func:`compile_layers`, the LM head's chunk loss through ``torch.compile``, else None.

    Compiled, the float32 cast, log-sum-exp and gather of a chunk's logits become one reduction over the
    bf16 logits: a 4,096-row chunk at a 128k vocabulary no longer writes and reads 2 GiB of float32 logits.
    """
    from tokenclean.model.packing import unwrapped

    backend = getattr(unwrapped(model), "_tokenclean_compiled", None)
    return None if backend is None else _compiled_chunk_nll(backend)


def chunk_nll(head, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """float32 NLL of ``y`` under ``head(h)``: one chunk's logits, log-sum-exp in float32 (the PyTorch path)."""
    logits = head(h).float()
    return torch.logsumexp(logits, -1) - logits.gather(-1, y[:, None]).squeeze(-1)


@functools.cache
def _compiled_chunk_nll(backend: str):
    return torch.compile(chunk_nll, dynamic=True, backend=backend)
