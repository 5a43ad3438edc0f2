"""Deterministic offline data: an instruction task plus a pretraining corpus for the tiny base.

The task is translation into an invented language ("Zorbish"): each of ``lexicon`` English
words maps to one invented word. Every response token has a ground-truth kind:

- answer: the invented word after each ``word=``. The base never sees the mapping (its
  pretraining pairs English words with *random* invented words), so it cannot know the
  answers before fine-tuning, though it knows the format and the vocabulary.
- boilerplate: the lead-in ("Sure:", "Here you go:"), each echoed ``word=`` and the
  end-of-turn token, all taught to the base by pretraining chats in the same format.
- noise (pool only): a wrong invented word in place of the right one (label noise). The
  base saw exactly this kind of pairing at random, so it is no more surprised by a wrong
  word than by the right one; the reference, which knows the right word, is far more.

The warm-up and evaluation splits are clean. Kinds are stored as character spans in
``meta.spans``, outside the model inputs; ``prepare`` maps them onto tokens.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tokenclean.columns import ANSWER_KIND, BOILERPLATE_KIND, NOISE_KIND

ENGLISH = (
    "apple river stone cloud horse bread light water green house table winter dog fire "
    "garden window silver music dream paper forest mountain ocean road king bird flower "
    "sun moon star sand glass tree salt milk rain snow iron gold bell ship door wheel "
    "book hand field storm candle bridge market lamp coin rope wolf bear fox owl hill "
    "lake island tower valley cave path voice song heart mind chair shoe hat coat ring"
).split()
LEAD_INS = ["Sure", "Here you go", "Of course", "Answer"]
TASK = "Translate to Zorbish:"
_CONS, _VOWELS = "bdfgklmnprstvz", "aeiou"


@dataclass(frozen=True)
class Lexicon:
    source: list[str]
    target: list[str]

    def translate(self, words: list[str]) -> list[str]:
        table = dict(zip(self.source, self.target))
        return [table[w] for w in words]


def make_lexicon(size: int, seed: int) -> Lexicon:
    if size > len(ENGLISH):
        raise ValueError(f"synthetic.lexicon is {size}, at most {len(ENGLISH)} words are built in")
    rng = random.Random(f"lexicon-{seed}")
    target: set[str] = set()
    while len(target) < size:
        n = rng.choice([2, 2, 3])
        target.add("".join(rng.choice(_CONS) + rng.choice(_VOWELS) for _ in range(n)))
    ordered = sorted(target)  # never iterate a set: its order changes with the process's hash seed
    rng.shuffle(ordered)
    return Lexicon(ENGLISH[:size], ordered)


def _response(rng, lead: str, src: list[str], tgt: list[str], lex: Lexicon, noise: bool):
    """Response ``"<lead>: w1=t1 w2=t2 ..."`` and its (start, end, kind) character spans.

    Each source word is echoed (boilerplate: the base copies it) and followed by its
    invented word (answer), or, in a noisy sample, sometimes by a wrong one (noise).
    """
    pieces = [(lead + ":", BOILERPLATE_KIND)]
    noisy = set(rng.sample(range(len(src)), k=min(len(src), rng.randint(1, 2)))) if noise else set()
    for i, (w, t) in enumerate(zip(src, tgt)):
        pieces.append((f" {w}=", BOILERPLATE_KIND))
        if i in noisy:
            pieces.append((rng.choice([x for x in lex.target if x != t]), NOISE_KIND))
        else:
            pieces.append((t, ANSWER_KIND))
    text, spans = "", []
    for piece, kind in pieces:
        spans.append([len(text), len(text) + len(piece), kind])
        text += piece
    return text, spans


def task_sample(rng: random.Random, lex: Lexicon, noise: bool, idx: str, max_words: int = 8) -> dict:
    src = [rng.choice(lex.source) for _ in range(rng.randint(1, max_words))]
    tgt = lex.translate(src)
    text, spans = _response(rng, rng.choice(LEAD_INS), src, tgt, lex, noise)
    return {
        "id": idx,
        "messages": [{"role": "user", "content": f"{TASK} {' '.join(src)}"}, {"role": "assistant", "content": text}],
        "meta": {"answer": " ".join(f"{w}={t}" for w, t in zip(src, tgt)), "spans": spans},
    }


def sft_splits(cfg) -> dict[str, list[dict]]:
    """Warm-up (clean), pool (a share ``cfg.noise`` of samples noisy) and eval (clean) splits.

    Evaluation prompts hold one word each, so accuracy measures the learned mapping, not a
    tiny model's ability to echo a long list in order.
    """
    lex = make_lexicon(cfg.lexicon, cfg.seed)
    rng = random.Random(f"sft-{cfg.seed}")
    out = {}
    for split, n in (("warmup", cfg.warmup), ("pool", cfg.pool), ("eval", cfg.eval)):
        out[split] = [
            task_sample(rng, lex, split == "pool" and rng.random() < cfg.noise, f"{split}-{i:06d}",
                        max_words=1 if split == "eval" else 8)
            for i in range(n)
        ]
    return out


def pretrain_chats(cfg) -> list[list[dict]]:
    """Chats of other tasks with the same lead-ins, invented words and noise, never the mapping."""
    lex = make_lexicon(cfg.lexicon, cfg.seed)
    rng = random.Random(f"pretrain-{cfg.seed}")
    chats = []
    for _ in range(cfg.pretrain_docs):
        src = [rng.choice(lex.source) for _ in range(rng.randint(1, 8))]
        if rng.random() < 0.3:  # copy: the lead-ins, echoing words, where a reply ends
            words, prompt = [w for w in src], f"Repeat: {' '.join(src)}"
        else:  # English answered by *random* invented words: the format and vocabulary, never the mapping
            words, prompt = [rng.choice(lex.target) for _ in src], f"{TASK} {' '.join(src)}"
        text, _ = _response(rng, rng.choice(LEAD_INS), src, words, lex, noise=False)
        chats.append([{"role": "user", "content": prompt}, {"role": "assistant", "content": text}])
    return chats
