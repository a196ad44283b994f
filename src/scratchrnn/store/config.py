"""The one training configuration, its presets, and the checks that turn impossible values into
one clear error before any work starts."""

from __future__ import annotations

import dataclasses
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .. import limits
from ..data.corpus import corpus_name
from ..data.text import text_encoding
from ..errors import ScratchRNNError
from ..nn.model import ModelConfig, check_model_memory, window_memory

# Fields added after runs were first saved, with the behaviour of a run saved without them:
# a saved configuration that lacks one reads as that value, not as today's default.
ADDED_LATER = {"ema": None}

# A model option is declared once, as a ModelConfig field (nn/model.py), and has a TrainConfig
# field of the same name (two are shorter there): the run passes them on by this table.
MODEL_OPTIONS = {f.name: {"hidden_size": "hidden", "num_layers": "layers"}.get(f.name, f.name)
                 for f in dataclasses.fields(ModelConfig) if f.name != "vocab_size"}
# What changes the model or its data: a resumed run must keep them as they were.
MODEL_KEYS = ("text", "vocab", "encoding", *MODEL_OPTIONS.values(), "batch", "seq_len",
              "val_frac", "test_frac", "optimizer", "seed", "val_chars")


@dataclass
class TrainConfig:
    text: str | list[str] | None = None  # None: the book; a file, folder, glob, or several
    out: str | None = None  # None: default_out(text)
    vocab: str = "ascii"
    encoding: str | None = None
    # The default model won benchmarks/compare_cells.py on the book at a 5-minute budget.
    cell: str = "gru"
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.1
    init_std: float | None = None
    weight_drop: float = 0.0  # DropConnect on the recurrent weights (AWD-LSTM), in training
    recurrent_init: str = "uniform"  # or "orthogonal" recurrent weights
    layer_norm: bool = False  # layer-normalised gates (GRU only; cells_ln.py)
    locked_dropout: bool = False  # one dropout mask per stream and unit for a whole window
    batch: int = 32
    seq_len: int = 50  # the state is carried across windows: shorter ones mean more updates
    optimizer: str = "adam"
    lr: float = 3e-3
    beta1: float = 0.9  # Adam's moment decay rates, as PyTorch's betas
    beta2: float = 0.999
    ema: float | None = 0.998  # decay of the weight average used to evaluate and sample
    clip_value: float | None = 5.0
    clip_norm: float | None = None
    warmup: int = 50
    schedule: str = "cosine"  # or "constant"
    min_lr: float = 3e-4
    epochs: int | None = 10
    max_steps: int | None = None
    time_budget: float | None = None  # seconds of this invocation
    eval_every: int = 500
    log_every: int = 10
    sample_length: int = 200
    seed: int = 0
    dtype: str = "float32"
    val_frac: float = 0.05
    test_frac: float = 0.05
    val_chars: int | None = None  # cap on validation characters (None: the whole split)
    on_nan: str = "stop"  # or "skip"

    def __post_init__(self):
        # What a Python caller may reasonably pass, in the form the run folder's JSON can hold:
        # paths as strings, NumPy scalars as Python numbers, a time budget as "10m".
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, os.PathLike):
                setattr(self, f.name, os.fspath(v))
            elif isinstance(v, numbers.Integral) and not isinstance(v, bool | int):
                setattr(self, f.name, int(v))
            elif isinstance(v, numbers.Real) and not isinstance(v, bool | int | float):
                setattr(self, f.name, float(v))
        if isinstance(self.time_budget, str):
            self.time_budget = parse_duration(self.time_budget)
        validate(self)  # an impossible configuration fails where it is made, naming the field

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A saved configuration (to_dict): unknown keys are ignored, missing ones take their
        ADDED_LATER value, else the default."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**ADDED_LATER, **{k: v for k, v in d.items() if k in names}})

    def replace(self, **changes) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ScratchRNNError(f"unknown training option {unknown[0]!r}; the options are "
                                  "TrainConfig's fields")
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, dict] = {
    # The notebook: 95 printable characters, 128 tanh units, 25-character chunks, one stream,
    # plain SGD with +-5 clipping and N(0, 0.01) weights -- with a learning rate that learns:
    # 0.1 gave the best validation loss after one epoch of the book among 0.03 to 3 (0.3 and
    # above diverge; the notebook's 1e-5 barely moves).
    "seed": dict(vocab="seed", cell="rnn", hidden=128, layers=1, dropout=0.0, batch=1,
                 seq_len=25, optimizer="sgd", lr=0.1, clip_value=5.0, clip_norm=None,
                 init_std=0.01, schedule="constant", warmup=0, epochs=5, eval_every=5000,
                 ema=None),
    # A quick look that finishes in about a minute on two cores.
    "tiny": dict(cell="gru", hidden=128, layers=1, dropout=0.0, batch=32, seq_len=64,
                 epochs=1, eval_every=100),
    # The best of BENCHMARKS.md's tinyshakespeare runs (issue 11): a wider layer-normalised
    # GRU with orthogonal W_h, DropConnect on it and locked dropout for 8.4 minutes, the
    # learning rate following the clock, validated on the last 10% (nanoGPT's split) once at
    # the end. Give --time-budget what your machine has.
    "shakespeare": dict(cell="gru", hidden=384, layers=2, dropout=0.2, layer_norm=True,
                        weight_drop=0.1, locked_dropout=True, recurrent_init="orthogonal",
                        batch=32, seq_len=50, lr=7e-3, warmup=100, min_lr=3e-4, ema=0.998,
                        time_budget=504.0, epochs=1000, eval_every=100_000, val_frac=0.1,
                        test_frac=0.0),
}


def with_preset(name: str | None, **overrides) -> TrainConfig:
    """Defaults, then the preset, then explicit overrides (None means "not given")."""
    cfg = TrainConfig()
    if name:
        if name not in PRESETS:
            raise ScratchRNNError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        cfg = cfg.replace(**PRESETS[name])
    return cfg.replace(**{k: v for k, v in overrides.items() if v is not None})


def default_out(text: str | list[str] | None = None, preset: str | None = None) -> Path:
    """Where a new run goes without --out: runs/<corpus name>, and runs/<corpus name>-<preset>
    for a preset, so that `train --preset tiny` after a plain `train` starts a run of its own
    rather than being refused because runs/pg98 holds the first."""

    name = corpus_name(text)
    return Path("runs") / (f"{name}-{preset}" if preset else name)


def parse_duration(text: str | float | int | None) -> float | None:
    """'90s', '10m', '1.5h', '45' (seconds) -> seconds."""
    if text is None or isinstance(text, int | float):
        return None if text is None else float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise ScratchRNNError(f"cannot read the time budget {text!r}; write it like 90s, 10m "
                              "or 1.5h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def validate(cfg: TrainConfig) -> None:
    """Every field's type and range, then the memory the model and a training window will need,
    all before a file is written or an array allocated."""
    if not isinstance(cfg, TrainConfig):
        raise ScratchRNNError(f"expected a TrainConfig, got {type(cfg).__name__}")

    for name in ("hidden", "batch", "seq_len", "eval_every", "log_every"):
        limits.integer(getattr(cfg, name), name, 1)
    limits.integer(cfg.layers, "layers", 1, limits.MAX_LAYERS)
    for name in ("epochs", "max_steps"):
        limits.integer(getattr(cfg, name), name, 1, none_ok=True)
    # one character predicts nothing: a validation of it would be NaN
    limits.integer(cfg.val_chars, "val_chars", 2, none_ok=True)
    limits.integer(cfg.warmup, "warmup", 0)
    limits.integer(cfg.seed, "seed", 0)
    limits.integer(cfg.sample_length, "sample_length", 0, limits.MAX_SAMPLE_LENGTH)
    limits.real(cfg.lr, "lr", 0.0, lo_open=True)
    for name in ("beta1", "beta2"):
        limits.real(getattr(cfg, name), name, 0.0, 1.0, hi_open=True)
    limits.real(cfg.ema, "ema", 0.0, 1.0, hi_open=True, none_ok=True, hint=" (0: off)")
    limits.real(cfg.min_lr, "min_lr", 0.0, cfg.lr, hint=" (between 0 and `lr`)")
    for name in ("clip_value", "clip_norm"):
        limits.real(getattr(cfg, name), name, 0.0, none_ok=True,
                    hint=" (0 for no clipping)")
    limits.real(cfg.dropout, "dropout", 0.0, 1.0, hi_open=True)
    limits.real(cfg.weight_drop, "weight_drop", 0.0, 1.0, hi_open=True)
    limits.real(cfg.time_budget, "time_budget", 0.0, lo_open=True, none_ok=True,
                hint="; write it like 90s, 10m or 1.5h")
    limits.real(cfg.init_std, "init_std", 0.0, lo_open=True, none_ok=True)
    for name in ("val_frac", "test_frac"):
        limits.real(getattr(cfg, name), name, 0.0, 1.0, hi_open=True)
    if cfg.val_frac + cfg.test_frac >= 1:
        raise ScratchRNNError("`val_frac` and `test_frac` must sum to less than 1")
    for name in ("text", "out", "encoding"):
        v = getattr(cfg, name)
        several = name == "text" and isinstance(v, list | tuple) and len(v) > 0
        for one in (v if several else [v]):  # --text may name several files
            if one is not None and (not isinstance(one, str) or not one.strip()):
                raise ScratchRNNError(f"`{name}` must be a non-empty path or name, got "
                                      f"{one!r}")
    text_encoding(cfg.encoding)  # before any file is read or written
    choices = {"vocab": ("ascii", "seed", "corpus"), "cell": ("rnn", "lstm", "gru"),
               "optimizer": ("sgd", "adagrad", "adam"), "schedule": ("constant", "cosine"),
               "dtype": ("float32", "float64"), "on_nan": ("stop", "skip"),
               "recurrent_init": ("uniform", "orthogonal")}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ScratchRNNError(f"unknown `{name}` {getattr(cfg, name)!r}; "
                                  f"choose {', '.join(allowed)}")
    if not isinstance(cfg.layer_norm, bool):
        raise ScratchRNNError(f"`layer_norm` is on or off (True or False), got "
                              f"{cfg.layer_norm!r}")
    if cfg.layer_norm and cfg.cell != "gru":
        raise ScratchRNNError(f"`layer_norm` works with `cell` gru only for now, not "
                              f"{cfg.cell}; use `cell` gru or turn `layer_norm` off "
                              "(the shakespeare preset turns it on)")
    if not isinstance(cfg.locked_dropout, bool):
        raise ScratchRNNError(f"`locked_dropout` is on or off (True or False), got "
                              f"{cfg.locked_dropout!r}")
    if cfg.locked_dropout and not cfg.dropout > 0:
        raise ScratchRNNError("`locked_dropout` needs `dropout` > 0 (it holds dropout's mask "
                              "fixed over each window); give `dropout` P or turn "
                              "`locked_dropout` off")
    check_training_memory(cfg)


def model_config(cfg: TrainConfig, vocab_size: int) -> ModelConfig:
    """The model a run of `cfg` trains over a vocabulary of `vocab_size` characters."""
    return ModelConfig(vocab_size, **{m: getattr(cfg, c) for m, c in MODEL_OPTIONS.items()})


def check_training_memory(cfg: TrainConfig) -> None:
    """Refuse a run whose weights, gradients, optimizer state, weight average and one training
    window (or one validation window of up to 64 streams) would not fit in memory."""

    # The largest vocabulary each choice can have: the corpus one is a subset of ascii's 96.
    vocab_size = 95 if cfg.vocab == "seed" else 96
    model = model_config(cfg, vocab_size)
    copies = 2 + {"sgd": 0, "adagrad": 1, "adam": 2}[cfg.optimizer] + (1 if cfg.ema else 0)
    window = max(window_memory(model, cfg.batch, cfg.seq_len, backward=True),
                 window_memory(model, 64, cfg.seq_len, backward=False))  # validation's streams
    check_model_memory(model, copies, window,
                       {"parameters": "lower `hidden` or `layers`",
                        "activations": "lower `batch` or `seq_len` (or `hidden`, `layers`)"})
