"""`scratchrnn import`: a PyTorch nn.Embedding -> nn.RNN/LSTM/GRU -> nn.Linear character model's
state dict becomes a run whose logits are the PyTorch model's own, for every cell and 1-3
layers; export -> import gives back the very same parameters. Skips without torch/safetensors."""

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from interop_util import random_model, real_ids, reference, stacked

from scratchrnn.checkpoint import load_checkpoint, save_checkpoint
from scratchrnn.cli import main
from scratchrnn.errors import ScratchRNNError
from scratchrnn.text import Vocab

CELLS = ["rnn", "lstm", "gru"]
TOL = dict(rtol=1e-4, atol=1e-4)
VOCAB = "\n !\"',-.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def torch_char_model(cell, layers, V, E=12, H=20, seed=0, bias=True):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)

    class CharModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(V, E)
            kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
            self.rnn = kind(E, H, num_layers=layers, batch_first=True, bias=bias)
            self.head = torch.nn.Linear(H, V, bias=bias)

        def forward(self, ids):  # (B, T) -> logits (B, T, V), state
            out, state = self.rnn(self.embed(ids))
            return self.head(out), state

    return CharModel().eval()


def save(model, fmt, path):
    if fmt == "pt":
        import torch

        torch.save(model.state_dict(), path)
    else:
        pytest.importorskip("safetensors")
        from safetensors.torch import save_file

        save_file(model.state_dict(), path)
    return path


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_import_gives_the_torch_models_logits(cell, layers, fmt, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    vocab = Vocab(VOCAB)
    t_model = torch_char_model(cell, layers, len(vocab), seed=layers)
    path = save(t_model, fmt, tmp_path / f"char.{fmt}")
    (tmp_path / "vocab.txt").write_text(VOCAB)
    assert main(["import", str(path), "--vocab", str(tmp_path / "vocab.txt")]) == 0
    ckpt = load_checkpoint("runs/char")
    assert ckpt.model.config.cell == cell and ckpt.model.config.num_layers == layers
    assert ckpt.vocab == vocab
    ids = real_ids(vocab)  # (T, B)
    want, want_state = reference(ckpt.model, ids)
    with torch.no_grad():
        logits, state = t_model(torch.from_numpy(ids.T.astype(np.int64)))
    np.testing.assert_allclose(logits.numpy().transpose(1, 0, 2), want, **TOL)
    h = state[0] if cell == "lstm" else state
    np.testing.assert_allclose(h.numpy(), stacked(want_state, "h", layers), **TOL)
    if cell == "lstm":
        np.testing.assert_allclose(state[1].numpy(), stacked(want_state, "c", layers), **TOL)


@pytest.mark.parametrize("bias, E", [(True, 20), (False, 12), (False, 7), (False, 20)])
def test_embedding_as_wide_as_the_state_and_models_without_bias(bias, E, tmp_path, capsys):
    """E == H makes the embedding and the output weight the same shape (the output layer is
    the one with a bias: without one, the import cannot tell and says so); bias=False layers
    import with zero biases."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    t_model = torch_char_model("gru", 2, len(VOCAB), E=E, H=20, bias=bias)
    path = save(t_model, "safetensors", tmp_path / "m.safetensors")
    rc = main(["import", str(path), "--vocab", VOCAB.replace("\n", "\\n")])
    if not bias and E == 20:
        assert rc == 1 and "cannot tell the output nn.Linear" in capsys.readouterr().err
        return
    assert rc == 0
    ckpt = load_checkpoint("runs/m")
    ids = real_ids(ckpt.vocab, T=100)
    want, _ = reference(ckpt.model, ids)
    with torch.no_grad():
        logits, _ = t_model(torch.from_numpy(ids.T.astype(np.int64)))
    np.testing.assert_allclose(logits.numpy().transpose(1, 0, 2), want, **TOL)


@pytest.mark.parametrize("cell", CELLS)
def test_export_then_import_is_the_same_model(cell):
    pytest.importorskip("safetensors")
    model = random_model(cell, 3)
    Path("runs/m").mkdir(parents=True)
    save_checkpoint("runs/m/checkpoint.npz", model, Vocab.ascii(), {})
    assert main(["export", "runs/m", "--format", "torch"]) == 0
    # no --vocab: the exported file carries its vocabulary
    assert main(["import", "runs/m/model.safetensors", "--out", "runs/back"]) == 0
    back = load_checkpoint("runs/back")
    assert back.vocab == Vocab.ascii() and back.model.config == model.config
    for k, v in model.params.items():
        np.testing.assert_array_equal(back.model.params[k], v, err_msg=k)


def test_imported_run_samples_and_evaluates(tmp_path, small_text, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    path = save(torch_char_model("gru", 2, len(VOCAB)), "safetensors", tmp_path / "m.st")
    assert main(["import", str(path), "--vocab", VOCAB.replace("\n", "\\n"),
                 "--out", "runs/imp"]) == 0
    capsys.readouterr()
    assert main(["sample", "runs/imp", "--prime", "It was", "--length", "40"]) == 0
    assert capsys.readouterr().out.startswith("It was")
    assert main(["eval", "runs/imp", "--text", str(small_text), "--json"]) == 0
    assert '"nats_per_char"' in capsys.readouterr().out


def test_imported_run_resumes_training(book, capsys):
    """An imported run is a valid run at step 0: `train --resume` goes on from its weights."""
    pytest.importorskip("safetensors")
    import os

    home = Path(os.environ["SCRATCHRNN_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "pg98.txt").symlink_to(book)  # the default corpus, without a download
    model = random_model("lstm", 1, hidden=8)
    Path("runs/m").mkdir(parents=True)
    save_checkpoint("runs/m/checkpoint.npz", model, Vocab.ascii(), {})
    assert main(["export", "runs/m", "--format", "torch", "--out", "m.safetensors"]) == 0
    assert main(["import", "m.safetensors", "--out", "runs/imp"]) == 0
    assert main(["train", "--resume", "runs/imp", "--max-steps", "2",
                 "--quiet"]) == 0
    ckpt = load_checkpoint("runs/imp")
    assert ckpt.meta["step"] == 2
    assert not np.array_equal(ckpt.model.params["W_y"], model.params["W_y"])


def test_float64_state_dict_imports_as_float64(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch_char_model("lstm", 1, len(VOCAB)).double()
    path = save(model, "pt", tmp_path / "m.pt")
    assert main(["import", str(path), "--vocab", VOCAB.replace("\n", "\\n")]) == 0
    assert load_checkpoint("runs/m").model.config.dtype == "float64"
    del torch


def test_pt_without_torch_is_refused_not_unpickled(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "PWNED"
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Touch(marker)))
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    assert main(["import", str(tmp_path / "evil.pt"), "--vocab", "ab"]) == 1
    err = capsys.readouterr().err
    assert "PyTorch is not installed" in err and len(err.splitlines()) == 1
    assert not marker.exists() and not Path("runs").exists()


class Touch:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_vocab_spellings(tmp_path):
    from scratchrnn.torch_import import read_vocab

    assert read_vocab("ab\\nc\\t\\\\", {}).chars == "ab\nc\t\\"
    (tmp_path / "v.txt").write_text("xy\n")  # a file: exactly its characters, newline included
    assert read_vocab(str(tmp_path / "v.txt"), {}).chars == "xy\n"
    (tmp_path / "v.json").write_text('"q\\nr"')
    assert read_vocab(str(tmp_path / "v.json"), {}).chars == "q\nr"
    assert read_vocab(None, {"vocab": '"abc"'}).chars == "abc"
    (tmp_path / "itos.json").write_text('["a", "b", "\\n"]')
    assert read_vocab(str(tmp_path / "itos.json"), {}).chars == "ab\n"
    (tmp_path / "stoi.json").write_text('{"b": 1, "a": 0}')
    assert read_vocab(str(tmp_path / "stoi.json"), {}).chars == "ab"
    (tmp_path / "bad.json").write_text('{"b": 1, "a": 5}')
    with pytest.raises(ScratchRNNError, match="indices 0 .. n-1"):
        read_vocab(str(tmp_path / "bad.json"), {})
