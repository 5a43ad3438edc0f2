"""Evaluation: mean response-token NLL on a held-out split, and greedy-generation accuracy."""

from __future__ import annotations

import re

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria

from tokenclean.data.render import render_text
from tokenclean.method.scoring import score_dataset


def eval_loss(model, ids_list, labels_list, pad_id: int, batch_tokens: int = 16384) -> float:
    nll = score_dataset(model, ids_list, labels_list, pad_id, batch_tokens, chunk=4096, desc="eval loss")
    flat = np.concatenate(nll) if nll else np.zeros(0)
    return float(flat.mean()) if len(flat) else float("nan")


NUMBER = re.compile(r"^[-+]?[$€£]?\s*[-+]?((\d{1,3}(,\d{3})+|\d+)(\.\d*)?|\.\d+)\s*%?$")


def normalise_answer(text: str) -> str:
    """Whitespace collapsed, one trailing period dropped, and a number written as a number: currency
    signs, thousands commas, a percent sign and trailing zeros go, so "$1,200.50" and "1200.5" agree."""
    text = " ".join(text.split()).removesuffix(".").strip()
    if NUMBER.match(text):
        digits = re.sub(r"[$€£%,\s+]", "", text)
        try:
            value = float(digits)
        except ValueError:
            return text
        return str(int(value)) if value.is_integer() else repr(value)
    return text


def extract_answer(text: str, marker: str) -> str:
    """:func:`normalise_answer` of the text after the last ``marker`` (the whole text if absent)."""
    return normalise_answer(text.rsplit(marker, 1)[-1] if marker else text)


class _StepBar(StoppingCriteria):
    """Moves a progress bar one generated token at a time (never stops anything)."""

    def __init__(self, bar):
        self.bar = bar

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        self.bar.update(input_ids.shape[0])
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[list[dict]], batch_size: int, max_new_tokens: int) -> list[str]:
    """Greedy completions of chat prompts (left-padded batches; generate derives positions). The
    progress bar counts generated tokens (at most prompts x ``max_new_tokens``), so it moves within a batch."""
    model.eval()
    device = next(model.parameters()).device
    texts = [render_text(tokenizer, p, add_generation_prompt=True) for p in prompts]
    tokenizer.padding_side = "left"
    outs = []
    with tqdm(total=len(texts) * max_new_tokens, desc="generate", unit="tok", mininterval=2) as bar:
        for s in range(0, len(texts), batch_size):
            enc = tokenizer(texts[s : s + batch_size], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(device)
            gen = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, stopping_criteria=[_StepBar(bar)],
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            )
            outs += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            bar.n = min(s + batch_size, len(texts)) * max_new_tokens  # a batch that ended early counts whole
            bar.refresh()
    return outs


def accuracy(generations: list[str], answers: list[str], marker: str) -> float:
    """Share of generations whose extracted answer equals the reference's (:func:`extract_answer` of both)."""
    hits = [extract_answer(g, marker) == extract_answer(a, marker) for g, a in zip(generations, answers)]
    return float(np.mean(hits)) if hits else float("nan")
