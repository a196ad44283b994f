"""Importing a PyTorch character model, the state dict of

    nn.Embedding(V, E) -> nn.RNN | nn.LSTM | nn.GRU(E, H, num_layers=L) -> nn.Linear(H, V)

(or of the embedding-free, one-hot layout that export.py writes), as a scratchrnn run that
`sample` and `eval` read. The import is exact: PyTorch computes E[id] @ W_ih^T, which is row id of
E @ W_ih^T, so our first layer's row-gathered input matrix is W_x = E @ W_ih_l0^T; the other
weights are transposes, and the biases fold as in model.py (b = bias_ih + bias_hh, except the
GRU's n slice of bias_hh, kept apart as b_hn because r multiplies it).

Only weights are read, so what the weights cannot say is not checked: `batch_first` (it moves no
weight) and an nn.RNN's `nonlinearity` (ours is tanh, PyTorch's default). A `.safetensors` file
is read here (no package needed); a `.pt` file with torch.load(weights_only=True), only when
PyTorch is installed (an optional extra): nothing here unpickles otherwise.

The file is untrusted, and read in an order that never allocates more than it declares: the
safetensors header (dtypes, shapes, offsets within the file) or the .pt zip's central directory
(no bomb, a bounded pickle) checked against the memory available, then the tensors (only real
floats, no view larger than its storage), then the model their names declare, built into
checkpoint metadata and checked by the checkpoint schema and training's memory check; every
tensor's shape comes from the parameter shapes that schema derives, and only then is anything
folded or written.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import numpy as np

from .. import limits
from ..data.text import printable
from ..data.vocab import Vocab
from ..errors import ScratchRNNError
from ..fsutil import atomic_write_bytes, open_regular
from ..nn import optim
from ..nn.cells import GATES
from ..nn.model import CharRNN, ModelConfig, check_model_memory
from ..safejson import dumps as json_dumps
from ..store import schema
from ..store.checkpoint import FORMAT_VERSION, check_values, save_checkpoint
from ..store.config import MODEL_OPTIONS, TrainConfig
from ..store.owner import RunFolder, check_run_out
from .torch_files import bad, keystr, not_float, read_tensors

RNN_KEY = re.compile(r"^(.*?)(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
CELL_OF_GATES = {g: cell for cell, g in GATES.items()}
# A vocabulary file of the most symbols a vocabulary holds, however spelled: the longest is a
# JSON index of characters beyond the BMP, each a surrogate pair ({"\ud800\udc00": 65535, ...})
MAX_VOCAB_FILE = 32 * limits.MAX_SYMBOLS


def _vocab_file(spec: str) -> bool:
    """Whether `vocab` names a file (which open_regular then holds to a regular one). A string
    of characters may name no possible path at all (longer than a file name may be), or a
    folder ("." or "/"): characters, not a file."""
    try:
        return not stat.S_ISDIR(os.stat(spec).st_mode)
    except (OSError, ValueError):
        return False


def _json(text, where: str):
    try:
        return json.loads(text)
    except RecursionError:
        raise ScratchRNNError(f"{where} is JSON nested too deeply to be a vocabulary") from None
    except ValueError as e:  # also UnicodeDecodeError, and numbers of 4300 digits
        raise ScratchRNNError(f"{where} is not UTF-8 JSON ({str(e)[:60]})") from None


def read_vocab(spec: str | None, meta: dict[str, str]) -> Vocab:
    """--vocab: a file holding exactly the characters (a .json file: a JSON string), else the
    characters themselves with \\n, \\t and \\\\ escapes; None: the file's own metadata."""
    if spec is None:
        if "vocab" not in meta:
            raise ScratchRNNError("pass the model's characters in index order with `vocab` "
                                  "(directly, or a file holding them)")
        where = "the file's vocabulary metadata"
        chars = _json(meta["vocab"], where)
    elif _vocab_file(spec):
        where = f"the `vocab` file {spec}"
        with open_regular(spec, "`vocab` file", "pass a file holding the model's characters, "
                          "or the characters themselves", MAX_VOCAB_FILE) as f:
            raw = f.read()
        if spec.endswith(".json"):
            chars = _json(raw, where)
        else:
            try:
                chars = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ScratchRNNError(f"{where} is not UTF-8 text") from None
    else:
        where = "`vocab`"
        escapes = {"n": "\n", "t": "\t", "\\": "\\"}
        chars = re.sub(r"\\([nt\\])", lambda m: escapes[m.group(1)], spec)
    chars = _chars_of(chars, where)
    if any("\ud800" <= c <= "\udfff" for c in chars):  # undecodable bytes, or JSON's "\ud800"
        raise ScratchRNNError(f"{where} is not valid UTF-8 text (it holds a lone surrogate); "
                              "pass the model's characters as UTF-8")
    try:
        return Vocab(chars, meta.get("vocab_kind", "chars") if spec is None else "chars")
    except ScratchRNNError as e:
        raise ScratchRNNError(f"{where}: {e}; pass each of the model's characters once, in "
                              "index order") from None


def _chars_of(value, where: str = "`vocab`") -> str:
    """A JSON vocabulary as char-rnn code keeps it: a string, a list of characters (itos), or
    a {character: index} dict (stoi) with the indices 0 .. n-1 (whole numbers, not true)."""
    one = lambda c: isinstance(c, str) and len(c) == 1  # noqa: E731
    if isinstance(value, list) and all(map(one, value)):
        return "".join(value)
    if isinstance(value, dict) and all(map(one, value)) \
            and all(type(i) is int for i in value.values()) \
            and sorted(value.values()) == list(range(len(value))):
        return "".join(sorted(value, key=value.get))
    if not isinstance(value, str):
        raise ScratchRNNError(f"{where} must be a JSON string, a list of characters or a "
                              "{character: index} dict with indices 0 .. n-1")
    return value


def _structure(tensors: dict, path):
    """From the names (and the shape of weight_hh_l0 alone): the recurrent module's prefix,
    its layers, cell and width, and which tensors are the embedding and the output layer."""
    rnn = {k: RNN_KEY.match(k) for k in tensors}
    rnn = {k: m for k, m in rnn.items() if m}
    if not rnn:
        raise bad(path, "no recurrent weights (keys like rnn.weight_ih_l0)")
    if any(m.group(4) for m in rnn.values()):
        raise bad(path, "it is bidirectional (_reverse weights); scratchrnn models read "
                   "left to right only")
    if any(m.group(2) == "weight_hr" for m in rnn.values()):
        raise bad(path, "the LSTM uses proj_size (weight_hr weights), which scratchrnn "
                   "does not have")
    prefixes = sorted({m.group(1) for m in rnn.values()})
    if len(prefixes) > 1:
        raise bad(path, f"it has several recurrent modules ({', '.join(map(keystr, prefixes))})")
    prefix = prefixes[0]
    top = max(rnn.values(), key=lambda m: (len(m.group(3)), m.group(3)))
    if len(top.group(3)) > 6:  # int() of 5000 digits fails, and no model has a million layers
        raise bad(path, f"{keystr(top.group(0))} names layer {top.group(3)[:12]}..., beyond "
                   f"the {limits.MAX_LAYERS} layers a scratchrnn model may have")
    L = 1 + int(top.group(3))
    Whh = tensors.get(f"{prefix}weight_hh_l0")
    if Whh is None:
        raise bad(path, f"{keystr(prefix + 'weight_hh_l0')} is missing")
    rows, H = Whh.shape if Whh.ndim == 2 else (0, 0)
    if H == 0 or rows % H or rows // H not in CELL_OF_GATES:
        raise bad(path, f"{keystr(prefix + 'weight_hh_l0')} has shape {list(Whh.shape)}, not "
                   "(G*H, H) with H > 0 and G = 1, 3 or 4 (RNN, GRU, LSTM)")
    I0 = tensors.get(f"{prefix}weight_ih_l0")
    I0 = I0.shape[1] if I0 is not None and I0.ndim == 2 else None
    rest = [k for k in tensors if k not in rnn]
    fits = lambda k, cols: (k.endswith("weight") and tensors[k].ndim == 2  # noqa: E731
                            and tensors[k].shape[1] == cols)
    dec = [k for k in rest if fits(k, H) and k[:-6] + "bias" in tensors] \
        or [k for k in rest if fits(k, H)]
    if len(dec) > 1 and "decoder.weight" in dec:  # export.py's name settles it
        dec = ["decoder.weight"]
    if len(dec) != 1:
        found = "candidates " + ", ".join(map(keystr, dec)) if dec else "none found"
        raise bad(path, f"cannot tell the output nn.Linear (a weight of shape (V, {H})): "
                   f"{found}; name it decoder.weight (and decoder.bias)")
    dec = dec[0]
    rest = [k for k in rest if k not in (dec, dec[:-6] + "bias")]
    emb = [k for k in rest if I0 and fits(k, I0)]
    if len(emb) > 1:
        raise bad(path, f"cannot tell the embedding among {', '.join(map(keystr, emb))}")
    extra = [k for k in rest if k not in emb]
    if extra:
        raise bad(path, f"unexpected tensor {keystr(extra[0])}; the import reads nn.Embedding "
                   "-> nn.RNN/LSTM/GRU -> nn.Linear models only")
    return prefix, L, H, CELL_OF_GATES[rows // H], (emb[0] if emb else None), dec, I0


def _torch_shapes(m: schema.Meta, prefix: str, emb, dec: str, I0) -> dict:
    """name -> (shape, required) of every PyTorch tensor, from the parameter shapes the
    checkpoint schema derives from the model (schema.member_specs): PyTorch keeps every weight
    transposed, and an embedding (V, E) in front of weight_ih_l0 (G*H, E)."""
    specs = schema.member_specs(m)
    shape = lambda key: specs[f"p/{key}"][0][::-1]  # noqa: E731
    want = {dec: (shape("W_y"), True), dec[:-6] + "bias": (shape("b_y"), False)}
    for k in range(m.model.num_layers):
        w_x, n = shape(f"l{k}.W_x"), f"{prefix}%s_l{k}"
        if k == 0 and emb is not None:
            want[emb], w_x = ((w_x[1], I0), True), (w_x[0], I0)
        want |= {n % "weight_ih": (w_x, True), n % "weight_hh": (shape(f"l{k}.W_h"), True),
                 n % "bias_ih": (shape(f"l{k}.b"), False), n % "bias_hh": (shape(f"l{k}.b"), False)}
    return want


def vocab_name(vocab: Vocab) -> str:
    """The `vocab` an imported model's characters would come from."""
    return "bytes" if vocab.kind == "bytes" else "corpus" if vocab.is_ascii else "unicode"


def _meta(cfg: ModelConfig, vocab: Vocab, config: TrainConfig, source: str) -> dict:
    return {"format_version": FORMAT_VERSION, "model": cfg.to_dict(), "vocab": vocab.chars,
            **({"vocab_kind": vocab.kind} if vocab.kind != "chars" else {}),
            "config": config.to_dict(), "step": 0, "imported_from": source}


def to_params(tensors: dict, vocab: Vocab, path="the state dict", out="runs/imported",
              source: str | None = None) -> tuple[schema.Meta, dict, dict]:
    """The checkpoint metadata (validated, and as written) and our parameters from a PyTorch
    state dict (module docstring). The model the names declare is checked by the checkpoint
    schema, and in memory, before any tensor is folded; every tensor's shape comes from it."""
    for k, v in tensors.items():
        if v.dtype.kind != "f":
            raise not_float(path, k, v.dtype)
        if not np.isfinite(v).all():
            raise bad(path, f"tensor {keystr(k)} holds NaN or infinity")
    V = len(vocab)
    prefix, L, H, cell, emb, dec, I0 = _structure(tensors, path)
    if tensors[dec].shape[0] != V:
        raise bad(path, f"its output layer {keystr(dec)} has {tensors[dec].shape[0]} "
                   f"characters but the vocabulary gives {V}; pass the model's own vocabulary")
    if emb is None and I0 is not None and I0 != V:
        raise bad(path, f"no embedding of shape ({V}, {I0}) and the recurrent input size "
                   f"{I0} is not the vocabulary size {V}")
    dtype = "float64" if all(v.dtype == np.float64 for v in tensors.values()) else "float32"
    try:  # the same checks, and the same memory check, as a checkpoint's and a training's
        # what the weights say, and no dropout; every other option as ModelConfig declares it
        cfg = ModelConfig(V, hidden_size=H, cell=cell, num_layers=L, dropout=0.0, dtype=dtype)
        check_model_memory(cfg, copies=4, hints={"parameters": "import it on a machine with "
                                                 "more memory"})  # weights, f64 copy, adam's 2
        # the run trains on that very model: each option its TrainConfig field (MODEL_OPTIONS)
        config = TrainConfig(out=str(out), vocab=vocab_name(vocab), ema=None,
                             **{c: getattr(cfg, m) for m, c in MODEL_OPTIONS.items()})
        meta = _meta(cfg, vocab, config, source or str(path))
        m = schema.validate_meta(meta)
    except schema.Invalid as e:
        raise bad(path, f"the model it holds is no scratchrnn model: {e}") from None
    except ScratchRNNError as e:
        raise bad(path, str(e)) from None
    want = _torch_shapes(m, prefix, emb, dec, I0)
    for name, (shape, required) in want.items():
        if name not in tensors and required:
            raise bad(path, f"{keystr(name)} is missing")
        if name in tensors and tensors[name].shape != shape:
            raise bad(path, f"{keystr(name)} has shape {list(tensors[name].shape)}, expected "
                       f"{list(shape)}")
    extra = sorted(set(tensors) - set(want))
    if extra:
        raise bad(path, f"unexpected tensor {keystr(extra[0])} for a {L}-layer model")
    G = GATES[cell]
    t = {k: v.astype(np.float64) for k, v in tensors.items()}  # fold exactly, round once
    params = {}
    for k in range(L):
        W_ih, W_hh = t[f"{prefix}weight_ih_l{k}"], t[f"{prefix}weight_hh_l{k}"]
        zeros = np.zeros(G * H)
        b_ih, b_hh = (t.get(f"{prefix}{n}_l{k}", zeros) for n in ("bias_ih", "bias_hh"))
        params[f"l{k}.W_x"] = t[emb] @ W_ih.T if k == 0 and emb else W_ih.T  # (I_k, G*H)
        params[f"l{k}.W_h"] = W_hh.T  # (H, G*H)
        params[f"l{k}.b"] = b_ih + b_hh  # (G*H,)
        if cell == "gru":  # the n slice of bias_hh sits inside r * (...), not in the sum
            params[f"l{k}.b"][2 * H:] = b_ih[2 * H:]
            params[f"l{k}.b_hn"] = b_hh[2 * H:].copy()  # (H,)
    bias = dec[:-6] + "bias"
    params["W_y"] = t[dec].T  # (H, V)
    params["b_y"] = t[bias] if bias in t else np.zeros(V)  # (V,)
    with np.errstate(over="ignore"):  # a weight folded beyond float32 is refused by name later
        return m, {k: np.ascontiguousarray(v, dtype) for k, v in params.items()}, meta


def _check_members(path, m: schema.Meta, meta: dict, groups: dict[str, dict]) -> None:
    """What load_checkpoint(resume=True) will check, checked before anything is written:
    each member the shape and dtype the schema derives from the metadata, no group partial."""
    members = {f"{g}/{k}": v for g, arrays in groups.items() for k, v in arrays.items()}
    try:
        specs = schema.member_specs(m)
        for name, arr in members.items():
            if specs.get(name) != (arr.shape, arr.dtype):
                raise schema.Invalid(f"member {name} is {arr.dtype}{list(arr.shape)}, not "
                                     f"as the schema says {schema.show(specs.get(name))}")
        schema.groups_complete(members, specs, resume=True)
        check_values(members, meta)  # huge finite weights may fold to infinity in float32
    except schema.Invalid as e:
        raise bad(path, f"the checkpoint it would make is not valid ({e})") from None


def run_name(path: Path) -> str:
    """The default run folder's name: the file's stem, printable (a name of undecodable bytes
    becomes '_'s: plots and pages title runs by it) and no '.' or '..'."""
    name = printable(path.stem).lstrip(".")
    return name or "imported"


NEW_OUT = "pass a new or empty `out` (import never mixes two models in one folder)"


def import_model(path, vocab: str | None = None, out=None) -> Path:
    """`scratchrnn import`: the state dict at `path` as a run folder (default runs/<stem>)
    holding checkpoint.npz and config.json, at step 0 with a fresh optimizer (so `train
    --resume` goes on training it on the book). The folder must be new, empty, or a run of
    ours holding no results (owner.check_run_out): nothing of the user's is replaced."""
    path = Path(path)
    out = Path(out) if out else Path("runs") / run_name(path)
    check_run_out(out, hint=NEW_OUT)  # before reading anything: a refused --out costs nothing
    tensors, meta = read_tensors(path)
    if meta.get("nonlinearity", "tanh") != "tanh":
        raise bad(path, f"its RNN uses {schema.show(meta['nonlinearity'])}; scratchrnn's RNN "
                   "is tanh")
    voc = read_vocab(vocab, meta)
    m, params, meta = to_params(tensors, voc, path, out, str(path.resolve()))
    del tensors
    model, config = CharRNN.from_params(m.model, params), m.config
    # a fresh optimizer and zero state make the run a valid start for `train --resume`
    opt_state, state = optim.init_state(config.optimizer, params), model.init_state(config.batch)
    _check_members(path, m, meta, {"p": params, "opt": opt_state, "state": state})
    with RunFolder(out, hint=NEW_OUT):  # marker and lock: the folder is a run of ours from now on
        save_checkpoint(out / "checkpoint.npz", model, voc, config.to_dict(),
                        meta={"imported_from": meta["imported_from"], "step": 0},
                        opt_state=opt_state, state=state)
        atomic_write_bytes(out / "config.json", json_dumps(config.to_dict(), indent=2).encode(),
                           "run configuration")
    return out
