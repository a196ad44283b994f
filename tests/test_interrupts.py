"""Ctrl-C and a closed stdout at awkward moments, with real processes: during the imports,
during a long evaluation or sample, twice in a row, and `scratchrnn train | head`. Each ends
promptly with one line, the right exit status, no traceback, and (in training) a checkpoint."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import wait_for

import scratchrnn as sr
from scratchrnn.errors import Interrupted
from scratchrnn.training.signals import Signals

SMALL = ["--hidden", "16", "--batch", "2", "--seq-len", "8", "--quiet", "--max-steps", "100000",
         "--epochs", "100000"]


def cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONUNBUFFERED="1")
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-m", "scratchrnn", *args], env=env,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_import_is_lazy():
    code = ("import sys, scratchrnn as sr; assert 'numpy' not in sys.modules, 'eager'; "
            "import scratchrnn.cli.commands; assert callable(sr.train) and callable(sr.sample) "
            "and callable(sr.evaluate), 'a submodule hides a function'; "
            "assert sorted(sr.__all__) == sorted(set(sr.__all__)); "
            "[getattr(sr, n) for n in sr.__all__]")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def _startup_seconds(env) -> float:
    """How long the bare interpreter takes to start (site included), the slowest of three."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, timeout=60)
        times.append(time.perf_counter() - t0)
    return max(times)


def test_ctrl_c_during_the_imports_is_one_line(tmp_path):
    """SIGINT at several moments while scratchrnn starts (the imports of NumPy and matplotlib
    take a good part of a second): never a traceback; exit 130 and one line. A signal that
    lands while the interpreter itself is still starting (its `site` module, before any
    scratchrnn code runs) is Python's to report, not ours: such a timing is tried again later."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    start = _startup_seconds(env)
    hits, delay = 0, start
    for _ in range(12):
        proc = cli("sample", str(tmp_path / "nothing"))
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        delay += start / 4
        if "init_import_site" in err:  # still inside the interpreter's own start-up
            continue
        assert "Traceback" not in err, (delay, err)
        if proc.returncode == 130:
            assert err == "scratchrnn: interrupted\n", err
            hits += 1
            if hits == 3:
                break
        else:  # finished (one error line) before the signal
            assert proc.returncode == 1 and err.count("\n") == 1, (proc.returncode, err)
            break
    assert hits, "no SIGINT landed while the imports ran"


def test_ctrl_c_during_a_huge_sample_stops_and_saves(small_text, tmp_path):
    out = tmp_path / "run"
    proc = cli("train", "--text", str(small_text), "--out", str(out), "--eval-every", "4",
               "--sample-length", "10000000", *SMALL)
    wait_for(out / "best.npz", proc)  # saved before the sample starts
    time.sleep(0.5)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert time.time() - t0 < 10, "the sample went on after Ctrl-C"
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert "interrupted by SIGINT at step 4" in stdout
    assert sr.load_checkpoint(out).meta["step"] == 4


def test_ctrl_c_during_evaluation_stops_and_saves(small_text, tmp_path, monkeypatch):
    """A real SIGINT while the validation runs: the evaluation stops at its next window, the
    run saves the step without a validation loss, and resumes."""
    import scratchrnn.training.loop as train_module  # noqa: F401  (the function; the module is below)

    module = sys.modules["scratchrnn.training.loop"]
    real = module.evaluate
    windows = []

    def evaluate(*args, should_stop=None, **kw):
        def stop():
            windows.append(1)
            if len(windows) == 2:
                signal.raise_signal(signal.SIGINT)
            return should_stop()
        return real(*args, should_stop=stop, **kw)

    monkeypatch.setattr(module, "evaluate", evaluate)
    cfg = sr.TrainConfig(text=str(small_text), out=str(tmp_path / "r"), hidden=16, batch=2,
                         seq_len=4, max_steps=50, eval_every=5, sample_length=0)
    result = sr.train(cfg, progress=False)
    assert result.stopped == "SIGINT" and result.step == 5 and len(windows) == 2
    assert "val_loss" not in result.history[-1]
    assert sr.load_checkpoint(tmp_path / "r").meta["step"] == 5
    monkeypatch.setattr(module, "evaluate", real)
    assert sr.train(resume=tmp_path / "r", max_steps=10, progress=False).step == 10


def test_evaluate_stops_when_asked():
    model = sr.CharRNN(10, 8, "gru")
    data = np.random.default_rng(0).integers(0, 10, 1000)
    asked = []
    assert sr.evaluate(model, data, 10, should_stop=lambda: asked.append(1) or True) is None
    assert len(asked) == 1
    assert np.isfinite(sr.evaluate(model, data, 10, should_stop=lambda: False))


def test_a_second_signal_stops_at_once():
    with Signals() as signals:
        signal.raise_signal(signal.SIGINT)
        assert signals.received == "SIGINT"
        with pytest.raises(Interrupted) as info:
            signal.raise_signal(signal.SIGTERM)
    assert info.value.exit_code == 143


def test_closed_stdout_saves_and_says_so(small_text, tmp_path):
    """`scratchrnn train | head -1`: the reader goes away; training must not end with exit 0
    and nothing saved, nor with a traceback."""
    out = tmp_path / "run"
    proc = cli("train", "--text", str(small_text), "--out", str(out), "--eval-every", "3",
               "--sample-length", "30", *SMALL)
    first = proc.stdout.readline()
    assert first.startswith("training ")
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 141, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "stdout was closed" in lines[0], lines
    assert str(out / "checkpoint.npz") in lines[0]
    saved = sr.load_checkpoint(out)
    assert f"at step {saved.meta['step']};" in lines[0]


def test_metrics_and_results_are_strict_json(small_text, tmp_path):
    """A run whose updates all fail (--on-nan skip) logs null, never NaN, in metrics.jsonl."""
    import json

    cfg = sr.TrainConfig(text=str(small_text), out=str(tmp_path / "r"), hidden=8, batch=2,
                         seq_len=8, max_steps=4, eval_every=2, log_every=1, sample_length=0,
                         on_nan="skip", lr=1e38, clip_value=0, warmup=0, init_std=1e30)
    sr.train(cfg, progress=False)

    def refuse(constant):
        raise AssertionError(f"{constant} in a JSON file")

    for name in ("metrics.jsonl", "config.json"):
        for line in (tmp_path / "r" / name).read_text().splitlines():
            if line.strip():
                json.loads(line if name.endswith("jsonl") else
                           (tmp_path / "r" / name).read_text(), parse_constant=refuse)
    from scratchrnn.safejson import dumps
    assert dumps({"a": float("nan"), "b": [float("inf"), 1.5]}) == '{"a": null, "b": [null, 1.5]}'


def test_ctrl_c_during_a_long_sample_command(small_text, tmp_path):
    out = tmp_path / "run"
    assert sr.train(sr.TrainConfig(text=str(small_text), out=str(out), hidden=8, batch=2,
                                   seq_len=8, max_steps=2, eval_every=2, sample_length=0),
                    progress=False).step == 2
    proc = cli("sample", str(out), "--length", "10000000", stdout=subprocess.DEVNULL)
    time.sleep(2.5)  # past the imports, well inside the 10^7 characters
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.time() - t0 < 5 and proc.returncode == 130
    assert err == "scratchrnn: interrupted\n"
