"""Vocabularies of any script (issue 30): the unicode and bytes vocabularies, min_count, the
auto choice, two-byte ids, and what each refuses. End-to-end runs in Russian and Chinese are
tests/test_any_language.py."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchrnn as sr
from scratchrnn.data import prepare
from scratchrnn.data.corpus import choose_vocab
from scratchrnn.data.text import to_unicode
from scratchrnn.data.vocab import BYTES, UNKNOWN, Vocab
from scratchrnn.errors import ScratchRNNError
from scratchrnn.limits import MAX_SYMBOLS

# any text but lone surrogates, which no file decodes to
TEXTS = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_the_texts_own_characters_round_trip(text):
    clean = to_unicode(text)
    assert to_unicode(clean) == clean  # cleaning twice changes nothing
    if clean:
        v = Vocab.from_text(clean)
        ids = v.encode(clean)
        assert ids.dtype == (np.uint8 if len(v) <= 256 else np.uint16)
        assert v.decode(ids) == clean


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_bytes_round_trip_and_stream_whole_characters(text):
    text = to_unicode(text)  # the writer shows a control character as U+FFFD
    v = Vocab.bytes()
    ids = v.encode(text)
    assert ids.tolist() == list(text.encode("utf-8"))
    assert v.decode(ids) == text
    write = v.writer()
    assert "".join(write(int(i)) for i in ids) + write(None) == text


def test_a_bytes_model_writes_no_control_character_but_the_newline(tmp_path, capsys):
    """No cleaned corpus holds one, and an ESC sent to a terminal rewrites what it shows: the
    writer (every sample's text, CLI, server and training) shows each as U+FFFD."""
    write = Vocab.bytes().writer()
    assert [write(b) for b in b"a\x1b[2J\n\x00\t"] == ["a", "\ufffd", "[", "2", "J", "\n",
                                                        "\ufffd", "\ufffd"]
    model = sr.CharRNN(256, 4, "rnn", 1, seed=0)
    model.params["W_y"][:] = 0
    model.params["b_y"][:] = -50
    model.params["b_y"][0x1B] = 50  # the escape byte, every time
    text = sr.sample(model, Vocab.bytes(), "x", 5, argmax=True)
    assert text == "x" + "\ufffd" * 5


def test_a_cut_character_is_a_replacement_never_an_error():
    v = Vocab.bytes()
    ids = v.encode("жx")  # 0xD0 0xB6 0x78
    assert v.decode(ids[:1]) == "\ufffd"
    write = v.writer()
    assert [write(int(i)) for i in ids] == ["", "ж", "x"]
    write = v.writer()
    assert write(int(ids[0])) == "" and write(None) == "\ufffd"
    assert v.decode([0xFF, 0x41]) == "\ufffdA"


def test_rare_characters_become_one_unknown_symbol():
    v = Vocab.from_counts({"a": 5, "b": 5, "ж": 1, "ё": 2}, min_count=2)
    assert v.chars == "ab" + "ё" + UNKNOWN
    assert v.decode(v.encode_coerced("abжё")) == "ab" + UNKNOWN + "ё"
    with pytest.raises(ScratchRNNError, match="characters not in the vocabulary: 'ж' U\\+0436"):
        v.encode("ж")
    assert Vocab.from_counts({"a": 1, "b": 1}).chars == "ab"  # nothing dropped, no unknown


def test_min_count_that_keeps_nothing_says_so():
    with pytest.raises(ScratchRNNError, match=r"`min_count` 10 leaves none of the text's 2 "
                       r"characters \(the most frequent is seen 3 times\); lower it"):
        Vocab.from_counts({"a": 3, "b": 1}, min_count=10)


def test_too_many_distinct_characters_point_to_min_count_or_bytes():
    counts = {chr(0x4E00 + i): 1 for i in range(MAX_SYMBOLS + 1)}  # CJK and beyond
    with pytest.raises(ScratchRNNError, match="raise `min_count` or use `vocab` bytes"):
        Vocab.from_counts(counts)
    kept = Vocab.from_counts({**counts, "a": 2}, min_count=2)
    assert kept.chars == "a" + UNKNOWN


@pytest.mark.parametrize("chars, kind, match", [
    ("ab\ud800", "chars", "half a surrogate pair"),
    ("ab", "bytes", "256 byte values"),
    ("ab", "words", "chars or bytes"),
    ("x" * 3, "chars", "no repeats"),
])
def test_a_vocabulary_refuses(chars, kind, match):
    with pytest.raises(ScratchRNNError, match=match):
        Vocab(chars, kind)


def test_a_prompt_of_unseen_characters_names_each_one():
    v = Vocab.from_text("мой дядя")
    with pytest.raises(ScratchRNNError, match=r"never seen: 'ж' U\+0436, '☃' U\+2603; remove "):
        v.clean_prompt("мой ж ☃")
    with pytest.raises(ScratchRNNError, match="half a surrogate pair"):
        v.clean_prompt("мой \udc80")
    ascii_model = Vocab.ascii()  # transliterates, as the corpus was
    assert ascii_model.decode(ascii_model.clean_prompt("Мой")) == "Moy"
    assert Vocab.bytes().clean_prompt("☃").tolist() == [0xE2, 0x98, 0x83]


def test_prompts_and_corpora_are_cleaned_alike():
    v = Vocab.from_text(to_unicode("Cafe\u0301\tx\r\n"))  # decomposed é, NFC composes it
    assert "\u00e9" in v.chars and "\t" not in v.chars and "\r" not in v.chars
    assert v.decode(v.clean_prompt("Cafe\u0301\r\n")) == "Caf\u00e9\n"


def test_two_byte_ids_train_as_one_byte_ids_do():
    """A vocabulary beyond 256 symbols gives uint16 ids: the model's gathers read them as any
    integer ids (same loss and gradients as int64)."""
    model = sr.CharRNN(300, 8, "gru", 1, dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 300, (2, 7))
    out = [model.loss_and_grads(ids[:, :-1].astype(t), ids[:, 1:].astype(t))
           for t in (np.uint16, np.int64)]
    assert out[0][0] == out[1][0]
    for k, g in out[0][1].items():
        np.testing.assert_array_equal(g, out[1][1][k])


def test_a_prepared_corpus_of_two_byte_ids_is_mapped_and_reused(tmp_path):
    text = "".join(chr(0x4E00 + i) for i in range(400)) * 3 + "。\n"
    src = tmp_path / "poems.txt"
    src.write_text(text, encoding="utf-8")
    dest = tmp_path / "run" / "corpus.u8"
    v, ids, counts = prepare.encode_file(src, "unicode", dest=dest)
    assert len(v) == 402 and ids.dtype == np.uint16 and isinstance(ids, np.memmap)
    assert dest.stat().st_size == 2 * len(ids) and v.decode(ids) == text
    assert counts.sum() == len(ids) and counts[v.chars.index("\n")] == 1
    again = prepare.encode_file(src, "unicode", dest=dest)
    assert again[0] == v and np.array_equal(again[1], ids)
    side = json.loads(dest.with_suffix(".json").read_text())
    side["chars"] += 1  # an index that does not vouch for the file: prepared again
    dest.with_suffix(".json").write_text(json.dumps(side))
    assert np.array_equal(prepare.encode_file(src, "unicode", dest=dest)[1], ids)


def test_a_bytes_checkpoint_loads_as_bytes(tmp_path):
    model = sr.CharRNN(256, 4, "rnn", 1, seed=0)
    cfg = sr.TrainConfig(vocab="bytes", cell="rnn", hidden=4, layers=1, dropout=0.0)
    path = sr.save_checkpoint(tmp_path / "b.npz", model, Vocab.bytes(), cfg.to_dict())
    ck = sr.load_checkpoint(path)
    assert ck.vocab == Vocab.bytes() and ck.vocab.chars == BYTES


@pytest.mark.parametrize("name, want", [("pg98.txt", "ascii"),
                                        ("tinyshakespeare.txt", "ascii"),
                                        ("onegin_ru.txt", "unicode")])
def test_auto_keeps_english_ascii_and_russian_its_own(name, want):
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    assert choose_vocab([path])[0] == want


def test_auto_on_a_small_text(tmp_path):
    for text, want in [("Plain English, with “curly” quotes — and dashes.\n" * 20, "ascii"),
                       ("Всё смешалось в доме Облонских.\n" * 20, "unicode"),
                       ("床前明月光，疑是地上霜。\n" * 20, "unicode"),
                       ("def f(): return '🙂🙃😀'\n" * 20, "unicode"),
                       ("Un café, déjà vu, à la carte.\n" * 20, "unicode")]:
        path = tmp_path / "t.txt"
        path.write_text(text, encoding="utf-8")
        assert choose_vocab([path])[0] == want, text


def test_the_book_default_is_ascii_as_before():
    path = SHARED / "pg98.txt"
    if not path.exists():
        pytest.skip(f"{path} is not here")
    auto, ascii_ = sr.load_corpus(str(path)), sr.load_corpus(str(path), "ascii")
    assert auto.vocab == ascii_.vocab == Vocab.ascii() and auto.vocab_name == "ascii"
    assert np.array_equal(auto.train, ascii_.train)
    assert Path(path).stat().st_size  # the same bytes: nothing of it written


def test_the_checkpoint_records_the_vocabulary_with_counts(tmp_path):
    text = tmp_path / "ru.txt"
    text.write_text("Мой дядя самых честных правил, когда не в шутку занемог.\n" * 40)
    result = sr.train(sr.TrainConfig(text=str(text), out=str(tmp_path / "run"), hidden=8,
                                     layers=1, batch=2, seq_len=16, max_steps=2,
                                     sample_length=0), progress=False, log=lambda *a: None)
    ck = sr.load_checkpoint(result.out)
    assert ck.config["vocab"] == "unicode" and "д" in ck.vocab.chars
    counts = ck.meta["vocab_counts"]
    assert len(counts) == len(ck.vocab) and sum(counts) == len(text.read_text())
    assert counts[ck.vocab.chars.index("д")] == 40 * 3
