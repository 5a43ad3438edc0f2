"""Token ids back into readable text, one piece per token, for byte-level BPE and SentencePiece.

Every token stands for a byte string. Byte-level BPE spells bytes with a printable alphabet
(``Ġ`` is a space, ``Ċ`` a newline); SentencePiece marks word starts with ``▁`` and spells
bytes it has no piece for as ``<0xNN>``. A character of several UTF-8 bytes can be split over
tokens, so a sequence is decoded by one incremental UTF-8 decoder: each character belongs to
the token that completes it, and a token that completes none shows :data:`PARTIAL` rather
than a replacement character. Tokens are never decoded one by one with ``tokenizer.decode``,
which would turn every split character into ``�``.
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata

PARTIAL = "◌"  # a token holding only the first bytes of a character that a later token completes
BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
VISIBLE = {" ": "␣", "\t": "⇥", "\r": "␍", "\n": "↵\n"}


def byte_level_alphabet() -> dict[str, int]:
    """Printable stand-in character -> byte, as byte-level BPE spells bytes (GPT-2's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    for n, b in enumerate(b for b in range(256) if b not in chars):
        chars[b] = chr(256 + n)
    return {c: b for b, c in chars.items()}


def decoder_kinds(tokenizer) -> set[str]:
    """Decoder types of a fast tokenizer (``ByteLevel``, ``Metaspace``, ``ByteFallback``, ...)."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    return _walk(json.loads(decoder.__getstate__())) if decoder is not None else set()


def _walk(spec: dict) -> set[str]:
    if spec.get("type") == "Sequence":
        return set().union(*(_walk(d) for d in spec.get("decoders", [])))
    if spec.get("type") == "Replace" and spec.get("pattern", {}).get("String") == "▁":
        return {"Metaspace"}  # SentencePiece as converted by transformers: Replace ▁ -> space
    return {spec.get("type")}


class TokenText:
    """Byte strings and display pieces of a tokenizer's tokens."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.literal = {int(i): t.content for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
        kinds = decoder_kinds(tokenizer)
        self.alphabet = byte_level_alphabet() if "ByteLevel" in kinds else None
        self.metaspace = "Metaspace" in kinds
        self.known = bool(kinds & {"ByteLevel", "Metaspace", "ByteFallback"})
        self._bytes: dict[int, bytes] = {}

    def token_bytes(self, token_id: int) -> bytes:
        token_id = int(token_id)
        if token_id not in self._bytes:
            self._bytes[token_id] = self._spell(token_id)
        return self._bytes[token_id]

    def _spell(self, token_id: int) -> bytes:
        if token_id in self.literal:  # added and special tokens are literal text
            return self.literal[token_id].encode()
        token = self.tokenizer.convert_ids_to_tokens(token_id)
        if token is None:
            return f"<id {token_id}>".encode()
        if self.alphabet is not None:
            return bytes(self.alphabet[c] for c in token) if all(c in self.alphabet for c in token) else token.encode()
        if m := BYTE_PIECE.fullmatch(token):
            return bytes([int(m.group(1), 16)])
        if self.metaspace:
            return token.replace("▁", " ").encode()
        return token.encode() if self.known else self.tokenizer.convert_tokens_to_string([token]).encode()

    def is_special(self, token_id: int) -> bool:
        return int(token_id) in self.literal

    def pieces(self, ids) -> list[str]:
        """One text piece per token; their concatenation is the sequence's text."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out = [decoder.decode(self.token_bytes(i)) for i in ids]
        tail = decoder.decode(b"", final=True)  # a character the sequence never completes
        if tail and out:
            out[-1] += tail
        return [p if p or not self.token_bytes(i) else PARTIAL for p, i in zip(out, ids)]

    def label(self, token_id: int) -> str:
        """One token on its own (statistics tables): whitespace visible, stray bytes as ``\\xNN``."""
        return visible(self.token_bytes(token_id).decode("utf-8", errors="backslashreplace"), newline="↵")


def visible(text: str, spaces: bool = True, newline: str = VISIBLE["\n"]) -> str:
    """Whitespace and control characters made visible (a newline keeps its line break unless told)."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append(newline)
        elif ch in VISIBLE and (spaces or ch != " "):
            out.append(VISIBLE[ch])
        elif unicodedata.category(ch) == "Cc":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)
