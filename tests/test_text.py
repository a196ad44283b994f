"""Cleaning, vocabularies and the real book."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchrnn import Vocab, clean
from scratchrnn.data.corpus import load_corpus, split
from scratchrnn.data.text import PRINTABLE, decode, decode_chunks, printable, strip_gutenberg
from scratchrnn.errors import ScratchRNNError

ASCII = Vocab.ascii()


def test_vocabularies():
    assert len(Vocab.ascii()) == 96 and Vocab.ascii().chars[0] == "\n"
    assert Vocab.seed().chars == "".join(chr(c) for c in range(32, 127))
    assert Vocab.from_text("banana").chars == "abn"
    with pytest.raises(ScratchRNNError):
        Vocab.named("klingon")


def test_decode_bom_and_cp1252():
    assert decode("\ufeffHi".encode()) == "Hi"
    with pytest.warns(UserWarning, match="cp1252"):
        assert decode(b"caf\xe9") == "caf\u00e9"
    assert decode(b"caf\xe9", encoding="latin-1") == "caf\u00e9"
    with pytest.raises(ScratchRNNError, match="not valid utf-8"):
        decode(b"caf\xe9", encoding="utf-8")
    with pytest.raises(ScratchRNNError, match="binary"):
        decode(b"\x89PNG\x00\x00")


@pytest.mark.parametrize("raw,expected", [
    ("a\r\nb\rc\n", "a\nb\nc\n"),
    ("\u201cHi,\u201d she said\u2014\u2018no\u2019.", "\"Hi,\" she said--'no'."),
    ("caf\u00e9\tna\u00efve", "cafe naive"),
    ("x\x07y", "x y"),
])
def test_clean(raw, expected):
    assert clean(raw, ASCII) == expected


def test_seed_vocab_turns_newlines_into_spaces():
    assert clean("one\r\ntwo", Vocab.seed()) == "one two"


@pytest.mark.parametrize("marker", ["THE", "THIS"])
def test_strip_gutenberg(marker):
    text = (f"Licence blah\n*** START OF {marker} PROJECT GUTENBERG EBOOK A TALE\nOF TWO "
            f"CITIES ***\n\nIt was the best\n\n*** END OF {marker} PROJECT GUTENBERG EBOOK A "
            "TALE OF TWO CITIES ***\nmore licence")
    assert strip_gutenberg(text) == "It was the best"
    assert strip_gutenberg("no markers here\n") == "no markers here\n"


@given(st.binary(max_size=300))
def test_clean_any_bytes(raw):
    try:
        text = decode(raw, encoding="latin-1")
    except ScratchRNNError:  # NUL bytes: refused as binary
        return
    for vocab in (ASCII, Vocab.seed()):
        out = clean(text, vocab)
        assert set(out) <= set(vocab.chars)
        assert clean(out, vocab) == out  # idempotent


@given(st.text(max_size=200))
def test_clean_any_text_is_idempotent_and_in_vocab(text):
    out = clean(text, ASCII)
    assert set(out) <= set(ASCII.chars)
    assert clean(out, ASCII) == out


@given(st.text(alphabet=ASCII.chars, max_size=200))
def test_vocab_round_trip(text):
    for vocab in (ASCII, Vocab.from_text(text) if text else ASCII):
        ids = vocab.encode(text)
        assert ids.dtype == np.uint8
        assert vocab.decode(ids) == text


@given(st.text(max_size=50))
def test_prompt_encoder_never_crashes(prompt):
    try:
        ids = ASCII.clean_prompt(prompt)
    except ScratchRNNError as e:
        assert "characters" in str(e)
    else:
        assert ids.dtype == np.uint8 and (ids < len(ASCII)).all()


def test_prompt_errors_name_the_characters():
    vocab = Vocab.from_text("abc ")
    with pytest.raises(ScratchRNNError, match="'z'"):
        vocab.clean_prompt("abz")
    assert vocab.decode(vocab.clean_prompt("\u00e1b")) == "ab"  # cleaned like the corpus


def test_split_is_contiguous():
    ids = np.arange(100, dtype=np.uint8)
    tr, va, te = split(ids, 0.1, 0.05)
    assert (len(tr), len(va), len(te)) == (85, 10, 5)
    assert np.array_equal(np.concatenate([tr, va, te]), ids)


def test_real_book(book):
    corpus = load_corpus(book)
    text = corpus.vocab.decode(np.concatenate([corpus.train, corpus.val, corpus.test]))
    assert text.startswith("A TALE OF TWO CITIES") or "It was the best of times" in text[:5000]
    assert "It was the best of times, it was the worst of times" in text
    assert "Project Gutenberg" not in text[-20000:]  # licence gone
    assert "\r" not in text and "\u201c" not in text and set(text) <= set(PRINTABLE + "\n")
    assert '"' in text and "--" in text  # curly quotes and em dashes transliterated
    assert 700_000 < len(text) < 800_000
    seed = load_corpus(book, "seed")
    assert len(seed.vocab) == 95 and "\n" not in seed.vocab.chars


@given(st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
               max_size=80), st.integers(1, 9))
def test_decode_chunks_joins_characters_cut_between_chunks(text, size):
    raw = ("\ufeff" + text).encode("utf-8")
    chunks = [raw[i:i + size] for i in range(0, len(raw), size)]
    assert "".join(decode_chunks(chunks)) == text  # a BOM cut in two is still one BOM


def test_decode_chunks_names_the_byte_in_the_file():
    """The offset is the file's, not the chunk's."""
    chunks = [b"x" * 100, b"y" * 50 + b"\xff"]
    with pytest.raises(ScratchRNNError, match=r"not valid utf-8 \(byte 150\)"):
        list(decode_chunks(chunks, "utf-8"))
    with pytest.raises(ScratchRNNError, match=r"not valid utf-8 \(byte 4\)"):
        list(decode_chunks([b"abc", b"d\xc3"], "utf-8"))  # the file ends in a character


def test_decode_chunks_looks_for_nul_in_the_first_64_kB_only():
    with pytest.raises(ScratchRNNError, match="binary"):
        list(decode_chunks([b"a" * 65535, b"\x00"]))
    assert "".join(decode_chunks([b"a" * 65536, b"\x00"])) == "a" * 65536 + "\x00"


def test_decode_chunks_goes_on_in_cp1252_from_the_first_bad_chunk():
    with pytest.warns(UserWarning, match="cp1252"):
        out = list(decode_chunks([b"caf\xc3", b"\xa9 ", b"na\xefve"]))
    assert out == ["caf", "\u00e9 ", "na\u00efve"]


@pytest.mark.parametrize("name,shown", [("book", "book"), ("\udcff\udcfe", "__"),
                                        ("caf\u00e9\n", "caf\u00e9_"), ("a\x1bb", "a_b")])
def test_printable_names(name, shown):
    assert printable(name) == shown and printable(name).isprintable()


@pytest.mark.parametrize("encoding", ["klingon", "rot13", "base64", "zlib"])
def test_codecs_that_do_not_decode_text_are_unknown_encodings(encoding):
    with pytest.raises(ScratchRNNError, match=f"unknown encoding '{encoding}'|'{encoding}' is "
                       "not a text encoding"):
        decode(b"abcd", encoding)
