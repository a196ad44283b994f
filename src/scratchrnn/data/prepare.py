"""Streaming corpus preparation: decode, clean and encode a text file chunk by chunk into ids
(uint8, or uint16 for a vocabulary of more than 256 symbols), kept in memory for ordinary books
or written to a file that training reads memory-mapped, so a corpus far larger than memory
costs little of it.

Files are read in fixed-size chunks (never a whole line at a time: a file with CR line ends or
none would be one line); an incremental decoder, `text.whole_lines` and `text.gutenberg_body`
keep multi-byte characters, CRLF pairs and Gutenberg markers whole, so cleaning chunk by chunk
gives what cleaning the whole text would. Several files (a --text folder, glob or list:
sources.py) are cleaned one by one and joined with a newline, streamed the same way. Every
file is opened by fsutil.open_regular: a FIFO or a device is refused, never read.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import ScratchRNNError
from ..fsutil import atomic_write, atomic_write_bytes, make_dir, open_regular
from .text import decode_chunks, gutenberg_body, to_ascii, to_unicode, whole_lines
from .vocab import UNKNOWN, Vocab, code_points

CHUNK_BYTES = 1 << 22  # 4 MB of text at a time (each cleaning step copies a chunk)
LINE_MAX = 1 << 20  # a line longer than this (or than a chunk) may be cut where a chunk ends
SIDE_BYTES = 64 << 20  # corpus.json: a key of many source files at most
TEXT_HINT = "pass a text file (or a folder or glob of them) with `text`"
MEMMAP_BYTES = 1 << 26  # files above 64 MB are prepared to disk when training gives a folder


def check_file(path: Path) -> None:
    """A regular text file with something in it, or one clear error."""
    with open_regular(path, "text", TEXT_HINT) as f:
        empty = os.fstat(f.fileno()).st_size == 0
    if empty:
        raise ScratchRNNError(f"{path} is empty; pass a file with some text in it")


def open_text(path: Path, doing: str = "read"):
    """A text file of --text opened to read (open_regular); one that was there a moment ago
    and is gone is said to have disappeared while the corpus was being `doing`."""
    try:
        return open_regular(path, "text", TEXT_HINT)
    except ScratchRNNError:
        if not os.path.lexists(path):
            raise ScratchRNNError(f"{path} disappeared while the corpus was being {doing}; run "
                                  "again when the files stay put") from None
        raise


def raw_chunks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    f = open_text(path)
    try:
        with f:
            while raw := f.read(chunk_bytes):
                yield raw
    except OSError as e:
        raise ScratchRNNError(f"cannot read {path}: {e.strerror}; check its permissions") from None


def text_chunks(path: Path, ascii: bool = True, encoding: str | None = None,
                chunk_bytes: int | None = None) -> Iterator[str]:
    """The text of `path` chunk by chunk, decoded, without the Gutenberg header and licence,
    and transliterated to ASCII (text.to_ascii) or in its own characters (text.to_unicode):
    every step of text.clean but the vocabulary, streamed in chunks of `chunk_bytes` bytes
    (CHUNK_BYTES, read when called) whatever the file's line ends."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    decoded = decode_chunks(raw_chunks(path, chunk_bytes), encoding, name=str(path))
    for text in gutenberg_body(whole_lines(decoded, max(chunk_bytes, LINE_MAX))):
        yield to_ascii(text) if ascii else to_unicode(text)


def clean_chunks(path: Path, vocab: Vocab, encoding: str | None = None,
                 chunk_bytes: int | None = None) -> Iterator[np.ndarray]:
    """Yield the cleaned, encoded text of `path` (ids into `vocab`) chunk by chunk: the steps
    of text.clean, applied to one chunk at a time."""
    for text in text_chunks(path, vocab.is_ascii, encoding, chunk_bytes):
        yield vocab.encode_coerced(text)


def count_chars(paths: list[Path], encoding: str | None = None) -> dict[str, int]:
    """How often each character occurs in the text of `paths` (joined with newlines), cleaned
    to its own characters: what a unicode vocabulary is built from."""
    counts: dict[int, int] = {}
    for i, path in enumerate(paths):
        for text in itertools.chain(["\n"] if i else [], text_chunks(path, False, encoding)):
            codes, n = np.unique(code_points(text), return_counts=True)  # (U,) each
            for c, k in zip(codes.tolist(), n.tolist(), strict=True):
                counts[c] = counts.get(c, 0) + k
    return {chr(c): n for c, n in counts.items()}


def source_key(paths: list[Path]) -> dict:
    """What the prepared file depends on: each source's path, size and mtime (one file keeps
    the key it always had, so its prepared corpus stays valid)."""
    stats = [(str(p.resolve()), p.stat()) for p in paths]
    if len(stats) == 1:
        return {"source": stats[0][0], "size": stats[0][1].st_size,
                "mtime_ns": stats[0][1].st_mtime_ns}
    return {"sources": [[name, st.st_size, st.st_mtime_ns] for name, st in stats]}


def encode_file(path: Path | list[Path], vocab: Vocab | str = "ascii",
                encoding: str | None = None, dest: Path | None = None,
                reuse: Path | None = None, min_count: int = 1
                ) -> tuple[Vocab, np.ndarray, np.ndarray]:
    """Clean and encode a whole file, or several joined with a newline (each cleaned on its
    own), into the vocabulary `vocab` (a Vocab, or a name: ascii, seed, corpus, bytes, or
    unicode with `min_count`); returns the vocabulary, the ids and each symbol's count. With
    `dest`, the ids go to that file chunk by chunk (reused while the sources and settings are
    unchanged) and come back memory-mapped. `reuse`: a corpus prepared elsewhere (a run
    folder) that is only ever read, taken when it matches."""
    paths = [path] if isinstance(path, Path) else list(path)
    for p in paths:
        check_file(p)
    name = str(paths[0]) if len(paths) == 1 else f"the {len(paths)} files of `text`"
    key = {**source_key(paths), "encoding": encoding,
           "vocab": vocab if isinstance(vocab, str) else vocab.chars}
    if vocab == "unicode":
        key["min_count"] = min_count
    if isinstance(vocab, Vocab) and vocab.kind == "bytes":
        key["kind"] = vocab.kind
    side = dest.with_suffix(".json") if dest else None
    for where in (reuse, dest):
        if where and where.is_file() and where.with_suffix(".json").is_file():
            reused = _reuse(where, where.with_suffix(".json"), key)
            if reused is not None:
                return reused
    if isinstance(vocab, Vocab):
        cleaning = vocab
    elif vocab == "unicode":  # a first pass counts the characters the vocabulary keeps
        cleaning = Vocab.from_counts(count_chars(paths, encoding), min_count)
    else:
        cleaning = Vocab.named("ascii" if vocab == "corpus" else vocab)
    counts = np.zeros(len(cleaning), np.int64)  # characters seen, per index
    newline = cleaning.encode_coerced("\n")  # (1,): the seed vocabulary reads it as a space

    def pieces():  # each file's chunks, a newline between files
        for i, p in enumerate(paths):
            if i:
                yield newline
            yield from clean_chunks(p, cleaning, encoding)

    def chunks():
        for ids in pieces():
            counts[:] += np.bincount(ids, minlength=len(cleaning))
            yield ids

    if dest is None:
        ids = np.concatenate([np.zeros(0, cleaning.dtype), *chunks()])
    else:
        make_dir(dest.parent, "pass a writable `out` folder")
        side.unlink(missing_ok=True)  # an index beside a half-made file must not vouch for it
        atomic_write(dest, lambda f: f.writelines(c.tobytes() for c in chunks()),
                     "prepared corpus")
    # what reads as nothing: blanks, and UNKNOWN, which stands for a character the vocabulary
    # lacks (a model's, given: a text in another script is all UNKNOWN or spaces)
    blank = sum(counts[cleaning.chars.index(c)] for c in (" ", "\n", UNKNOWN)
                if c in cleaning.chars)
    if counts.sum() == blank and isinstance(vocab, Vocab):
        raise ScratchRNNError(f"{name} has no text the model can read: none of its characters "
                              f"but blanks are in the model's vocabulary ({len(vocab):,} "
                              "symbols); "
                              "pass a text in the characters the model was trained on")
    if counts.sum() == blank and vocab == "unicode" and min_count > 1:
        raise ScratchRNNError(f"`min_count` {min_count} leaves {name} nothing but blanks and "
                              "U+FFFD: each of its other characters is rarer; lower it")
    if counts.sum() == blank:
        raise ScratchRNNError(f"{name} has no usable text after cleaning; pass a text file")
    final, remap = cleaning, None
    if vocab == "corpus":  # the characters the text uses, in order; re-index to them
        used = np.flatnonzero(counts)
        final = Vocab("".join(cleaning.chars[i] for i in used))
        remap = np.zeros(len(cleaning), np.uint8)
        remap[used] = np.arange(len(used))
        counts = counts[used]
    if dest is None:
        return final, ids if remap is None else remap[ids], counts
    if remap is not None:
        _remap_file(dest, remap)
    atomic_write_bytes(side, json.dumps({"key": key, "chars": int(counts.sum()),
                                         "chars_in_vocab": final.chars, "kind": final.kind,
                                         "counts": counts.tolist()}).encode(), "corpus index")
    return final, map_file(dest, final.dtype), counts


def map_file(path: Path, dtype=np.uint8) -> np.memmap:
    """A prepared corpus (ids of `dtype`), memory-mapped read-only."""
    with open_regular(path, "prepared corpus", "delete it, and it is prepared again") as f:
        return np.memmap(f, dtype, mode="r")


def _reuse(dest: Path, side: Path, key: dict) -> tuple[Vocab, np.memmap, np.ndarray] | None:
    """The corpus prepared earlier into `dest`, if its index `side` vouches for it under `key`;
    None (prepare it again) for anything else, an index that is not one included."""
    try:
        with open_regular(side, "corpus index", "", SIDE_BYTES) as f:
            saved = json.loads(f.read())
        was = saved.get("key") if isinstance(saved, dict) else None
        if isinstance(was, dict):  # a resumed or evaluated run asks with the vocabulary a
            # name (corpus, unicode) resolved to when the file was prepared: the same ids
            resolved = {k: v for k, v in was.items() if k != "min_count"}
            resolved["vocab"] = saved.get("chars_in_vocab")
        if isinstance(was, dict) and key in (was, resolved):
            vocab = Vocab(saved["chars_in_vocab"], saved.get("kind", "chars"))
            counts = np.asarray(saved["counts"], np.int64)  # (V,)
            if (dest.stat().st_size == saved["chars"] * vocab.dtype.itemsize
                    and counts.shape == (len(vocab),) and counts.sum() == saved["chars"]):
                return vocab, map_file(dest, vocab.dtype), counts
    except (ValueError, TypeError, RecursionError, OSError, KeyError, ScratchRNNError):
        pass
    return None


def _remap_file(path: Path, remap: np.ndarray) -> None:
    def write(f):
        src = map_file(path)  # (N,) uint8: a corpus vocabulary is ASCII
        for start in range(0, len(src), CHUNK_BYTES):
            f.write(remap[src[start:start + CHUNK_BYTES]].tobytes())

    # the replacement is written beside it and renamed over it; this process still reads the
    # old file through its open map
    atomic_write(path, write, "prepared corpus")
