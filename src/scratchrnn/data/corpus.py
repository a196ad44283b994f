"""Corpora: finding the text (a local file or the downloaded book), cleaning, encoding, splitting,
and cutting the training split into B parallel streams of T-step windows for truncated BPTT.
"""

from __future__ import annotations

import os
import unicodedata
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import limits
from ..errors import ScratchRNNError
from ..fsutil import atomic_write_bytes, make_dir, open_regular
from .prepare import MEMMAP_BYTES, check_file, encode_file, map_file, text_chunks
from .sources import expand, name_of
from .text import NON_ASCII
from .vocab import VOCABS, Vocab

ASCII_NOT_LETTERS = bytes(c for c in range(128) if not chr(c).isalpha())

BOOK_NAME = "pg98"
BOOK_URLS = (
    "https://www.gutenberg.org/cache/epub/98/pg98.txt",
    "https://www.gutenberg.org/files/98/98-0.txt",
)


def cache_dir() -> Path:
    return Path(os.environ.get("SCRATCHRNN_HOME") or Path.home() / ".cache" / "scratchrnn")


def download(urls: tuple[str, ...], dest: Path, timeout: float = 30.0) -> Path:
    """Fetch the first URL that answers with a plausible text into `dest` (atomically)."""
    reasons = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                body = resp.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            reasons.append(f"{url}: {getattr(e, 'reason', e)}")
            continue
        if len(body) < 1000:
            reasons.append(f"{url}: only {len(body)} bytes")
            continue
        make_dir(dest.parent, "set SCRATCHRNN_HOME to a writable folder")
        atomic_write_bytes(dest, body, "downloaded book")
        return dest
    raise ScratchRNNError(
        f"could not download the book ({'; '.join(reasons)}); if you are offline, pass "
        f"`text` FILE or put the book at {dest}")


def book_path(urls: tuple[str, ...] = BOOK_URLS, timeout: float = 30.0) -> Path:
    """The default corpus: the cached book, downloaded on first use."""
    dest = cache_dir() / f"{BOOK_NAME}.txt"
    if os.path.lexists(dest):  # a FIFO or device there is refused, not read or replaced
        with open_regular(dest, "cached book", "remove it (it is downloaded again) or pass "
                          "`text` FILE") as f:
            if os.fstat(f.fileno()).st_size > 0:
                return dest
    print(f"downloading A Tale of Two Cities to {dest} ...", flush=True)
    return download(urls, dest, timeout)


AUTO_SAMPLE = 1 << 20  # characters of the text `vocab` auto reads to choose
AUTO_FOREIGN = 0.005  # the share of letters beyond ASCII above which auto keeps them


@dataclass
class Corpus:
    name: str
    vocab: Vocab
    train: np.ndarray  # (N_train,) ids: uint8, or uint16 beyond 256 symbols
    val: np.ndarray  # (N_val,)
    test: np.ndarray  # (N_test,)
    fracs: tuple[float, float] = (0.05, 0.05)
    mapped: Path | None = None  # the prepared ids' file, when memory-mapped
    counts: np.ndarray | None = None  # (V,) how often each symbol occurs in the whole text
    vocab_name: str = ""  # the vocabulary asked for (auto: the one it chose)
    vocab_why: str = ""  # auto: why it chose

    def refresh(self) -> Corpus:
        """Map a file-backed corpus afresh: the pages read so far leave this process's
        resident memory with the old mapping (an in-memory corpus is returned as is)."""
        if self.mapped is None:
            return self
        ids = map_file(self.mapped, self.vocab.dtype)
        return Corpus(self.name, self.vocab, *split(ids, *self.fracs), self.fracs, self.mapped,
                      self.counts, self.vocab_name, self.vocab_why)

    def describe(self, name: str | None = None) -> str:
        """The vocabulary (called `name`, if it was given as a Vocab) in a few words, for a
        run's first line."""
        name = self.vocab_name or name or "given"
        what = {"bytes": "UTF-8 bytes", "unicode": "the text's own characters",
                "ascii": "ASCII", "seed": "the notebook's ASCII",
                "corpus": "the ASCII characters of the text"}.get(name, "")
        line = f"vocabulary {name}: {len(self.vocab):,} symbols"
        return line + (f", {what}" if what else "") + (f" ({self.vocab_why})"
                                                        if self.vocab_why else "")


def split(ids: np.ndarray, val_frac: float, test_frac: float):
    """Contiguous train/val/test split: the held-out text is the end of the book, unseen."""
    n = len(ids)
    n_test = int(round(n * test_frac))
    n_val = int(round(n * val_frac))
    n_train = n - n_val - n_test
    return ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:]


def corpus_name(text: str | os.PathLike | list[str] | None) -> str:
    return BOOK_NAME if text is None else name_of(text)


def choose_vocab(paths: list[Path], encoding: str | None = None) -> tuple[str, str]:
    """What `vocab` auto picks, and why: ascii for text whose letters (and symbols, emoji
    included) are (nearly) all ASCII, so typographic quotes and dashes in an English book are
    no reason to leave it; the text's own characters (unicode) otherwise. Reads AUTO_SAMPLE
    characters: of several files, the first AUTO_SAMPLE / n of each, so that a file after a
    long one is read too."""
    plain = other = 0
    budget = max(AUTO_SAMPLE // len(paths), 1)
    for path in paths:
        seen = 0
        for text in text_chunks(path, False, encoding):
            text = text[:budget - seen]
            seen += len(text)
            plain += len(text.encode("ascii", "ignore").translate(None, ASCII_NOT_LETTERS))
            other += sum(unicodedata.category(c)[0] in "LMNS" for c in "".join(
                NON_ASCII.findall(text)))
            if seen >= budget:
                break
    share = other / max(plain + other, 1)
    if share > AUTO_FOREIGN:
        return "unicode", f"auto: {share:.0%} of its letters are not ASCII"
    return "ascii", ("auto: its letters are ASCII" if not other else
                     f"auto: {share:.2%} of its letters are not ASCII")


def load_corpus(text: str | os.PathLike | list[str] | None, vocab: Vocab | str = "auto",
                val_frac: float = 0.05, test_frac: float = 0.05,
                encoding: str | None = None, cache: str | os.PathLike | None = None,
                reuse: str | os.PathLike | None = None, min_count: int = 1) -> Corpus:
    """Read, clean, encode and split a corpus (`text=None` means the book; else a file, a
    folder, a glob or a list of them: sources.expand) into the vocabulary `vocab`: a Vocab,
    or ascii, seed, corpus, unicode (with `min_count`), bytes, or auto (choose_vocab). A
    corpus larger than 64 MB is prepared into `cache`/corpus.u8 and memory-mapped, when
    `cache` is given; a corpus prepared in the folder `reuse` is read from there, never
    written there."""
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise ScratchRNNError("`val_frac` and `test_frac` must be in [0, 1) and sum to less than 1")
    if isinstance(vocab, str) and vocab not in VOCABS:
        raise ScratchRNNError(f"unknown `vocab` {vocab!r}; choose {', '.join(VOCABS)}")
    limits.integer(min_count, "min_count", 1)  # as TrainConfig checks it: before any read
    if min_count > 1 and isinstance(vocab, str) and vocab not in ("auto", "unicode"):
        raise ScratchRNNError(f"`min_count` applies to `vocab` unicode, not {vocab}")
    paths = expand(text, encoding) if text is not None else [book_path()]
    for path in paths:
        check_file(path)
    why = ""
    if vocab == "auto":
        vocab, why = choose_vocab(paths, encoding)
        if min_count > 1 and vocab != "unicode":
            raise ScratchRNNError(f"`vocab` auto chose {vocab} for {corpus_name(text)} ({why}), "
                                  "and `min_count` applies to `vocab` unicode only; drop "
                                  "`min_count`, or pass `vocab` unicode")
    dest = None
    if cache is not None and sum(p.stat().st_size for p in paths) > MEMMAP_BYTES:
        dest = Path(cache) / "corpus.u8"
    vocab_name = vocab if isinstance(vocab, str) else ""
    vocab, ids, counts = encode_file(paths[0] if len(paths) == 1 else paths, vocab, encoding,
                                     dest, None if reuse is None else Path(reuse) / "corpus.u8",
                                     min_count)
    mapped = dest if reuse is None else None  # the read-only commands that reuse never refresh
    return Corpus(corpus_name(text), vocab, *split(ids, val_frac, test_frac),
                  (val_frac, test_frac), mapped, counts, vocab_name, why)


def make_streams(data: np.ndarray, batch: int) -> np.ndarray:
    """(N,) -> (B, L) view: stream b reads its own contiguous slice of the text."""
    length = len(data) // batch
    return data[:batch * length].reshape(batch, length)


def windows_per_epoch(streams: np.ndarray, seq_len: int) -> int:
    return (streams.shape[1] - 1) // seq_len


def window(streams: np.ndarray, j: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-character targets of window j, both (B, T)."""
    start = j * seq_len
    return streams[:, start:start + seq_len], streams[:, start + 1:start + seq_len + 1]
