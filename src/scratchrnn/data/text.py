"""Text handling: decoding raw bytes and cleaning them (the vocabulary that reads them: vocab.py).

Cleaning, in order: decode (UTF-8 with optional BOM, cp1252 fallback), CRLF/CR -> LF, strip the
Project Gutenberg header and licence, then either transliterate to ASCII (anyascii) with tabs as
spaces, for a vocabulary of ASCII characters (`to_ascii`), or keep the text's own characters in
Unicode normal form C with tabs and control characters as spaces (`to_unicode`); anything still
outside the vocabulary becomes its unknown symbol (U+FFFD) or a space. A bytes vocabulary reads
the UTF-8 bytes of the `to_unicode` text. Every step is idempotent, so cleaning twice changes
nothing.

Files are cleaned as a stream (prepare.text_chunks): fixed-size byte chunks through an
incremental decoder (`decode_chunks`), cut into whole lines (`whole_lines`) whatever the line
ends, then the Gutenberg markers (`gutenberg_body`), so memory stays bounded even for a file
with CR line ends or none at all, and the result is what cleaning the whole text gives.
"""

from __future__ import annotations

import codecs
import itertools
import re
import unicodedata
import warnings
from collections.abc import Iterable, Iterator

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
NON_ASCII = re.compile(r"[^\x00-\x7f]+")
NUL_SNIFF = 1 << 16  # a NUL byte this near the start marks a binary file
SURROGATES = re.compile("[\ud800-\udfff]")
# Control characters but the newline read as a space in the text's own characters (tabs too).
CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


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
        if encoding is None and fed < NUL_SNIFF and b"\x00" in raw[:NUL_SNIFF - fed]:
            raise ScratchRNNError(f"{name} looks like a binary file (it contains NUL bytes); "
                                  "pass a plain text file, or its `encoding` if it is UTF-16")
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
        if encoding is not None and fed < NUL_SNIFF and "\x00" in text[:NUL_SNIFF]:
            # NUL characters, not bytes: UTF-16 and UTF-32 text is full of NUL bytes
            raise ScratchRNNError(f"{name} looks like a binary file (it contains NUL "
                                  "characters); pass a plain text file")
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
        text = NON_ASCII.sub(lambda m: anyascii(m.group().translate(_PRE_ASCII)), text)
    return text.replace("\t", " ")


def to_unicode(text: str) -> str:
    """Newlines normalised, NFC (so one letter is one character however it was typed), control
    characters and tabs as spaces; nothing transliterated."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return CONTROLS.sub(" ", text)
