"""The services' log formats: one JSON object per line with the request's fields, or the
readable text line; the access line with status and duration."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from mlserve_common.runtime import logs
from mlserve_common.runtime.logs import (
    JsonFormatter,
    LogFormat,
    LogSettings,
    note_request,
    request_fields,
    request_id_var,
    setup_logging,
)


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("mlserve", logging.INFO, __file__, 1, message, args or ("x",), None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_carries_the_record_the_request_and_its_fields() -> None:
    token = request_fields.set(None)
    try:
        note_request(model="mnist")
        note_request(digest="d" * 64)
        line = record(code="invalid_image", status=400, request_id="r-1")
        entry = json.loads(JsonFormatter("model_api").format(line))
    finally:
        request_fields.reset(token)
    assert entry["message"] == "hello x" and entry["level"] == "info"
    assert (entry["service"], entry["logger"], entry["request_id"]) == (
        "model_api",
        "mlserve",
        "r-1",
    )
    assert (entry["model"], entry["digest"]) == ("mnist", "d" * 64)
    assert (entry["code"], entry["status"]) == ("invalid_image", 400)
    assert entry["time"].endswith("+00:00") and isinstance(entry["pid"], int)


def test_a_line_outside_a_request_has_no_request_fields() -> None:
    entry = json.loads(JsonFormatter("web_api").format(record(request_id="-")))
    assert not {"request_id", "model", "digest", "code"} & set(entry)


def test_a_traceback_is_one_field_of_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = JsonFormatter("model_api").format(failed)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exception"]


@pytest.mark.parametrize("chosen", list(LogFormat))
def test_setup_writes_the_chosen_format_with_the_request_id(
    chosen: LogFormat, restore_logging, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(LogSettings(log_format=chosen), "model_api")
    token = request_id_var.set("r-42")
    try:
        logging.getLogger("mlserve").warning("careful")
    finally:
        request_id_var.reset(token)
    out, err = capsys.readouterr()
    if chosen is LogFormat.json:
        assert err == ""
        assert json.loads(out)["request_id"] == "r-42"
    else:
        assert out == "" and "WARNING mlserve [r-42] careful" in err


def test_the_format_is_a_setting() -> None:
    assert LogSettings().log_format is LogFormat.text
    with pytest.raises(ValueError):
        LogSettings(log_format="xml")


@pytest.mark.parametrize("chosen", [LogFormat.json, LogFormat.text])
def test_with_traces_on_every_line_names_its_trace(
    chosen: LogFormat, restore_logging, capsys: pytest.CaptureFixture[str]
) -> None:
    """tracing.configure hands the logs its trace-id lookup; outside a trace a line has none."""
    current = {"id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    logs.use_trace_ids(lambda: current["id"])
    try:
        setup_logging(LogSettings(log_format=chosen), "web_api")
        logging.getLogger("mlserve").warning("traced")
        current["id"] = None
        logging.getLogger("mlserve").warning("untraced")
    finally:
        logs.use_trace_ids(None)
    out, err = capsys.readouterr()
    if chosen is LogFormat.json:
        traced, untraced = map(json.loads, out.splitlines())
        assert traced["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert "trace_id" not in untraced
    else:
        assert "[- 4bf92f3577b34da6a3ce929d0e0e4736] traced" in err
        assert "[- -] untraced" in err
