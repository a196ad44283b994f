"""Streaming preparation gives exactly what cleaning the whole text gives, in memory or as a
memory-mapped file, whatever the chunk size."""

import hashlib
import importlib
import os
import pathlib
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchrnn as sr
from scratchrnn.data import prepare
from scratchrnn.data.corpus import load_corpus
from scratchrnn.data.text import to_ascii, whole_lines

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
    v, ids, _ = prepare.encode_file(text_file, vocab)
    assert v.decode(ids) == want_text
    if vocab == "corpus":
        assert v.chars == "".join(sorted(set(want_text)))


def test_memory_mapped_file_is_reused(text_file, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "CHUNK_BYTES", 64)
    monkeypatch.setattr("scratchrnn.data.corpus.MEMMAP_BYTES", 10)  # anything counts as large
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
    monkeypatch.setattr("scratchrnn.data.corpus.MEMMAP_BYTES", 10)
    # the module, imported here: sr.train is the function, and this file may run alone
    monkeypatch.setattr(importlib.import_module("scratchrnn.training.loop"), "REMAP_EVERY", 3)
    result = sr.train(sr.TrainConfig(text=str(text_file), out=str(tmp_path / "r"), hidden=16,
                                     batch=2, seq_len=10, max_steps=8, eval_every=4,
                                     sample_length=0, val_chars=50), progress=False)
    assert (tmp_path / "r" / "corpus.u8").is_file() and result.step == 8


def test_cp1252_in_a_later_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "CHUNK_BYTES", 16)
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"plain ascii line\n" * 3 + "caf\u00e9\n".encode("cp1252"))
    with pytest.warns(UserWarning, match="cp1252"):
        v, ids, _ = prepare.encode_file(path)
    assert v.decode(ids).endswith("cafe\n")


# Streaming whatever the line ends: the pieces a text is made of, to put together at random
# (CR, LF and CRLF, multi-byte characters, BOMs, a TAB, Gutenberg markers on lines of their own
# and a stray "***"), cut into byte chunks of any size.
PIECES = ["It was", " the best", "caf\u00e9", "\u2014", "\U0001f600", "\u00e9\u0301", "\ufeff",
          "\t", " ", "  ", "\r", "\n", "\r\n", "\r\r\n", "*", "***",
          "\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n",
          "\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n", "\r\n***\r\nEND OF THIS PROJECT "
          "GUTENBERG EBOOK\r\n"]
texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


def _streamed(tmp, raw: bytes, chunk: int, **kw) -> str:
    path = pathlib.Path(tmp) / "t.txt"
    path.write_bytes(raw)
    return "".join(prepare.text_chunks(path, ascii=True, chunk_bytes=chunk, **kw))


@settings(max_examples=300, deadline=None)
@given(text=texts, bom=st.booleans(), chunk=st.integers(1, 80))
def test_streamed_cleaning_is_whole_cleaning(text, bom, chunk):
    """Cleaning a file chunk by chunk gives what cleaning its whole text gives: a CRLF, a
    character or a BOM cut between chunks, a CR ending a chunk, markers anywhere."""
    raw = ("\ufeff" * bom + text).encode("utf-8")
    want = sr.clean(text, sr.Vocab.ascii())
    with tempfile.TemporaryDirectory() as tmp:
        got = sr.Vocab.ascii().coerce(_streamed(tmp, raw, chunk))
    assert got == want


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.sampled_from("ab \u00e9\u00fc\r\n"), max_size=60),
       chunk=st.integers(1, 30))
def test_streamed_cp1252_is_whole_cp1252(text, chunk):
    """A cp1252 file (its first non-ASCII byte is never valid UTF-8 here) read as cp1252
    from the first chunk on, wherever that byte is."""
    raw = text.encode("cp1252")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _streamed(tmp, raw, chunk) == to_ascii(raw.decode("cp1252"))


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.text(st.sampled_from("ab\u00e9 \r\n*"), max_size=12), max_size=12),
       line_max=st.integers(1, 20))
def test_whole_lines_keeps_the_text_and_its_line_ends(pieces, line_max):
    """Cut anywhere, even inside a line longer than line_max, and never between a CR and its
    LF: cleaning the cut text piece by piece gives the cleaned whole."""
    out = list(whole_lines(pieces, line_max))
    assert "".join(out) == "".join(pieces)
    assert "".join(map(to_ascii, out)) == to_ascii("".join(pieces))


def test_the_book_prepares_byte_for_byte_as_before(book):
    """pg98 prepared by the streaming reader, at any chunk size, is what scratchrnn prepared
    before the reader streamed (SHA-256 and length of the ids, from commit 1b75845)."""
    for chunk in (1000, 1 << 16, None):
        for vocab, digest in (("ascii", "7cd42fb9e74d45ffa742b91b07f066714ca680f0c9870f8b9c53"
                                        "902ad686ea40"),
                              ("corpus", "75fb18f684ecb2f67cc3db5398db09178267e3bc903a8d3892"
                                         "90fc19f825a154")):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(prepare, "CHUNK_BYTES", chunk or prepare.CHUNK_BYTES)
                _, ids, _ = prepare.encode_file(book, vocab)
            assert (len(ids), hashlib.sha256(ids.tobytes()).hexdigest()) == (757604, digest)


_PEAK = """
import resource, sys
from pathlib import Path
from scratchrnn.data import prepare
from scratchrnn.data.vocab import Vocab
vocab = Vocab.ascii()
list(prepare.clean_chunks(Path(sys.argv[2]), vocab, chunk_bytes=1 << 16))  # warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = sum(len(ids) for ids in prepare.clean_chunks(Path(sys.argv[1]), vocab, chunk_bytes=1 << 18))
print(n, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


@pytest.mark.parametrize("end", [b"\r", b" "], ids=["CR line ends", "one line"])
def test_memory_stays_bounded_without_line_feeds(end, tmp_path):
    """A 20 MB text with CR line ends, or none, is streamed in 256 kB chunks: the peak memory
    grows by a few chunks at most, not by the file (it was read as one line: growing by
    8 to 50 MB here)."""
    line = b"It was the best of times, it was the worst of times" + end
    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    big.write_bytes(line * (20_000_000 // len(line)))
    small.write_bytes(line * 100)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", _PEAK, str(big), str(small)], env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    n, grew = map(int, out.split())
    assert n == big.stat().st_size
    assert grew < big.stat().st_size // 8, f"peak RSS grew {grew >> 20} MB"
