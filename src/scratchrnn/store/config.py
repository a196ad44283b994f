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
from ..data.vocab import VOCABS
from ..errors import ScratchRNNError, spelled
from ..nn.model import ModelConfig, check_model_memory, model_memory, window_memory

# Fields added after runs were first saved, with the behaviour of a run saved without them:
# a saved configuration that lacks one reads as that value, not as today's default.
ADDED_LATER = {"ema": None, "vocab": "ascii", "auto": False}

# A model option is declared once, as a ModelConfig field (nn/model.py), and has a TrainConfig
# field of the same name (two are shorter there): the run passes them on by this table.
MODEL_OPTIONS = {f.name: {"hidden_size": "hidden", "num_layers": "layers"}.get(f.name, f.name)
                 for f in dataclasses.fields(ModelConfig) if f.name != "vocab_size"}
# What changes the model or its data: a resumed run must keep them as they were.
MODEL_KEYS = ("text", "vocab", "min_count", "encoding", *MODEL_OPTIONS.values(), "batch", "seq_len",
              "val_frac", "test_frac", "optimizer", "seed", "val_chars")
# What `auto` chooses for a new run given `time_budget` (training/auto.py), unless given;
# `epochs` becomes none, so that the budget stops the run, or 10 for a model small for its
# text, unless `max_steps` is given.
AUTO_CHOOSES = ("layers", "dropout", "locked_dropout", "weight_drop", "epochs")
# ... and the regularisation it gives a run that passes over its text many times: the recipe
# that won on Onegin (0.16 MB) at 10 minutes, where a dropout of 0.1 overfits.
AUTO_REGULARISED = {"dropout": 0.5, "locked_dropout": True, "weight_drop": 0.3}


def option(default, help: str, **cli):
    """A TrainConfig field, declared once: its default, what it does (the command line's help
    says it, with the default; parameters in backticks, as in errors), and any argparse detail
    its flag needs beyond its type."""
    return dataclasses.field(default=default, metadata={"help": help, **cli})


@dataclass
class TrainConfig:
    """A run's settings. Each field is its own declaration: `scratchrnn train` derives its flag
    (`--` and the name with dashes), type and help from it, and `validate` checks its range."""
    text: str | list[str] | None = option(
        None, "local text: a file, a folder (every text file inside), a quoted glob like "
        "'src/**/*.c', or several (default: A Tale of Two Cities, downloaded once)", nargs="+")
    out: str | None = option(None, "run folder: new, empty or a scratchrnn run (default: "
                             "runs/<corpus name>, runs/<corpus name>-<preset> with `preset`)")
    vocab: str = option("auto", "auto (ascii for text whose letters are ASCII, else unicode), "
                        "ascii (96 symbols; other characters transliterated), seed (the "
                        "notebook's 95), corpus (the ASCII characters the text uses), unicode "
                        "(the text's own characters, NFC) or bytes (its 256 UTF-8 byte "
                        "values)")
    min_count: int = option(1, "with `vocab` unicode: a character seen fewer than N times "
                            "is read as one unknown symbol, U+FFFD", metavar="N")
    encoding: str | None = option(None, "the file's encoding (default: UTF-8, falling back to "
                                  "cp1252)")
    # The default model won benchmarks/compare_cells.py on the book at a 5-minute budget.
    cell: str = option("gru", "rnn, lstm or gru")
    hidden: int = option(256, "hidden units per layer")
    layers: int = option(2, "number of stacked layers")
    dropout: float = option(0.1, "dropout after each layer, in [0, 1)")
    init_std: float | None = option(None, "N(0, std) weights instead of PyTorch's uniform init")
    weight_drop: float = option(0.0, "DropConnect on the recurrent weights (AWD-LSTM): drop each "
                                "W_h entry with probability P, one mask per training window, "
                                "in [0, 1); 0 is off", metavar="P")
    recurrent_init: str = option("uniform", "uniform (PyTorch's) or orthogonal recurrent "
                                 "weights (each gate's H x H block)")
    layer_norm: bool = option(False, "layer-normalise each gate's input and recurrent "
                              "pre-activations (Ba et al. 2016; `cell` gru only; on in "
                              "`preset` shakespeare)")
    locked_dropout: bool = option(False, "variational dropout (Gal & Ghahramani 2016): one "
                                  "`dropout` mask per stream and unit for a whole window, not "
                                  "one per step")
    batch: int = option(32, "parallel streams B")
    # the state is carried across windows: shorter ones mean more updates
    seq_len: int = option(50, "window length T for truncated BPTT")
    optimizer: str = option("adam", "sgd, adagrad or adam")
    lr: float = option(3e-3, "learning rate")
    beta1: float = option(0.9, "Adam's first-moment decay")  # as PyTorch's betas
    beta2: float = option(0.999, "Adam's second-moment decay")
    ema: float | None = option(0.998, "evaluate, sample and save a moving average of the "
                               "weights with this decay per step, e.g. 0.999 (0: off)",
                               metavar="DECAY")
    clip_value: float | None = option(5.0, "clip each gradient element to +-this (0: off)")
    clip_norm: float | None = option(None, "clip the global gradient norm to this (default: "
                                     "off)")
    warmup: int = option(50, "linear warmup steps")
    schedule: str = option("cosine", "cosine or constant")
    min_lr: float = option(3e-4, "learning rate at the end of the cosine schedule")
    epochs: int | None = option(10, "passes over the training text")
    max_steps: int | None = option(None, "total steps of the run, counting earlier ones on "
                                   "`resume` (default: `epochs` decides)")
    time_budget: float | None = option(None, "stop after this long, e.g. 90s, 10m, 1.5h "
                                       "(default: no limit)", type=str)  # of this invocation
    auto: bool = option(True, "with `time_budget`, a new run chooses `layers`, `dropout`, "
                        "`locked_dropout`, `weight_drop` and `epochs` where not given, from "
                        "this machine's measured speed and the text's size (BENCHMARKS.md); "
                        "off: the defaults")
    eval_every: int = option(500, "validate, save and sample every N steps")
    log_every: int = option(10, "write a metrics row every N steps")
    sample_length: int = option(200, "characters sampled at each evaluation (0: none)")
    seed: int = option(0, "fixes initialisation, dropout and sampling")
    dtype: str = option("float32", "float32 or float64")
    val_frac: float = option(0.05, "fraction of the text held out for validation")
    test_frac: float = option(0.05, "fraction of the text held out for testing")
    val_chars: int | None = option(None, "validate on at most this many characters (default: "
                                   "the whole split)")
    on_nan: str = option("stop", "stop or skip an update whose loss is not finite")

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
        cfg = cfg.replace(**PRESETS[name], auto=False)  # a preset is a whole recipe
    return cfg.replace(**{k: v for k, v in overrides.items() if v is not None})


def default_out(text: str | list[str] | None = None, preset: str | None = None) -> Path:
    """Where a new run goes without --out: runs/<corpus name>, and runs/<corpus name>-<preset>
    for a preset, so that `train --preset tiny` after a plain `train` starts a run of its own
    rather than being refused because runs/pg98 holds the first."""

    name = corpus_name(text)
    return Path("runs") / (f"{name}-{preset}" if preset else name)


def stop_step(cfg: TrainConfig, n_win: int) -> int | None:
    """The step `max_steps` or `epochs` (of `n_win` windows) stop a run at, whichever comes
    first (None: neither; a time budget or a signal does)."""
    limits = [n for n in (cfg.max_steps, cfg.epochs and cfg.epochs * n_win) if n]
    return min(limits) if limits else None


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

    for name in ("batch", "seq_len", "eval_every", "log_every"):
        limits.integer(getattr(cfg, name), name, 1)
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
    limits.real(cfg.time_budget, "time_budget", 0.0, lo_open=True, none_ok=True,
                hint="; write it like 90s, 10m or 1.5h")
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
    limits.integer(cfg.min_count, "min_count", 1)
    if cfg.min_count > 1 and cfg.vocab not in ("auto", "unicode"):
        raise ScratchRNNError(f"`min_count` applies to `vocab` unicode, not {cfg.vocab}")
    choices = {"vocab": VOCABS, "optimizer": ("sgd", "adagrad", "adam"),
               "schedule": ("constant", "cosine"), "on_nan": ("stop", "skip")}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ScratchRNNError(f"unknown `{name}` {getattr(cfg, name)!r}; "
                                  f"choose {', '.join(allowed)}")
    if not isinstance(cfg.auto, bool):
        raise ScratchRNNError(f"`auto` must be True or False, got {cfg.auto!r}")
    check_training_memory(cfg)  # builds the model's config, which checks the model options


def model_config(cfg: TrainConfig, vocab_size: int) -> ModelConfig:
    """The model a run of `cfg` trains over a vocabulary of `vocab_size` characters; a refused
    option is named as TrainConfig names it (`hidden`, not `hidden_size`)."""
    try:
        return ModelConfig(vocab_size, **{m: getattr(cfg, c) for m, c in MODEL_OPTIONS.items()})
    except ScratchRNNError as e:
        raise ScratchRNNError(spelled(str(e), lambda m: f"`{MODEL_OPTIONS.get(m, m)}`")) \
            from None


def _training_parts(cfg: TrainConfig, vocab_size: int | None) -> tuple[ModelConfig, int, int]:
    if vocab_size is None:
        vocab_size = {"seed": 95, "bytes": 256}.get(cfg.vocab, 96)
    model = model_config(cfg, vocab_size)
    copies = 2 + {"sgd": 0, "adagrad": 1, "adam": 2}[cfg.optimizer] + (1 if cfg.ema else 0)
    window = max(window_memory(model, cfg.batch, cfg.seq_len, backward=True),
                 window_memory(model, 64, cfg.seq_len, backward=False))  # validation's streams
    return model, copies, window


def training_memory(cfg: TrainConfig, vocab_size: int | None = None) -> dict[str, int]:
    """The bytes check_training_memory adds up, by part (nn.model.model_memory)."""
    return model_memory(*_training_parts(cfg, vocab_size))


def check_training_memory(cfg: TrainConfig, vocab_size: int | None = None) -> None:
    """Refuse a run whose weights, gradients, optimizer state, weight average and one training
    window (or one validation window of up to 64 streams) would not fit in memory, over a
    vocabulary of `vocab_size` symbols (None: before the text is read, the fewest `vocab` may
    give: training checks again once it knows)."""
    check_model_memory(*_training_parts(cfg, vocab_size),
                       {"parameters": "lower `hidden` or `layers`",
                        "activations": "lower `batch` or `seq_len` (or `hidden`, `layers`)"})
