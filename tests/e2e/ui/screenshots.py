"""Take docs/ui-<model>.png: each model's page with a real prediction on it.

usage: python -m tests.e2e.ui.screenshots [MODEL ...]    (default: mnist leukemia)
Starts a private stack per model (./start_all.sh ui MODEL on free ports) and stops it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness.images import samples
from harness.stack import ROOT, stack_env
from tests.e2e.ui import browser as ui

# Which sample each screenshot shows (index into the model's sorted samples).
SHOWN_SAMPLE = {"mnist": 11, "leukemia": 0}  # mnist: the phone photo on ruled paper
SCREENSHOT_SIZE = {"width": 1280, "height": 1080}


def screenshot(model: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f"mlserve-ui-{model}-") as run_dir:
        stack = stack_env(Path(run_dir))
        started = stack.script("start_all.sh", "ui", model)
        try:
            if started.returncode != 0:
                raise SystemExit(f"./start_all.sh ui {model} failed:\n{started.stdout}")
            with ui.chromium() as browser:
                page = ui.open_page(browser, stack.url)
                sample, label = samples(model)[SHOWN_SAMPLE.get(model, 0)]
                ui.upload(page, sample)
                ui.predict(page)
                page.get_by_text(f"Prediction: {label}", exact=True).wait_for()
                page.set_viewport_size(SCREENSHOT_SIZE)  # tall enough for the whole answer
                ui.wait_for_chart(page)
                page.screenshot(path=str(out), full_page=True)
        finally:
            stack.script("stop_all.sh")
    print(f"wrote {out.relative_to(ROOT)} ({model}: {sample.name} -> {label})")


def main(models: list[str]) -> int:
    reason = ui.ensure_chromium()
    if reason:
        print(f"error: {reason}")
        return 1
    for model in models or ["mnist", "leukemia"]:
        screenshot(model, ROOT / "docs" / f"ui-{model}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
