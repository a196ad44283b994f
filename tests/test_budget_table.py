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
    (682_000, "30m", "today"),  # 60 epochs at 1.0 parameter a symbol: stopped at 10
])
def test_the_pick_is_the_rules(chars, budget, pick):
    got = {"default": row("default", 1.0, 0.07, chars=chars, budget=budget),
           "gru1x256": row("gru1x256", 1.0, 0.035, chars=chars, budget=budget)}
    assert bt.rule_pick(budget, got) == pick
    layers = auto.rule(bt.seconds(budget), chars, 1600, {1: 0.035, 2: 0.07}, 0.0, 500,
                       parameters={1: 296_032, 2: 690_272})[0]
    assert (layers == 1) == (pick == "gru1x256")


def test_no_pick_without_the_step_cost_that_decides():
    assert bt.rule_pick("2m", {"default": row("default", 1.0, 0.07, chars=4_000_000)}) is None
    assert bt.rule_pick("10m", {"default": row("default", 1.0, 0.07)}) == "today"  # 13.7 epochs
    assert bt.rule_pick("2m", {"gru1x256": row("gru1x256", 1.0, 0.035)}) is None
    small = row("small-reg", 2.2, 0.08, budget="30m", chars=146_107)  # 4.7 parameters a symbol
    assert bt.rule_pick("30m", {"small-reg": small}) == "small-reg"
    book = row("small-reg", 1.3, 0.08, budget="30m", chars=682_000)  # 53 epochs, but 1.0
    assert bt.rule_pick("30m", {"small-reg": book}) == "today"
    assert bt.rule_pick("30m", {}) is None
    assert bt.rule_pick("30m", {}, book) == "today"  # the step cost of the text's other runs
    rows = [row("default", 1.2, 0.07, budget="10m"), row("gru2x384", 1.1, 0.14, budget="30m")]
    assert bt.two_layers_elsewhere(rows, "c") is rows[0]
    assert bt.two_layers_elsewhere(rows, "d") is None


def test_today_is_a_run_its_ten_epochs_stopped_or_the_same_run():
    stopped = row("today", 2.3, 0.06, steps=910, budget="10m", chars=146_107, wall_s=61.0)
    stopped["planned_steps"] = 9000
    default = row("default", 2.29, 0.06, steps=1489, chars=146_107)
    assert bt.today_of([stopped], "c", "2m", default) is stopped
    assert bt.today_of([stopped], "c", "1m", None) is None  # it ran longer than a minute
    short = row("default", 1.3, 0.07, steps=1300, chars=682_000)  # 3 epochs: the budget stopped it
    assert bt.today_of([], "c", "2m", short) is short


def test_the_table_says_pick_and_gaps():
    rows = [row("default", 1.50, 0.07, chars=4_000_000),
            row("gru1x256", 1.45, 0.035, chars=4_000_000),
            row("today", 2.3, 0.06, corpus="d", budget="10m")]
    lines = bt.table(rows).splitlines()
    assert lines[0].startswith("| corpus | budget | default | today | gru1x256 | best searched")
    assert lines[2] == ("| c | 2m | 1.5000 (1,000) | = default | 1.4500 (1,000) | gru1x256 | "
                        "gru1x256 | +0.0000 | -0.0500 |")
