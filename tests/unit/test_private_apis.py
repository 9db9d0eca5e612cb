"""The non-public parts of uvicorn and prometheus_client our hand-written pieces rely on.

`mlserve_common/runtime/http_protocol.py` subclasses uvicorn's `HttpToolsProtocol` and uses its
attributes and private methods, `mlserve_common/runtime/supervisor.py` subclasses its `Multiprocess`
supervisor, and `mlserve_common/runtime/metrics_export.py` replaces `prometheus_client.values.ValueClass`.
None of that is a public API: an upgrade may rename or change it without notice. Each test
here names what it checks, so that a failure says which piece to revisit, and the packages
stay pinned (exactly) where the services install them.
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client import metrics as prometheus_metrics
from prometheus_client import values as prometheus_values
from uvicorn import config as uvicorn_config
from uvicorn.protocols.http import httptools_impl
from uvicorn.supervisors import multiprocess

ROOT = Path(__file__).resolve().parents[2]

# --- pins ---------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["model_api", "web_api"])
@pytest.mark.parametrize(
    ("package", "line"),
    [("uvicorn", "uvicorn[standard]"), ("prometheus-client", "prometheus-client")],
)
def test_the_packages_are_pinned_to_the_version_checked_here(
    service: str, package: str, line: str
) -> None:
    requirements = (ROOT / service / "requirements.txt").read_text()
    pins = re.findall(rf"^{re.escape(line)}==([\w.]+)", requirements, re.M)
    assert pins == [version(package)], (
        f"{service}/requirements.txt must pin {line}=={version(package)} exactly: the private "
        f"parts checked in this file are those of that version"
    )


# --- uvicorn's HttpToolsProtocol (mlserve_common/runtime/http_protocol.py) ----------------------------

PROTOCOL_METHODS = {
    # overridden, and called back through super() or the class
    "__init__": ["self", "config", "server_state", "app_state", "_loop"],
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "data_received": ["self", "data"],
    "on_headers_complete": ["self"],
    "on_message_complete": ["self"],
    "shutdown": ["self"],
    # private helpers called as they are
    "handle_websocket_upgrade": ["self"],
    "_unsupported_upgrade_warning": ["self"],
    "_unset_keepalive_if_required": ["self"],
    "_should_upgrade": ["self"],
}
PROTOCOL_ATTRIBUTES = [
    "loop",
    "parser",
    "connections",
    "transport",
    "client",
    "cycle",
    "url",
    "headers",
]
CYCLE_ATTRIBUTES = [
    "scope",
    "response_complete",
    "response_started",
    "keep_alive",
    "disconnected",
    "message_event",
]


@pytest.mark.parametrize("name", list(PROTOCOL_METHODS))
def test_http_protocol_methods_we_override_or_call(name: str) -> None:
    method = getattr(httptools_impl.HttpToolsProtocol, name, None)
    assert callable(method), (
        f"uvicorn's HttpToolsProtocol.{name} is gone: revisit GuardedHttpProtocol"
    )
    parameters = list(inspect.signature(method).parameters)
    assert parameters == PROTOCOL_METHODS[name], (
        f"uvicorn's HttpToolsProtocol.{name}{inspect.signature(method)} changed: revisit "
        "GuardedHttpProtocol (mlserve_common/runtime/http_protocol.py)"
    )


@pytest.mark.parametrize("name", PROTOCOL_ATTRIBUTES)
def test_http_protocol_attributes_we_read(name: str) -> None:
    source = inspect.getsource(httptools_impl.HttpToolsProtocol)
    assert re.search(rf"\bself\.{name}(?::[^=\n]+)? = ", source), (
        f"uvicorn's HttpToolsProtocol no longer sets self.{name}: revisit GuardedHttpProtocol"
    )


@pytest.mark.parametrize("name", CYCLE_ATTRIBUTES)
def test_request_cycle_attributes_we_read_and_set(name: str) -> None:
    source = inspect.getsource(httptools_impl.RequestResponseCycle.__init__)
    assert re.search(rf"\bself\.{name}(?::[^=\n]+)? = ", source), (
        f"uvicorn's RequestResponseCycle no longer has {name}: revisit GuardedHttpProtocol "
        "(connection loss, drained shutdown)"
    )


def test_the_protocol_feeds_httptools_and_its_upgrade_error() -> None:
    source = inspect.getsource(httptools_impl.HttpToolsProtocol.data_received)
    for used in ("self.parser.feed_data", "httptools.HttpParserUpgrade"):
        assert used in source, f"HttpToolsProtocol.data_received no longer uses {used}"


# --- uvicorn's Multiprocess supervisor (mlserve_common/runtime/supervisor.py) -------------------------

SUPERVISOR_METHODS = {
    "__init__": ["self", "config", "sockets"],
    "init_processes": ["self"],
    "keep_subprocess_alive": ["self"],
    "restart_all": ["self"],
    "handle_ttin": ["self"],
    "handle_ttou": ["self"],
}
PROCESS_METHODS = {
    "__init__": ["self", "config", "sockets"],
    "start": ["self"],
    "is_alive": ["self", "timeout"],
    "wait_until_ready": ["self", "timeout", "should_exit"],
    "terminate": ["self"],
    "kill": ["self"],
    "join": ["self"],
}


@pytest.mark.parametrize("name", list(SUPERVISOR_METHODS))
def test_supervisor_methods_we_override(name: str) -> None:
    method = getattr(multiprocess.Multiprocess, name, None)
    assert callable(method), f"uvicorn's Multiprocess.{name} is gone: revisit SocketPerWorker"
    assert list(inspect.signature(method).parameters) == SUPERVISOR_METHODS[name], (
        f"uvicorn's Multiprocess.{name}{inspect.signature(method)} changed: revisit SocketPerWorker"
    )


def test_the_supervisor_calls_what_we_override_where_we_expect() -> None:
    run = inspect.getsource(multiprocess.Multiprocess.run)
    assert "self.init_processes()" in run and "self.keep_subprocess_alive()" in run, (
        "Multiprocess.run no longer starts workers with init_processes() and watches them "
        "with keep_subprocess_alive(): revisit SocketPerWorker"
    )
    hup = inspect.getsource(multiprocess.Multiprocess.handle_hup)
    assert "self.restart_all()" in hup, (
        "SIGHUP no longer calls restart_all(): revisit SocketPerWorker"
    )
    init = inspect.getsource(multiprocess.Multiprocess.__init__)
    for name in ("config", "sockets", "processes_num", "should_exit", "processes"):
        assert re.search(rf"\bself\.{name}(?::[^=\n]+)? = ", init), (
            f"Multiprocess no longer sets self.{name}"
        )


@pytest.mark.parametrize("name", list(PROCESS_METHODS))
def test_worker_process_methods_we_call(name: str) -> None:
    method = getattr(multiprocess.Process, name, None)
    assert callable(method), f"uvicorn's supervisors.multiprocess.Process.{name} is gone"
    assert list(inspect.signature(method).parameters) == PROCESS_METHODS[name], (
        f"uvicorn's Process.{name}{inspect.signature(method)} changed: revisit SocketPerWorker"
    )
    for attribute in ("pid", "exitcode"):
        assert isinstance(inspect.getattr_static(multiprocess.Process, attribute), property)


def test_startup_failure_exit_code() -> None:
    assert isinstance(uvicorn_config.STARTUP_FAILURE, int), "uvicorn.config.STARTUP_FAILURE is gone"


# --- prometheus_client's value class (mlserve_common/runtime/metrics_export.py) -----------------------


def test_metrics_build_their_values_from_the_module_attribute_we_replace() -> None:
    assert hasattr(prometheus_values, "ValueClass"), "prometheus_client.values.ValueClass is gone"
    for metric in (
        prometheus_metrics.Counter,
        prometheus_metrics.Gauge,
        prometheus_metrics.Histogram,
    ):
        source = inspect.getsource(metric)
        assert "values.ValueClass(" in source, (
            f"prometheus_client's {metric.__name__} no longer reads values.ValueClass at "
            "construction: replacing it (metrics_export.py) would do nothing"
        )


def test_multiprocess_value_takes_the_pid_function() -> None:
    parameters = list(inspect.signature(prometheus_values.MultiProcessValue).parameters)
    assert parameters == ["process_identifier"], (
        f"prometheus_client.values.MultiProcessValue{inspect.signature(prometheus_values.MultiProcessValue)} "
        "changed: revisit metrics_export.py"
    )
    assert prometheus_client.values is prometheus_values
