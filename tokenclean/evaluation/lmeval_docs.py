"""Documents of the offline default's own lm-eval tasks (``lm_eval_tasks/zorbish_*.yaml``).

One document per held-out sample (one English word to translate), read by two tasks:
``zorbish_gen`` generates greedily after the context and must reproduce ``answer`` exactly
(top-1 over the whole vocabulary), ``zorbish_mc`` picks among ``choices`` by log-likelihood
(``gold`` is the right one's index). The context is the
conversation rendered with the model's own chat template up to the ``word=`` that precedes
the answer, exactly the text training conditioned on; the choices are the right invented word
and up to ``CHOICES - 1`` others of the lexicon, each followed by the end-of-turn text that
closes the reply in training, so a word that is a prefix of another gains nothing from
stopping early. Log-likelihood accuracy then measures the learned mapping alone, whatever the
model does with the lead-in and the format when it generates freely.

Why not the whole lexicon: lm-eval runs the context once per choice, so 48 choices cost the
default data 9,600 forward passes per evaluation (about 25 s on 2 CPU cores, times every
round and experiment of the comparison); 10 choices keep it near 5 s at a chance level of
0.1. The others are drawn from the sample id, so every model is asked the same questions.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tokenclean.data.formats import DataError
from tokenclean.data.render import assistant_spans
from tokenclean.io import atomic_path

CHOICES = 10  # per document, the right word included (fewer when the lexicon is smaller)


def translation_doc(tokenizer, sample: dict, targets: list[str]) -> dict:
    """Multiple-choice document of one sample whose last reply ends ``...word=<invented word>``."""
    messages = sample["messages"]
    full, spans = assistant_spans(tokenizer, messages)
    start, end, _ = spans[-1]
    content = messages[-1]["content"]
    cut = content.rfind("=") + 1
    answer = content[cut:]
    if not cut or answer not in targets:
        raise DataError(f"sample {sample['id']}: reply {content!r} does not end with '=' and a word of the lexicon")
    suffix = full[start + len(content) : end]  # the end-of-turn text the model learned after the word
    others = [t for t in targets if t != answer]
    picked = set(random.Random(f"choices-{sample['id']}").sample(others, min(CHOICES - 1, len(others)))) | {answer}
    words = [t for t in targets if t in picked]  # lexicon order: where the right word sits tells nothing
    return {
        "id": sample["id"],
        "context": full[: start + cut],
        "choices": [w + suffix for w in words],
        "gold": words.index(answer),
        "answer": answer,
    }


def translation_docs(tokenizer, samples: list[dict], targets: list[str]) -> list[dict]:
    return [translation_doc(tokenizer, s, list(targets)) for s in samples]


def write_docs(docs: list[dict], path: str | Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
