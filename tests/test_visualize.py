"""`scratchrnn visualize` and the page's data (no browser: tests/test_visualize_browser.py has
those): the page is written where it should be, carries exactly the inspection's numbers,
escapes a hostile corpus, stays within its size bound, and never replaces a foreign file."""

import json
import re
import time

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.inside import page as viz
from scratchrnn.inside import visualize
from scratchrnn.inside.units import find_units, properties

TRAIN = ["--hidden", "16", "--layers", "2", "--batch", "2", "--seq-len", "8", "--max-steps",
         "6", "--eval-every", "3", "--log-every", "1", "--sample-length", "0", "--quiet"]
HOSTILE = ('Bad </script><script>window.__pwned=1</script> and <img src=x '
           'onerror="window.__pwned=1"> &amp; "quotes" \'single\' back\\slash \\u003c '
           "<!-- <script> -->\n")
TEXT = ('"Where," said he, "is (the [old] key)?" Nobody knew.\nIt was late. ' * 30
        + HOSTILE * 3)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("viz")
    (d / "text.txt").write_text(TEXT)
    assert main(["train", "--text", str(d / "text.txt"), "--out", str(d / "run"), "--cell",
                 "lstm", *TRAIN]) == 0
    return d


def data_of(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="sr-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def test_cli_writes_the_page_into_the_run(run, capsys):
    assert main(["visualize", str(run / "run"), "--text", str(run / "text.txt")]) == 0
    out = run / "run" / "inside.html"
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>\n" + viz.MARKER)
    # Offline: the only URL is the SVG namespace, which is a name, not a request.
    assert set(re.findall(r"https?://[^\s\"')]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", page.split(
        'id="sr-data">')[0] + page.split("</script>", 1)[1])
    assert "default-src 'none'" in page
    data = data_of(page)
    card = data["model_card"]
    for key in ("cell", "layers", "hidden units", "parameters", "vocabulary", "steps",
                "validation loss", "training time"):
        assert key in card
    assert card["cell"] == "LSTM" and card["layers"] == 2 and card["steps"] == "6"
    assert [r[0] for r in data["history"]] == list(range(1, 7))
    assert data["history"][2][2] is not None  # validation at step 3
    # the same again replaces our own page
    assert main(["visualize", str(run / "run"), "--text", str(run / "text.txt"),
                 "--chars", "50"]) == 0
    assert len(data_of(out.read_text())["text"]) == 50


def test_page_data_equals_the_inspection(run):
    ckpt = sr.load_checkpoint(run / "run")
    insp = sr.inspect(ckpt.model, ckpt.vocab, TEXT[:700])
    data = data_of(viz.render_page(insp))
    T = len(insp.ids)
    assert data["text"] == insp.text and data["ids"] == insp.ids.tolist()
    assert data["signals"] == ["h", "c", "i", "f", "g", "o"] and data["gates"] == ["f", "i", "o"]
    np.testing.assert_array_equal(np.reshape(data["topk_ids"], (T, 5)), insp.topk_ids)
    np.testing.assert_allclose(np.reshape(data["topk_probs"], (T, 5)), insp.topk_probs,
                               atol=5e-5)
    np.testing.assert_array_equal(data["next_rank"], insp.next_rank)
    np.testing.assert_allclose(data["surprisal"], insp.surprisal, atol=5e-5)
    assert data["mean_surprisal"] == pytest.approx(insp.mean_surprisal, abs=1e-12)
    for k, layer in enumerate(insp.layers):
        back = viz.layer_values(data, k)
        for s, values in layer.items():
            entry = data["acts"]["layers"][k][s]
            assert entry["levels"] == (64 if s in ("h", "c") else 32)
            step = (entry["hi"] - entry["lo"]) / (entry["levels"] - 1)
            assert back[s].shape == values.shape
            assert np.abs(back[s] - values).max() <= step / 2 + 1e-6, (k, s)
    assert data["units"] == {p: [[a, b, c, round(r, 4)] for a, b, c, r in rows]
                             for p, rows in insp.units(3).items()}
    sat = insp.saturation()
    np.testing.assert_allclose(data["saturation"][1]["f"], sat[1]["f"], atol=1e-4)
    assert json.loads(json.dumps(insp.to_dict(), allow_nan=False))["text"] == insp.text


def test_the_page_total_equals_scratchrnn_eval(run, capsys):
    # Under 4,000 characters eval reads one stream, as the page does.
    assert main(["eval", str(run / "run"), "--text", str(run / "text.txt"), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)["nats_per_char"]
    out = run / "eval.html"
    assert main(["visualize", str(run / "run"), "--text", str(run / "text.txt"), "--out",
                 str(out)]) == 0
    data = data_of(out.read_text())
    assert len(data["text"]) == len(TEXT)
    assert data["mean_surprisal"] == pytest.approx(expected, abs=1e-6)
    assert data["bits_per_char"] == pytest.approx(expected / np.log(2), abs=1e-6)


def test_a_hostile_corpus_is_data_not_markup(run):
    ckpt = sr.load_checkpoint(run / "run")
    insp = sr.inspect(ckpt.model, ckpt.vocab, HOSTILE * 2 + "\u2028x")
    page = viz.render_page(insp, model_card={"corpus": "</script><b>x</b>"},
                       title="</title><script>alert(1)</script>")
    raw = page.split('id="sr-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in raw and ">" not in raw and "&" not in raw and "\u2028" not in raw
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert "<title>&lt;/title&gt;&lt;script&gt;" in page
    data = data_of(page)
    assert data["text"] == insp.text and HOSTILE in data["text"]
    assert data["model_card"]["corpus"] == "</script><b>x</b>"
    assert viz.script_json({"a": "</script>\u2029"}) == '{"a":"\\u003c/script\\u003e\\u2029"}'
    # the script never hands corpus text to an HTML parser
    js = viz.renderer_js()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", js)


def test_the_default_model_page_stays_compressed(tmp_path):
    """4,000 characters of the default model (GRU 2x256), untrained, on synthetic text: a guard
    against losing the quantisation, the prediction of the state or the compression (the page
    would be ~40 MB without them). The trained default run's page, 4.70 MB, is measured by
    benchmarks/bench_visualize.py --run (BENCHMARKS.md): training it takes minutes."""
    vocab = sr.Vocab.ascii()
    model = sr.CharRNN(len(vocab), 256, "gru", 2, dropout=0.1, seed=0)  # as TrainConfig()
    (tmp_path / "run").mkdir()
    sr.save_checkpoint(tmp_path / "run" / "checkpoint.npz", model, vocab,
                       sr.TrainConfig().to_dict(), {"step": 0})
    rng = np.random.default_rng(0)
    words = ["the", "of", "and", '"Yes,"', "said", "(he)", "Mr.", "Lorry", "Paris.\n"]
    (tmp_path / "t.txt").write_text(" ".join(rng.choice(words, 1500)))
    t0 = time.perf_counter()
    out = visualize.visualize_run(tmp_path / "run", text=tmp_path / "t.txt", chars=4000)
    seconds = time.perf_counter() - t0
    assert out == tmp_path / "run" / "inside.html"
    assert len(data_of(out.read_text())["text"]) == 4000
    assert out.stat().st_size <= 5_000_000, out.stat().st_size
    assert seconds < 60  # the 10 s figure is benchmarks/bench_visualize.py's, on a quiet machine


def test_refuses_to_replace_a_file_it_did_not_write(run, tmp_path):
    ckpt = sr.load_checkpoint(run / "run")
    insp = sr.inspect(ckpt.model, ckpt.vocab, "It was.")
    foreign = tmp_path / "notes.html"
    foreign.write_text("<html>my notes</html>")
    with pytest.raises(sr.ScratchRNNError, match="not written by"):
        viz.write_page(insp, foreign)
    assert foreign.read_text() == "<html>my notes</html>"
    ours = viz.write_page(insp, tmp_path / "deep" / "page.html")
    viz.write_page(insp, ours)  # our own page may be replaced
    with pytest.raises(sr.ScratchRNNError, match="folder"):
        viz.write_page(insp, tmp_path)


def test_repr_html_is_a_light_fragment(run):
    ckpt = sr.load_checkpoint(run / "run")
    insp = sr.inspect(ckpt.model, ckpt.vocab, TEXT)
    frag = insp._repr_html_()
    assert frag.startswith("<div class='sr-inside-fragment'>") and "<!DOCTYPE" not in frag
    m = re.search(r"<script type='application/json' id='(sr-inside-[\w-]+)-data'>(.*?)</script>",
                  frag, re.S)
    data = json.loads(m.group(2))
    assert data["text"] == insp.text[:2000] and len(data["surprisal"]) == 1999
    assert "ScratchRNNInside.render(document.getElementById('" + m.group(1) + "')" in frag
    assert "first 2,000 of" in frag
    assert m.group(1) not in insp._repr_html_()  # each output gets its own element ids


def test_page_data_checks_its_levels(run):
    ckpt = sr.load_checkpoint(run / "run")
    insp = sr.inspect(ckpt.model, ckpt.vocab, "It was.")
    with pytest.raises(sr.ScratchRNNError, match="levels"):
        viz.page_data(insp, levels=1)


@pytest.mark.parametrize("cell,signals,gates", [("rnn", ["h"], []),
                                                ("gru", ["h", "r", "z", "n"], ["r", "z"])])
def test_every_cell_makes_a_page(cell, signals, gates):
    vocab = sr.Vocab.ascii()
    insp = sr.inspect(sr.CharRNN(len(vocab), 8, cell, 2, seed=0), vocab, TEXT[:200])
    data = data_of(viz.render_page(insp))
    assert data["signals"] == signals and data["gates"] == gates
    assert [sorted(layer) for layer in data["saturation"]] == [gates, gates]
    assert [sorted(layer) for layer in data["acts"]["layers"]] == [sorted(signals)] * 2


@pytest.mark.parametrize("spec", ["folder", "two files"])
def test_a_run_on_many_files_is_visualized(tmp_path, spec):
    """A run trained on a folder or on several paths: its split and its name come from all of
    them (the page neither refuses the folder nor trips over a list)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(2):
        (corpus / f"part{i}.txt").write_text(TEXT)
    text = [str(corpus)] if spec == "folder" else [str(p) for p in sorted(corpus.iterdir())]
    run = tmp_path / "run"
    assert main(["train", "--text", *text, "--out", str(run), *TRAIN]) == 0
    before = sorted(p.name for p in run.iterdir())
    assert main(["visualize", str(run), "--chars", "200"]) == 0
    page = (run / "inside.html").read_text()
    assert len(data_of(page)["text"]) == 200
    assert main(["visualize", str(run), "--text", str(corpus / "part0.txt"), "--out",
                 str(tmp_path / "p.html"), "--chars", "300"]) == 0
    assert sorted(p.name for p in run.iterdir()) == sorted([*before, "inside.html"])



def test_a_split_that_starts_inside_a_quotation_is_labelled_from_the_text_before(tmp_path):
    """The val split starts inside a quotation whose quotes stand between spaces, so the
    excerpt alone cannot tell: the page's units are ranked against the whole text's labels
    (inside.properties with the text before the split), not labels swapped inside out."""
    head = ('Tom said, "it was late and ' + "so on and on " * 20)[:200]
    body = ('and on " he went home " quietly, ' * 10)[:200]
    (tmp_path / "t.txt").write_text(head + body)
    run = tmp_path / "run"
    assert main(["train", "--text", str(tmp_path / "t.txt"), "--out", str(run), "--val-frac",
                 "0.5", "--test-frac", "0", *TRAIN]) == 0
    assert main(["visualize", str(run), "--chars", "200"]) == 0
    data = data_of((run / "inside.html").read_text())
    assert data["text"] == body
    ckpt = sr.load_checkpoint(run)
    layers = sr.inspect(ckpt.model, ckpt.vocab, body, clean=False).layers
    truth = {k: v[200:] for k, v in properties(head + body, "").items()}
    assert truth["in_quotes"][0] == 1
    assert data["units"] == {p: [[a, b, c, round(r, 4)] for a, b, c, r in rows]
                             for p, rows in find_units(layers, truth).items()}
    # A --text file may be such an excerpt too: its first quote whose direction shows (here
    # a closing one) says it starts inside a quotation.
    said = 'so on," he said. "Yes," she said, "and on." ' * 5
    (tmp_path / "excerpt.txt").write_text(said)
    assert main(["visualize", str(run), "--text", str(tmp_path / "excerpt.txt"), "--out",
                 str(tmp_path / "x.html")]) == 0
    data = data_of((tmp_path / "x.html").read_text())
    layers = sr.inspect(ckpt.model, ckpt.vocab, said, clean=False).layers
    truth = properties(said, "")  # the file's start: lines and words start there
    truth["in_quotes"] = properties('He said, "and ' + said, "")["in_quotes"][14:]
    assert truth["in_quotes"][0] == 1
    assert data["units"] == {p: [[a, b, c, round(r, 4)] for a, b, c, r in rows]
                             for p, rows in find_units(layers, truth).items()}
