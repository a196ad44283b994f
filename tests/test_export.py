"""`scratchrnn export`: the exported model gives scratchrnn's logits and final state on a real
text, in PyTorch (nn.RNN/LSTM/GRU + nn.Linear loaded from the safetensors file) and in
onnxruntime, for every cell and 1-3 layers. Each tool's tests skip when it is not installed."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from interop_util import random_model, random_state, real_ids, reference, stacked

from scratchrnn.cli.commands import main
from scratchrnn.data.vocab import Vocab
from scratchrnn.store.checkpoint import save_checkpoint
from scratchrnn.store.config import TrainConfig

CELLS = ["rnn", "lstm", "gru"]
TOL = dict(rtol=1e-4, atol=1e-4)
NOTES = Path(__file__).resolve().parents[1] / "docs" / "usage.md"


def saved_run(model, path="runs/m"):
    Path(path).mkdir(parents=True, exist_ok=True)
    c = model.config  # a config that agrees with the model, as the loader checks
    config = TrainConfig(cell=c.cell, hidden=c.hidden_size, layers=c.num_layers,
                         dropout=c.dropout, dtype=c.dtype, init_std=c.init_std)
    save_checkpoint(Path(path) / "checkpoint.npz", model, Vocab.ascii(), config.to_dict())
    return Path(path)


def torch_modules(path):
    """The PyTorch modules loaded from an exported file, as a user would (float64 here)."""
    torch = pytest.importorskip("torch")
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    V, H, L = (int(meta[k]) for k in ("vocab_size", "hidden_size", "num_layers"))
    kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[meta["cell"]]
    model = torch.nn.ModuleDict({"rnn": kind(V, H, L), "decoder": torch.nn.Linear(H, V)})
    model.load_state_dict(load_file(str(path)))
    return model.double(), meta


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_torch_export_matches(cell, layers):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    model = random_model(cell, layers, seed=layers)
    run = saved_run(model)
    assert main(["export", str(run), "--format", "torch"]) == 0
    path = run / "model.safetensors"
    t_model, meta = torch_modules(path)
    assert json.loads(meta["vocab"]) == Vocab.ascii().chars and meta["cell"] == cell
    ids = real_ids(Vocab.ascii())  # (T, B)
    state = random_state(model, ids.shape[1])
    want, want_state = reference(model, ids, state)
    x = torch.nn.functional.one_hot(torch.from_numpy(ids.astype(np.int64)), 96).double()
    h0 = torch.from_numpy(stacked(state, "h", layers)).double()
    if cell == "lstm":
        h0 = (h0, torch.from_numpy(stacked(state, "c", layers)).double())
    with torch.no_grad():
        out, hT = t_model["rnn"](x, h0)
        logits = t_model["decoder"](out).numpy()
    np.testing.assert_allclose(logits, want, **TOL)
    h_T, c_T = hT if cell == "lstm" else (hT, None)
    np.testing.assert_allclose(h_T.numpy(), stacked(want_state, "h", layers), **TOL)
    if cell == "lstm":
        np.testing.assert_allclose(c_T.numpy(), stacked(want_state, "c", layers), **TOL)


@pytest.mark.parametrize("extra", [[], ["--dropout", "0.3", "--locked-dropout"]])
def test_export_writes_the_weights_sample_uses(small_text, extra):
    """A run trained with a weight average exports the average, as `sample` uses it. Locked
    dropout is training only: such a run exports like any other."""
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file

    from scratchrnn.store.checkpoint import load_checkpoint

    assert main(["train", "--text", str(small_text), "--out", "run", "--hidden", "8",
                 "--layers", "1", "--batch", "2", "--seq-len", "8", "--max-steps", "6",
                 "--eval-every", "6", "--sample-length", "0", "--ema", "0.5", "--quiet",
                 *extra]) == 0
    assert main(["export", "run", "--format", "torch"]) == 0
    ckpt = load_checkpoint("run")
    tensors = load_file("run/model.safetensors")
    np.testing.assert_array_equal(tensors["decoder.weight"], ckpt.model.params["W_y"].T)
    assert not np.array_equal(tensors["decoder.weight"], ckpt.trained.params["W_y"].T)


def test_torch_export_is_byte_for_byte_reproducible():
    model = random_model("lstm", 2)
    run = saved_run(model)
    for out in ("a.safetensors", "b.safetensors"):
        assert main(["export", str(run), "--format", "torch", "--out", out]) == 0
    assert Path("a.safetensors").read_bytes() == Path("b.safetensors").read_bytes()


def test_torch_export_keeps_float64():
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file

    model = random_model("gru", 2, dtype="float64")
    out = Path("elsewhere/gru.safetensors")
    assert main(["export", str(saved_run(model)), "--format", "torch", "--out", str(out)]) == 0
    tensors = load_file(str(out))
    assert all(v.dtype == np.float64 for v in tensors.values())
    np.testing.assert_array_equal(tensors["rnn.weight_ih_l1"], model.params["l1.W_x"].T)
    H = 24
    np.testing.assert_array_equal(tensors["rnn.bias_hh_l0"][2 * H:], model.params["l0.b_hn"])
    assert not tensors["rnn.bias_hh_l0"][:2 * H].any()


def readme_snippet() -> str:
    text = NOTES.read_text()
    m = re.search(r"<!-- torch-snippet[^>]*-->\n```python\n(.*?)```", text, re.DOTALL)
    assert m, "the PyTorch snippet is missing from docs/usage.md"
    return m.group(1)


@pytest.mark.parametrize("cell", CELLS)
def test_readme_snippet_gives_our_logits(cell):
    """The documented lines, run as they stand, on an exported run at runs/pg98."""
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    model = random_model(cell, 2)
    assert main(["export", str(saved_run(model, "runs/pg98")), "--format", "torch"]) == 0
    scope = {}
    exec(readme_snippet(), scope)
    vocab = Vocab.ascii()
    ids = vocab.encode("It was the best of times")[:, None]  # (T, 1)
    want, want_state = reference(model, ids)
    np.testing.assert_allclose(scope["logits"].detach().numpy(), want, **TOL)
    h_n = scope["state"][0] if cell == "lstm" else scope["state"]
    np.testing.assert_allclose(h_n.detach().numpy(), stacked(want_state, "h", 2), **TOL)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_onnx_export_matches(cell, layers):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = random_model(cell, layers, seed=10 + layers)
    run = saved_run(model)
    assert main(["export", str(run), "--format", "onnx"]) == 0
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = real_ids(Vocab.ascii())  # (T, B)
    state = random_state(model, ids.shape[1])
    feed = {"ids": ids.astype(np.int64), "h0": stacked(state, "h", layers)}
    if cell == "lstm":
        feed["c0"] = stacked(state, "c", layers)
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed),
                   strict=True))
    want, want_state = reference(model, ids, state)
    np.testing.assert_allclose(got["logits"], want, **TOL)
    np.testing.assert_allclose(got["hT"], stacked(want_state, "h", layers), **TOL)
    if cell == "lstm":
        np.testing.assert_allclose(got["cT"], stacked(want_state, "c", layers), **TOL)


def test_onnx_export_of_a_float64_model_runs_in_float32():
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = random_model("gru", 2, dtype="float64")
    assert main(["export", str(saved_run(model)), "--format", "onnx", "--out", "g.onnx"]) == 0
    ids = real_ids(Vocab.ascii(), T=100)
    session = ort.InferenceSession("g.onnx", providers=["CPUExecutionProvider"])
    logits, hT = session.run(None, {"ids": ids.astype(np.int64),
                                    "h0": np.zeros((2, ids.shape[1], 24), np.float32)})
    want, want_state = reference(model, ids)
    np.testing.assert_allclose(logits, want, **TOL)
    np.testing.assert_allclose(hT, stacked(want_state, "h", 2), **TOL)


def test_onnx_graph_metadata_and_checker():
    onnx = pytest.importorskip("onnx")
    model = random_model("lstm", 2)
    assert main(["export", str(saved_run(model)), "--format", "onnx", "--out", "x.onnx"]) == 0
    proto = onnx.load("x.onnx")
    onnx.checker.check_model(proto)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["vocab"] == Vocab.ascii().chars and props["cell"] == "lstm"
    assert [n.op_type for n in proto.graph.node].count("LSTM") == 2


@pytest.mark.parametrize("fmt", ["torch", "onnx"])
def test_export_replaces_only_its_own_file(fmt, capsys):
    pytest.importorskip("safetensors" if fmt == "torch" else "onnx")
    run = saved_run(random_model("rnn", 1))
    assert main(["export", str(run), "--format", fmt, "--out", "m.bin"]) == 0
    first = Path("m.bin").read_bytes()
    assert main(["export", str(run), "--format", fmt, "--out", "m.bin"]) == 0  # ours: replaced
    assert Path("m.bin").read_bytes() == first
    other = "onnx" if fmt == "torch" else "torch"
    pytest.importorskip("safetensors" if other == "torch" else "onnx")
    capsys.readouterr()
    assert main(["export", str(run), "--format", other, "--out", "m.bin"]) == 1
    assert "never replaces a file" in capsys.readouterr().err
    assert Path("m.bin").read_bytes() == first


def test_training_never_imports_the_optional_packages():
    import subprocess
    import sys

    code = ("import sys, scratchrnn, scratchrnn.cli.commands, scratchrnn.training.loop; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'safetensors', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(Path(__file__).parents[1] / "src"),
                                          "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"
