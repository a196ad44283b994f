"""What a training step and a validation cost on this machine, timed over a few real steps of
the run's own model on its own windows: `plan` (a dry run) and `auto` (settings from the
budget) read them. The weights trained while timing are thrown away."""

from __future__ import annotations

import time

import numpy as np

from ..data.corpus import make_streams, window, windows_per_epoch
from ..nn import optim
from ..nn.model import CharRNN, backward, forward
from ..store.config import TrainConfig
from ..threads import BlasThreads
from .evaluation import BURN_IN, chars_read, default_streams

MAX_TIMED = 20  # steps timed at most: the median of a few is steady enough
VAL_WINDOWS = 3  # validation windows timed, the median taken


def measure(cfg: TrainConfig, model: CharRNN, streams: np.ndarray, win: int, val: np.ndarray,
            budget: float) -> tuple[int, float, float, str]:
    """(steps timed, seconds a step, seconds a validation, the BLAS threads' line) of
    training `model` as the run would, on the run's own windows from window `win` on: one
    warm-up step, then up to MAX_TIMED steps while they fit in `budget` seconds; then
    validating `val` (validation_time). The weights trained here are thrown away."""
    opt_state = optim.init_state(cfg.optimizer, model.params)
    rng = np.random.default_rng([cfg.seed, 1])
    state = model.init_state(cfg.batch)
    n_win = windows_per_epoch(streams, cfg.seq_len)

    def one(k: int) -> float:
        nonlocal state
        t = time.perf_counter()
        x, y = window(streams, (win + k) % n_win, cfg.seq_len)  # (B, T) each
        _, state, cache = forward(model.params, model.config, x, y, state, rng)
        grads, _ = backward(cache, model.config)
        optim.clip(grads, cfg.clip_value, cfg.clip_norm)
        optim.update(cfg.optimizer, model.params, grads, opt_state, cfg.lr,
                     (cfg.beta1, cfg.beta2))
        if cfg.ema:
            optim.average(model.params, opt_state, cfg.ema)
        return time.perf_counter() - t

    with BlasThreads() as blas, np.errstate(over="ignore", invalid="ignore"):
        first = one(0)
        times: list[float] = []
        spent = first
        while len(times) < MAX_TIMED and spent + (times[-1] if times else first) <= budget:
            times.append(one(len(times) + 1))
            spent += times[-1]
            blas.line = blas.tick() or blas.line  # training follows the load so
        val_s = validation_time(model, val, cfg.seq_len, budget - spent)
    if not times:
        return 0, first, val_s, blas.line
    return len(times), float(np.median(times)), val_s, blas.line


def validation_time(model: CharRNN, val: np.ndarray, seq_len: int, budget: float) -> float:
    """Seconds `evaluate` takes over `val`, from the median of up to VAL_WINDOWS windows of
    its streams (those that fit in `budget` seconds; one at least): it reads every stream
    whole, and all but the first also the BURN_IN characters before it."""
    if len(val) < 2:  # training validates nothing then
        return 0.0
    streams = make_streams(val, default_streams(len(val)))  # (B, L)
    B, L = streams.shape
    T = min(seq_len, L - 1)
    reads = chars_read(len(val)) + (B - 1) * min(BURN_IN, L)
    times: list[float] = []
    while len(times) < VAL_WINDOWS and (not times or sum(times) + times[-1] <= budget):
        t = time.perf_counter()
        forward(model.params, model.config, streams[:, :T], streams[:, 1:T + 1],
                model.init_state(B))
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * reads / (B * T)
