"""The character model: a stack of recurrent layers between a row-gather input and a softmax
output, as plain functions over a flat parameter dict, wrapped by the small `CharRNN` class.

Parameters (G = 1 rnn, 4 lstm, 3 gru; I_0 = V, I_k = H for k > 0; PyTorch's gate order):

    l{k}.W_x  (I_k, G*H)   input weights; layer 0 is read by row gather (an embedding)
    l{k}.W_h  (H, G*H)     recurrent weights, all gates fused into one product per step
    l{k}.b    (G*H,)       bias (PyTorch's bias_ih + bias_hh; for the GRU only their r, z parts)
    l{k}.b_hn (H,)         GRU only: the hidden bias of the n gate, which r multiplies
    l{k}.ln_x, l{k}.ln_h (G*H,)  layer_norm only: gains of LN(x W_x) and LN(h W_h), cells_ln.py
    W_y       (H, V)       output projection
    b_y       (V,)         output bias

State: `l{k}.h` (B, H) per layer, LSTM also `l{k}.c` (B, H). Loss: mean softmax cross-entropy
in nats per predicted character. Dropout (inverted, training only) follows every layer: a
fresh mask per position, or with locked_dropout (variational dropout, Gal & Ghahramani 2016;
AWD-LSTM's LockedDropout) one (1, B, H) mask per window, the same units of each stream dropped
at every step; the backward pass multiplies by the same broadcast mask.

Weight drop (DropConnect on the recurrent weights, Merity, Keskar & Socher 2017, "Regularizing
and Optimizing LSTM Language Models"): in training, each window draws one keep-mask M of W_h's
shape per layer (keep 1 - p, scaled by 1 / (1 - p)) and the cell runs every step on W_h * M;
by the chain rule dL/dW_h = dL/d(W_h * M) * M. Orthogonal recurrent init (Saxe, McClelland &
Ganguli 2014) makes each gate's H x H block of W_h orthogonal: nn.init.orthogonal_ applied to
each gate's chunk (applied to the whole (G*H, H) weight_hh it is only semi-orthogonal).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .. import limits
from ..errors import ScratchRNNError
from . import cells, cells_ln, layers

DTYPES = ("float32", "float64")
RECURRENT_INITS = ("uniform", "orthogonal")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    hidden_size: int = 128
    cell: str = "rnn"
    num_layers: int = 1
    dropout: float = 0.0
    dtype: str = "float32"
    init_std: float | None = None  # None: PyTorch's U(+-1/sqrt(fan_in)); else N(0, std)
    weight_drop: float = 0.0  # DropConnect probability on every W_h, in training
    recurrent_init: str = "uniform"  # or "orthogonal": every gate's block of W_h
    layer_norm: bool = False  # GRU only: each gate's pre-activations layer-normalised
    locked_dropout: bool = False  # one dropout mask per stream and unit for a whole window

    def __post_init__(self):
        """Every option's range, the one place it is checked (a TrainConfig's model options
        come here through store.config.model_config)."""
        for name, allowed in (("cell", tuple(cells.GATES)), ("dtype", DTYPES),
                              ("recurrent_init", RECURRENT_INITS)):
            if getattr(self, name) not in allowed:
                raise ScratchRNNError(f"unknown `{name}` {getattr(self, name)!r}; "
                                      f"choose {', '.join(allowed)}")
        limits.integer(self.vocab_size, "vocab_size", 1)
        limits.integer(self.hidden_size, "hidden_size", 1)
        limits.integer(self.num_layers, "num_layers", 1, limits.MAX_LAYERS)
        limits.real(self.dropout, "dropout", 0.0, 1.0, hi_open=True)
        limits.real(self.init_std, "init_std", 0.0, lo_open=True, none_ok=True)
        limits.real(self.weight_drop, "weight_drop", 0.0, 1.0, hi_open=True)
        for name in ("layer_norm", "locked_dropout"):
            if not isinstance(getattr(self, name), bool):
                raise ScratchRNNError(f"`{name}` is on or off (True or False), got "
                                      f"{getattr(self, name)!r}")
        if self.layer_norm and self.cell != "gru":
            raise ScratchRNNError(f"`layer_norm` works with `cell` gru only for now, not "
                                  f"{self.cell}; use `cell` gru or turn `layer_norm` off")
        if self.locked_dropout and not self.dropout > 0:
            raise ScratchRNNError("`locked_dropout` needs `dropout` > 0 (it holds dropout's mask "
                                  "fixed over each window); give `dropout` P or turn "
                                  "`locked_dropout` off")

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
        if cfg.layer_norm:  # gains of LN(x W_x) and LN(h W_h), per gate unit
            shapes[f"l{k}.ln_x"] = (G * H,)
            shapes[f"l{k}.ln_h"] = (G * H,)
    shapes["W_y"] = (H, V)
    shapes["b_y"] = (V,)
    return shapes


def param_count(cfg: ModelConfig) -> tuple[int, int]:
    """(numbers, arrays) in the parameters, in closed form: no loop over layers, no arrays."""
    V, H, G, L = cfg.vocab_size, cfg.hidden_size, cells.GATES[cfg.cell], cfg.num_layers
    per_layer = H * G * H + G * H + (H if cfg.cell == "gru" else 0)  # W_h, b (, b_hn)
    per_layer += 2 * G * H if cfg.layer_norm else 0  # ln_x, ln_h
    numbers = V * G * H + (L - 1) * H * G * H + L * per_layer + H * V + V
    arrays = (4 if cfg.cell == "gru" else 3) + (2 if cfg.layer_norm else 0)
    return numbers, L * arrays + 2


# Per layer and position, the (B, H)-sized buffers a window keeps for the backward pass besides
# its (B, G*H) input projection: cells.py's caches (rnn: hs; lstm: hs, cs, tanh(c) and the four
# gate activations; gru: hs, r, z, n, h W_hn) plus the layer output and a dropout mask.
_KEPT = {"rnn": 1 + 2, "lstm": 7 + 2, "gru": 5 + 2}


def window_memory(cfg: ModelConfig, batch: int, seq_len: int, backward: bool = True) -> int:
    """Bytes one (batch, seq_len) window holds at its peak: every layer's activations, the
    logits, and (training) one layer's backward buffers and the embedding gradient's one-hot
    (or, for a table of more than layers.ONEHOT_MAX_ROWS rows, its sorted copy of dz)."""
    V, H, G, L = cfg.vocab_size, cfg.hidden_size, cells.GATES[cfg.cell], cfg.num_layers
    size = np.dtype(cfg.dtype).itemsize
    n = batch * seq_len
    kept = L * n * (G * H + _KEPT[cfg.cell] * H) + L * batch * H * len(cells.STATE_KEYS[cfg.cell])
    work = n * V  # logits (the loss gradient reuses them)
    if backward:
        work += n * (2 * G * H + H)  # dz / dhz and dx, then the embedding gradient's
        work += n * (V if V <= layers.ONEHOT_MAX_ROWS else G * H)  # (N, V) one-hot or sorted dz
        if cfg.weight_drop > 0:  # per layer a weight mask and the masked W_h the cell keeps
            kept += L * 2 * H * G * H
    if cfg.layer_norm:  # LN(h W_h) of every step and both normalisations' 1 / std; while a
        kept += L * n * (G * H + 2 * G)  # layer runs, its gained input and LN's temporaries
        work += n * (2 * G * H + H)  # (traced peaks: 0.83-0.99 of the estimate, B 4-64)
    return (kept + work) * size + V * G * H * size  # W + b, gathered by the embedding


def model_memory(cfg: ModelConfig, copies: int = 1, window_bytes: int = 0) -> dict[str, int]:
    """The bytes check_model_memory adds up, by part: the parameters, their other `copies` - 1
    copies, and a window's `window_bytes`."""
    numbers, arrays = param_count(cfg)
    per_copy = numbers * np.dtype(cfg.dtype).itemsize + arrays * limits.ARRAY_OVERHEAD
    return {"parameters": per_copy, "gradients and optimizer state": per_copy * (copies - 1),
            "activations of a window": window_bytes}


def check_model_memory(cfg: ModelConfig, copies: int = 1, window_bytes: int = 0,
                       hints: dict[str, str] | None = None) -> None:
    """Refuse, before anything is allocated, a model whose parameters (times `copies`: the
    weights, gradients, optimizer state, average...) and a window's `window_bytes` (from
    window_memory) do not fit in the memory available. `hints` may name, for "parameters" and
    "activations", what the user can lower."""
    hints = {"parameters": "use a smaller hidden_size or num_layers",
             "activations": "use a smaller batch or a shorter window", **(hints or {})}
    limits.check_memory(
        model_memory(cfg, copies, window_bytes),
        f"a model of {cfg.num_layers} x {cfg.hidden_size} {cfg.cell} units",
        {"parameters": hints["parameters"], "gradients and optimizer state": hints["parameters"],
         "activations of a window": hints["activations"]})


def check_ids(name: str, ids, vocab_size: int, ndim: int) -> np.ndarray:
    """Character ids as an integer array of `ndim` dimensions, every one in [0, vocab_size):
    NumPy would wrap a negative id around to the end of the vocabulary without a word."""
    try:
        arr = np.asarray(ids)
    except (ValueError, TypeError) as e:
        raise ScratchRNNError(f"{name} must be an array of character ids: {e}") from None
    if arr.dtype.kind not in "iu":
        raise ScratchRNNError(f"{name} must hold integer character ids, got dtype {arr.dtype}")
    if arr.ndim != ndim or 0 in arr.shape:
        want = "(batch, time)" if ndim == 2 else "(length,)"
        raise ScratchRNNError(f"{name} must be a non-empty {want} array, got shape "
                              f"{list(arr.shape)}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= vocab_size:
        raise ScratchRNNError(f"{name} holds id {lo if lo < 0 else hi}, outside the model's "
                              f"vocabulary 0..{vocab_size - 1}")
    return arr


def orthogonal_blocks(H: int, G: int, rng: np.random.Generator) -> np.ndarray:
    """(H, G*H) whose G column blocks are each an orthogonal H x H matrix: the Q of the QR
    decomposition of a standard normal matrix, its columns' signs fixed by sign(diag(R)) so
    that Q is uniformly (Haar) distributed (Mezzadri 2007), as in PyTorch's orthogonal_."""
    a = rng.standard_normal((G, H, H))  # (G, H, H) one Gaussian matrix per gate
    q, r = np.linalg.qr(a)  # (G, H, H) each
    d = np.sign(np.diagonal(r, axis1=1, axis2=2))  # (G, H)
    q *= np.where(d == 0, 1.0, d)[:, None, :]
    return q.transpose(1, 0, 2).reshape(H, G * H)  # block k = q[k]


def init_params(cfg: ModelConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    params = {}
    G = cells.GATES[cfg.cell]
    for key, shape in param_shapes(cfg).items():
        # PyTorch's U(+-1/sqrt(fan_in)), with each matrix's true fan-in: layer 0 reads a one-hot
        # character, one input at a time, so its fan-in is 1 -- the scale nn.Embedding followed
        # by W_ih gives. At 1/sqrt(H) the input reached the first cell ~10x weaker than that,
        # and training sat at the unigram loss for a hundred steps (BENCHMARKS.md, issue 11).
        bound = 1.0 if key == "l0.W_x" else 1.0 / np.sqrt(cfg.hidden_size)
        if cfg.recurrent_init == "orthogonal" and key.endswith(".W_h"):
            # drawn where the uniform W_h was: with the option off the draw order is unchanged
            w = orthogonal_blocks(cfg.hidden_size, G, rng)
        elif cfg.init_std is not None:
            w = rng.normal(0.0, cfg.init_std, shape) if "W" in key else np.zeros(shape)
        else:
            w = rng.uniform(-bound, bound, shape) if "W" in key else np.zeros(shape)
        params[key] = w.astype(cfg.dtype)
        if ".ln_" in key:  # LN gains start at 1 (drawing nothing: the other weights are as
            params[key][:] = 1.0  # without layer normalisation)
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


def cell_pair(cfg: ModelConfig):
    """(forward, backward) of the configuration's recurrent cell: both read the drive that
    `drive_forward` gives them."""
    if cfg.layer_norm:
        return cells_ln.forward, cells_ln.backward
    return cells.FORWARD[cfg.cell], cells.BACKWARD[cfg.cell]


def drive_forward(cfg: ModelConfig, k: int, x, p: dict):
    """Layer k's input (ids (T, B) for the first layer, else (T, B, H)) -> its cell's drive
    (T, B, G*H): x W_x + b, or LN(x W_x) g_x + b with layer_norm (cells_ln.py), and a cache."""
    if cfg.layer_norm:
        return cells_ln.drive_forward(x, p, first=k == 0)
    if k == 0:
        return layers.embedding_forward(x, p["W_x"], p["b"])
    return layers.dense_forward(x, p["W_x"], p["b"])


def drive_backward(cfg: ModelConfig, k: int, d, cache):
    """dL/d(drive) -> (dL/dx, None for ids; layer k's {"W_x", "b"[, "ln_x"]})."""
    if cfg.layer_norm:
        return cells_ln.drive_backward(d, cache, first=k == 0)
    if k == 0:
        dx, g = None, layers.embedding_backward(d, cache)
    else:
        dx, g = layers.dense_backward(d, cache)
    return dx, {"W_x": g["W"], "b": g["b"]}


def forward(params, cfg: ModelConfig, inputs, targets, state, rng=None):
    """inputs, targets (B, T) ints; state from `init_state` or a previous window.
    Dropout and weight drop are applied when cfg.dropout / cfg.weight_drop > 0 and an `rng` is
    given (training). The rng draws, layer by layer: layer k's W_h mask (weight drop), then
    layer k's (T, B, H) dropout mask, or (1, B, H) with cfg.locked_dropout. Returns
    (loss, state_out, cache)."""
    ids = np.asarray(inputs).T  # (T, B): time-major inside
    T, B = ids.shape
    caches, state_out = [], {}
    x = None
    cell_forward = cell_pair(cfg)[0]
    for k in range(cfg.num_layers):
        p = _layer(params, k)
        wmask = None
        if cfg.weight_drop > 0 and rng is not None:
            # one mask for the whole window: every step reuses the same dropped connections
            wmask = layers.dropout_mask(p["W_h"].shape, cfg.weight_drop, rng,
                                        p["W_h"].dtype)  # (H, G*H)
            p = dict(p, W_h=p["W_h"] * wmask)  # the cell sees only the masked matrix
        drive, in_cache = drive_forward(cfg, k, ids if k == 0 else x, p)  # (T, B, G*H)
        x, st, cell_cache = cell_forward(drive, _layer(state, k), p)  # (T, B, H)
        state_out.update({f"l{k}.{s}": v for s, v in st.items()})
        mask = None
        if cfg.dropout > 0 and rng is not None:
            # locked: one mask per stream and unit, broadcast over the window's T steps
            shape = (1, *x.shape[1:]) if cfg.locked_dropout else x.shape
            mask = layers.dropout_mask(shape, cfg.dropout, rng, x.dtype)  # (T|1, B, H)
            x = x * mask  # (T, B, H)
        caches.append((in_cache, cell_cache, mask, wmask))
    logits, out_cache = layers.dense_forward(x, params["W_y"], None)  # (T, B, V), no b_y yet
    flat_targets = np.asarray(targets).T.reshape(-1)  # (T*B,) in the logits' order
    loss, ce_cache = layers.softmax_xent_forward(logits.reshape(T * B, -1), flat_targets,
                                                 params["b_y"])  # b_y added in the same pass
    return loss, state_out, (caches, out_cache, ce_cache)


def backward(cache, cfg: ModelConfig, dstate=None, dloss: float = 1.0):
    """Gradients of dloss * loss (+ <dstate, state_out>) -> (grads like params, dstate_in)."""
    caches, out_cache, ce_cache = cache
    grads, dstate_in = {}, {}
    dlogits = layers.softmax_xent_backward(ce_cache, dloss)  # (T*B, V)
    dx, g = layers.dense_backward(dlogits, out_cache)  # (T, B, H)
    grads["W_y"], grads["b_y"] = g["W"], g["b"]
    cell_backward = cell_pair(cfg)[1]
    for k in range(cfg.num_layers - 1, -1, -1):
        in_cache, cell_cache, mask, wmask = caches[k]
        if mask is not None:
            dx *= mask  # (T, B, H) *= (T|1, B, H)
        ds = _layer(dstate, k) if dstate else None
        ddrive, dp, ds0 = cell_backward(dx, ds, cell_cache)  # (T, B, G*H)
        dstate_in.update({f"l{k}.{s}": v for s, v in ds0.items()})
        dx, g = drive_backward(cfg, k, ddrive, in_cache)  # (T, B, H), None for k = 0
        grads.update({f"l{k}.{name}": v for name, v in {**g, **dp}.items()})
        if wmask is not None:  # the cell's dW_h is wrt W_h * mask
            grads[f"l{k}.W_h"] *= wmask
    return grads, dstate_in


def step(params, cfg: ModelConfig, ids, state):
    """One step for generation: ids (B,) -> logits (B, V) and the next state (no dropout)."""
    ids = np.asarray(ids).reshape(1, -1)  # (1, B)
    x, new_state = None, {}
    cell_forward = cell_pair(cfg)[0]
    for k in range(cfg.num_layers):
        p = _layer(params, k)
        drive, _ = drive_forward(cfg, k, ids if k == 0 else x, p)  # (1, B, G*H)
        x, st, _ = cell_forward(drive, _layer(state, k), p)
        new_state.update({f"l{k}.{s}": v for s, v in st.items()})
    return x[0] @ params["W_y"] + params["b_y"], new_state


class CharRNN:
    """A character model: config + parameters. Holds no training state; everything else
    (optimizer, hidden state, RNG) is passed in and returned."""

    def __init__(self, vocab_size: int, hidden_size: int = 128, cell: str = "rnn",
                 num_layers: int = 1, dropout: float = 0.0, seed: int = 0,
                 dtype: str = "float32", init_std: float | None = None,
                 weight_drop: float = 0.0, recurrent_init: str = "uniform",
                 layer_norm: bool = False, locked_dropout: bool = False):
        new = CharRNN.from_config(ModelConfig(vocab_size, hidden_size, cell, num_layers, dropout,
                                              dtype, init_std, weight_drop, recurrent_init,
                                              layer_norm, locked_dropout), seed)
        self.config, self.params = new.config, new.params

    @classmethod
    def from_config(cls, config: ModelConfig, seed: int = 0) -> CharRNN:
        """A new model of `config` with parameters drawn from `seed`."""
        limits.integer(seed, "seed", 0)
        check_model_memory(config)
        return cls.from_params(config, init_params(config, np.random.default_rng(seed)))

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
        limits.integer(batch, "batch", 1)
        check_model_memory(self.config, window_bytes=window_memory(self.config, batch, 1, False))
        return init_state(self.config, batch)

    def _window(self, inputs, targets, state, backward: bool):
        """Checked (B, T) inputs and targets and the state to start from: ids in range, shapes
        that agree, a window that fits in memory; a bad argument is one ScratchRNNError."""
        inputs = check_ids("inputs", inputs, self.config.vocab_size, 2)
        targets = check_ids("targets", targets, self.config.vocab_size, 2)
        if inputs.shape != targets.shape:
            raise ScratchRNNError(f"inputs {list(inputs.shape)} and targets "
                                  f"{list(targets.shape)} must have the same (batch, time) shape")
        B, T = inputs.shape
        check_model_memory(self.config, window_bytes=window_memory(self.config, B, T, backward))
        if state is None:
            return inputs, targets, init_state(self.config, B)
        keys = [f"l{k}.{s}" for k in range(self.config.num_layers)
                for s in cells.STATE_KEYS[self.config.cell]]
        if not isinstance(state, dict) or sorted(state) != sorted(keys):
            raise ScratchRNNError(f"state must be a dict with the keys {', '.join(keys)} (from "
                                  "init_state or a previous window), or None")
        for key in keys:
            v = state[key]
            if (not isinstance(v, np.ndarray) or v.dtype.kind != "f"
                    or v.shape != (B, self.config.hidden_size)):
                raise ScratchRNNError(f"state[{key!r}] must be a float array of shape "
                                      f"{[B, self.config.hidden_size]}")
        return inputs, targets, state

    def loss_and_grads(self, inputs, targets, state=None, rng=None):
        """Mean cross-entropy (nats/char) of a (B, T) window, its gradients keyed like params,
        and the state to carry into the next window. Dropout and weight drop need `rng`."""
        if (self.config.dropout > 0 or self.config.weight_drop > 0) and rng is None:
            what = "dropout" if self.config.dropout > 0 else "weight drop"
            raise ScratchRNNError(f"this model uses {what}: pass "
                                  "rng=np.random.default_rng(...)")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ScratchRNNError(f"rng must be a numpy.random.Generator, got {rng!r}")
        inputs, targets, state = self._window(inputs, targets, state, backward=True)
        loss, state_out, cache = forward(self.params, self.config, inputs, targets, state, rng)
        grads, _ = backward(cache, self.config)
        return loss, grads, state_out

    def loss(self, inputs, targets, state=None):
        """Evaluation loss (no dropout) and the carried state."""
        inputs, targets, state = self._window(inputs, targets, state, backward=False)
        loss, state_out, _ = forward(self.params, self.config, inputs, targets, state)
        return loss, state_out

    def step(self, ids, state):
        return step(self.params, self.config, ids, state)
