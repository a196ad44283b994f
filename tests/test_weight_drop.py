"""Weight drop (DropConnect on W_h, AWD-LSTM), orthogonal recurrent init and locked dropout:
the masks' values, shapes, where they come from and in which order, what they cost in memory,
that training uses them, orthogonality of every gate block, and that the options off leave
every result as it was. Their gradients are in test_gradcheck.py and test_torch_oracle.py,
their exact resume in test_train.py, their bad values in test_bad_inputs.py and
test_api_errors.py, locked dropout over MPI in test_distributed.py."""

import hashlib
import json

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.nn import cells, layers
from scratchrnn.nn.model import (
    ModelConfig,
    forward,
    init_params,
    init_state,
    orthogonal_blocks,
    window_memory,
)

CELLS = ("rnn", "lstm", "gru")

# sha256 of sr.CharRNN(96, 32, cell, 2, seed=0, dtype=..., init_std=...).params (sorted keys,
# name then bytes), computed by the code before these options existed: the default init must
# stay bit-identical.
BEFORE = {
    ("rnn", "float32", None): "1271219ff0c1d6475e0978ff5abb603bd64a91c499da5c99b71389eaa6d55fac",
    ("rnn", "float32", 0.01): "119ca3197b65f26baa0166e348666391f8f7f690dad3266a915e5cb53e8ff74b",
    ("rnn", "float64", None): "0c4097ce69b65eb0d87161458ede69ab6d2c281d75c4bafced42701ff45fa652",
    ("rnn", "float64", 0.01): "7f946a1d559a0aa0bcfa7830575dd11812407fc218b85cce506d2992a00c7d36",
    ("lstm", "float32", None): "6daffb9f37fa18452c21dae2f12418a2da3360c4dbe6445129b4c124e29313b2",
    ("lstm", "float32", 0.01): "9de48b3ba4a59704aad56e72815120daabc5486dc3954dcb593af936e124824a",
    ("lstm", "float64", None): "f313d7022c7bef41697c823d65e8d15eb093fcf31a77c768024fd6c2242b8885",
    ("lstm", "float64", 0.01): "aeda11e89577451283b65264554c36f5d1a1aa81692cdea31cf3ac15bd2b598e",
    ("gru", "float32", None): "4e402082badfbedd14bb5a7666ba16486291e019c1fe2d75e5c8dd2cab5e3c02",
    ("gru", "float32", 0.01): "4cfa794a8e73252a9f12b50b9369ff08ba21a6dbfaef3321a88c2b08d3104926",
    ("gru", "float64", None): "705dc8447335ec57af7bf9f074324abb732b1ab0087973df5bdd31d03a1804ee",
    ("gru", "float64", 0.01): "69c5b8ad9c245b93d66aa497175ba974ebb16a6cdf693b996a380ea029041e2f",
}


def digest(params) -> str:
    h = hashlib.sha256()
    for k in sorted(params):
        h.update(k.encode())
        h.update(np.ascontiguousarray(params[k]).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("cell,dtype,std", sorted(BEFORE, key=str))
def test_default_init_is_unchanged(cell, dtype, std):
    model = sr.CharRNN(96, 32, cell, 2, seed=0, dtype=dtype, init_std=std)
    assert digest(model.params) == BEFORE[cell, dtype, std]
    explicit = sr.CharRNN(96, 32, cell, 2, seed=0, dtype=dtype, init_std=std, weight_drop=0.3,
                          recurrent_init="uniform")  # weight drop changes no initial weight
    assert digest(explicit.params) == BEFORE[cell, dtype, std]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-6)])
def test_orthogonal_init_makes_every_gate_block_orthogonal(cell, dtype, tol):
    H, G = 24, cells.GATES[cell]
    ortho = sr.CharRNN(96, H, cell, 2, seed=4, dtype=dtype, recurrent_init="orthogonal").params
    uniform = sr.CharRNN(96, H, cell, 2, seed=4, dtype=dtype).params
    eye = np.eye(H)
    for k in range(2):
        W = ortho[f"l{k}.W_h"]
        assert W.shape == (H, G * H) and W.dtype == np.dtype(dtype)
        blocks = [W[:, g * H:(g + 1) * H].astype(np.float64) for g in range(G)]  # (H, H) each
        for g, Q in enumerate(blocks):
            np.testing.assert_allclose(Q.T @ Q, eye, atol=tol, err_msg=f"l{k} gate {g}")
            np.testing.assert_allclose(Q @ Q.T, eye, atol=tol, err_msg=f"l{k} gate {g}")
        for a in range(G):  # each gate its own matrix, not one repeated
            assert all(not np.allclose(blocks[a], blocks[b]) for b in range(a))
    # the weights drawn before the first W_h are as before, the rest from the same seed
    assert np.array_equal(ortho["l0.W_x"], uniform["l0.W_x"])
    again = sr.CharRNN(96, H, cell, 2, seed=4, dtype=dtype, recurrent_init="orthogonal").params
    assert digest(again) == digest(ortho)
    if cell == "lstm":
        assert (ortho["l0.b"][H:2 * H] == 1).all()  # the forget gate still starts open


def test_orthogonal_blocks_are_the_q_of_a_gaussian_with_positive_r_diagonal():
    """The sign fix: Q = A R^-1 with diag(R) > 0, the unique QR that makes Q Haar-distributed."""
    H, G = 7, 3
    A = np.random.default_rng(11).standard_normal((G, H, H))  # what orthogonal_blocks draws
    W = orthogonal_blocks(H, G, np.random.default_rng(11))
    for g in range(G):
        R = W[:, g * H:(g + 1) * H].T @ A[g]  # (H, H): Q^T A
        np.testing.assert_allclose(np.tril(R, -1), 0, atol=1e-12)
        assert (np.diag(R) > 0).all()


def _cfg(cell="lstm", L=2, dropout=0.0, weight_drop=0.0, H=16, V=10, locked=False):
    return ModelConfig(V, H, cell, L, dropout, "float64", weight_drop=weight_drop,
                       locked_dropout=locked)


def _window(cfg, B=3, T=5, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, cfg.vocab_size, (B, T)), rng.integers(0, cfg.vocab_size, (B, T))
    return x, y, init_state(cfg, B)


@pytest.mark.parametrize("cell", CELLS)
def test_the_mask_drops_w_h_and_scales_the_rest(cell):
    """One mask per layer and window, of W_h's shape, entries 0 or 1/(1-p) with about p zero;
    the masked forward is the plain forward on W_h * mask; without an rng nothing is masked."""
    p = 0.3
    cfg = _cfg(cell, weight_drop=p, H=64)
    params = init_params(cfg, np.random.default_rng(1))
    x, y, s = _window(cfg)
    loss, _, cache = forward(params, cfg, x, y, s, np.random.default_rng(2))
    masked = dict(params)
    for k, layer in enumerate(cache[0]):
        M = layer[3]
        assert M.shape == params[f"l{k}.W_h"].shape and M.dtype == params[f"l{k}.W_h"].dtype
        assert set(np.unique(M)) == {0.0, 1 / (1 - p)}
        assert abs((M == 0).mean() - p) < 0.02  # 64 x 256 (LSTM) or more entries
        masked[f"l{k}.W_h"] = params[f"l{k}.W_h"] * M
    plain = ModelConfig(cfg.vocab_size, cfg.hidden_size, cell, cfg.num_layers, 0.0, "float64")
    assert loss == forward(masked, plain, x, y, s)[0]
    assert forward(params, cfg, x, y, s)[0] == forward(params, plain, x, y, s)[0]  # evaluation
    assert loss != forward(params, plain, x, y, s)[0]


def test_masks_come_from_the_training_rng_in_layer_order():
    """Per layer: its W_h mask, then its (T, B, H) dropout mask, from the generator passed in;
    with weight drop off the generator moves exactly as before (dropout masks only)."""
    cfg = _cfg("gru", L=3, dropout=0.2, weight_drop=0.4)
    params = init_params(cfg, np.random.default_rng(1))
    x, y, s = _window(cfg, B=2, T=4)
    rng = np.random.default_rng(5)
    _, _, cache = forward(params, cfg, x, y, s, rng)
    by_hand = np.random.default_rng(5)
    for k, (_, _, dmask, wmask) in enumerate(cache[0]):
        want_w = layers.dropout_mask(params[f"l{k}.W_h"].shape, 0.4, by_hand, np.float64)
        want_d = layers.dropout_mask((4, 2, 16), 0.2, by_hand, np.float64)
        assert np.array_equal(wmask, want_w) and np.array_equal(dmask, want_d), k
    assert rng.bit_generator.state == by_hand.bit_generator.state

    off = _cfg("gru", L=3, dropout=0.2)
    rng, by_hand = np.random.default_rng(5), np.random.default_rng(5)
    _, _, cache = forward(params, off, x, y, s, rng)
    for _, _, dmask, wmask in cache[0]:
        assert wmask is None
        assert np.array_equal(dmask, layers.dropout_mask((4, 2, 16), 0.2, by_hand, np.float64))
    assert rng.bit_generator.state == by_hand.bit_generator.state


@pytest.mark.parametrize("cell", CELLS)
def test_memory_counts_a_mask_and_a_masked_w_h_per_layer(cell):
    base, wd = _cfg(cell, L=3), _cfg(cell, L=3, weight_drop=0.5)
    H, G = 16, cells.GATES[cell]
    extra = window_memory(wd, 4, 10) - window_memory(base, 4, 10)
    assert extra == 3 * 2 * H * G * H * 8  # float64
    assert window_memory(wd, 4, 10, backward=False) == window_memory(base, 4, 10, False)


def _short_run(folder, text, **kw):
    """Six training steps of a 16-unit model on `text` into `folder`, quietly."""
    return sr.train(sr.TrainConfig(text=str(text), out=str(folder), hidden=16, batch=4,
                                   seq_len=8, max_steps=6, eval_every=6, sample_length=0, **kw),
                    progress=False, log=lambda *a: None)


def test_training_uses_weight_drop_and_saves_both_options(tmp_path, small_text):
    def run(name, **kw):
        return _short_run(tmp_path / name, small_text, cell="lstm", dropout=0.0, **kw)

    plain, wd, wd2 = run("plain"), run("wd", weight_drop=0.5), run("wd2", weight_drop=0.5)
    assert digest(plain.model.params) != digest(wd.model.params)
    assert digest(wd.model.params) == digest(wd2.model.params)  # the seed fixes the masks
    ortho = run("ortho", recurrent_init="orthogonal")
    assert digest(ortho.model.params) != digest(plain.model.params)
    for result, want in ((wd, (0.5, "uniform")), (ortho, (0.0, "orthogonal"))):
        ckpt = sr.load_checkpoint(result.out)
        got = ckpt.model.config
        assert (got.weight_drop, got.recurrent_init) == want
        assert (ckpt.config["weight_drop"], ckpt.config["recurrent_init"]) == want
    # a resumed run keeps them without being told
    later = sr.train(resume=tmp_path / "wd", max_steps=8, progress=False, log=lambda *a: None)
    assert later.model.config.weight_drop == 0.5


@pytest.mark.parametrize("flag,value,says", [
    ("--weight-drop", "1", "--weight-drop must be in [0, 1), got 1.0"),
    ("--weight-drop", "-0.1", "--weight-drop must be in [0, 1), got -0.1"),
    ("--weight-drop", "nan", "--weight-drop must be in [0, 1), got nan"),
    ("--weight-drop", "x", "argument --weight-drop: invalid float value: 'x'"),
    ("--recurrent-init", "foo", "unknown --recurrent-init 'foo'; choose uniform, orthogonal"),
])
def test_impossible_values_say_what_is_wrong(flag, value, says, small_text, capsys):
    """The bad-input table checks the one clean line; here, that it names this problem."""
    assert main(["train", "--text", str(small_text), flag, value, "--quiet"]) == 1
    assert capsys.readouterr().err == f"scratchrnn: error: {says}" + (
        " (see 'scratchrnn train --help')\n" if value == "x" else "\n")


# sha256 of every dropout mask (shape, then bytes) model.forward drew for one window of a 3-layer
# model with dropout 0.3, and of the generator's state after, computed by the code before
# --locked-dropout existed (b64eeb7): with the option off, no draw may change.
DRAWS_BEFORE = {
    ("lstm", "float32"): "514c4a2d48012ade77465756b2cbdbdb0739f2e54474f08440c3e678ffb1dfe6",
    ("gru", "float64"): "6ae7a509b7074c9bd527db2ff7a6f2cb51454bb090763eb378b09b186c170f1f",
}


@pytest.mark.parametrize("cell,dtype", sorted(DRAWS_BEFORE))
@pytest.mark.parametrize("locked", [None, False])
def test_dropout_draws_are_unchanged_with_locked_dropout_off(cell, dtype, locked):
    kw = {} if locked is None else {"locked_dropout": locked}  # the default, and off by name
    cfg = ModelConfig(10, 16, cell, 3, 0.3, dtype, **kw)
    params = init_params(cfg, np.random.default_rng(1))
    r = np.random.default_rng(0)
    x, y = r.integers(0, 10, (3, 5)), r.integers(0, 10, (3, 5))
    rng = np.random.default_rng(5)
    _, _, cache = forward(params, cfg, x, y, init_state(cfg, 3), rng)
    h = hashlib.sha256()
    for layer in cache[0]:
        h.update(str(layer[2].shape).encode())
        h.update(layer[2].tobytes())
    h.update(json.dumps(rng.bit_generator.state).encode())
    assert h.hexdigest() == DRAWS_BEFORE[cell, dtype]


@pytest.mark.parametrize("cell", CELLS)
def test_locked_dropout_holds_one_mask_per_stream_and_unit_over_the_window(cell):
    """Each layer's mask is (1, B, H), drawn from the training generator in layer order (after
    that layer's W_h mask); the output layer's input has the same units of a stream zeroed at
    every step, different ones in different streams; evaluation drops nothing."""
    p, B, T, H, L = 0.5, 6, 7, 32, 2
    cfg = _cfg(cell, L=L, dropout=p, weight_drop=0.3, H=H, locked=True)
    params = init_params(cfg, np.random.default_rng(1))
    x, y, s = _window(cfg, B=B, T=T)
    rng, by_hand = np.random.default_rng(5), np.random.default_rng(5)
    loss, _, (layers_, out_cache, _) = forward(params, cfg, x, y, s, rng)
    for k, (_, _, dmask, wmask) in enumerate(layers_):
        want_w = layers.dropout_mask(params[f"l{k}.W_h"].shape, 0.3, by_hand, np.float64)
        want_d = layers.dropout_mask((1, B, H), p, by_hand, np.float64)
        assert dmask.shape == (1, B, H), dmask.shape
        assert np.array_equal(wmask, want_w) and np.array_equal(dmask, want_d), k
        assert set(np.unique(dmask)) == {0.0, 1 / (1 - p)}
    assert rng.bit_generator.state == by_hand.bit_generator.state
    dropped = out_cache[0].reshape(T, B, H) == 0  # the last layer's output, as W_y reads it
    assert (dropped == dropped[0]).all()  # the same units at every step of the window
    assert 0.3 < dropped[0].mean() < 0.7  # about p of them, per element of (B, H)
    assert all(0 < row.sum() < H for row in dropped[0])  # some units of every stream
    assert len({row.tobytes() for row in dropped[0]}) > 1  # different ones across streams
    # per-step dropout would drop different units at different steps from the same seed
    per_step = _cfg(cell, L=L, dropout=p, weight_drop=0.3, H=H)
    _, _, (_, out_step, _) = forward(params, per_step, x, y, s, np.random.default_rng(5))
    step_dropped = out_step[0].reshape(T, B, H) == 0
    assert not (step_dropped == step_dropped[0]).all()
    evaluation = forward(params, cfg, x, y, s)[0]  # no rng: nothing dropped, locked or not
    assert evaluation == forward(params, per_step, x, y, s)[0] and evaluation != loss


def test_training_uses_locked_dropout_and_saves_it(tmp_path, small_text):
    def run(name, **kw):
        return _short_run(tmp_path / name, small_text, cell="gru", dropout=0.3, **kw)

    plain, locked, again = run("plain"), run("locked", locked_dropout=True), \
        run("again", locked_dropout=True)
    assert digest(plain.model.params) != digest(locked.model.params)
    assert digest(locked.model.params) == digest(again.model.params)  # the seed fixes masks
    ckpt = sr.load_checkpoint(locked.out)
    assert ckpt.model.config.locked_dropout is True and ckpt.config["locked_dropout"] is True
    assert sr.load_checkpoint(plain.out).model.config.locked_dropout is False
    later = sr.train(resume=tmp_path / "locked", max_steps=8, progress=False,
                     log=lambda *a: None)  # a resumed run keeps it without being told
    assert later.model.config.locked_dropout is True
