"""Health probes over plain sockets and HTTP (stdlib only)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from mlserve_common.stdlib_only.resp import command


def http_json(url: str, timeout: float = 2.0) -> tuple[int, dict]:
    """(status, JSON body) of a GET; (0, {}) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (OSError, ValueError):
        return 0, {}
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    return status, body if isinstance(body, dict) else {}


def redis_ping(host: str, port: int, password: str, timeout: float = 2.0) -> bool:
    """True when Redis accepts the password and answers PING."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(command("AUTH", password) + command("PING"))
            received = b""
            while b"PONG" not in received and b"-" not in received:
                chunk = conn.recv(256)
                if not chunk:
                    break
                received += chunk
            return b"+PONG" in received
    except OSError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """True when something already accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
