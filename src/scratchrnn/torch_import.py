"""Importing a PyTorch character model, the state dict of

    nn.Embedding(V, E) -> nn.RNN | nn.LSTM | nn.GRU(E, H, num_layers=L) -> nn.Linear(H, V)

(or of the embedding-free, one-hot layout that export.py writes), as a scratchrnn run that
`sample` and `eval` read. The import is exact: PyTorch computes E[id] @ W_ih^T, which is row id of
E @ W_ih^T, so our first layer's row-gathered input matrix is W_x = E @ W_ih_l0^T; the other
weights are transposes, and the biases fold as in model.py (b = bias_ih + bias_hh, except the
GRU's n slice of bias_hh, kept apart as b_hn because r multiplies it).

Only weights are read, so what the weights cannot say is not checked: `batch_first` (it moves no
weight) and an nn.RNN's `nonlinearity` (ours is tanh, PyTorch's default). A `.safetensors` file
is read with the safetensors package; a `.pt` file with torch.load(weights_only=True), only when
PyTorch is installed: nothing here unpickles otherwise (both from the optional extras).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np

from . import optim
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .errors import ScratchRNNError
from .export import need
from .fsutil import atomic_write_bytes
from .model import CharRNN, ModelConfig
from .owner import RunFolder, check_run_out
from .safejson import dumps as json_dumps
from .text import Vocab

RNN_KEY = re.compile(r"^(.*?)(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
CELL_OF_GATES = {1: "rnn", 4: "lstm", 3: "gru"}
MAX_VOCAB_FILE = 1 << 16


def _bad(path, why: str) -> ScratchRNNError:
    return ScratchRNNError(f"cannot import {path}: {why}")


def read_tensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors (as NumPy arrays) and string metadata of a safetensors or PyTorch file."""
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise ScratchRNNError(f"{path} {what}; pass a .safetensors or .pt state dict")
    with open(path, "rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # torch.save's zip, or a bare pickle
        return _read_torch(path), {}
    n = int.from_bytes(head[:8], "little")
    if len(head) < 9 or head[8:9] != b"{" or n + 8 > path.stat().st_size:
        raise _bad(path, "it is neither a safetensors file nor a PyTorch .pt file")
    st = need("safetensors")
    try:
        with st.safe_open(str(path), "numpy") as f:
            meta = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, meta  # noqa: SIM118
    except Exception as e:  # SafetensorError, or a dtype NumPy lacks (bfloat16)
        raise _bad(path, f"unreadable safetensors ({str(e).splitlines()[0][:120]}); save "
                   "the state dict as float32") from None


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise _bad(path, "it is a PyTorch pickle, which only PyTorch may read (with "
                   "weights_only=True) and PyTorch is not installed; pip install torch, or "
                   "save the state dict with safetensors") from None
    try:
        with warnings.catch_warnings():  # its notes on pickle protocols are not the user's
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for anything but plain weights, or corruption
        raise _bad(path, f"torch.load(weights_only=True) refused it ({type(e).__name__}); "
                   "pass a plain state dict") from None
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(next(iter(obj.values())), dict):
        obj = next(iter(obj.values()))  # {"state_dict": {...}} or {"model": {...}}
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise _bad(path, "it holds no state dict (a dict of tensors); save "
                   "model.state_dict()")
    return {k: (v.float() if v.dtype == torch.bfloat16 else v).detach().numpy()
            for k, v in obj.items()}


def _is_file(spec: str) -> bool:
    """Whether --vocab names a file; a string of characters may be no possible path at all
    (longer than a file name may be), which is an answer too, not an error."""
    try:
        return Path(spec).is_file()
    except (OSError, ValueError):
        return False


def read_vocab(spec: str | None, meta: dict[str, str]) -> Vocab:
    """--vocab: a file holding exactly the characters (a .json file: a JSON string), else the
    characters themselves with \\n, \\t and \\\\ escapes; None: the file's own metadata."""
    if spec is None:
        if "vocab" not in meta:
            raise ScratchRNNError("pass the model's characters in index order with --vocab "
                                  "(directly, or a file holding them)")
        chars = json.loads(meta["vocab"])
    elif _is_file(spec):
        if Path(spec).stat().st_size > MAX_VOCAB_FILE:
            raise ScratchRNNError(f"the --vocab file {spec} is too big for a character list")
        raw = Path(spec).read_bytes()
        try:
            chars = json.loads(raw) if spec.endswith(".json") else raw.decode("utf-8")
        except (UnicodeDecodeError, ValueError):
            raise ScratchRNNError(f"cannot read the --vocab file {spec}: not UTF-8 text or "
                                  "JSON") from None
    else:
        escapes = {"n": "\n", "t": "\t", "\\": "\\"}
        chars = re.sub(r"\\([nt\\])", lambda m: escapes[m.group(1)], spec)
    chars = _chars_of(chars)
    if not chars.isascii():
        raise ScratchRNNError("--vocab has non-ASCII characters; scratchrnn reads ASCII text "
                              "only, so it cannot import this model's vocabulary")
    try:
        return Vocab(chars)
    except ScratchRNNError as e:
        raise ScratchRNNError(f"--vocab: {e}; pass each of the model's characters once, in "
                              "index order") from None


def _chars_of(value) -> str:
    """A JSON vocabulary as char-rnn code keeps it: a string, a list of characters (itos), or
    a {character: index} dict (stoi) with the indices 0 .. n-1."""
    if isinstance(value, list) and all(isinstance(c, str) and len(c) == 1 for c in value):
        return "".join(value)
    if isinstance(value, dict) and all(isinstance(c, str) and len(c) == 1 for c in value) \
            and sorted(value.values()) == list(range(len(value))):
        return "".join(sorted(value, key=value.get))
    if not isinstance(value, str):
        raise ScratchRNNError("the --vocab JSON must be a string, a list of characters or a "
                              "{character: index} dict with indices 0 .. n-1")
    return value


def _find(tensors: dict, path, V: int):
    """Which keys are the recurrent stack, the embedding and the output layer."""
    rnn = {k: RNN_KEY.match(k) for k in tensors}
    rnn = {k: m for k, m in rnn.items() if m}
    if not rnn:
        raise _bad(path, "no recurrent weights (keys like rnn.weight_ih_l0)")
    if any(m.group(4) for m in rnn.values()):
        raise _bad(path, "it is bidirectional (_reverse weights); scratchrnn models read "
                   "left to right only")
    if any(m.group(2) == "weight_hr" for m in rnn.values()):
        raise _bad(path, "the LSTM uses proj_size (weight_hr weights), which scratchrnn "
                   "does not have")
    prefixes = sorted({m.group(1) for m in rnn.values()})
    if len(prefixes) > 1:
        raise _bad(path, f"it has several recurrent modules ({', '.join(prefixes)})")
    prefix, L = prefixes[0], 1 + max(int(m.group(3)) for m in rnn.values())
    for k in range(L):
        for name in ("weight_ih", "weight_hh"):
            if f"{prefix}{name}_l{k}" not in tensors:
                raise _bad(path, f"{prefix}{name}_l{k} is missing")
    Whh = tensors[f"{prefix}weight_hh_l0"]
    if Whh.ndim != 2 or Whh.shape[0] % max(Whh.shape[1], 1) \
            or Whh.shape[0] // Whh.shape[1] not in CELL_OF_GATES:
        raise _bad(path, f"{prefix}weight_hh_l0 has shape {list(Whh.shape)}, not (G*H, H) "
                   "with G = 1, 3 or 4 (RNN, GRU, LSTM)")
    H, I0 = Whh.shape[1], tensors[f"{prefix}weight_ih_l0"].shape[-1]
    rest = [k for k in tensors if k not in rnn]
    fits = lambda k, cols: (k.endswith("weight") and tensors[k].ndim == 2
                            and tensors[k].shape[1] == cols)
    dec = [k for k in rest if fits(k, H) and k[:-6] + "bias" in tensors] \
        or [k for k in rest if fits(k, H)]
    if len(dec) > 1 and "decoder.weight" in dec:  # export.py's name settles it
        dec = ["decoder.weight"]
    if len(dec) != 1:
        raise _bad(path, "cannot tell the output nn.Linear (a weight of shape (V, "
                   f"{H})): {'none found' if not dec else 'candidates ' + ', '.join(dec)}; "
                   "name it decoder.weight (and decoder.bias)")
    dec = dec[0]
    rest = [k for k in rest if k not in (dec, dec[:-6] + "bias")]
    emb = [k for k in rest if fits(k, I0)]
    if len(emb) > 1:
        raise _bad(path, f"cannot tell the embedding among {', '.join(emb)}")
    if not emb and I0 != V:
        raise _bad(path, f"no embedding of shape ({V}, {I0}) and the recurrent input size "
                   f"{I0} is not the vocabulary size {V}")
    extra = [k for k in rest if k not in emb]
    if extra:
        raise _bad(path, f"unexpected tensor {extra[0]}; the import reads nn.Embedding -> "
                   "nn.RNN/LSTM/GRU -> nn.Linear models only")
    return prefix, L, H, CELL_OF_GATES[Whh.shape[0] // H], (emb[0] if emb else None), dec


def to_params(tensors: dict, vocab: Vocab, path="the state dict") -> tuple[ModelConfig, dict]:
    """Our ModelConfig and parameters from a PyTorch state dict (module docstring)."""
    for k, v in tensors.items():
        if v.dtype.kind != "f":
            raise _bad(path, f"tensor {k} is {v.dtype}, not floating point")
        if not np.isfinite(v).all():
            raise _bad(path, f"tensor {k} holds NaN or infinity")
    V = len(vocab)
    prefix, L, H, cell, emb, dec = _find(tensors, path, V)
    dtype = "float64" if all(v.dtype == np.float64 for v in tensors.values()) else "float32"
    t = {k: v.astype(np.float64) for k, v in tensors.items()}  # fold exactly, round once
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    if t[dec].shape[0] != V:
        raise _bad(path, f"its output layer {dec} has {t[dec].shape[0]} characters but "
                   f"--vocab gives {V}; pass the model's own vocabulary")
    if emb is not None and t[emb].shape[0] != V:
        raise _bad(path, f"its embedding {emb} has {t[emb].shape[0]} rows but --vocab gives "
                   f"{V}; pass the model's own vocabulary")
    params = {}
    for k in range(L):
        W_ih, W_hh = t[f"{prefix}weight_ih_l{k}"], t[f"{prefix}weight_hh_l{k}"]
        I = V if k == 0 and emb is None else (W_ih.shape[1] if k == 0 else H)
        zeros = np.zeros(G * H)
        b_ih, b_hh = (t.get(f"{prefix}{n}_l{k}", zeros) for n in ("bias_ih", "bias_hh"))
        for name, arr, shape in (("weight_ih", W_ih, (G * H, I)), ("weight_hh", W_hh, (G * H, H)),
                                 ("bias_ih", b_ih, (G * H,)), ("bias_hh", b_hh, (G * H,))):
            if arr.shape != shape:
                raise _bad(path, f"{prefix}{name}_l{k} has shape {list(arr.shape)}, expected "
                           f"{list(shape)}")
        params[f"l{k}.W_x"] = t[emb] @ W_ih.T if k == 0 and emb else W_ih.T  # (I_k, G*H)
        params[f"l{k}.W_h"] = W_hh.T  # (H, G*H)
        params[f"l{k}.b"] = b_ih + b_hh  # (G*H,)
        if cell == "gru":  # the n slice of bias_hh sits inside r * (...), not in the sum
            params[f"l{k}.b"][2 * H:] = b_ih[2 * H:]
            params[f"l{k}.b_hn"] = b_hh[2 * H:].copy()  # (H,)
    bias = dec[:-6] + "bias"
    params["W_y"] = t[dec].T  # (H, V)
    params["b_y"] = t[bias] if bias in t else np.zeros(V)  # (V,)
    if params["b_y"].shape != (V,):
        raise _bad(path, f"{bias} has shape {list(params['b_y'].shape)}, expected [{V}]")
    cfg = ModelConfig(V, H, cell, L, 0.0, dtype)
    return cfg, {k: np.ascontiguousarray(v, dtype) for k, v in params.items()}


NEW_OUT = "pass a new or empty --out (import never mixes two models in one folder)"


def import_model(path, vocab: str | None = None, out=None) -> Path:
    """`scratchrnn import`: the state dict at `path` as a run folder (default runs/<stem>)
    holding checkpoint.npz and config.json, at step 0 with a fresh optimizer (so `train
    --resume` goes on training it on the book). The folder must be new, empty, or a run of
    ours holding no results (owner.check_run_out): nothing of the user's is replaced."""
    path = Path(path)
    out = Path(out) if out else Path("runs") / path.stem
    check_run_out(out, hint=NEW_OUT)  # before reading anything: a refused --out costs nothing
    tensors, meta = read_tensors(path)
    if meta.get("nonlinearity", "tanh") != "tanh":
        raise _bad(path, f"its RNN uses {meta['nonlinearity']}; scratchrnn's RNN is tanh")
    voc = read_vocab(vocab, meta)
    cfg, params = to_params(tensors, voc, path)
    model = CharRNN.from_params(cfg, params)
    config = TrainConfig(out=str(out), vocab="corpus", cell=cfg.cell, hidden=cfg.hidden_size,
                         layers=cfg.num_layers, dropout=0.0, dtype=cfg.dtype, ema=None)
    with RunFolder(out, hint=NEW_OUT):  # marker and lock: the folder is a run of ours from now on
        # a fresh optimizer and zero state make the run a valid start for `train --resume`
        save_checkpoint(out / "checkpoint.npz", model, voc, config.to_dict(),
                        meta={"imported_from": str(path.resolve()), "step": 0},
                        opt_state=optim.init_state(config.optimizer, params),
                        state=model.init_state(config.batch))
        atomic_write_bytes(out / "config.json", json_dumps(config.to_dict(), indent=2).encode(),
                           "run configuration")
    return out
