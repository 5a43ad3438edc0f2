"""Tokenizer and model construction and loading: the built-in tiny Llama, hub ids, local dirs.

The ``base`` stage writes ``out/base/``: either a full tiny model (weights + tokenizer) or a
``source.json`` naming a hub id / local directory. Every later stage calls :func:`load_base`
on that folder, so switching to a real model is one param (``model.base``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from tokenclean.data.render import PLAIN_TEMPLATE, check_tokenizer
from tokenclean.io import read_json

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM

SPECIALS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
# Chat template of the tiny tokenizer: role tag, content, end-of-turn token.
TINY_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer(texts, vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on ``texts`` with the chat special tokens and template."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|end|>")
    fast.chat_template = TINY_TEMPLATE
    return fast


def tiny_llama(tokenizer, cfg) -> LlamaForCausalLM:
    from transformers import LlamaConfig, LlamaForCausalLM  # here: model classes take ~1.5 s to import

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def base_source(base_dir: str | Path) -> tuple[str, str | None]:
    """Where the base model lives: ``base_dir`` itself, or the hub id / dir named in source.json."""
    base_dir = Path(base_dir)
    src = base_dir / "source.json"
    if src.exists():
        info = read_json(src)
        name = info["name_or_path"]
        # a local model is recorded relative to the project root (models/<dir>, two levels above
        # out/base), so the record is the same on every machine and works from any working directory
        local = base_dir.resolve().parents[1] / name
        return (str(local) if not Path(name).is_absolute() and local.exists() else name), info.get("revision")
    return str(base_dir), None


def load_tokenizer(base_dir: str | Path):
    """The base's tokenizer, with the chat template source.json chose (``model.chat_template``); it
    must have a template and an end-of-sequence token (:func:`tokenclean.data.render.check_tokenizer`)."""
    name, revision = base_source(base_dir)
    tok = AutoTokenizer.from_pretrained(name, revision=revision)
    src = Path(base_dir) / "source.json"
    if src.exists() and read_json(src).get("chat_template") == "plain":
        tok.chat_template = PLAIN_TEMPLATE
    check_tokenizer(tok, f"the tokenizer of {name}")
    if tok.pad_token is None:  # padding never reaches a loss or an artifact; any id will do
        tok.pad_token = tok.eos_token
    return tok


def load_base(base_dir: str | Path, dtype: str = "auto", device: torch.device | None = None):
    device = device or default_device()
    name, revision = base_source(base_dir)
    from transformers import AutoModelForCausalLM  # here: stages that only tokenise start ~1.5 s sooner

    model = AutoModelForCausalLM.from_pretrained(name, revision=revision, dtype=resolve_dtype(dtype, device))
    return model.to(device)


def check_vocab(model, tokenizer) -> None:
    n_emb = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > n_emb:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model embeds only {n_emb}, so some token ids "
            "have no embedding: use the tokenizer that belongs to model.base (or resize the model's embeddings)"
        )
