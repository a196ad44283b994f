"""The visualize page in headless Chromium where a vocabulary holds characters beyond the Basic
Multilingual Plane (round 4's hostile review; tests/browser.py, skipped where it is missing)."""

import time

import pytest
from browser import chromium

import scratchrnn as sr
from scratchrnn.data.vocab import Vocab
from scratchrnn.inside.page import write_page
from scratchrnn.store.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def driver():
    drv = chromium(1200, 900)
    yield drv
    drv.quit()


def test_an_emojis_guess_is_labelled_with_the_emoji(driver, tmp_path):
    """Symbol i's label was data.chars[i] of one JavaScript string, whose index counts UTF-16
    halves: an emoji was shown as half a surrogate pair, and every symbol after it as the
    wrong one. Here every guess after "a" is "😀" (U+1F600), after "🎉" (U+1F389)."""
    from selenium.webdriver import ActionChains

    vocab = Vocab("ab\U0001f389\U0001f600")
    model = sr.CharRNN(len(vocab), hidden_size=4, cell="rnn", seed=0)
    model.params["b_y"][:] = [0, 1, 2, 30]  # the emoji, whatever the state
    page = write_page(sr.inspect(model, vocab, "ab\U0001f389a"), tmp_path / "page.html")
    driver.get(page.as_uri())
    for _ in range(100):
        if driver.execute_script("return document.getElementById('sr-root').dataset.ready"):
            break
        time.sleep(0.05)
    spans = driver.find_elements("css selector", ".sr-text span")
    ActionChains(driver).move_to_element(spans[0]).perform()
    assert labels(driver, ".sr-guess code") == ["\U0001f600", "\U0001f389", "b", "a"]
    assert labels(driver, ".sr-stat code") == ["b"]  # the actual next
    ActionChains(driver).move_to_element(spans[1]).perform()
    assert labels(driver, ".sr-stat code") == ["\U0001f389"]


def labels(driver, selector):
    """The panel's labels as code points (a lone surrogate would break chromedriver's text)."""
    return ["".join(map(chr, cps)) for cps in driver.execute_script(
        "return Array.from(document.querySelectorAll('.sr-panel ' + arguments[0])).map(e => "
        "Array.from(e.textContent).map(c => c.codePointAt(0)))", selector)]


def test_looking_inside_a_long_text_of_emoji_keeps_whole_characters(driver, tmp_path):
    """The playground's "look inside this text" kept the output's last 4,000 UTF-16 units: a
    text of emoji was cut inside one, and the server refused the lone half ("holds a lone
    UTF-16 surrogate") instead of showing the text."""
    import threading

    from test_review_pages import saved_run

    from scratchrnn.serve import server as serve

    run = saved_run(tmp_path, Vocab("a\U0001f600"))
    srv = serve.make_server(run, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        driver.get(serve.url(srv))
        # the page's own prompt is English, which this model cannot read: wait for its refusal
        wait(driver, "return document.getElementById('status').textContent")
        text = "a" + "\U0001f600" * (serve.MAX_PROMPT - 1) + "a"  # 4,000 + 1 characters
        driver.execute_script("document.getElementById('status').textContent = '';"
                              "document.getElementById('output').textContent = arguments[0];"
                              "document.getElementById('look').click()", text)
        wait(driver, "return document.body.dataset.inspected || "
                     "document.getElementById('status').textContent")
        status = driver.execute_script("return document.getElementById('status').textContent")
        assert status == ""
        shown = driver.execute_script(
            "return Array.from(document.querySelectorAll('#view .sr-text span'))"
            ".map(s => s.textContent).join('')")
        assert shown == text[-serve.MAX_PROMPT:]
    finally:
        srv.shutdown()
        srv.server_close()


def wait(driver, script, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if value := driver.execute_script(script):
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {script!r}")


def test_the_playground_counts_an_emoji_as_one_character(driver, tmp_path):
    """Generate's status counted UTF-16 halves: 10 emoji were "20 characters"."""
    import threading

    from test_review_pages import saved_run

    from scratchrnn.serve import server as serve

    run = saved_run(tmp_path, Vocab("a\U0001f600"))
    ckpt = sr.load_checkpoint(run)
    ckpt.model.params["b_y"][:] = [0, 30]  # always the emoji
    save_checkpoint(run / "checkpoint.npz", ckpt.model, ckpt.vocab, {})
    srv = serve.make_server(run, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        driver.get(serve.url(srv))
        wait(driver, "return document.getElementById('status').textContent")
        driver.execute_script("document.getElementById('prime').value = 'a';"
                              "document.getElementById('length').value = '10';"
                              "document.getElementById('generate').click()")
        wait(driver, "return document.body.dataset.generated")
        assert driver.execute_script("return document.body.dataset.generated") == "10"
        assert driver.find_element("id", "genstatus").text.startswith("10 characters in")
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_generate_page_of_a_model_of_cyrillic_starts_without_an_english_prompt(driver,
                                                                                  tmp_path):
    """The exported page's prompt field said "The ": Start on a Russian model's page answered
    "The prompt has characters this model does not know: T h e" before it wrote anything."""
    from scratchrnn.interop.html_export import export_html

    vocab = Vocab("\n абвгдежзийклмнопрстуфхцчшщъыьэюя")
    page = export_html(sr.CharRNN(len(vocab), 4, "gru"), vocab, tmp_path / "page.html")
    driver.get(page.as_uri())
    for _ in range(200):
        if driver.execute_script("return document.getElementById('sr-root').dataset.ready"):
            break
        time.sleep(0.05)
    driver.execute_script("document.getElementById('sr-length').value = '20';"
                          "document.getElementById('sr-start').click()")
    wait(driver, "return document.getElementById('sr-start').disabled === false && "
                 "document.getElementById('sr-status').textContent")
    status = driver.execute_script("return document.getElementById('sr-status').textContent")
    assert status.startswith("Done"), status
    ascii_page = export_html(sr.CharRNN(96, 4, "gru"), sr.Vocab.ascii(), tmp_path / "en.html")
    driver.get(ascii_page.as_uri())
    wait(driver, "return document.getElementById('sr-root').dataset.ready")
    assert driver.execute_script("return document.getElementById('sr-prompt').value") == "The "


def test_the_playground_of_a_model_of_cyrillic_opens_without_an_error(driver, tmp_path):
    """The playground's prompt and prime are English: a Russian model's page opened with
    "the prompt has characters this model has never seen: 'I' U+0049, ..." and Generate
    was refused the same way. Fields the model cannot read start empty."""
    import threading

    from test_review_pages import RUSSIAN, saved_run

    from scratchrnn.serve import server as serve

    srv = serve.make_server(saved_run(tmp_path, Vocab(RUSSIAN)), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        driver.get(serve.url(srv))
        wait(driver, "return document.getElementById('status').textContent")
        assert driver.execute_script(
            "return document.getElementById('status').textContent") == "type something to look at"
        driver.execute_script("document.getElementById('length').value = '10';"
                              "document.getElementById('generate').click()")
        wait(driver, "return document.body.dataset.generated")
        assert driver.execute_script("return document.body.dataset.generated") == "10"
    finally:
        srv.shutdown()
        srv.server_close()
