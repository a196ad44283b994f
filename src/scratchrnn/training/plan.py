"""What a run will be, before it starts: the settings, folder and corpus checks that training and
`plan` (`scratchrnn train --dry-run`) share, so a dry run refuses what training refuses with the
same line, and the plan itself: the corpus, model size, memory and steps of a run, with its step
time measured on this machine over a few real training steps of its own model.

A plan writes nothing: it checks the run folder as training would (owner.check_run_out) without
making or locking it, reads a corpus prepared in the run folder when one matches, and prepares
any other corpus too large for memory in a temporary folder it removes again."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .. import limits
from ..data.corpus import Corpus, load_corpus, make_streams, windows_per_epoch
from ..data.sources import absolute
from ..errors import PYTHON, ScratchRNNError, Voice
from ..limits import duration
from ..nn.model import CharRNN, param_count
from ..store.checkpoint import load_checkpoint
from ..store.config import (
    MODEL_KEYS,
    MODEL_OPTIONS,
    TrainConfig,
    check_training_memory,
    default_out,
    model_config,
    stop_step,
    training_memory,
)
from ..store.owner import check_run_out, run_reuse
from ..store.resume import (
    check_same_text,
    corpus_identity,
    resume_text,
    saved_identity,
    vocab_arg,
)
from . import auto
from .evaluation import unknown_characters
from .timing import measure

MEASURE_S = 4.0  # seconds of timed steps at most, after the warm-up step
MAX_MEASURE_S = 60.0  # what a caller may ask for: a plan is a look, not a benchmark
TRAINING = ("batch", "seq_len", "optimizer", "lr", "schedule", "min_lr", "warmup", "beta1", "beta2",
            "ema", "clip_value", "clip_norm", "epochs", "max_steps", "time_budget")


def _resume_config(ckpt, overrides: dict) -> TrainConfig:
    saved = TrainConfig.from_dict(ckpt.config)
    for key in MODEL_KEYS:
        new = overrides.get(key)
        if new is not None and new != getattr(saved, key):
            raise ScratchRNNError(
                f"`resume` continues the run as it was: it has `{key}` "
                f"{getattr(saved, key)!r}, not {new!r}; drop `{key}` or start a new run with "
                "another `out`")
    return saved.replace(**{k: v for k, v in overrides.items() if v is not None})


def settle(config: TrainConfig | None, ckpt, overrides: dict):
    """-> the configuration a run of `config` (or continuing `ckpt`) trains with, its folder,
    and the `text` a resumed run was given (compared by content); nothing read or written."""
    if config is not None and not isinstance(config, TrainConfig):
        raise ScratchRNNError(f"config must be a TrainConfig, got {type(config).__name__}")
    text = overrides.pop("text", None) if ckpt is not None else None
    if ckpt is not None:
        cfg = _resume_config(ckpt, overrides)
    else:
        cfg = (config or TrainConfig()).replace(**{k: v for k, v in overrides.items()
                                                   if v is not None})
    if ckpt is not None:  # a resumed run lives where its checkpoint is, unless told otherwise
        out = Path(overrides["out"]) if overrides.get("out") else ckpt.path.parent
    else:
        out = Path(cfg.out) if cfg.out else default_out(cfg.text)
    # the text stored absolute: the run resumes from any folder, and ranks compare it so
    source = resume_text(ckpt.meta, ckpt.config, text) if ckpt else absolute(cfg.text)
    return cfg.replace(out=str(out), text=source), out, text


def check_corpus(cfg: TrainConfig, corpus: Corpus, ckpt, text, allow_new_text: bool):
    """Refuse a corpus this run cannot train on (its model too large over the vocabulary it
    chose, a resumed run's text changed, too short for one window of every stream) -> the
    configuration with the vocabulary `auto` chose, the text's identity, and whether a resumed
    run goes on over a new text."""
    if corpus.vocab_name:  # auto: the run records what it chose
        cfg = cfg.replace(vocab=corpus.vocab_name)
    check_training_memory(cfg, len(corpus.vocab))
    identity = corpus_identity(corpus, cfg.text)
    new_text = ckpt is not None and check_same_text(ckpt.meta, identity, allow_new_text)
    # a text new to the model's vocabulary: another, or any for a run that records none (an
    # imported one, or from before runs recorded their text)
    if ckpt is not None and cfg.text is not None and (
            new_text or saved_identity(ckpt.meta) is None):
        unknown_characters(cfg.text, corpus.vocab, cfg.encoding)
    need = cfg.batch * (cfg.seq_len + 1)
    if len(corpus.train) < need:
        raise ScratchRNNError(
            f"the training text has {len(corpus.train)} characters, fewer than `batch` x "
            f"(`seq_len` + 1) = {need}; use a smaller `batch` or `seq_len`, or a longer "
            "text")
    return cfg, identity, new_text


def total_steps(cfg: TrainConfig, n_win: int, win: int) -> int | None:
    """The step a run of `n_win` windows per epoch stops at (None: a time budget or a signal
    does), after refusing a checkpoint's position `win` that this text cannot hold."""
    if win >= n_win:
        raise ScratchRNNError(f"the checkpoint stands at window {win} of an epoch, but this text "
                              f"has {n_win} windows per epoch; resume it on the text it was "
                              "trained on")
    return stop_step(cfg, n_win)


@dataclass
class Plan:
    """What `train` would do with the same arguments; `lines()` says it for people."""
    config: TrainConfig  # the run's settings, `vocab` as `auto` chose it
    out: str
    resumed: bool
    corpus: str
    vocab_size: int
    vocab_line: str  # the vocabulary, and why auto chose it
    train_symbols: int
    val_symbols: int
    test_symbols: int
    parameters: int
    memory: dict  # bytes by part: parameters, gradients and optimizer state, a window
    windows_per_epoch: int
    step: int  # where the run starts (a resumed run: its checkpoint's step)
    total_steps: int | None  # where `epochs` or `max_steps` stop it (None: neither does)
    steps_left: int | None
    timed_steps: int  # steps timed after one warm-up step (0: the warm-up alone was timed)
    step_s: float  # seconds a training step takes here (the median of those timed)
    chars_per_s: float
    blas: str  # the BLAS threads the steps ran on (threads.BlasThreads, as training's)
    validation_s: float  # seconds a validation takes here (0: no validation split)
    validations: int | None  # until the run stops (None: nothing but a time budget stops it)
    expected_s: float | None  # until the run stops, validations included (None: never)
    budget_steps: int | None  # the steps `time_budget` buys at that pace
    auto: dict | None = None  # what `auto` chose, and from what (auto.Choice.record)

    @property
    def memory_bytes(self) -> int:
        return sum(self.memory.values())

    def to_dict(self) -> dict:
        return {**asdict(self), "config": self.config.to_dict(),
                "memory_bytes": self.memory_bytes}

    def lines(self, voice: Voice = PYTHON) -> list[str]:
        """The plan in a few lines, parameters named as `voice` names them (only in the
        library's own words: a path may hold backticks)."""
        c, v = self.config, voice
        shape = ("cell", "layers", "hidden")
        model = (f"model: {c.cell} {c.layers} x {c.hidden}, {self.parameters:,} parameters; "
                 + v(_settings(c, [n for n in MODEL_OPTIONS.values() if n not in shape])))
        train = "training: " + v(_settings(c, TRAINING))
        other = "other settings: " + v(_settings(c, [
            f.name for f in fields(c) if f.name not in
            {*MODEL_OPTIONS.values(), *TRAINING, "text", "out", "vocab"}]))
        parts = ", ".join(f"{k} {limits.human_bytes(n)}" for k, n in self.memory.items() if n)
        ends = v("nothing but `time_budget` or a signal stops it")
        if self.total_steps is not None:
            ends = f"it stops at step {self.total_steps:,} " + v(
                "(`max_steps`)" if c.max_steps == self.total_steps else f"(`epochs` {c.epochs})")
        start = f"resumed at step {self.step:,}, " if self.resumed else ""
        steps = (f"steps: {self.windows_per_epoch:,} windows of {c.batch} x {c.seq_len} per "
                 f"epoch; {start}{ends}")
        if self.steps_left is not None:
            steps += f"; {self.steps_left:,} steps to go"
        timed = (f"the median of {self.timed_steps} steps timed after a warm-up step"
                 if self.timed_steps else "the warm-up step alone: a slow model")
        chosen = auto.Choice(**self.auto).lines(voice) if self.auto else []
        out = [f"plan for {self.out} (nothing trained or written)", model, *chosen, train,
               other, self.vocab_line,
               f"corpus {self.corpus}: {self.train_symbols:,} train / {self.val_symbols:,} val "
               f"/ {self.test_symbols:,} test symbols",
               f"memory: about {limits.human_bytes(self.memory_bytes)} ({parts})", steps,
               f"speed here: {self.step_s:.3g} s a step, {self.chars_per_s:,.0f} chars/s "
               f"({timed}); {self.blas}"]
        if self.expected_s is not None:
            vals = (f", {self.validations} validation{'s' * (self.validations > 1)} of "
                    f"{self.validation_s:.3g} s" if self.validations else "")
            out.append(f"expected time: about {duration(self.expected_s)} ({self.step_s:.3g} s "
                       f"a step{vals}; samples and checkpoints not counted)")
        if c.time_budget:
            buys = v(f"`time_budget` {duration(c.time_budget)} buys about "
                     f"{self.budget_steps:,} steps")
            if self.steps_left is not None and self.budget_steps >= self.steps_left:
                buys += ": the run ends before the budget does"
            elif self.steps_left is not None:
                buys += (f": it stops the run at about step {self.step + self.budget_steps:,} "
                         f"of {self.total_steps:,}")
            out.append(buys)
        if self.steps_left == 0:
            out.append(f"{self.out} is already finished at step {self.step:,}; " +
                       v("raise `max_steps` or `epochs` to go on"))
        return out


def _settings(cfg: TrainConfig, names) -> str:
    def shown(v):
        return ("on" if v else "off") if isinstance(v, bool) else (
            "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v))

    return ", ".join(f"`{n}` {duration(cfg.time_budget)}" if n == "time_budget" and
                     cfg.time_budget else f"`{n}` {shown(getattr(cfg, n))}" for n in names)


def plan(config: TrainConfig | None = None, *, resume=None, overwrite: bool = False,
         allow_new_text: bool = False, measure_s: float = MEASURE_S, **overrides) -> Plan:
    """What `train` would do with the same arguments, without training or writing anything:
    it refuses what `train` refuses, with the same error, then times a few real training
    steps of the run's model (at most `measure_s` seconds after a warm-up step) -> a Plan."""
    limits.real(measure_s, "measure_s", 0.0, MAX_MEASURE_S)
    ckpt = load_checkpoint(resume, resume=True) if resume is not None else None
    cfg, out, text = settle(config, ckpt, overrides)
    free = auto.free_keys(config, overrides, ckpt is not None)
    check_run_out(out, resume_from=ckpt.path.parent if ckpt else None, overwrite=overwrite)
    vocab = vocab_arg(cfg.vocab, ckpt.vocab) if ckpt else cfg.vocab
    with tempfile.TemporaryDirectory(prefix="scratchrnn-plan-") as scratch:
        # a corpus too large for memory is prepared here, not in the run folder
        corpus = load_corpus(cfg.text, vocab, cfg.val_frac, cfg.test_frac, cfg.encoding,
                             cache=scratch, reuse=run_reuse(out) if out.is_dir() else None,
                             min_count=cfg.min_count)
        cfg, _, new_text = check_corpus(cfg, corpus, ckpt, text, allow_new_text)
        choice = None
        if free:
            cfg, choice = auto.choose(cfg, corpus, free, log=lambda line: None,
                                      measure_s=measure_s)
        meta = ckpt.meta if ckpt else {}
        step, win = meta.get("step", 0), 0 if new_text else meta.get("window", 0)
        streams = make_streams(corpus.train, cfg.batch)  # (B, L)
        n_win = windows_per_epoch(streams, cfg.seq_len)
        total = total_steps(cfg, n_win, win)
        model = model_config(cfg, len(corpus.vocab))
        val = corpus.val[:cfg.val_chars] if cfg.val_chars else corpus.val
        timed, step_s, val_s, blas = measure(cfg, CharRNN.from_config(model, cfg.seed),
                                              streams, win, val, measure_s)
        left, evals, expected, bought = _timing(cfg, step, total, len(val) > 1, step_s, val_s)
        return Plan(cfg, str(out), ckpt is not None, corpus.name, model.vocab_size,
                    corpus.describe(cfg.vocab), len(corpus.train), len(corpus.val),
                    len(corpus.test), param_count(model)[0],
                    training_memory(cfg, model.vocab_size), n_win, step, total, left, timed,
                    step_s, cfg.batch * cfg.seq_len / step_s, blas, val_s, evals, expected,
                    bought, choice and choice.record())


def _timing(cfg: TrainConfig, step: int, total: int | None, validates: bool, step_s: float,
            val_s: float):
    """-> (steps left, validations, seconds, steps `time_budget` buys) of a run from `step`
    to `total` (None: no end but the budget) at these measured costs. Training validates
    every `eval_every` steps and where it stops, and its budget's clock runs through them."""
    def validations(stop: int) -> int:
        every = cfg.eval_every
        return 0 if not validates or stop <= step else (
            stop // every - step // every + (stop % every > 0))

    left = None if total is None else max(total - step, 0)
    evals = None if total is None else validations(total)
    expected = None if left is None else left * step_s + evals * val_s
    bought = None
    if cfg.time_budget:
        bought = int(cfg.time_budget / (step_s + val_s / cfg.eval_every))
        if left is None or bought < left:  # the budget stops it, then it validates once more
            evals, expected = validations(step + bought), cfg.time_budget + val_s
    return left, evals, expected, bought
