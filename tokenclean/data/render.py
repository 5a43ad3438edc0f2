"""Rendering chats to ``input_ids`` and ``labels``: the assistant turns are learned, nothing else.

The tokenizer's chat template renders the conversation (its own, or the documented plain
template when ``model.chat_template: plain``, see :func:`tokenclean.model.modeling.load_tokenizer`). \
Assistant spans are found in *characters* by rendering the
conversation prefix by prefix, then mapped to tokens through the fast tokenizer's offsets,
so the labels follow the model's real tokenisation of the whole text.
"""

from __future__ import annotations

import numpy as np

from tokenclean.columns import IGNORE
from tokenclean.data.formats import DataError

# model.chat_template: plain. ``eos`` closes every turn.
PLAIN_TEMPLATE = (
    "{% for m in messages %}### {{ m['role'] | capitalize }}:\n{{ m['content'] }}{{ eos_token }}\n\n{% endfor %}"
    "{% if add_generation_prompt %}### Assistant:\n{% endif %}"
)


def check_tokenizer(tokenizer, where: str = "the tokenizer") -> None:
    """A tokenizer can render SFT data only with a chat template and an end-of-sequence token."""
    if tokenizer.eos_token is None:
        raise DataError(f"{where} has no end-of-sequence token, so a response could never end: "
                        "set eos_token in its tokenizer_config.json")
    if not tokenizer.chat_template:
        raise DataError(f"{where} has no chat template: give it one (chat_template in tokenizer_config.json), "
                        "or set model.chat_template: plain to render '### Role:' turns closed by its eos token")


def template_of(tokenizer) -> str:
    check_tokenizer(tokenizer)
    return tokenizer.chat_template


def render_text(tokenizer, messages, add_generation_prompt: bool = False) -> str:
    from jinja2 import TemplateError

    try:
        return tokenizer.apply_chat_template(messages, chat_template=template_of(tokenizer), tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except TemplateError as e:  # a template's own refusal (raise_exception) or a template bug
        raise DataError(f"the chat template cannot render this conversation: {e}") from None


def assistant_spans(tokenizer, messages) -> tuple[str, list[tuple[int, int, int]]]:
    """Full text and, per assistant turn, (content start, span end, message index) in characters.

    A span runs from the content's first character to the end of the turn's rendering with
    trailing whitespace removed, so it covers the content and the end-of-turn token.
    """
    full = render_text(tokenizer, messages)
    spans = []
    for j, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render_text(tokenizer, messages[:j], add_generation_prompt=True)
        upto = render_text(tokenizer, messages[: j + 1])
        if not full.startswith(upto) or not upto.startswith(before):
            raise DataError("the chat template does not render conversations prefix by prefix; "
                            "use a template that does")
        start = upto.find(m["content"], len(before))
        if start < 0:
            raise DataError("the chat template changes assistant content; cannot locate the response to label it")
        spans.append((start, len(upto.rstrip()), j))
    return full, spans


def render(tokenizer, messages, max_len: int, content_kinds: list | None = None):
    """``(input_ids, labels, kinds, truncated)`` as int32/int32/int8 arrays.

    ``content_kinds`` are ``[start, end, kind]`` character spans of the *last* assistant
    content (synthetic data); tokens after the content (end of turn) count as boilerplate.
    """
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = np.asarray(enc["input_ids"], np.int32), enc["offset_mapping"]
    labels = np.full(len(ids), IGNORE, np.int32)
    kinds = np.full(len(ids), -1, np.int8)
    last = spans[-1][0] if spans else None
    for t, (a, b) in enumerate(offsets):
        for start, end, _ in spans:
            if b > start and a < end and t > 0:
                labels[t] = ids[t]
                if content_kinds is not None and start == last:
                    kinds[t] = _kind_at(content_kinds, b - 1 - start)
    truncated = len(ids) > max_len
    return ids[:max_len], labels[:max_len], kinds[:max_len], truncated


def _kind_at(content_kinds, offset: int) -> int:
    for start, end, kind in content_kinds:
        if start <= offset < end:
            return kind
    return 1  # past the content: the end-of-turn token, boilerplate
