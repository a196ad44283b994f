"""The Python API refuses every bad argument the command line would refuse with a
ScratchRNNError whose message says what is wrong, never a TypeError or ValueError from deep
inside NumPy, and never by allocating first. One table; add a row for each new way to fail."""

import time

import numpy as np
import pytest

import scratchrnn as sr
from scratchrnn import limits
from scratchrnn.interop.export import export
from scratchrnn.interop.html_export import export_html
from scratchrnn.sampling.options import read_prompt

V = 10
MODEL = sr.CharRNN(V, 8, "gru", 1, seed=0)
DROPPY = sr.CharRNN(V, 8, "gru", 1, dropout=0.5)
WEIGHT_DROPPY = sr.CharRNN(V, 8, "lstm", 1, weight_drop=0.5)
VOCAB = sr.Vocab("abcdefghij")
RU = sr.Vocab("абвгдезийк")  # a vocabulary of the text's own characters: no transliteration
BYTES_MODEL = sr.CharRNN(256, 8, "gru", 1, seed=0)
OK = np.array([[1, 2, 3]])
HUGE = 10 ** 20


def train(**kw):
    return sr.train(sr.TrainConfig(text="unused.txt", **kw), progress=False)


CASES = {
    # sampling
    "prime not a string": (lambda: sr.sample(MODEL, VOCAB, prime=5), "prompt"),
    "length not whole": (lambda: sr.sample(MODEL, VOCAB, length=2.5), "`length`"),
    "length negative": (lambda: sr.sample(MODEL, VOCAB, length=-1), "`length`"),
    "length absurd": (lambda: sr.sample(MODEL, VOCAB, length=HUGE), "`length`"),
    "temperature a word": (lambda: sr.generate(MODEL, VOCAB, temperature="hot"),
                           "`temperature`"),
    "temperature inf": (lambda: sr.sample(MODEL, VOCAB, temperature=float("inf")),
                        "`temperature`"),
    "temperature nan": (lambda: sr.sample(MODEL, VOCAB, temperature=float("nan")),
                        "`temperature`"),
    "top-k fractional": (lambda: sr.sample(MODEL, VOCAB, top_k=2.5), "`top_k`"),
    "top-k zero": (lambda: sr.sample(MODEL, VOCAB, top_k=0), "`top_k`"),
    "top-p a word": (lambda: sr.sample(MODEL, VOCAB, top_p="most"), "`top_p`"),
    "seed negative": (lambda: sr.sample(MODEL, VOCAB, seed=-1), "`seed`"),
    "seed a float": (lambda: sr.sample(MODEL, VOCAB, seed=1.5), "`seed`"),
    "model not a model": (lambda: sr.sample("model", VOCAB), "CharRNN"),
    "vocab not a vocab": (lambda: sr.sample(MODEL, "abc"), "Vocab"),
    "vocab of another size": (lambda: sr.sample(MODEL, sr.Vocab("abc")), "vocabulary"),
    "unknown prompt character": (lambda: sr.sample(MODEL, VOCAB, prime="xyz"), "prompt"),
    # sampling options (issue 31): one line each, naming the parameter
    "beam zero": (lambda: sr.sample(MODEL, VOCAB, beam=0), "`beam`"),
    "beam negative": (lambda: sr.generate(MODEL, VOCAB, beam=-3), "`beam`"),
    "beam a float": (lambda: sr.sample(MODEL, VOCAB, beam=2.5), "`beam`"),
    "beam too wide": (lambda: sr.sample(MODEL, VOCAB, beam=limits.MAX_BEAM + 1), "`beam`"),
    "beam with temperature": (lambda: sr.generate(MODEL, VOCAB, beam=2, temperature=0.5),
                              "`beam` and `temperature` together"),
    "beam with temperature 1": (lambda: sr.sample(MODEL, VOCAB, beam=2, temperature=1.0),
                                "`temperature` does not apply"),
    "beam with top_k": (lambda: sr.sample(MODEL, VOCAB, beam=2, top_k=3), "`top_k`"),
    "beam with top_p": (lambda: sr.sample(MODEL, VOCAB, beam=2, top_p=0.5), "`top_p`"),
    "beam with argmax": (lambda: sr.generate(MODEL, VOCAB, beam=2, argmax=True), "`argmax`"),
    "steps not a stepper": (lambda: sr.generate(MODEL, VOCAB, steps=3), "steps must be a"),
    "beam times length too many steps": (lambda: sr.generate(MODEL, VOCAB, beam=200,
                                                             length=10 ** 6), "model steps"),
    "num_samples zero": (lambda: sr.sample(MODEL, VOCAB, num_samples=0), "`num_samples`"),
    "num_samples negative": (lambda: sr.sample(MODEL, VOCAB, num_samples=-1), "`num_samples`"),
    "num_samples a string": (lambda: sr.sample(MODEL, VOCAB, num_samples="3"),
                             "`num_samples`"),
    "num_samples too many": (lambda: sr.sample(MODEL, VOCAB, num_samples=limits.MAX_SAMPLES
                                               + 1), "`num_samples`"),
    "num_samples times length": (lambda: sr.sample(MODEL, VOCAB, num_samples=1000,
                                                   length=10 ** 6), "`num_samples` 1,000 times"),
    "num_samples with a bad length": (lambda: sr.sample(MODEL, VOCAB, num_samples=2,
                                                        length="9"), "`length`"),
    "num_samples with a seed string": (lambda: sr.sample(MODEL, VOCAB, num_samples=2,
                                                         seed="1"), "`seed`"),
    "num_samples with beam": (lambda: sr.sample(MODEL, VOCAB, num_samples=2, beam=2),
                              "`num_samples` and `beam`"),
    "num_samples with a bad temperature": (lambda: sr.sample(MODEL, VOCAB, num_samples=2,
                                                             temperature=0), "`temperature`"),
    "stop_at empty": (lambda: sr.generate(MODEL, VOCAB, stop_at=""), "`stop_at` is empty"),
    "stop_at not a string": (lambda: sr.sample(MODEL, VOCAB, stop_at=5), "`stop_at`"),
    "stop_at too long": (lambda: sr.sample(MODEL, VOCAB, stop_at="a" * (limits.MAX_STOP + 1)),
                         "`stop_at`"),
    "prompt file a folder": (lambda: read_prompt("/"), "is a folder"),
    "prompt file missing": (lambda: read_prompt("no/such/prompt.txt"), "does not exist"),
    "prompt file /dev/null": (lambda: read_prompt("/dev/null"), "not a regular file"),
    # a model's window
    "negative id": (lambda: MODEL.loss_and_grads(np.array([[-1, 2]]), np.array([[1, 2]])),
                    "-1"),
    "id past the vocabulary": (lambda: MODEL.loss_and_grads(OK, np.array([[1, 2, V]])),
                               "outside"),
    "float ids": (lambda: MODEL.loss_and_grads(OK.astype(float), OK), "integer"),
    "1-D ids": (lambda: MODEL.loss_and_grads(np.array([1, 2]), np.array([2, 3])), "shape"),
    "empty window": (lambda: MODEL.loss_and_grads(np.zeros((1, 0), int),
                                                  np.zeros((1, 0), int)), "non-empty"),
    "shapes differ": (lambda: MODEL.loss_and_grads(OK, np.array([[1, 2]])), "same"),
    "ids as text": (lambda: MODEL.loss(np.array([["a", "b"]]), OK), "integer"),
    "ragged ids": (lambda: MODEL.loss([[1, 2], [3]], OK), "ids"),
    "state with wrong keys": (lambda: MODEL.loss(OK, OK, state={"h": np.zeros((1, 8))}),
                              "state"),
    "state of wrong shape": (lambda: MODEL.loss(OK, OK, state={"l0.h": np.zeros((2, 8))}),
                             "state"),
    "dropout without rng": (lambda: DROPPY.loss_and_grads(OK, OK), "rng"),
    "weight drop without rng": (lambda: WEIGHT_DROPPY.loss_and_grads(OK, OK), "weight drop"),
    "rng not a generator": (lambda: MODEL.loss_and_grads(OK, OK, rng=3), "Generator"),
    "state batch astronomical": (lambda: MODEL.init_state(HUGE), "batch"),
    # building a model
    "hidden astronomical": (lambda: sr.CharRNN(V, HUGE), "memory"),
    "layers absurd": (lambda: sr.CharRNN(V, 8, num_layers=10 ** 8), "num_layers"),
    "hidden a float": (lambda: sr.CharRNN(V, 8.5), "hidden_size"),
    "dropout a word": (lambda: sr.CharRNN(V, 8, dropout="half"), "dropout"),
    "init_std inf": (lambda: sr.CharRNN(V, 8, init_std=float("inf")), "init_std"),
    "weight_drop one": (lambda: sr.CharRNN(V, 8, weight_drop=1.0), "weight_drop"),
    "weight_drop nan": (lambda: sr.CharRNN(V, 8, weight_drop=float("nan")), "weight_drop"),
    "weight_drop a word": (lambda: sr.CharRNN(V, 8, weight_drop="x"), "weight_drop"),
    "unknown recurrent_init": (lambda: sr.CharRNN(V, 8, recurrent_init="foo"),
                               "recurrent_init"),
    "layer_norm on an lstm": (lambda: sr.CharRNN(V, 8, "lstm", layer_norm=True),
                              "`layer_norm` works with `cell` gru only"),
    "layer_norm a word": (lambda: sr.CharRNN(V, 8, "gru", layer_norm="yes"), "layer_norm"),
    "locked_dropout without dropout": (lambda: sr.CharRNN(V, 8, locked_dropout=True),
                                       "`locked_dropout` needs `dropout` > 0"),
    "locked_dropout a word": (lambda: sr.CharRNN(V, 8, dropout=0.5, locked_dropout="yes"),
                              "`locked_dropout` is on or off (True or False)"),
    "seed negative (model)": (lambda: sr.CharRNN(V, 8, seed=-1), "seed"),
    "unknown cell": (lambda: sr.CharRNN(V, 8, cell="transformer"), "cell"),
    # evaluation
    "eval ids out of range": (lambda: sr.evaluate(MODEL, data=[1, 2, -3, 4]), "-3"),
    "eval data not ids": (lambda: sr.evaluate(MODEL, data=None), "data"),
    "eval data text": (lambda: sr.evaluate(MODEL, data="abc"), "data"),
    "eval float data": (lambda: sr.evaluate(MODEL, data=np.ones(10)), "integer"),
    "eval seq_len zero": (lambda: sr.evaluate(MODEL, np.ones(10, int), seq_len=0), "seq_len"),
    "eval batch too big": (lambda: sr.evaluate(MODEL, np.ones(10, int), batch=9), "streams"),
    "eval burn_in negative": (lambda: sr.evaluate(MODEL, np.ones(10, int), burn_in=-1),
                              "burn_in"),
    "eval should_stop not callable": (lambda: sr.evaluate(MODEL, np.ones(10, int),
                                                          should_stop=True), "should_stop"),
    # training configuration
    "time budget unreadable": (lambda: sr.TrainConfig(time_budget="soon"), "time budget"),
    "time budget inf": (lambda: train(time_budget=float("inf")), "`time_budget`"),
    "auto without a time budget": (lambda: sr.train(text="unused.txt", auto=True),
                                   "`auto` chooses the settings for"),
    "auto a string": (lambda: train(time_budget=60, auto="yes"), "`auto`"),
    "unknown option": (lambda: sr.train(sr.TrainConfig(), hiden=5), "hiden"),
    "hidden a string": (lambda: train(hidden="256"), "`hidden`"),
    "hidden astronomical (train)": (lambda: train(hidden=HUGE), "`hidden`"),
    "layers absurd (train)": (lambda: train(layers=10 ** 8), "`layers`"),
    "batch astronomical": (lambda: train(batch=HUGE), "`batch`"),
    "seq_len astronomical": (lambda: train(seq_len=HUGE), "`seq_len`"),
    "sample length absurd": (lambda: train(sample_length=HUGE), "`sample_length`"),
    "sample length float": (lambda: train(sample_length=2.5), "`sample_length`"),
    "seed negative (train)": (lambda: train(seed=-1), "`seed`"),
    "dropout a word (train)": (lambda: train(dropout="x"), "`dropout`"),
    "lr a word": (lambda: train(lr="fast"), "`lr`"),
    "min_lr nan": (lambda: train(min_lr=float("nan")), "`min_lr`"),
    "init_std inf (train)": (lambda: train(init_std=float("inf")), "`init_std`"),
    "weight_drop one (train)": (lambda: train(weight_drop=1), "`weight_drop`"),
    "weight_drop negative (train)": (lambda: train(weight_drop=-0.1), "`weight_drop`"),
    "weight_drop nan (train)": (lambda: train(weight_drop=float("nan")), "`weight_drop`"),
    "weight_drop a word (train)": (lambda: train(weight_drop="x"), "`weight_drop`"),
    "unknown recurrent_init (train)": (lambda: train(recurrent_init="foo"), "`recurrent_init`"),
    "layer_norm on an rnn (train)": (lambda: train(cell="rnn", layer_norm=True),
                                     "`layer_norm` works with `cell` gru only"),
    "layer_norm a number (train)": (lambda: train(layer_norm=1), "`layer_norm`"),
    "locked_dropout without dropout (train)": (lambda: train(dropout=0.0, locked_dropout=True),
                                               "`locked_dropout` needs `dropout` > 0"),
    "locked_dropout a number (train)": (lambda: train(locked_dropout=1), "`locked_dropout`"),
    "val_frac nan": (lambda: train(val_frac=float("nan")), "`val_frac`"),
    "fractions sum to one": (lambda: train(val_frac=0.5, test_frac=0.5), "sum"),
    "empty out": (lambda: train(out=""), "`out`"),
    "empty text": (lambda: sr.train(sr.TrainConfig(text="")), "`text`"),
    "warmup negative": (lambda: train(warmup=-1), "`warmup`"),
    "eval_every a float": (lambda: train(eval_every=0.5), "`eval_every`"),
    "max_steps zero": (lambda: train(max_steps=0), "`max_steps`"),
    "config not a config": (lambda: sr.train(sr.TrainConfig(), cell=3), "`cell`"),
    # text
    "vocab of a number": (lambda: sr.Vocab(123), "vocabulary"),
    "metrics of nothing": (lambda: sr.read_metrics("no/such/run"), "metrics"),
    "clean of nothing": (lambda: sr.clean(None, VOCAB), "string"),
    "clean with a vocab name": (lambda: sr.clean("text", "ascii"), "Vocab"),
    "plot of nothing": (lambda: sr.plot_history(None, "x.png"), "rows"),
    "train with a string config": (lambda: sr.train("book.txt"), "TrainConfig"),
    "plan with a string config": (lambda: sr.plan("book.txt"), "TrainConfig"),
    "plan with an unknown option": (lambda: sr.plan(sr.TrainConfig(), hiden=5), "hiden"),
    "plan of no run": (lambda: sr.plan(resume="no/such/run"), "no/such/run"),
    "plan measure_s negative": (lambda: sr.plan(measure_s=-1), "`measure_s`"),
    "plan measure_s a word": (lambda: sr.plan(measure_s="long"), "`measure_s`"),
    "plan measure_s an hour": (lambda: sr.plan(measure_s=3600), "`measure_s`"),
    "corpus of a number": (lambda: sr.load_corpus(123), "`text`"),
    "corpus of a list with a number": (lambda: sr.load_corpus(["a.txt", 5]), "`text`"),
    "plot of rows without losses": (lambda: sr.plot_history([{"step": "x"}], "x.png"),
                                    "no losses"),
    # round 3: reads (a FIFO or an endless device, which a failing test would read for ever,
    # are in test_bad_inputs.py's READS, run in a child process)
    "checkpoint that is /dev/null": (lambda: sr.load_checkpoint("/dev/null"),
                                     "/dev/null is a character device, not a regular file"),
    "corpus that is /dev/null": (lambda: sr.load_corpus("/dev/null"), "not a regular file"),
    # round 3: run folders (an encoding must decode bytes to text, checked where it resolves)
    "encoding str to str (train)": (lambda: train(encoding="rot13"), "not a text encoding"),
    "encoding bytes to bytes (train)": (lambda: train(encoding="zlib"), "not a text encoding"),
    "encoding unknown (train)": (lambda: train(encoding="utf-9"), "unknown encoding"),
    "encoding a number (train)": (lambda: train(encoding=8), "`encoding`"),
    "encoding that decodes nothing": (lambda: sr.load_corpus(__file__, encoding="undefined"),
                                      "not a text encoding"),
    "encoding that fails oddly": (lambda: sr.load_corpus(__file__, encoding="punycode"),
                                  "is not valid punycode"),
    "encoding hex": (lambda: sr.load_corpus(__file__, encoding="hex"), "not a text encoding"),
    # any language (issue 30); this file holds Cyrillic, so it is not valid ASCII
    "file not valid in the encoding": (lambda: sr.load_corpus(__file__, encoding="ascii"),
                                       "is not valid ascii"),
    "vocab nonsense (train)": (lambda: train(vocab="nonsense"), "`vocab`"),
    "vocab nonsense (corpus)": (lambda: sr.load_corpus(__file__, "nonsense"), "`vocab`"),
    "min_count zero (train)": (lambda: train(min_count=0), "`min_count`"),
    "min_count negative (train)": (lambda: train(min_count=-1), "`min_count`"),
    "min_count with vocab ascii (train)": (lambda: train(vocab="ascii", min_count=2),
                                           "`min_count` applies to `vocab` unicode"),
    "min_count zero (corpus)": (lambda: sr.load_corpus(__file__, "unicode", min_count=0),
                                "`min_count`"),
    "min_count a string (corpus)": (lambda: sr.load_corpus(__file__, "unicode", min_count="2"),
                                    "`min_count`"),
    "min_count with vocab ascii (corpus)": (lambda: sr.load_corpus(__file__, "ascii",
                                                                   min_count=5), "`min_count`"),
    "min_count that leaves nothing": (lambda: sr.load_corpus(__file__, "unicode",
                                                             min_count=10 ** 9), "leaves none"),
    "more characters than ids hold": (lambda: sr.Vocab.from_counts(
        {chr(0x10000 + i): 1 for i in range(70_000)}), "65,536"),
    "vocab with a lone surrogate": (lambda: sr.Vocab("ab\ud800"), "surrogate"),
    "vocab of an unknown kind": (lambda: sr.Vocab("abc", "klingon"), "kind"),
    "bytes vocab of other symbols": (lambda: sr.Vocab("abc", "bytes"), "256 byte values"),
    "prompt of unseen characters": (lambda: sr.sample(MODEL, RU, prime="абж"),
                                    "'ж' U+0436"),
    "prompt of characters below min_count": (lambda: sr.sample(
        MODEL, sr.Vocab("абвгдезий\ufffd"), prime="абж"), "'ж' U+0436; remove them, or write "
        "U+FFFD for them: the model read every character rarer than its `min_count` as that"),
    "prompt of unseen characters (ascii vocab)": (lambda: sr.sample(MODEL, VOCAB, prime="abж"),
                                                  "'ж' U+0436"),
    "prompt with half a surrogate pair": (lambda: sr.sample(MODEL, RU, prime="аб\ud800"),
                                          "surrogate"),
    "prompt with a low surrogate (generate)": (lambda: sr.generate(MODEL, VOCAB, prime="\udc00"),
                                               "surrogate"),
    "prompt with half a pair (bytes)": (lambda: sr.sample(BYTES_MODEL, sr.Vocab.bytes(),
                                                          prime="\ud83d"), "surrogate"),
    "stop_at half a surrogate pair": (lambda: sr.sample(MODEL, VOCAB, stop_at="\ud800"),
                                      "`stop_at` holds '\\ud800' U+D800"),
    "inspect half a surrogate pair": (lambda: sr.inspect(MODEL, RU, "аб\udfff"), "surrogate"),
    "bytes vocab on a chars model": (lambda: sr.sample(MODEL, sr.Vocab.bytes()), "vocabulary"),
    # export, the html page
    "page of a model not a model": (lambda: export_html("m", VOCAB, "unused.html"), "CharRNN"),
    "page of a vocab not a vocab": (lambda: export_html(MODEL, "abcdefghij", "unused.html"),
                                    "Vocab"),
    "page of another vocabulary": (lambda: export_html(MODEL, sr.Vocab("abc"), "unused.html"),
                                   "vocabulary does not match"),
    "page title not a string": (lambda: export_html(MODEL, VOCAB, "unused.html", title=5),
                                "title must be a string"),
    "page card not a dict": (lambda: export_html(MODEL, VOCAB, "unused.html", ["x"]),
                             "card must be a dict"),
    "page card of objects": (lambda: export_html(MODEL, VOCAB, "unused.html", {"a": object}),
                             "card must be a dict"),
    "page out not a path": (lambda: export_html(MODEL, VOCAB, 5), "`out` must be a file path"),
    "export to an unknown format": (lambda: export("runs/x", "keras"), "choose torch, onnx or"),
}


def test_the_table_is_long_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_api_refuses(name):
    call, words = CASES[name]
    t0 = time.perf_counter()
    with pytest.raises(sr.ScratchRNNError) as info:
        result = call()
        if hasattr(result, "__next__"):  # a generator must refuse before it is consumed
            pytest.fail("generate() returned before checking its arguments")
    assert time.perf_counter() - t0 < 5, "a refusal must come before any work"
    message = str(info.value)
    assert words in message and len(message) > 20 and "\n" not in message


def test_memory_refusal_allocates_nothing(monkeypatch):
    """With 200 MB available, the default model trains but a 4096-unit one is refused by
    arithmetic, before anything is allocated."""
    import tracemalloc

    monkeypatch.setattr(limits, "available_memory", lambda: 200 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(sr.ScratchRNNError, match="lower `hidden` or `layers`"):
            train(hidden=4096)
        with pytest.raises(sr.ScratchRNNError, match="lower `batch` or `seq_len`"):
            train(batch=4096, seq_len=1000)
        with pytest.raises(sr.ScratchRNNError, match="more than the 200.0 MB"):
            sr.CharRNN(96, 4096, "lstm", 2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 << 20
    sr.store.config.validate(sr.TrainConfig())  # the default run fits in 200 MB


def test_memory_estimate_covers_a_real_step():
    """The estimate is not a guess from thin air: a real training step of a mid-sized model
    allocates less than the window estimate plus the parameter copies."""
    import tracemalloc

    from scratchrnn.nn.model import param_count, window_memory

    model = sr.CharRNN(96, 128, "lstm", 2, seed=0)
    x = np.random.default_rng(0).integers(0, 96, (16, 40))
    tracemalloc.start()
    model.loss_and_grads(x, np.roll(x, -1, axis=1))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    numbers, _ = param_count(model.config)
    assert numbers == model.num_params()
    assert peak <= window_memory(model.config, 16, 40) + 2 * numbers * 4


def test_train_accepts_a_duration_string_and_paths(small_text, tmp_path):
    cfg = sr.TrainConfig(text=small_text, out=tmp_path / "r", time_budget="10m", hidden=8,
                         batch=2, seq_len=8, max_steps=2, eval_every=2, sample_length=0)
    assert cfg.time_budget == 600.0 and cfg.text == str(small_text)
    assert sr.train(cfg, progress=False).step == 2  # config.json holds plain strings
    assert sr.sample(sr.load_checkpoint(tmp_path / "r").model,
                     sr.load_checkpoint(tmp_path / "r").vocab, prime=None, length=5)


def test_prompt_that_cleans_to_nothing_samples_as_no_prompt():
    plain = sr.sample(MODEL, VOCAB, length=20, seed=3)
    for prompt in ("\u0301", "\u200b"):
        with pytest.warns(UserWarning, match="no characters the model reads"):
            out = sr.sample(MODEL, VOCAB, prime=prompt, length=20, seed=3)
        assert out == prompt + plain


def test_tiny_temperature_is_argmax_not_nan():
    greedy = sr.sample(MODEL, VOCAB, length=30, argmax=True)
    assert sr.sample(MODEL, VOCAB, length=30, temperature=1e-320) == greedy
