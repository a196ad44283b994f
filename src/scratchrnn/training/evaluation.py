"""Held-out loss: the whole split read as parallel streams with the state carried across
windows, reported in nats/char, bits/char and perplexity.

The number to estimate is the loss of the model reading the split once, in order. Cutting the
split into B streams would start B - 1 of them mid-text from the zero state, which the model
pays for in its first predictions there (measured on the tinyshakespeare preset: ~8 nats per
stream over its first ~100 characters, 0.0035 nats/char over the split's 55 streams). So each
stream first reads the `burn_in` characters before its own start, unscored, and begins with the
state they leave.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from .. import limits
from ..data.corpus import make_streams
from ..data.prepare import check_file, text_chunks
from ..data.sources import expand
from ..data.vocab import UNKNOWN, Vocab, code_points, shown
from ..errors import ScratchRNNError
from ..nn.model import CharRNN, check_ids, check_model_memory, forward, window_memory

MIN_STREAM = 2000  # characters per default stream: the burn-in adds at most ~13% to the work
BURN_IN = 256  # unscored characters before each stream; 200 recover the whole-text loss to 1e-5


def evaluate(model: CharRNN, data: np.ndarray, seq_len: int = 100, batch: int | None = None,
             max_chars: int | None = None,
             should_stop: Callable[[], bool] | None = None,
             burn_in: int = BURN_IN) -> float | None:
    """Mean next-character cross-entropy (nats/char) over `data` (no dropout). Every stream
    but the first starts from the state of reading the `burn_in` characters before it (0: the
    zero state, as before 2026-12-05). `should_stop` is asked before every window; when it
    answers True the evaluation ends early and returns None (a loss over part of the text
    would not be the loss of the split)."""
    if not isinstance(model, CharRNN):
        raise ScratchRNNError(f"model must be a CharRNN, got {type(model).__name__}")
    limits.integer(seq_len, "seq_len", 1)
    limits.integer(batch, "batch", 1, none_ok=True)
    limits.integer(max_chars, "max_chars", 1, none_ok=True)
    limits.integer(burn_in, "burn_in", 0)
    if should_stop is not None and not callable(should_stop):
        raise ScratchRNNError("should_stop must be a function of no arguments, or None")
    if not hasattr(data, "__len__") or isinstance(data, str | bytes):
        raise ScratchRNNError(f"data must be a 1-D array of character ids, got "
                              f"{type(data).__name__}")
    if max_chars is not None:
        data = data[:max_chars]
    if len(data) < 2:
        return float("nan")
    data = check_ids("data", data, model.config.vocab_size, 1)
    if batch is None:
        batch = default_streams(len(data))
    if len(data) // batch < 2:
        raise ScratchRNNError(f"{len(data)} characters cannot be read as {batch} streams; "
                              "use a smaller batch or more text")
    streams = make_streams(data, batch)  # (B, L)
    window = min(seq_len, streams.shape[1] - 1)
    check_model_memory(model.config, window_bytes=window_memory(model.config, batch, window,
                                                                backward=False),
                       hints={"activations": "use a smaller seq_len or batch"})
    try:
        state, total, count = _burnt_in(model, data, streams.shape, window, burn_in, should_stop)
        _, scored, n = _read(model, streams, window, state, should_stop)
    except _Stopped:
        return None
    return (total + scored) / (count + n)


def default_streams(n_chars: int) -> int:
    """How many parallel streams `evaluate` reads n_chars characters as, given no batch."""
    return int(np.clip(n_chars // MIN_STREAM, 1, 64))


def chars_read(n_chars: int) -> int:
    """How many of n_chars characters `evaluate` reads: its B streams of equal length leave
    out the last n_chars % B."""
    batch = default_streams(n_chars)
    return batch * (n_chars // batch)


class _Stopped(Exception):
    """should_stop answered True: the evaluation ends without a loss."""


def _read(model, streams, window, state, should_stop):
    """Read streams (B, N) from `state` in windows of `window` inputs, each predicting the
    next character -> (state after them, summed loss, predictions). should_stop is asked
    before every window."""
    total, count = 0.0, 0
    for start in range(0, streams.shape[1] - 1, window):
        if should_stop is not None and should_stop():
            raise _Stopped
        y = streams[:, start + 1:start + window + 1]
        x = streams[:, start:start + y.shape[1]]
        loss, state, _ = forward(model.params, model.config, x, y, state)
        total += loss * y.size
        count += y.size
    return state, total, count


def _burnt_in(model, data, shape, window, burn_in, should_stop):
    """(states, loss, count) for streams of `shape`: the (B, H) states they start from, row b
    that of reading the min(burn_in, L) characters before stream b (row 0 the zero state: its
    stream starts the text), and the summed loss of predicting each later stream's first
    character, which none of its own windows does, over their count."""
    B, L = shape
    state = model.init_state(B)
    burn = min(burn_in, L) if B > 1 else 0
    if burn == 0:
        return state, 0.0, 0
    starts = np.arange(1, B) * L  # (B-1,) where the streams after the first start
    before = data[starts[:, None] + np.arange(-burn, 1)]  # (B-1, burn+1), ending at that start
    rest, _, _ = _read(model, before[:, :burn], window, model.init_state(B - 1),
                       should_stop)  # unscored: all but the last character before the start
    # that last one predicts the stream's first character: scored, like any other
    rest, total, count = _read(model, before[:, burn - 1:], 1, rest, should_stop)
    for k, v in state.items():
        v[1:] = rest[k]
    return state, total, count


def held_out(corpus, split: str, val_chars: int | None = None) -> tuple[np.ndarray, int]:
    """(the characters a read-only command scores, the split's length) for `split` of `corpus`
    ("all" is the whole corpus in `train`, as run_corpus(whole=True) gives it): the val split
    cut to the run's `val_chars`, as training scored it. A split too short to predict anything
    is refused, naming the flag that emptied it."""
    data = corpus.train if split == "all" else getattr(corpus, split)
    if len(data) < 2:
        frac = {"val": corpus.fracs[0], "test": corpus.fracs[1]}.get(split)
        why = (f"there is no {split} split: the run was trained with --{split}-frac 0"
               if frac == 0 else f"the {split} split of {corpus.name} has {len(data)} "
               "characters, too few to predict")
        raise ScratchRNNError(f"{why}; pick another `split` or pass `text` FILE")
    scored = data[:val_chars] if split == "val" and val_chars else data
    return scored, len(data)


def report(nats: float) -> dict:
    return {"nats_per_char": nats, "bits_per_char": nats / math.log(2),
            "perplexity": math.exp(nats) if nats < 700 else float("inf")}


def unknown_characters(text, vocab: Vocab, encoding: str | None = None) -> int:
    """Count the characters of a text (a file, folder, glob or several) that `vocab` has no
    symbol for (cleaning reads them as its unknown symbol or a space, so a model with a
    corpus or unicode vocabulary would be scored on an altered text), and warn in one line
    when there are any. Newlines are not counted for a vocabulary without them: reading them
    as spaces is that vocabulary's definition (the notebook's). A bytes vocabulary has none."""
    if vocab.kind == "bytes":
        return 0
    known = set(vocab.chars) | ({"\n"} if vocab == Vocab.seed() else set())
    count, total, seen = 0, 0, set()
    known_codes = code_points("".join(known))  # (K,)
    for path in expand(text, encoding):
        check_file(path)
        for piece in text_chunks(path, vocab.is_ascii, encoding):  # cleaned, up to the vocab
            total += len(piece)
            if vocab.is_ascii:  # one vectorised pass over ASCII codes
                codes = np.frombuffer(piece.encode("ascii"), np.uint8)  # (N,)
                unknown = np.ones(128, bool)  # (128,) by ASCII code: no symbol for it
                unknown[[ord(c) for c in known]] = False
                hit = codes[unknown[codes]]
                count += hit.size
                seen.update(map(chr, np.unique(hit).tolist()))
            else:  # one vectorised lookup, whatever the number of distinct characters
                codes = code_points(piece)  # (N,)
                hit = codes[~np.isin(codes, known_codes)]
                count += hit.size
                seen.update(map(chr, np.unique(hit).tolist()))
    if count:
        where = text if isinstance(text, str) else ", ".join(map(str, text))
        instead = {UNKNOWN: "UNKNOWN (U+FFFD)", " ": "spaces"}.get(vocab.fill,
                                                                  shown([vocab.fill]))
        warnings.warn(f"{count:,} of {total:,} characters of {where} ({100 * count / total:.2g}%) "
                      f"are not in the model's vocabulary ({shown(sorted(seen))}) and are read "
                      f"as {instead}; the loss is that of the text so changed", stacklevel=2)
    return count
