"""The README's screenshot of `scratchrnn visualize`: write a run's page to a temporary folder,
open it in headless Chromium (Selenium, the system chromedriver), pick a unit, hover over a
character and save the window as a PNG.

    python scripts/inside_screenshot.py runs/pg98 --out docs/inside.png
    python scripts/inside_screenshot.py runs/pg98 --unit 1/h/37 --stretch --hover 120 \
        --out docs/inside.png
"""

import argparse
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver import ActionChains
from selenium.webdriver.chrome.service import Service

from scratchrnn.inside.visualize import visualize_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--text", help="a text file (default: the run's validation split)")
    ap.add_argument("--chars", type=int, default=4000)
    ap.add_argument("--unit", help="LAYER/SIGNAL/UNIT to show (default: the page's choice)")
    ap.add_argument("--hover", type=int, default=60, help="character to hover over")
    ap.add_argument("--stretch", action="store_true", help="tick 'stretch colours'")
    ap.add_argument("--size", default="1400,980", help="window width,height in CSS pixels")
    args = ap.parse_args()
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={args.size}", "--force-device-scale-factor=1",
                "--hide-scrollbars"):
        opts.add_argument(arg)
    with tempfile.TemporaryDirectory() as tmp:
        page = visualize_run(args.run, text=args.text, chars=args.chars,
                             out=Path(tmp) / "inside.html")
        driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"),
                                  options=opts)
        try:
            driver.get(page.as_uri())
            while not driver.execute_script("return document.getElementById('sr-root')"
                                            ".dataset.ready"):
                time.sleep(0.05)
            if args.unit:
                layer, signal, unit = args.unit.split("/")
                driver.execute_script("return window.srInside.select(arguments[0], arguments[1],"
                                      " arguments[2], 'unit')", int(layer), signal, int(unit))
                time.sleep(0.3)
            if args.stretch:
                driver.find_element("css selector", "input.sr-stretch").click()
                time.sleep(0.3)
            span = driver.find_elements("css selector", ".sr-text span")[args.hover]
            ActionChains(driver).move_to_element(span).perform()
            time.sleep(0.2)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
    print(args.out)


if __name__ == "__main__":
    main()
