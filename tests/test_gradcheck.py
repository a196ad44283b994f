"""Every backward pass against centred finite differences in float64."""

import numpy as np
import pytest
from gradcheck import assert_close, numerical_grad

from scratchrnn.nn import cells, cells_ln, layers
from scratchrnn.nn.model import ModelConfig, backward, forward, init_params, init_state

CELLS = ("rnn", "lstm", "gru")


def test_embedding(rng):
    ids = rng.integers(0, 5, (4, 3))
    W, b = rng.normal(size=(5, 6)), rng.normal(size=6)
    w_out = rng.normal(size=(4, 3, 6))
    f = lambda: float((layers.embedding_forward(ids, W, b)[0] * w_out).sum())
    _, cache = layers.embedding_forward(ids, W, b)
    g = layers.embedding_backward(w_out.copy(), cache)
    assert_close(g["W"], numerical_grad(f, W), "W")
    assert_close(g["b"], numerical_grad(f, b), "b")


def test_dense(rng):
    x, W, b = rng.normal(size=(3, 2, 4)), rng.normal(size=(4, 5)), rng.normal(size=5)
    w_out = rng.normal(size=(3, 2, 5))
    f = lambda: float((layers.dense_forward(x, W, b)[0] * w_out).sum())
    _, cache = layers.dense_forward(x, W, b)
    dx, g = layers.dense_backward(w_out, cache)
    for name, arr, ana in (("x", x, dx), ("W", W, g["W"]), ("b", b, g["b"])):
        assert_close(ana, numerical_grad(f, arr), name)


def test_softmax_xent(rng):
    logits, y = rng.normal(size=(7, 5)) * 3, rng.integers(0, 5, 7)
    f = lambda: layers.softmax_xent_forward(logits.copy(), y)[0]
    _, cache = layers.softmax_xent_forward(logits.copy(), y)
    assert_close(layers.softmax_xent_backward(cache), numerical_grad(f, logits), "logits")
    # and the value itself, against the textbook formula
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert f() == pytest.approx(-np.log(p[np.arange(7), y]).mean(), rel=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("B,block_bytes", [(3, None), (1, None), (2, 1), (16, None)])
def test_cell_alone(cell, B, block_bytes, rng, monkeypatch):
    """One recurrent layer: gradients wrt its input projection, weights and initial state,
    with an upstream gradient on every output and on the final state. B=1 takes the
    matrix-vector path; block_bytes=1 makes the backward pass prepare one step at a time, so
    every block boundary is crossed; B=16 takes the LSTM's row-wise path (cells.ROWWISE_B)."""
    if block_bytes is not None:
        monkeypatch.setattr(cells, "BLOCK_BYTES", block_bytes)
    T, H = 4, 5
    G = cells.GATES[cell]
    xproj = rng.normal(size=(T, B, G * H))
    p = {"W_h": rng.normal(size=(H, G * H)) * 0.5}
    if cell == "gru":
        p["b_hn"] = rng.normal(size=H)
    state = {k: rng.normal(size=(B, H)) for k in cells.STATE_KEYS[cell]}
    w_hs = rng.normal(size=(T, B, H))
    w_st = {k: rng.normal(size=(B, H)) for k in state}

    def f():  # cells may overwrite xproj (their scratch buffer): hand them a copy
        hs, st, _ = cells.FORWARD[cell](xproj.copy(), state, p)
        return float((hs * w_hs).sum() + sum((st[k] * w_st[k]).sum() for k in st))

    _, _, cache = cells.FORWARD[cell](xproj.copy(), state, p)
    dx, dp, ds = cells.BACKWARD[cell](w_hs.copy(), w_st, cache)
    assert_close(dx, numerical_grad(f, xproj), "xproj")
    for k in p:
        assert_close(dp[k], numerical_grad(f, p[k]), k)
    for k in state:
        assert_close(ds[k], numerical_grad(f, state[k]), f"state {k}")


@pytest.mark.parametrize("B", [1, 3])
def test_layer_norm_cell_alone(B, rng):
    """The layer-normalised GRU's recurrence: gradients wrt its drive ax, W_h, b_hn, the
    recurrent LN gain (drawn away from its initial 1, so that a gain missing from a product
    shows) and the state."""
    T, H = 4, 5
    ax = rng.normal(size=(T, B, 3 * H))
    p = {"W_h": rng.normal(size=(H, 3 * H)) * 0.5, "b_hn": rng.normal(size=H),
         "ln_h": 1 + 0.3 * rng.normal(size=3 * H)}
    state = {"h": rng.normal(size=(B, H))}
    w_hs, w_st = rng.normal(size=(T, B, H)), rng.normal(size=(B, H))

    def f():
        hs, st, _ = cells_ln.forward(ax.copy(), state, p)
        return float((hs * w_hs).sum() + (st["h"] * w_st).sum())

    _, _, cache = cells_ln.forward(ax.copy(), state, p)
    dx, dp, ds = cells_ln.backward(w_hs.copy(), {"h": w_st}, cache)
    assert set(dp) == set(p)
    assert_close(dx, numerical_grad(f, ax), "ax")
    for k in p:
        assert_close(dp[k], numerical_grad(f, p[k]), k)
    assert_close(ds["h"], numerical_grad(f, state["h"]), "state h")


@pytest.mark.parametrize("first", [True, False])
def test_layer_norm_drive(first, rng):
    """LN(x W_x) g_x + b: gradients wrt W_x, b, the gain and (above the first layer) x. The
    first layer's ids repeat, so that a row's gradient must sum the positions that read it
    before LN's backward, and one of the V rows is never read (its gradient is zero)."""
    T, B, V, H = 4, 3, 6, 5
    x = rng.integers(0, V - 1, (T, B)) if first else rng.normal(size=(T, B, 4))
    p = {"W_x": rng.normal(size=(V if first else 4, 3 * H)), "b": rng.normal(size=3 * H),
         "ln_x": 1 + 0.3 * rng.normal(size=3 * H)}
    w_out = rng.normal(size=(T, B, 3 * H))
    f = lambda: float((cells_ln.drive_forward(x, p, first)[0] * w_out).sum())
    ax, cache = cells_ln.drive_forward(x, p, first)
    assert ax.shape == (T, B, 3 * H)
    dx, g = cells_ln.drive_backward(w_out.copy(), cache, first)
    assert set(g) == set(p)
    for k in p:
        assert_close(g[k], numerical_grad(f, p[k]), k)
    if first:
        assert dx is None and not g["W_x"][V - 1].any()
    else:
        assert_close(dx, numerical_grad(f, x), "x")


def _model(cell, layers_, dropout=0.0, V=6, H=5, seed=0, weight_drop=0.0, layer_norm=False,
           locked=False):
    cfg = ModelConfig(V, H, cell, layers_, dropout, "float64", weight_drop=weight_drop,
                      layer_norm=layer_norm, locked_dropout=locked)
    params = init_params(cfg, np.random.default_rng(seed))
    if layer_norm:  # gains away from 1 and biases away from 0: every product must be right
        r = np.random.default_rng(seed + 1)
        for k in params:
            if ".ln_" in k or k.endswith(".b"):
                params[k] += 0.3 * r.normal(size=params[k].shape)
    return cfg, params


WHOLE = [(c, *case, False, False) for c in CELLS for case in (
    (1, 0.0, 0.0), (3, 0.0, 0.0), (2, 0.4, 0.0), (2, 0.0, 0.5), (2, 0.3, 0.5))]
WHOLE += [("gru", 1, 0.0, 0.0, True, False), ("gru", 3, 0.3, 0.0, True, False),
          ("gru", 2, 0.3, 0.5, True, False)]
WHOLE += [(c, 2, 0.4, 0.0, False, True) for c in CELLS]  # locked dropout
WHOLE += [("lstm", 3, 0.3, 0.5, False, True), ("gru", 2, 0.3, 0.5, True, True)]


@pytest.mark.parametrize("cell,num_layers,dropout,weight_drop,layer_norm,locked", WHOLE)
def test_whole_model_through_carried_state(cell, num_layers, dropout, weight_drop, layer_norm,
                                           locked, rng):
    """Loss of two consecutive windows, the second starting from the state the first left:
    the gradient of window 2 must flow back through the carried state into window 1.
    Dropout and weight-drop masks are fixed by re-seeding the same generator for every
    evaluation; each window draws its own W_h masks. Also the layer-normalised GRU, and
    locked dropout: one (1, B, H) mask per layer and window, broadcast over its steps."""
    cfg, params = _model(cell, num_layers, dropout, weight_drop=weight_drop,
                         layer_norm=layer_norm, locked=locked)
    B, T = 2, 3
    x1, y1, x2, y2 = (rng.integers(0, cfg.vocab_size, (B, T)) for _ in range(4))
    s0 = {k: rng.normal(size=v.shape) * 0.5 for k, v in init_state(cfg, B).items()}
    masked = dropout or weight_drop

    def run():
        r1, r2 = np.random.default_rng(7), np.random.default_rng(8)
        l1, s1, c1 = forward(params, cfg, x1, y1, s0, r1 if masked else None)
        l2, _, c2 = forward(params, cfg, x2, y2, s1, r2 if masked else None)
        return l1 + l2, c1, c2

    _, c1, c2 = run()
    if weight_drop:  # the masks drop some recurrent weights, and differ between the windows
        for k in range(num_layers):
            m1, m2 = c1[0][k][3], c2[0][k][3]  # (H, G*H)
            assert 0 < (m1 == 0).sum() < m1.size and not np.array_equal(m1, m2)
    if dropout:  # dropout masks: per step, or one per stream and unit (locked)
        for k in range(num_layers):
            assert c1[0][k][2].shape == ((1 if locked else T), B, cfg.hidden_size)
    g2, ds1 = backward(c2, cfg)
    g1, ds0 = backward(c1, cfg, dstate=ds1)
    f = lambda: run()[0]
    assert set(g1) == set(params)
    for k in params:
        assert_close(g1[k] + g2[k], numerical_grad(f, params[k]), k)
    for k in s0:
        assert_close(ds0[k], numerical_grad(f, s0[k]), f"initial state {k}")


def test_carried_state_matters(rng):
    """The two-window check above would pass vacuously if state did not flow: show it does."""
    cfg, params = _model("rnn", 1)
    x, y = rng.integers(0, 6, (2, 3)), rng.integers(0, 6, (2, 3))
    s = {"l0.h": rng.normal(size=(2, 5))}
    _, _, cache = forward(params, cfg, x, y, s)
    _, ds = backward(cache, cfg)
    assert np.abs(ds["l0.h"]).max() > 1e-4
