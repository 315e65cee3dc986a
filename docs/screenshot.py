"""The picture of the report's first screen in the README and the docs, made from the demo.

    python docs/screenshot.py

Runs what ``make demo`` runs (``custseg synth --customers 5000 --seed 42``, then ``custseg
run`` on it, with the customer table) in a temporary folder, opens its ``report.html`` in
Debian's headless Chromium with the network blocked, and writes the first screen
(1280 x 800) to ``docs/assets/report-first-screen.png``. Without Chromium or Playwright it
keeps the picture there and says why. The data is synthetic: no person's data is shown.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "assets" / "report-first-screen.png"
CHROMIUM = Path("/usr/bin/chromium")


def main() -> int:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print(f"note: Playwright is not installed; {OUT.name} kept as it is")
        return 0
    if not CHROMIUM.exists():
        print(f"note: {CHROMIUM} not found; {OUT.name} kept as it is")
        return 0
    with tempfile.TemporaryDirectory(prefix="custseg-screenshot-") as tmp:
        work = Path(tmp)
        custseg = [sys.executable, "-m", "custseg.cli"]
        subprocess.run([*custseg, "synth", "--customers", "5000", "--seed", "42",
                        "--out", "data", "-q"], check=True, cwd=work)
        subprocess.run([*custseg, "run", "data/transactions.parquet", "--customers",
                        "data/customers.parquet", "--out", "segments", "--no-figures", "-q"],
                       check=True, cwd=work)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(("file:", "data:", "blob:"))
                       else route.abort())
            page.goto((work / "segments" / "report.html").as_uri())
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1000)  # the charts' first drawing
            OUT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(OUT))
            browser.close()
    print(f"wrote {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
