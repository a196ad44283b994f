"""The character model: a stack of recurrent layers between a row-gather input and a softmax
output, as plain functions over a flat parameter dict, wrapped by the small `CharRNN` class.

Parameters (G = 1 rnn, 4 lstm, 3 gru; I_0 = V, I_k = H for k > 0; PyTorch's gate order):

    l{k}.W_x  (I_k, G*H)   input weights; layer 0 is read by row gather (an embedding)
    l{k}.W_h  (H, G*H)     recurrent weights, all gates fused into one product per step
    l{k}.b    (G*H,)       bias (PyTorch's bias_ih + bias_hh; for the GRU only their r, z parts)
    l{k}.b_hn (H,)         GRU only: the hidden bias of the n gate, which r multiplies
    W_y       (H, V)       output projection
    b_y       (V,)         output bias

State: `l{k}.h` (B, H) per layer, LSTM also `l{k}.c` (B, H). Loss: mean softmax cross-entropy
in nats per predicted character. Dropout (inverted, training only) follows every layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import cells, layers
from .errors import ScratchRNNError

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    hidden_size: int = 128
    cell: str = "rnn"
    num_layers: int = 1
    dropout: float = 0.0
    dtype: str = "float32"
    init_std: float | None = None  # None: PyTorch's U(+-1/sqrt(H)); else N(0, std)

    def __post_init__(self):
        if self.cell not in cells.GATES:
            raise ScratchRNNError(f"unknown cell {self.cell!r}; choose rnn, lstm or gru")
        for name in ("vocab_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ScratchRNNError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ScratchRNNError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.dtype not in DTYPES:
            raise ScratchRNNError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.init_std is not None and not self.init_std > 0:
            raise ScratchRNNError(f"init_std must be positive, got {self.init_std}")

    def to_dict(self) -> dict:
        return asdict(self)


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    V, H, G = cfg.vocab_size, cfg.hidden_size, cells.GATES[cfg.cell]
    shapes = {}
    for k in range(cfg.num_layers):
        shapes[f"l{k}.W_x"] = (V if k == 0 else H, G * H)
        shapes[f"l{k}.W_h"] = (H, G * H)
        shapes[f"l{k}.b"] = (G * H,)
        if cfg.cell == "gru":
            shapes[f"l{k}.b_hn"] = (H,)
    shapes["W_y"] = (H, V)
    shapes["b_y"] = (V,)
    return shapes


def init_params(cfg: ModelConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    bound = 1.0 / np.sqrt(cfg.hidden_size)
    params = {}
    for key, shape in param_shapes(cfg).items():
        if cfg.init_std is not None:
            w = rng.normal(0.0, cfg.init_std, shape) if "W" in key else np.zeros(shape)
        else:
            w = rng.uniform(-bound, bound, shape) if "W" in key else np.zeros(shape)
        params[key] = w.astype(cfg.dtype)
    if cfg.cell == "lstm":  # forget gate starts open, so early gradients reach far back
        H = cfg.hidden_size
        for k in range(cfg.num_layers):
            params[f"l{k}.b"][H:2 * H] = 1.0
    return params


def init_state(cfg: ModelConfig, batch: int) -> dict[str, np.ndarray]:
    return {f"l{k}.{s}": np.zeros((batch, cfg.hidden_size), cfg.dtype)
            for k in range(cfg.num_layers) for s in cells.STATE_KEYS[cfg.cell]}


def _layer(d: dict, k: int) -> dict:
    prefix = f"l{k}."
    return {key[len(prefix):]: v for key, v in d.items() if key.startswith(prefix)}


def forward(params, cfg: ModelConfig, inputs, targets, state, rng=None):
    """inputs, targets (B, T) ints; state from `init_state` or a previous window.
    Dropout is applied when cfg.dropout > 0 and an `rng` is given (training).
    Returns (loss, state_out, cache)."""
    ids = np.asarray(inputs).T  # (T, B): time-major inside
    T, B = ids.shape
    caches, state_out = [], {}
    x = None
    for k in range(cfg.num_layers):
        p = _layer(params, k)
        if k == 0:
            xproj, in_cache = layers.embedding_forward(ids, p["W_x"], p["b"])  # (T, B, G*H)
        else:
            xproj, in_cache = layers.dense_forward(x, p["W_x"], p["b"])  # (T, B, G*H)
        x, st, cell_cache = cells.FORWARD[cfg.cell](xproj, _layer(state, k), p)  # (T, B, H)
        state_out.update({f"l{k}.{s}": v for s, v in st.items()})
        mask = None
        if cfg.dropout > 0 and rng is not None:
            mask = layers.dropout_mask(x.shape, cfg.dropout, rng, x.dtype)  # (T, B, H)
            x = x * mask
        caches.append((in_cache, cell_cache, mask))
    logits, out_cache = layers.dense_forward(x, params["W_y"], params["b_y"])  # (T, B, V)
    flat_targets = np.asarray(targets).T.reshape(-1)  # (T*B,) in the logits' order
    loss, ce_cache = layers.softmax_xent_forward(logits.reshape(T * B, -1), flat_targets)
    return loss, state_out, (caches, out_cache, ce_cache)


def backward(cache, cfg: ModelConfig, dstate=None, dloss: float = 1.0):
    """Gradients of dloss * loss (+ <dstate, state_out>) -> (grads like params, dstate_in)."""
    caches, out_cache, ce_cache = cache
    grads, dstate_in = {}, {}
    dlogits = layers.softmax_xent_backward(ce_cache, dloss)  # (T*B, V)
    dx, g = layers.dense_backward(dlogits, out_cache)  # (T, B, H)
    grads["W_y"], grads["b_y"] = g["W"], g["b"]
    for k in range(cfg.num_layers - 1, -1, -1):
        in_cache, cell_cache, mask = caches[k]
        if mask is not None:
            dx *= mask
        ds = _layer(dstate, k) if dstate else None
        dxproj, dp, ds0 = cells.BACKWARD[cfg.cell](dx, ds, cell_cache)  # (T, B, G*H)
        dstate_in.update({f"l{k}.{s}": v for s, v in ds0.items()})
        if k == 0:
            g = layers.embedding_backward(dxproj, in_cache)
        else:
            dx, g = layers.dense_backward(dxproj, in_cache)
        grads[f"l{k}.W_x"], grads[f"l{k}.b"] = g["W"], g["b"]
        grads.update({f"l{k}.{name}": v for name, v in dp.items()})
    return grads, dstate_in


def step(params, cfg: ModelConfig, ids, state):
    """One step for generation: ids (B,) -> logits (B, V) and the next state (no dropout)."""
    ids = np.asarray(ids).reshape(1, -1)  # (1, B)
    x, new_state = None, {}
    for k in range(cfg.num_layers):
        p = _layer(params, k)
        if k == 0:
            xproj = p["W_x"][ids] + p["b"]  # (1, B, G*H)
        else:
            xproj = x @ p["W_x"] + p["b"]
        x, st, _ = cells.FORWARD[cfg.cell](xproj, _layer(state, k), p)
        new_state.update({f"l{k}.{s}": v for s, v in st.items()})
    return x[0] @ params["W_y"] + params["b_y"], new_state


class CharRNN:
    """A character model: config + parameters. Holds no training state; everything else
    (optimizer, hidden state, RNG) is passed in and returned."""

    def __init__(self, vocab_size: int, hidden_size: int = 128, cell: str = "rnn",
                 num_layers: int = 1, dropout: float = 0.0, seed: int = 0,
                 dtype: str = "float32", init_std: float | None = None):
        self.config = ModelConfig(vocab_size, hidden_size, cell, num_layers, dropout, dtype,
                                  init_std)
        self.params = init_params(self.config, np.random.default_rng(seed))

    @classmethod
    def from_params(cls, config: ModelConfig, params: dict[str, np.ndarray]) -> CharRNN:
        model = cls.__new__(cls)
        model.config, model.params = config, params
        return model

    def __repr__(self) -> str:
        c = self.config
        return (f"CharRNN(cell={c.cell!r}, hidden_size={c.hidden_size}, num_layers="
                f"{c.num_layers}, vocab_size={c.vocab_size}, params={self.num_params():,})")

    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def init_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        return init_state(self.config, batch)

    def loss_and_grads(self, inputs, targets, state=None, rng=None):
        """Mean cross-entropy (nats/char) of a (B, T) window, its gradients keyed like params,
        and the state to carry into the next window. Dropout needs `rng`."""
        if self.config.dropout > 0 and rng is None:
            raise ValueError("this model uses dropout: pass rng=np.random.default_rng(...)")
        inputs = np.asarray(inputs)
        state = self.init_state(inputs.shape[0]) if state is None else state
        loss, state_out, cache = forward(self.params, self.config, inputs, targets, state, rng)
        grads, _ = backward(cache, self.config)
        return loss, grads, state_out

    def loss(self, inputs, targets, state=None):
        """Evaluation loss (no dropout) and the carried state."""
        inputs = np.asarray(inputs)
        state = self.init_state(inputs.shape[0]) if state is None else state
        loss, state_out, _ = forward(self.params, self.config, inputs, targets, state)
        return loss, state_out

    def step(self, ids, state):
        return step(self.params, self.config, ids, state)
