"""What each position of an inspection stands for in the text. A chars vocabulary's position is
one character. A bytes vocabulary's is one UTF-8 byte: it belongs to the character whose bytes
it is part of, and a character's last byte is where the model has read all of it. Bytes that
are no UTF-8 read as U+FFFD, grouped exactly as `vocab.decode` (Python's decoder) groups them,
so the characters are those of `vocab.decode(ids)`."""

from __future__ import annotations

import codecs
import threading

import numpy as np

from ..data.vocab import Vocab

_HANDLER = "scratchrnn.inside.glyphs"  # 'replace' that also says where each U+FFFD came from
_spans = threading.local()


def _replace_and_record(e: UnicodeDecodeError) -> tuple[str, int]:
    _spans.found.append((e.start, e.end))
    return "\ufffd", e.end


codecs.register_error(_HANDLER, _replace_and_record)


def char_of(vocab: Vocab, ids: np.ndarray) -> np.ndarray:
    """(T,) int64: for each position, the index in `vocab.decode(ids)` of its character."""
    ids = np.asarray(ids)
    if vocab.kind != "bytes":
        return np.arange(len(ids))
    b = ids.astype(np.uint8)
    starts = (b & 0xC0) != 0x80  # (T,) where a character begins: a byte that is not 10xxxxxx
    _spans.found = []
    b.tobytes().decode("utf-8", _HANDLER)
    for first, end in _spans.found:  # each broken run of bytes is one U+FFFD
        starts[first:end] = False
        starts[first] = True
    return np.cumsum(starts) - 1


def _pending(b: np.ndarray) -> list[bytes]:
    """For each position t, the bytes of a character begun and not yet complete after byte t
    (what a next byte would continue), as Python's decoder holds them."""
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    out = []
    for x in b.tolist():
        dec.decode(bytes((x,)))
        out.append(dec.getstate()[0])
    return out


def guess_labels(ids: np.ndarray, guesses: np.ndarray) -> list[str]:
    """How each guessed next byte reads after the bytes before it: the character it completes,
    "D0…" when it begins or continues one, or "FF✗" when it cannot follow (the text would show
    U+FFFD). `guesses` is (T, m) byte values: row t guesses what follows position t."""
    pending = _pending(np.asarray(ids).astype(np.uint8))
    strict = codecs.getincrementaldecoder("utf-8")()
    out = []
    for t, row in enumerate(np.asarray(guesses).tolist()):
        for g in row:
            strict.reset()
            try:
                text = strict.decode(pending[t] + bytes((g,)))
            except UnicodeDecodeError:
                out.append(f"{g:02X}\u2717")
                continue
            out.append(text[-1:] if text else f"{g:02X}\u2026")
    return out
