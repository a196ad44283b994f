"""The visualize page of runs in other scripts, in headless Chromium (tests/browser.py; skipped
where it is missing): Cyrillic, CJK with emoji, and right-to-left text show code point by code
point in their own characters, right-to-left lines run right to left, a hostile corpus injects
nothing and its bidi override acts on nothing else, and a bytes run shows one cell per byte."""

import time

import pytest
from browser import chromium

import scratchrnn as sr
from scratchrnn.inside.visualize import visualize_run

TEXTS = {
    "cyrillic": "«Мой дядя самых честных правил», — сказал он.\nЁлка, ёж и йод!\n" * 4,
    "cjk": "床前明月光，疑是地上霜。\n「舉頭望明月」，低頭思故鄉！😀🎉\n" * 4,
    "rtl": "שלום עולם.\nقال: «مرحبا بالعالم»؟\nabc שלום\n" * 4,
    "hostile": ("</script><script>window.__pwned=1</script> <img src=x onerror="
                "'window.__pwned=1'> &amp; & \u2028x\u2029 abc\u202edef ok\n") * 4,
}
TRAIN = dict(hidden=8, layers=1, max_steps=5, batch=2, seq_len=8, eval_every=5,
             sample_length=0)
SPANS = ("return Array.from(document.querySelectorAll('.sr-text span')).map(s => "
         "s.classList.contains('sr-part') ? null : s.classList.contains('sr-nl') ? '\\n' "
         ": s.textContent)")


@pytest.fixture(scope="module")
def driver():
    drv = chromium(1400, 1000)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    d = tmp_path_factory.mktemp("unicode-pages")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCRATCHRNN_HOME", str(d / "cache"))
        for name, text in [*TEXTS.items(), ("bytes", TEXTS["cyrillic"] + TEXTS["cjk"])]:
            (d / f"{name}.txt").write_text(text, encoding="utf-8")
            vocab = {"hostile": "unicode", "bytes": "bytes"}.get(name, "auto")
            sr.train(sr.TrainConfig(text=str(d / f"{name}.txt"), out=str(d / name),
                                    vocab=vocab, **TRAIN), progress=False, log=lambda *a: None)
            out[name] = visualize_run(d / name, text=str(d / f"{name}.txt"), chars=2000)
    return out


def load(driver, path):
    driver.get(path.as_uri())
    for _ in range(100):
        if driver.execute_script("return document.getElementById('sr-root').dataset.ready"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the page did not finish rendering: {driver.get_log('browser')}")


def severe(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def lefts(driver, indices):
    return driver.execute_script(
        "var s = document.querySelectorAll('.sr-text span');"
        "return arguments[0].map(i => s[i].getBoundingClientRect().left)", indices)


@pytest.mark.parametrize("name", ["cyrillic", "cjk", "rtl", "hostile"])
def test_the_text_shows_code_point_by_code_point(driver, pages, name):
    load(driver, pages[name])
    shown = driver.execute_script(SPANS)
    assert shown == list(TEXTS[name])  # an emoji is one span, not two UTF-16 halves
    assert severe(driver) == []


def test_right_to_left_lines_run_right_to_left(driver, pages):
    load(driver, pages["rtl"])
    text = TEXTS["rtl"]
    first, dot = 0, text.index(".")  # "שלום עולם." : its full stop ends it on the left
    x = lefts(driver, [first, first + 1, dot])
    assert x[0] > x[1] > x[2]
    arabic = text.index("قال")
    x = lefts(driver, [arabic, arabic + 1, text.index("؟")])
    assert x[0] > x[1] > x[2]
    latin = text.index("abc")  # a line that starts in Latin runs left to right
    x = lefts(driver, [latin, latin + 1, text.index("\n", latin)])
    assert x[0] < x[1] < x[2]


def test_a_hostile_corpus_injects_nothing(driver, pages):
    load(driver, pages["hostile"])
    assert driver.execute_script("return window.__pwned") is None
    assert driver.find_elements("css selector", ".sr-inside img, .sr-inside script") == []
    text = TEXTS["hostile"]
    d = text.index("\u202e") + 1
    x = lefts(driver, [d, d + 1, d + 2, d + 4])  # "def ok" after U+202E still reads forwards
    assert x[0] < x[1] < x[2] < x[3]
    shown = driver.execute_script("return Array.from(document.querySelectorAll("
                                  "'.sr-text .sr-ctl')).map(s => s.dataset.show)")
    assert shown[:3] == ["U+2028", "U+2029", "U+202E"]


def test_a_bytes_page_has_one_cell_per_byte(driver, pages):
    from selenium.webdriver import ActionChains
    load(driver, pages["bytes"])
    text = TEXTS["cyrillic"] + TEXTS["cjk"]
    shown = driver.execute_script(SPANS)
    assert len(shown) == len(text.encode())
    assert [c for c in shown if c is not None] == list(text)
    spans = driver.find_elements("css selector", ".sr-text span")
    panel = driver.find_element("css selector", ".sr-panel")
    ActionChains(driver).move_to_element(spans[1]).perform()  # « is C2 AB
    assert "Byte 1: AB" in panel.text and "byte 2 of 2 of" in panel.text
    ActionChains(driver).move_to_element(spans[2]).perform()  # М's first byte
    assert "Byte 2: D0" in panel.text and "byte 1 of 2 of" in panel.text
    assert "Actual next: М" in panel.text
    assert "nats/byte" in driver.find_element("css selector", ".sr-stat").text
    assert severe(driver) == []


def test_the_arrow_keys_move_the_way_a_line_runs(driver, pages):
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.keys import Keys
    load(driver, pages["rtl"])
    driver.execute_script("arguments[0].focus()",
                          driver.find_element("css selector", ".sr-text"))
    ActionChains(driver).send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT).perform()
    assert driver.switch_to.active_element.get_attribute("data-i") == "2"  # leftwards: on
    ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
    assert driver.switch_to.active_element.get_attribute("data-i") == "1"
    latin = TEXTS["rtl"].index("abc")
    driver.find_elements("css selector", ".sr-text span")[latin].click()
    ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
    assert driver.switch_to.active_element.get_attribute("data-i") == str(latin + 1)
    assert severe(driver) == []


def test_a_bytes_notebook_fragment_renders(driver, tmp_path):
    model = sr.CharRNN(256, 8, "gru", 1, seed=0)
    insp = sr.inspect(model, sr.Vocab.bytes(), TEXTS["cjk"])
    page = tmp_path / "notebook.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                    + insp._repr_html_() + "</body></html>", encoding="utf-8")
    driver.get(page.as_uri())
    for _ in range(100):
        if driver.execute_script("return document.querySelector('.sr-inside').dataset.ready"):
            break
        time.sleep(0.05)
    shown = driver.execute_script(SPANS)
    assert [c for c in shown if c is not None] == list(TEXTS["cjk"])
    assert len(shown) == len(TEXTS["cjk"].encode())
    assert severe(driver) == []
