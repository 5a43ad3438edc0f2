"""Attention that stays inside each sample of a packed row, with no padding and no mask.

A packed row (:func:`tokenclean.model.batching.collate_packed`) carries only position ids.
Everywhere, transformers reads the sample starts from them (a position that does not follow
its predecessor by one) and builds a block-diagonal causal mask for SDPA: exact, but for a row
of T tokens it holds a T x T mask and attends over all T^2/2 pairs (T = 32k: a 1 GiB mask,
and ~40x the attention work of 800 samples of 40 tokens).

On CUDA, :func:`use_varlen` routes attention to PyTorch's variable-length flash attention
(``torch.nn.attention.varlen``): every sample attends only to itself, sum(L_i^2)/2 pairs, with
no mask at all. Right-padded batches without a mask take the same kernel with one sequence per
row (a causal row's padding sits after its real tokens, so they never see it).
"""

from __future__ import annotations

import functools
import inspect
import logging

import torch

log = logging.getLogger(__name__)

NAME = "tokenclean_varlen"


def unwrapped(model):
    """The transformers model itself, inside a PEFT wrapper or not."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _varlen():
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


@functools.cache
def _varlen_options() -> frozenset[str]:
    """The keyword arguments this PyTorch's varlen kernel takes (they changed between releases); read once,
    not in every layer of every pass."""
    return frozenset(inspect.signature(_varlen()).parameters)


def varlen_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' attention signature: ``query`` (batch, heads, seq, dim) -> (batch, seq, heads, dim)."""
    if attention_mask is not None:  # a masked batch: the exact reference path
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    rows, heads, width, dim = query.shape
    if "cu_seq_lens_q" in kwargs:  # a packed row: its sample starts, computed once per batch
        cu, longest = kwargs["cu_seq_lens_q"], kwargs["max_length_q"]
    else:  # padded rows: one sequence per row (a causal row's padding trails its tokens)
        cu, longest = torch.arange(0, (rows + 1) * width, width, device=query.device, dtype=torch.int32), width
    q, k, v = (t.transpose(1, 2).reshape(rows * width, t.shape[1], dim) for t in (query, key, value))
    params = _varlen_options()
    extra = {"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True}
    if "scale" in params:
        extra["scale"] = scaling
    if "enable_gqa" in params:
        extra["enable_gqa"] = k.shape[1] != heads
    elif k.shape[1] != heads:  # an older kernel without grouped-query support: repeat the key/value heads
        k, v = (t.repeat_interleave(heads // t.shape[1], dim=1) for t in (k, v))
    out = _varlen()(q, k, v, cu, cu, longest, longest, **extra)
    return out.reshape(rows, width, heads, dim), None


def _no_mask(*args, **kwargs):
    return None


def use_varlen(model) -> bool:
    """Route ``model``'s attention to :func:`varlen_attention` on CUDA; whether it was.

    Off CUDA, or without the kernel (PyTorch before 2.10), the model keeps its attention and
    packed rows take transformers' block-diagonal mask.
    """
    inner = unwrapped(model)
    if next(model.parameters()).device.type != "cuda":
        return False
    if inner.config._attn_implementation == NAME:
        return True
    if _varlen() is None:
        log.warning("this PyTorch has no varlen attention: packed rows use a block-diagonal mask (slower)")
        return False
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, varlen_attention)
    AttentionMaskInterface.register(NAME, _no_mask)
    inner.set_attn_implementation(NAME)
    return True
