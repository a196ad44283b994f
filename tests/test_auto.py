"""`auto`: a new run given `time_budget` and no model options chooses its depth and
regularisation from this machine's measured step cost and the text's size (training/auto.py),
says why and what loss to expect, records it, and resumes with it."""

import json
import math
from collections import Counter

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.store.checkpoint import load_checkpoint
from scratchrnn.store.config import AUTO_CHOOSES
from scratchrnn.store.schema import Invalid, validate_meta
from scratchrnn.training import auto

TINY = dict(hidden=16, batch=4, seq_len=16, eval_every=20, sample_length=0)
P = {"parameters": {1: 296_032, 2: 690_272}}  # the default width's, at 96 symbols
P3 = {"parameters": {**P["parameters"], 3: 1_084_512}}  # ... and at three layers
T3 = {1: 0.035, 2: 0.065, 3: 0.095}  # the book's step costs (BENCHMARKS.md), three depths
QUIET = dict(progress=False, log=lambda *a: None)


@pytest.fixture
def fixed_speed(monkeypatch):
    """The step cost `auto` measures, fixed: 1 layer 0.01 s, 2 layers 0.02 s a step."""
    calls = []

    def measure(cfg, model, streams, win, val, budget):
        calls.append(cfg.layers)
        return 3, 0.01 * cfg.layers, 0.05, "BLAS: fixed"

    monkeypatch.setattr(auto, "measure", measure)
    return calls


# --- the rule: a pure function of what was measured -------------------------------------

def test_few_steps_over_a_large_text_take_one_layer():
    layers, strong, stop, steps, epochs, why = auto.rule(120, 1_000_000, 1600,
                                                         {1: 0.035, 2: 0.07}, 0.0, 500, **P)
    assert (layers, strong, stop) == (1, False, None)
    assert steps == int(120 / 0.035) and epochs == pytest.approx(steps * 1600 / 1e6)
    assert "1,714 steps, 2.7 epochs" in why and "too few for the second layer" in why


def test_enough_steps_take_two_layers():
    layers, strong, stop, steps, _, why = auto.rule(600, 1_000_000, 1600, {1: 0.035, 2: 0.07},
                                                    0.0, 500, stop=False, **P)
    assert (layers, strong, stop, steps) == (2, False, None, int(600 / 0.07))
    assert "enough for the second layer" in why


def test_a_small_text_takes_two_layers_even_with_few_steps():
    """Onegin at 2 minutes: few steps, but many epochs of a small text."""
    layers, strong, stop, _, epochs, _ = auto.rule(120, 146_107, 1600, {1: 0.035, 2: 0.07}, 0.0,
                                                   500, **P)
    assert layers == 2 and auto.EPOCHS_FEW <= epochs <= auto.EPOCHS_MANY and not strong
    assert stop is None  # 4.7 parameters a symbol: it trains for the whole budget


def test_many_epochs_are_regularised_unless_regularisation_was_given():
    args = (600, 146_107, 1600, {1: 0.035, 2: 0.07}, 0.0, 500)
    layers, strong, stop, _, epochs, why = auto.rule(*args, **P)
    assert (layers, strong, stop) == (2, True, None) and epochs > auto.EPOCHS_MANY
    assert "strong regularisation" in why
    layers, strong, _, _, _, why = auto.rule(*args, regularise=False, **P)
    assert not strong and "regularisation was given" in why


def test_many_epochs_of_a_large_enough_text_stop_at_ten():
    """The book at 30 minutes: 60 epochs, but one parameter per symbol (BENCHMARKS.md): the
    default dropout, stopped after EPOCHS_ENOUGH epochs, as `today` did."""
    layers, strong, stop, steps, epochs, why = auto.rule(
        1800, 681_844, 1600, {1: 0.035, 2: 0.07}, 0.0, 500, epoch_steps=426, **P)
    assert (layers, strong, stop, steps, epochs) == (2, False, 10, 4260, 10)
    assert why.endswith("60 epochs with 1 parameter per training symbol gain nothing past 10, "
                        "so it stops there (4,260 steps)")
    assert auto.rule(1800, 681_844, 1600, {1: 0.035, 2: 0.07}, 0.0, 500, stop=False,
                     **P)[2:4] == (None, int(1800 / 0.07))  # `epochs` not auto's: the budget
    assert auto.rule(1800, 681_844, 1600, {1: 0.035, 2: 0.07}, 0.0, 500, **P)[3] == 4261
    # ten epochs that the budget does not reach: it stops the run
    assert auto.rule(240, 681_844, 1600, {1: 0.035, 2: 0.07}, 0.0, 500, **P)[2] is None


def test_a_third_layer_when_it_makes_enough_epochs():
    """The book at 10 minutes: three layers make 15 epochs at 1.6 parameters a symbol, so
    they stop after 10 (BENCHMARKS.md: 0.025 better than two layers' 10 epochs)."""
    layers, strong, stop, steps, epochs, why = auto.rule(600, 681_844, 1600, T3, 0.0, 500,
                                                         epoch_steps=426, **P3)
    assert (layers, strong, stop, steps, epochs) == (3, False, 10, 4260, 10)
    assert why == ("2 layers would get 9,230 steps, 21.7 epochs; 3 layers would get 6,315 "
                   "steps, 14.8 epochs: enough for the third layer; 15 epochs with 1.6 "
                   "parameters per training symbol gain nothing past 10, so it stops there "
                   "(4,260 steps)")
    # tinyshakespeare at 10 minutes: 8.7 epochs, which the budget stops (0.015 better)
    layers, _, stop, steps, epochs, _ = auto.rule(600, 1_003_854, 1600, {**T3, 3: 0.11}, 0.0,
                                                  500, **P3)
    assert (layers, stop, steps) == (3, None, 5454) and epochs == pytest.approx(8.69, abs=0.01)


@pytest.mark.parametrize("budget, chars, kw, layers, says", [
    (300, 681_844, {}, 2, "(a third would get 7.4 epochs: too few)"),  # the book, 5 minutes
    (1800, 4_228_611, {}, 2, "(a third would get 7.2 epochs: too few)"),  # 4.2M symbols
    (600, 146_107, {}, 2, "enough for the second layer; "),  # 7.4 parameters a symbol
    (1800, 681_844, {"stop": False}, 2, "enough for the second layer; "),  # `epochs` given
    (120, 4_228_611, {}, 1, "too few for the second layer"),
])
def test_no_third_layer_without_enough_epochs_at_two_parameters_a_symbol(budget, chars, kw,
                                                                         layers, says):
    got = auto.rule(budget, chars, 1600, T3, 0.0, 500, **kw, **P3)
    assert got[0] == layers and says in got[5]


def test_thresholds_are_where_the_rule_says():
    """Just below and above STEPS_FEW, EPOCHS_FEW and EPOCHS_MANY."""
    def pick(steps, epochs, params=10**7):
        s2 = 0.07
        budget = steps * s2 + 1e-9
        chars = round(steps * 1600 / epochs)
        layers, strong, stop, *_ = auto.rule(budget, chars, 1600, {1: s2 / 2, 2: s2}, 0.0, 500,
                                             parameters={1: params, 2: params})
        return layers, strong, stop

    assert pick(auto.STEPS_FEW - 1, auto.EPOCHS_FEW - 0.5)[0] == 1
    assert pick(auto.STEPS_FEW + 1, auto.EPOCHS_FEW - 0.5)[0] == 2
    assert pick(auto.STEPS_FEW - 1, auto.EPOCHS_FEW + 0.5)[0] == 2
    assert pick(auto.STEPS_FEW + 1, auto.EPOCHS_MANY - 1) == (2, False, None)
    assert pick(auto.STEPS_FEW * 4, auto.EPOCHS_MANY + 1) == (2, True, None)
    # a model of at most PARAMS_PER_CHAR parameters a symbol stops after EPOCHS_ENOUGH
    few_params = round(auto.STEPS_FEW * 4 * 1600 / (auto.EPOCHS_ENOUGH + 1)
                       * auto.PARAMS_PER_CHAR)
    assert pick(auto.STEPS_FEW * 4, auto.EPOCHS_ENOUGH + 1, few_params) == (2, False, 10)
    assert pick(auto.STEPS_FEW * 4, auto.EPOCHS_ENOUGH - 0.5, few_params) == (2, False, None)
    assert pick(auto.STEPS_FEW * 4, auto.EPOCHS_ENOUGH + 1, few_params + 10) == (2, False, None)
    assert pick(auto.STEPS_FEW * 40, auto.EPOCHS_MANY + 1, few_params)[1:] == (False, 10)


def test_the_third_layers_thresholds_are_where_the_rule_says():
    """Just below and above EPOCHS_THIRD planned epochs and PARAMS_PER_CHAR at three layers."""
    def layers(epochs, per_char):
        s3, chars = 0.1, 1_000_000
        budget = epochs * chars / 1600 * s3 + 1e-9
        params = {1: 10, 2: 10, 3: round(per_char * chars)}
        return auto.rule(budget, chars, 1600, {1: 0.035, 2: 0.07, 3: s3}, 0.0, 500,
                         parameters=params)[0]

    assert layers(auto.EPOCHS_THIRD + 0.01, auto.PARAMS_PER_CHAR) == 3
    assert layers(auto.EPOCHS_THIRD - 0.01, auto.PARAMS_PER_CHAR) == 2
    assert layers(auto.EPOCHS_THIRD + 0.01, auto.PARAMS_PER_CHAR + 0.01) == 2


def test_validations_and_a_cap_shorten_what_the_budget_buys():
    _, _, _, steps, _, _ = auto.rule(100, 10**6, 1600, {2: 0.1}, 5.0, 50, **P)
    assert steps == int(100 / (0.1 + 5.0 / 50))
    _, _, _, steps, _, _ = auto.rule(100, 10**6, 1600, {2: 0.1}, 0.0, 50, cap=300, **P)
    assert steps == 300


def test_the_same_measurement_chooses_the_same_and_another_may_not():
    args = (120, 681_844, 1600)
    first = auto.rule(*args, {1: 0.035, 2: 0.07}, 0.0, 500, **P)
    assert all(auto.rule(*args, {1: 0.035, 2: 0.07}, 0.0, 500, **P) == first
               for _ in range(3))
    slower = auto.rule(*args, {1: 0.06, 2: 0.12}, 0.0, 500, **P)  # a laptop at half the pace
    assert (first[0], slower[0]) == (2, 1)


# --- the expected loss -------------------------------------------------------------------

def brute_trigram(train, val):
    """The same interpolated trigram, counted with dicts one position at a time."""
    tri = Counter(zip(train[:-2], train[1:-1], train[2:], strict=True))
    ctx2 = Counter(zip(train[:-2], train[1:-1], strict=True))
    bi = Counter(zip(train[1:-1], train[2:], strict=True))
    ctx1, uni = Counter(train[1:-1]), Counter(train[2:])
    V = max(max(train), max(val)) + 1
    total = 0.0
    for a, b, c in zip(val[:-2], val[1:-1], val[2:], strict=True):
        p1 = (uni[c] + 1) / (len(train) - 2 + V)
        p2 = bi[b, c] / ctx1[b] if ctx1[b] else p1
        p3 = tri[a, b, c] / ctx2[a, b] if ctx2[a, b] else p2
        total -= math.log(0.7 * p3 + 0.25 * p2 + 0.05 * p1)
    return total / (len(val) - 2)


@pytest.mark.parametrize("V", [3, 40, 300, 65_536])
def test_trigram_loss_counts_as_a_dict_would(V):
    rng = np.random.default_rng(V)
    dtype = np.uint8 if V <= 256 else np.uint16
    train = rng.integers(0, V, 3000).astype(dtype)
    val = np.concatenate([train[100:400], rng.integers(0, V, 200)]).astype(dtype)
    assert auto.trigram_loss(train, val) == pytest.approx(
        brute_trigram(train.tolist(), val.tolist()), rel=1e-12)


def test_trigram_loss_reads_predictability():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 50, 20_000).astype(np.uint8)
    cycle = np.tile(np.arange(50, dtype=np.uint8), 400)
    assert auto.trigram_loss(noise[:15_000], noise[15_000:]) > math.log(50) - 0.05
    assert auto.trigram_loss(cycle[:15_000], cycle[15_000:]) < 0.4
    assert math.isnan(auto.trigram_loss(cycle[:2], cycle))


def test_expected_loss_follows_the_fits():
    for budget, (slope, intercept, half) in auto.EXPECTED.items():
        lo, mid, hi = auto.expected_loss(2.0, budget)
        assert mid == pytest.approx(slope * 2.0 + intercept, abs=1e-4)
        assert (hi - lo) == pytest.approx(2 * half, abs=1e-3)
    short, long_ = min(auto.EXPECTED), max(auto.EXPECTED)
    assert auto.expected_loss(2.0, 1) == auto.expected_loss(2.0, short)  # held outside
    assert auto.expected_loss(2.0, 10**6) == auto.expected_loss(2.0, long_)
    between = auto.expected_loss(2.0, math.sqrt(short * long_))[1]
    ends = sorted([auto.expected_loss(2.0, short)[1], auto.expected_loss(2.0, long_)[1]])
    assert ends[0] <= between <= ends[1]
    assert auto.expected_loss(2.5, 600)[1] > auto.expected_loss(2.0, 600)[1]


# --- which options auto chooses ----------------------------------------------------------

@pytest.mark.parametrize("config, overrides, resumed, free", [
    (None, {"time_budget": 60}, False, AUTO_CHOOSES),
    (None, {"time_budget": None}, False, ()),
    (None, {"time_budget": 60}, True, ()),
    (None, {"time_budget": 60, "auto": False}, False, ()),
    (None, {"time_budget": 60, "dropout": 0.3}, False,
     ("layers", "locked_dropout", "weight_drop", "epochs")),
    (None, {"time_budget": 60, "max_steps": 9}, False, AUTO_CHOOSES[:-1]),
    (None, {"time_budget": 60, "epochs": 9}, False, AUTO_CHOOSES[:-1]),
    (sr.TrainConfig(time_budget=60, layers=3), {}, False, AUTO_CHOOSES[1:]),
    (sr.TrainConfig(time_budget=60, auto=False), {}, False, ()),
    (sr.with_preset("tiny", time_budget=60), {}, False, ()),
    (sr.with_preset("shakespeare"), {}, False, ()),
    (sr.TrainConfig(), {"time_budget": 60, "hidden": 512}, False, AUTO_CHOOSES),
])
def test_free_keys(config, overrides, resumed, free):
    assert auto.free_keys(config, dict(overrides), resumed) == free


def test_auto_without_a_budget_is_refused(small_text, tmp_path, capsys):
    with pytest.raises(sr.ScratchRNNError, match="`auto` chooses the settings for a "
                       "`time_budget`; give one"):
        sr.train(text=str(small_text), out=str(tmp_path / "r"), auto=True, **QUIET)
    assert main(["train", "--text", str(small_text), "--out", str(tmp_path / "r"),
                 "--auto"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--auto chooses the settings for a --time-budget" in err
    assert not (tmp_path / "r").exists()


def test_auto_on_a_resumed_run_is_refused(small_text, tmp_path):
    sr.train(text=str(small_text), out=str(tmp_path / "r"), max_steps=2, **TINY, **QUIET)
    with pytest.raises(sr.ScratchRNNError, match="a resumed run keeps those it started with"):
        sr.train(resume=str(tmp_path / "r"), auto=True, time_budget=60, **QUIET)


def test_no_validation_split_means_no_expected_loss(small_text, fixed_speed):
    plan = sr.plan(text=str(small_text), time_budget=60, val_frac=0, measure_s=0.1)
    assert plan.auto["trigram"] is None and plan.auto["expected"] is None
    assert not any(line.startswith("expected validation loss") for line in plan.lines())


def test_a_plan_bounds_auto_timing_too(small_text, monkeypatch):
    asked = []
    monkeypatch.setattr(auto, "measure", lambda cfg, m, s, w, v, budget: (
        asked.append(budget), (1, 0.01 * cfg.layers, 0.0, ""))[1])
    sr.plan(text=str(small_text), time_budget=3600, measure_s=0.3, **TINY)
    assert asked == pytest.approx([0.1, 0.1, 0.1])


# --- a run: chosen, said, recorded, resumed ----------------------------------------------

def test_a_run_chooses_says_and_records(small_text, tmp_path, fixed_speed):
    said = []
    out = tmp_path / "run"
    result = sr.train(text=str(small_text), out=str(out), time_budget=60, max_steps=6,
                      progress=False, log=said.append, **TINY)
    assert fixed_speed == [1, 2, 3]
    i = next(k for k, line in enumerate(said) if line.startswith("auto: timing"))
    # 6 steps (`max_steps`) are few: one layer
    assert said[i + 1] == ("auto chose layers 1, dropout 0.1, locked_dropout off, weight_drop 0 "
                           "for time_budget 1m")
    assert said[i + 2].startswith("why: 2 layers would get 6 steps")
    assert said[i + 2].endswith("(a step measured here: 0.01 s at 1, 0.02 s at 2, 0.03 s at 3 "
                                "layers)")
    assert result.step == 6 and result.model.config.num_layers == 1
    saved = json.loads((out / "config.json").read_text())
    assert (saved["layers"], saved["auto"], saved["max_steps"]) == (1, True, 6)
    meta = load_checkpoint(out / "checkpoint.npz").meta
    record = meta["auto"]
    assert record["timed"] == [[1, 0.01], [2, 0.02], [3, 0.03]] and record["budget_s"] == 60
    assert record["settings"] == {"layers": 1, "dropout": 0.1, "locked_dropout": False,
                                  "weight_drop": 0.0}
    assert record["steps"] == 6
    assert record["train_symbols"] == len(sr.load_corpus(small_text, "ascii").train)
    assert record["expected"] is None  # hidden 16 is not what the table measured
    validate_meta(meta)


def test_a_resumed_run_keeps_its_choice_and_goes_on_exactly(small_text, tmp_path,
                                                            fixed_speed):
    kw = dict(text=str(small_text), time_budget=3600, schedule="constant", **TINY)
    straight = sr.train(out=str(tmp_path / "a"), max_steps=8, **kw, **QUIET)
    sr.train(out=str(tmp_path / "b"), max_steps=4, **kw, **QUIET)
    assert fixed_speed == [1, 2, 3, 1, 2, 3]
    resumed = sr.train(resume=str(tmp_path / "b"), max_steps=8, **QUIET)
    assert fixed_speed == [1, 2, 3, 1, 2, 3]  # not timed again: the run keeps what it chose
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(v, resumed.model.params[k])
    a, b = (load_checkpoint(tmp_path / n / "checkpoint.npz").meta for n in "ab")
    assert (a["auto"]["settings"], a["auto"]["timed"]) == (b["auto"]["settings"],
                                                           b["auto"]["timed"])
    assert {**a["config"], "out": ""} == {**b["config"], "out": ""}  # `max_steps` 8 both


def test_plan_says_what_train_chooses(small_text, tmp_path, fixed_speed, capsys):
    cfg = dict(text=str(small_text), out=str(tmp_path / "run"), time_budget=45, max_steps=3,
               **TINY)
    plan = sr.plan(measure_s=0.1, **cfg)
    assert not (tmp_path / "run").exists()
    result = sr.train(**cfg, **QUIET)
    assert plan.auto == load_checkpoint(result.out / "checkpoint.npz").meta["auto"]
    assert plan.config.to_dict() == json.loads((result.out / "config.json").read_text())
    assert main(["train", "--text", str(small_text), "--time-budget", "45s", "--hidden", "16",
                 "--batch", "4", "--seq-len", "16", "--out", str(tmp_path / "x"),
                 "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("auto chose --layers ")
    assert lines[2].endswith(", --epochs none (the budget stops the run) for --time-budget 45s")
    assert lines[3].startswith("why: ")
    assert "--epochs none" in lines[4]  # the training line shows what the run will do


def test_no_auto_and_given_options_win(small_text, tmp_path, fixed_speed):
    base = dict(text=str(small_text), time_budget=60, max_steps=2, **TINY)
    off = sr.train(out=str(tmp_path / "off"), auto=False, **base, **QUIET)
    assert fixed_speed == [] and off.model.config.num_layers == 2
    assert "auto" not in load_checkpoint(off.out / "checkpoint.npz").meta
    given = sr.train(out=str(tmp_path / "given"), layers=1, dropout=0.3, **base, **QUIET)
    assert fixed_speed == [1]  # one depth to time: the epochs it makes decide regularisation
    cfg = json.loads((given.out / "config.json").read_text())
    assert (cfg["layers"], cfg["dropout"]) == (1, 0.3)


def test_the_default_run_without_a_budget_is_unchanged(small_text, tmp_path, fixed_speed):
    sr.train(text=str(small_text), out=str(tmp_path / "r"), max_steps=2, **TINY, **QUIET)
    assert fixed_speed == []
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (cfg["layers"], cfg["dropout"], cfg["epochs"]) == (2, 0.1, 10)


def test_many_epochs_of_a_small_text_are_regularised(small_text, fixed_speed):
    plan = sr.plan(text=str(small_text), time_budget=600, measure_s=0.1, **TINY)
    c = plan.config
    assert (c.dropout, c.locked_dropout, c.weight_drop, c.epochs) == (0.5, True, 0.3, None)
    assert plan.auto["epochs"] > auto.EPOCHS_MANY


def test_a_third_layer_that_would_not_fit_in_memory_is_not_timed(small_text, fixed_speed,
                                                                  monkeypatch):
    real = auto.check_training_memory

    def check(cfg, vocab_size=None):
        if cfg.layers == 3:
            raise sr.ScratchRNNError("the model would need 9 GiB")
        real(cfg, vocab_size)

    monkeypatch.setattr(auto, "check_training_memory", check)
    plan = sr.plan(text=str(small_text), time_budget=3600, measure_s=0.1, **TINY)
    assert fixed_speed == [1, 2] and plan.config.layers == 2
    assert [n for n, _ in plan.auto["timed"]] == [1, 2]


def test_a_small_model_for_its_text_stops_at_ten_epochs(tmp_path, fixed_speed):
    """Under 2 parameters a symbol at three layers and more than 10 epochs in the budget:
    `layers` 3, `epochs` 10, and the run is the one those options make with `auto` off, step
    for step."""
    rng = np.random.default_rng(0)
    text = tmp_path / "t.txt"
    text.write_text(" ".join(rng.choice(["the", "cat", "sat", "on", "a", "mat"], 1_700)))
    kw = dict(text=str(text), time_budget=3600, **{**TINY, "batch": 16, "seq_len": 32})
    chosen = sr.train(out=str(tmp_path / "auto"), **kw, **QUIET)
    record = load_checkpoint(chosen.out / "checkpoint.npz").meta["auto"]
    assert record["settings"]["epochs"] == 10 and record["epochs"] == 10
    assert record["settings"]["layers"] == 3 and "enough for the third layer" in record["why"]
    assert "gain nothing past 10, so it stops there" in record["why"]
    assert chosen.model.num_params() / record["train_symbols"] <= auto.PARAMS_PER_CHAR
    given = sr.train(out=str(tmp_path / "given"), auto=False, layers=3, **kw, **QUIET)
    assert chosen.step == given.step == record["steps"]
    a, b = (json.loads((r.out / "config.json").read_text()) for r in (chosen, given))
    assert {**a, "out": "", "auto": None} == {**b, "out": "", "auto": None}
    for k, v in chosen.model.params.items():
        # equal up to float32 rounding: two runs in one process may differ in the last bit
        # (NumPy's reductions follow the arrays' alignment), auto or not
        np.testing.assert_allclose(v, given.model.params[k], rtol=1e-5, atol=1e-6)


def test_a_real_measurement_on_the_default_model(small_text, tmp_path):
    """Unpatched: the default width times, chooses and says an expected loss."""
    said = []
    sr.train(text=str(small_text), out=str(tmp_path / "r"), time_budget=2, progress=False,
             log=said.append, batch=4, seq_len=16)
    meta = load_checkpoint(tmp_path / "r" / "checkpoint.npz").meta
    record = meta["auto"]
    assert [n for n, _ in record["timed"]] == [1, 2, 3] and all(s > 0 for _, s in record["timed"])
    assert record["expected"] is None  # batch 4 is not what the table measured
    assert any(line.startswith("auto chose ") for line in said)


# --- a tampered record ------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(settings={"lr": 1.0}), "unknown key 'lr'"),
    (lambda r: r.update(settings={"layers": -1}), "auto.settings: `layers` must be between 1"),
    (lambda r: r.update(timed=[[0, 0.1]]), "auto.timed[0][0]"),
    (lambda r: r.update(why=7), "auto.why"),
    (lambda r: r.update(expected=["x"]), "auto.expected"),
    (lambda r: r.pop("budget_s"), "lacks 'budget_s'"),
])
def test_a_tampered_record_is_refused(small_text, tmp_path, fixed_speed, change, message):
    sr.train(text=str(small_text), out=str(tmp_path / "r"), time_budget=60, max_steps=2,
             **TINY, **QUIET)
    meta = load_checkpoint(tmp_path / "r" / "checkpoint.npz").meta
    change(meta["auto"])
    with pytest.raises(Invalid, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_meta(meta)


def test_the_readmes_example_runs_as_written(small_text, tmp_path, capsys, monkeypatch):
    """`scratchrnn train --text my.txt --time-budget 10m`, with 3 seconds for 10 minutes."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--text", str(small_text), "--time-budget", "3s", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    chose = next(i for i, line in enumerate(out) if line.startswith("auto chose --layers "))
    assert out[chose - 1].startswith("auto: timing gru 1, 2 and 3 x 256 on this machine")
    assert out[chose + 1].startswith("why: ")
    assert out[chose + 2].startswith("expected validation loss: ")
    assert chose < next(i for i, line in enumerate(out) if line.startswith("training "))
    saved = json.loads((tmp_path / "runs" / "small" / "config.json").read_text())
    assert saved["epochs"] is None and saved["auto"] is True
    said = next(line for line in out if line.startswith("stopped at step"))
    assert "(time_budget)" in said


@pytest.mark.parametrize("budget", [0.01, 3.6e6])  # a hundredth of a second, a thousand hours
def test_extreme_budgets_choose_without_fuss(small_text, budget, monkeypatch):
    asked = []
    monkeypatch.setattr(auto, "measure", lambda cfg, m, s, w, v, b: (
        asked.append(b), (1, 0.01 * cfg.layers, 0.0, ""))[1])
    plan = sr.plan(text=str(small_text), time_budget=budget, measure_s=0.1, **TINY)
    assert all(0 <= b <= auto.MEASURE_S for b in asked) and len(asked) == 3
    assert plan.auto["steps"] == int(budget / 0.01 / plan.config.layers)
    assert plan.config.epochs is None and math.isfinite(plan.auto["epochs"])
    assert (plan.config.weight_drop > 0) == (plan.auto["epochs"] > auto.EPOCHS_MANY)
