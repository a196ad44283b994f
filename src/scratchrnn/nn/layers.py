"""Non-recurrent layers as forward/backward pairs: embedding (row gather), dense projection,
softmax cross-entropy and inverted dropout. All work on every position of a window at once.

Softmax cross-entropy: loss = mean_n [logsumexp(z_n) - z_n[y_n]], whose gradient is
(softmax(z) - onehot(y)) / N (Bishop, PRML 4.3.4).
"""

from __future__ import annotations

import numpy as np


def embedding_forward(ids: np.ndarray, W: np.ndarray, b: np.ndarray):
    """ids (T, B) -> W[ids] + b, (T, B, D). A row gather: the one-hot product it replaces would
    multiply V-1 zeros for every character."""
    if W.shape[0] <= ids.size:  # b is added to the fewer rows: the V of the table (a
        out = np.take(W + b, ids, axis=0)  # character set) or the T*B gathered (a large one)
    else:
        out = np.take(W, ids, axis=0)
        out += b
    return out, (ids, W.shape[0])


def embedding_backward(dout: np.ndarray, cache):
    """dW = onehot(ids)^T @ dout, db = the sum of dout's rows."""
    ids, V = cache
    return {"W": gather_backward(dout, ids, V), "b": dout.reshape(-1, dout.shape[-1]).sum(axis=0)}


# Tables of up to this many rows get their gradient from the one-hot product (every vocabulary
# a byte holds, so their results stay those recorded); larger ones from a sorted sum.
ONEHOT_MAX_ROWS = 256


def gather_backward(dout: np.ndarray, ids: np.ndarray, V: int) -> np.ndarray:
    """The gradient of a (V, D) table read by row gather at ids: per row, the sum of dout
    (..., D) over the positions that read it. Up to ONEHOT_MAX_ROWS rows as onehot(ids)^T @
    dout: measured here, one (V, N) @ (N, D) product beats np.add.at by about 10x, because BLAS
    streams dout once while add.at scatters row by row. But that product's V*N*D multiply-adds
    grow with V, nearly all of them by zero (V=6400, N=1600, D=768: as many as the output
    layer's, 158 ms, and a 41 MB one-hot), so a larger table sorts the positions by id (stably:
    each row sums in the window's order) and adds each run of equal ids, N*D additions (10 ms)."""
    flat = ids.reshape(-1)
    d2 = dout.reshape(-1, dout.shape[-1])  # (N, D)
    if V <= ONEHOT_MAX_ROWS:
        onehot = np.zeros((flat.size, V), dout.dtype)  # (N, V)
        onehot[np.arange(flat.size), flat] = 1.0
        return onehot.T @ d2  # (V, D)
    order = np.argsort(flat, kind="stable")
    sorted_ids = flat[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])  # (U,) runs
    grad = np.zeros((V, d2.shape[1]), dout.dtype)
    grad[sorted_ids[starts]] = np.add.reduceat(d2[order], starts, axis=0)
    return grad  # (V, D)


def dense_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None):
    """x (..., I) -> x @ W + b, (..., O), as one product over all leading positions. b=None
    leaves the bias to the caller (the output layer adds it in the softmax's pass)."""
    x2 = x.reshape(-1, x.shape[-1])
    out = x2 @ W
    if b is not None:
        out += b
    return out.reshape(*x.shape[:-1], W.shape[1]), (x2, W, x.shape)


def dense_backward(dout: np.ndarray, cache, need_dx: bool = True):
    x2, W, shape = cache
    d2 = dout.reshape(-1, W.shape[1])
    grads = {"W": x2.T @ d2, "b": d2.sum(axis=0)}
    dx = (d2 @ W.T).reshape(shape) if need_dx else None
    return dx, grads


# Rows of logits per block of the softmax passes: about this many bytes, so that a block stays
# in cache from its max to its sum (and from its division to its scaling); the tests set it
# tiny to cross every block boundary. Each element sees the same operations in the same order
# as whole-array passes would give it, so the blocks change no result.
BLOCK_BYTES = 1 << 20


def row_blocks(logits: np.ndarray):
    """(start, stop) of the blocks of rows of (N, V) `logits` that the softmax passes take."""
    N, V = logits.shape
    rows = max(1, BLOCK_BYTES // (V * logits.itemsize))
    return [(i, min(i + rows, N)) for i in range(0, N, rows)]


def softmax_xent_forward(logits: np.ndarray, targets: np.ndarray, bias: np.ndarray | None = None):
    """logits (N, V), integer targets (N,) -> mean loss in nats; the cache is the gradient's
    raw material. Adds `bias` (V,) to every row first, if given, in the same pass over each
    block of rows. Overwrites `logits` to save a (N, V) temporary."""
    N = logits.shape[0]
    rows = np.arange(N)
    sums = np.empty((N, 1), logits.dtype)
    picked = np.empty(N, np.float64)  # (N,) shifted target logits, read before exp
    for a, b in row_blocks(logits):
        z = logits[a:b]
        if bias is not None:
            z += bias
        z -= z.max(axis=1, keepdims=True)  # exp cannot overflow now
        picked[a:b] = z[rows[:b - a], targets[a:b]]
        np.exp(z, out=z)
        z.sum(axis=1, keepdims=True, out=sums[a:b])
    loss = float(np.log(sums, dtype=np.float64).sum() - picked.sum()) / N
    return loss, (logits, sums, rows, targets, picked)


def softmax_xent_rows(cache) -> np.ndarray:
    """Each row's loss (N,) in float64, as the mean loss sums them: log(sum exp) minus the
    target's shifted logit (never the log of an exp that underflowed in float32)."""
    _, sums, _, _, picked = cache
    return np.log(sums[:, 0].astype(np.float64)) - picked


def softmax_xent_backward(cache, dloss: float = 1.0):
    """(softmax(z) - onehot(y)) * dloss / N, written over the forward pass's exp(z) block by
    block."""
    probs, sums, rows, targets, _ = cache
    scale = dloss / probs.shape[0]
    for a, b in row_blocks(probs):
        p = probs[a:b]
        p /= sums[a:b]
        p[rows[:b - a], targets[a:b]] -= 1.0
        p *= scale
    return probs  # (N, V), reuses the forward buffer


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax that stays finite for any finite logits (float32 included)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def dropout_mask(shape, p: float, rng: np.random.Generator, dtype) -> np.ndarray:
    """Inverted dropout: keep with probability 1 - p and scale by 1 / (1 - p), so evaluation
    needs no rescaling."""
    keep = rng.random(shape, dtype=np.float32) >= p
    return keep.astype(dtype) * np.asarray(1.0 / (1.0 - p), dtype)
