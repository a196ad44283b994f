"""The one training configuration, its presets, and the checks that turn impossible values into
one clear error before any work starts."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from .errors import ScratchRNNError

# Fields added after runs were first saved, with the behaviour of a run saved without them:
# a saved configuration that lacks one reads as that value, not as today's default.
ADDED_LATER = {"ema": None}

# Flags that change the model or its data: a resumed run must keep them as they were.
MODEL_KEYS = ("text", "vocab", "encoding", "cell", "hidden", "layers", "dropout", "dtype",
              "init_std", "batch", "seq_len", "val_frac", "test_frac", "optimizer", "seed",
              "val_chars")


@dataclass
class TrainConfig:
    text: str | list[str] | None = None  # None: the book; a file, folder, glob, or several
    out: str | None = None  # None: runs/<corpus name>
    vocab: str = "ascii"
    encoding: str | None = None
    # The default model won benchmarks/compare_cells.py on the book at a 5-minute budget.
    cell: str = "gru"
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.1
    init_std: float | None = None
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A saved configuration (to_dict): unknown keys are ignored, missing ones take their
        ADDED_LATER value, else the default."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**ADDED_LATER, **{k: v for k, v in d.items() if k in names}})

    def replace(self, **changes) -> TrainConfig:
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
}


def with_preset(name: str | None, **overrides) -> TrainConfig:
    """Defaults, then the preset, then explicit overrides (None means "not given")."""
    cfg = TrainConfig()
    if name:
        if name not in PRESETS:
            raise ScratchRNNError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        cfg = cfg.replace(**PRESETS[name])
    return cfg.replace(**{k: v for k, v in overrides.items() if v is not None})


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
    def positive_int(name, allow_none=False):
        v = getattr(cfg, name)
        if v is None and allow_none:
            return
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ScratchRNNError(f"--{name.replace('_', '-')} must be a positive whole number, "
                                  f"got {v!r}")

    for name in ("hidden", "layers", "batch", "seq_len", "eval_every", "log_every"):
        positive_int(name)
    for name in ("epochs", "max_steps", "val_chars"):
        positive_int(name, allow_none=True)
    if cfg.sample_length < 0:
        raise ScratchRNNError("--sample-length must be 0 or more")
    if not (isinstance(cfg.lr, int | float) and math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ScratchRNNError(f"--lr must be a positive number, got {cfg.lr!r}")
    for name in ("beta1", "beta2"):
        v = getattr(cfg, name)
        if not (isinstance(v, int | float) and 0 <= v < 1):
            raise ScratchRNNError(f"--{name} must be in [0, 1), got {v!r}")
    if cfg.ema is not None and not (isinstance(cfg.ema, int | float) and 0 <= cfg.ema < 1):
        raise ScratchRNNError(f"--ema must be in [0, 1) (0: off), got {cfg.ema!r}")
    if not 0 <= cfg.min_lr <= cfg.lr:
        raise ScratchRNNError("--min-lr must be between 0 and --lr")
    if cfg.warmup < 0:
        raise ScratchRNNError("--warmup must be 0 or more steps")
    for name in ("clip_value", "clip_norm"):
        v = getattr(cfg, name)
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ScratchRNNError(f"--{name.replace('_', '-')} must be positive (or 0 for no "
                                  f"clipping), got {v!r}")
    if not 0 <= cfg.dropout < 1:
        raise ScratchRNNError(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.time_budget is not None and not cfg.time_budget > 0:
        raise ScratchRNNError("--time-budget must be positive, like 90s or 10m")
    choices = {"vocab": ("ascii", "seed", "corpus"), "cell": ("rnn", "lstm", "gru"),
               "optimizer": ("sgd", "adagrad", "adam"), "schedule": ("constant", "cosine"),
               "dtype": ("float32", "float64"), "on_nan": ("stop", "skip")}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ScratchRNNError(f"unknown --{name.replace('_', '-')} {getattr(cfg, name)!r}; "
                                  f"choose {', '.join(allowed)}")
    if cfg.init_std is not None and not cfg.init_std > 0:
        raise ScratchRNNError("--init-std must be positive")
