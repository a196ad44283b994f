"""Nothing lost, nothing crashes: real processes killed at random moments, signals, diverging
runs, exact resume for every cell and depth, fuzzed loaders, and numerically hostile logits.
Longer versions of the kill loop and the fuzzers: scripts/kill_loop.py, scripts/fuzz.py."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import wait_for
from hypothesis import given
from hypothesis import strategies as st

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.data.text import decode
from scratchrnn.nn.layers import softmax, softmax_xent_forward

TRAIN = ["--hidden", "32", "--batch", "4", "--seq-len", "16", "--sample-length", "0",
         "--quiet", "--log-every", "1"]


def cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "scratchrnn", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_at_random_moments_never_loses_the_run(small_text, tmp_path):
    """Kill a real training process (which checkpoints every 2 steps, so many kills land in
    the middle of a write) again and again; every time both checkpoints must load, and in the
    end the run resumes."""
    out = tmp_path / "run"
    base = ["train", "--text", str(small_text), "--out", str(out), "--eval-every", "2",
            "--max-steps", "100000", "--epochs", "100000", *TRAIN]
    proc = cli(*base)
    wait_for(out / "best.npz", proc)  # written after checkpoint.npz
    proc.kill()
    proc.wait()
    rnd, steps = random.Random(0), []
    for _ in range(int(os.environ.get("SCRATCHRNN_KILLS", 8))):
        proc = cli("train", "--resume", str(out), "--max-steps", "100000", "--eval-every", "2",
                   "--quiet")
        # Count from the first line the loop prints, not from the start: on a loaded machine
        # the imports alone can outlast a fixed delay, and no kill would land in training.
        assert proc.stdout.readline().startswith("training"), proc.communicate()
        time.sleep(rnd.uniform(0.1, 1.0))
        proc.kill()
        proc.communicate()
        steps.append(sr.load_checkpoint(out).meta["step"])
        sr.load_checkpoint(out / "best.npz")
    assert steps[-1] > steps[0], "the run should make progress between kills"
    proc = cli("train", "--resume", str(out), "--max-steps", str(steps[-1] + 3), "--quiet")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert sr.load_checkpoint(out).meta["step"] == steps[-1] + 3
    assert not list(out.glob(".*.tmp")), "stale temp files are cleaned up on resume"


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_save_and_exit_nonzero(sig, code, small_text, tmp_path):
    out = tmp_path / "run"
    proc = cli("train", "--text", str(small_text), "--out", str(out), "--eval-every", "5",
               "--max-steps", "100000", *TRAIN)
    wait_for(out / "checkpoint.npz", proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"interrupted by {sig.name}" in stdout and str(out / "checkpoint.npz") in stdout
    saved = sr.load_checkpoint(out)
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert saved.meta["step"] >= 5 and f'"step": {saved.meta["step"]}' in rows[-1]
    assert main(["train", "--resume", str(out), "--max-steps", str(saved.meta["step"] + 2),
                 "--quiet"]) == 0


def test_on_nan_skip_keeps_training(small_text, tmp_path, capsys):
    cfg = sr.TrainConfig(text=str(small_text), out=str(tmp_path / "r"), hidden=16, batch=2,
                         seq_len=8, max_steps=6, eval_every=6, sample_length=0,
                         on_nan="skip", lr=1e38, clip_value=0, warmup=0)
    result = sr.train(cfg, progress=False)
    assert result.step == 6
    assert "update skipped" in capsys.readouterr().err


def test_resume_after_divergence_with_a_lower_lr(small_text, tmp_path):
    out = tmp_path / "r"
    common = ["--text", str(small_text), "--out", str(out), "--hidden", "16", "--batch", "2",
              "--seq-len", "8", "--eval-every", "4", "--sample-length", "0", "--quiet"]
    assert main(["train", *common, "--max-steps", "4"]) == 0
    before = sr.load_checkpoint(out).model.params
    assert main(["train", "--resume", str(out), "--max-steps", "12", "--lr", "1e38",
                 "--warmup", "0", "--clip-value", "0", "--quiet"]) == 1
    kept = sr.load_checkpoint(out)
    assert kept.meta["step"] == 4
    for k, v in before.items():
        assert np.array_equal(v, kept.model.params[k])
    assert main(["train", "--resume", str(out), "--max-steps", "12", "--lr", "1e-3",
                 "--quiet"]) == 0
    assert sr.load_checkpoint(out).meta["step"] == 12


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers,dropout", [(1, 0.0), (3, 0.25)])
def test_exact_resume_every_cell_and_depth(cell, layers, dropout, small_text, tmp_path):
    def cfg(name, steps):
        return sr.TrainConfig(text=str(small_text), out=str(tmp_path / name), cell=cell,
                              layers=layers, dropout=dropout, hidden=16, batch=3, seq_len=12,
                              epochs=None, max_steps=steps, schedule="constant",
                              eval_every=7, log_every=3, sample_length=0)

    full = sr.train(cfg("full", 30), progress=False)
    sr.train(cfg("part", 13), progress=False)
    part = sr.train(resume=tmp_path / "part", max_steps=30, progress=False)
    for k, v in full.model.params.items():
        assert np.array_equal(v, part.model.params[k]), k
    same_steps = lambda r: {h["step"]: (h["train_loss"], h.get("val_loss"))
                            for h in r.history if h["step"] != 13}
    assert same_steps(full) == same_steps(part)


@given(st.binary(max_size=2000))
def test_checkpoint_loader_refuses_any_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("fuzz") / "x.npz"
    path.write_bytes(raw)
    with pytest.raises(sr.ScratchRNNError):
        sr.load_checkpoint(path)


@pytest.mark.filterwarnings("ignore:text is not valid UTF-8")
@given(st.binary(max_size=500))
def test_decoder_never_crashes(raw):
    try:
        text = decode(raw)
    except sr.ScratchRNNError:
        assert b"\x00" in raw  # only binary files are refused
    else:
        out = sr.clean(text, sr.Vocab.ascii())
        assert set(out) <= set(sr.Vocab.ascii().chars)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_logsumexp_stay_finite(dtype):
    logits = np.array([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4, -1e4, -1e4]], dtype)
    p = softmax(logits)
    assert np.isfinite(p).all() and np.allclose(p.sum(1), 1)
    loss, _ = softmax_xent_forward(logits.copy(), np.array([1, 2]))
    assert np.isfinite(loss) and loss == pytest.approx((2e4 + np.log1p(np.exp(-1.0)) +
                                                       np.log(4)) / 2, rel=1e-6)
