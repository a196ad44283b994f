"""--layer-norm (the layer-normalised GRU, cells_ln.py): off, every initial weight is as before;
on, it adds only the gains (at 1, drawing nothing), trains, is saved and resumed with the run,
and every path that runs the model (evaluation, sampling, inspect, the page) runs it with the
normalisation, while the exporters refuse it. Its gradients are in test_gradcheck.py and
test_torch_oracle.py, its exact resume in test_train.py, its bad values in test_bad_inputs.py,
test_api_errors.py and test_checkpoint_schema.py."""

import json

import numpy as np
import pytest
from test_weight_drop import BEFORE, digest

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.nn.model import ModelConfig, param_count, param_shapes, window_memory


@pytest.mark.parametrize("cell,dtype,std", sorted(BEFORE, key=str))
def test_off_leaves_the_initial_weights_as_they_were(cell, dtype, std):
    model = sr.CharRNN(96, 32, cell, 2, seed=0, dtype=dtype, init_std=std, layer_norm=False)
    assert digest(model.params) == BEFORE[cell, dtype, std]


@pytest.mark.parametrize("dtype,std", [("float32", None), ("float64", 0.01)])
def test_on_adds_unit_gains_and_draws_nothing(dtype, std):
    plain = sr.CharRNN(96, 32, "gru", 3, seed=5, dtype=dtype, init_std=std)
    ln = sr.CharRNN(96, 32, "gru", 3, seed=5, dtype=dtype, init_std=std, layer_norm=True)
    gains = {k for k in ln.params if ".ln_" in k}
    assert gains == {f"l{k}.ln_{s}" for k in range(3) for s in "xh"}
    assert set(ln.params) - gains == set(plain.params)
    for k, v in plain.params.items():
        assert np.array_equal(v, ln.params[k]), k
    for k in gains:
        assert ln.params[k].dtype == np.dtype(dtype) and np.all(ln.params[k] == 1.0)
    assert {k: v.shape for k, v in ln.params.items()} == param_shapes(ln.config)
    assert param_count(ln.config) == (ln.num_params(), len(ln.params))
    # the same weights compute another function
    x = np.random.default_rng(0).integers(0, 96, (2, 9))
    assert ln.loss(x, x)[0] != pytest.approx(plain.loss(x, x)[0], rel=1e-6)


def test_memory_counts_what_the_normalisation_keeps():
    plain, ln = (ModelConfig(96, 64, "gru", 2, layer_norm=v) for v in (False, True))
    assert window_memory(ln, 8, 20) > window_memory(plain, 8, 20)
    assert window_memory(ln, 8, 20, backward=False) > window_memory(plain, 8, 20, False)


def test_a_layer_norm_run_trains_saves_evaluates_samples_and_shows(tmp_path, small_text,
                                                                   capsys):
    out = tmp_path / "run"
    argv = ["train", "--text", str(small_text), "--out", str(out), "--layer-norm", "--hidden",
            "16", "--batch", "4", "--seq-len", "16", "--max-steps", "30", "--eval-every", "30",
            "--sample-length", "0", "--quiet", "--lr", "1e-2"]
    assert main(argv) == 0
    ckpt = sr.load_checkpoint(out)
    assert ckpt.model.config.layer_norm is True and ckpt.config["layer_norm"] is True
    assert json.loads((out / "config.json").read_text())["layer_norm"] is True
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # it learns
    gains = ckpt.model.params["l0.ln_h"]
    assert not np.allclose(gains, 1.0)  # the optimizer (and the weight average) moved them
    # eval and inspect give the loss of the normalised model; without the gains it differs
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    val = json.loads(capsys.readouterr().out)["nats_per_char"]
    corpus = sr.load_corpus(str(small_text), ckpt.vocab, 0.05, 0.05)
    assert val == pytest.approx(sr.evaluate(ckpt.model, corpus.val, 16), rel=1e-6)
    text = small_text.read_text()[:300]
    insp = sr.inspect(ckpt.model, ckpt.vocab, text)
    assert set(insp.layers[0]) == {"h", "r", "z", "n"}
    assert insp.mean_surprisal == pytest.approx(
        sr.evaluate(ckpt.model, ckpt.vocab.encode(text), 50, batch=1), abs=1e-5)
    unnormalised = sr.CharRNN.from_params(
        ModelConfig(**{**ckpt.model.config.to_dict(), "layer_norm": False}),
        {k: v for k, v in ckpt.model.params.items() if ".ln_" not in k})
    assert sr.inspect(unnormalised, ckpt.vocab, text).mean_surprisal != pytest.approx(
        insp.mean_surprisal, rel=1e-3)
    # sampling runs the normalised model: its argmax text is the batched forward's argmax
    got = sr.sample(ckpt.model, ckpt.vocab, "the ", 20, argmax=True)
    ids = ckpt.vocab.encode(got)
    chain = sr.inspect(ckpt.model, ckpt.vocab, got, clean=False)
    assert np.array_equal(chain.topk_ids[3:-1, 0], ids[4:])
    assert main(["sample", str(out), "--length", "10", "--prime", "the "]) == 0
    assert main(["visualize", str(out), "--chars", "200"]) == 0 and (out / "inside.html").is_file()
    # resumed without the flag, it stays normalised
    assert main(argv[:1] + ["--resume", str(out), "--max-steps", "32", "--quiet"]) == 0
    assert sr.load_checkpoint(out).model.config.layer_norm is True


@pytest.mark.parametrize("fmt", ["torch", "onnx"])
def test_exports_refuse_a_layer_norm_model_in_one_line(fmt, tmp_path, capsys):
    from scratchrnn.interop.export import to_torch_state

    model = sr.CharRNN(len(sr.Vocab.ascii()), 8, "gru", layer_norm=True)
    with pytest.raises(sr.ScratchRNNError, match="layer-normalised"):
        to_torch_state(model)
    if fmt == "onnx":
        pytest.importorskip("onnx")
        from scratchrnn.interop.onnx_export import build

        with pytest.raises(sr.ScratchRNNError, match="layer-normalised"):
            build(model, sr.Vocab.ascii())
    (tmp_path / "x").mkdir()
    path = tmp_path / "x" / "m.npz"
    sr.save_checkpoint(path, model, sr.Vocab.ascii(),
                       sr.TrainConfig(cell="gru", hidden=8, layers=1, dropout=0.0,
                                   layer_norm=True).to_dict())
    assert main(["export", str(path), "--format", fmt]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot export a layer-normalised model" in err
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.npz"]  # nothing written
