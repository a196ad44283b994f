"""The layer-normalised GRU over a whole window: a forward/backward pair like cells.py's.

Layer normalisation inside the recurrent cell (Ba, Kiros & Hinton 2016, "Layer Normalization",
section 3.1 and the GRU of their appendix): each gate's pre-activation, from the input and from
the state alike, is normalised over its H units before the gates read it, which keeps the
recurrent drive at one scale whatever W_h has grown to. PyTorch's gate order r z n; no learned
shift, since the cell's biases already play that role:

    ax = LN(x W_x) * g_x + b             x W_x (T, B, 3H), LN per gate group of H, g_x (3H,)
    ah = LN(h W_h) * g_h                 per step, (B, 3H), g_h (3H,)
    [r z] = s(ax_rz + ah_rz);  n = tanh(ax_n + r (ah_n + b_hn));  h' = (1 - z) n + z h

with LN(v) = (v - mean(v)) / sqrt(var(v) + eps), eps = 1e-5 (torch.nn.functional.layer_norm).
The model hands `forward` the projection x W_x without its bias (the bias comes after the
normalisation). LN of x W_x and its backward pass are one batched operation over the window;
the per-step loops do only the recurrent normalisation. The backward pass of LN, for
x_hat = (v - mean) * rstd and an upstream dx_hat, is

    dv = rstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat))     (means over H)
"""

from __future__ import annotations

import numpy as np

from .cells import _transposed, sigmoid

EPS = 1e-5


def normalise(v, G):
    """v (..., G*H) to zero mean and unit variance over each of its G groups, in place;
    returns the (..., G, 1) reciprocal standard deviations."""
    g = v.reshape(*v.shape[:-1], G, -1)  # (..., G, H) view
    g -= g.mean(axis=-1, keepdims=True)
    rstd = (g * g).mean(axis=-1, keepdims=True)  # (..., G, 1)
    rstd += EPS
    np.sqrt(rstd, out=rstd)
    np.divide(1.0, rstd, out=rstd)
    g *= rstd
    return rstd


def normalise_backward(dxh, xh, rstd, G):
    """dL/dv from dL/dx_hat (both (..., G*H)) for x_hat = LN(v); overwrites dxh."""
    d = dxh.reshape(*dxh.shape[:-1], G, -1)  # (..., G, H) views
    x = xh.reshape(d.shape)
    dot = (d * x).mean(axis=-1, keepdims=True)  # (..., G, 1)
    d -= d.mean(axis=-1, keepdims=True)
    d -= x * dot
    d *= rstd
    return dxh


def forward(xproj, state, p):
    """xproj (T, B, 3H) = x W_x without bias (overwritten: it becomes LN(x W_x)), state {"h":
    (B, H)}, p the layer's W_h, b, b_hn, ln_x, ln_h -> (hs (T, B, H), state, cache)."""
    T, B, G = xproj.shape
    H = G // 3
    W_h, b_hn, g_h = p["W_h"], p["b_hn"], p["ln_h"]
    rstd_x = normalise(xproj, 3)  # (T, B, 3, 1); xproj now holds x_hat
    ax = xproj * p["ln_x"]  # (T, B, 3H)
    ax += p["b"]
    hs = np.empty((T + 1, B, H), xproj.dtype)
    rzs = np.empty((T, 2, B, H), xproj.dtype)  # sigmoid gates r, z
    ns = np.empty((T, B, H), xproj.dtype)  # candidate n
    hns = np.empty((T, B, H), xproj.dtype)  # ah_n + b_hn, needed for dr
    hhat = np.empty((T, B, G), xproj.dtype)  # LN(h W_h) of every step
    rstd_h = np.empty((T, B, 3, 1), xproj.dtype)
    ah = np.empty((B, G), xproj.dtype)
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
        rz, n, hn, h = rzs[t], ns[t], hns[t], hs[t + 1]
        np.add(x_rz[t], ah_rz, out=rz)
        sigmoid(rz, out=rz)
        np.add(ah_n, b_hn, out=hn)
        np.multiply(rz[0], hn, out=n)
        n += x_n[t]
        np.tanh(n, out=n)
        np.subtract(hs[t], n, out=h)  # h' = n + z (h - n)
        h *= rz[1]
        h += n
    cache = (hs, rzs, ns, hns, W_h, xproj, rstd_x, hhat, rstd_h, p["ln_x"], g_h)
    return hs[1:], {"h": hs[T].copy()}, cache


def backward(dhs, dstate, cache):
    """-> (dL/d(x W_x) (T, B, 3H), {W_h, b_hn, b, ln_x, ln_h}, {"h": dL/dh_0})."""
    hs, rzs, ns, hns, W_h, xhat, rstd_x, hhat, rstd_h, g_x, g_h = cache
    T, B, H = dhs.shape
    G = 3 * H
    W_hT = _transposed(W_h, B)
    r_, z_ = rzs[:, 0], rzs[:, 1]  # (T, B, H) views
    dax = np.empty((T, B, G), dhs.dtype)  # wrt ax: the input pre-activations [r z n]
    dah = np.empty((T, B, G), dhs.dtype)  # wrt ah (+ b_hn): like dax but the n part times r
    dv = np.empty((T, B, G), dhs.dtype)  # wrt h W_h, before the normalisation
    dah3 = dah.reshape(T, B, 3, H)
    dh = np.array(dstate["h"], dtype=dhs.dtype) if dstate else np.zeros((B, H), dhs.dtype)
    back = np.empty((B, H), dhs.dtype)
    # Each gate gradient is dh times a factor that does not depend on the recurrence: all of
    # them for the whole window at once, in gate-major buffers (as cells.gru_backward).
    fac = np.empty((T, 3, B, H), dhs.dtype)  # [dr, dz, dn r] per unit of dh
    dnf = np.empty((T, B, H), dhs.dtype)  # (1 - z)(1 - n^2): dn per unit of dh
    omz = 1.0 - z_  # (T, B, H)
    np.multiply(ns, ns, out=dnf)
    np.subtract(1.0, dnf, out=dnf)
    dnf *= omz
    np.multiply(dnf, r_, out=fac[:, 2])  # through r (ah_n + b_hn)
    np.subtract(hs[:-1], ns, out=fac[:, 1])
    fac[:, 1] *= z_
    fac[:, 1] *= omz  # (h - n) z (1 - z)
    np.subtract(1.0, r_, out=fac[:, 0])
    fac[:, 0] *= r_
    fac[:, 0] *= hns
    fac[:, 0] *= dnf  # (1 - z)(1 - n^2) hn r (1 - r)
    for t in range(T - 1, -1, -1):
        dh += dhs[t]
        np.multiply(fac[t].transpose(1, 0, 2), dh[:, None], out=dah3[t])
        np.multiply(dnf[t], dh, out=dax[t, :, 2 * H:])
        d = dv[t]
        np.multiply(dah[t], g_h, out=d)
        normalise_backward(d, hhat[t], rstd_h[t], 3)
        dh *= z_[t]  # the direct path h' = ... + z h
        np.matmul(d, W_hT, out=back)
        dh += back
    dax[:, :, :2 * H] = dah[:, :, :2 * H]
    flat = lambda a: a.reshape(-1, G)  # (T*B, 3H)
    grads = {"W_h": hs[:-1].reshape(-1, H).T @ flat(dv),
             "b_hn": dah[:, :, 2 * H:].sum(axis=(0, 1)),
             "ln_h": (flat(dah) * flat(hhat)).sum(axis=0),
             "b": flat(dax).sum(axis=0),
             "ln_x": (flat(dax) * flat(xhat)).sum(axis=0)}
    dax *= g_x
    return normalise_backward(dax, xhat, rstd_x, 3), grads, {"h": dh}
