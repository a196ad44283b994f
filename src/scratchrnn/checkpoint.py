"""Checkpoints: one NumPy `.npz` holding everything a run needs to continue bit for bit.

Members: `p/<key>` parameters, `opt/<key>` optimizer state, `state/<key>` the hidden state carried
into the next window, and `meta`, a JSON string (format version, model and training config,
vocabulary, step, data position, RNG state, metric history). Written atomically; read with
`allow_pickle=False` and validated member by member, so a hostile file can only be refused.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ScratchRNNError
from .fsutil import atomic_write
from .model import CharRNN, ModelConfig, param_shapes
from .optim import averaged
from .text import Vocab

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """`model` is the one to sample and evaluate: the weight average of a run trained with
    --ema, else the trained weights. `trained` holds the trained weights, which a resumed run
    goes on from (the same object as `model` without an average)."""

    model: CharRNN
    vocab: Vocab
    config: dict  # the training configuration (TrainConfig fields)
    meta: dict = field(default_factory=dict)  # step, epoch, window, rng, history, ...
    opt_state: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    path: Path | None = None
    trained: CharRNN | None = None  # None: the same as model

    def __post_init__(self):
        self.trained = self.trained or self.model


def usable_model(model: CharRNN, opt_state: dict) -> CharRNN:
    """The weights to evaluate and sample: their moving average when the run keeps one
    (`optim.average`), else the model itself."""
    avg = averaged(model.params, opt_state)
    return model if avg is None else CharRNN.from_params(model.config, avg)


def save_checkpoint(path, model: CharRNN, vocab: Vocab, config: dict, meta: dict | None = None,
                    opt_state: dict | None = None, state: dict | None = None) -> Path:
    path = Path(path)
    full_meta = dict(meta or {}, format_version=FORMAT_VERSION, model=model.config.to_dict(),
                     config=config, vocab=vocab.chars)
    arrays = {"meta": np.array(json.dumps(full_meta))}
    arrays.update({f"p/{k}": v for k, v in model.params.items()})
    arrays.update({f"opt/{k}": v for k, v in (opt_state or {}).items()})
    arrays.update({f"state/{k}": v for k, v in (state or {}).items()})
    atomic_write(path, lambda f: np.savez(f, **arrays), "checkpoint")
    return path


def resolve(path) -> Path:
    """A run folder means its latest checkpoint."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.exists():
        raise ScratchRNNError(f"no checkpoint at {path}; pass a run folder or a .npz file "
                              "written by 'scratchrnn train'")
    return path


def _bad(path, why: str) -> ScratchRNNError:
    return ScratchRNNError(f"{path} is not a usable scratchrnn checkpoint ({why}); "
                           "pass a checkpoint written by 'scratchrnn train'")


def load_checkpoint(path) -> Checkpoint:
    path = resolve(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            members = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, ValueError, KeyError, OSError, NotImplementedError,
            RuntimeError) as e:
        raise _bad(path, f"cannot read it: {type(e).__name__}") from None
    if not isinstance(members, dict) or "meta" not in members:
        raise _bad(path, "no metadata")
    try:
        meta = json.loads(str(members["meta"][()]))
    except (ValueError, TypeError, IndexError):
        raise _bad(path, "unreadable metadata") from None
    if not isinstance(meta, dict):
        raise _bad(path, "unreadable metadata")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ScratchRNNError(f"{path} has checkpoint format {version!r}, this scratchrnn reads "
                              f"format {FORMAT_VERSION}; use the scratchrnn version that wrote it")
    try:
        cfg = ModelConfig(**meta["model"])
        vocab = Vocab(meta["vocab"])
        config = dict(meta["config"])
    except (KeyError, TypeError, ScratchRNNError) as e:
        raise _bad(path, f"bad model config or vocabulary: {e}") from None
    if len(vocab) != cfg.vocab_size:
        raise _bad(path, f"vocabulary has {len(vocab)} characters, model expects "
                         f"{cfg.vocab_size}")
    params = {}
    for key, shape in param_shapes(cfg).items():
        arr = members.get(f"p/{key}")
        if arr is None:
            raise _bad(path, f"parameter {key} is missing")
        if arr.shape != shape or arr.dtype != np.dtype(cfg.dtype):
            raise _bad(path, f"parameter {key} is {arr.dtype}{list(arr.shape)}, expected "
                             f"{cfg.dtype}{list(shape)}")
        params[key] = np.ascontiguousarray(arr)
    extra = [k for k in members if k.startswith("p/") and k[2:] not in params]
    if extra:
        raise _bad(path, f"unexpected parameter {extra[0][2:]}")
    sections = {}
    for prefix in ("opt/", "state/"):
        sections[prefix] = {k[len(prefix):]: v for k, v in members.items()
                            if k.startswith(prefix)}
        for k, v in sections[prefix].items():
            if v.dtype.kind not in "fiu":
                raise _bad(path, f"member {prefix}{k} has dtype {v.dtype}")
    for key, v in sections["state/"].items():
        if v.ndim != 2 or v.shape[1] != cfg.hidden_size or v.dtype != np.dtype(cfg.dtype):
            raise _bad(path, f"hidden state {key} has the wrong shape or dtype")
    for key, v in sections["opt/"].items():
        base = key.split(".", 1)[-1]
        if key != "t" and (base not in params or v.shape != params[base].shape
                           or v.dtype != params[base].dtype):
            raise _bad(path, f"optimizer state {key} does not match the parameters")
    trained = CharRNN.from_params(cfg, params)
    return Checkpoint(usable_model(trained, sections["opt/"]), vocab, config, meta,
                      sections["opt/"], sections["state/"], path, trained)
