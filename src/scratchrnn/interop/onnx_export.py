"""Exporting a trained model as an ONNX graph of the standard recurrent operators, one per layer:

    ids (T, B) int64 --OneHot--> (T, B, V) --RNN|LSTM|GRU--> ... --MatMul W_y + b_y--> logits
    h0 (L, B, H) [c0 (L, B, H) for the LSTM] in;   logits (T, B, V), hT [cT] (L, B, H) out

The one-hot product is what our first layer's row gather stands for, so the graph computes our
model's function exactly (up to float32 rounding). ONNX orders the gates differently from
PyTorch and us: the LSTM's [i f g o] blocks become ONNX's [i o f c] and the GRU's [r z n] become
[z r h]; our GRU is ONNX's linear_before_reset=1 form, with b_hn as the h slice of Rb (ONNX
operator docs, "LSTM" and "GRU"). Weights are stored as float32 (what onnxruntime's recurrent
kernels run). onnx is an optional extra, imported only when this module is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.vocab import Vocab
from ..errors import ScratchRNNError
from ..fsutil import atomic_write_bytes
from ..nn.model import CharRNN
from .checks import check_exportable, check_out, need

OPSET = 17
IR_VERSION = 8  # the IR of opset 17: onnxruntimes from 1.11 on read it
MAX_BYTES = (1 << 31) - (1 << 26)  # protobuf's 2 GB, less room for the graph itself
OP = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
# Our (PyTorch's) gate blocks in the order ONNX wants them.
ONNX_ORDER = {"rnn": [0], "lstm": [0, 3, 1, 2], "gru": [1, 0, 2]}


def _reorder(w: np.ndarray, cell: str, H: int) -> np.ndarray:
    """Gate blocks of the first axis (G*H, ...) from PyTorch's order into ONNX's."""
    return np.concatenate([w[g * H:(g + 1) * H] for g in ONNX_ORDER[cell]])


def onnx_weights(model: CharRNN, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W (1, G*H, I), R (1, G*H, H), B (1, 2*G*H) of layer k, float32, in ONNX's gate order."""
    cfg, p = model.config, model.params
    H, cell = cfg.hidden_size, cfg.cell
    W = _reorder(p[f"l{k}.W_x"].T, cell, H)  # (G*H, I)
    R = _reorder(p[f"l{k}.W_h"].T, cell, H)  # (G*H, H)
    rb = np.zeros_like(p[f"l{k}.b"])  # (G*H,): all of our bias is Wb, but for the GRU's b_hn
    if cell == "gru":
        rb[2 * H:] = p[f"l{k}.b_hn"]
    B = np.concatenate([_reorder(p[f"l{k}.b"], cell, H), _reorder(rb, cell, H)])  # (2*G*H,)
    f32 = lambda a: np.ascontiguousarray(a[None], np.float32)
    return f32(W), f32(R), f32(B)


def build(model: CharRNN, vocab: Vocab):
    """The onnx.ModelProto of `model` (checked with onnx.checker)."""
    onnx = need("onnx")
    check_exportable(model)
    helper, TP = onnx.helper, onnx.TensorProto
    cfg = model.config
    if 4 * model.num_params() > MAX_BYTES:
        raise ScratchRNNError(f"{model} is too big for one ONNX file (protobuf's 2 GB limit); "
                              "export it as torch (safetensors) instead")
    V, H, L, cell = cfg.vocab_size, cfg.hidden_size, cfg.num_layers, cfg.cell
    lstm = cell == "lstm"
    inits = [onnx.numpy_helper.from_array(np.array([V], np.int64), "depth"),
             onnx.numpy_helper.from_array(np.array([0, 1], np.float32), "onehot_values"),
             onnx.numpy_helper.from_array(np.array([1], np.int64), "axis1"),
             onnx.numpy_helper.from_array(model.params["W_y"].astype(np.float32), "W_y"),
             onnx.numpy_helper.from_array(model.params["b_y"].astype(np.float32), "b_y")]
    nodes = [helper.make_node("OneHot", ["ids", "depth", "onehot_values"], ["x0"], axis=-1)]
    x, finals = "x0", {"h": [], "c": []}
    for k in range(L):
        for name, arr in zip(("W", "R", "B"), onnx_weights(model, k), strict=True):
            inits.append(onnx.numpy_helper.from_array(arr, f"{name}{k}"))
        inits.append(onnx.numpy_helper.from_array(np.array([k], np.int64), f"layer{k}"))
        states = ["h", "c"] if lstm else ["h"]
        for s in states:  # this layer's slice (1, B, H) of the stacked initial state
            nodes.append(helper.make_node("Gather", [f"{s}0", f"layer{k}"], [f"{s}0_{k}"],
                                          axis=0))
        attrs = {"linear_before_reset": 1} if cell == "gru" else {}
        nodes.append(helper.make_node(
            OP[cell], [x, f"W{k}", f"R{k}", f"B{k}", "", *(f"{s}0_{k}" for s in states)],
            [f"y{k}", *(f"{s}T_{k}" for s in states)], hidden_size=H, **attrs))
        for s in states:
            finals[s].append(f"{s}T_{k}")
        x = f"x{k + 1}"  # (T, B, H): the op's (T, 1, B, H) output without its direction axis
        nodes.append(helper.make_node("Squeeze", [f"y{k}", "axis1"], [x]))
    nodes.append(helper.make_node("MatMul", [x, "W_y"], ["scores"]))
    nodes.append(helper.make_node("Add", ["scores", "b_y"], ["logits"]))
    state_names = ["h", "c"] if lstm else ["h"]
    for s in state_names:
        nodes.append(helper.make_node("Concat", finals[s], [f"{s}T"], axis=0))
    seq = lambda name, *dims: helper.make_tensor_value_info(name, TP.FLOAT, list(dims))
    graph = helper.make_graph(
        nodes, f"scratchrnn_{cell}",
        [helper.make_tensor_value_info("ids", TP.INT64, ["T", "B"]),
         *(seq(f"{s}0", L, "B", H) for s in state_names)],
        [seq("logits", "T", "B", V), *(seq(f"{s}T", L, "B", H) for s in state_names)],
        inits)
    proto = helper.make_model(graph, producer_name="scratchrnn",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    helper.set_model_props(proto, {"cell": cell, "vocab": vocab.chars, "vocab_size": str(V),
                                   "hidden_size": str(H), "num_layers": str(L),
                                   **({"vocab_kind": vocab.kind} if vocab.kind != "chars"
                                      else {})})
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model: CharRNN, vocab: Vocab, out) -> Path:
    """Write `model` as an ONNX file (module docstring); returns the path."""
    out = check_out(Path(out), "onnx")
    atomic_write_bytes(out, build(model, vocab).SerializeToString(), "exported model")
    return out
