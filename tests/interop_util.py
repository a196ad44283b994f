"""Shared by the export and import tests: models with every parameter random (biases too, so a
misplaced bias shows), scratchrnn's own logits for a text, and a real text to run."""

import numpy as np
from conftest import SHARED, SMALL_TEXT

from scratchrnn.data.vocab import Vocab, clean
from scratchrnn.nn.model import CharRNN, step


def random_model(cell, layers, vocab_size=96, hidden=24, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    model = CharRNN(vocab_size, hidden, cell, layers, seed=seed, dtype=dtype)
    for k, v in model.params.items():
        # recurrent weights with spectral radius below 1: chaotic dynamics would magnify
        # float32 rounding into differences that say nothing about the export
        std = 0.8 / np.sqrt(hidden) if k.endswith("W_h") else 0.4
        v[...] = rng.normal(0.0, std, v.shape)
    return model


def real_ids(vocab: Vocab, T=300, B=2) -> np.ndarray:
    """(T, B) ids of B slices of the book (or of SMALL_TEXT where the book is absent)."""
    path = SHARED / "pg98.txt"
    text = path.read_text(encoding="utf-8-sig")[40000:60000] if path.is_file() else SMALL_TEXT
    ids = vocab.encode(clean(text, vocab))
    return np.stack([ids[b * T:(b + 1) * T] for b in range(B)], axis=1)  # (T, B)


def random_state(model, B, seed=1) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0.0, 0.5, v.shape).astype(v.dtype)
            for k, v in model.init_state(B).items()}


def reference(model, ids, state=None):
    """scratchrnn's logits (T, B, V) for time-major ids and the final state, step by step."""
    state = model.init_state(ids.shape[1]) if state is None else state
    out = []
    for t in range(ids.shape[0]):
        logits, state = step(model.params, model.config, ids[t], state)
        out.append(logits)
    return np.stack(out), state


def stacked(state, key, layers):
    return np.stack([state[f"l{k}.{key}"] for k in range(layers)])  # (L, B, H)
