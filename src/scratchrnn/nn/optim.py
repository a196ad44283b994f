"""Optimizers, gradient clipping and the learning-rate schedule, as generic loops over the flat
parameter dict. Optimizer state is a flat dict too (`m.<key>`, `v.<key>`, `t`), so checkpoints
save it like the parameters.

    sgd:     p -= lr g                                    (the notebook)
    adagrad: G += g^2;  p -= lr g / sqrt(G + 1e-8)        (min-char-rnn)
    adam:    Kingma & Ba 2015, with PyTorch's placement of eps and bias corrections

The optional weight average (`average`, Polyak & Juditsky 1992) lives in the same state dict.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ScratchRNNError

OPTIMIZERS = ("sgd", "adagrad", "adam")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
SLOTS = {"sgd": (), "adagrad": ("G",), "adam": ("m", "v")}  # per-parameter state of each


def init_state(name: str, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if name not in OPTIMIZERS:
        raise ScratchRNNError(f"unknown optimizer {name!r}; choose sgd, adagrad or adam")
    state = {"t": np.zeros((), np.int64)}
    for slot in SLOTS[name]:
        state.update({f"{slot}.{k}": np.zeros_like(p) for k, p in params.items()})
    return state


# Bytes per block of an update: a big matrix (the output layer's or the embedding's at a
# large vocabulary) is updated one block of about this many bytes of each array at a time, so
# that Adam's dozen elementwise passes run in cache, not memory (4.9M float32 numbers: 14 ->
# 9 ms, one thread). Every element sees the same operations, so no result changes.
BLOCK_BYTES = 1 << 20


def blocks(*arrays):
    """Matching flat blocks of equally shaped arrays (a parameter, its gradient, its state),
    as views; the arrays whole unless all are contiguous."""
    if not all(a.flags.c_contiguous for a in arrays):
        return [arrays]
    flat = [a.reshape(-1) for a in arrays]
    n = max(1, BLOCK_BYTES // arrays[0].itemsize)
    return [[a[i:i + n] for a in flat] for i in range(0, flat[0].size, n)]


def update(name: str, params, grads, state, lr: float,
           betas: tuple[float, float] = ADAM_BETAS) -> None:
    """One in-place update of `params` (and `state`) from `grads`; `grads` is used as scratch.
    `betas` are Adam's decay rates of the first and second moment estimates."""
    state["t"] += 1
    t = int(state["t"])
    for k, param in params.items():
        for p, g, *slots in blocks(param, grads[k], *(state[f"{s}.{k}"] for s in SLOTS[name])):
            _update(name, p, g, slots, lr, t, betas)


def _update(name, p, g, slots, lr, t, betas) -> None:
    if name == "sgd":
        g *= lr
        p -= g
    elif name == "adagrad":
        (G,) = slots
        G += g * g
        denom = np.sqrt(G + 1e-8)
        g *= lr
        g /= denom
        p -= g
    else:
        b1, b2 = betas
        m, v = slots
        m *= b1
        m += (1 - b1) * g
        v *= b2
        g *= g
        g *= 1 - b2
        v += g
        denom = np.sqrt(v, out=g)  # g is spent; reuse it
        denom *= 1.0 / math.sqrt(1 - b2 ** t)
        denom += ADAM_EPS
        np.divide(m, denom, out=denom)
        denom *= lr / (1 - b1 ** t)
        p -= denom


def average(params, state, decay: float) -> None:
    """Exponential moving average of the weights (Polyak averaging), kept in the optimizer state
    as `ema.<key>` so checkpoints and resumes carry it: avg += (1 - d)(p - avg) with
    d = min(decay, (1 + t) / (10 + t)), which forgets the first, far-off weights quickly
    (as timm's ModelEma). Call it after each update."""
    t = int(state["t"])
    d = min(decay, (1 + t) / (10 + t))
    for k, p in params.items():
        avg = state.get(f"ema.{k}")
        if avg is None:
            state[f"ema.{k}"] = p.copy()
        else:  # avg + (1 - d)(p - avg) as d (avg - p) + p, without two temporaries
            for a, q in blocks(avg, p):
                a -= q
                a *= d
                a += q


def averaged(params, state) -> dict[str, np.ndarray] | None:
    """The averaged weights kept by `average`, keyed like `params`; None if there are none."""
    if not all(f"ema.{k}" in state for k in params):
        return None
    return {k: state[f"ema.{k}"] for k in params}


def global_norm(grads) -> float:
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip(grads, clip_value: float | None = None, clip_norm: float | None = None) -> float:
    """Clip in place: elementwise to +-clip_value, then to a global norm of clip_norm.
    Returns the gradient norm before clipping (inf or nan flags a bad step)."""
    norm = global_norm(grads)
    if clip_value:
        for g in grads.values():
            np.clip(g, -clip_value, clip_value, out=g)
    if clip_norm and math.isfinite(norm):
        after = global_norm(grads) if clip_value else norm
        if after > clip_norm:
            scale = clip_norm / (after + 1e-12)
            for g in grads.values():
                g *= scale
    return norm


def learning_rate(base: float, step: int, warmup: int = 0, total_steps: int | None = None,
                  min_lr: float = 0.0, time_frac: float | None = None) -> float:
    """Linear warmup over `warmup` steps, then cosine decay from `base` to `min_lr` at the end
    of training: `total_steps`, or the time budget's end (`time_frac` of it spent), whichever
    comes first. With neither, the rate stays at `base` after warmup."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    fracs = [] if time_frac is None else [time_frac]
    if total_steps:
        fracs.append((step - warmup) / max(1, total_steps - warmup))
    if not fracs:
        return base
    progress = min(max(max(fracs), 0.0), 1.0)
    return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * progress))
