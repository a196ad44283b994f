"""The playground in a real browser: headless Debian Chromium driven by Selenium through the
system chromedriver (nothing downloaded), against a server started in this process on
127.0.0.1:0. Checks: the page loads with no console errors, typing a prompt updates the
activation view, hover shows the top-5, Generate streams text into the page (seen before the
end), a clamp from the page steers it, a refused request shows its message, and a screenshot is
not blank. SCRATCHRNN_SCREENSHOTS=DIR also keeps the screenshot there (for the README)."""

import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from browser import chromium
from conftest import tiny_run

import scratchrnn as sr
from scratchrnn.serve import server as serve


@pytest.fixture(scope="module")
def driver():
    drv = chromium(1400, 1100)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    run = tiny_run(tmp_path_factory.mktemp("serve-browser"), "gru", eval_every=40)
    srv = serve.make_server(run, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def wait(driver, script, timeout=20, *args):
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {script!r}; console: {driver.get_log('browser')}")


def load(driver, server):
    driver.get(serve.url(server))
    wait(driver, "return document.body.dataset.inspected")
    wait(driver, "return document.getElementById('view').dataset.ready")


def severe(driver, network_ok=False):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
            and not (network_ok and e.get("source") == "network")]


def view_text(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#view .sr-text span'))"
        ".map(s => s.textContent).join('')")


def colours(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#view .sr-text span'))"
        ".map(s => getComputedStyle(s).backgroundColor)")


def output(driver):
    return driver.execute_script("return document.querySelector('#output .new').textContent")


def test_page_loads_without_console_errors_and_shows_the_prompt(driver, server):
    load(driver, server)
    prompt = driver.execute_script("return document.getElementById('prompt').value")
    assert view_text(driver) == prompt.replace("\n", "\u21b5")
    assert len(set(colours(driver))) > 3  # painted by a unit, not all white
    assert "GRU, 2" in driver.find_element("id", "card").text
    assert severe(driver) == []


def test_typing_updates_the_view_and_hover_shows_the_top_five(driver, server):
    load(driver, server)
    box = driver.find_element("id", "prompt")
    box.clear()
    before = driver.execute_script("return document.body.dataset.inspected")
    typed = 'He said "no" (twice) <b>&amp;</b><img src=x onerror="window.__pwned=1">'
    box.send_keys(typed)
    wait(driver, "return document.body.dataset.inspected !== arguments[0] && "
                 "document.querySelectorAll('#view .sr-text span').length === arguments[1]",
         20, before, len(typed))
    assert view_text(driver) == typed  # the markup shows as text
    assert driver.execute_script("return document.querySelector('.sr-text b, .sr-text img')"
                                 " === null && window.__pwned === undefined")
    from selenium.webdriver.common.action_chains import ActionChains
    span = driver.find_elements("css selector", "#view .sr-text span")[3]
    ActionChains(driver).move_to_element(span).perform()
    wait(driver, "return document.querySelectorAll('#view .sr-guess').length === 5")
    assert "Character 3" in driver.find_element("css selector", "#view .sr-panel").text
    assert severe(driver) == []


def test_generate_streams_into_the_page(driver, server, monkeypatch):
    """The server holds the generator after 30 characters until the page has shown them."""
    go = threading.Event()
    real = serve.generate

    def held(*a, **kw):
        for n, ch in enumerate(real(*a, **kw)):
            if n == 30:
                go.wait(20)
            yield ch

    monkeypatch.setattr(server.RequestHandlerClass.playground, "generate", held)
    monkeypatch.setattr(serve, "FLUSH_EVERY", 0.0)
    load(driver, server)
    length = driver.find_element("id", "length")
    length.clear()
    length.send_keys("300")
    driver.find_element("id", "generate").click()
    wait(driver, "return document.querySelector('#output .new').textContent.length >= 30")
    assert len(output(driver)) == 30 and not go.is_set()  # shown before the rest exists
    assert driver.find_element("id", "stop").is_enabled()
    go.set()
    wait(driver, "return document.body.dataset.generated === '300'")
    ckpt = server.RequestHandlerClass.playground.ckpt
    assert output(driver) == "".join(sr.generate(ckpt.model, ckpt.vocab, "It was", 300, 0.8,
                                                 seed=0))
    assert int(driver.execute_script("return document.body.dataset.chunks")) > 1
    assert severe(driver) == []


def test_a_clamp_set_in_the_page_steers_the_text(driver, server):
    load(driver, server)
    driver.execute_script("document.body.dataset.generated = ''")
    driver.find_element("id", "clamp").click()
    driver.execute_script("document.getElementById('clamp_layer').value = '1';"
                          "document.getElementById('clamp_unit').value = '5';"
                          "document.getElementById('clamp_value').value = '-1';")
    driver.find_element("id", "generate").click()
    wait(driver, "return document.body.dataset.generated === '400'")
    ckpt = server.RequestHandlerClass.playground.ckpt
    want = "".join(sr.generate(ckpt.model, ckpt.vocab, "It was", 400, 0.8, seed=0,
                               clamp=(1, 5, -1.0)))
    assert output(driver) == want
    assert want != "".join(sr.generate(ckpt.model, ckpt.vocab, "It was", 400, 0.8, seed=0))
    assert "held at -1.00" in driver.find_element("id", "genstatus").text
    before = driver.execute_script("return document.body.dataset.inspected")
    driver.find_element("id", "look").click()  # and look inside what it wrote
    wait(driver, "return document.body.dataset.inspected !== arguments[0]", 20, before)
    assert view_text(driver) == ("It was" + want).replace("\n", "\u21b5")
    assert severe(driver) == []


def test_a_refused_request_shows_its_message(driver, server):
    load(driver, server)
    t = driver.find_element("id", "temperature")
    t.clear()
    t.send_keys("0")
    driver.find_element("id", "generate").click()
    wait(driver, "return document.getElementById('genstatus').className === 'error'")
    assert "temperature must be positive" in driver.find_element("id", "genstatus").text
    assert severe(driver, network_ok=True) == []  # only the 400 itself, logged as network


def test_screenshot_is_not_blank(driver, server, tmp_path):
    driver.set_window_size(1400, 1800)
    try:
        load(driver, server)
        driver.find_element("id", "generate").click()
        wait(driver, "return document.body.dataset.generated === '400'")
        driver.execute_script("window.scrollTo(0, 0)")
        span = driver.find_elements("css selector", "#view .sr-text span")[10]
        from selenium.webdriver.common.action_chains import ActionChains
        ActionChains(driver).move_to_element(span).perform()  # the top-5 panel, filled
        png = driver.get_screenshot_as_png()
    finally:
        driver.set_window_size(1400, 1100)
    from matplotlib.image import imread
    pixels = imread(io.BytesIO(png), format="png")[..., :3]  # (H, W, 3) in [0, 1]
    assert pixels.shape[0] > 500 and pixels.shape[1] > 800
    assert pixels.std() > 0.05
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 200
    keep = os.environ.get("SCRATCHRNN_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / "playground.png").write_bytes(png)
