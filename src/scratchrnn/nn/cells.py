"""Recurrent cells over a whole window: forward/backward pairs for vanilla RNN, LSTM and GRU.

Row-vector, time-major inside (the model transposes its (B, T) inputs once), so each step reads a
contiguous (B, .) slab. Every cell receives `xproj = x @ W_x + b` for the whole window,
precomputed as one matrix product (or a row gather for the first layer), and may overwrite it
(it is the caller's scratch buffer). The cell runs only the recurrence: one fused
(B, H) @ (H, G*H) product per step. The weight gradient of W_h is one big product over all
steps after the loop. The backward passes prepare whatever does not depend on the recurrence
(activation derivatives times what each gate meets) for a block of steps before their per-step
loop, which keeps only the recurrent work: at B=1 a step's cost is its number of NumPy calls
(benchmarks/count_calls.py counts them). Equations and gate order follow PyTorch:

    rnn:  h' = tanh(a),  a = xproj + h W_h
    lstm: [i f g o] = xproj + h W_h;  c' = s(f) c + s(i) tanh(g);  h' = s(o) tanh(c')
    gru:  [r z] = s(xproj_rz + h W_h,rz);  n = tanh(xproj_n + r (h W_h,n + b_hn));
          h' = (1 - z) n + z h

where s is the logistic sigmoid. Each equation is written once, as a step function (`rnn_step`,
`lstm_step`, `gru_gates`) that the window's loop, the layer-normalised GRU and the sampler's
one-vector stepper all call; each forward pass returns a named cache whose `signals()` lists
what a reader can look at (sr.inspect). Reference: Goodfellow et al., Deep Learning, 10.2.2
(BPTT) and 10.10 (gated cells); Cho et al. 2014 for the GRU as PyTorch writes it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Gate count G per cell: W_x is (I, G*H), W_h is (H, G*H), b is (G*H,).
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
STATE_KEYS = {"rnn": ("h",), "lstm": ("h", "c"), "gru": ("h",)}
# What a reader of the network can look at per step (each cache's signals()), and which of
# those are sigmoid gates, in [0, 1].
SIGNALS = {"rnn": ("h",), "lstm": ("h", "c", "i", "f", "g", "o"), "gru": ("h", "r", "z", "n")}
SIGMOID = {"i", "f", "o", "r", "z"}
BLOCK_BYTES = 256 << 10  # see block_steps; tests set it tiny to run every block boundary
# From this batch on, the LSTM backward pass works row-wise (see _lstm_backward_rowwise): an
# elementwise call then costs by the rows it visits, not by the call.
ROWWISE_B = 16


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic sigmoid as 0.5 * (1 + tanh(x / 2)): one transcendental, no overflow."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def block_steps(B, G, itemsize):
    # Steps per block of the backward pass's precomputation: about BLOCK_BYTES of (B, G) gate
    # buffers, so a block stays in cache between being prepared and being used, while at B=1
    # the whole window is one block and the per-step loop is left with only recurrent work.
    return max(1, BLOCK_BYTES // (B * G * itemsize))


def transposed(W, B):
    """W.T for the backward pass's per-step product (B, G*H) @ (G*H, H). A contiguous copy
    makes that product faster at B=64 (368 against 483 us at H=256); at B=1 it is a
    matrix-vector product that runs as fast on the transposed view (14 us either way), and the
    copy, a cache-unfriendly transpose of the whole matrix, would cost more than the window's
    100 products gain (750 us at H=256, measured one thread)."""
    return W.T if B == 1 else np.ascontiguousarray(W.T)


# ---------------------------------------------------------------------------------------- rnn

class RNNCache(NamedTuple):
    hs: np.ndarray  # (T+1, B, H): hs[0] the carried state
    W_h: np.ndarray  # (H, H)

    def signals(self) -> dict[str, np.ndarray]:  # each (T, B, H)
        return {"h": self.hs[1:]}


def rnn_step(a, x, h):
    """h' = tanh(a + x) from the recurrent drive a = h W_h (overwritten) and the input drive x:
    the one copy of the step's arithmetic (the window's loop, the sampler's stepper). The step
    functions pass `out` by position: at B=1 a step is a few tiny calls, and a keyword costs
    each about 60 ns more."""
    np.add(a, x, a)
    np.tanh(a, h)


def rnn_forward(xproj, state, p):
    T, B, H = xproj.shape
    W_h = p["W_h"]
    hs = np.empty((T + 1, B, H), xproj.dtype)  # hs[0] is the carried state, hs[t+1] = h_t
    hs[0] = state["h"]
    for t in range(T):
        h = hs[t + 1]
        np.matmul(hs[t], W_h, out=h)
        rnn_step(h, xproj[t], h)
    return hs[1:], {"h": hs[T].copy()}, RNNCache(hs, W_h)


def rnn_backward(dhs, dstate, cache):
    hs, W_h = cache
    T, B, H = dhs.shape
    W_hT = transposed(W_h, B)
    da = np.empty_like(dhs)  # (T, B, H) gradient wrt the pre-activation
    dh = np.array(dstate["h"], dtype=dhs.dtype) if dstate else np.zeros((B, H), dhs.dtype)
    n = block_steps(B, H, dhs.itemsize)
    for t1 in range(T, 0, -n):
        t0 = max(0, t1 - n)
        np.multiply(hs[t0 + 1:t1 + 1], hs[t0 + 1:t1 + 1], out=da[t0:t1])
        np.subtract(1.0, da[t0:t1], out=da[t0:t1])  # tanh'(a) = 1 - h^2, ahead of the loop
        for t in range(t1 - 1, t0 - 1, -1):
            dh += dhs[t]
            d = da[t]
            d *= dh
            np.matmul(d, W_hT, out=dh)
    dW_h = hs[:-1].reshape(-1, H).T @ da.reshape(-1, H)
    return da, {"W_h": dW_h}, {"h": dh}


# --------------------------------------------------------------------------------------- lstm

def lstm_consts(H, dtype):
    # sigmoid(x) = 0.5 tanh(x/2) + 0.5, so all four gates are one tanh between two affine maps:
    # the g gate uses (scale, shift) = (1, 0), the others (0.5, 0.5).
    half = np.full(4 * H, 0.5, dtype)
    half[2 * H:3 * H] = 1.0
    shift = np.full(4 * H, 0.5, dtype)
    shift[2 * H:3 * H] = 0.0
    return half, shift


class LSTMCache(NamedTuple):
    hs: np.ndarray  # (T+1, B, H)
    cs: np.ndarray  # (T+1, B, H) cell states
    acts: np.ndarray  # (T, B, 4H) gates i f g o after their nonlinearity
    tcs: np.ndarray  # (T, B, H) tanh(c_t)
    W_h: np.ndarray  # (H, 4H)

    def signals(self) -> dict[str, np.ndarray]:  # each (T, B, H)
        H = self.hs.shape[-1]
        gates = {name: self.acts[..., j * H:(j + 1) * H] for j, name in enumerate("ifgo")}
        return {"h": self.hs[1:], "c": self.cs[1:], **gates}


def lstm_step(z, x, scale, shift, i, f, g, o, c_prev, c, tc, h, ig):
    """One LSTM step: z (..., 4H) holds the recurrent drive h W_h (its columns pre-scaled by
    `scale`, see lstm_consts) and becomes the gates i f g o, of which i, f, g, o are views;
    x is the input drive, pre-scaled; c, tc = tanh(c), h and the scratch ig are outputs. The
    one copy of the step's arithmetic (the window's loop, the sampler's stepper)."""
    np.add(z, x, z)
    np.tanh(z, z)
    np.multiply(z, scale, z)
    np.add(z, shift, z)
    np.multiply(f, c_prev, c)
    np.multiply(i, g, ig)
    np.add(c, ig, c)
    np.tanh(c, tc)
    np.multiply(o, tc, h)


def lstm_forward(xproj, state, p):
    T, B, G = xproj.shape
    H = G // 4
    scale, shift = lstm_consts(H, xproj.dtype)
    W_h = p["W_h"] * scale  # (H, 4H): the pre-tanh scaling folded into the product
    xproj *= scale  # in place: xproj is this layer's own scratch buffer
    hs = np.empty((T + 1, B, H), xproj.dtype)
    cs = np.empty((T + 1, B, H), xproj.dtype)
    acts = np.empty((T, B, G), xproj.dtype)  # gate activations i f g o
    tcs = np.empty((T, B, H), xproj.dtype)  # tanh(c_t)
    ig = np.empty((B, H), xproj.dtype)
    hs[0], cs[0] = state["h"], state["c"]
    # Per-gate views of the whole window made once: at B=1 a step is a handful of tiny calls,
    # and slicing each step's gates anew cost about as much as one of them.
    i_, f_, g_, o_ = (acts[:, :, k * H:(k + 1) * H] for k in range(4))  # (T, B, H) views
    for t in range(T):
        np.matmul(hs[t], W_h, out=acts[t])
        lstm_step(acts[t], xproj[t], scale, shift, i_[t], f_[t], g_[t], o_[t], cs[t], cs[t + 1],
                  tcs[t], hs[t + 1], ig)
    return (hs[1:], {"h": hs[T].copy(), "c": cs[T].copy()},
            LSTMCache(hs, cs, acts, tcs, p["W_h"]))


def _lstm_backward_rowwise(dhs, dh, dc, cache, W_hT):
    """lstm_backward for a large B: there the cost of an elementwise call is not the call but
    the rows it visits (a (64, H) slice of a (64, 4H) array takes 2.4x the time of a contiguous
    (64, H) array), so the gate derivatives go over whole contiguous (B, 4H) rows: 16 calls per
    step, 3-7% faster at B=64 (H=128, 256) than the gate-major preparation that wins at B=1."""
    hs, cs, acts, tcs, _ = cache
    T, B, H = dhs.shape
    G = 4 * H
    beta = np.zeros(G, dhs.dtype)
    beta[2 * H:3 * H] = 1.0  # gate derivative (1 - a)(beta + a): s(1-s) for sigmoids, 1-g^2 for g
    dz = np.empty((T, B, G), dhs.dtype)
    tmp = np.empty((B, H), dhs.dtype)
    deriv = np.empty((B, G), dhs.dtype)
    for t in range(T - 1, -1, -1):
        dh += dhs[t]
        a, tc, d = acts[t], tcs[t], dz[t]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        np.multiply(dh, tc, out=d[:, 3 * H:])  # dL/do
        np.multiply(tc, tc, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp  # through h = o tanh(c)
        np.multiply(dc, g, out=d[:, :H])  # dL/di
        np.multiply(dc, cs[t], out=d[:, H:2 * H])  # dL/df
        np.multiply(dc, i, out=d[:, 2 * H:3 * H])  # dL/dg
        dc *= f  # to c_{t-1}
        np.subtract(1.0, a, out=deriv)
        d *= deriv
        np.add(a, beta, out=deriv)
        d *= deriv
        np.matmul(d, W_hT, out=dh)
    dW_h = hs[:-1].reshape(-1, H).T @ dz.reshape(-1, G)
    return dz, {"W_h": dW_h}, {"h": dh, "c": dc}


def lstm_backward(dhs, dstate, cache):
    hs, cs, acts, tcs, W_h = cache
    T, B, H = dhs.shape
    G = 4 * H
    W_hT = transposed(W_h, B)
    dh = np.array(dstate["h"], dtype=dhs.dtype) if dstate else np.zeros((B, H), dhs.dtype)
    dc = np.array(dstate["c"], dtype=dhs.dtype) if dstate else np.zeros((B, H), dhs.dtype)
    # Dispatch before any window-sized buffer exists: an unused one allocated here made the
    # next forward pass 20-25% slower at H=128, B=64 (it then ran on freshly mapped pages).
    if B >= ROWWISE_B:
        return _lstm_backward_rowwise(dhs, dh, dc, cache, W_hT)
    # Gate derivative a (alpha - a) + beta: s(1-s) for the sigmoids, 1 - g^2 for g.
    alpha = np.ones((4, 1, H), dhs.dtype)
    alpha[2] = 0.0
    beta = 1.0 - alpha
    dz = np.empty((T, B, G), dhs.dtype)
    dz4 = dz.reshape(T, B, 4, H)
    gates = acts.reshape(T, B, 4, H).transpose(0, 2, 1, 3)  # (T, 4, B, H) view
    i_, f_, g_, o_ = (gates[:, k] for k in range(4))  # (T, B, H) views
    tmp = np.empty((B, H), dhs.dtype)
    n = max(1, min(T, block_steps(B, G, dhs.itemsize)))  # block buffers no longer than the window
    # Everything that does not depend on the recurrence, for a block of steps at once, in
    # contiguous gate-major buffers: each gate's gradient is dc (dh for o) times a factor.
    fac = np.empty((n, 4, B, H), dhs.dtype)  # [g i(1-i), c_prev f(1-f), i(1-g^2), tanh(c) o(1-o)]
    dcs = np.empty((n, B, H), dhs.dtype)  # o (1 - tanh(c)^2): dc per unit of dh
    for t1 in range(T, 0, -n):
        t0 = max(0, t1 - n)
        m, w = t1 - t0, slice(t0, t1)
        F = fac[:m]
        np.subtract(alpha, gates[w], out=F)
        F *= gates[w]
        F += beta
        F[:, 0] *= g_[w]
        F[:, 1] *= cs[w]
        F[:, 2] *= i_[w]
        F[:, 3] *= tcs[w]
        np.multiply(tcs[w], tcs[w], out=dcs[:m])
        np.subtract(1.0, dcs[:m], out=dcs[:m])
        dcs[:m] *= o_[w]
        for t in range(t1 - 1, t0 - 1, -1):
            j = t - t0
            dh += dhs[t]
            np.multiply(dh, dcs[j], out=tmp)
            dc += tmp  # through h = o tanh(c)
            np.multiply(fac[j, :3].transpose(1, 0, 2), dc[:, None], out=dz4[t, :, :3])
            np.multiply(fac[j, 3], dh, out=dz4[t, :, 3])
            dc *= f_[t]  # to c_{t-1}
            np.matmul(dz[t], W_hT, out=dh)
    dW_h = hs[:-1].reshape(-1, H).T @ dz.reshape(-1, G)
    return dz, {"W_h": dW_h}, {"h": dh, "c": dc}


# ---------------------------------------------------------------------------------------- gru

def gru_signals(self) -> dict[str, np.ndarray]:  # each (T, B, H)
    return {"h": self.hs[1:], "r": self.rzs[:, 0], "z": self.rzs[:, 1], "n": self.ns}


class GRUCache(NamedTuple):
    hs: np.ndarray  # (T+1, B, H)
    rzs: np.ndarray  # (T, 2, B, H) sigmoid gates r, z
    ns: np.ndarray  # (T, B, H) candidates n
    hns: np.ndarray  # (T, B, H) h W_hn + b_hn, needed for dr
    W_h: np.ndarray  # (H, 3H)
    signals = gru_signals


def gru_gates(x_rz, x_n, hz_rz, hz_n, b_hn, h_prev, rz, n, hn, h):
    """One GRU step from its input drives x_rz (2, B, H), x_n (B, H) and recurrent drives
    hz_rz (2, B, H), hz_n (B, H), into the caller's buffers: rz (2, B, H) the gates, hn (B, H)
    = hz_n + b_hn, n the candidate, h the new state (it may be h_prev itself). The one copy of
    the step's arithmetic: the window's loop, the layer-normalised GRU, the sampler's stepper."""
    np.add(x_rz, hz_rz, rz)
    sigmoid(rz, out=rz)
    np.add(hz_n, b_hn, hn)
    np.multiply(rz[0], hn, n)
    n += x_n
    np.tanh(n, n)
    np.subtract(h_prev, n, h)  # h' = n + z (h - n)
    h *= rz[1]
    h += n


def gru_factors(r, z, n, h, hn, fac, dnf, omz):
    """For a block of steps (m, B, H) each, what each gate's gradient is per unit of dL/dh':
    fac (m, 3, B, H) = [dr, dz, dn r], dnf = (1 - z)(1 - n^2); omz is scratch. None of it
    depends on the recurrence, so the backward loop is left with the products by dh."""
    fr, fz, fn = fac[:, 0], fac[:, 1], fac[:, 2]
    np.subtract(1.0, z, out=omz)
    np.multiply(n, n, out=dnf)
    np.subtract(1.0, dnf, out=dnf)
    dnf *= omz
    np.multiply(dnf, r, out=fn)  # through r (h W_hn + b_hn)
    np.subtract(h, n, out=fz)
    fz *= z
    fz *= omz  # (h - n) z (1 - z)
    np.subtract(1.0, r, out=fr)
    fr *= r
    fr *= hn
    fr *= dnf  # (1 - z)(1 - n^2) hn r (1 - r)


def gru_forward(xproj, state, p):
    T, B, G = xproj.shape
    H = G // 3
    W_h, b_hn = p["W_h"], p["b_hn"]
    # Gates live in their own contiguous buffers: NumPy's elementwise loops run 2-4x slower
    # on the strided column slices of a (B, 3H) array.
    hs = np.empty((T + 1, B, H), xproj.dtype)
    rzs = np.empty((T, 2, B, H), xproj.dtype)  # sigmoid gates r, z
    ns = np.empty((T, B, H), xproj.dtype)  # candidate n
    hns = np.empty((T, B, H), xproj.dtype)  # h W_hn + b_hn, needed for dr
    hz = np.empty((B, G), xproj.dtype)
    hs[0] = state["h"]
    # Views made once for the whole window (slicing them anew each step cost about as much as
    # one of the step's tiny calls at B=1): gate-major r, z parts of the inputs and of hz.
    x_rz = xproj[:, :, :2 * H].reshape(T, B, 2, H).transpose(0, 2, 1, 3)  # (T, 2, B, H)
    x_n = xproj[:, :, 2 * H:]  # (T, B, H)
    hz_rz = hz[:, :2 * H].reshape(B, 2, H).transpose(1, 0, 2)  # (2, B, H)
    hz_n = hz[:, 2 * H:]  # (B, H)
    for t in range(T):
        np.matmul(hs[t], W_h, out=hz)
        gru_gates(x_rz[t], x_n[t], hz_rz, hz_n, b_hn, hs[t], rzs[t], ns[t], hns[t], hs[t + 1])
    return hs[1:], {"h": hs[T].copy()}, GRUCache(hs, rzs, ns, hns, W_h)


def gru_backward(dhs, dstate, cache):
    hs, rzs, ns, hns, W_h = cache
    T, B, H = dhs.shape
    G = 3 * H
    W_hT = transposed(W_h, B)
    r_, z_ = rzs[:, 0], rzs[:, 1]  # (T, B, H) views, each step contiguous
    dx = np.empty((T, B, G), dhs.dtype)  # wrt the input pre-activations [r z n]
    dhz = np.empty((T, B, G), dhs.dtype)  # wrt h W_h (+ b_hn): like dx but the n part times r
    dhz3 = dhz.reshape(T, B, 3, H)
    dh = np.array(dstate["h"], dtype=dhs.dtype) if dstate else np.zeros((B, H), dhs.dtype)
    back = np.empty((B, H), dhs.dtype)
    n = max(1, min(T, block_steps(B, G, dhs.itemsize)))  # block buffers no longer than the window
    # Every gate gradient is dh times a factor that does not depend on the recurrence, prepared
    # for a block of steps in contiguous gate-major buffers (strided gate columns would make
    # each elementwise call about 2x slower at B=64).
    fac = np.empty((n, 3, B, H), dhs.dtype)  # for dhz: [dr, dz, dn r] per unit of dh
    dnf = np.empty((n, B, H), dhs.dtype)  # (1 - z)(1 - n^2): dn per unit of dh
    omz = np.empty((n, B, H), dhs.dtype)
    for t1 in range(T, 0, -n):
        t0 = max(0, t1 - n)
        m, w = t1 - t0, slice(t0, t1)
        gru_factors(r_[w], z_[w], ns[w], hs[w], hns[w], fac[:m], dnf[:m], omz[:m])
        for t in range(t1 - 1, t0 - 1, -1):
            j = t - t0
            dh += dhs[t]
            np.multiply(fac[j].transpose(1, 0, 2), dh[:, None], out=dhz3[t])
            np.multiply(dnf[j], dh, out=dx[t, :, 2 * H:])
            dh *= z_[t]  # the direct path h' = ... + z h
            np.matmul(dhz[t], W_hT, out=back)
            dh += back
        dx[w, :, :2 * H] = dhz[w, :, :2 * H]  # while the block is in cache
    dW_h = hs[:-1].reshape(-1, H).T @ dhz.reshape(-1, G)
    db_hn = dhz[:, :, 2 * H:].sum(axis=(0, 1))
    return dx, {"W_h": dW_h, "b_hn": db_hn}, {"h": dh}


FORWARD = {"rnn": rnn_forward, "lstm": lstm_forward, "gru": gru_forward}
BACKWARD = {"rnn": rnn_backward, "lstm": lstm_backward, "gru": gru_backward}
