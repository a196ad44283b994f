"""The fast paths for large vocabularies (issue 30) against their references: the softmax
cross-entropy and the optimizer updates work block by block and must give the bits of the
whole-array passes; the output bias joins the softmax's pass, and the embedding adds its bias
after the gather when the table has more rows than the window. Gradients are checked by
centred differences in float64 and against PyTorch autograd when it is installed."""

import numpy as np
import pytest
from gradcheck import assert_close, numerical_grad

from scratchrnn.nn import layers, optim
from scratchrnn.nn.model import ModelConfig, backward, forward, init_params, init_state

V_BIG = 300  # more symbols than a byte holds and than the test windows have positions


def whole_array_xent(logits, targets, bias, dloss):
    """The softmax cross-entropy as whole-array passes, in the order the blocks must keep:
    its loss, each row's loss and the gradient wrt the logits."""
    z = logits + bias
    z -= z.max(axis=1, keepdims=True)
    rows = np.arange(len(z))
    picked = z[rows, targets].astype(np.float64)
    np.exp(z, out=z)
    sums = z.sum(axis=1, keepdims=True)
    loss = float(np.log(sums, dtype=np.float64).sum() - picked.sum()) / len(z)
    per_row = np.log(sums[:, 0].astype(np.float64)) - picked
    z /= sums
    z[rows, targets] -= 1.0
    z *= dloss / len(z)
    return loss, per_row, z


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("block_rows", [None, 1, 3, 1000])
def test_softmax_blocks_change_no_bit(dtype, block_rows, rng, monkeypatch):
    """One row per block, a few, and one block for all: the same bits as whole-array passes,
    with the bias added in the pass."""
    if block_rows is not None:
        monkeypatch.setattr(layers, "BLOCK_BYTES", block_rows * V_BIG * np.dtype(dtype).itemsize)
    logits = (rng.normal(size=(7, V_BIG)) * 4).astype(dtype)
    bias = rng.normal(size=V_BIG).astype(dtype)
    y = rng.integers(0, V_BIG, 7).astype(np.uint16)
    loss, per_row, grad = whole_array_xent(logits, y, bias, 0.7)
    got, cache = layers.softmax_xent_forward(logits.copy(), y, bias)
    assert got == loss
    assert layers.softmax_xent_rows(cache).tobytes() == per_row.tobytes()
    assert layers.softmax_xent_backward(cache, 0.7).tobytes() == grad.tobytes()


def test_softmax_with_bias_gradcheck(rng, monkeypatch):
    """dL/dlogits and dL/dbias (the column sums) by centred differences, one row per block."""
    monkeypatch.setattr(layers, "BLOCK_BYTES", 1)
    logits, bias = rng.normal(size=(5, V_BIG)) * 3, rng.normal(size=V_BIG)
    y = rng.integers(0, V_BIG, 5)
    f = lambda: layers.softmax_xent_forward(logits.copy(), y, bias)[0]
    _, cache = layers.softmax_xent_forward(logits.copy(), y, bias)
    d = layers.softmax_xent_backward(cache)
    assert_close(d, numerical_grad(f, logits), "logits")
    assert_close(d.sum(axis=0), numerical_grad(f, bias), "bias")


def test_embedding_table_larger_than_window(rng):
    """With more rows in the table than positions in the window, b is added after the gather:
    the same values as (W + b)[ids], and the gradients by centred differences."""
    ids = rng.integers(0, 40, (3, 2))  # 6 positions, 40 rows
    W, b = rng.normal(size=(40, 4)), rng.normal(size=4)
    out, cache = layers.embedding_forward(ids, W, b)
    assert out.tobytes() == np.take(W + b, ids, axis=0).tobytes()
    w_out = rng.normal(size=(3, 2, 4))
    f = lambda: float((layers.embedding_forward(ids, W, b)[0] * w_out).sum())
    g = layers.embedding_backward(w_out.copy(), cache)
    assert_close(g["W"], numerical_grad(f, W), "W")
    assert_close(g["b"], numerical_grad(f, b), "b")


@pytest.mark.parametrize("cell,layer_norm", [("rnn", False), ("gru", True)])
def test_model_at_large_vocabulary_gradcheck(cell, layer_norm, rng, monkeypatch):
    """A whole model with V > 256 in float64, one row per softmax block: the gradients of the
    output layer and of the gathered input layer (layer-normalised too) by centred
    differences."""
    monkeypatch.setattr(layers, "BLOCK_BYTES", 1)
    cfg = ModelConfig(V_BIG, 2, cell, 1, 0.0, "float64", layer_norm=layer_norm)
    params = init_params(cfg, rng)
    params["W_y"] *= 5  # logits that differ, so the gradient is not ~uniform
    x, y = rng.integers(0, V_BIG, (2, 3)), rng.integers(0, V_BIG, (2, 3))
    state = init_state(cfg, 2)
    loss, _, cache = forward(params, cfg, x, y, state)
    grads, _ = backward(cache, cfg)
    f = lambda: forward(params, cfg, x, y, state)[0]
    for k in ("W_y", "b_y", "l0.W_x", "l0.b", *(["l0.ln_x"] if layer_norm else [])):
        assert_close(grads[k], numerical_grad(f, params[k]), k)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_model_at_large_vocabulary_matches_torch(cell):
    """Loss and every gradient against PyTorch autograd at V > 256 (float64 round-off)."""
    torch = pytest.importorskip("torch")
    from test_torch_oracle import TOL, torch_grads, torch_twin

    rng = np.random.default_rng(5)
    cfg = ModelConfig(V_BIG, 6, cell, 2, 0.0, "float64")
    params = init_params(cfg, rng)
    B, T = 2, 5
    x, y = rng.integers(0, V_BIG, (B, T)), rng.integers(0, V_BIG, (B, T))
    loss, _, cache = forward(params, cfg, x, y, init_state(cfg, B))
    grads, _ = backward(cache, cfg)
    rnn, out = torch_twin(cfg, params)
    hs, _ = rnn(torch.nn.functional.one_hot(torch.from_numpy(x), V_BIG).double())
    t_loss = torch.nn.functional.cross_entropy(out(hs).reshape(-1, V_BIG),
                                               torch.from_numpy(y).reshape(-1))
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    t_grads = torch_grads(cfg, rnn, out)
    for k in grads:
        np.testing.assert_allclose(grads[k], t_grads[k], err_msg=k, **TOL)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_update_blocks_change_no_bit(name, dtype, monkeypatch):
    """An update and the weight average block by block (a few elements per block, and a
    Fortran-ordered gradient that takes the whole-array path) give the bits of one block."""
    shapes = {"W": (30, 7), "b": (5,), "F": (4, 6)}

    def run(block_bytes):
        monkeypatch.setattr(optim, "BLOCK_BYTES", block_bytes)
        rng = np.random.default_rng(1)
        params = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
        state = optim.init_state(name, params)
        for _ in range(3):
            grads = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
            grads["F"] = np.asfortranarray(grads["F"])
            optim.update(name, params, grads, state, 0.05, (0.8, 0.99))
            optim.average(params, state, 0.9)
        return {k: v.tobytes() for k, v in {**params, **state}.items()}

    whole = run(1 << 30)
    assert run(3 * np.dtype(dtype).itemsize) == whole
    assert run(1) == whole


def test_embedding_gradient_of_a_large_table(rng):
    """Beyond ONEHOT_MAX_ROWS rows the gradient is a sorted sum: the one-hot product's values
    (float64 round-off) with repeated uint16 ids, zero rows for the ids not read, and no
    (N, V) one-hot: the peak allocation stays near the (V, D) gradient itself."""
    import tracemalloc

    V = 60_000
    ids = np.array([[7, 59_999, 7], [300, 7, 0]], np.uint16)
    dout = rng.normal(size=(2, 3, 4))
    onehot = np.zeros((ids.size, V))
    onehot[np.arange(ids.size), ids.reshape(-1)] = 1.0
    want = onehot.T @ dout.reshape(-1, 4)
    tracemalloc.start()
    got = layers.gather_backward(dout, ids, V)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert got[[7, 300, 59_999, 0]].all() and not got[[1, 8, 59_998]].any()
    assert peak < 1.2 * got.nbytes, f"peak {peak:,} bytes for a {got.nbytes:,}-byte gradient"


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_memory_estimate_covers_a_large_vocabulary_step(cell):
    """window_memory counts the sorted gradient copy instead of the (N, V) one-hot beyond
    ONEHOT_MAX_ROWS: a real training step at V=6400 still allocates less than the estimate
    plus the parameters and gradients."""
    import tracemalloc

    from scratchrnn.nn.model import CharRNN, param_count, window_memory

    model = CharRNN(6400, 64, cell, 2, seed=0)
    x = np.random.default_rng(0).integers(0, 6400, (16, 40))
    tracemalloc.start()
    model.loss_and_grads(x, np.roll(x, -1, axis=1))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= window_memory(model.config, 16, 40) + 2 * param_count(model.config)[0] * 4
