"""`scratchrnn export --format html` without a browser: where the page goes and what it may
replace, the weights it carries (exactly the model's, for every cell), its offline policy, a
hostile vocabulary and title as data, and the size refusal. The page running in Chromium is
tests/test_html_export_browser.py."""

import base64
import json
import re
import shutil

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.errors import ScratchRNNError
from scratchrnn.interop import html_export
from scratchrnn.interop.export import export
from scratchrnn.interop.html_export import export_html, page_bytes_estimate, page_data

TRAIN = ["--hidden", "16", "--batch", "2", "--seq-len", "8", "--max-steps", "4",
         "--eval-every", "4", "--sample-length", "0", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    (d / "text.txt").write_text("It was the best of times, it was the worst of times.\n" * 40)
    for name, extra in (("run", []), ("run-ln", ["--layer-norm"])):
        assert main(["train", "--text", str(d / "text.txt"), "--out", str(d / name),
                     "--cell", "gru", *extra, *TRAIN]) == 0
    return d


def data_of(page: str) -> dict:
    return json.loads(re.search(r'id="sr-data">(.*?)</script>', page, re.S).group(1))


def weights_of(data: dict) -> dict:
    flat = np.frombuffer(base64.b64decode(data["weights"]), "<f4")
    assert flat.size == data["count"]
    return {name: flat[off:off + int(np.prod(shape))].reshape(shape)
            for name, shape, off in data["params"]}


def test_cli_writes_the_page_into_the_run_and_replaces_only_its_own(runs, capsys):
    run = runs / "run"
    assert main(["export", str(run), "--format", "html"]) == 0
    page = run / "model.html"
    assert capsys.readouterr().out.strip() == str(page)
    text = page.read_text("utf-8")
    assert "scratchrnn generate page" in text.splitlines()[1]
    nonce = re.search(r"script-src 'nonce-([\w-]+)'", text).group(1)
    assert "default-src 'none'" in text and f'<script nonce="{nonce}">' in text
    # offline: nothing on the page names another resource
    assert not re.search(r"<(link|img|iframe|object)\b|\bsrc=|https?://", text)
    card = data_of(text)["card"]
    assert card["cell"] == "GRU" and card["layers"] == 2 and card["trained steps"] == "4"
    assert export(run, "html") == page  # the API, over the page it wrote before
    assert "scratchrnn generate page" in page.read_text("utf-8")
    # a checkpoint copied into a folder with its page is still ours to write beside
    copy = runs / "copy"
    copy.mkdir()
    shutil.copy(run / "checkpoint.npz", copy)
    shutil.copy(page, copy)
    assert export(copy, "html") == copy / "model.html"


@pytest.mark.parametrize("out, says", [
    ("text.txt", "was not written by scratchrnn; pass a new path as --out"),
    (".", "is a folder; pass a file path as --out"),
    ("run/checkpoint.npz", "was not written by scratchrnn"),
    ("run/inside.html", "was not written by scratchrnn")])
def test_refuses_what_it_did_not_write(runs, capsys, out, says):
    (runs / "run" / "inside.html").write_text("<!DOCTYPE html>\n<!-- scratchrnn inside page")
    before = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()}
    assert main(["export", str(runs / "run"), "--format", "html", "--out", str(runs / out)]) == 1
    assert says in capsys.readouterr().err
    assert before == {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()}


def test_a_layer_normalised_run_exports_to_html(runs, capsys):
    assert main(["export", str(runs / "run-ln"), "--format", "torch"]) == 1  # no nn.GRU for it
    capsys.readouterr()
    assert main(["export", str(runs / "run-ln"), "--format", "html"]) == 0
    data = data_of((runs / "run-ln" / "model.html").read_text("utf-8"))
    assert data["layer_norm"] is True and "l1.ln_h" in weights_of(data)


@pytest.mark.parametrize("kw", [dict(cell="rnn"), dict(cell="lstm", num_layers=3),
                                dict(cell="gru", num_layers=2, layer_norm=True),
                                dict(cell="gru", dtype="float64")])
def test_the_page_carries_the_models_weights(kw):
    vocab = sr.Vocab.seed()
    model = sr.CharRNN(len(vocab), 8, seed=4, **kw)
    data = page_data(model, vocab)
    got = weights_of(data)
    assert got.keys() == model.params.keys()
    for name, p in model.params.items():
        np.testing.assert_array_equal(got[name], p.astype(np.float32))
    assert data["chars"] == list(vocab.chars) and data["newline"] is False
    assert data["start"] == vocab.chars.index(" ") and data["bytes"] is False


class FakeVocab:  # issue 30's vocabularies: any characters, or the 256 bytes
    def __init__(self, chars, is_bytes=False):
        self.chars, self.kind = chars, "bytes" if is_bytes else "chars"
        self.is_ascii = not is_bytes and chars.isascii()


def test_a_hostile_vocabulary_title_and_card_are_data(tmp_path):
    chars = "<>&'\"/\\\n\u2028\u2029\u200f\u202e\U0001F600\ud800x"
    title = "</title><script>alert(1)</script>"
    model = sr.CharRNN(len(chars), 4, "rnn")
    path = export_html(model, FakeVocab(chars), tmp_path / "p.html", {"<b>": "</script>"}, title)
    text = path.read_text("utf-8", "surrogatepass")
    raw = re.search(r'id="sr-data">(.*?)</script>', text, re.S).group(1)
    assert not re.search("[<>&\u2028\u2029\U0001F600\ud800]", raw)
    data = json.loads(raw)
    assert data["chars"] == list(chars) and data["start"] == chars.index("\n")
    assert data["card"] == {"<b>": "</script>"}
    assert text.count("</script>") == 2 and text.count("<script") == 2
    assert "<title>&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>" in text
    bytes_page = page_data(sr.CharRNN(256, 4, "gru"), FakeVocab("".join(map(chr, range(256))),
                                                                True))
    assert bytes_page["bytes"] is True and len(bytes_page["chars"]) == 256


def test_a_model_too_large_for_a_page_is_refused_before_anything_is_made(tmp_path,
                                                                         monkeypatch):
    model = sr.CharRNN(96, 64, "lstm")
    monkeypatch.setattr(html_export, "MAX_PAGE_BYTES", page_bytes_estimate(model) - 1)
    with pytest.raises(ScratchRNNError, match="more than a browser holds well.*for torch or onnx"):
        export_html(model, sr.Vocab.ascii(), tmp_path / "sub" / "p.html")
    assert not (tmp_path / "sub").exists()


def test_the_size_estimate_is_the_page_size(tmp_path):
    vocab = sr.Vocab.ascii()
    for hidden in (16, 256):
        model = sr.CharRNN(len(vocab), hidden, "gru", 2)
        size = export_html(model, vocab, tmp_path / f"{hidden}.html").stat().st_size
        assert size <= page_bytes_estimate(model) <= size + (64 << 10)
