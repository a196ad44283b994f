"""The generate page (export --format html) in headless Chromium (tests/browser.py; skipped
without it): for every cell the page's next-character probabilities equal scratchrnn's and
argmax writes the same 500 characters; sampling keeps to filter_probs's set; Start and Stop
work and the page answers while it writes; a hostile vocabulary, title and prompt stay text;
a bytes vocabulary decodes as UTF-8; and nothing is fetched."""

import time
import warnings

import numpy as np
import pytest
from browser import chromium

import scratchrnn as sr
from scratchrnn.data.vocab import Vocab
from scratchrnn.interop.html_export import export_html
from scratchrnn.sampling.sampler import filter_probs, stepper

PROMPT = 'It was the best of times, "said he" (quietly).\n'
CELLS = {"rnn": dict(cell="rnn"), "lstm": dict(cell="lstm"), "gru": dict(cell="gru"),
         "stacked lstm": dict(cell="lstm", num_layers=3),
         "layer-normalised gru": dict(cell="gru", num_layers=2, layer_norm=True)}
HOSTILE = ('</script><script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1"> '
           "&amp; \"q\" 'x' <!-- --> ${x}")


class FakeVocab:
    """What the page reads of a vocabulary: its symbols, and whether they are bytes; a
    Vocab refuses the lone surrogate the hostile test gives the page."""

    def __init__(self, chars: str, is_bytes: bool = False):
        self.chars, self.kind = chars, "bytes" if is_bytes else "chars"
        self.is_ascii = not is_bytes and chars.isascii()


def model_for(V: int, seed: int = 3, hidden: int = 16, **kw) -> sr.CharRNN:
    m = sr.CharRNN(V, hidden, seed=seed, **kw)
    rng = np.random.default_rng(seed)
    for p in m.params.values():  # gains and biases away from their initial 1 and 0
        if p.ndim == 1:
            p += rng.normal(0, 0.3, p.shape).astype(p.dtype)
    return m


def probs_of(model, ids, clamp=None) -> np.ndarray:
    step = stepper(model, clamp)
    for i in ids:
        logits = step(int(i))
    z = logits.astype(np.float64)
    p = np.exp(z - z.max())
    return p / p.sum()


def argmax_ids(model, ids, n) -> list:
    step = stepper(model)
    for i in ids:
        logits = step(int(i))
    out = []
    for _ in range(n):
        out.append(int(logits.argmax()))
        logits = step(out[-1])
    return out


@pytest.fixture(scope="module")
def driver():
    drv = chromium(1200, 900)
    yield drv
    drv.quit()


def load(driver, path):
    driver.get(path.as_uri())
    for _ in range(200):
        if driver.execute_script("return document.getElementById('sr-root').dataset.ready"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the page did not start: {driver.get_log('browser')}")


def severe(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.parametrize("name", sorted(CELLS))
def test_probabilities_and_argmax_text_equal_scratchrnn(driver, tmp_path, name):
    vocab = sr.Vocab.ascii()
    model = model_for(len(vocab), **CELLS[name])
    load(driver, export_html(model, vocab, tmp_path / "m.html"))
    for prompt in (PROMPT, "", "x"):
        got = np.array(driver.execute_script("return srProbs(arguments[0])", prompt))
        ids = vocab.clean_prompt(prompt) if prompt else [vocab.chars.index("\n")]
        np.testing.assert_allclose(got, probs_of(model, ids), rtol=0, atol=1e-5)
    # accents, typographic quotes and dashes read as the corpus's cleaning reads them
    typeset = ("Caf\u00e9 na\u00efve \u201cquoted\u201d \u2018it\u2019s\u2019 \u2013 \u2014 "
               "\u2026\u00a0\ufb01n")
    got = driver.execute_script("return srProbs(arguments[0])", typeset)
    np.testing.assert_allclose(got, probs_of(model, vocab.clean_prompt(typeset)), atol=1e-5)
    clamp = (model.config.num_layers - 1, 5, 0.9)
    got = driver.execute_script("return srProbs(arguments[0], arguments[1])", PROMPT, clamp)
    np.testing.assert_allclose(got, probs_of(model, vocab.clean_prompt(PROMPT), clamp), atol=1e-5)
    page = driver.execute_script("return srGenerate(arguments[0])",
                                 {"prompt": "It was", "length": 500, "argmax": True})
    assert page == {"text": sr.sample(model, vocab, "It was", 500, argmax=True)[6:]}
    clamped = driver.execute_script("return srGenerate(arguments[0])", {
        "prompt": "It was", "length": 200, "argmax": True, "clamp": list(clamp)})
    assert clamped["text"] == sr.sample(model, vocab, "It was", 200, argmax=True,
                                        clamp=clamp)[6:]
    assert severe(driver) == []


def test_sampling_keeps_to_the_filtered_set_and_its_seed(driver, tmp_path):
    vocab = sr.Vocab.ascii()
    model = model_for(len(vocab), cell="gru", seed=5)
    model.params["W_y"] *= 6  # a peaked distribution, so that the filters cut something
    load(driver, export_html(model, vocab, tmp_path / "m.html"))
    p = probs_of(model, vocab.clean_prompt(PROMPT))
    draw = ("return Array.from({length: 300}, (_, s) => srGenerate(Object.assign("
            "{prompt: arguments[0], length: 1, seed: s}, arguments[1])).text)")
    for opts in ({"top_k": 3}, {"top_p": 0.5}, {"top_k": 5, "top_p": 0.9}):
        drawn = set(driver.execute_script(draw, PROMPT, opts))
        kept = filter_probs(p, opts.get("top_k"), opts.get("top_p")) > 0
        allowed = {vocab.chars[i] for i in np.flatnonzero(kept)}
        assert drawn <= allowed and len(allowed) < len(vocab)
        assert len(allowed) == 1 or len(drawn) > 1
    # every symbol at temperature 1 is drawn about as often as its probability
    drawn = driver.execute_script(draw.replace("300", "4000"), PROMPT, {})
    freq = np.array([drawn.count(c) for c in vocab.chars]) / len(drawn)
    assert np.abs(freq - p).max() < 0.03
    gen = "return srGenerate(arguments[0]).text"
    one = driver.execute_script(gen, {"prompt": "It", "length": 300, "seed": 7})
    assert one == driver.execute_script(gen, {"prompt": "It", "length": 300, "seed": 7})
    assert one != driver.execute_script(gen, {"prompt": "It", "length": 300, "seed": 8})
    greedy = driver.execute_script(gen, {"prompt": "It", "length": 300, "argmax": True})
    assert greedy == driver.execute_script(gen, {"prompt": "It", "length": 300, "top_k": 1})


@pytest.mark.parametrize("opts, says", [
    ({"length": 0}, "length must be a whole number from 1"),
    ({"length": 10, "temperature": 0}, "temperature must be a number above 0"),
    ({"length": 10, "top_k": 0}, "top-k must be a whole number"),
    ({"length": 10, "top_p": 1.5}, "top-p must be a number above 0 and at most 1"),
    ({"length": 10, "seed": -1}, "seed must be a whole number"),
    ({"length": 10, "clamp": [0, 16, 0.5]}, "the clamp's unit must be a whole number from 0 to 15"),
    ({"length": 10, "clamp": [1, 0, 0.5]}, "the clamp's layer must be a whole number from 0 to 0"),
    ({"length": 10, "clamp": [0, 0, 11]}, "the clamp's value must be a number from -10 to 10"),
    ({"length": 10, "clamp": [0, None, 1]}, "a clamp needs a layer, a unit and a value"),
    ({"length": 10, "prompt": "caf\u00e9 \u0416\u2028\u0416"}, "does not know: \u0416 U+2028."),
])
def test_bad_options_are_one_message(driver, tmp_path, opts, says):
    vocab = sr.Vocab.ascii()
    load(driver, export_html(model_for(len(vocab), cell="rnn"), vocab, tmp_path / "m.html"))
    got = driver.execute_script("return srGenerate(arguments[0])", opts)
    assert set(got) == {"error"} and says in got["error"], got


def test_start_writes_stop_stops_and_the_page_answers_meanwhile(driver, tmp_path):
    vocab = sr.Vocab.ascii()
    model = model_for(len(vocab), cell="lstm", num_layers=2, hidden=64)
    load(driver, export_html(model, vocab, tmp_path / "m.html"))
    find = lambda css: driver.find_element("css selector", css)  # noqa: E731
    find("#sr-length").clear()
    find("#sr-length").send_keys("1000000")
    find("#sr-start").click()
    time.sleep(1.0)
    slowest = 0.0
    for _ in range(10):  # the writing yields to the page: a script runs between its batches
        t0 = time.perf_counter()
        driver.execute_script("return 1")
        slowest = max(slowest, time.perf_counter() - t0)
    assert slowest < 0.5
    written = len(find("#sr-out").text)
    assert written > 50 and find("#sr-stop").is_enabled() and not find("#sr-start").is_enabled()
    find("#sr-stop").click()
    time.sleep(0.3)
    stopped = len(find("#sr-out").get_attribute("textContent"))
    time.sleep(0.5)
    assert len(find("#sr-out").get_attribute("textContent")) == stopped < 1_000_000
    assert find("#sr-status").text.startswith("Stopped: ")
    # a prompt it cannot read: one message on the page, nothing written
    find("#sr-prompt").clear()
    find("#sr-prompt").send_keys("\u041d\u0430\u0434\u044f")
    find("#sr-start").click()
    assert "does not know: \u041d \u0430 \u0434 \u044f." in find("#sr-status").text
    assert "sr-error" in find("#sr-status").get_attribute("class")
    assert len(find("#sr-out").get_attribute("textContent")) == stopped
    # argmax from the form is scratchrnn's text
    find("#sr-prompt").clear()
    find("#sr-prompt").send_keys("It was")
    find("#sr-length").clear()
    find("#sr-length").send_keys("300")
    find("#sr-argmax").click()
    find("#sr-start").click()
    for _ in range(100):
        if find("#sr-status").text.startswith("Done"):
            break
        time.sleep(0.05)
    assert find("#sr-out").get_attribute("textContent") == sr.sample(model, vocab, "It was", 300,
                                                                     argmax=True)
    assert severe(driver) == []
    # offline: the page fetched nothing
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_a_long_text_from_the_page_is_whole(driver, tmp_path):
    """Ctrl+Enter starts; 150,000 characters (in several text nodes) lose nothing."""
    from selenium.webdriver.common.keys import Keys
    vocab = sr.Vocab.ascii()
    load(driver, export_html(model_for(len(vocab), cell="rnn", hidden=8), vocab,
                             tmp_path / "m.html"))
    driver.execute_script("document.getElementById('sr-length').value = 150000")
    prompt = driver.find_element("id", "sr-prompt")
    prompt.send_keys(Keys.CONTROL, Keys.ENTER)
    for _ in range(1200):
        if driver.find_element("id", "sr-status").text.startswith("Done"):
            break
        time.sleep(0.05)
    want = driver.execute_script("return srGenerate(arguments[0]).text", {
        "prompt": "The ", "length": 150000, "temperature": 0.8, "seed": 0})
    out = driver.find_element("id", "sr-out")
    assert out.get_attribute("textContent") == "The " + want
    assert driver.execute_script("return arguments[0].childNodes.length", out) > 2


def test_a_hostile_vocabulary_title_and_prompt_stay_text(driver, tmp_path):
    chars = "".join(dict.fromkeys(HOSTILE + "\n\u2028\u2029\u200f\u202e\U0001F600\u00e9"))
    vocab = FakeVocab(chars)
    model = model_for(len(chars), cell="gru", hidden=12)
    page = export_html(model, vocab, tmp_path / "h.html", {"<b>card</b>": "</script>&amp;"},
                       "</title><script>window.__pwned=2</script>")
    load(driver, page)
    count = "return document.getElementsByTagName('*').length"
    before = driver.execute_script(count)
    assert driver.find_element("tag name", "h1").text.startswith("</title><script>")
    assert "<b>card</b>" in driver.find_element("id", "sr-card").text
    prompt = HOSTILE + "\u202e\U0001F600\u2028"
    ids = [chars.index(c) for c in prompt]  # one symbol per code point, the astral one too
    got = driver.execute_script("return srProbs(arguments[0])", prompt)
    np.testing.assert_allclose(got, probs_of(model, ids), atol=1e-5)
    expect = "".join(chars[i] for i in argmax_ids(model, ids, 500))
    assert driver.execute_script("return srGenerate(arguments[0]).text", {
        "prompt": prompt, "length": 500, "argmax": True}) == expect
    driver.execute_script("document.getElementById('sr-prompt').value = arguments[0]", prompt)
    for argmax in (True, False):  # typed into the page and written by it (500, the default)
        box = driver.find_element("id", "sr-argmax")
        if box.is_selected() != argmax:
            box.click()
        driver.find_element("id", "sr-start").click()
        for _ in range(100):
            if driver.find_element("id", "sr-status").text.startswith("Done"):
                break
            time.sleep(0.05)
        out = driver.find_element("id", "sr-out")
        assert driver.execute_script("return arguments[0].childNodes.length", out) == 2
        shown = out.get_attribute("textContent")
        assert shown.startswith(prompt) and len(shown) == len(prompt) + 500
        assert shown == prompt + expect or not argmax
    # nothing injected: the one new element is the prompt's span, which holds only text
    assert driver.execute_script(count) == before + 1
    assert driver.execute_script("return document.querySelectorAll('#sr-out *').length") == 1
    assert driver.execute_script("return window.__pwned") is None
    assert severe(driver) == []


def test_a_bytes_vocabulary_reads_and_writes_utf8(driver, tmp_path):
    vocab = Vocab.bytes()
    model = model_for(256, cell="gru", hidden=16, seed=11)
    load(driver, export_html(model, vocab, tmp_path / "b.html"))
    prompt = "caf\u00e9 \U0001F600"
    ids = list(prompt.encode("utf-8"))
    got = driver.execute_script("return srProbs(arguments[0])", prompt)
    np.testing.assert_allclose(got, probs_of(model, ids), atol=1e-5)
    page = driver.execute_script("return srGenerate(arguments[0]).text",
                                 {"prompt": prompt, "length": 300, "argmax": True})
    assert page == bytes(argmax_ids(model, ids, 300)).decode("utf-8", "replace")
    # a model that writes e-acute one byte at a time (0xC3 after anything but 0xC3, then 0xA9):
    # the page shows whole characters, and a byte left over at the end as U+FFFD
    m = sr.CharRNN(256, 1, "rnn")
    m.params["l0.W_x"][:] = -5
    m.params["l0.W_x"][0xC3] = 5
    m.params["l0.W_h"][:] = 0
    m.params["W_y"][:] = 0
    m.params["W_y"][0, [0xA9, 0xC3]] = [10, -10]
    m.params["b_y"][:] = -50
    load(driver, export_html(m, vocab, tmp_path / "b2.html"))
    text = driver.execute_script("return srGenerate(arguments[0]).text",
                                 {"prompt": "", "length": 5, "argmax": True})
    assert text == "\u00e9\u00e9\ufffd" == bytes([0xC3, 0xA9, 0xC3, 0xA9, 0xC3]).decode("utf-8",
                                                                                   "replace")
    assert severe(driver) == []


def test_a_unicode_vocabulary_reads_prompts_as_scratchrnn_does(driver, tmp_path):
    """The text's own characters: a prompt in NFC as the corpus (a decomposed letter is one
    symbol), nothing transliterated: a character the model never saw is refused, as
    Vocab.clean_prompt refuses it, not folded to an ASCII look-alike."""
    vocab = Vocab.from_text("мой дядя самых честных правил, café\n")
    model = model_for(len(vocab), cell="gru", hidden=16, seed=5)
    load(driver, export_html(model, vocab, tmp_path / "ru.html"))
    for prompt in ("мой дядя", "cafe\u0301 мой"):
        got = driver.execute_script("return srProbs(arguments[0])", prompt)
        np.testing.assert_allclose(got, probs_of(model, vocab.clean_prompt(prompt)), atol=1e-5)
    page = driver.execute_script("return srGenerate(arguments[0]).text",
                                 {"prompt": "мой", "length": 100, "argmax": True})
    assert page == sr.sample(model, vocab, "мой", 100, argmax=True)[3:]
    got = driver.execute_script("return srGenerate(arguments[0])",
                                {"prompt": "Мой", "length": 5})  # capital М: never seen
    assert set(got) == {"error"} and "does not know: \u041c." in got["error"], got


@pytest.mark.parametrize("vocab", [sr.Vocab.ascii(), Vocab.bytes()], ids=["ascii", "bytes"])
def test_stop_at_ends_the_text_where_scratchrnn_ends_it(driver, tmp_path, vocab):
    """The page's stop text cuts what `sample(..., stop_at=)` cuts, for the greedy text (the
    same symbols in both), wherever the stop text falls, and says so in one message when bad."""
    model = model_for(len(vocab), cell="gru", hidden=16, seed=7)
    load(driver, export_html(model, vocab, tmp_path / "s.html"))
    full = sr.sample(model, vocab, "The ", 300, argmax=True)[4:]
    stops = [full[40:42], full[150:151], full[5:9], "never written \u2603"]
    for stop in stops:
        with warnings.catch_warnings():  # the last stop text warns that it is never written
            warnings.simplefilter("ignore")
            want = sr.sample(model, vocab, "The ", 300, argmax=True, stop_at=stop)[4:]
        got = driver.execute_script("return srGenerate(arguments[0])",
                                    {"prompt": "The ", "length": 300, "argmax": True,
                                     "stop_at": stop})
        assert got == {"text": want}, stop
    for bad in ("", "x" * 201, 5):
        got = driver.execute_script("return srGenerate(arguments[0])",
                                    {"prompt": "The ", "length": 10, "stop_at": bad})
        assert set(got) == {"error"} and "stop at must be text" in got["error"], bad


def test_the_stop_field_reads_the_command_lines_escapes(driver, tmp_path):
    """Typed into the page, \\n is a line break, as `--stop-at` reads it (a model whose greedy
    text has line breaks: seed 27 of model_for)."""
    vocab = sr.Vocab.ascii()
    model = model_for(len(vocab), cell="gru", hidden=16, seed=27)
    full = sr.sample(model, vocab, "The ", 300, argmax=True)[4:]
    stop = full[full.index("\n"):full.index("\n") + 3]
    assert "\n" in stop
    load(driver, export_html(model, vocab, tmp_path / "s.html"))
    typed = stop.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    find = lambda css: driver.find_element("css selector", css)  # noqa: E731
    find("#sr-prompt").clear()
    find("#sr-prompt").send_keys("The ")
    find("#sr-length").clear()
    find("#sr-length").send_keys("300")
    find("#sr-argmax").click()
    find("#sr-stop-at").send_keys(typed)
    find("#sr-start").click()
    for _ in range(100):
        if find("#sr-status").text.startswith("Done"):
            break
        time.sleep(0.05)
    want = sr.sample(model, vocab, "The ", 300, argmax=True, stop_at=stop)
    assert find("#sr-out").get_attribute("textContent") == want


def test_a_bytes_models_control_bytes_show_as_scratchrnn_shows_them(driver, tmp_path):
    model = sr.CharRNN(256, 4, "rnn", 1, seed=0)
    model.params["W_y"][:] = 0
    model.params["b_y"][:] = -50
    model.params["b_y"][0x1B] = 50  # the escape byte, every time
    load(driver, export_html(model, Vocab.bytes(), tmp_path / "esc.html"))
    got = driver.execute_script("return srGenerate(arguments[0]).text",
                                {"prompt": "x", "length": 5, "argmax": True})
    assert got == sr.sample(model, Vocab.bytes(), "x", 5, argmax=True)[1:] == "\ufffd" * 5
