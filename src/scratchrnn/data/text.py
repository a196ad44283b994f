"""Text handling: decoding raw bytes, cleaning, and the vocabulary of symbols a model reads.

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

import numpy as np
from anyascii import anyascii

from ..errors import ScratchRNNError
from ..limits import MAX_SYMBOLS

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
KINDS = ("chars", "bytes")
VOCABS = ("auto", "ascii", "seed", "corpus", "unicode", "bytes")  # the vocabularies by name
BYTES = "".join(map(chr, range(256)))  # a bytes vocabulary's symbols, byte value = index
UNKNOWN = "\ufffd"  # the symbol of the characters a vocabulary does not keep (`min_count`)
SURROGATES = re.compile("[\ud800-\udfff]")
# Control characters but the newline read as a space in the text's own characters (tabs too).
_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


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
        text = _NON_ASCII.sub(lambda m: anyascii(m.group().translate(_PRE_ASCII)), text)
    return text.replace("\t", " ")


def to_unicode(text: str) -> str:
    """Newlines normalised, NFC (so one letter is one character however it was typed), control
    characters and tabs as spaces; nothing transliterated."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return _CONTROLS.sub(" ", text)


def clean(text: str, vocab: Vocab, gutenberg: bool = True) -> str:
    """The full cleaning pipeline for a corpus: every character of the result is in `vocab`.
    (Files are cleaned chunk by chunk with the same steps: prepare.clean_chunks.)"""
    if not isinstance(text, str) or not isinstance(vocab, Vocab):
        raise ScratchRNNError("clean(text, vocab) needs a string and a Vocab, got "
                              f"{type(text).__name__} and {type(vocab).__name__}")
    text = strip_gutenberg(text) if gutenberg else text
    if vocab.is_ascii:
        return vocab.coerce(to_ascii(text))
    return vocab.decode(vocab.encode_coerced(to_unicode(text)))


class Vocab:
    """An ordered set of symbols; index i <-> symbol chars[i]. A "chars" vocabulary's symbols
    are characters (any Unicode code point but a surrogate); a "bytes" one's are the 256 UTF-8
    byte values, written chr(0) .. chr(255), whose text is decoded from them. A vocabulary of
    ASCII characters reads text transliterated to ASCII (to_ascii); any other reads the text's
    own characters (to_unicode), with UNKNOWN, when it has it, for characters it does not keep."""

    def __init__(self, chars: str, kind: str = "chars"):
        if not isinstance(chars, str):
            raise ScratchRNNError(f"a vocabulary is a string of characters, got "
                                  f"{type(chars).__name__}")
        if len(chars) == 0 or len(set(chars)) != len(chars):
            raise ScratchRNNError("a vocabulary needs at least one character and no repeats")
        if kind not in KINDS:
            raise ScratchRNNError(f"a vocabulary's kind is chars or bytes, not {kind!r}")
        if kind == "bytes" and chars != BYTES:
            raise ScratchRNNError("a bytes vocabulary is the 256 byte values in order")
        if len(chars) > MAX_SYMBOLS:
            raise ScratchRNNError(f"a vocabulary has at most {MAX_SYMBOLS:,} symbols, not "
                                  f"{len(chars):,}")
        if SURROGATES.search(chars):
            raise ScratchRNNError("a vocabulary's characters must be valid Unicode (it holds "
                                  "half a surrogate pair)")
        self.chars, self.kind = chars, kind
        self.dtype = np.dtype(np.uint8 if len(chars) <= 256 else np.uint16)  # of its ids
        self.is_ascii = kind == "chars" and chars.isascii()
        codes = np.frombuffer(chars.encode("utf-32-le"), "<u4")  # (V,) code points
        self._order = np.argsort(codes, kind="stable").astype(self.dtype)  # (V,)
        self._sorted = codes[self._order]  # (V,) ascending, for searchsorted
        # Characters outside the vocabulary become UNKNOWN, else a space, else the first symbol.
        fill = next((c for c in (UNKNOWN, " ") if c in chars), chars[0])
        self._fill = chars.index(fill)
        self.fill = fill
        if self.is_ascii:
            # A 128-entry table makes encoding one vectorised lookup; -1 marks "not in vocab".
            self._table = np.full(128, -1, dtype=np.int16)
            self._table[codes] = np.arange(len(chars))
            self._coerce = str.maketrans({chr(c): fill for c in range(128)
                                          if chr(c) not in chars})
            self._coerce_table = np.where(self._table >= 0, self._table,
                                          self._fill).astype(np.uint8)

    @classmethod
    def ascii(cls) -> Vocab:
        """96 symbols: printable ASCII plus newline, so any cleaned prompt can be read."""
        return cls("\n" + PRINTABLE)

    @classmethod
    def seed(cls) -> Vocab:
        """The notebook's 95 printable characters; newlines become spaces."""
        return cls(PRINTABLE)

    @classmethod
    def bytes(cls) -> Vocab:
        """The 256 byte values of the text's UTF-8: any text, nothing unknown."""
        return cls(BYTES, "bytes")

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls("".join(sorted(set(text))))

    @classmethod
    def from_counts(cls, counts: dict[str, int], min_count: int = 1) -> Vocab:
        """The characters seen at least `min_count` times, in code point order, and UNKNOWN
        for the others when there are any; or one clear error."""
        kept = sorted(c for c, n in counts.items() if n >= min_count)
        if len(kept) < len(counts) and UNKNOWN not in kept:
            if not kept:
                raise ScratchRNNError(f"`min_count` {min_count} leaves none of the text's "
                                      f"{len(counts):,} characters (the most frequent is seen "
                                      f"{max(counts.values()):,} times); lower it")
            kept = sorted([*kept, UNKNOWN])
        if len(kept) > MAX_SYMBOLS:
            raise ScratchRNNError(f"the text has {len(kept):,} distinct characters, more than "
                                  f"the {MAX_SYMBOLS:,} a vocabulary may hold; raise "
                                  "`min_count` or use `vocab` bytes")
        return cls("".join(kept))

    @classmethod
    def named(cls, name: str) -> Vocab:
        """The fixed vocabularies by name (corpus and unicode are built from the text)."""
        if name == "ascii":
            return cls.ascii()
        if name == "seed":
            return cls.seed()
        if name == "bytes":
            return cls.bytes()
        raise ScratchRNNError(f"unknown vocabulary {name!r}; choose ascii, seed or bytes")

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Vocab) and other.chars == self.chars
                and other.kind == self.kind)

    def __repr__(self) -> str:
        return f"Vocab({self.chars!r})" if self.kind == "chars" else "Vocab.bytes()"

    def coerce(self, ascii_text: str) -> str:
        """Map every character outside an ASCII vocabulary to a space (the catch-all cleaning
        step of ASCII text)."""
        return ascii_text.translate(self._coerce)

    def ids_of(self, codes: np.ndarray, strict: bool = False) -> np.ndarray:
        """Code points (N,) -> ids (N,) of a chars vocabulary; a code point it has no symbol
        for reads as UNKNOWN (else a space), or, `strict`, is one clear error."""
        at = np.minimum(np.searchsorted(self._sorted, codes), len(self.chars) - 1)  # (N,)
        known = self._sorted[at] == codes
        ids = self._order[at]
        if not known.all():
            if strict:
                missing = sorted({chr(c) for c in codes[~known].tolist()})
                raise ScratchRNNError(f"characters not in the vocabulary: {shown(missing)}")
            ids[~known] = self._fill
        return ids

    def encode(self, text: str) -> np.ndarray:
        """str -> ids (uint8, or uint16 beyond 256 symbols); refuses any character not in the
        vocabulary (a bytes vocabulary has every one)."""
        if self.kind == "bytes":
            return np.frombuffer(utf8(text), np.uint8).copy()
        if self.is_ascii:
            if not text.isascii():
                bad = sorted({c for c in text if not c.isascii()})
                raise ScratchRNNError(f"characters not in the vocabulary: {shown(bad)}")
            ids = self._table[np.frombuffer(text.encode("ascii"), np.uint8)]
            if ids.size and ids.min() < 0:
                bad = sorted({c for c in text if c not in self.chars})
                raise ScratchRNNError(f"characters not in the vocabulary: {shown(bad)}")
            return ids.astype(np.uint8)
        return self.ids_of(code_points(text), strict=True)

    def encode_coerced(self, text: str) -> np.ndarray:
        """Cleaned text -> ids, reading characters outside the vocabulary as UNKNOWN or a space
        (the catch-all cleaning step and the encoding in one vectorised lookup)."""
        if self.kind == "bytes":
            return np.frombuffer(utf8(text), np.uint8)
        if self.is_ascii:
            return self._coerce_table[np.frombuffer(text.encode("ascii"), np.uint8)]
        return self.ids_of(code_points(text))

    def decode(self, ids) -> str:
        ids = np.asarray(ids).ravel()
        if self.kind == "bytes":  # a character cut by the ends shows as U+FFFD
            return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")
        return "".join(self.chars[i] for i in ids)

    def writer(self):
        """A function from each next id to the text it completes ("" while a bytes
        vocabulary's character is incomplete) and, given None, what is left (U+FFFD for an
        incomplete character): how generated symbols become text as they come."""
        if self.kind == "chars":
            return lambda i: "" if i is None else self.chars[i]
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return lambda i: dec.decode(b"", final=True) if i is None else dec.decode(bytes((i,)))

    def clean(self, text: str) -> str:
        """Text cleaned as this vocabulary's corpus was: transliterated for an ASCII vocabulary
        (and newlines as spaces for the notebook's), the text's own characters otherwise."""
        if self.is_ascii:
            text = to_ascii(text)
            return text if "\n" in self.chars else text.replace("\n", " ")
        return to_unicode(text)

    def clean_prompt(self, prompt: str) -> np.ndarray:
        """Clean a prompt like the corpus, then encode it; unknown characters are an error."""
        check_unicode(prompt, "the prompt")
        text = self.clean(prompt)
        if self.kind == "bytes":
            return self.encode(text)
        bad = sorted(set(text) - set(self.chars))
        if bad and self.is_ascii and not prompt.isascii():  # name what was typed ('ж'), not
            # its transliteration ('z'), when that is what the model lacks
            bad = sorted({c for c in prompt if not set(self.clean(c)) <= set(self.chars)}) or bad
        if bad:
            hint = ("train with `vocab` unicode to keep a text's own characters" if self.is_ascii
                    else "remove them, or write U+FFFD for them: the model read every character "
                    "rarer than its `min_count` as that" if UNKNOWN in self.chars
                    else "remove them, or train on a text that has them")
            raise ScratchRNNError(f"the prompt has characters this model has never seen: "
                                  f"{shown(bad)}; {hint}")
        return self.encode(text)


def check_unicode(text: str, what: str) -> None:
    """One clear error when `text` (a prompt, a stop text) holds a lone surrogate: JSON's
    "\ud800", or a command-line byte that is not UTF-8, which Python reads as one."""
    if lone := SURROGATES.search(text):
        raise ScratchRNNError(f"{what} holds {shown([lone.group()])}, half a surrogate pair or a "
                              "byte that is not UTF-8, which is not a character; pass valid "
                              "Unicode text")


def code_points(text: str) -> np.ndarray:
    """str -> (N,) uint32 code points."""
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), "<u4")


def utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ScratchRNNError("the text holds half a surrogate pair, which is not a character; "
                              "pass valid Unicode text") from None


def shown(chars: list[str], most: int = 12) -> str:
    """Characters for a message: each quoted with its code point, so an invisible or
    look-alike one can be told apart ('ж' U+0436)."""
    out = ", ".join(f"{c!r} U+{ord(c):04X}" for c in chars[:most])
    return out + (f" and {len(chars) - most:,} more" if len(chars) > most else "")
