"""The Streamlit UI in Chromium, in front of a real stack (./start_all.sh ui MODEL)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.images import samples
from harness.redis_server import free_port
from harness.services import ServiceProcess
from harness.stack import Stack, stack_env
from tests.e2e.ui import browser as ui

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    reason = ui.ensure_chromium()
    if reason:
        pytest.skip(reason)
    with ui.chromium() as browser:
        yield browser


def start_ui_stack(run_dir: Path, model: str, **env: str) -> Stack:
    stack = stack_env(run_dir)
    stack.env.update(env)
    started = stack.script("start_all.sh", "ui", model)
    if started.returncode != 0:
        stack.script("stop_all.sh")
        pytest.fail(f"./start_all.sh ui {model} failed:\n{started.stdout}{started.stderr}")
    return stack


@pytest.fixture(scope="module")
def mnist_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # leukemia is served too: the page offers a choice of model
    stack = start_ui_stack(tmp_path_factory.mktemp("ui-mnist"), "mnist", MLSERVE_MODELS="all")
    try:
        yield stack
    finally:
        stack.script("stop_all.sh")


@pytest.fixture(scope="module")
def leukemia_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_ui_stack(tmp_path_factory.mktemp("ui-leukemia"), "leukemia")
    try:
        yield stack
    finally:
        stack.script("stop_all.sh")


def served_metadata(stack: Stack, model: str) -> dict:
    """model_api's own word on the model it serves (the page must show the same)."""
    url = f"http://127.0.0.1:{stack.env['MLSERVE_MODEL_API_PORT']}/v1/models/{model}"
    return httpx.get(url).json()


def test_mnist_upload_predict_then_cached(chromium, mnist_stack: Stack) -> None:
    served = served_metadata(mnist_stack, "mnist")
    identity = f"version {served['version']} · digest {served['digest'][:12]}"
    page = ui.open_page(chromium, mnist_stack.url)
    page.get_by_text(f"Serving model mnist · {identity} ·").wait_for()
    assert page.get_by_text(served["digest"][:13]).count() == 0  # short, like git's
    sample, label = samples("mnist")[7]
    ui.upload(page, sample)
    ui.predict(page)
    page.get_by_text(f"Prediction: {label}", exact=True).wait_for()
    page.get_by_text("Computed by the model").wait_for()
    sha256 = hashlib.sha256(sample.read_bytes()).hexdigest()
    page.get_by_text(f"Answered by mnist · {identity} · image SHA-256 {sha256[:12]}").wait_for()
    ui.predict(page)
    page.get_by_text("Served from the cache").wait_for()
    assert page.get_by_text(f"Prediction: {label}", exact=True).is_visible()
    assert page.get_by_text("Traceback").count() == 0
    page.close()


def test_mnist_reads_a_phone_photo_and_says_what_works_best(chromium, mnist_stack: Stack) -> None:
    page = ui.open_page(chromium, mnist_stack.url)
    hint = page.get_by_text("Works best with one digit filling a good part of the frame")
    hint.wait_for()
    sample, label = next(
        (path, label) for path, label in samples("mnist") if path.name.startswith("phone_")
    )
    ui.upload(page, sample)
    assert hint.is_visible()  # still under the uploader with a file chosen
    ui.predict(page)
    page.get_by_text(f"Prediction: {label}", exact=True).wait_for()
    page.close()


def test_mnist_drawing_on_the_canvas_is_classified(chromium, mnist_stack: Stack) -> None:
    page = ui.open_page(chromium, mnist_stack.url)
    ui.draw_seven(page)
    ui.predict(page, "Predict drawing")
    page.get_by_text("Prediction: 7", exact=True).wait_for()
    page.close()


def test_a_damaged_file_gets_a_friendly_message(
    chromium, mnist_stack: Stack, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(samples("mnist")[5][0].read_bytes()[:300])  # a cut-off PNG
    page = ui.open_page(chromium, mnist_stack.url)
    ui.upload(page, damaged)
    ui.predict(page)
    page.get_by_text("damaged or cut short").wait_for()
    assert page.get_by_text("Traceback").count() == 0
    page.close()


def test_choosing_another_served_model(chromium, mnist_stack: Stack) -> None:
    page = ui.open_page(chromium, mnist_stack.url)
    page.get_by_text("Serving model mnist").wait_for()  # the caption follows the title
    page.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="leukemia").click()
    page.get_by_text("Serving model leukemia").wait_for()
    leukemia = served_metadata(mnist_stack, "leukemia")
    identity = f"version {leukemia['version']} · digest {leukemia['digest'][:12]}"
    page.get_by_text(f"Serving model leukemia · {identity} ·").wait_for()
    assert page.get_by_role("tab", name="Draw a digit").count() == 0
    sample, label = samples("leukemia")[1]
    ui.upload(page, sample)
    ui.predict(page)
    page.get_by_text(f"Prediction: {label}", exact=True).wait_for()
    assert page.get_by_text("Traceback").count() == 0
    page.close()


def test_leukemia_upload_predict_then_cached(chromium, leukemia_stack: Stack) -> None:
    page = ui.open_page(chromium, leukemia_stack.url)
    page.get_by_text("Serving model leukemia").wait_for()  # the caption follows the title
    assert page.get_by_role("tab", name="Draw a digit").count() == 0
    sample, label = samples("leukemia")[0]
    ui.upload(page, sample)
    ui.predict(page)
    page.get_by_text(f"Prediction: {label}", exact=True).wait_for()
    ui.predict(page)
    page.get_by_text("Served from the cache").wait_for()
    page.close()


def test_model_api_down_gets_a_friendly_message(chromium, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "APP_TYPE": "ui",
        "MODEL_NAME": "mnist",
        "MLSERVE_WEB_PORT": str(port),
        "MLSERVE_MODEL_API_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
    }
    web = ServiceProcess(
        "web_api", env, f"http://127.0.0.1:{port}/_stcore/health", tmp_path / "web_api.log"
    ).start()
    try:
        page = ui.open_page(chromium, f"http://127.0.0.1:{port}")
        page.get_by_text("The model service cannot be reached").first.wait_for()
        ui.upload(page, samples("mnist")[0][0])
        ui.predict(page)
        page.locator("[data-testid='stAlert']").filter(has_text="cannot be reached").nth(
            1
        ).wait_for()
        assert page.get_by_text("Traceback").count() == 0
        page.close()
    finally:
        web.stop()
