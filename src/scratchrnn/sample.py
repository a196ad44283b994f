"""Text generation: feed the prompt, then draw one character at a time from the model's
softmax, optionally sharpened by temperature and truncated by top-k or nucleus (top-p)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .errors import ScratchRNNError
from .layers import softmax
from .model import CharRNN
from .text import Vocab


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not (temperature > 0 and np.isfinite(temperature)):
        raise ScratchRNNError(f"--temperature must be positive, got {temperature}; use "
                              "--argmax for the most likely character every time")
    if top_k is not None and top_k < 1:
        raise ScratchRNNError(f"--top-k must be 1 or more, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ScratchRNNError(f"--top-p must be in (0, 1], got {top_p}")


def filter_probs(probs: np.ndarray, top_k: int | None, top_p: float | None) -> np.ndarray:
    """Zero all but the top-k characters and/or the smallest set whose mass reaches top_p."""
    probs = probs.astype(np.float64)
    order = np.argsort(-probs, kind="stable")
    keep = np.zeros(len(probs), bool)
    n = len(probs) if top_k is None else min(top_k, len(probs))
    if top_p is not None:
        mass = np.cumsum(probs[order]) / probs.sum()
        n = min(n, int(np.searchsorted(mass, top_p * (1 - 1e-12))) + 1)
    keep[order[:n]] = True
    probs[~keep] = 0.0
    return probs / probs.sum()


def generate(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             argmax: bool = False, seed: int | None = 0) -> Iterator[str]:
    """Yield `length` generated characters (the prompt itself is not repeated)."""
    if len(vocab) != model.config.vocab_size:
        raise ScratchRNNError("the vocabulary does not match the model")
    if length < 0:
        raise ScratchRNNError("--length must be 0 or more")
    check_sampling(temperature, top_k, top_p)
    ids = vocab.clean_prompt(prime) if prime else vocab.clean_prompt(
        "\n" if "\n" in vocab.chars else " ")
    rng = np.random.default_rng(seed)
    state = model.init_state(1)
    logits = None
    for i in ids:  # feed the prompt; its last logits predict the first new character
        logits, state = model.step(np.array([i]), state)
    for _ in range(length):
        z = logits[0].astype(np.float64)
        if argmax:
            nxt = int(np.argmax(z))
        else:
            probs = softmax(z / temperature)
            if top_k is not None or top_p is not None:
                probs = filter_probs(probs, top_k, top_p)
            nxt = int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), side="right"))
            nxt = min(nxt, len(probs) - 1)
        yield vocab.chars[nxt]
        logits, state = model.step(np.array([nxt]), state)


def sample(model: CharRNN, vocab: Vocab, prime: str = "", length: int = 200,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           argmax: bool = False, seed: int | None = 0) -> str:
    """The prompt followed by `length` generated characters."""
    return prime + "".join(generate(model, vocab, prime, length, temperature, top_k, top_p,
                                    argmax, seed))
