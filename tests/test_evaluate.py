"""evaluate(): parallel streams give the loss of reading the text once, in order."""

import json

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.training.evaluation import chars_read

V = 20
TRAIN = ["--hidden", "16", "--batch", "2", "--seq-len", "8", "--max-steps", "4",
         "--eval-every", "4", "--sample-length", "0", "--quiet"]
DATA = np.random.default_rng(0).integers(0, V, 600)


def _model(cell):
    m = sr.CharRNN(V, 16, cell, 2, dtype="float64", seed=1)
    for p in m.params.values():
        p *= 3.0  # a state that matters: the zero start state then costs something to forget
    return m


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_two_streams_with_a_whole_burn_in_are_the_text_read_in_order(cell):
    # stream 1 reads all of stream 0 first, so it starts from the state the text has there, and
    # its first character, which no window of its own predicts, is scored from that state too
    m = _model(cell)
    whole = sr.evaluate(m, DATA, 7, batch=1)
    L = len(DATA) // 2
    assert sr.evaluate(m, DATA, 7, batch=2, burn_in=L) == pytest.approx(whole, rel=1e-12)
    assert sr.evaluate(m, DATA, 7, batch=2, burn_in=10 * L) == pytest.approx(whole, rel=1e-12)
    assert abs(sr.evaluate(m, DATA, 7, batch=2, burn_in=0) - whole) > 1e-4  # the old way


@pytest.mark.parametrize("batch", [3, 5, 8])
def test_the_default_burn_in_recovers_the_loss_of_the_whole_text(batch):
    m = _model("gru")
    data = DATA[:batch * (len(DATA) // batch)]  # the streams use B * L characters
    whole = sr.evaluate(m, data, 7, batch=1)
    assert sr.evaluate(m, data, 7, batch=batch) == pytest.approx(whole, rel=1e-9)
    assert abs(sr.evaluate(m, data, 7, batch=batch, burn_in=0) - whole) > 1e-4
    assert abs(sr.evaluate(m, data, 7, batch=batch, burn_in=2) - whole) > 1e-6


def test_the_burn_in_asks_whether_to_stop():
    asked = []
    model = _model("gru")
    stop_at = lambda n: lambda: asked.append(1) or len(asked) >= n  # noqa: E731
    assert sr.evaluate(model, DATA, 7, batch=4, should_stop=stop_at(1)) is None
    assert len(asked) == 1  # before the first burn-in window, not after the burn-in
    asked.clear()
    assert sr.evaluate(model, DATA, 7, batch=4, should_stop=stop_at(10**9)) is not None
    # streams of L = 150: the burn-in (all of the previous stream) reads its first 149
    # characters in windows of 7, unscored, then its last in a window of its own, scored
    # (it predicts the stream's first character), and each stream its own 149 inputs
    windows = -(-(len(DATA) // 4 - 1) // 7)
    assert len(asked) == windows + 1 + windows


def test_chars_read_is_what_the_streams_read():
    # 4,001 characters are two streams of 2,000: the last character is never read
    m, data = _model("gru"), np.random.default_rng(1).integers(0, V, 4001)
    assert chars_read(4001) == 4000 and chars_read(50) == 50
    assert sr.evaluate(m, data, 50) == sr.evaluate(m, data[:chars_read(4001)], 50)
    assert sr.evaluate(m, data, 50) != sr.evaluate(m, data[:4000 - 2], 50)


@pytest.fixture
def capped_run(small_text, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--text", str(small_text), "--out", str(out), "--val-chars", "20",
                 "--test-frac", "0.1", *TRAIN]) == 0
    return out


def test_eval_reports_the_characters_it_scored(capped_run, capsys):
    capsys.readouterr()
    assert main(["eval", str(capped_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    ckpt = sr.load_checkpoint(capped_run)
    cfg = ckpt.config
    val = sr.load_corpus(cfg["text"], val_frac=cfg["val_frac"], test_frac=cfg["test_frac"]).val
    assert result["chars"] == 20 and len(val) > 20
    assert result["nats_per_char"] == sr.evaluate(ckpt.model, val[:20], 8)
    assert main(["eval", str(capped_run)]) == 0
    assert f"over 20 chars of the split's {len(val):,} (the run's --val-chars)" in \
        capsys.readouterr().out
    assert main(["eval", str(capped_run), "--split", "test", "--json"]) == 0  # not capped
    result = json.loads(capsys.readouterr().out)
    test = sr.load_corpus(cfg["text"], val_frac=cfg["val_frac"], test_frac=cfg["test_frac"]).test
    assert result["chars"] == chars_read(len(test)) == len(test) > 20


def test_an_imported_run_is_never_scored_on_the_book(small_text, tmp_path, capsys):
    # the book is at hand (cached), so nothing but the record stops a quiet wrong answer
    from scratchrnn.data.corpus import cache_dir

    run, model, imported = tmp_path / "run", tmp_path / "m.safetensors", tmp_path / "imported"
    assert main(["train", "--text", str(small_text), "--out", str(run), *TRAIN]) == 0
    assert main(["export", str(run), "--format", "torch", "--out", str(model)]) == 0
    assert main(["import", str(model), "--out", str(imported)]) == 0
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / "pg98.txt").write_text(small_text.read_text() * 3)
    capsys.readouterr()
    for argv in (["eval", str(imported)], ["eval", str(imported), "--split", "test"],
                 ["visualize", str(imported), "--out", str(tmp_path / "p.html")]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err == (f"scratchrnn: error: {imported / 'checkpoint.npz'} was imported and "
                       "records no text; pass --text FILE")
    assert not (tmp_path / "p.html").exists()
    assert main(["eval", str(imported), "--text", str(small_text)]) == 0
    assert main(["visualize", str(imported), "--text", str(small_text), "--out",
                 str(tmp_path / "p.html")]) == 0
    assert "none recorded (imported from m)" in (tmp_path / "p.html").read_text()


def test_a_split_the_run_never_had_is_named(small_text, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--text", str(small_text), "--out", str(run), "--test-frac", "0",
                 *TRAIN]) == 0
    capsys.readouterr()
    for argv in (["eval", str(run), "--split", "test"],
                 ["visualize", str(run), "--split", "test", "--out", str(tmp_path / "p.html")]):
        assert main(argv) == 1
        assert capsys.readouterr().err.strip() == (
            "scratchrnn: error: there is no test split: the run was trained with --test-frac "
            "0; pick another --split or pass --text FILE")

