"""Chromium driven by Playwright, and the steps a person takes on the Streamlit page."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from harness.stack import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 30_000


def ensure_chromium() -> str | None:
    """None when Debian's chromium is there (installed now if needed), else why it is not."""
    if CHROMIUM.exists():
        return None
    installed = subprocess.run(
        [str(ROOT / "scripts" / "install_test_browser.sh")], capture_output=True, text=True
    )
    if CHROMIUM.exists():
        return None
    return f"{CHROMIUM} is missing and could not be installed: {installed.stderr[-500:]}"


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Browser, url: str) -> Page:
    """The app, loaded: its title is on screen."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.locator("h1").filter(has_text="MLServe").wait_for()
    return page


def upload(page: Page, image: Path) -> None:
    page.locator("input[type=file]").set_input_files(image)
    page.get_by_text(image.name).first.wait_for()


def predict(page: Page, button: str = "Predict") -> None:
    page.get_by_role("button", name=button, exact=True).click()


def draw_seven(page: Page) -> None:
    """Mouse strokes of a '7' on the drawing canvas (Fabric.js listens on the upper canvas)."""
    page.get_by_role("tab", name="Draw a digit").click()
    box = page.locator("canvas.upper-canvas").bounding_box()
    assert box is not None, "the drawing canvas is not on the page"
    x, y = box["x"], box["y"]
    page.mouse.move(x + 70, y + 60)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + 70 + 14 * step, y + 60)
    for step in range(1, 16):
        page.mouse.move(x + 210 - 7 * step, y + 60 + 13 * step)
    page.mouse.up()


def wait_for_chart(page: Page) -> None:
    """The probabilities chart has been drawn (for screenshots)."""
    page.locator("[data-testid='stVegaLiteChart']").first.wait_for()
    page.wait_for_timeout(1000)
