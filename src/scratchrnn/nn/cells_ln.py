"""The layer-normalised GRU over a whole window: a forward/backward pair like cells.py's, and
the input layer that feeds it.

Layer normalisation inside the recurrent cell (Ba, Kiros & Hinton 2016, "Layer Normalization",
section 3.1 and the GRU of their appendix): each gate's pre-activation, from the input and from
the state alike, is normalised over its H units before the gates read it, which keeps the
recurrent drive at one scale whatever W_h has grown to. PyTorch's gate order r z n; no learned
shift, since the cell's biases already play that role:

    ax = LN(x W_x) * g_x + b             x W_x (T, B, 3H), LN per gate group of H, g_x (3H,)
    ah = LN(h W_h) * g_h                 per step, (B, 3H), g_h (3H,)
    [r z] = s(ax_rz + ah_rz);  n = tanh(ax_n + r (ah_n + b_hn));  h' = (1 - z) n + z h

with LN(v) = (v - mean(v)) / sqrt(var(v) + eps), eps = 1e-5 (torch.nn.functional.layer_norm).
`drive_forward` computes ax for the whole window, as one batched operation (for the first
layer, whose x W_x is a row of W_x, on W_x's V rows before the gather); the cell's `forward`
takes ax, as cells.py's cells take x W_x + b, and its per-step loop does only the recurrent
normalisation. The backward pass of LN, for x_hat = (v - mean) * rstd and an upstream dx_hat, is

    dv = rstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat))     (means over H)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import layers
from .cells import block_steps, gru_factors, gru_gates, gru_signals, transposed

EPS = 1e-5


def _rows(a, H):
    """a (..., k*H) as (N, H) rows of the same memory: a view, which the in-place arithmetic
    below needs (a reshape of a non-contiguous array would silently be a copy)."""
    if not a.flags.c_contiguous:
        raise ValueError("layer normalisation works in place on C-contiguous arrays")
    return a.reshape(-1, H)


def _centre(rows):
    """Subtract each row's mean from rows (N, H), in place: a matrix-vector product with 1/H,
    which costs less than ndarray.mean's Python wrapper at these sizes."""
    rows -= (rows @ np.full(rows.shape[1], 1.0 / rows.shape[1], rows.dtype))[:, None]


def normalise(v, G):
    """v (..., G*H), contiguous, to zero mean and unit variance over each of its G groups, in
    place; returns the (..., G, 1) reciprocal standard deviations.

    The sums over H are a matrix-vector product with 1/H and an einsum dot product, not
    ndarray.mean: mean's Python wrapper and the g * g temporary cost ~30% of this function
    at the preset's (32, 1152) per step (benchmarks in BENCHMARKS.md)."""
    H = v.shape[-1] // G
    g = _rows(v, H)  # (N*G, H)
    _centre(g)
    rstd = np.einsum("ij,ij->i", g, g)  # (N*G,) sums of squares
    rstd *= 1.0 / H
    rstd += EPS
    np.sqrt(rstd, out=rstd)
    np.divide(1.0, rstd, out=rstd)
    g *= rstd[:, None]
    return rstd.reshape(*v.shape[:-1], G, 1)


def normalise_backward(dxh, xh, rstd, G, tmp):
    """dL/dv from dL/dx_hat (both (..., G*H), contiguous) for x_hat = LN(v), in place in dxh,
    with `tmp` (dxh's shape; it may be xh itself, which it then overwrites) as scratch."""
    H = dxh.shape[-1] // G
    d, x, t = _rows(dxh, H), _rows(xh, H), _rows(tmp, H)  # (N*G, H) each
    dot = np.einsum("ij,ij->i", d, x)  # (N*G,) sums of dx_hat * x_hat, then their means
    dot *= 1.0 / H
    _centre(d)
    np.multiply(x, dot[:, None], out=t)
    d -= t
    d *= rstd.reshape(-1, 1)
    return dxh


def affine_forward(v, g, b):
    """v (..., 3H), overwritten by LN(v) -> (LN(v) g + b, cache): the input drive of a
    layer-normalised layer, here for a window and in sample.py for one character."""
    rstd = normalise(v, 3)  # (..., 3, 1); v now holds x_hat
    out = np.multiply(v, g)  # (..., 3H)
    out += b
    return out, (v, rstd, g)


def affine_backward(dout, cache):
    """-> (dL/dv, {"b", "ln_x"}); dout is overwritten, and so is the cache's x_hat, which
    nothing reads after this and which serves as LN's scratch instead of a new (N, 3H)."""
    xhat, rstd, g = cache
    grads = {"b": dout.sum(axis=0), "ln_x": np.einsum("ij,ij->j", dout, xhat)}
    dout *= g
    return normalise_backward(dout, xhat, rstd, 3, tmp=xhat), grads


def drive_forward(x, p, first: bool):
    """A layer's input -> its cell's drive ax = LN(x W_x) g_x + b, (T, B, 3H), and a cache.

    x is the first layer's ids (T, B), whose x W_x is a row of W_x: W_x's V rows are normalised
    once and gathered, the same drive as normalising T*B gathered rows (V / (T*B) of the
    work: 96 rows against 1,600 for 32 streams of 50). Otherwise x (T, B, I) is the layer
    below's output, projected as one product over the window."""
    if first:
        table, cache = affine_forward(p["W_x"].copy(), p["ln_x"], p["b"])  # (V, 3H)
        return np.take(table, x, axis=0), (x, None, cache)
    x2 = x.reshape(-1, x.shape[-1])  # (T*B, I)
    ax, cache = affine_forward(x2 @ p["W_x"], p["ln_x"], p["b"])  # (T*B, 3H)
    return ax.reshape(*x.shape[:-1], -1), (x2, p["W_x"], cache)


def drive_backward(dax, cache, first: bool):
    """dL/dax (T, B, 3H), overwritten -> (dL/dx or None for ids, {"W_x", "b", "ln_x"}).

    For the first layer each row of W_x gets the sum of dax over the positions that read it
    (layers.gather_backward), then LN's backward once per row: for a fixed row LN's backward
    is linear in its upstream gradient, so summing first is exact."""
    x, W_x, aff = cache
    if first:
        dv = layers.gather_backward(dax, x, aff[0].shape[0])  # (V, 3H)
        dW, grads = affine_backward(dv, aff)
        return None, {"W_x": dW, **grads}
    dv, grads = affine_backward(dax.reshape(-1, dax.shape[-1]), aff)  # (T*B, 3H)
    dx = (dv @ W_x.T).reshape(*dax.shape[:-1], W_x.shape[0])  # (T, B, I)
    return dx, {"W_x": x.T @ dv, **grads}


class LNGRUCache(NamedTuple):
    hs: np.ndarray  # (T+1, B, H)
    rzs: np.ndarray  # (T, 2, B, H) sigmoid gates r, z
    ns: np.ndarray  # (T, B, H) candidates n
    hns: np.ndarray  # (T, B, H) ah_n + b_hn
    W_h: np.ndarray  # (H, 3H)
    hhat: np.ndarray  # (T, B, 3H) LN(h W_h) of every step
    rstd_h: np.ndarray  # (T, B, 3, 1)
    g_h: np.ndarray  # (3H,)
    signals = gru_signals


def forward(ax, state, p):
    """ax (T, B, 3H) the drive from `drive_forward`, state {"h": (B, H)}, p the layer's W_h,
    b_hn, ln_h -> (hs (T, B, H), state, cache)."""
    T, B, G = ax.shape
    H = G // 3
    W_h, b_hn, g_h = p["W_h"], p["b_hn"], p["ln_h"]
    hs = np.empty((T + 1, B, H), ax.dtype)
    rzs = np.empty((T, 2, B, H), ax.dtype)  # sigmoid gates r, z
    ns = np.empty((T, B, H), ax.dtype)  # candidate n
    hns = np.empty((T, B, H), ax.dtype)  # ah_n + b_hn, needed for dr
    hhat = np.empty((T, B, G), ax.dtype)  # LN(h W_h) of every step
    rstd_h = np.empty((T, B, 3, 1), ax.dtype)
    ah = np.empty((B, G), ax.dtype)
    hs[0] = state["h"]
    x_rz = ax[:, :, :2 * H].reshape(T, B, 2, H).transpose(0, 2, 1, 3)  # (T, 2, B, H)
    x_n = ax[:, :, 2 * H:]  # (T, B, H)
    ah_rz = ah[:, :2 * H].reshape(B, 2, H).transpose(1, 0, 2)  # (2, B, H)
    ah_n = ah[:, 2 * H:]  # (B, H)
    for t in range(T):
        v = hhat[t]
        np.matmul(hs[t], W_h, out=v)
        rstd_h[t] = normalise(v, 3)
        np.multiply(v, g_h, out=ah)
        gru_gates(x_rz[t], x_n[t], ah_rz, ah_n, b_hn, hs[t], rzs[t], ns[t], hns[t], hs[t + 1])
    return hs[1:], {"h": hs[T].copy()}, LNGRUCache(hs, rzs, ns, hns, W_h, hhat, rstd_h, g_h)


def backward(dhs, dstate, cache):
    """-> (dL/dax (T, B, 3H), {W_h, b_hn, ln_h}, {"h": dL/dh_0})."""
    hs, rzs, ns, hns, W_h, hhat, rstd_h, g_h = cache
    T, B, H = dhs.shape
    G = 3 * H
    W_hT = transposed(W_h, B)
    r_, z_ = rzs[:, 0], rzs[:, 1]  # (T, B, H) views
    dah = np.empty((T, B, G), dhs.dtype)  # wrt ah (+ b_hn); becomes dL/dax after the loop
    dah3 = dah.reshape(T, B, 3, H)
    dxn = np.empty((T, B, H), dhs.dtype)  # wrt ax_n (ax_rz's gradient is ah_rz's)
    dv = np.empty((T, B, G), dhs.dtype)  # wrt h W_h, before the normalisation
    dh = np.array(dstate["h"], dtype=dhs.dtype) if dstate else np.zeros((B, H), dhs.dtype)
    back = np.empty((B, H), dhs.dtype)
    tmp = np.empty((B, G), dhs.dtype)
    n = max(1, min(T, block_steps(B, G, dhs.itemsize)))  # block buffers no longer than the window
    # Each gate gradient is dh times a factor that does not depend on the recurrence, prepared
    # for a block of steps in gate-major buffers (as cells.gru_backward).
    fac = np.empty((n, 3, B, H), dhs.dtype)  # [dr, dz, dn r] per unit of dh
    dnf = np.empty((n, B, H), dhs.dtype)  # (1 - z)(1 - n^2): dn per unit of dh
    omz = np.empty((n, B, H), dhs.dtype)
    for t1 in range(T, 0, -n):
        t0 = max(0, t1 - n)
        m, w = t1 - t0, slice(t0, t1)
        gru_factors(r_[w], z_[w], ns[w], hs[w], hns[w], fac[:m], dnf[:m], omz[:m])
        for t in range(t1 - 1, t0 - 1, -1):
            j = t - t0
            dh += dhs[t]
            np.multiply(fac[j].transpose(1, 0, 2), dh[:, None], out=dah3[t])
            np.multiply(dnf[j], dh, out=dxn[t])
            d = dv[t]
            np.multiply(dah[t], g_h, out=d)
            normalise_backward(d, hhat[t], rstd_h[t], 3, tmp)
            dh *= z_[t]  # the direct path h' = ... + z h
            np.matmul(d, W_hT, out=back)
            dh += back
    flat = lambda a: a.reshape(-1, G)  # (T*B, 3H)
    grads = {"W_h": hs[:-1].reshape(-1, H).T @ flat(dv),
             "b_hn": dah[:, :, 2 * H:].sum(axis=(0, 1)),
             "ln_h": np.einsum("ij,ij->j", flat(dah), flat(hhat))}
    dah[:, :, 2 * H:] = dxn  # dah is now dL/dax: ax_rz's gradient is ah_rz's
    return dah, grads, {"h": dh}
