"""The same weights in PyTorch's nn.RNN / nn.LSTM / nn.GRU: loss, every gradient and the final
states must agree to float64 round-off (rtol 1e-9, atol 1e-11), also with weight drop and
dropout under the same masks. Skips without torch."""

import numpy as np
import pytest

from scratchrnn.nn import optim
from scratchrnn.nn.model import ModelConfig, backward, forward, init_params, init_state

torch = pytest.importorskip("torch")
TOL = dict(rtol=1e-9, atol=1e-11)


def torch_twin(cfg: ModelConfig, params):
    """An equivalent torch model built from our parameters (one-hot input = row gather)."""
    H, V, L = cfg.hidden_size, cfg.vocab_size, cfg.num_layers
    kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cfg.cell]
    kwargs = {"nonlinearity": "tanh"} if cfg.cell == "rnn" else {}
    rnn = kind(V, H, num_layers=L, batch_first=True, dtype=torch.float64, **kwargs)
    out = torch.nn.Linear(H, V, dtype=torch.float64)
    with torch.no_grad():
        for k in range(L):
            getattr(rnn, f"weight_ih_l{k}").copy_(torch.from_numpy(params[f"l{k}.W_x"].T))
            getattr(rnn, f"weight_hh_l{k}").copy_(torch.from_numpy(params[f"l{k}.W_h"].T))
            getattr(rnn, f"bias_ih_l{k}").copy_(torch.from_numpy(params[f"l{k}.b"]))
            bias_hh = getattr(rnn, f"bias_hh_l{k}")
            bias_hh.zero_()
            if cfg.cell == "gru":
                bias_hh[2 * H:] = torch.from_numpy(params[f"l{k}.b_hn"])
        out.weight.copy_(torch.from_numpy(params["W_y"].T))
        out.bias.copy_(torch.from_numpy(params["b_y"]))
    return rnn, out


def torch_grads(cfg, rnn, out):
    H, g = cfg.hidden_size, {}
    for k in range(cfg.num_layers):
        g[f"l{k}.W_x"] = getattr(rnn, f"weight_ih_l{k}").grad.numpy().T
        g[f"l{k}.W_h"] = getattr(rnn, f"weight_hh_l{k}").grad.numpy().T
        g[f"l{k}.b"] = getattr(rnn, f"bias_ih_l{k}").grad.numpy()
        if cfg.cell == "gru":
            g[f"l{k}.b_hn"] = getattr(rnn, f"bias_hh_l{k}").grad.numpy()[2 * H:]
    g["W_y"], g["b_y"] = out.weight.grad.numpy().T, out.bias.grad.numpy()
    return g


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_matches_torch(cell, num_layers):
    rng = np.random.default_rng(num_layers)
    cfg = ModelConfig(11, 8, cell, num_layers, 0.0, "float64")
    params = init_params(cfg, rng)
    B, T = 3, 7
    x, y = rng.integers(0, 11, (B, T)), rng.integers(0, 11, (B, T))
    state = {k: rng.normal(size=v.shape) * 0.5 for k, v in init_state(cfg, B).items()}
    loss, state_out, cache = forward(params, cfg, x, y, state)
    grads, _ = backward(cache, cfg)

    rnn, out = torch_twin(cfg, params)
    stack = lambda key: torch.from_numpy(
        np.stack([state[f"l{k}.{key}"] for k in range(num_layers)]))
    h0 = (stack("h"), stack("c")) if cell == "lstm" else stack("h")
    onehot = torch.nn.functional.one_hot(torch.from_numpy(x), 11).double()
    hs, hT = rnn(onehot, h0)
    t_loss = torch.nn.functional.cross_entropy(out(hs).reshape(-1, 11),
                                               torch.from_numpy(y).reshape(-1))
    t_loss.backward()

    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    t_grads = torch_grads(cfg, rnn, out)
    assert set(t_grads) == set(grads)
    for k in grads:
        np.testing.assert_allclose(grads[k], t_grads[k], err_msg=k, **TOL)
    h_T = hT[0] if cell == "lstm" else hT
    for k in range(num_layers):
        np.testing.assert_allclose(state_out[f"l{k}.h"], h_T[k].detach().numpy(), **TOL)
        if cell == "lstm":
            np.testing.assert_allclose(state_out[f"l{k}.c"], hT[1][k].detach().numpy(), **TOL)


@pytest.mark.parametrize("name, betas", [("sgd", None), ("adagrad", None),
                                         ("adam", (0.9, 0.999)), ("adam", (0.8, 0.99))])
def test_optimizers_match_torch(name, betas):
    rng = np.random.default_rng(0)
    params = {"a": rng.normal(size=(4, 3)), "b": rng.normal(size=5)}
    t_params = [torch.tensor(p.copy(), requires_grad=True) for p in params.values()]
    lr = 0.05
    t_opt = {"sgd": lambda: torch.optim.SGD(t_params, lr=lr),
             "adagrad": lambda: torch.optim.Adagrad(t_params, lr=lr, eps=0.0,
                                                    initial_accumulator_value=1e-8),
             "adam": lambda: torch.optim.Adam(t_params, lr=lr, betas=betas,
                                              eps=optim.ADAM_EPS)}[name]()
    state = optim.init_state(name, params)
    for _ in range(5):
        grads = {k: rng.normal(size=p.shape) for k, p in params.items()}
        for tp, g in zip(t_params, grads.values(), strict=True):
            tp.grad = torch.from_numpy(g.copy())
        t_opt.step()
        optim.update(name, params, grads, state, lr, *([betas] if betas else []))
    for p, tp in zip(params.values(), t_params, strict=True):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("locked", [False, True])
def test_weight_drop_matches_torch(cell, locked):
    """Weight drop (DropConnect on weight_hh, as AWD-LSTM's WeightDrop): torch runs the module
    on weight_hh * M through functional_call with our masks M, and autograd differentiates
    through the product to the raw weights. Dropout between the layers too, per step or
    locked (AWD-LSTM's LockedDropout: one (B, 1, H) mask that torch broadcasts over time)."""
    rng = np.random.default_rng(3)
    L, V = 2, 11
    cfg = ModelConfig(V, 8, cell, L, 0.3, "float64", weight_drop=0.4, locked_dropout=locked)
    params = init_params(cfg, rng)
    B, T = 3, 7
    x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    state = {k: rng.normal(size=v.shape) * 0.5 for k, v in init_state(cfg, B).items()}
    loss, state_out, cache = forward(params, cfg, x, y, state, np.random.default_rng(9))
    grads, _ = backward(cache, cfg)
    wmasks = [layer[3] for layer in cache[0]]  # (H, G*H) each
    dmasks = [layer[2] for layer in cache[0]]  # (T, B, H) each, (1, B, H) locked
    assert all(0 < (m == 0).sum() < m.size for m in wmasks)
    assert all(m.shape == ((1 if locked else T), B, 8) for m in dmasks)

    # one torch layer at a time, so the dropout masks can go between them
    rnn, out = torch_twin(cfg, params)
    kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    h = torch.nn.functional.one_hot(torch.from_numpy(x), V).double()  # (B, T, V)
    finals = []
    for k in range(L):
        layer = kind(V if k == 0 else 8, 8, batch_first=True, dtype=torch.float64)
        # the twin's layer-k leaves, so autograd's gradients land on rnn's parameters
        weights = {f"{n}_l0": getattr(rnn, f"{n}_l{k}")
                   for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        weights["weight_hh_l0"] = weights["weight_hh_l0"] * torch.from_numpy(wmasks[k].T)
        h0 = torch.from_numpy(state[f"l{k}.h"])[None]
        if cell == "lstm":
            h0 = (h0, torch.from_numpy(state[f"l{k}.c"])[None])
        h, hT = torch.func.functional_call(layer, weights, (h, h0))
        h = h * torch.from_numpy(dmasks[k].transpose(1, 0, 2))  # (B, T, H)
        finals.append(hT[0] if cell == "lstm" else hT)
    t_loss = torch.nn.functional.cross_entropy(out(h).reshape(-1, V),
                                               torch.from_numpy(y).reshape(-1))
    t_loss.backward()

    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    t_grads = torch_grads(cfg, rnn, out)
    for k in grads:
        np.testing.assert_allclose(grads[k], t_grads[k], err_msg=k, **TOL)
    for k in range(L):
        np.testing.assert_allclose(state_out[f"l{k}.h"], finals[k][0].detach().numpy(), **TOL)


def _ln_gru_torch(params, cfg, x, state, wmasks, dmasks):
    """cells_ln.py's equations written out in torch, autograd through F.layer_norm: the
    layer-normalised GRU (Ba et al. 2016) that torch has no module for. Returns the loss's
    input (B, T, H), the final states, and the leaf tensors by our parameter names."""
    F = torch.nn.functional
    H, V, L = cfg.hidden_size, cfg.vocab_size, cfg.num_layers
    leaf = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}

    def ln(v, gain):  # each gate's H units normalised on their own
        shape = v.shape
        v = F.layer_norm(v.reshape(*shape[:-1], 3, H), (H,), eps=1e-5)
        return v.reshape(shape) * gain

    h_in = F.one_hot(torch.from_numpy(x), V).double()  # (B, T, V)
    finals = []
    for k in range(L):
        p = {n: leaf[f"l{k}.{n}"] for n in ("W_x", "W_h", "b", "b_hn", "ln_x", "ln_h")}
        W_h = p["W_h"] * torch.from_numpy(wmasks[k]) if wmasks else p["W_h"]
        ax = ln(h_in @ p["W_x"], p["ln_x"]) + p["b"]  # (B, T, 3H)
        h = torch.from_numpy(state[f"l{k}.h"])
        outs = []
        for t in range(x.shape[1]):
            ah = ln(h @ W_h, p["ln_h"])  # (B, 3H)
            r = torch.sigmoid(ax[:, t, :H] + ah[:, :H])
            z = torch.sigmoid(ax[:, t, H:2 * H] + ah[:, H:2 * H])
            n = torch.tanh(ax[:, t, 2 * H:] + r * (ah[:, 2 * H:] + p["b_hn"]))
            h = (1 - z) * n + z * h
            outs.append(h)
        finals.append(h)
        h_in = torch.stack(outs, dim=1)  # (B, T, H)
        if dmasks:
            h_in = h_in * torch.from_numpy(dmasks[k].transpose(1, 0, 2))
    logits = h_in @ leaf["W_y"] + leaf["b_y"]
    return logits, finals, leaf


@pytest.mark.parametrize("num_layers,dropout,weight_drop", [(1, 0.0, 0.0), (3, 0.0, 0.0),
                                                             (2, 0.3, 0.4)])
def test_layer_norm_gru_matches_torch(num_layers, dropout, weight_drop):
    """--layer-norm: loss, every gradient (the LN gains included) and the final states against
    torch autograd of the same equations, with dropout and weight-drop masks shared."""
    rng = np.random.default_rng(num_layers)
    V, B, T = 11, 3, 7
    cfg = ModelConfig(V, 8, "gru", num_layers, dropout, "float64", weight_drop=weight_drop,
                      layer_norm=True)
    params = init_params(cfg, rng)
    for k in params:  # gains and biases away from their initial 1 and 0
        if ".ln_" in k or k.endswith(".b") or k.endswith(".b_hn"):
            params[k] += 0.3 * rng.normal(size=params[k].shape)
    x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    state = {k: rng.normal(size=v.shape) * 0.5 for k, v in init_state(cfg, B).items()}
    masked = dropout or weight_drop
    loss, state_out, cache = forward(params, cfg, x, y, state,
                                     np.random.default_rng(9) if masked else None)
    grads, _ = backward(cache, cfg)
    wmasks = [layer[3] for layer in cache[0]] if weight_drop else None  # (H, G*H) each
    dmasks = [layer[2] for layer in cache[0]] if dropout else None  # (T, B, H) each

    logits, finals, leaf = _ln_gru_torch(params, cfg, x, state, wmasks, dmasks)
    t_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                               torch.from_numpy(y).reshape(-1))
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    assert set(grads) == set(leaf) and any(".ln_h" in k for k in grads)
    for k in grads:
        np.testing.assert_allclose(grads[k], leaf[k].grad.numpy(), err_msg=k, **TOL)
    for k in range(num_layers):
        np.testing.assert_allclose(state_out[f"l{k}.h"], finals[k].detach().numpy(), **TOL)
