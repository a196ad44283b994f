"""`scratchrnn train --dry-run` and `sr.plan`: what a run would be, with its step time measured
here, and nothing trained or written (the refusals it shares with training are rows of
test_bad_inputs.py's table)."""

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_file

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.nn.model import param_count
from scratchrnn.store.config import model_config, training_memory
from scratchrnn.training import timing

SMALL = dict(hidden=16, layers=1, batch=4, seq_len=16, eval_every=50, sample_length=0)


def tree(*folders: Path) -> dict:
    """Every file and folder under `folders`, with each file's size, time and content."""
    found = {}
    for top in folders:
        for path in [top, *sorted(top.rglob("*"))] if top.exists() else []:
            st = os.lstat(path)
            body = path.read_bytes() if path.is_file() else None
            found[path] = (st.st_mode, st.st_size, st.st_mtime_ns, body)
    return found


def scratch_folders() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("scratchrnn-plan-")}


def test_plan_is_the_run_train_would_make(small_text, tmp_path):
    cfg = sr.TrainConfig(text=str(small_text), out=str(tmp_path / "run"), max_steps=7, **SMALL)
    plan = sr.plan(cfg, measure_s=0.5)
    assert not (tmp_path / "run").exists()
    assert "plan" in sr.__all__ and "Plan" in sr.__all__
    result = sr.train(cfg, progress=False, log=lambda *a: None)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert plan.config.to_dict() == saved  # `vocab` auto resolved as the run records it
    assert plan.vocab_size == len(result.vocab)
    assert plan.parameters == result.model.num_params()
    assert (plan.total_steps, plan.steps_left, plan.step) == (result.step, 7, 0)
    corpus = sr.load_corpus(small_text, saved["vocab"])
    assert (plan.train_symbols, plan.val_symbols, plan.test_symbols) == (
        len(corpus.train), len(corpus.val), len(corpus.test))
    assert plan.windows_per_epoch == (len(corpus.train) // 4 - 1) // 16
    assert plan.memory == training_memory(plan.config, plan.vocab_size)
    assert plan.memory_bytes == sum(plan.memory.values()) > 0


def test_steps_speed_and_budget(small_text):
    plan = sr.plan(sr.TrainConfig(text=str(small_text), epochs=3, time_budget="2h", **SMALL),
                   measure_s=0.5)
    assert plan.total_steps == plan.steps_left == 3 * plan.windows_per_epoch
    assert 1 <= plan.timed_steps <= timing.MAX_TIMED
    for value in (plan.step_s, plan.chars_per_s, plan.expected_s):
        assert math.isfinite(value) and value > 0
    assert plan.chars_per_s == pytest.approx(4 * 16 / plan.step_s)
    # validated every 50 steps and where the run stops: 50, 100, and there
    assert plan.total_steps % 50 and plan.validations == plan.total_steps // 50 + 1
    assert math.isfinite(plan.validation_s) and plan.validation_s > 0
    assert plan.expected_s == pytest.approx(  # the budget does not end it
        plan.steps_left * plan.step_s + plan.validations * plan.validation_s)
    assert plan.budget_steps == int(7200 / (plan.step_s + plan.validation_s / 50))
    short = sr.plan(sr.TrainConfig(text=str(small_text), epochs=3, time_budget=0.01,
                                   val_frac=0, **SMALL), measure_s=0.1)
    assert (short.validation_s, short.validations) == (0, 0)  # no split to validate
    assert short.budget_steps == int(0.01 / short.step_s) < short.steps_left
    assert short.expected_s == 0.01
    cut = sr.plan(sr.TrainConfig(text=str(small_text), epochs=3, time_budget=0.01, **SMALL),
                  measure_s=0.1)  # the budget stops it: validations up to there, one after
    n = cut.budget_steps
    assert n < cut.steps_left and cut.validations == n // 50 + (n % 50 > 0)
    assert cut.expected_s == pytest.approx(0.01 + cut.validation_s)
    open_ended = sr.plan(sr.TrainConfig(text=str(small_text), epochs=None, **SMALL),
                         measure_s=0.1)
    assert open_ended.total_steps is None and open_ended.expected_s is None


def test_measuring_is_bounded(small_text, monkeypatch):
    """Every step looks like a second: one warm-up step, then as many as fit in the budget,
    then one validation window (more only while they fit too)."""
    clock = iter(range(0, 10_000))
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(clock)))
    cfg = sr.TrainConfig(text=str(small_text), **SMALL)
    plan = sr.plan(cfg, measure_s=4.0)
    assert (plan.timed_steps, plan.step_s) == (3, 1.0)  # 1 s warm-up + 3 x 1 s
    assert next(clock) == 2 * (1 + 3 + 1)  # and one validation window: 5 s in all
    slow = sr.plan(cfg, measure_s=0.5)  # the warm-up step alone is over the budget
    assert (slow.timed_steps, slow.step_s) == (0, 1.0)
    assert "the warm-up step alone" in "\n".join(slow.lines())


def test_cli_dry_run_says_the_plan_and_writes_nothing(tmp_path, capsys):
    text = shared_file("onegin_ru.txt")
    before = tree(tmp_path, Path(os.environ["SCRATCHRNN_HOME"]))
    temps = scratch_folders()
    assert main(["train", "--text", str(text), "--hidden", "32", "--layers", "1",
                 "--max-steps", "30", "--time-budget", "10m", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert tree(tmp_path, Path(os.environ["SCRATCHRNN_HOME"])) == before  # no runs/ folder
    assert scratch_folders() == temps
    lines = out.splitlines()
    plan = sr.plan(sr.TrainConfig(text=str(text), hidden=32, layers=1, max_steps=30,
                                  time_budget=600), measure_s=0.1)
    assert plan.config.vocab == "unicode"  # auto read the text to choose
    model = model_config(plan.config, plan.vocab_size)
    assert f"{param_count(model)[0]:,} parameters" in lines[1]
    assert f"vocabulary unicode: {plan.vocab_size:,} symbols" in out
    assert (f"corpus onegin_ru: {plan.train_symbols:,} train / {plan.val_symbols:,} val / "
            f"{plan.test_symbols:,} test symbols") in lines
    assert any(line.startswith("memory: about ") for line in lines)
    assert "it stops at step 30 (--max-steps); 30 steps to go" in out
    assert "--time-budget 10m buys about " in out and "the run ends before the budget" in out
    assert "steps timed after a warm-up step" in out
    assert "`" not in out  # parameters named as flags


@pytest.fixture
def run(tmp_path, small_text):
    out = tmp_path / "run"
    sr.train(sr.TrainConfig(text=str(small_text), out=str(out), max_steps=4, **SMALL),
             progress=False, log=lambda *a: None)
    return out


def test_resume_plans_the_steps_left(run, tmp_path, capsys):
    before = tree(tmp_path)
    plan = sr.plan(resume=run, max_steps=10, measure_s=0.1)
    assert (plan.resumed, plan.step, plan.total_steps, plan.steps_left) == (True, 4, 10, 6)
    assert plan.out == str(run)
    assert main(["train", "--resume", str(run), "--max-steps", "10", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "resumed at step 4, it stops at step 10 (--max-steps); 6 steps to go" in out
    assert main(["train", "--resume", str(run), "--dry-run"]) == 0
    assert f"{run} is already finished at step 4; raise --max-steps" in capsys.readouterr().out
    assert tree(tmp_path) == before  # no lock, no marker, checkpoint and metrics untouched


def test_a_large_corpus_is_prepared_out_of_the_run_folder(small_text, tmp_path, monkeypatch):
    """Training prepares a corpus above MEMMAP_BYTES in its run folder; a plan in a temporary
    folder it removes, and it reads the one a run prepared when it matches."""
    monkeypatch.setattr("scratchrnn.data.corpus.MEMMAP_BYTES", 100)
    temps = scratch_folders()
    out = tmp_path / "run"
    plan = sr.plan(sr.TrainConfig(text=str(small_text), out=str(out), max_steps=2, **SMALL),
                   measure_s=0.1)
    assert not out.exists() and scratch_folders() == temps
    sr.train(sr.TrainConfig(text=str(small_text), out=str(out), max_steps=2, **SMALL),
             progress=False, log=lambda *a: None)
    assert (out / "corpus.u8").is_file()
    before = tree(out)
    again = sr.plan(resume=out, max_steps=4, measure_s=0.1)
    assert tree(out) == before
    assert (again.train_symbols, again.steps_left) == (plan.train_symbols, 2)


def test_measured_windows_are_the_runs_own(small_text, monkeypatch):
    """The timed steps train on the run's windows from where it stands, reproducibly."""
    seen = []
    real = timing.window
    monkeypatch.setattr(timing, "window",
                        lambda s, j, t: (seen.append(j), real(s, j, t))[1])
    cfg = sr.TrainConfig(text=str(small_text), **SMALL)
    sr.plan(cfg, measure_s=0.2)
    first = list(seen)
    seen.clear()
    sr.plan(cfg, measure_s=0.2)
    assert first[:2] == [0, 1] and seen[:2] == [0, 1]
    n_win = sr.plan(cfg, measure_s=0).windows_per_epoch
    assert all(0 <= j < n_win for j in first)
    assert np.all(np.diff(first[:n_win]) == 1)


def test_a_path_is_said_as_it_is(small_text, tmp_path, capsys):
    """Only the library's own words name parameters as flags: a folder may hold backticks."""
    out = tmp_path / "a`hidden`b"
    assert main(["train", "--text", str(small_text), "--out", str(out), "--hidden", "8",
                 "--max-steps", "2", "--dry-run"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == f"plan for {out} (nothing trained or written)"
    assert "it stops at step 2 (--max-steps)" in said[7] and not out.exists()


def test_json_is_the_plan(small_text, capsys):
    assert main(["train", "--text", str(small_text), "--hidden", "8", "--epochs", "2",
                 "--dry-run", "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    plan = sr.plan(sr.TrainConfig(text=str(small_text), hidden=8, epochs=2), measure_s=0.1)
    assert said["config"] == plan.config.to_dict()
    assert said["memory_bytes"] == plan.memory_bytes and said["memory"] == plan.memory
    for key in ("parameters", "train_symbols", "windows_per_epoch", "total_steps",
                "validations"):
        assert said[key] == getattr(plan, key)
    assert said["step_s"] > 0 and math.isfinite(said["expected_s"])


def test_a_plan_is_reproducible_but_for_its_clock(small_text):
    cfg = sr.TrainConfig(text=str(small_text), time_budget="1m", **SMALL)
    clock = ("timed_steps", "step_s", "chars_per_s", "blas", "validation_s", "validations",
             "expected_s", "budget_steps")
    first, again = (sr.plan(cfg, measure_s=0.1).to_dict() for _ in range(2))
    assert {k: v for k, v in first.items() if k not in clock + ("auto",)} == {
        k: v for k, v in again.items() if k not in clock + ("auto",)}
    steady = ("budget_s", "train_symbols", "settings", "trigram", "expected")  # auto's
    assert {k: first["auto"][k] for k in steady} == {k: again["auto"][k] for k in steady}
