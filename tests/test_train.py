"""Learning, resuming, sampling and evaluating, through the API and the CLI in-process."""

import json
import math
import signal

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.nn import optim
from scratchrnn.nn.layers import softmax
from scratchrnn.sampling.sampler import filter_probs

FAST = dict(hidden=32, batch=4, seq_len=16, eval_every=20, log_every=5, sample_length=20)


def test_initial_loss_is_ln_v(rng):
    for cell in ("rnn", "lstm", "gru"):
        model = sr.CharRNN(96, 64, cell, seed=0, init_std=0.01)
        x, y = rng.integers(0, 96, (8, 50)), rng.integers(0, 96, (8, 50))
        loss, _, _ = model.loss_and_grads(x, y)
        assert loss == pytest.approx(math.log(96), abs=0.01)
        default = sr.CharRNN(96, 64, cell, seed=0)  # PyTorch-style init: close, not exact
        assert default.loss(x, y)[0] == pytest.approx(math.log(96), abs=0.2)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_overfits_a_tiny_corpus(cell, tmp_path):
    text = tmp_path / "tiny.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 4)
    result = sr.train(sr.TrainConfig(text=str(text), out=str(tmp_path / "run"), cell=cell,
                                     hidden=64, layers=1, dropout=0.0, warmup=0,
                                     batch=1, seq_len=40, lr=1e-2, epochs=300,
                                     max_steps=300, val_frac=0, test_frac=0, eval_every=300,
                                     sample_length=0, schedule="constant"), progress=False)
    assert result.history[-1]["train_loss"] < 0.05
    model, vocab = result.model, result.vocab
    assert sr.sample(model, vocab, "the quick ", 30, argmax=True).startswith(
        "the quick brown fox jumps over")


def _run(tmp_path, small_text, name, **kw):
    cfg = sr.TrainConfig(text=str(small_text), out=str(tmp_path / name), **FAST)
    return cfg.replace(**kw)


def _interrupt_at(monkeypatch, step):
    """Deliver a real SIGINT to this process right after update number `step`."""
    real_update = optim.update

    def update(name, params, grads, state, lr, betas=optim.ADAM_BETAS):
        real_update(name, params, grads, state, lr, betas)
        if int(state["t"]) == step:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr("scratchrnn.nn.optim.update", update)


def _assert_same_run(a, b, skip_step):
    for k, v in a.model.params.items():
        assert np.array_equal(v, b.model.params[k]), k
    ca, cb = sr.load_checkpoint(a.out), sr.load_checkpoint(b.out)
    for k in ca.opt_state:
        assert np.array_equal(ca.opt_state[k], cb.opt_state[k]), k
    # metrics at the same steps are identical too (the stop adds one extra row)
    rows = lambda r: {h["step"]: (h["train_loss"], h.get("val_loss")) for h in r.history
                      if h["step"] != skip_step}
    assert rows(a) == rows(b)


@pytest.mark.parametrize("cell,layers,dropout,weight_drop,layer_norm,locked", [
    ("rnn", 1, 0.0, 0.0, False, False), ("lstm", 2, 0.3, 0.0, False, False),
    ("gru", 2, 0.3, 0.0, False, False),
    ("lstm", 1, 0.0, 0.5, False, False),  # W_h masks from the same rng
    ("gru", 2, 0.3, 0.5, False, False), ("gru", 2, 0.3, 0.5, True, False),
    ("lstm", 2, 0.3, 0.0, False, True), ("gru", 2, 0.3, 0.5, False, True)])  # locked dropout
def test_interrupt_and_resume_is_bit_identical(cell, layers, dropout, weight_drop, layer_norm,
                                                locked, tmp_path, small_text, monkeypatch):
    common = dict(cell=cell, layers=layers, dropout=dropout, weight_drop=weight_drop,
                  layer_norm=layer_norm, locked_dropout=locked, epochs=None, max_steps=50)
    full = sr.train(_run(tmp_path, small_text, "full", **common), progress=False)
    assert sr.load_checkpoint(full.out).model.config.locked_dropout is locked
    with monkeypatch.context() as m:
        _interrupt_at(m, 23)
        cut = sr.train(_run(tmp_path, small_text, "part", **common), progress=False)
    assert cut.stopped == "SIGINT" and cut.step == 23
    part = sr.train(resume=tmp_path / "part", progress=False)
    assert part.step == full.step == 50 and part.stopped == "max_steps"
    _assert_same_run(full, part, 23)
    again = sr.train(resume=tmp_path / "part", progress=False)
    assert again.stopped == "finished"  # resuming a finished run changes nothing
    _assert_same_run(full, again, 23)


def test_weight_average_is_evaluated_saved_and_resumed(tmp_path, small_text, monkeypatch,
                                                        capsys):
    common = dict(cell="gru", ema=0.9, beta2=0.99, epochs=None, max_steps=50)
    full = sr.train(_run(tmp_path, small_text, "full", **common), progress=False)
    with monkeypatch.context() as m:
        _interrupt_at(m, 23)
        sr.train(_run(tmp_path, small_text, "part", **common), progress=False)
    part = sr.train(resume=tmp_path / "part", progress=False)
    _assert_same_run(full, part, 23)
    ckpt, cpart = sr.load_checkpoint(full.out), sr.load_checkpoint(part.out)
    for k, p in ckpt.trained.params.items():
        assert np.array_equal(p, cpart.trained.params[k]), k
        assert np.array_equal(ckpt.model.params[k], ckpt.opt_state[f"ema.{k}"])
        assert not np.array_equal(ckpt.model.params[k], p), k  # the average is not the weights
    # validation, the result and `scratchrnn eval` all use the average
    corpus = sr.load_corpus(str(small_text), ckpt.vocab, 0.05, 0.05)
    val = sr.evaluate(ckpt.model, corpus.val, 16)
    assert full.val_loss == pytest.approx(val, rel=1e-6)
    assert sr.evaluate(ckpt.trained, corpus.val, 16) != pytest.approx(val, rel=1e-6)
    assert all(np.array_equal(p, full.model.params[k]) for k, p in ckpt.model.params.items())
    capsys.readouterr()  # drop the training runs' output
    assert main(["eval", str(full.out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nats_per_char"] == pytest.approx(val, rel=1e-6)
    # resumed without --ema, the run trains on from its weights and drops the average
    on = sr.train(resume=tmp_path / "part", max_steps=60, ema=0.0, progress=False)
    assert not any(k.startswith("ema.") for k in sr.load_checkpoint(on.out).opt_state)


def test_a_run_saved_by_an_older_version_evaluates_and_resumes(tmp_path, small_text, capsys):
    first = sr.train(_run(tmp_path, small_text, "old", ema=None, epochs=None, max_steps=20),
                     progress=False)
    ckpt = sr.load_checkpoint(first.out)
    older = ("ema", "val_frac", "test_frac")  # fields older versions did not write
    config = {k: v for k, v in ckpt.config.items() if k not in older}
    sr.save_checkpoint(first.out / "checkpoint.npz", ckpt.model, ckpt.vocab, config, ckpt.meta,
                       ckpt.opt_state, ckpt.state)
    capsys.readouterr()
    assert main(["eval", str(first.out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nats_per_char"] == pytest.approx(
        first.val_loss, rel=1e-6)  # the default split, as the run used
    later = sr.train(resume=first.out, max_steps=30, progress=False)
    assert later.step == 30
    assert not any(k.startswith("ema.") for k in sr.load_checkpoint(later.out).opt_state)


def test_average_follows_its_formula():
    params, state = {"w": np.array([0.0, 10.0])}, {"t": np.array(0)}
    for t, value in enumerate([2.0, 4.0, 4.0, 4.0], start=1):
        state["t"] = np.array(t)
        params["w"][:] = value
        optim.average(params, state, decay=0.5)
    # the first call copies; then d = min(0.5, (1 + t) / (10 + t)) = 0.25, 0.31, 0.36
    expected = 2.0
    for t in (2, 3, 4):
        d = min(0.5, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * 4.0
    np.testing.assert_allclose(state["ema.w"], [expected, expected])
    assert optim.averaged(params, state)["w"] is state["ema.w"]
    assert optim.averaged(params, {"t": np.array(0)}) is None


def test_extending_max_steps_is_bit_identical(tmp_path, small_text):
    common = dict(cell="lstm", epochs=None, schedule="constant", warmup=5)
    full = sr.train(_run(tmp_path, small_text, "full", max_steps=45, **common), progress=False)
    sr.train(_run(tmp_path, small_text, "part", max_steps=20, **common), progress=False)
    part = sr.train(resume=tmp_path / "part", max_steps=45, progress=False)
    _assert_same_run(full, part, 20)


def test_run_folder_contents(tmp_path, small_text):
    result = sr.train(_run(tmp_path, small_text, "run", max_steps=40, epochs=None),
                      progress=False)
    out = tmp_path / "run"
    for name in ("checkpoint.npz", "best.npz", "metrics.jsonl", "loss.png", "config.json"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows == json.loads(json.dumps(result.history))
    assert {"step", "epoch", "train_loss", "chars_per_sec", "elapsed_s"} <= set(rows[0])
    assert [r["step"] for r in rows if "val_loss" in r] == [20, 40]
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    best = sr.load_checkpoint(out / "best.npz")
    assert best.meta["best_val"] == min(r["val_loss"] for r in rows if "val_loss" in r)


def test_seed_preset(tmp_path, small_text):
    cfg = sr.with_preset("seed", text=str(small_text), out=str(tmp_path / "s"), max_steps=30,
                         eval_every=30, sample_length=0)
    assert (cfg.vocab, cfg.hidden, cfg.seq_len, cfg.batch, cfg.optimizer, cfg.clip_value,
            cfg.init_std, cfg.cell) == ("seed", 128, 25, 1, "sgd", 5.0, 0.01, "rnn")
    result = sr.train(cfg, progress=False)
    assert len(result.vocab) == 95
    assert result.history[-1]["train_loss"] < math.log(95)


def test_shakespeare_preset_is_the_benchmarked_recipe_and_trains(tmp_path, small_text, capsys):
    """One flag away: the preset is BENCHMARKS.md's best 8.4-minute command; explicit flags
    still win over it (here a tiny width and a few steps, so the test stays fast)."""
    cfg = sr.with_preset("shakespeare")
    assert (cfg.cell, cfg.layers, cfg.hidden, cfg.dropout, cfg.layer_norm, cfg.weight_drop,
            cfg.locked_dropout, cfg.recurrent_init, cfg.batch, cfg.seq_len, cfg.lr, cfg.warmup,
            cfg.min_lr, cfg.ema, cfg.time_budget, cfg.val_frac, cfg.test_frac) == (
        "gru", 2, 384, 0.2, True, 0.1, True, "orthogonal", 32, 50, 7e-3, 100, 3e-4, 0.998, 504.0,
        0.1, 0.0)
    out = tmp_path / "sh"
    assert main(["train", "--preset", "shakespeare", "--text", str(small_text), "--out",
                 str(out), "--hidden", "16", "--max-steps", "3", "--sample-length", "0",
                 "--quiet"]) == 0
    saved = sr.load_checkpoint(out)
    assert saved.model.config.layer_norm and saved.model.config.hidden_size == 16
    assert saved.model.config.weight_drop == 0.1 and saved.model.config.locked_dropout
    assert saved.model.config.recurrent_init == "orthogonal"
    assert saved.config["time_budget"] == 504.0 and saved.meta["step"] == 3
    # its layer normalisation can be turned off, e.g. to try another cell
    assert main(["train", "--preset", "shakespeare", "--text", str(small_text), "--out",
                 str(tmp_path / "lstm"), "--cell", "lstm", "--no-layer-norm", "--hidden", "8",
                 "--max-steps", "1", "--sample-length", "0", "--quiet"]) == 0
    assert not sr.load_checkpoint(tmp_path / "lstm").model.config.layer_norm


def test_sampling_is_deterministic_and_limits(rng):
    model = sr.CharRNN(96, 32, "lstm", seed=3)
    vocab = sr.Vocab.ascii()
    a = sr.sample(model, vocab, "It was", 60, temperature=0.9, seed=5)
    assert a == sr.sample(model, vocab, "It was", 60, temperature=0.9, seed=5)
    assert a != sr.sample(model, vocab, "It was", 60, temperature=0.9, seed=6)
    assert a.startswith("It was") and len(a) == 66
    sharp = sr.CharRNN(96, 32, "lstm", seed=3, init_std=0.3)  # clear margins between logits
    greedy = sr.sample(sharp, vocab, "It", 40, argmax=True)
    assert sr.sample(sharp, vocab, "It", 40, temperature=1e-6, seed=9) == greedy
    assert sr.sample(sharp, vocab, "It", 40, top_k=1, seed=9) == greedy
    assert sr.sample(sharp, vocab, "It", 40, seed=9) != greedy
    for bad in (dict(temperature=0), dict(temperature=-1), dict(top_k=0), dict(top_p=0),
                dict(top_p=1.5)):
        with pytest.raises(sr.ScratchRNNError):
            sr.sample(model, vocab, "x", 5, **bad)


def test_top_k_top_p_support():
    p = softmax(np.log(np.array([0.5, 0.3, 0.15, 0.05])))
    assert np.count_nonzero(filter_probs(p, 2, None)) == 2
    assert np.count_nonzero(filter_probs(p, None, 0.7)) == 2  # 0.5 + 0.3 reaches 0.7
    assert np.count_nonzero(filter_probs(p, None, 0.5)) == 1
    assert np.count_nonzero(filter_probs(p, None, 1.0)) == 4
    q = filter_probs(p, 3, 0.9)
    assert q.sum() == pytest.approx(1) and q[3] == 0


def test_cli_end_to_end(tmp_path, small_text, capsys):
    out = tmp_path / "cli"
    args = ["train", "--text", str(small_text), "--out", str(out), "--hidden", "32",
            "--batch", "4", "--seq-len", "16", "--max-steps", "30", "--eval-every", "15",
            "--sample-length", "10", "--quiet"]
    assert main(args) == 0
    assert "stopped at step 30" in capsys.readouterr().out
    assert main(["sample", str(out), "--prime", "It was", "--length", "40", "--seed", "2"]) == 0
    first = capsys.readouterr().out
    assert main(["sample", str(out), "--prime", "It was", "--length", "40", "--seed", "2"]) == 0
    assert capsys.readouterr().out == first and first.startswith("It was")
    assert main(["eval", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["bits_per_char"] == pytest.approx(res["nats_per_char"] / math.log(2))
    assert res["perplexity"] == pytest.approx(math.exp(res["nats_per_char"]))
    assert main(["eval", str(out), "--split", "test"]) == 0
    assert "nats/char" in capsys.readouterr().out
    assert main(["eval", str(out / "best.npz"), "--text", str(small_text)]) == 0
    png = tmp_path / "again.png"
    assert main(["plot", str(out), "--out", str(png)]) == 0 and png.is_file()
    assert main(["train", "--resume", str(out), "--max-steps", "40", "--quiet"]) == 0
    assert sr.load_checkpoint(out).meta["step"] == 40


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "gru-ln"])
def test_sampling_stepper_matches_the_batched_forward(cell, rng):
    """The generator's one-vector step against the training forward pass, layer by layer
    (gru-ln: --layer-norm, its gains and biases moved from their initial 1 and 0)."""
    from scratchrnn.nn.model import forward, init_state
    from scratchrnn.sampling.sampler import stepper

    ln = cell == "gru-ln"
    model = sr.CharRNN(20, 16, cell.removesuffix("-ln"), num_layers=3, seed=1, dtype="float64",
                       layer_norm=ln)
    for k, p in model.params.items():
        if ln and (".ln_" in k or k.endswith(".b")):
            p += 0.3 * rng.normal(size=p.shape)
    ids = rng.integers(0, 20, 12)
    step = stepper(model)
    got = np.stack([step(int(i)) for i in ids])  # (T, V)
    _, _, cache = forward(model.params, model.config, ids[None], ids[None],
                          init_state(model.config, 1))
    probs = cache[2][0]  # softmax of the logits, overwritten in place: compare probabilities
    want = probs / probs.sum(1, keepdims=True)
    np.testing.assert_allclose(softmax(got), want, rtol=1e-10, atol=1e-12)
    state = model.init_state(1)  # the batched API step agrees too
    for t, i in enumerate(ids):
        logits, state = model.step(np.array([i]), state)
        np.testing.assert_allclose(logits[0], got[t], rtol=1e-10, atol=1e-12)


def test_the_input_layer_starts_at_the_scale_of_its_true_fan_in():
    """Layer 0 reads one-hot characters: fan-in 1, so U(+-1) (as nn.Embedding followed by W_ih
    scales it), every other matrix U(+-1/sqrt(H)). At 1/sqrt(H) the input was ~10x weaker and
    training sat at the unigram loss for ~100 steps (BENCHMARKS.md, issue 11)."""
    H = 64
    p = sr.CharRNN(96, H, "gru", 2, seed=0).params
    assert 0.9 < np.abs(p["l0.W_x"]).max() <= 1.0
    for key in ("l0.W_h", "l1.W_x", "l1.W_h", "W_y"):
        assert 0.9 / np.sqrt(H) < np.abs(p[key]).max() <= 1.0 / np.sqrt(H), key
    assert np.abs(sr.CharRNN(96, H, "gru", 1, seed=0, init_std=0.01).params["l0.W_x"]).max() < 0.1

