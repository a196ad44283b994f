"""The inside view in any script (issue #30): text properties of Cyrillic, Greek, CJK, Arabic
and Devanagari text; a bytes vocabulary's positions, properties and guesses; `visualize` of
unicode and bytes runs. The page itself in a browser: tests/test_inside_unicode_browser.py."""

import json
import re
import warnings

import numpy as np
import pytest
from conftest import shared_file

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.inside.glyphs import char_of, guess_labels
from scratchrnn.inside.page import page_data
from scratchrnn.inside.units import properties
from scratchrnn.inside.visualize import visualize_run

BYTES = sr.Vocab.bytes()


def flags(text: str, name: str) -> str:
    """One property of `text` read from its start, one digit per character."""
    return "".join(str(int(v)) for v in properties(text, "")[name])


@pytest.mark.parametrize("text, name, want", [
    # letters of any script; a combining mark belongs to its word (Devanagari vowel signs)
    ("Он ждал.", "in_word", "11011110"),
    ("他说：好", "in_word", "1101"),
    ("नमस्ते दुनिया", "in_word", "1111110111111"),
    ("Он ждал.", "word_position", "12012340"),
    # uppercase by the letter's own case
    ("Ёж Ωμέγα Élan", "uppercase", "1001000001000"),
    # vowels: Latin and Greek with their accents, Cyrillic by the letter (й is no vowel)
    ("йод ёж", "vowel", "010010"),
    ("café ώρα", "vowel", "01010101"),
    ("ОЙ", "vowel", "10"),
    # sentence ends, full-width and others; a closing quote or ideographic space between
    ("好。」　我", "sentence_start", "01110"),
    ("好！我？你．他…她", "sentence_start", "010101010"),
    ("قال؟ لا", "sentence_start", "0001100"),
    ("वह। मैं", "sentence_start", "0011000"),
    # spaces: ideographic, no-break
    ("a\u3000b\u00a0c d", "space", "0101010"),
    # brackets: full-width and CJK
    ("（注【一】）《書》", "bracket_depth", "112210110"),
    ("〈x〉［y］｛z｝", "bracket_depth", "110110110"),
])
def test_text_properties_in_any_script(text, name, want):
    assert flags(text, name) == want


@pytest.mark.parametrize("text, want", [
    ("он: «да» и «нет»", "0000111000011110"),
    ("er: „ja“ und", "000011100000"),  # German: „ opens and “ closes
    ('he: “yes” no', "000011110000"),
    ("他說「好」，『對』。", "0011001100"),
    ("他說「好『對』嗎」。", "0011111100"),  # one kind nested in another: still inside
    ("он: «да „нет“ да» и", "0000111111111111000"),
    ("il: ‹oui› non", "000011110000" "0"),
    ('他說：＂好＂ 嗎', "00011000"),  # the full-width straight quote, read from its neighbours
])
def test_quotes_of_any_script(text, want):
    assert flags(text, "in_quotes") == want


def test_ascii_text_reads_as_before():
    """The sets of any script hold ASCII as they did, so ASCII text is unchanged: the ASCII
    reading of every property, spelled out (tests/test_golden.py pins sr.inspect too)."""
    text = 'He said, "Yes (no) [a]." She\tran!\n"Go," she said; {x} - \'so\'?'
    p = properties(text, "")
    c = np.array([ord(ch) for ch in text])
    letter = ((c >= 65) & (c <= 90)) | ((c >= 97) & (c <= 122))
    assert np.array_equal(p["in_word"], letter)
    assert np.array_equal(p["uppercase"], (c >= 65) & (c <= 90))
    assert np.array_equal(p["vowel"], np.isin(c, [ord(v) for v in "aeiouAEIOU"]))
    assert np.array_equal(p["space"], c == 32)


def test_onegin_reads_as_russian_text():
    """The real file (skipped where it is missing): Pushkin's letters, capitals, vowels,
    «quotations» and sentences are all seen, as they would be in an English book."""
    text = shared_file("onegin_ru.txt").read_text("utf-8")[:60_000]
    p = properties(text, "")
    cyrillic = np.array([0x400 <= ord(ch) < 0x500 for ch in text])
    assert p["in_word"][cyrillic].all()
    assert 0.35 < p["vowel"][cyrillic].mean() < 0.5
    assert 0.01 < p["uppercase"].mean() < 0.1
    for name in ("in_quotes", "sentence_start", "bracket_depth"):
        assert 0 < p[name].mean() < 0.2, name


# ------------------------------------------------------------------------- bytes positions

@pytest.mark.parametrize("raw", [
    "Привет, мир! 你好 😀 é".encode(),
    "Привет".encode()[1:-1],  # cut at both ends
    b"\xed\xbfV\x8f\x07\xe8`\xefL7",  # Python's decoder holds ED BF, then emits three
    b"\xe2\x82A\xf0\x9f\x98",
    bytes(range(256)),
])
def test_each_byte_belongs_to_the_character_decode_gives_it(raw):
    ids = np.frombuffer(raw, np.uint8)
    text = BYTES.decode(ids)
    owner = char_of(BYTES, ids)
    assert owner[0] == 0 and owner[-1] == len(text) - 1
    assert set(np.diff(owner)) <= {0, 1}
    for i, ch in enumerate(text):
        assert raw[owner.tolist().index(i):len(owner) - owner[::-1].tolist().index(i)] \
            .decode("utf-8", "replace") == ch


def test_random_bytes_group_as_decode_groups_them():
    rng = np.random.default_rng(0)
    pieces = list("Пр你😀é a".encode())
    for n in range(400):
        raw = bytes(rng.choice(pieces, 12) if n % 2 else rng.integers(0, 256, 12))
        owner = char_of(BYTES, np.frombuffer(raw, np.uint8))
        text = BYTES.decode(np.frombuffer(raw, np.uint8))
        got = [raw[np.flatnonzero(owner == i)[0]:np.flatnonzero(owner == i)[-1] + 1]
               .decode("utf-8", "replace") for i in range(len(text))]
        assert got == list(text), raw


def test_a_guessed_byte_reads_as_what_it_completes():
    ids = np.frombuffer("aП".encode(), np.uint8)  # 61 D0 9F
    guesses = np.array([[0xD0, 0x62, 0x9F], [0x9F, 0xA0, 0x41], [0x0A, 0xE4, 0x80]])
    assert guess_labels(ids, guesses) == ["D0\u2026", "b", "9F\u2717",
                                          "П", "Р", "41\u2717",
                                          "\n", "E4\u2026", "80\u2717"]


@pytest.fixture(scope="module")
def bytes_inspection():
    model = sr.CharRNN(256, 8, "gru", 1, seed=0)
    return sr.inspect(model, BYTES, "«Привет», — сказал он. 你好 😀\nOK.")


def test_a_bytes_inspection_finds_units_by_the_characters_properties(bytes_inspection):
    insp = bytes_inspection
    assert len(insp.ids) == len(insp.text.encode()) > len(insp.text)
    props = insp.properties()
    assert all(len(v) == len(insp.ids) for v in props.values())
    by_char = properties(insp.text, None)
    owner = char_of(BYTES, insp.ids)
    assert np.array_equal(props["in_quotes"], by_char["in_quotes"][owner])
    assert insp.units(2)  # before: a (T chars) by (T bytes) product that did not fit
    half = insp.head(3)  # the first three bytes: «, then П's first byte
    assert half.text == "«\ufffd" and len(half.ids) == 3


def test_a_bytes_page_says_which_character_each_byte_is_part_of(bytes_inspection):
    insp = bytes_inspection
    data = page_data(insp)
    T, k = len(insp.ids), insp.topk_ids.shape[1]
    assert data["kind"] == "bytes" and data["text"] == insp.text
    assert len(data["char_of"]) == T and data["char_of"][-1] == len(insp.text) - 1
    assert len(data["guess_labels"]) == T * k and len(data["next_labels"]) == T - 1
    assert data["next_labels"][:3] == ["«", "D0\u2026", "П"]  # « is C2 AB
    assert page_data(sr.inspect(sr.CharRNN(96, 4, "gru", 1), sr.Vocab.ascii(), "ab"))[
        "kind"] == "chars"


# ------------------------------------------------------------------------------ visualize

TRAIN = dict(hidden=8, layers=1, max_steps=5, batch=2, seq_len=8, eval_every=5,
             sample_length=0, val_frac=0.2)
RUSSIAN = "«Мой дядя самых честных правил», — сказал он.\nНо, боже мой, какая скука!\n" * 6


def train(tmp_path, text, **config):
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCRATCHRNN_HOME", str(tmp_path / "cache"))
        sr.train(sr.TrainConfig(text=str(tmp_path / "t.txt"), out=str(tmp_path / "run"),
                                **{**TRAIN, **config}), progress=False, log=lambda *a: None)
    return tmp_path / "run"


def data_of(page) -> dict:
    return json.loads(re.search(r'id="sr-data">(.*?)</script>', page.read_text("utf-8"),
                                re.S).group(1))


def test_a_bytes_run_shows_its_excerpt_as_prepared(tmp_path, monkeypatch):
    """The validation split begins inside a character: the page shows the bytes the run holds
    out, not U+FFFD's three bytes re-encoded in their place."""
    run = train(tmp_path, RUSSIAN, vocab="bytes")
    monkeypatch.setenv("SCRATCHRNN_HOME", str(tmp_path / "cache"))
    corpus = sr.load_corpus(str(tmp_path / "t.txt"), "bytes", 0.2)
    data = data_of(visualize_run(run, chars=200))
    assert data["ids"] == corpus.val[:200].tolist()
    assert data["kind"] == "bytes" and data["text"] == BYTES.decode(corpus.val[:200])
    assert data["model_card"]["vocabulary"] == "the 256 byte values of UTF-8 (bytes)"
    assert data["title"].endswith(f": {len(data['ids'])} bytes of the val split of t")


def test_a_unicode_run_shows_its_own_characters(tmp_path, monkeypatch):
    run = train(tmp_path, RUSSIAN + "你好 😀\n")
    monkeypatch.setenv("SCRATCHRNN_HOME", str(tmp_path / "cache"))
    data = data_of(visualize_run(run, text=str(tmp_path / "t.txt"), chars=400))
    assert data["text"] == (RUSSIAN + "你好 😀\n")[:400]
    assert data["model_card"]["vocabulary"].endswith("characters (unicode)")
    assert "in_word" in data["units"] and "uppercase" in data["units"]


def test_visualize_warns_of_characters_the_model_never_saw(tmp_path, monkeypatch, capsys):
    run = train(tmp_path, RUSSIAN)
    monkeypatch.setenv("SCRATCHRNN_HOME", str(tmp_path / "cache"))
    (tmp_path / "other.txt").write_text("Ёлка и 你好.\n" * 3, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the API raises it as any warning
        with pytest.raises(UserWarning, match="not in the model's vocabulary"):
            visualize_run(run, text=str(tmp_path / "other.txt"), out=tmp_path / "x.html")
    assert main(["visualize", str(run), "--text", str(tmp_path / "other.txt"), "--out",
                 str(tmp_path / "page.html")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scratchrnn: warning: ")
    assert "Ё" in err[0] and "你" in err[0] and "not in the model's vocabulary" in err[0]
    assert (tmp_path / "page.html").is_file()


def test_a_bytes_inspection_counts_bytes(bytes_inspection):
    assert re.search(r", \d+ bytes, [\d.]+ nats/byte\)$", repr(bytes_inspection))
