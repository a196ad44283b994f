"""Any language end to end (issue #30): a Russian and a Chinese corpus train, sample, evaluate,
visualize, serve, export and import in their own script, from the CLI and the API; a bytes
vocabulary's cut characters; the two-byte prepared corpus; `min_count`; exact resume; MPI.
The synthetic texts stand in where ../shared/data is absent; Onegin is used where it exists."""

import json
import random
import threading
import unicodedata

import numpy as np
import pytest
from conftest import shared_file

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.data import prepare
from scratchrnn.data.vocab import UNKNOWN, Vocab
from scratchrnn.store.checkpoint import save_checkpoint

TINY = ["--hidden", "16", "--layers", "1", "--batch", "4", "--seq-len", "16", "--max-steps",
        "12", "--eval-every", "6", "--sample-length", "0", "--quiet"]
TINY_API = dict(hidden=16, layers=1, batch=4, seq_len=16, max_steps=12, eval_every=6,
                sample_length=0)
CJK = [chr(0x4E00 + i) for i in range(320)]  # > 256 distinct: ids are uint16
RU_WORDS = ("мой дядя самых честных правил когда не в шутку занемог он уважать себя заставил "
            "и лучше выдумать не мог его пример другим наука но боже мой какая скука ёлка "
            "Онегин Татьяна Ленский Ольга").split()


def russian(lines=200, seed=0) -> str:
    """Cyrillic prose with «», „“ and a dash."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        words = " ".join(rng.choice(RU_WORDS) for _ in range(rng.randint(4, 9)))
        out.append(f"«{words.capitalize()}», — сказал он „{rng.choice(RU_WORDS)}“.")
    return "\n".join(out) + "\n"


def chinese(lines=200, seed=0) -> str:
    """Lines of 320 distinct CJK characters with Chinese punctuation 。，「」."""
    rng = random.Random(seed)
    body = "".join(CJK)  # every character at least once
    out = [body[i:i + 40] + "。" for i in range(0, len(body), 40)]
    for _ in range(lines):
        quote = "".join(rng.choice(CJK) for _ in range(rng.randint(3, 8)))
        tail = "".join(rng.choice(CJK[:40]) for _ in range(rng.randint(4, 10)))
        out.append(f"「{quote}」，{tail}。")
    return "\n".join(out) + "\n"


LANGS = {"ru": (russian, "Мой дядя", "ж"), "zh": (chinese, "「一", "丁"),
         "onegin": (None, "Мой дядя", "ж")}  # the real file, where ../shared/data has it


@pytest.fixture(scope="module", params=sorted(LANGS))
def lang(request, tmp_path_factory):
    """(name, text file, prompt, a character of the script) and a CLI run trained on it."""
    name = request.param
    make, prompt, letter = LANGS[name]
    d = tmp_path_factory.mktemp(name)
    path = d / f"{name}.txt"
    if make is None:
        path = shared_file("onegin_ru.txt")
    else:
        path.write_text(make(), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCRATCHRNN_HOME", str(d / "cache"))
        assert main(["train", "--text", str(path), "--out", str(d / "run"), *TINY]) == 0
    return name, path, prompt, letter, d / "run"


def test_cli_trains_samples_evaluates_and_visualizes_in_the_script(lang, capsys):
    name, path, prompt, letter, run = lang
    ckpt = sr.load_checkpoint(run)
    text = path.read_text(encoding="utf-8")
    assert ckpt.vocab.kind == "chars" and not ckpt.vocab.is_ascii
    assert set(ckpt.vocab.chars) == set(unicodedata.normalize("NFC", text))  # nothing lost
    if name == "zh":  # the prepared ids are two bytes, and every punctuation mark is kept
        assert ckpt.vocab.dtype == np.uint16 and set("。，「」") <= set(ckpt.vocab.chars)
    else:
        assert set("«»—ё") <= set(ckpt.vocab.chars)
    assert main(["sample", str(run), "--prime", prompt, "--length", "40", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(prompt) and set(out.strip()) <= set(ckpt.vocab.chars)
    assert out.rstrip("\n") == sr.sample(ckpt.model, ckpt.vocab, prompt, 40, 0.8, seed=1)
    assert main(["eval", str(run), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert np.isfinite(row["bits_per_char"]) and row["chars"] > 0
    assert main(["visualize", str(run), "--chars", "60", "--out", str(run / "page.html")]) == 0
    assert (run / "page.html").stat().st_size > 1000


def test_eval_of_a_text_with_other_scripts_says_what_they_are_read_as(lang, tmp_path, capsys):
    """A vocabulary with neither U+FFFD nor a space (the Chinese text has none) reads an
    unknown character as its first symbol, the newline: the warning says that, not "spaces";
    a text with nothing the model knows is refused in one line, with no warning before it."""
    name, path, prompt, letter, run = lang
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(path.read_text(encoding="utf-8")[:2000] + "\u05e9\u05dc\u05d5\u05dd\n")
    assert main(["eval", str(run), "--text", str(mixed)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "4 of" in err[0]
    instead = "read as '\\n' U+000A" if name == "zh" else "read as spaces"
    assert err[0].endswith(f"{instead}; the loss is that of the text so changed")
    (tmp_path / "he.txt").write_text("\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd\n" * 30)
    assert main(["eval", str(run), "--text", str(tmp_path / "he.txt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scratchrnn: error: ")


@pytest.mark.parametrize("stdout", ["latin-1", "ascii"])
def test_a_sample_to_a_stream_that_cannot_hold_the_script_is_escaped(stdout, lang, tmp_path):
    """`scratchrnn sample RUN > file` on a cp1252 Windows, or PYTHONIOENCODING: characters the
    stream's encoding lacks are written as \\u escapes, not a UnicodeEncodeError traceback;
    a training's samples alike."""
    import os
    import subprocess
    import sys

    name, path, prompt, letter, run = lang
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONIOENCODING=stdout)
    proc = subprocess.run([sys.executable, "-m", "scratchrnn", "sample", str(run), "--prime",
                           prompt, "--length", "20"], capture_output=True, env=env,
                          timeout=120)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr.decode()[-500:]
    want = sr.sample(sr.load_checkpoint(run).model, sr.load_checkpoint(run).vocab, prompt, 20,
                     0.8)
    assert proc.stdout.decode(stdout) == want.encode(stdout, "backslashreplace").decode(
        stdout) + "\n"
    proc = subprocess.run([sys.executable, "-m", "scratchrnn", "train", "--text", str(path),
                           "--out", str(tmp_path / "run"), *TINY[:-3], "--sample-length", "30"],
                          capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr[-500:]


def test_the_api_trains_samples_evaluates_and_inspects_in_the_script(lang, tmp_path):
    name, path, prompt, letter, _ = lang
    result = sr.train(sr.TrainConfig(text=str(path), out=str(tmp_path / "api"), **TINY_API),
                      progress=False, log=lambda *a: None)
    vocab = result.vocab
    assert letter in vocab.chars and len(vocab) > (256 if name == "zh" else 40)
    text = sr.sample(result.model, vocab, prompt, 30, seed=2)
    assert text.startswith(prompt) and len(text) == len(prompt) + 30
    corpus = sr.load_corpus(str(path), vocab)
    assert corpus.train.dtype == vocab.dtype and vocab.decode(corpus.val[:20]).strip()
    assert np.isfinite(sr.evaluate(result.model, corpus.val))
    seen = sr.inspect(result.model, vocab, prompt + letter)
    assert seen.text == prompt + letter and np.isfinite(seen.mean_surprisal)


def test_the_server_speaks_the_script(lang):
    import http.client

    from scratchrnn.serve import server as serve
    from scratchrnn.serve.requests import GENERATE_DEFAULTS

    name, path, prompt, letter, run = lang
    ckpt = sr.load_checkpoint(run)
    srv = serve.make_server(run, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()

    def post(where, body):
        conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=30)
        try:
            conn.request("POST", where, body=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json"})
            res = conn.getresponse()
            return res.status, res.read().decode("utf-8")
        finally:
            conn.close()

    try:
        asked = dict(prime=prompt, length=30, seed=5)
        status, text = post("/api/generate", asked)
        want = {k: v for k, v in {**GENERATE_DEFAULTS, **asked}.items()
                if k not in ("clamp", "num_samples")}  # what the request adds to generate's
        assert status == 200 and text == "".join(sr.generate(ckpt.model, ckpt.vocab, **want))
        status, body = post("/api/inspect", {"text": prompt + letter})
        assert status == 200 and json.loads(body)["text"] == prompt + letter
        # a character the model never saw: named, with its code point, in one line
        status, body = post("/api/generate", {"prime": prompt + "\u05d0"})
        assert status == 400 and "'\u05d0' U+05D0" in json.loads(body)["error"]
        status, body = post("/api/generate", {"prime": prompt + "\udc00"})
        assert status == 400 and "\n" not in body
    finally:
        srv.shutdown()
        srv.server_close()


def test_export_and_import_keep_the_vocabulary_and_the_probabilities(lang, tmp_path, capsys):
    pytest.importorskip("safetensors")
    from interop_util import reference

    name, path, prompt, letter, run = lang
    ckpt = sr.load_checkpoint(run)
    out = tmp_path / "model.safetensors"
    assert main(["export", str(run), "--format", "torch", "--out", str(out)]) == 0
    assert main(["import", str(out), "--out", str(tmp_path / "back")]) == 0
    back = sr.load_checkpoint(tmp_path / "back")
    assert back.vocab == ckpt.vocab
    ids = ckpt.vocab.encode(ckpt.vocab.clean(path.read_text(encoding="utf-8")[:200]))
    ids = ids[:198].reshape(2, 99).T  # (T, B)
    np.testing.assert_array_equal(reference(back.model, ids)[0], reference(ckpt.model, ids)[0])


def test_import_takes_a_vocabulary_of_cjk_characters(tmp_path, capsys):
    """A PyTorch model of 320 CJK characters, its vocabulary an itos JSON list: imported, it
    samples and inspects in its own characters."""
    from scratchrnn.interop.export import write_safetensors

    V, E, H = len(CJK), 6, 8
    rng = np.random.default_rng(0)
    shapes = {"embed.weight": (V, E), "rnn.weight_ih_l0": (3 * H, E),
              "rnn.weight_hh_l0": (3 * H, H), "rnn.bias_ih_l0": (3 * H,),
              "rnn.bias_hh_l0": (3 * H,), "fc.weight": (V, H), "fc.bias": (V,)}
    with open(tmp_path / "m.safetensors", "wb") as f:
        write_safetensors(f, {k: rng.normal(size=s).astype(np.float32)
                              for k, s in shapes.items()}, {})
    (tmp_path / "itos.json").write_text(json.dumps(CJK, ensure_ascii=False), encoding="utf-8")
    assert main(["import", str(tmp_path / "m.safetensors"), "--vocab",
                 str(tmp_path / "itos.json"), "--out", str(tmp_path / "run")]) == 0
    ckpt = sr.load_checkpoint(tmp_path / "run")
    assert ckpt.vocab.chars == "".join(CJK) and ckpt.vocab.dtype == np.uint16
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "run"), "--prime", "一丁", "--length", "5"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("一丁") and len(out) == 7 and set(out) <= set(CJK)


def test_the_export_holds_the_vocabulary_as_unicode(lang, tmp_path):
    """The safetensors metadata carries the characters themselves, as JSON text any reader
    can take (not transliterated, not escaped bytes)."""
    pytest.importorskip("safetensors")
    from safetensors import safe_open

    name, path, prompt, letter, run = lang
    out = tmp_path / "m.safetensors"
    assert main(["export", str(run), "--format", "torch", "--out", str(out)]) == 0
    with safe_open(str(out), "np") as f:
        vocab = json.loads(f.metadata()["vocab"])
    assert vocab == sr.load_checkpoint(run).vocab.chars and letter in vocab


# ---------------------------------------------------------------- bytes


def constant_model(byte: int) -> sr.CharRNN:
    """A model of a bytes vocabulary that always predicts `byte` (argmax)."""
    model = sr.CharRNN(256, 8, "gru", 1, seed=0)
    model.params["W_y"][...] = 0
    model.params["b_y"][...] = 0
    model.params["b_y"][byte] = 10.0
    return model


def test_a_cut_multibyte_character_is_shown_as_u_fffd(tmp_path, capsys):
    """0xE4 begins a three-byte character: a model that only ever says 0xE4 makes no whole
    character, and each cut one prints as U+FFFD, through the API and the CLI."""
    model, vocab = constant_model(0xE4), Vocab.bytes()
    assert sr.sample(model, vocab, "中", 1, argmax=True) == "中" + UNKNOWN
    assert sr.sample(model, vocab, "", 3, argmax=True) == UNKNOWN * 3
    (tmp_path / "run").mkdir()
    save_checkpoint(tmp_path / "run" / "checkpoint.npz", model, vocab, {})
    assert main(["sample", str(tmp_path / "run"), "--prime", "中", "--length", "2",
                 "--argmax"]) == 0
    assert capsys.readouterr().out == "中" + UNKNOWN * 2 + "\n"


def test_a_bytes_run_never_raises_wherever_a_sample_stops(tmp_path):
    path = tmp_path / "zh.txt"
    path.write_text(chinese(80))
    result = sr.train(sr.TrainConfig(text=str(path), out=str(tmp_path / "run"), vocab="bytes",
                                     **TINY_API), progress=False, log=lambda *a: None)
    assert result.vocab.kind == "bytes" and sr.load_checkpoint(tmp_path / "run").vocab.kind \
        == "bytes"
    for length in range(1, 8):  # stops at every offset inside a three-byte character
        text = sr.sample(result.model, result.vocab, "「一", length, seed=length)
        text.encode("utf-8")  # valid text: no lone surrogate, nothing undecodable


def test_a_bytes_run_exports_and_imports_as_bytes(tmp_path, capsys):
    pytest.importorskip("safetensors")
    path = tmp_path / "ru.txt"
    path.write_text(russian(60))
    run = tmp_path / "run"
    assert main(["train", "--text", str(path), "--out", str(run), "--vocab", "bytes",
                 *TINY]) == 0
    assert main(["export", str(run), "--format", "torch", "--out", str(tmp_path / "m.st")]) == 0
    assert main(["import", str(tmp_path / "m.st"), "--out", str(tmp_path / "back")]) == 0
    assert sr.load_checkpoint(tmp_path / "back").vocab == Vocab.bytes()
    capsys.readouterr()
    outs = []
    for where in (run, tmp_path / "back"):
        assert main(["sample", str(where), "--prime", "Мой", "--length", "9", "--seed",
                     "4"]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and outs[0].startswith("Мой")


def test_a_bytes_run_visualizes(tmp_path):
    """The page of a bytes run (its positions are bytes, its text is characters). Needs the
    inside/ work of r4-unitext (5a3ef74): before it, find_units raised a ValueError."""
    path = tmp_path / "zh.txt"
    path.write_text(chinese(60))
    run = tmp_path / "run"
    assert main(["train", "--text", str(path), "--out", str(run), "--vocab", "bytes",
                 *TINY]) == 0
    assert main(["visualize", str(run), "--chars", "60", "--out", str(run / "p.html")]) == 0
    assert (run / "p.html").stat().st_size > 1000


def test_a_bytes_run_serves_whole_characters(tmp_path):
    """/api/generate streams text, not bytes: what sr.generate gives, valid UTF-8, with any
    character cut by the end shown as U+FFFD."""
    import http.client

    from scratchrnn.serve import server as serve

    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "checkpoint.npz", constant_model(0xE4), Vocab.bytes(), {})
    srv = serve.make_server(run, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=30)
        conn.request("POST", "/api/generate", body=json.dumps(
            {"prime": "中", "length": 4, "argmax": True}).encode(),
            headers={"Content-Type": "application/json"})
        res = conn.getresponse()
        assert res.status == 200 and res.read().decode("utf-8") == UNKNOWN * 4
        conn.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_prompt_typed_decomposed_reads_as_composed(lang):
    """NFC, as the corpus was cleaned: "й" typed as и + U+0306 is the model's "й"."""
    name, path, prompt, letter, run = lang
    ckpt = sr.load_checkpoint(run)
    if "й" not in ckpt.vocab.chars:
        pytest.skip("a text without й")
    composed = sr.sample(ckpt.model, ckpt.vocab, "мой", 20, seed=3)
    decomposed = sr.sample(ckpt.model, ckpt.vocab, "мои\u0306", 20, seed=3)
    assert decomposed == "мои\u0306" + composed[3:]


def test_an_onnx_export_says_its_vocabulary_is_bytes(tmp_path):
    """Else a reader takes the 256 symbols for the characters U+0000..U+00FF (Latin-1)."""
    onnx = pytest.importorskip("onnx")
    from scratchrnn.interop.onnx_export import export_onnx

    for vocab, kind in ((Vocab.bytes(), "bytes"), (Vocab("".join(CJK)), None)):
        out = export_onnx(sr.CharRNN(len(vocab), 8, "gru", 1, seed=0), vocab,
                          tmp_path / f"{len(vocab)}.onnx")
        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert props["vocab"] == vocab.chars and props.get("vocab_kind") == kind


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_utf16_text_is_text_when_its_encoding_is_given(encoding, tmp_path):
    """UTF-16 and UTF-32 text is full of NUL bytes: with its `encoding` it is read as text,
    a file or a folder of them (not refused, not skipped as binary)."""
    text = chinese(30)
    folder = tmp_path / "texts"
    folder.mkdir()
    for name in ("a.txt", "b.txt"):
        (folder / name).write_bytes(text.encode(encoding))
    one = sr.load_corpus(str(folder / "a.txt"), "unicode", 0, 0, encoding=encoding)
    assert one.vocab.decode(one.train) == text
    both = sr.load_corpus(str(folder), "unicode", 0, 0, encoding=encoding)
    assert both.vocab.decode(both.train) == text + "\n" + text
    with pytest.raises(sr.ScratchRNNError, match="`encoding` if it is UTF-16"):
        sr.load_corpus(str(folder / "a.txt"), "unicode")


def test_a_shift_jis_file_trains_on_its_utf8(tmp_path):
    text = "こんにちは、世界。日本語の文章です。\n" * 60
    path = tmp_path / "sjis.txt"
    path.write_bytes(text.encode("shift_jis"))
    corpus = sr.load_corpus(str(path), "bytes", 0, 0, encoding="shift_jis")
    assert corpus.train.tobytes() == text.encode("utf-8")
    assert main(["train", "--text", str(path), "--out", str(tmp_path / "run"), "--encoding",
                 "shift_jis", "--vocab", "bytes", *TINY]) == 0
    assert main(["train", "--text", str(path), "--out", str(tmp_path / "chars"), "--encoding",
                 "shift_jis", *TINY]) == 0
    assert "日" in sr.load_checkpoint(tmp_path / "chars").vocab.chars


# ---------------------------------------------------------------- min_count, exact resume


def test_min_count_maps_rare_characters_to_u_fffd_and_the_counts_add_up(tmp_path, capsys):
    text = russian(100) + "Ъ ЩЮ ѣ\n"  # four characters seen once each
    path = tmp_path / "ru.txt"
    path.write_text(text)
    result = sr.train(sr.TrainConfig(text=str(path), out=str(tmp_path / "run"), vocab="unicode",
                                     min_count=2, **TINY_API), progress=False,
                      log=lambda *a: None)
    chars = result.vocab.chars
    assert UNKNOWN in chars and not set("ЪЩЮѣ") & set(chars)
    meta = sr.load_checkpoint(tmp_path / "run").meta
    counts = dict(zip(chars, meta["vocab_counts"], strict=True))
    assert sum(counts.values()) == len(text) and counts[UNKNOWN] == 4
    assert counts["ё"] == text.count("ё")
    corpus = sr.load_corpus(str(path), result.vocab, 0, 0)
    assert result.vocab.decode(corpus.train).endswith("\ufffd \ufffd\ufffd \ufffd\n")
    # a prompt with one: refused, saying what the model read it as
    assert main(["sample", str(tmp_path / "run"), "--prime", "Мой Ъ"]) == 1
    assert "'Ъ' U+042A; remove them, or write U+FFFD for them" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "run"), "--prime", "Мой \ufffd"]) == 0


def interrupt_at(monkeypatch, step):
    """A real SIGINT right after update number `step` (as test_train.py does)."""
    import signal

    from scratchrnn.nn import optim

    real = optim.update

    def update(name, params, grads, state, lr, betas=optim.ADAM_BETAS):
        real(name, params, grads, state, lr, betas)
        if int(state["t"]) == step:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr("scratchrnn.nn.optim.update", update)


@pytest.mark.parametrize("vocab", ["unicode", "bytes"])
def test_a_stopped_and_resumed_run_equals_one_run_straight_through(vocab, tmp_path,
                                                                     monkeypatch):
    path = tmp_path / "zh.txt"
    path.write_text(chinese(60))

    def cfg(name):
        return sr.TrainConfig(text=str(path), out=str(tmp_path / name), vocab=vocab,
                              **dict(TINY_API, max_steps=16, eval_every=5))

    full = sr.train(cfg("full"), progress=False, log=lambda *a: None)
    with monkeypatch.context() as m:
        interrupt_at(m, 7)
        cut = sr.train(cfg("part"), progress=False, log=lambda *a: None)
    assert cut.stopped == "SIGINT" and cut.step == 7
    part = sr.train(resume=tmp_path / "part", progress=False, log=lambda *a: None)
    assert part.step == full.step == 16 and part.vocab == full.vocab
    for k, v in full.model.params.items():
        assert np.array_equal(v, part.model.params[k]), k
    a, b = sr.load_checkpoint(full.out), sr.load_checkpoint(part.out)
    for k in a.opt_state:
        assert np.array_equal(a.opt_state[k], b.opt_state[k]), k
    assert a.meta["vocab_counts"] == b.meta["vocab_counts"]


# ---------------------------------------------------------------- the two-byte prepared corpus


def test_a_two_byte_corpus_is_mapped_reused_and_prepared_again_when_its_index_lies(
        tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "CHUNK_BYTES", 256)  # many chunks, characters cut between them
    monkeypatch.setattr("scratchrnn.data.corpus.MEMMAP_BYTES", 10)  # anything counts as large
    path = tmp_path / "zh.txt"
    path.write_text(chinese(100))
    run = tmp_path / "run"
    a = sr.load_corpus(str(path), "unicode", 0.1, 0.1, cache=run)
    b = sr.load_corpus(str(path), "unicode", 0.1, 0.1)  # in memory
    assert a.mapped == run / "corpus.u8" and isinstance(a.train, np.memmap)
    assert a.vocab == b.vocab and len(a.vocab) > 256 and a.train.dtype == np.uint16
    n = len(a.train) + len(a.val) + len(a.test)
    assert a.mapped.stat().st_size == 2 * n  # two bytes per symbol
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(a, part), getattr(b, part))
    stamp = a.mapped.stat().st_mtime_ns
    again = sr.load_corpus(str(path), "unicode", 0.1, 0.1, cache=run)
    assert again.mapped.stat().st_mtime_ns == stamp  # reused, not prepared again
    side = run / "corpus.json"
    index = json.loads(side.read_text())
    for lie in (dict(index, chars=index["chars"] + 1),  # a length the file does not have
                dict(index, chars_in_vocab=index["chars_in_vocab"][:200],  # one-byte ids
                     counts=index["counts"][:200]),
                dict(index, kind="klingon"), dict(index, chars_in_vocab="\ud800")):
        side.write_text(json.dumps(lie))
        fresh = sr.load_corpus(str(path), "unicode", 0.1, 0.1, cache=run)
        assert fresh.vocab == b.vocab and np.array_equal(fresh.train, b.train)
        assert json.loads(side.read_text()) == index  # prepared again, and vouched for anew
    # training prepares its own in its run folder, and the resumed run reads it again
    run = tmp_path / "trained"
    sr.train(sr.TrainConfig(text=str(path), out=str(run), vocab="unicode", val_frac=0.1,
                            test_frac=0.1, **dict(TINY_API, max_steps=4, eval_every=4)),
             progress=False, log=lambda *a: None)
    stamp = (run / "corpus.u8").stat().st_mtime_ns
    assert (run / "corpus.u8").stat().st_size == 2 * n
    result = sr.train(resume=run, max_steps=8, progress=False, log=lambda *a: None)
    assert result.step == 8 and result.vocab == b.vocab
    assert (run / "corpus.u8").stat().st_mtime_ns == stamp
    # and eval reads it there, without preparing a copy in the cache
    assert main(["eval", str(run), "--split", "test"]) == 0
    assert not (tmp_path / "cache" / "prepared").exists()
    assert (run / "corpus.u8").stat().st_mtime_ns == stamp


def test_a_vocabulary_holds_65536_symbols_and_no_more():
    chars = "".join(map(chr, range(0x10000, 0x10000 + 65_536)))
    vocab = Vocab.from_counts(dict.fromkeys(chars, 1))
    assert len(vocab) == 65_536 and vocab.dtype == np.uint16
    ids = vocab.encode(chars[-3:] + chars[:2])
    assert ids.tolist() == [65_533, 65_534, 65_535, 0, 1]
    assert vocab.decode(ids) == chars[-3:] + chars[:2]
    with pytest.raises(sr.ScratchRNNError, match="65,537 distinct characters"):
        Vocab.from_counts(dict.fromkeys(chars + "a", 1))


def test_ids_widen_past_256_symbols(tmp_path):
    """256 distinct characters are one byte each; the 257th makes every id two."""
    for n, dtype in ((256, np.uint8), (257, np.uint16)):
        path = tmp_path / f"{n}.txt"
        chars = "\n" + "".join(CJK[:n - 1])
        path.write_text(chars * 30)
        corpus = sr.load_corpus(str(path), "unicode", 0, 0)
        assert len(corpus.vocab) == n and corpus.train.dtype == dtype
        assert corpus.vocab.decode(corpus.train) == chars * 30


# ---------------------------------------------------------------- the real files


def test_onegin_trains_samples_and_evaluates(tmp_path, capsys):
    onegin = shared_file("onegin_ru.txt")
    run = tmp_path / "onegin"
    assert main(["train", "--text", str(onegin), "--out", str(run), *TINY[:-1]]) == 0
    out = capsys.readouterr().out
    assert "vocabulary unicode:" in out and "not ASCII" in out
    vocab = sr.load_checkpoint(run).vocab
    assert {"Т", "а", "ь", "я", "«", "»"} <= set(vocab.chars)
    assert main(["sample", str(run), "--prime", "Мой дядя", "--length", "30"]) == 0
    assert capsys.readouterr().out.startswith("Мой дядя")
    assert main(["eval", str(run), "--split", "test"]) == 0


@pytest.mark.parametrize("name", ["pg98.txt", "tinyshakespeare.txt"])
def test_auto_keeps_ascii_for_english_books(name):
    book = shared_file(name)
    corpus = sr.load_corpus(str(book))
    assert corpus.vocab_name == "ascii" and corpus.vocab == Vocab.ascii()
    assert len(corpus.vocab) == 96 and corpus.train.dtype == np.uint8


# ---------------------------------------------------------------- MPI


def test_two_ranks_train_a_unicode_text_as_one_process(tmp_path):
    from test_distributed import HAVE_MPI4PY, MPIEXEC, assert_same_run, mpirun

    if not (MPIEXEC and HAVE_MPI4PY):
        pytest.skip("needs mpiexec and mpi4py")
    path = tmp_path / "zh.txt"
    path.write_text(chinese(60))
    argv = ["--text", path, "--hidden", "16", "--layers", "1", "--batch", "4", "--seq-len",
            "8", "--max-steps", "6", "--eval-every", "6", "--dtype", "float64",
            "--sample-length", "0", "--quiet"]
    assert main(["train", *map(str, argv), "--out", str(tmp_path / "one")]) == 0
    r = mpirun(2, [*argv, "--out", tmp_path / "two"])
    assert r.returncode == 0, r.stderr
    assert_same_run(tmp_path / "one", tmp_path / "two")
    assert sr.load_checkpoint(tmp_path / "two").vocab.dtype == np.uint16
