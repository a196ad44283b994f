"""The generate page (`scratchrnn export --format html`): its size in bytes and how fast it
writes in headless Chromium, for the default model (TrainConfig's defaults) and the
`shakespeare` preset, on the ascii vocabulary.

The weights are untrained, of the trained model's shape: size and speed depend on the shapes
only. Speed is characters per second of sampling at temperature 0.8, measured twice: by the
page's own hook (srGenerate, one loop, timed with performance.now inside the page) and through
the page's Start button (the loop in 25 ms batches that keep the page responsive; the status
line's characters/s). Load is the time from opening the file to the model being ready (parse
the page, decode the weights). Chromium runs the script on one core; a shared machine moves
these numbers, so compare runs made on the same quiet machine.

    python benchmarks/bench_page.py                 # both models, 3000 characters, 3 rounds
    python benchmarks/bench_page.py --chars 500 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from browser import chromium  # noqa: E402  (tests/browser.py: the headless Chromium)

import scratchrnn as sr  # noqa: E402
from scratchrnn.interop.html_export import export_html  # noqa: E402


def models():
    vocab = sr.Vocab.ascii()
    for name, cfg in (("default", sr.TrainConfig()),
                      ("shakespeare", sr.with_preset("shakespeare"))):
        yield name, vocab, sr.CharRNN(len(vocab), cfg.hidden, cfg.cell, cfg.layers, seed=0,
                                      layer_norm=cfg.layer_norm)


def wait(driver, script, timeout=600.0):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(script)


def bench(driver, path: Path, chars: int, rounds: int) -> dict:
    loads, hook, ui = [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        driver.get(path.as_uri())
        wait(driver, "return document.getElementById('sr-root').dataset.ready")
        loads.append(time.perf_counter() - t0)
        secs = driver.execute_script(
            "const t = performance.now(); const r = srGenerate({prompt: 'The ', length: "
            "arguments[0], temperature: 0.8, seed: 1}); if (r.error) throw new Error(r.error);"
            "return (performance.now() - t) / 1000;", chars)
        hook.append(chars / secs)
        driver.execute_script("document.getElementById('sr-length').value = arguments[0];"
                              "document.getElementById('sr-start').click()", chars)
        status = wait(driver, "const s = document.getElementById('sr-status').textContent;"
                      "return s.startsWith('Done') && s")
        ui.append(float(status.rsplit("(", 1)[1].split()[0].replace(",", "")))
    return {"load_s": statistics.median(loads), "chars_per_s_hook": statistics.median(hook),
            "chars_per_s_page": statistics.median(ui)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chars", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    driver = chromium(1200, 900)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, vocab, model in models():
                path = export_html(model, vocab, Path(tmp) / f"{name}.html")
                row = {"model": name, "cell": model.config.cell, "hidden": model.config.hidden_size,
                       "layers": model.config.num_layers, "layer_norm": model.config.layer_norm,
                       "params": model.num_params(), "page_bytes": path.stat().st_size}
                row.update(bench(driver, path, args.chars, args.rounds))
                rows.append(row)
                print(f"{name:12s} {row['params']:>10,} params  page {row['page_bytes']:>12,} "
                      f"bytes  load {row['load_s']:.2f} s  {row['chars_per_s_hook']:>8,.0f} "
                      f"chars/s (hook)  {row['chars_per_s_page']:>8,.0f} chars/s (Start)",
                      flush=True)
    finally:
        driver.quit()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
