"""`mlserve_common.runtime.errors`: unexpected errors answer 500 and are logged like the others, at
most one line per 10 s per cause (the exception's type and where it was raised), the first
with its traceback, later ones with a count of those not logged (issue 27)."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from harness.redis_server import free_port
from mlserve_common.runtime import errors


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Fresh throttles (no state from other tests) and a clock the test moves."""
    fake = Clock()
    monkeypatch.setattr(errors.time, "monotonic", fake)
    monkeypatch.setattr(errors, "_unexpected", errors._ThrottledLog())
    monkeypatch.setattr(errors, "_tracebacks", errors._ThrottledLog(interval=3600.0))
    monkeypatch.setattr(errors, "log_throttled", errors._ThrottledLog())
    return fake


def broken_app() -> FastAPI:
    app = FastAPI()
    errors.install_error_handlers(app)

    @app.get("/int")
    async def bad_int() -> dict:
        return {"n": int("²")}  # one place, one cause

    @app.get("/key")
    async def bad_key() -> dict:
        return {}["missing"]  # another

    return app


async def many(app: FastAPI, path: str, count: int) -> list[httpx.Response]:
    """`count` GETs of `path`, one after another, in one event loop (a TestClient request
    each would cost a trip through its portal)."""
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [await client.get(path) for _ in range(count)]


def unexpected_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("unhandled error")]


def test_a_flood_of_one_unexpected_error_is_one_traceback_and_a_count(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with TestClient(broken_app(), raise_server_exceptions=False) as client:
        answers = client.portal.call(many, client.app, "/int", 500)
        assert [a.status_code for a in answers] == [500] * 500
        assert {a.json()["code"] for a in answers} == {"internal_error"}
        assert not [a for a in answers if "Traceback" in a.text]
        lines = unexpected_lines(caplog)
        assert len(lines) == 1  # not 500
        (first,) = lines
        assert first.levelno == logging.ERROR and first.exc_info is not None  # in full
        message = first.getMessage()
        assert "ValueError at " in message and "test_errors.py:" in message
        assert "invalid literal" in message

        clock.now += 10.0  # the window has passed: the next one logs, with the count
        client.get("/int")
        lines = unexpected_lines(caplog)
        assert len(lines) == 2
        assert "(and 499 more of it since the last such line)" in lines[1].getMessage()
        assert lines[1].exc_info is None  # the traceback was logged already, this hour

        clock.now += 3600.0
        client.get("/int")
        assert unexpected_lines(caplog)[2].exc_info is not None  # once an hour, again


def test_another_cause_is_logged_on_its_own(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with TestClient(broken_app(), raise_server_exceptions=False) as client:
        for _ in range(50):
            client.get("/int")
            assert client.get("/key").status_code == 500
    lines = unexpected_lines(caplog)
    assert len(lines) == 2
    assert "ValueError at " in lines[0].getMessage()
    assert "KeyError at " in lines[1].getMessage()
    assert all(line.exc_info is not None for line in lines)


def test_the_cause_is_the_type_and_the_place_never_the_message() -> None:
    def fail(text: str) -> None:
        raise ValueError(text)

    causes = set()
    for text in ("a", "b"):
        try:
            fail(text)
        except ValueError as exc:
            causes.add(errors.unexpected_cause(exc))
    (cause,) = causes
    assert cause.startswith("ValueError at ") and cause.endswith(
        f"test_errors.py:{fail.__code__.co_firstlineno + 1}"
    )
    assert errors.unexpected_cause(KeyError("never raised")) == "KeyError"


def test_known_5xx_stay_throttled_per_code(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(100):
        errors.log_error("POST", "/x", errors.UploadsBusyError("busy"))
    assert len([r for r in caplog.records if "-> 503 busy" in r.getMessage()]) == 1
    clock.now += 10.0
    errors.log_error("POST", "/x", errors.UploadsBusyError("busy"))
    assert "(and 99 more busy since the last such line)" in caplog.records[-1].getMessage()


def test_the_throttle_remembers_a_bounded_number_of_causes(clock: Clock) -> None:
    throttle = errors._ThrottledLog(max_causes=8)
    for n in range(100):
        assert throttle.admit(f"cause {n}") == 0
        clock.now += 1.0
    assert len(throttle._last) <= 8
    assert throttle.admit("cause 99") is None  # the recent ones are still counted


def test_uvicorn_does_not_log_again_what_the_handler_logged(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Starlette re-raises after the 500 is sent, and uvicorn logs the exception again in
    full: in a real server, 50 failing requests are still one traceback."""
    caplog.set_level(logging.INFO)
    port = free_port()
    config = uvicorn.Config(broken_app(), port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        # uvicorn closes a connection whose app raised: a connection each
        with httpx.Client(headers={"connection": "close"}) as client:
            for _ in range(50):
                assert client.get(f"http://127.0.0.1:{port}/int").status_code == 500
    finally:
        server.should_exit = True
        thread.join(10)
    with_traceback = [r for r in caplog.records if r.exc_info is not None]
    assert len(with_traceback) == 1, [r.getMessage() for r in with_traceback]
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]


def test_an_error_uvicorn_alone_sees_is_throttled_too(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # The logger's own level too: a stack started earlier in the run may have set it higher.
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    errors._filter_uvicorn_duplicates()
    errors._filter_uvicorn_duplicates()  # once, however many apps install it
    logger = logging.getLogger("uvicorn.error")
    assert sum(isinstance(f, errors._UnexpectedOnce) for f in logger.filters) == 1
    for _ in range(20):
        try:
            raise RuntimeError("outside the app's handlers")
        except RuntimeError as exc:
            logger.error("Exception in ASGI application\n", exc_info=exc)
    logger.info("Application startup complete.")  # lines without an exception pass as they are
    records = [r for r in caplog.records if r.name == "uvicorn.error"]
    assert len(records) == 2
    assert records[0].exc_info is not None
    assert "RuntimeError at " in records[0].getMessage()
    assert records[1].getMessage() == "Application startup complete."
