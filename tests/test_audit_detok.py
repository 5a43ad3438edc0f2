"""Token ids back into text: byte-level BPE and SentencePiece markers, split characters, visible whitespace."""

from audit_fixtures import bpe_tokenizer, sentencepiece_tokenizer

from tokenclean.audit.token_text import PARTIAL, TokenText, decoder_kinds, visible


def test_byte_level_pieces_attribute_each_character_to_the_token_completing_it():
    tok, text = bpe_tokenizer(), "日本語 café 🙂\nok"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    tt = TokenText(tok)
    pieces = tt.pieces(ids)
    assert PARTIAL in pieces, "precondition: some character is split over tokens"
    assert "".join(p for p in pieces if p != PARTIAL) == text == tok.decode(ids)
    for i in range(len(ids)):  # text up to token i = every character whose last byte is in tokens 0..i
        done = b"".join(tt.token_bytes(t) for t in ids[: i + 1]).decode("utf-8", errors="ignore")
        assert "".join(p for p in pieces[: i + 1] if p != PARTIAL) == done
        assert (pieces[i] == PARTIAL) == (len(done) == len("".join(p for p in pieces[:i] if p != PARTIAL)))


def test_byte_level_markers_become_spaces_and_newlines():
    tok = bpe_tokenizer()
    ids = tok("line one\nline two", add_special_tokens=False)["input_ids"]
    assert any("Ġ" in t for t in tok.convert_ids_to_tokens(ids)), "precondition: Ġ marks a space"
    tt = TokenText(tok)
    assert "".join(tt.pieces(ids)) == "line one\nline two"
    assert decoder_kinds(tok) == {"ByteLevel"}


def test_sentencepiece_word_markers_and_byte_fallback():
    tok, text = sentencepiece_tokenizer(), "hello world café!\n✓"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    tokens = tok.convert_ids_to_tokens(ids)
    assert "▁wor" in tokens and "<0xE2>" in tokens, "precondition: word markers and byte fallback in use"
    tt = TokenText(tok)
    pieces = tt.pieces(ids)
    assert {"Metaspace", "ByteFallback"} <= decoder_kinds(tok)
    # the first word's marker is shown as the space it stands for; the tokenizer's decode strips it
    assert "".join(p for p in pieces if p != PARTIAL) == " " + text and tok.decode(ids) == text
    assert pieces[-3:] == [PARTIAL, PARTIAL, "✓"] and "\ufffd" not in "".join(pieces)
    assert tt.label(tok.convert_tokens_to_ids("<0xE2>")) == "\\xe2"


def test_special_tokens_are_literal_and_whitespace_is_visible():
    tok = bpe_tokenizer()
    tt = TokenText(tok)
    end = tok.convert_tokens_to_ids("<|end|>")
    assert tt.pieces([end]) == ["<|end|>"] and tt.is_special(end)
    assert visible("a b\n\tc\x07") == "a␣b↵\n⇥c\\x07"
    assert visible("a b\n", spaces=False, newline="↵") == "a b↵"
    assert tt.label(tok.convert_tokens_to_ids("Ġ")) == "␣"
