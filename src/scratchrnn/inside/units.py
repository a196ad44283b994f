"""Text properties (inside quotes, line length, ...) and the units whose activations follow them
(Karpathy, Johnson & Fei-Fei 2015, 'Visualizing and understanding recurrent networks')."""

from __future__ import annotations

import unicodedata

import numpy as np

# ---------------------------------------------------------------------------- text properties

PROPERTIES = {
    "in_quotes": "inside quotation marks",
    "bracket_depth": "depth of brackets",
    "line_position": "characters since the last newline",
    "word_position": "position inside the current word",
    "in_word": "inside a word (a letter)",
    "sentence_start": "after a sentence's end, before the next word",
    "after_newline": "a newline",
    "vowel": "a vowel",
    "uppercase": "an uppercase letter",
    "space": "a space",
}
CONTEXT = 4096  # characters of the text before an excerpt that decide where it starts
# Any script. Each set begins with its ASCII members, and the others never occur in ASCII
# text, so an ASCII text reads exactly what it always read (tests/test_golden.py).
_BLANKS = [0x20, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000]  # Unicode's Zs
_SPACE = np.array([0, 9, 10, 13, *_BLANKS])  # 0: the text's start or end
_OPENERS = np.array([ord(c) for c in "([{-–—（［｛【《〈"])
_CLOSERS = np.array([0, 9, 10, 13, *_BLANKS] + [ord(c) for c in
                                                "!),-.:;?]}–—…、。！），．：；？］｝】》〉،؟۔।"])
_BRACKETS = ("()", "[]", "{}", "（）", "［］", "｛｝", "【】", "《》", "〈〉")
_OPENING = "«「„‹『"  # quotes that say they open (and “, but in German quotes)
_CLOSING = "»」”›』"
# Kinds of quotation mark, each followed on its own, so that one nested in another (『』 in
# 「」, „“ in «») does not end the outer quotation. " and ＂ read their direction from their
# neighbours; the others show it.
_QUOTE_KINDS = ('"＂“”„', "«»", "‹›", "「」", "『』")
_SENTENCE_ENDS = ".!?…。！？．｡؟۔।॥"
_QUIET = " \n\"'‘’＂“" + _OPENING + _CLOSING + "".join(map(chr, _BLANKS))  # after an end
# Vowels: Latin and Greek by the base letter (é, ö, ά are vowels); Cyrillic by the letter
# itself, since и is the base of й, a consonant.
_BASE_VOWELS = "aeiouAEIOUæøœÆØŒαεηιουωΑΕΗΙΟΥΩ"
_CYRILLIC_VOWELS = "аеёиоуыэюяєіїАЕЁИОУЫЭЮЯЄІЇ"


def _quote_direction(c: np.ndarray, at: np.ndarray, known_start: bool) -> np.ndarray:
    """+1 (opening), -1 (closing) or 0 (cannot tell) for each quote at positions `at` of the
    code points `c`. Curly quotes and guillemets say it themselves; a straight one is read from
    its neighbours: an opening quote follows a space, the start, a bracket or a dash and
    precedes a word; a closing one follows a word or punctuation and precedes a space,
    punctuation or the end. At an excerpt's start (known_start False) what came before is
    unknown: the next character alone decides."""
    prev = np.where(at > 0, c[np.maximum(at - 1, 0)], 0 if known_start else -1)
    nxt = np.where(at + 1 < len(c), c[np.minimum(at + 1, len(c) - 1)], 0)
    opens = (np.isin(prev, _SPACE) | np.isin(prev, _OPENERS) | (prev < 0)) & ~np.isin(
        nxt, _CLOSERS)
    closes = ~np.isin(prev, _SPACE) & np.isin(nxt, _CLOSERS)
    d = np.where(opens & ~closes, 1, np.where(closes & ~opens, -1, 0))
    q = c[at]
    german = 0x201E in c  # „ opens German quotes and “, which opens English ones, closes them
    d[np.isin(q, _ords(_OPENING + ("" if german else "“")))] = 1
    d[np.isin(q, _ords(_CLOSING + ("“" if german else "")))] = -1
    return d


def _in_quotes(c: np.ndarray, known_start: bool) -> np.ndarray:
    """1 inside a quotation of any kind (see _in_quotes_of)."""
    kinds = [_in_quotes_of(c, at, known_start) for kind in _QUOTE_KINDS
             if (at := np.flatnonzero(np.isin(c, _ords(kind)))).size]
    return np.maximum.reduce(kinds) if kinds else np.zeros(len(c))


def _in_quotes_of(c: np.ndarray, at: np.ndarray, known_start: bool) -> np.ndarray:
    """1 after an opening quote (at positions `at`, of one kind) up to its closing one. Each
    quote whose direction shows sets the state (so a paragraph of a long quotation that opens
    again without closing does not flip the rest of the text); one that does not show toggles
    it. Where a text cut from a
    longer one starts (known_start False) is read from its first quote whose direction shows:
    a closing one means it began inside a quotation."""
    d = _quote_direction(c, at, known_start)
    j = np.arange(at.size)
    shown = np.flatnonzero(d)
    start = 0
    if shown.size and not known_start:
        start = int(d[shown[0]] < 0) ^ (shown[0] % 2)  # the unknowns before it each toggled
    last = np.maximum.accumulate(np.where(d != 0, j, -1))  # the last quote that showed
    after = np.where(last >= 0, (d[np.maximum(last, 0)] > 0) ^ ((j - last) % 2),
                     (start + j + 1) % 2)  # the state after quote j: unknowns toggle
    state = np.full(len(c), start, np.int64)
    idx = np.searchsorted(at, np.arange(len(c)), side="right") - 1  # last quote at or before t
    has = idx >= 0
    state[has] = after[idx[has]]
    return state.astype(np.float64)


def properties(text: str, before: str | None = None) -> dict[str, np.ndarray]:
    """Per-character properties of `text`, each (T,) float64, describing the situation after
    reading character t (what a unit's state at t could track).

    `before` is the text that precedes `text` in its source, when known ("" when `text` is the
    start of it): the properties go on from where its last CONTEXT characters leave them. When
    it is None, an excerpt's start is read from the excerpt itself: if its first quote whose
    direction shows is a closing one, it began inside a quotation; closing brackets before the
    first opening one of their kind say it began inside them."""
    if not before:
        return _properties(text, known_start=before == "")
    tail = before[-CONTEXT:]
    return {k: v[len(tail):] for k, v in _properties(tail + text, known_start=False).items()}


def _depth(opens: np.ndarray, closes: np.ndarray, known_start: bool) -> np.ndarray:
    """Depth of one kind of bracket. Closers that come before the first opener of their kind
    closed brackets opened before an excerpt (known_start False); any other closer with no
    opener is stray (a list's "1)"): the walk reflects at 0 rather than go below it."""
    depth = np.cumsum(opens.astype(np.int64) - closes)
    if not known_start:
        depth += int(closes[:int(np.argmax(opens)) if opens.any() else len(opens)].sum())
    return depth - np.minimum.accumulate(np.minimum(depth, 0))


def _ords(chars: str) -> list[int]:
    return [ord(ch) for ch in chars]


def _letters(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(letter, uppercase, vowel), each (T,) bool, for the code points `c` of any script, asked
    of each distinct code point once. A combining mark counts as a letter: it belongs to the
    letter before it (an accent typed apart, a Devanagari or Arabic vowel sign)."""
    u, inv = np.unique(c, return_inverse=True)  # (D,), (T,)
    chars = [chr(x) for x in u.tolist()]
    letter = [ch.isalpha() or unicodedata.category(ch)[0] == "M" for ch in chars]
    upper = [ch.isupper() for ch in chars]
    vowel = [ch in _CYRILLIC_VOWELS or unicodedata.normalize("NFD", ch)[0] in _BASE_VOWELS
             for ch in chars]
    return tuple(np.array(f, bool)[inv] for f in (letter, upper, vowel))


def _properties(text: str, known_start: bool) -> dict[str, np.ndarray]:
    c = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)  # code points
    c = c.astype(np.int64)  # (T,)
    T = len(c)
    idx = np.arange(T)
    is_ = lambda chars: np.isin(c, _ords(chars))
    letter, upper, vowel = _letters(c)
    newline = c == 10
    out = {}
    out["in_quotes"] = _in_quotes(c, known_start)
    depths = [_depth(c == ord(o), c == ord(x), known_start) for o, x in _BRACKETS
              if ord(o) in c or ord(x) in c]  # kinds of bracket that the text has
    out["bracket_depth"] = sum(depths, np.zeros(T, np.int64)).astype(np.float64)
    last_nl = np.maximum.accumulate(np.where(newline, idx, -1))  # as if a newline came first
    out["line_position"] = (idx - last_nl).astype(np.float64)
    # Start index of the current run of letters: the last non-letter before t, plus one.
    last_non = np.maximum.accumulate(np.where(~letter, idx, -1))
    out["word_position"] = np.where(letter, idx - last_non, 0).astype(np.float64)
    out["in_word"] = letter.astype(np.float64)
    # The last character that is not a space or a quote ends a sentence: a capital is due.
    last_sig = np.maximum.accumulate(np.where(~is_(_QUIET), idx, -1))
    out["sentence_start"] = ((last_sig >= 0)
                             & is_(_SENTENCE_ENDS)[np.maximum(last_sig, 0)]).astype(float)
    out["after_newline"] = newline.astype(np.float64)
    out["vowel"] = vowel.astype(np.float64)
    out["uppercase"] = upper.astype(np.float64)
    out["space"] = np.isin(c, _BLANKS).astype(np.float64)
    return out


def _standardise(m: np.ndarray) -> np.ndarray:
    """Columns of (T, n) to zero mean and unit norm (constant columns become zeros)."""
    m = m - m.mean(axis=0)
    norm = np.sqrt((m * m).sum(axis=0))
    return m / np.where(norm > 0, norm, np.inf)


def correlations(signal: np.ndarray, props: np.ndarray) -> np.ndarray:
    """Pearson correlation of every unit (column of (T, U)) with every property (column of
    (T, P)) as one (U, T) @ (T, P) product; 0 where either side is constant."""
    return _standardise(signal.astype(np.float64)).T @ _standardise(props)  # (U, P)


def find_units(layers: list[dict[str, np.ndarray]], props: dict[str, np.ndarray],
               top: int = 3) -> dict[str, list[tuple[int, str, int, float]]]:
    """For each property that varies in the text: the `top` (layer, signal, unit, corr) by
    |corr| over every unit of every signal of every layer."""
    names = [n for n, v in props.items() if v.size > 1 and v.std() > 0]
    if not names:
        return {}
    P = np.stack([props[n] for n in names], axis=1)  # (T, P)
    blocks, labels = [], []
    for k, layer in enumerate(layers):
        for s, v in layer.items():
            blocks.append(correlations(v, P))  # (H, P)
            labels.append((k, s, v.shape[1]))
    corr = np.concatenate(blocks)  # (units, P)
    where = [(k, s, u) for k, s, H in labels for u in range(H)]
    out = {}
    for j, name in enumerate(names):
        order = np.argsort(-np.abs(corr[:, j]), kind="stable")[:top]
        out[name] = [(*where[i], float(corr[i, j])) for i in order]
    return out
