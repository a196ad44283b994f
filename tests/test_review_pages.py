"""A hostile review of the pages, the server and sampling where they meet vocabularies of any
script (round 4): each test failed before its fix. (tests/test_review_r4.py is the data path's
review.)"""

import contextlib
import http.client
import json
import threading

import scratchrnn as sr
from scratchrnn.data.vocab import Vocab
from scratchrnn.store.checkpoint import save_checkpoint

RUSSIAN = "\n абвгдежзийклмнопрстуфхцчшщъыьэюя"


def saved_run(folder, vocab: Vocab, hidden=8, seed=0):
    """A run folder holding an untrained model of `vocab`."""
    run = folder / "run"
    run.mkdir()
    model = sr.CharRNN(len(vocab), hidden_size=hidden, cell="rnn", seed=seed)
    save_checkpoint(run / "checkpoint.npz", model, vocab, {})
    return run


@contextlib.contextmanager
def served(run):
    from scratchrnn.serve import server as serve

    srv = serve.make_server(run, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def post(where, body):
        conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=60)
        try:
            conn.request("POST", where, body=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json"})
            res = conn.getresponse()
            return res.status, res.read().decode("utf-8")
        finally:
            conn.close()
    try:
        yield post
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_server_counts_a_prompt_as_its_model_reads_it(tmp_path):
    """A model of Cyrillic reads "щ" as one character; the server counted its transliteration
    ("shch", four) and refused a prompt of 1,500 characters as 6,000."""
    run = saved_run(tmp_path, Vocab(RUSSIAN))
    prompt = "щ" * 1500
    with served(run) as post:
        status, body = post("/api/generate", {"prime": prompt, "length": 3, "seed": 1})
        assert status == 200, body
        assert body == "".join(sr.generate(*_loaded(run), prompt, 3, 0.8, seed=1))
        status, body = post("/api/inspect", {"text": prompt})
        assert status == 200, body
        status, body = post("/api/generate", {"prime": "щ" * 4001, "length": 3})
        assert status == 400 and "4,001" in body  # the bound itself holds


def _loaded(run):
    ckpt = sr.load_checkpoint(run)
    return ckpt.model, ckpt.vocab


def test_a_wide_beam_over_a_large_vocabulary_holds_a_few_rows_of_candidates():
    """--beam 256 over V=65,536 symbols (a request the server takes) held every candidate
    several times over (scores, their negation, an int64 argsort, the stacked rows): 3.8 GB
    and 3 s per character. Each alive text's own best `width` candidates are all that can be
    among the best `width`, so only those are sorted."""
    import tracemalloc

    V, width, length = 20_000, 64, 3
    vocab = Vocab("".join(chr(0x4E00 + i) for i in range(V)))
    model = sr.CharRNN(V, hidden_size=4, cell="rnn", seed=0)
    tracemalloc.start()
    try:
        start = tracemalloc.take_snapshot()
        base = tracemalloc.get_traced_memory()[0]
        text = sr.sample(model, vocab, "", length, beam=width)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del start
    row = V * 8  # one text's log-probabilities, float64
    assert len(text) == length
    assert peak < width * row, f"{peak / (width * row):.1f} rows of candidates per text"


def test_a_prompt_file_saved_with_a_byte_order_mark_reads_as_its_text(tmp_path, capsys):
    """Notepad saves UTF-8 with a BOM; the corpus reader drops it, the prompt file fed it to
    the model: refused by a model of Cyrillic (U+FEFF unseen), three bytes of prompt to a
    bytes model."""
    from scratchrnn.cli.commands import main

    prompt = tmp_path / "prompt.txt"
    prompt.write_bytes(b"\xef\xbb\xbf" + "мой".encode())
    for vocab in (Vocab(RUSSIAN), Vocab.bytes()):
        (tmp_path / vocab.kind).mkdir()
        run = saved_run(tmp_path / vocab.kind, vocab)
        assert main(["sample", str(run), "--prime-file", str(prompt), "--length", "5",
                     "--seed", "3"]) == 0
        want = sr.sample(*_loaded(run), "мой", 5, 0.8, seed=3)
        assert capsys.readouterr().out == want + "\n"


def test_several_samples_prepare_the_weights_once(tmp_path, monkeypatch, capsys):
    """Each sample made its own stepper: transposed and scaled copies of every weight. At
    V=6,400 and H=256 (LSTM) that is 60 ms, so --num-samples 1000 --length 5 took 8 times as
    long as one sample of the same 5,000 characters, and a server request of few characters
    could cost a minute. One stepper serves them all, its state zeroed for each."""
    from scratchrnn.cli.commands import main
    from scratchrnn.sampling import sampler

    made = []
    real = sampler.stepper
    monkeypatch.setattr(sampler, "stepper", lambda *a, **k: made.append(1) or real(*a, **k))
    run = saved_run(tmp_path, Vocab(RUSSIAN), hidden=6)
    model, vocab = _loaded(run)
    alone = [sr.sample(model, vocab, "мой", 20, seed=s, stop_at="ж") for s in range(4, 9)]
    made.clear()
    assert sr.sample(model, vocab, "мой", 20, seed=4, stop_at="ж", num_samples=5) == alone
    assert len(made) == 1
    made.clear()
    assert main(["sample", str(run), "--prime", "мой", "--length", "20", "--seed", "4",
                 "--stop-at", "ж", "--num-samples", "5", "--temperature", "1"]) == 0
    out = capsys.readouterr().out
    assert [t.split("---\n")[1] for t in out.split("--- sample")[1:]] == [a + "\n" for a in alone]
    assert len(made) == 1
    made.clear()
    with served(run) as post:
        status, body = post("/api/generate", {"prime": "мой", "length": 20, "seed": 4,
                                              "temperature": 1, "stop_at": "ж",
                                              "num_samples": 5})
    assert status == 200 and json.loads(body)["samples"] == [a[3:] for a in alone]  # no prompt
    assert len(made) == 1


def test_a_stop_text_the_model_never_writes_is_warned_of(tmp_path, capsys):
    """--stop-at '—' on a model of ASCII (it writes '--') or 'Ж' on one without capitals can
    never match: the sample ran its whole length in silence, as if the flag were ignored."""
    import warnings

    import pytest

    from scratchrnn.cli.commands import main

    run = saved_run(tmp_path, Vocab.ascii())
    model, vocab = _loaded(run)
    with pytest.warns(UserWarning, match=r"'—' U\+2014.*never writes.*'a--'"):
        sr.sample(model, vocab, "a", 10, stop_at="a—")
    assert main(["sample", str(run), "--length", "5", "--stop-at", "—"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--stop-at" in err and "U+2014" in err
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stop text of its characters, or any for bytes
        sr.sample(model, vocab, "a", 10, stop_at="--")
        sr.sample(sr.CharRNN(256, 4), Vocab.bytes(), "a", 10, stop_at="—")
        ru = Vocab(RUSSIAN)
        sr.sample(sr.CharRNN(len(ru), 4), ru, "", 10, stop_at="ж")
    with pytest.warns(UserWarning, match="'Ж' U\\+0416"):
        sr.sample(sr.CharRNN(len(ru), 4), ru, "", 10, stop_at="Ж")


def test_a_prompt_files_line_break_reads_as_a_space_where_the_model_has_none(tmp_path, capsys):
    """A text without line breaks (one long line) makes a vocabulary without "\\n"; a prompt
    file ends with one (editors add it), and --prime-file refused it as a character the
    model never saw, where the html page and a model of ASCII read it as a space."""
    from scratchrnn.cli.commands import main

    run = saved_run(tmp_path, Vocab(RUSSIAN.replace("\n", "")))
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("мой\nдядя\n", encoding="utf-8")
    assert main(["sample", str(run), "--prime-file", str(prompt), "--length", "5"]) == 0
    want = sr.sample(*_loaded(run), "мой дядя ", 5, 0.8)[len("мой дядя "):]
    assert capsys.readouterr().out == "мой\nдядя\n" + want + "\n"


def test_several_samples_read_their_prompt_once(tmp_path, monkeypatch):
    """Each sample read the prompt again: a server request of 1,000 samples of 5 characters
    after a prompt of 4,000 took 4 million model steps where its bound says 5,000 (and
    the prompt's 4,000). The state after the prompt is kept and given to each sample."""
    from scratchrnn.sampling import sampler

    calls = []
    real = sampler.stepper

    def counting(*a, **k):
        step = real(*a, **k)

        def counted(i):
            calls.append(i)
            return step(i)
        counted.state, counted.restore, counted.reset = step.state, step.restore, step.reset
        return counted
    monkeypatch.setattr(sampler, "stepper", counting)
    run = saved_run(tmp_path, Vocab(RUSSIAN), hidden=6)
    model, vocab = _loaded(run)
    prompt = "мой дядя самых честных правил " * 2  # 60 characters
    alone = [sr.sample(model, vocab, prompt, 5, seed=s) for s in range(3, 13)]
    calls.clear()
    assert sr.sample(model, vocab, prompt, 5, seed=3, num_samples=10) == alone
    assert len(calls) == len(prompt) + 10 * 5
    for kw in (dict(beam=2), dict(clamp=(0, 1, 0.5))):
        want = sr.sample(model, vocab, prompt, 5, **kw)
        calls.clear()
        steps = sampler.shared_stepper(model, kw.get("clamp"))
        for _ in range(3):
            assert "".join(sr.generate(model, vocab, prompt, 5, steps=steps, **kw)) \
                == want[len(prompt):]
        assert len(calls) < 2 * len(prompt)
