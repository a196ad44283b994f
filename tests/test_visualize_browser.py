"""The visualize page in a real browser: headless Debian Chromium driven by Selenium through the
system chromedriver (no browser is downloaded). One browser for the module. Checks: no console
errors, choosing a unit recolours the text, hover and keyboard focus show the top-5 guesses,
a hostile corpus runs nothing and shows literally, and a screenshot is not blank."""

import io
import json
import re
import time

import numpy as np
import pytest
from browser import chromium

import scratchrnn as sr
from scratchrnn.inside.page import layer_values, write_page

HOSTILE = ('</script><script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1"> '
           "&amp; \"quoted\" 'single' back\\slash \\u003c <!-- --> ${x}\n")
TEXT = ('"Where," said he, "is (the [old] key)?" Nobody knew.\nIt was late. ' * 12)


@pytest.fixture(scope="module")
def driver():
    drv = chromium(1400, 1000)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    d = tmp_path_factory.mktemp("pages")
    vocab = sr.Vocab.ascii()
    lstm = sr.CharRNN(len(vocab), 24, "lstm", 2, seed=1)
    card = {"cell": "LSTM", "layers": 2, "hidden units": 24}
    history = [[s, 4.5 - s / 100, 4.4 - s / 100 if s % 50 == 0 else None]
               for s in range(10, 210, 10)]
    good = write_page(sr.inspect(lstm, vocab, TEXT), d / "good.html", card, history, "good")
    gru = sr.CharRNN(len(vocab), 16, "gru", 1, seed=2)
    bad = write_page(sr.inspect(gru, vocab, HOSTILE * 3), d / "hostile.html",
                     {"corpus": "<b>bold</b>"}, None, "</title><script>window.__pwned=2</script>")
    return {"good": good, "hostile": bad}


def data_of(page: str) -> dict:
    return json.loads(re.search(r'id="sr-data">(.*?)</script>', page, re.S).group(1))


def load(driver, path):
    driver.get(path.as_uri())
    for _ in range(100):
        if driver.execute_script("return document.getElementById('sr-root').dataset.ready"):
            return
        time.sleep(0.05)
    raise AssertionError("the page did not finish rendering: "
                         f"{driver.get_log('browser')}")


def severe(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def colours(driver, n=300):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.sr-text span')).slice(0, arguments[0])"
        ".map(s => getComputedStyle(s).backgroundColor)", n)


def test_choosing_a_unit_recolours_the_text_without_errors(driver, pages):
    load(driver, pages["good"])
    before = colours(driver)
    assert len(set(before)) > 5  # the first unit is already painted, not all white
    painted = driver.execute_script("return document.getElementById('sr-root').dataset.painted")
    picks = driver.find_elements("css selector", "button.sr-unitpick")
    assert len(picks) >= 9
    target = next(b for b in picks
                  if b.get_attribute("aria-pressed") != "true"
                  and "\u00b7 c \u00b7" not in b.text)
    target.click()
    for _ in range(40):
        now = driver.execute_script("return document.getElementById('sr-root').dataset.painted")
        if now != painted:
            break
        time.sleep(0.05)
    assert now != painted and target.get_attribute("aria-pressed") == "true"
    after = colours(driver)
    assert sum(a != b for a, b in zip(before, after, strict=True)) > 50
    # the signal menu reaches every gate, and the surprisal view colours by surprise
    select = driver.find_element("css selector", "select.sr-signal")
    options = [o.get_attribute("value") for o in select.find_elements("tag name", "option")]
    assert options == ["h", "c", "i", "f", "g", "o"]
    driver.find_element("css selector", "button[data-view=surprisal]").click()
    assert colours(driver) != after
    assert driver.find_elements("css selector", ".sr-bottom svg circle")  # gate saturation
    assert len(driver.find_elements("css selector", ".sr-top svg path")) == 1  # loss curve
    assert severe(driver) == []


def test_hover_and_keyboard_focus_show_the_top_five(driver, pages):
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.keys import Keys
    load(driver, pages["good"])
    spans = driver.find_elements("css selector", ".sr-text span")
    panel = driver.find_element("css selector", ".sr-panel")
    ActionChains(driver).move_to_element(spans[7]).perform()
    assert "Character 7" in panel.text
    rows = panel.find_elements("css selector", ".sr-guess")
    assert len(rows) == 5
    data = driver.execute_script("return JSON.parse(document.getElementById('sr-data')"
                                 ".textContent)")
    top = data["chars"][data["topk_ids"][7 * 5]]
    assert rows[0].find_element("tag name", "code").text in (top, "\u2423", "\u21b5")
    assert "Actual next" in panel.text and f"rank {data['next_rank'][7]}" in panel.text
    # keyboard: focus the text, then walk with the arrow keys
    text = driver.find_element("css selector", ".sr-text")
    h1 = driver.find_element("tag name", "h1")
    ActionChains(driver).move_to_element(h1).perform()  # the pointer leaves the text
    driver.execute_script("arguments[0].focus()", text)
    assert "Character 0" in panel.text
    ActionChains(driver).send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT).perform()
    assert "Character 3" in panel.text
    assert driver.switch_to.active_element.get_attribute("data-i") == "3"
    assert len(panel.find_elements("css selector", ".sr-guess")) == 5
    assert severe(driver) == []


def test_hostile_corpus_runs_nothing_and_shows_literally(driver, pages):
    load(driver, pages["hostile"])
    assert driver.execute_script("return window.__pwned") is None
    assert driver.find_elements("css selector", ".sr-text img, .sr-text script, .sr-card b") == []
    shown = driver.execute_script("return document.querySelector('.sr-text').textContent")
    assert HOSTILE.replace("\n", "\u21b5\n") in shown
    assert driver.title == "</title><script>window.__pwned=2</script>"
    assert "<b>bold</b>" in driver.find_element("css selector", ".sr-card").text
    assert severe(driver) == []


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_the_script_decodes_every_signal_as_python_does(driver, tmp_path, cell):
    """The state travels as its difference from a prediction (pack.py); the script must rebuild
    exactly the levels Python reads back, for every signal of every layer."""
    vocab = sr.Vocab.ascii()
    model = sr.CharRNN(len(vocab), 12, cell, 2, seed=3)
    model.params = {k: v * 3 for k, v in model.params.items()}  # saturated gates, large c
    insp = sr.inspect(model, vocab, TEXT[:333])
    page = write_page(insp, tmp_path / f"{cell}.html")
    data = data_of(page.read_text())
    load(driver, page)
    got = driver.execute_async_script(
        "var done = arguments[arguments.length - 1], acts = arguments[0], out = {};"
        "Promise.all(acts.map(function (a) { return window.srInside.levels(a[0], a[1])"
        ".then(function (q) { out[a[0] + '/' + a[1]] = Array.from(q); }); }))"
        ".then(function () { done(out); }, function (e) { done(String(e)); });",
        [[k, s] for k in range(2) for s in insp.signal_names()])
    assert isinstance(got, dict), got
    for k in range(2):
        back = layer_values(data, k)
        for s in insp.signal_names():
            e = data["acts"]["layers"][k][s]
            step = (e["hi"] - e["lo"]) / (e["levels"] - 1)
            want = np.rint((back[s] - e["lo"]) / step).T.ravel()  # (H * T,) unit-major
            np.testing.assert_array_equal(got[f"{k}/{s}"], want, err_msg=f"{cell} {k}/{s}")
    if cell != "rnn":
        assert "predict" in data["acts"]["layers"][1]["h"]
    assert severe(driver) == []


@pytest.mark.parametrize("damage", ["truncate", "foreign", "overflow"])
def test_damaged_activation_data_says_so_on_the_page(driver, tmp_path, pages, damage):
    data = data_of(pages["good"].read_text())
    for layer in data["acts"]["layers"]:
        for e in layer.values():
            e["data"] = {"truncate": e["data"][:-7], "foreign": "\u00e9" + e["data"][1:],
                         "overflow": "~~~~~" + e["data"][5:]}[damage]
    page = tmp_path / "damaged.html"
    html = pages["good"].read_text()
    start = html.index('id="sr-data">') + len('id="sr-data">')
    end = html.index("</script>", start)
    page.write_text(html[:start] + json.dumps(data).replace("<", "\\u003c") + html[end:])
    driver.get(page.as_uri())
    for _ in range(100):
        shown = driver.execute_script("return document.getElementById('sr-root').textContent")
        if "Could not show the activations" in shown:
            break
        time.sleep(0.05)
    assert "Could not show the activations: the page's activation data is damaged" in shown, \
        shown[:300]
    assert driver.execute_script("return document.getElementById('sr-root').dataset.ready") \
        is None


def test_screenshot_is_not_blank(driver, pages):
    load(driver, pages["good"])
    png = driver.get_screenshot_as_png()
    from matplotlib.image import imread
    pixels = imread(io.BytesIO(png), format="png")[..., :3]  # (H, W, 3) in [0, 1]
    assert pixels.shape[0] > 500 and pixels.shape[1] > 800
    assert pixels.std() > 0.05  # text, colours and charts, not a blank page
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 200


def test_two_notebook_fragments_render_side_by_side(driver, tmp_path):
    """_repr_html_ as a notebook shows it: two outputs in one document, each its own view."""
    vocab = sr.Vocab.ascii()
    insp = sr.inspect(sr.CharRNN(len(vocab), 8, "gru", 1, seed=0), vocab, TEXT[:300])
    page = tmp_path / "notebook.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                    + insp._repr_html_() + insp._repr_html_() + "</body></html>")
    driver.get(page.as_uri())
    for _ in range(100):
        ready = driver.execute_script("return Array.from(document.querySelectorAll("
                                      "'.sr-inside')).map(r => r.dataset.ready)")
        if ready == ["1", "1"]:
            break
        time.sleep(0.05)
    assert ready == ["1", "1"]
    assert len(driver.find_elements("css selector", ".sr-text")) == 2
    assert driver.find_elements("css selector", ".sr-inside h1") == []  # no page header
    assert severe(driver) == []
