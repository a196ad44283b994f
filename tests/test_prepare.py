"""Streaming preparation gives exactly what cleaning the whole text gives, in memory or as a
memory-mapped file, whatever the chunk size."""

import importlib

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn import prepare
from scratchrnn.data import load_corpus

TEXT = ("Licence\r\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\r\n\r\n"
        + "\u201cIt was the best of times,\u201d caf\u00e9\u2014na\u00efve.\r\nLine\rtwo\t!\r\n"
        * 50 + "*** END OF THE PROJECT GUTENBERG EBOOK X ***\r\nlicence text\r\n")


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(TEXT.encode("utf-8-sig"))
    return path


@pytest.mark.parametrize("vocab", ["ascii", "seed", "corpus"])
@pytest.mark.parametrize("chunk", [37, 1000, prepare.CHUNK_BYTES])
def test_chunked_equals_whole(text_file, vocab, chunk, monkeypatch):
    monkeypatch.setattr(prepare, "CHUNK_BYTES", chunk)
    want_text = sr.clean(TEXT, sr.Vocab.named("ascii" if vocab == "corpus" else vocab))
    v, ids = prepare.encode_file(text_file, vocab)
    assert v.decode(ids) == want_text
    if vocab == "corpus":
        assert v.chars == "".join(sorted(set(want_text)))


def test_memory_mapped_file_is_reused(text_file, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "CHUNK_BYTES", 64)
    monkeypatch.setattr("scratchrnn.data.MEMMAP_BYTES", 10)  # anything counts as large
    a = load_corpus(text_file, "corpus", 0.1, 0.1, cache=tmp_path / "run")
    b = load_corpus(text_file, "corpus", 0.1, 0.1)  # in memory
    assert a.mapped == tmp_path / "run" / "corpus.u8" and isinstance(a.train, np.memmap)
    assert a.vocab == b.vocab
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(a, part), getattr(b, part))
    stamp = a.mapped.stat().st_mtime_ns
    again = load_corpus(text_file, "corpus", 0.1, 0.1, cache=tmp_path / "run")
    assert again.mapped.stat().st_mtime_ns == stamp  # reused, not prepared again
    fresh = again.refresh()
    assert np.array_equal(fresh.val, b.val)


def test_training_on_a_mapped_corpus(text_file, tmp_path, monkeypatch):
    monkeypatch.setattr("scratchrnn.data.MEMMAP_BYTES", 10)
    # the module, imported here: sr.train is the function, and this file may run alone
    monkeypatch.setattr(importlib.import_module("scratchrnn.train"), "REMAP_EVERY", 3)
    result = sr.train(sr.TrainConfig(text=str(text_file), out=str(tmp_path / "r"), hidden=16,
                                     batch=2, seq_len=10, max_steps=8, eval_every=4,
                                     sample_length=0, val_chars=50), progress=False)
    assert (tmp_path / "r" / "corpus.u8").is_file() and result.step == 8


def test_cp1252_in_a_later_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "CHUNK_BYTES", 16)
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"plain ascii line\n" * 3 + "caf\u00e9\n".encode("cp1252"))
    with pytest.warns(UserWarning, match="cp1252"):
        v, ids = prepare.encode_file(path)
    assert v.decode(ids).endswith("cafe\n")
