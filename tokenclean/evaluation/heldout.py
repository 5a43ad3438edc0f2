"""Evaluation: mean response-token NLL on a held-out split, and greedy-generation accuracy."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from tokenclean.data.render import render_text
from tokenclean.method.scoring import score_dataset


def eval_loss(model, ids_list, labels_list, pad_id: int, batch_tokens: int = 16384) -> float:
    nll = score_dataset(model, ids_list, labels_list, pad_id, batch_tokens, chunk=4096, desc="eval loss")
    flat = np.concatenate(nll) if nll else np.zeros(0)
    return float(flat.mean()) if len(flat) else float("nan")


def extract_answer(text: str, marker: str) -> str:
    """Text after the last ``marker`` (the whole text if absent), whitespace-normalised."""
    return " ".join(text.rsplit(marker, 1)[-1].split()) if marker else " ".join(text.split())


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[list[dict]], batch_size: int, max_new_tokens: int) -> list[str]:
    """Greedy completions of chat prompts (left-padded batches; generate derives positions)."""
    model.eval()
    device = next(model.parameters()).device
    texts = [render_text(tokenizer, p, add_generation_prompt=True) for p in prompts]
    tokenizer.padding_side = "left"
    outs = []
    for s in tqdm(range(0, len(texts), batch_size), desc="generate", unit="batch", mininterval=2):
        enc = tokenizer(texts[s : s + batch_size], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(device)
        gen = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        outs += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return outs


def accuracy(generations: list[str], answers: list[str], marker: str) -> float:
    hits = [extract_answer(g, marker) == " ".join(a.split()) for g, a in zip(generations, answers)]
    return float(np.mean(hits)) if hits else float("nan")
