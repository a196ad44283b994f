"""Settings from the budget (issue 32): a new run given `time_budget` and no model options times
its model at one, two and three layers on this machine, reads the size of its text, and chooses
the depth, the regularisation and when to stop by a rule measured with
benchmarks/budget_table.py (BENCHMARKS.md, "Settings for your minutes"); it says what it chose
and why, and the validation loss to expect.

The rule reads two numbers of each candidate: the steps the budget buys at its measured pace,
and the epochs those steps make over the training text.
- Depth. A second layer costs about twice the step. While the two-layer model would take fewer
  than STEPS_FEW steps and pass over the text fewer than EPOCHS_FEW times, the one-layer model's
  extra steps win; past that the second layer's capacity does. At 2 minutes one layer won by
  0.016 and 0.053 at 2.8 and 0.5 planned epochs (tinyshakespeare, Python's standard library)
  and lost by 0.031 at 4.0 (the book); at 10 minutes (8,000 steps) it lost by 0.05-0.07.
  A third layer costs about half a step more, and wins where it has at most PARAMS_PER_CHAR
  parameters per training symbol and passes over the text more than EPOCHS_THIRD times: by
  0.025 on the book at 10 minutes (15 planned epochs, stopped at 10) and by 0.015 and 0.019 on
  tinyshakespeare at 10 and 30 minutes (8.4 epochs, which the budget stopped, and 10), against
  two layers' 10 epochs. Where it passes over the text fewer times, the two-layer model's
  extra steps win: on Python's standard library at 30 minutes (5.7 planned epochs) three
  layers lost by 0.015. On Onegin (7.4 parameters per symbol) their 10 epochs lost to two
  layers' by 0.08.
- Regularisation. A model with more than PARAMS_PER_CHAR parameters per training symbol that
  passes over its text more than EPOCHS_MANY times overfits the default dropout of 0.1 long
  before the budget ends; such a run gets AUTO_REGULARISED (store/config.py: locked dropout
  0.5, weight drop 0.3), which learns slower but keeps improving. On Onegin at 10 minutes (5.1
  parameters per symbol, 60 epochs) it won by 0.054; on Onegin at 2 minutes (22 epochs) the
  default won, and on the book at 30 minutes (1.0 parameter per symbol, 70 epochs) it lost by
  0.08 to what the default reached in 10 epochs. On the book at 10 minutes (18 epochs) even a
  dropout of 0.25 lost by 0.009.
- The stop. A model with at most PARAMS_PER_CHAR parameters per training symbol gains nothing
  past EPOCHS_ENOUGH epochs with the default dropout: the book at 10 and 30 minutes and
  tinyshakespeare at 10 (18, 59 and 12 planned epochs) ended 0.001-0.004 worse trained for the
  whole budget than stopped at 10 epochs, and a wider GRU 2 x 384 with dropout 0.2 for 30
  minutes tied those 10 epochs (-0.001 and -0.004 on validation, +0.003 and +0.002 on test),
  and so did its own 10 epochs on the book (1.2413 against 1.2415).
  Such a run stops after EPOCHS_ENOUGH epochs, its cosine over them, before the budget ends;
  any other run gets `epochs` none: the budget stops it, the learning rate following its clock
  down the cosine (training/loop.py).
Width, cell, batch, window and the learning rate stay at their defaults: the wider model tied,
and the 2-minute search of the others is in BENCHMARKS.md.

The loss to expect comes from how predictable the text is: a trigram model counted on the
training text and scored on the validation text (`trigram_loss`, about a second) maps linearly to
the rule's measured loss at 2, 10 and 30 minutes (EXPECTED); the range is the fit's largest miss
on the table's corpora, plus a margin."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..data.corpus import Corpus, make_streams, windows_per_epoch
from ..errors import PYTHON, ScratchRNNError, Voice
from ..limits import duration
from ..nn.model import CharRNN
from ..store.config import (
    AUTO_CHOOSES,
    AUTO_REGULARISED,
    TrainConfig,
    check_training_memory,
    model_config,
    stop_step,
)
from .timing import measure

DEPTHS = (1, 2, 3)
STEPS_FEW = 3_000
EPOCHS_FEW = 3.3
EPOCHS_MANY = 40.0
PARAMS_PER_CHAR = 2.0  # ... and only a model this large for its text
EPOCHS_ENOUGH = 10  # a model smaller than that for its text gains nothing past these epochs
EPOCHS_THIRD = 8.0  # ... and a third layer pays where it would pass over the text more often
MEASURE_S = 1.5  # seconds timing each candidate at most
MEASURE_SHARE = 0.02  # ... and at most this share of the budget for all of them
# budget seconds -> (slope, intercept, half range) of the expected validation loss, nats/char,
# against the text's trigram loss (trigram_loss): the least-squares line through the rule's
# picks in BENCHMARKS.md's table (`budget_table.py --table`), the range its largest miss plus
# MARGIN. Onegin, the book, tinyshakespeare and Python's standard library have trigram losses
# 2.598, 1.993, 2.070 and 2.015; their picks scored 2.2939, 1.3219, 1.4935, 1.4467 at 2
# minutes, 2.2641, 1.2167, 1.3779, 1.2177 at 10, and 2.2429, 1.2167, 1.3731, 1.1784 at 30.
EXPECTED = {120.0: (1.5320, -1.6841, 0.0779), 600.0: (1.7429, -2.2615, 0.0634),
            1800.0: (1.7326, -2.2553, 0.0880)}
MARGIN = 0.03  # added to each fit's largest miss: four corpora are few
# the options the table ran at their defaults: a run that changes one gets no expected loss
FITTED_WITH = ("cell", "hidden", "batch", "seq_len", "optimizer", "lr", "schedule", "min_lr",
               "warmup", "ema", "dtype", "layer_norm", "recurrent_init", "min_count")
FITTED_VOCABS = ("ascii", "unicode")  # what `vocab` auto chose for the table's texts


@dataclass
class Choice:
    """What auto chose for a run, from what it measured: the run prints it and records it in
    its checkpoints' metadata (`auto`)."""
    budget_s: float
    train_symbols: int
    timed: list  # [layers, seconds a step] of each candidate timed
    validation_s: float  # seconds a validation takes (that of the deepest candidate)
    settings: dict  # the options chosen, by name; given ones are not here
    steps: int  # about what the budget buys of the chosen model
    epochs: float  # ... over the training text
    why: str
    trigram: float | None  # nats/char: trigram_loss of the text (None: too short a split)
    expected: list | None  # [low, middle, high] validation nats/char (None: nothing to say)

    def record(self) -> dict:
        return asdict(self)

    def lines(self, voice: Voice = PYTHON) -> list[str]:
        """What was chosen, why, and the loss to expect, parameters named as `voice` says."""
        chose = ", ".join(f"`{k}` {_shown(v)}" for k, v in self.settings.items())
        timed = ", ".join(f"{s:.3g} s at {n}" for n, s in self.timed)
        layers = "layers" if len(self.timed) > 1 or self.timed[0][0] > 1 else "layer"
        out = [voice(f"auto chose {chose} for `time_budget` {duration(self.budget_s)}"),
               f"why: {self.why} (a step measured here: {timed} {layers})"]
        if self.expected:
            lo, mid, hi = self.expected
            beyond = max(EXPECTED)
            note = (f"; measured up to {duration(beyond)} only: a longer budget should do "
                    "better" if self.budget_s > beyond * 1.1 else "")
            out.append(f"expected validation loss: {lo:.2f} to {hi:.2f} nats/char (about "
                       f"{mid:.2f}), from this text's trigram loss {self.trigram:.2f}{note}")
        return out


def _shown(v) -> str:
    return ("on" if v else "off") if isinstance(v, bool) else (
        "none (the budget stops the run)" if v is None else f"{v:g}")


def free_keys(config: TrainConfig | None, overrides: dict, resumed: bool) -> tuple[str, ...]:
    """The options auto chooses for a run made of `config` and keyword `overrides` (None: not
    given): none for a resumed run, without `time_budget` or with `auto` off (a preset turns it
    off); else AUTO_CHOOSES less those given: an override, or a `config` field that differs
    from TrainConfig's default (`max_steps` given, `epochs` too)."""
    cfg = config or TrainConfig()
    budget = overrides.get("time_budget") or cfg.time_budget
    auto = overrides.get("auto")
    if auto and resumed:
        raise ScratchRNNError("`auto` chooses the settings of a new run; a resumed run keeps "
                              "those it started with: drop `auto`")
    if auto and not budget:
        raise ScratchRNNError("`auto` chooses the settings for a `time_budget`; give one, "
                              "e.g. `time_budget` 10m")
    if resumed or not budget or not (cfg.auto if auto is None else auto):
        return ()
    default = TrainConfig()

    def given(key: str) -> bool:
        return overrides.get(key) is not None or getattr(cfg, key) != getattr(default, key)

    return tuple(k for k in AUTO_CHOOSES
                 if not given(k) and not (k == "epochs" and given("max_steps")))


def rule(budget_s: float, train_symbols: int, chars_per_step: int, timed: dict[int, float],
         validation_s: float, eval_every: int, *, parameters: dict[int, int],
         regularise: bool = True, stop: bool = True, cap: int | None = None,
         epoch_steps: int | None = None):
    """-> (layers, regularised, epochs_stop, steps, epochs, why): the rule above, over `timed`
    (layers -> seconds a step; the depths the run may have) and `parameters` (layers -> the
    model's parameter count), for a run that `cap` steps stop, if the budget does not;
    `epochs_stop` is EPOCHS_ENOUGH where the run should stop there (only if `stop`: `epochs`
    is auto's to choose), else None. `epoch_steps`: the steps an epoch takes (default: the
    training symbols over `chars_per_step`). A pure function of what was measured, so the same
    measurement chooses the same settings."""
    def buys(layers: int) -> int:  # validations run on the budget's clock too
        n = int(budget_s / (timed[layers] + validation_s / eval_every))
        return min(n, cap) if cap else n

    def epochs(layers: int) -> float:
        return buys(layers) * chars_per_step / max(train_symbols, 1)

    def per_char(layers: int) -> float:
        return parameters[layers] / max(train_symbols, 1)

    layers, why = max(timed), ""  # a single depth: the one given
    if len(timed) > 1:
        two, deep = min(n for n in timed if n > 1), max(timed)  # the default depth, a third
        few = buys(two) < STEPS_FEW and epochs(two) < EPOCHS_FEW
        third = deep > two and stop and per_char(deep) <= PARAMS_PER_CHAR
        short = third and epochs(deep) <= EPOCHS_THIRD
        layers = min(timed) if few else deep if third and not short else two
        why = f"{two} layers would get {buys(two):,} steps, {epochs(two):.1f} epochs; " + (
            f"too few for the second layer, so one layer's {buys(layers):,} steps" if few else
            f"{layers} layers would get {buys(layers):,} steps, {epochs(layers):.1f} epochs: "
            "enough for the third layer" if layers > two else
            "enough for the second layer" + (
                f" (a third would get {epochs(deep):.1f} epochs: too few)" if short else ""))
    many = epochs(layers) > EPOCHS_MANY and per_char(layers) > PARAMS_PER_CHAR
    enough = stop and per_char(layers) <= PARAMS_PER_CHAR and epochs(layers) > EPOCHS_ENOUGH
    steps, planned = buys(layers), epochs(layers)
    if enough:
        per_epoch = epoch_steps or train_symbols / chars_per_step
        steps, planned = min(steps, int(EPOCHS_ENOUGH * per_epoch)), EPOCHS_ENOUGH
    why += ("; " if why else "") + (
        f"{epochs(layers):.0f} epochs with {per_char(layers):.2g} "
        f"parameter{'' if f'{per_char(layers):.2g}' == '1' else 's'} per training symbol " + (
            f"gain nothing past {EPOCHS_ENOUGH}, so it stops there ({steps:,} steps)"
            if enough else
            "need no more than the default dropout" if not many else
            "would overfit the default dropout, so strong regularisation" if regularise else
            "would overfit the default dropout, but regularisation was given"))
    return (layers, many and regularise, EPOCHS_ENOUGH if enough else None, steps, planned,
            why)


def expected_loss(trigram: float, budget_s: float) -> list[float]:
    """[low, middle, high] validation loss of the rule's pick, nats/char: EXPECTED's fits
    interpolated in log budget, held at the nearest measured budget outside them."""
    budgets = sorted(EXPECTED)
    x = min(max(budget_s, budgets[0]), budgets[-1])
    hi = next(b for b in budgets if b >= x)
    lo = max(b for b in budgets if b <= x)
    w = 0.0 if hi == lo else (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
    slope, intercept, half = (a * (1 - w) + b * w
                              for a, b in zip(EXPECTED[lo], EXPECTED[hi], strict=True))
    mid = slope * trigram + intercept
    return [round(mid - half, 4), round(mid, 4), round(mid + half, 4)]


def trigram_loss(train: np.ndarray, val: np.ndarray, max_train: int = 1_000_000,
                 max_val: int = 100_000) -> float:
    """Nats/char of a trigram model counted on (the first `max_train` symbols of) `train`, with
    fixed interpolation weights 0.7/0.25/0.05 over trigram, bigram and add-one unigram, on (the
    first `max_val` of) `val`: how predictable the text is from its last two characters."""
    t = np.asarray(train[:max_train], dtype=np.int64)  # (N,)
    v = np.asarray(val[:max_val], dtype=np.int64)  # (M,)
    if len(t) < 3 or len(v) < 3:
        return float("nan")
    V = int(max(t.max(), v.max())) + 1  # V**3 < 2**63 for two-byte ids

    def count(keys, seen):  # how often each of `keys` occurs in `seen`
        u, c = np.unique(seen, return_counts=True)
        i = np.minimum(np.searchsorted(u, keys), len(u) - 1)
        return np.where(u[i] == keys, c[i], 0)

    a, b, c = v[:-2], v[1:-1], v[2:]
    n3 = count((a * V + b) * V + c, (t[:-2] * V + t[1:-1]) * V + t[2:])
    d3 = count(a * V + b, t[:-2] * V + t[1:-1])
    n2 = count(b * V + c, t[1:-1] * V + t[2:])
    d2 = count(b, t[1:-1])
    p1 = (count(c, t[2:]) + 1) / (len(t) - 2 + V)
    p2 = np.where(d2 > 0, n2 / np.maximum(d2, 1), p1)
    p3 = np.where(d3 > 0, n3 / np.maximum(d3, 1), p2)
    return float(-np.log(0.7 * p3 + 0.25 * p2 + 0.05 * p1).mean())


def _fits(cfg: TrainConfig, vocab_size: int) -> bool:
    try:
        check_training_memory(cfg, vocab_size)
    except ScratchRNNError:
        return False
    return True


def choose(cfg: TrainConfig, corpus: Corpus, free: tuple[str, ...], log=print,
           voice: Voice = PYTHON, measure_s: float | None = None) -> tuple[TrainConfig, Choice]:
    """Time `cfg`'s model at each depth auto may choose (`free`: from free_keys) on the run's
    own windows (at most `measure_s` seconds in all, if given), apply the rule -> the
    configuration with the chosen options, and the Choice."""
    depths = DEPTHS if "layers" in free else (cfg.layers,)
    # a third layer is only ever a candidate: one that would not fit in memory is left out
    depths = tuple(n for n in depths if n <= 2 or _fits(cfg.replace(layers=n), len(corpus.vocab)))
    each = min(MEASURE_S, MEASURE_SHARE * cfg.time_budget / len(depths),
               math.inf if measure_s is None else measure_s / len(depths))
    names = ", ".join(f"{n}" for n in depths[:-1]) + (" and " if len(depths) > 1 else "")
    names = f"{cfg.cell} {names}{depths[-1]} x {cfg.hidden}"
    log(voice(f"auto: timing {names} on this machine for `time_budget` "
              f"{duration(cfg.time_budget)} (about {each * len(depths) + 1:.0f} s)"))
    streams = make_streams(corpus.train, cfg.batch)  # (B, L)
    val = corpus.val[:cfg.val_chars] if cfg.val_chars else corpus.val
    timed, val_s, parameters = {}, 0.0, {}
    for n in depths:
        shape = cfg.replace(layers=n)
        check_training_memory(shape, len(corpus.vocab))
        model = CharRNN.from_config(model_config(shape, len(corpus.vocab)), cfg.seed)
        _, timed[n], v_s, _ = measure(shape, model, streams, 0, val, each)
        val_s, parameters[n] = max(val_s, v_s), model.num_params()
    if "epochs" in free:
        cfg = cfg.replace(epochs=None)
    epoch_steps = windows_per_epoch(streams, cfg.seq_len)
    cap = stop_step(cfg, epoch_steps)
    layers, strong, stop, steps, epochs, why = rule(
        cfg.time_budget, len(corpus.train), cfg.batch * cfg.seq_len, timed, val_s,
        cfg.eval_every, parameters=parameters,
        regularise=all(k in free for k in AUTO_REGULARISED), stop="epochs" in free, cap=cap,
        epoch_steps=epoch_steps)
    chosen = {"layers": layers, "epochs": stop, **(AUTO_REGULARISED if strong else {})}
    settings = {k: chosen.get(k, getattr(TrainConfig(), k)) for k in free}
    cfg = cfg.replace(**settings)
    check_training_memory(cfg, len(corpus.vocab))
    trigram = trigram_loss(corpus.train, corpus.val)
    # the fit is of the rule's own picks: a run with options of its own gets no figure
    default = TrainConfig()
    ours = len(free) == len(AUTO_CHOOSES) and cfg.vocab in FITTED_VOCABS and all(
        getattr(cfg, k) == getattr(default, k) for k in FITTED_WITH)
    expected = expected_loss(trigram, cfg.time_budget) if ours and math.isfinite(trigram) \
        else None
    choice = Choice(cfg.time_budget, len(corpus.train), [[n, timed[n]] for n in depths],
                    val_s, settings, steps, epochs, why,
                    trigram if math.isfinite(trigram) else None, expected)
    for line in choice.lines(voice):
        log(line)
    return cfg, choice
