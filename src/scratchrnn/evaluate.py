"""Held-out loss: the whole split read as parallel streams with the state carried across
windows, reported in nats/char, bits/char and perplexity."""

from __future__ import annotations

import math

import numpy as np

from .data import make_streams
from .model import CharRNN, forward

MIN_STREAM = 2000  # characters per evaluation stream: the zero start state costs little past this


def evaluate(model: CharRNN, data: np.ndarray, seq_len: int = 100, batch: int | None = None,
             max_chars: int | None = None) -> float:
    """Mean next-character cross-entropy (nats/char) over `data` (no dropout)."""
    if max_chars is not None:
        data = data[:max_chars]
    if len(data) < 2:
        return float("nan")
    if batch is None:
        batch = int(np.clip(len(data) // MIN_STREAM, 1, 64))
    streams = make_streams(data, batch)  # (B, L)
    state = model.init_state(batch)
    total, count = 0.0, 0
    for start in range(0, streams.shape[1] - 1, seq_len):
        x = streams[:, start:start + seq_len]
        y = streams[:, start + 1:start + seq_len + 1]
        x = x[:, :y.shape[1]]
        loss, state, _ = forward(model.params, model.config, x, y, state)
        total += loss * y.size
        count += y.size
    return total / count


def report(nats: float) -> dict:
    return {"nats_per_char": nats, "bits_per_char": nats / math.log(2),
            "perplexity": math.exp(nats) if nats < 700 else float("inf")}
