"""Exporting a trained model to PyTorch: a safetensors file holding the state dict of

    torch.nn.ModuleDict({"rnn": nn.RNN|LSTM|GRU(input_size=V, hidden_size=H, num_layers=L),
                         "decoder": nn.Linear(H, V)})

fed one-hot characters (time-major, (T, B, V)). The mapping is exact: our first layer's row gather
W_x[id] is one_hot(id) @ W_x, so weight_ih_l0 = W_x^T; every other weight is a transpose, and our
fused bias goes to bias_ih with bias_hh = 0, except the GRU's n slice of bias_hh, which r
multiplies and which we keep apart as b_hn (Cho et al. 2014 in PyTorch's form).

The safetensors file is written here (the format is a JSON header and raw arrays); reading one
back (torch_import.py) and ONNX use the optional extra `pip install 'scratchrnn[export]'`,
imported inside the functions that need it; training never imports this module. The ONNX graph is
onnx_export.py; the way back (a PyTorch state dict into a checkpoint) is torch_import.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.vocab import Vocab
from ..errors import ScratchRNNError
from ..fsutil import atomic_write
from ..nn.model import CharRNN
from ..store.checkpoint import load_checkpoint, resolve
from ..store.owner import default_output
from .checks import FORMAT, check_exportable, check_out, need
from .html_export import export_html, model_card
from .onnx_export import export_onnx

FORMATS = ("torch", "onnx", "html")
SUFFIX = {"torch": ".safetensors", "onnx": ".onnx", "html": ".html"}
RNN_PREFIX, DECODER_PREFIX = "rnn.", "decoder."


def to_torch_state(model: CharRNN) -> dict[str, np.ndarray]:
    """Our parameters under PyTorch's names (see the module docstring), same dtype."""
    check_exportable(model)
    cfg, p = model.config, model.params
    H = cfg.hidden_size
    state = {}
    pre = RNN_PREFIX
    for k in range(cfg.num_layers):
        state[f"{pre}weight_ih_l{k}"] = np.ascontiguousarray(p[f"l{k}.W_x"].T)  # (G*H, I)
        state[f"{pre}weight_hh_l{k}"] = np.ascontiguousarray(p[f"l{k}.W_h"].T)  # (G*H, H)
        state[f"{pre}bias_ih_l{k}"] = p[f"l{k}.b"].copy()  # (G*H,)
        bias_hh = np.zeros_like(p[f"l{k}.b"])  # (G*H,)
        if cfg.cell == "gru":
            bias_hh[2 * H:] = p[f"l{k}.b_hn"]
        state[f"{pre}bias_hh_l{k}"] = bias_hh
    state[f"{DECODER_PREFIX}weight"] = np.ascontiguousarray(p["W_y"].T)  # (V, H)
    state[f"{DECODER_PREFIX}bias"] = p["b_y"].copy()  # (V,)
    return state


def metadata(model: CharRNN, vocab: Vocab) -> dict[str, str]:
    """Safetensors metadata (strings only): enough to rebuild the modules and read text."""
    cfg = model.config
    return {"format": FORMAT, "cell": cfg.cell, "vocab_size": str(cfg.vocab_size),
            "hidden_size": str(cfg.hidden_size), "num_layers": str(cfg.num_layers),
            "nonlinearity": "tanh", "input": "one-hot", "layout": "time-major",
            "vocab": json.dumps(vocab.chars, ensure_ascii=False),
            **({"vocab_kind": vocab.kind} if vocab.kind != "chars" else {})}


def default_out(run, fmt: str) -> Path:
    """RUN/model.safetensors or RUN/model.onnx, beside the checkpoint of a run folder."""
    return default_output(resolve(run).parent, f"model{SUFFIX[fmt]}", f"{fmt} export")


ST_DTYPES = {"float32": "F32", "float64": "F64", "float16": "F16", "int64": "I64"}


def write_safetensors(f, tensors: dict[str, np.ndarray], meta: dict[str, str]) -> None:
    """The safetensors format (a little-endian u64 header length, a JSON header, the raw
    little-endian data), written here with sorted keys so that the same model always gives
    the same bytes (the safetensors package orders its metadata by hash)."""
    header, offset = {"__metadata__": meta}, 0
    for name in sorted(tensors):
        arr = tensors[name]
        header[name] = {"dtype": ST_DTYPES[arr.dtype.name], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    for name in sorted(tensors):
        f.write(np.ascontiguousarray(tensors[name], tensors[name].dtype.newbyteorder("<"))
                .tobytes())


def export_torch(model: CharRNN, vocab: Vocab, out) -> Path:
    """Write `model` as a PyTorch safetensors file (module docstring); returns the path.
    Needs no optional package: the format is simple enough to write here."""
    out = check_out(Path(out), "torch")
    state, meta = to_torch_state(model), metadata(model, vocab)
    atomic_write(out, lambda f: write_safetensors(f, state, meta), "exported model")
    return out


def export(run, fmt: str = "torch", out=None) -> Path:
    """`scratchrnn export`: the model a run samples with (its weight average, when it keeps
    one) as `fmt` ('torch', 'onnx' or 'html') at `out` (default: beside the checkpoint)."""
    if fmt not in FORMATS:
        raise ScratchRNNError(f"unknown export format {fmt!r}; choose torch, onnx or html")
    if fmt == "onnx":
        need("onnx")  # before reading the run
    ckpt = load_checkpoint(run)
    if fmt != "html":  # the page runs every cell, the layer-normalised GRU too
        check_exportable(ckpt.model)  # before anything is written
    out = Path(out) if out else default_out(run, fmt)
    if fmt == "html":
        title = f"{resolve(run).parent.name}: a scratchrnn character model"
        return export_html(ckpt.model, ckpt.vocab, out, model_card(ckpt), title)
    if fmt == "torch":
        return export_torch(ckpt.model, ckpt.vocab, out)

    return export_onnx(ckpt.model, ckpt.vocab, out)
