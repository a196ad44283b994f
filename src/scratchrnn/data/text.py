"""Text handling: decoding raw bytes, cleaning to ASCII, and the character vocabulary.

Cleaning, in order: decode (UTF-8 with optional BOM, cp1252 fallback), CRLF/CR -> LF, strip the
Project Gutenberg header and licence, transliterate to ASCII (anyascii), tabs -> space, and map
anything still outside the vocabulary to a space. Every step is idempotent, so cleaning twice
changes nothing.

Files are cleaned as a stream (prepare.ascii_chunks): fixed-size byte chunks through an
incremental decoder (`decode_chunks`), cut into whole lines (`whole_lines`) whatever the line
ends, then the Gutenberg markers (`gutenberg_body`), so memory stays bounded even for a file
with CR line ends or none at all, and the result is what cleaning the whole text gives.
"""

from __future__ import annotations

import codecs
import itertools
import re
import warnings
from collections.abc import Iterable, Iterator

import numpy as np
from anyascii import anyascii

from ..errors import ScratchRNNError

PRINTABLE = "".join(chr(c) for c in range(32, 127))  # the notebook's 95 characters

START_MARKER = re.compile(
    r"\*\*\*\s*START OF (?:THE|THIS) PROJECT GUTENBERG EBOOK.*?\*\*\*", re.IGNORECASE | re.DOTALL
)
END_MARKER = re.compile(r"\*\*\*\s*END OF (?:THE|THIS) PROJECT GUTENBERG EBOOK",
                        re.IGNORECASE)
# anyascii turns an em dash into "-"; typeset English uses it where ASCII text writes "--".
_PRE_ASCII = str.maketrans({"\u2014": "--", "\u2015": "--"})
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
NUL_SNIFF = 1 << 16  # a NUL byte this near the start marks a binary file


def decode(raw: bytes, encoding: str | None = None, name: str = "text") -> str:
    """Bytes -> str. UTF-8 (BOM allowed) unless `encoding` is given; cp1252 as a warned fallback."""
    return "".join(decode_chunks([raw], encoding, name))


def text_encoding(encoding: str | None) -> str | None:
    """`encoding` when it names a codec that decodes bytes to text (utf-8, cp1252, ...), else
    one clear error: codecs.lookup also knows bytes-to-bytes (zlib, base64, hex) and str-to-str
    (rot13) codecs, and `undefined`, which decodes nothing."""
    if encoding is None:
        return None
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):  # ValueError: a NUL in the name
        raise ScratchRNNError(f"unknown encoding {encoding!r}; pass `encoding` with a text "
                              "encoding such as utf-8 or cp1252") from None
    if (not getattr(info, "_is_text_encoding", True) or info.name == "undefined"
            or info.incrementaldecoder is None):
        raise ScratchRNNError(f"{encoding!r} is not a text encoding (it does not decode bytes "
                              "to text); pass `encoding` with one such as utf-8 or cp1252")
    return encoding


def incremental_decoder(encoding: str):
    """An incremental decoder of a text encoding (text_encoding), or one clear error."""
    return codecs.getincrementaldecoder(text_encoding(encoding))()


def decode_chunks(chunks: Iterable[bytes], encoding: str | None = None,
                  name: str = "text") -> Iterator[str]:
    """`decode` of the joined byte chunks, one piece per chunk: a character split between two
    chunks is decoded whole. A NUL byte in the first 64 kB means a binary file. Without
    `encoding`, UTF-8 until the first invalid byte, and cp1252 (warned) from that chunk on: the
    whole text as cp1252 when that is in the first chunk (where such bytes nearly always are)."""
    dec = incremental_decoder(encoding or "utf-8-sig")
    fed, fallback = 0, False  # bytes given to the decoder so far; cp1252 from here on
    for raw, final in itertools.chain(((raw, False) for raw in chunks), [(b"", True)]):
        if fed < NUL_SNIFF and b"\x00" in raw[:NUL_SNIFF - fed]:
            raise ScratchRNNError(f"{name} looks like a binary file (it contains NUL bytes); "
                                  "pass a plain text file")
        if fallback:
            text = raw.decode("cp1252", errors="replace")
        else:
            try:
                text = dec.decode(raw, final)
            except UnicodeError as e:  # a UnicodeDecodeError, or UTF-16 without its BOM
                pending = dec.getstate()[0]  # bytes of a character begun in the last chunk
                if encoding is not None:
                    at = fed - len(pending) + getattr(e, "start", 0)
                    raise ScratchRNNError(f"{name} is not valid {encoding} (byte {at:,}); "
                                          "pass the right `encoding`") from None
                fallback = True
                warnings.warn(f"{name} is not valid UTF-8; decoding it as cp1252 "
                              "(pass `encoding` to choose)", stacklevel=2)
                text = (pending + raw).decode("cp1252", errors="replace")
        fed += len(raw)
        if text:
            yield text


def whole_lines(pieces: Iterable[str], line_max: int = 1 << 20) -> Iterator[str]:
    """The text of `pieces` again, for `gutenberg_body`: cut only after a line break ("\n",
    "\r\n" or "\r"; a CR ending a piece waits for the next, which may begin with its LF) and
    before the blank tail that precedes it, with a "***" ending that tail's last line: so a
    Gutenberg marker, the "***" that may begin it and the blanks it drops are never cut from
    it. A line (or blank run) longer than `line_max` characters is cut anyway: memory stays
    bounded for a text with no line breaks at all."""
    buf = ""
    for piece in pieces:
        buf += piece
        cut = max(buf.rfind("\n"), buf.rfind("\r", 0, len(buf) - 1)) + 1
        if cut:
            cut = _tail(buf, cut)
        if not cut and len(buf) >= line_max:
            cut = len(buf) - buf.endswith("\r")
        if cut:
            yield buf[:cut]
            buf = buf[cut:]
    if buf:
        yield buf


def _tail(text: str, end: int) -> int:
    """Where the tail of text[:end] that an END marker may need begins: its blanks (which the
    marker drops), and before them "***" and any white space (how the marker may begin).
    Only the last few kB are copied to look at, unless they are all blank."""
    start = max(0, end - 4096)
    if not text[start:end].strip():  # a long blank run: look at all of it
        start = 0
    window = text[start:end]
    i = start + len(window.rstrip("\r\n "))
    j = start + len(window[:i - start].rstrip())
    return j - 3 if text.endswith("***", 0, j) else i


def gutenberg_body(pieces: Iterable[str], start_window: int = 1 << 20) -> Iterator[str]:
    """The book between Project Gutenberg's START and END markers, when present, from the
    consecutive pieces of a text as `whole_lines` cuts them: what strip_gutenberg gives for
    the whole text. The START marker is looked for in the first `start_window` characters
    (and the pieces that complete them); nothing after the END marker is read."""
    pieces, head, size = iter(pieces), [], 0
    for text in pieces:  # the first piece: at least start_window characters
        head.append(text)
        size += len(text)
        if size >= start_window:
            break
    first = "".join(head)
    leading = False  # after START: blanks are dropped until the book begins
    if start := START_MARKER.search(first):
        first, leading = first[start.end():], True
    for text in itertools.chain([first], pieces):
        if leading:
            text = text.lstrip("\r\n ")
            leading = not text
        if end := END_MARKER.search(text):
            yield text[:end.start()].rstrip("\r\n ")
            return  # what follows the end marker is the licence
        if text:
            yield text


def printable(name: str) -> str:
    """`name` (a file name, a title) with each byte that is not UTF-8 (a surrogate escape,
    which no terminal, page or plot can show) and each control character replaced by "_"."""
    return "".join(c if c.isprintable() else "_" for c in name)


def strip_gutenberg(text: str) -> str:
    return "".join(gutenberg_body([text]))


def to_ascii(text: str) -> str:
    """Newlines normalised, transliterated to ASCII, tabs as spaces (no vocabulary applied)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():  # transliterate only the non-ASCII runs: mostly-ASCII text stays fast
        text = _NON_ASCII.sub(lambda m: anyascii(m.group().translate(_PRE_ASCII)), text)
    return text.replace("\t", " ")


def clean(text: str, vocab: Vocab, gutenberg: bool = True) -> str:
    """The full cleaning pipeline for a corpus: every character of the result is in `vocab`.
    (Files are cleaned chunk by chunk with the same steps: prepare.clean_chunks.)"""
    if not isinstance(text, str) or not isinstance(vocab, Vocab):
        raise ScratchRNNError("clean(text, vocab) needs a string and a Vocab, got "
                              f"{type(text).__name__} and {type(vocab).__name__}")
    return vocab.coerce(to_ascii(strip_gutenberg(text) if gutenberg else text))


class Vocab:
    """An ordered set of single characters; index i <-> character chars[i]."""

    def __init__(self, chars: str):
        if not isinstance(chars, str):
            raise ScratchRNNError(f"a vocabulary is a string of characters, got "
                                  f"{type(chars).__name__}")
        if len(chars) == 0 or len(set(chars)) != len(chars):
            raise ScratchRNNError("a vocabulary needs at least one character and no repeats")
        if not chars.isascii():
            raise ScratchRNNError("vocabulary characters must be ASCII (text is transliterated)")
        self.chars = chars
        # A 128-entry table makes encoding one vectorised lookup; -1 marks "not in vocab".
        self._table = np.full(128, -1, dtype=np.int16)
        self._table[np.frombuffer(chars.encode("ascii"), np.uint8)] = np.arange(len(chars))
        # Characters outside the vocabulary become a space, or the first character without one.
        fill = " " if " " in chars else chars[0]
        self._coerce = str.maketrans({chr(c): fill for c in range(128) if chr(c) not in chars})
        self._coerce_table = np.where(self._table >= 0, self._table,
                                      chars.index(fill)).astype(np.uint8)

    @classmethod
    def ascii(cls) -> Vocab:
        """96 symbols: printable ASCII plus newline, so any cleaned prompt can be read."""
        return cls("\n" + PRINTABLE)

    @classmethod
    def seed(cls) -> Vocab:
        """The notebook's 95 printable characters; newlines become spaces."""
        return cls(PRINTABLE)

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls("".join(sorted(set(text))))

    @classmethod
    def named(cls, name: str) -> Vocab:
        """The fixed vocabularies by name ("corpus" is built from the text: from_text)."""
        if name == "ascii":
            return cls.ascii()
        if name == "seed":
            return cls.seed()
        raise ScratchRNNError(f"unknown vocabulary {name!r}; choose ascii, seed or corpus")

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and other.chars == self.chars

    def __repr__(self) -> str:
        return f"Vocab({self.chars!r})"

    def coerce(self, ascii_text: str) -> str:
        """Map every character outside the vocabulary to a space (the catch-all cleaning step)."""
        return ascii_text.translate(self._coerce)

    def encode(self, text: str) -> np.ndarray:
        """str -> uint8 indices; refuses any character not in the vocabulary."""
        if not text.isascii():
            bad = sorted({c for c in text if not c.isascii()})
            raise ScratchRNNError(f"characters not in the vocabulary: {''.join(bad)!r}")
        ids = self._table[np.frombuffer(text.encode("ascii"), np.uint8)]
        if ids.size and ids.min() < 0:
            bad = sorted({c for c in text if c not in self.chars})
            raise ScratchRNNError(f"characters not in the vocabulary: {''.join(bad)!r}")
        return ids.astype(np.uint8)

    def encode_coerced(self, ascii_text: str) -> np.ndarray:
        """ASCII text -> uint8 indices, reading characters outside the vocabulary as a space
        (the catch-all cleaning step and the encoding in one vectorised lookup)."""
        return self._coerce_table[np.frombuffer(ascii_text.encode("ascii"), np.uint8)]

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in np.asarray(ids).ravel())

    def clean_prompt(self, prompt: str) -> np.ndarray:
        """Clean a prompt like the corpus, then encode it; unknown characters are an error."""
        text = to_ascii(prompt)
        if "\n" not in self.chars:  # the seed vocabulary reads newlines as spaces, like its corpus
            text = text.replace("\n", " ")
        bad = sorted({c for c in text if c not in self.chars})
        if bad:
            raise ScratchRNNError(f"the prompt has characters this model does not know: "
                                  f"{''.join(bad)!r}; remove them or train with `vocab` ascii")
        return self.encode(text)
