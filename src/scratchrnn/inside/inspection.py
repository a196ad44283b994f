"""Looking inside a model: every layer's hidden state and gates under each character of a text,
the model's next-character guesses, and the units that track simple properties of the text.

All values come from the model's own batched forward pass (`model.forward` and the cells'
caches), run over windows of the text with the state carried, so memory stays bounded by the
window and the (T, H) arrays kept. Surprisal is -log p(next char) in nats, read from the
softmax cache exactly as the loss reads it, so its mean is `evaluate`'s loss on the same text.
Units are ranked by |Pearson correlation| with per-character properties, as Karpathy, Johnson
& Fei-Fei (2016), "Visualizing and Understanding Recurrent Networks", found cells by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..data.vocab import Vocab
from ..errors import ScratchRNNError
from ..nn.cells import SIGMOID, SIGNALS
from ..nn.layers import softmax_xent_rows
from ..nn.model import CharRNN, forward
from .glyphs import char_of
from .page import page_data, render_fragment
from .units import CONTEXT, find_units, properties

# Signals kept per layer and cell, in the order the page lists them.
WINDOW = 512  # characters per forward pass
MAX_BYTES = 2 << 30  # refuse an inspection whose arrays would pass this


@dataclass
class Inspection:
    """What a model does under each character of `text` (T characters, one stream).

    layers[k][signal] is (T, H): the value after reading character t. topk_*[t] and the
    next_* arrays describe the distribution after reading character t, i.e. the guess for
    character t + 1; next_* and surprisal have T - 1 entries (the last character has no
    successor)."""

    text: str
    ids: np.ndarray  # (T,)
    cell: str
    layers: list[dict[str, np.ndarray]]  # per layer: signal -> (T, H)
    topk_ids: np.ndarray  # (T, k)
    topk_probs: np.ndarray  # (T, k)
    next_prob: np.ndarray  # (T-1,)
    next_rank: np.ndarray  # (T-1,) 1 = the model's first guess
    surprisal: np.ndarray  # (T-1,) nats
    vocab: Vocab | None = None
    before: str | None = None  # the end of the text before this one (properties)
    _units: dict = field(default=None, repr=False)

    def __repr__(self) -> str:  # the arrays would fill a terminal
        unit = "byte" if self.vocab is not None and self.vocab.kind == "bytes" else "char"
        return (f"Inspection({self.cell}, {len(self.layers)} layers x {self.hidden_size}, "
                f"{len(self.ids):,} {unit}s, {self.mean_surprisal:.4f} nats/{unit})")

    @property
    def mean_surprisal(self) -> float:
        """Mean next-character cross-entropy in nats/char (`scratchrnn eval`'s number)."""
        return float(self.surprisal.mean()) if self.surprisal.size else float("nan")

    @property
    def bits_per_char(self) -> float:
        return self.mean_surprisal / math.log(2)

    @property
    def hidden_size(self) -> int:
        return self.layers[0]["h"].shape[1]

    def signal_names(self) -> tuple[str, ...]:
        return SIGNALS[self.cell]

    def head(self, n: int) -> Inspection:
        """The first `n` characters of this inspection (what a page of `n` characters shows);
        the same object when it has no more than that."""
        if n >= len(self.ids):
            return self
        text = self.vocab.decode(self.ids[:n]) if self.vocab else self.text[:n]
        return Inspection(text, self.ids[:n], self.cell,
                          [{s: v[:n] for s, v in layer.items()} for layer in self.layers],
                          self.topk_ids[:n], self.topk_probs[:n], self.next_prob[:n - 1],
                          self.next_rank[:n - 1], self.surprisal[:n - 1], self.vocab,
                          self.before)

    def units(self, top: int = 3) -> dict[str, list[tuple[int, str, int, float]]]:
        """The `top` (layer, signal, unit, correlation) per text property, best |corr| first."""
        if self._units is None or len(next(iter(self._units.values()), [])) < top:
            self._units = find_units(self.layers, self.properties(), max(top, 3))
        return {name: rows[:top] for name, rows in self._units.items()}

    def properties(self) -> dict[str, np.ndarray]:
        """The text's per-character properties that `units` ranks units by, each (T,): for a
        bytes vocabulary, each byte has those of the character it is part of."""
        props = properties(self.text, self.before)
        if self.vocab is None or self.vocab.kind != "bytes":
            return props
        owner = char_of(self.vocab, self.ids)  # (T,)
        return {name: v[owner] for name, v in props.items()}

    def saturation(self, low: float = 0.1, high: float = 0.9) -> list[dict[str, np.ndarray]]:
        """Per layer and sigmoid gate: (fraction of steps < low, fraction > high), each (H,)."""
        return [{s: np.stack([(v < low).mean(axis=0), (v > high).mean(axis=0)])
                 for s, v in layer.items() if s in SIGMOID} for layer in self.layers]

    def to_dict(self, levels: int = 64) -> dict:
        """JSON-ready page data (see visualize.page_data): h and c quantised to `levels`,
        gates and candidates to at most 32 (pack.py)."""
        return page_data(self, levels=levels)

    def _repr_html_(self) -> str:
        return render_fragment(self)


def inspect(model: CharRNN, vocab: Vocab, text: str, top_k: int = 5, clean: bool = True,
            window: int = WINDOW, before: str | None = None) -> Inspection:
    """Run `model` over `text` (cleaned as a prompt is, unless clean=False) from a zero state
    and keep every layer's signals and the next-character distribution's top-k. `before`:
    the text that precedes `text` in its source, if known ("" for its start), so that
    properties such as "inside quotation marks" start where it leaves them (see properties)."""
    if before is not None and not isinstance(before, str):
        raise ScratchRNNError(f"before must be a string or None, got {type(before).__name__}")
    if len(vocab) != model.config.vocab_size:
        raise ScratchRNNError("the vocabulary does not match the model")
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ScratchRNNError(f"top_k must be a positive whole number, got {top_k!r}")
    if not isinstance(window, int) or window < 1:
        raise ScratchRNNError(f"window must be a positive whole number, got {window!r}")
    ids = vocab.clean_prompt(text) if clean else vocab.encode(text)  # unknown chars: one error
    return inspect_ids(model, vocab, ids, top_k, window, before)


def inspect_ids(model: CharRNN, vocab: Vocab, ids: np.ndarray, top_k: int = 5,
                window: int = WINDOW, before: str | None = None) -> Inspection:
    """`inspect` of symbols already encoded (a run's corpus as it was prepared: a bytes
    vocabulary's text may begin or end inside a character, which decoding and encoding again
    would change)."""
    cfg = model.config
    T, H, k = len(ids), cfg.hidden_size, min(top_k, cfg.vocab_size)
    if T < 1:
        raise ScratchRNNError("there is no text to look at; pass a longer text")
    itemsize = np.dtype(cfg.dtype).itemsize
    need = T * (cfg.num_layers * len(SIGNALS[cfg.cell]) * H * itemsize + k * 16 + 32)
    if need > MAX_BYTES:
        raise ScratchRNNError(f"looking at {T:,} characters would take {need / 2**30:.1f} GiB; "
                              "pass a shorter text")
    layers = [{s: np.empty((T, H), cfg.dtype) for s in SIGNALS[cfg.cell]}  # (T, H) each
              for _ in range(cfg.num_layers)]
    topk_ids = np.empty((T, k), np.int64)  # (T, k)
    topk_probs = np.empty((T, k), cfg.dtype)  # (T, k)
    next_prob = np.empty(T - 1, cfg.dtype)  # (T-1,)
    next_rank = np.empty(T - 1, np.int64)  # (T-1,)
    surprisal = np.empty(T - 1, np.float64)  # (T-1,)
    state = model.init_state(1)
    ids64 = ids.astype(np.int64)
    for a in range(0, T, window):
        b = min(a + window, T)
        x = ids64[a:b][None]  # (1, W)
        # The last character has no successor: its target is a placeholder whose loss is unused.
        y = ids64[a + 1:b + 1]
        y = np.concatenate([y, np.zeros(b - a - len(y), np.int64)])[None]  # (1, W)
        _, state, (caches, _, ce_cache) = forward(model.params, cfg, x, y, state)
        for k_layer, (_, cell_cache, *_) in enumerate(caches):
            for name, value in cell_cache.signals().items():
                layers[k_layer][name][a:b] = value[:, 0]  # (W, H): one stream
        e, sums, rows, _, _ = ce_cache  # e = exp(logits - max) (W, V), sums (W, 1)
        probs = e / sums  # (W, V)
        top = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (W, k)
        topk_ids[a:b] = top
        topk_probs[a:b] = np.take_along_axis(probs, top, axis=1)
        n = min(b, T - 1) - a  # positions of this window that have a next character
        if n > 0:
            tgt = ids64[a + 1:a + 1 + n]
            p = probs[rows[:n], tgt]  # (n,)
            next_prob[a:a + n] = p
            next_rank[a:a + n] = 1 + (probs[:n] > p[:, None]).sum(axis=1)
            surprisal[a:a + n] = softmax_xent_rows(ce_cache)[:n]  # as the loss computes it
    return Inspection(vocab.decode(ids), ids, cfg.cell, layers, topk_ids, topk_probs, next_prob,
                      next_rank, surprisal, vocab, before and before[-CONTEXT:])
