"""The vocabulary a model reads: an ordered set of symbols, the characters of any script or the
256 byte values of UTF-8, with ids of one byte up to 256 symbols and two beyond; and cleaning a
text into it (`clean`, `Vocab.clean_prompt`) as the corpus was cleaned (text.py's steps).

A vocabulary of ASCII characters reads text transliterated to ASCII (`text.to_ascii`); any other
reads the text's own characters (`text.to_unicode`), with UNKNOWN (U+FFFD), when it has it, for
characters it does not keep (`min_count`)."""

from __future__ import annotations

import codecs

import numpy as np

from ..errors import ScratchRNNError
from ..limits import MAX_SYMBOLS
from .text import CONTROLS, PRINTABLE, SURROGATES, strip_gutenberg, to_ascii, to_unicode

KINDS = ("chars", "bytes")
VOCABS = ("auto", "ascii", "seed", "corpus", "unicode", "bytes")  # the vocabularies by name
BYTES = "".join(map(chr, range(256)))  # a bytes vocabulary's symbols, byte value = index
UNKNOWN = "\ufffd"  # the symbol of the characters a vocabulary does not keep (`min_count`)


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
        incomplete character): how generated symbols become text as they come. A control
        character a bytes model writes (no cleaned corpus has one but the newline) is U+FFFD
        too: an escape byte sent to a terminal could rewrite what it shows."""
        if self.kind == "chars":
            return lambda i: "" if i is None else self.chars[i]
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return lambda i: CONTROLS.sub("\ufffd", dec.decode(b"", final=True) if i is None
                                      else dec.decode(bytes((i,))))

    def clean(self, text: str) -> str:
        """Text cleaned as this vocabulary's corpus was: transliterated for an ASCII vocabulary,
        the text's own characters otherwise; line breaks as the corpus read them."""
        text = to_ascii(text) if self.is_ascii else to_unicode(text)
        # A corpus without "\n" (one long line) read any as `fill` (a space, or U+FFFD): so is
        # a prompt's (a prompt file's last), not refused as a character never seen.
        return text if "\n" in self.chars else text.replace("\n", self.fill)

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
