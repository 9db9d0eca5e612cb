"""What the three container checks (`python tests/check_<service>.py`) share: the failure
a person reads, one printed line per check, and a GET/POST that says plainly when nothing
answers. Standard library only: db_api's image carries this module and no other."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CheckFailed(Exception):
    """A check that did not pass; the message tells a person what is wrong."""


class Report:
    """Prints `ok: ...` or `FAIL: ...`, one line per check, and counts the failures."""

    def __init__(self) -> None:
        self.failures = 0

    def ok(self, text: str) -> None:
        print(f"ok: {text}", flush=True)

    def fail(self, reason: Exception) -> None:
        print(f"FAIL: {reason}", flush=True)
        self.failures += 1

    def run(self, check: Callable[..., str], *arguments: object) -> bool:
        """Run one check and print its line; whether it passed."""
        try:
            self.ok(check(*arguments))
            return True
        except CheckFailed as reason:
            self.fail(reason)
            return False

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def cache_state(cache: str, who: str) -> str:
    """The cache's state as `who` reports it: ok or disabled pass, degraded (Redis does not
    answer: every request is computed again) fails with where to look."""
    if cache == "degraded":
        raise CheckFailed(
            f"{who} is degraded: model_api cannot reach Redis, so nothing is cached and every "
            "request is computed again; check db_api "
            "(docker exec db_api python tests/check_db_api.py)"
        )
    if cache not in ("ok", "disabled"):
        raise CheckFailed(f"{who} is {cache!r}")
    return f"{who} is {cache}"


def fetch(
    url: str,
    timeout: float,
    who: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    not_running_hint: str = "",
) -> tuple[int, bytes]:
    """(status, body) of a GET, or of a POST when `body` is given; `who` should answer.
    Nothing answering, or no answer in time, is a `CheckFailed` that says so."""
    request = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise CheckFailed(
                f"{who} at {url} did not answer within {timeout:g} s: it is overloaded or stuck"
            ) from exc
        raise CheckFailed(
            f"nothing answers at {url} ({reason}): {who} is not running there{not_running_hint}"
        ) from exc


def as_json(raw: bytes) -> dict:
    """A JSON object's fields ({} for anything else)."""
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def settings_of(service: str, read: Callable[[], T]) -> T:
    """The service's settings; invalid ones are the first failure (printed, exit 1)."""
    try:
        return read()
    except ValueError as exc:
        print(f"FAIL: {service}'s settings are invalid: {exc}", flush=True)
        sys.exit(1)


def check_parser(doc: str, service: str, port: int) -> argparse.ArgumentParser:
    """The options every check takes: `--url` (default: the service on this machine or in
    this container) and `--timeout`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument(
        "--url",
        type=_http_url,
        default=f"http://127.0.0.1:{port}",
        help=f"{service}'s base URL (default: %(default)s, its port in this environment)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request")
    return parser


def _http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"must be an http(s) URL, not {text!r}")
    return text.rstrip("/")
