"""Hand-built runs for the audit tests: small tables written where the pipeline writes them,
and two tokenizers built locally (byte-level BPE, and SentencePiece-style with byte fallback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from tokenclean import columns as C
from tokenclean.io import write_table
from tokenclean.layout import round_paths
from tokenclean.model.modeling import train_tokenizer

BPE_TEXTS = ["Sure: apple=kiru river=bola", "Here you go: café=naïve", "日本語 テキスト 🙂 ok",
             "line one\nline two\n", "Of course: stone=tepala"] * 8


def bpe_tokenizer() -> PreTrainedTokenizerFast:
    """The project's own byte-level BPE (the tiny base's), trained on a few lines; multi-byte
    characters stay rare enough that many of them are split over two or three tokens."""
    return train_tokenizer(BPE_TEXTS, vocab_size=300)


def sentencepiece_tokenizer() -> PreTrainedTokenizerFast:
    """SentencePiece style: unigram pieces with the ▁ word marker, bytes it lacks as <0xNN>."""
    pieces = ["<unk>", "<|end|>", "▁", "▁hello", "▁wor", "ld", "▁ca", "f", "é", "!", "\n"]
    pieces += [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.Unigram([(p, -1.0 - i / 100) for i, p in enumerate(pieces)], unk_id=0, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|end|>")


def chat_sample(tok, sample_id: str, prompt: str, response: str, keep=None, scores=None, kinds=None) -> dict:
    """A rendered chat of the tiny template; the response and its end-of-turn token are labelled.
    ``keep``: a list, a bool for every token, or by default every third token dropped."""
    head = tok(f"<|user|>\n{prompt}<|end|>\n<|assistant|>\n", add_special_tokens=False)["input_ids"]
    resp = tok(response, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|end|>")]
    tail = tok("\n", add_special_tokens=False)["input_ids"]
    n = len(resp)
    return {C.SAMPLE_ID: sample_id, C.INPUT_IDS: head + resp + tail,
            C.LABELS: [C.IGNORE] * len(head) + resp + [C.IGNORE] * len(tail),
            C.KINDS: [-1] * len(head) + list(kinds if kinds is not None else [1] * n) + [-1] * len(tail),
            C.KEEP: [keep] * n if isinstance(keep, bool) else list(keep or [j % 3 != 1 for j in range(n)]),
            C.SCORES: list(scores if scores is not None else np.linspace(-1, 2, n).round(3))}


def write_round(root: Path, name: str, samples: list[dict], score_order=None) -> None:
    """Data, scores and mask of one round at the paths the pipeline uses (scores optionally in another row order)."""
    paths = round_paths(name)
    ids = [s[C.SAMPLE_ID] for s in samples]
    lists = {C.INPUT_IDS: pa.int32(), C.LABELS: pa.int32(), C.KINDS: pa.int8()}
    columns = {c: pa.array([s[c] for s in samples], pa.list_(t)) for c, t in lists.items()}
    write_table(pa.table({C.SAMPLE_ID: ids, **columns}), root / paths.data)
    write_table(pa.table({C.SAMPLE_ID: ids, C.KEEP: pa.array([s[C.KEEP] for s in samples], pa.list_(pa.bool_()))}),
                root / paths.keep)
    order = score_order or range(len(samples))
    write_table(pa.table({C.SAMPLE_ID: [ids[i] for i in order],
                          C.SCORES: pa.array([samples[i][C.SCORES] for i in order], pa.list_(pa.float32()))}),
                root / paths.scores)


def fixture_samples(tok) -> list[dict]:
    return [
        chat_sample(tok, "s0", "Translate: apple river", "Sure: apple=kiru river=bola"),
        chat_sample(tok, "s1", "Say it in Japanese", "日本語 café 🙂\nok"),
        chat_sample(tok, "s2", "Nothing kept here", "Of course", keep=False),
    ]


def build_run(root: Path, tok=None) -> Path:
    """A fixed-model run of three samples, with its tokenizer in out/base."""
    tok = tok or bpe_tokenizer()
    tok.save_pretrained(root / "out" / "base")
    write_round(root, "fixed", fixture_samples(tok))
    return root
