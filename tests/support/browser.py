"""Headless Chromium for the web page's tests and benchmark: the driver, the page's test ids,
and an in-page clock of when the picks and the model's reasons appear."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# Installed before submitting: records (page clock, ms) when the first card shows up, when the
# first model-written reason replaces a catalog one, and when any streamed raw text shows up.
WATCH_JS = """
window.__mm = {firstCard: null, firstModelReason: null, firstToken: null};
const stream = document.querySelector('[data-testid="stream-text"]');
const cards = document.querySelector('[data-testid="cards"]');
new MutationObserver(() => {
  if (window.__mm.firstToken === null && stream.textContent.trim()) window.__mm.firstToken = performance.now();
}).observe(stream, {childList: true, characterData: true, subtree: true});
new MutationObserver(() => {
  if (window.__mm.firstCard === null && cards.querySelector('[data-testid="card"]')) window.__mm.firstCard = performance.now();
  if (window.__mm.firstModelReason === null && cards.querySelector('[data-source="model"]')) window.__mm.firstModelReason = performance.now();
}).observe(cards, {childList: true, subtree: true, attributes: true, characterData: true});
"""


def have_chromium() -> bool:
    """Debian's chromium and chromium-driver are installed (scripts/setup.sh full)."""
    return CHROMIUM.is_file() and CHROMEDRIVER.is_file()


@contextmanager
def chromium(workdir: Path) -> Iterator[Any]:
    """A headless Chromium driven by chromedriver, with a throwaway profile under `workdir`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,1100",
        f"--user-data-dir={workdir / 'chromium-profile'}",
    ):
        opts.add_argument(arg)
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(workdir / "chromedriver.log")
    )
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def by_testid(name: str) -> tuple[str, str]:
    return ("css selector", f'[data-testid="{name}"]')


# One script reads every card at once: the page re-renders the cards as reasons stream in, so
# element handles taken in one poll may be gone by the next call (a stale element reference).
CARDS_JS = """
return Array.from(document.querySelectorAll('[data-testid="card"]')).map(card => [
  (card.querySelector('[data-testid="card-title"]') || {}).innerText || '',
  (card.querySelector('[data-testid="card-reason"]') || {}).innerText || '',
]);
"""


def cards_done(driver) -> list[tuple[str, str]] | bool:
    """(title, reason) of every card once all have a non-empty title and reason."""
    found = [(t.strip(), r.strip()) for t, r in driver.execute_script(CARDS_JS)]
    if found and all(t and r for t, r in found):
        return found
    return False
