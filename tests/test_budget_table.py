"""benchmarks/budget_table.py's arithmetic: repeats averaged, the rule's pick per cell from the
step costs measured there, and what `--time-budget` alone did before auto (`today`)."""

import importlib.util
from pathlib import Path

import pytest

from scratchrnn.training import auto

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "budget_table.py"
spec = importlib.util.spec_from_file_location("budget_table", SCRIPT)
bt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bt)


def row(recipe, val, step_s, steps=1000, corpus="c", budget="2m", chars=1_000_000, **kw):
    return {"corpus": corpus, "budget": budget, "recipe": recipe, "val": val, "test": val,
            "step_s": step_s, "steps": steps, "planned_steps": steps, "wall_s": 120.0,
            "train_symbols": chars,
            "parameters": 296_032 if recipe == "gru1x256" else 690_272, **kw}


def test_repeats_are_averaged():
    got = bt.merged([row("default", 1.0, 0.06, 1000), row("default", 1.2, 0.08, 1200),
                     row("gru1x256", 1.5, 0.03)])
    default = next(r for r in got if r["recipe"] == "default")
    assert default["val"] == pytest.approx(1.1) and default["step_s"] == pytest.approx(0.07)
    assert (default["steps"], default["runs"]) == (1100, 2) and len(got) == 2


@pytest.mark.parametrize("chars, budget, pick", [
    (4_000_000, "2m", "gru1x256"),  # 1,714 steps, 0.7 epochs: one layer
    (600_000, "2m", "default"),  # 4.6 epochs: two
    (100_000, "10m", "small-reg"),  # 137 epochs: regularised
    (682_000, "30m", "deep10"),  # three layers' 42 epochs at 1.6 parameters a symbol: 10
    (682_000, "5m", "today"),  # two layers' 10.05 epochs: 10; three layers' 7.0: too few
])
def test_the_pick_is_the_rules(chars, budget, pick):
    got = {"default": row("default", 1.0, 0.07, chars=chars, budget=budget),
           "gru1x256": row("gru1x256", 1.0, 0.035, chars=chars, budget=budget),
           "deep10": row("deep10", 1.0, 0.1, chars=chars, budget=budget,
                         parameters=1_084_512)}
    assert bt.rule_pick(budget, got) == pick
    layers = auto.rule(bt.seconds(budget), chars, 1600, {1: 0.035, 2: 0.07, 3: 0.1}, 0.0, 500,
                       parameters={1: 296_032, 2: 690_272, 3: 1_084_512})[0]
    assert layers == {"gru1x256": 1, "deep10": 3}.get(pick, 2)


def test_no_pick_without_the_step_cost_that_decides():
    assert bt.rule_pick("2m", {"default": row("default", 1.0, 0.07, chars=4_000_000)}) is None
    # 13.7 epochs at two layers: a third might make enough of them, and was not timed
    assert bt.rule_pick("10m", {"default": row("default", 1.0, 0.07)}) is None
    slow = row("deep10", 1.0, 0.14, parameters=1_084_512)  # 6.9 epochs: too few
    assert bt.rule_pick("10m", {"default": row("default", 1.0, 0.07)}, three=slow) == "today"
    assert bt.rule_pick("2m", {"gru1x256": row("gru1x256", 1.0, 0.035)}) is None
    small = row("small-reg", 2.2, 0.08, budget="30m", chars=146_107)  # 4.7 parameters a symbol
    assert bt.rule_pick("30m", {"small-reg": small}) == "small-reg"
    book = row("small-reg", 1.3, 0.08, budget="30m", chars=682_000)  # 53 epochs, but 1.0
    slower = {**slow, "step_s": 0.6}  # 7.0 epochs in 30 minutes: too few
    assert bt.rule_pick("30m", {"small-reg": book, "deep10": slower}) == "today"
    assert bt.rule_pick("30m", {}) is None
    assert bt.rule_pick("30m", {}, book, slower) == "today"  # the step costs of other budgets
    rows = [row("default", 1.2, 0.07, budget="10m"), row("gru2x384", 1.1, 0.14, budget="30m")]
    assert bt.other_budget(rows, "c") is rows[0]
    assert bt.other_budget(rows, "d") is None
    assert bt.other_budget(rows, "c", "gru2x384") is rows[1]


def test_a_third_layer_is_picked_only_where_measured():
    """The book at 10 minutes: three layers pass over it more than 8 times (auto.rule);
    unmeasured, the pick is unknown; where the rule leaves the third layer even timed as fast
    as two, it is known."""
    book = {"default": row("default", 1.24, 0.065, budget="10m", chars=681_844),
            "gru1x256": row("gru1x256", 1.3, 0.035, budget="10m", chars=681_844)}
    deep = row("deep10", 1.22, 0.095, budget="10m", chars=681_844, parameters=1_084_512)
    assert bt.rule_pick("10m", {**book, "deep10": deep}) == "deep10"
    assert bt.rule_pick("30m", book, three=deep) == "deep10"  # its cost from another budget
    assert bt.rule_pick("10m", book) is None
    onegin = {k: {**r, "train_symbols": 146_107} for k, r in book.items()}
    assert bt.rule_pick("10m", onegin) == "small-reg"  # 7.4 parameters a symbol at three
    assert bt.rule_pick("2m", book) == "default"  # two layers' 4.3 epochs: not 8 for three


def test_today_is_a_run_its_ten_epochs_stopped_or_the_same_run():
    stopped = row("today", 2.3, 0.06, steps=910, budget="10m", chars=146_107, wall_s=61.0)
    stopped["planned_steps"] = 9000
    default = row("default", 2.29, 0.06, steps=1489, chars=146_107)
    assert bt.today_of([stopped], "c", "2m", default) is stopped
    assert bt.today_of([stopped], "c", "1m", None) is None  # it ran longer than a minute
    short = row("default", 1.3, 0.07, steps=1300, chars=682_000)  # 3 epochs: the budget stopped it
    assert bt.today_of([], "c", "2m", short) is short


def test_a_run_its_epochs_stopped_serves_a_longer_budget():
    deep = row("deep10", 1.22, 0.095, steps=4260, budget="10m", chars=681_844, wall_s=480.0)
    deep["planned_steps"] = 6200
    cut = row("deep10", 1.39, 0.095, steps=5900, corpus="d", budget="10m", wall_s=600.0)
    rows = [deep, cut, row("default", 1.24, 0.065, budget="30m", chars=681_844)]
    assert bt.cell(rows, "c", "30m")["deep10"] is deep
    assert "deep10" not in bt.cell(rows, "c", "5m")  # it took 8 minutes
    assert "deep10" not in bt.cell(rows, "d", "30m")  # the budget stopped it, not its epochs


def test_the_table_says_pick_and_gaps():
    rows = [row("default", 1.50, 0.07, chars=4_000_000),
            row("gru1x256", 1.45, 0.035, chars=4_000_000),
            row("today", 2.3, 0.06, corpus="d", budget="10m")]
    lines = bt.table(rows).splitlines()
    assert lines[0].startswith("| corpus | budget | default | today | gru1x256 | best searched")
    assert lines[2] == ("| c | 2m | 1.5000 (1,000) | = default | 1.4500 (1,000) | gru1x256 | "
                        "gru1x256 | +0.0000 | -0.0500 |")
