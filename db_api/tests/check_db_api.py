"""Is db_api (Redis) OK, and if not, what exactly is wrong? One line per check, exit 0 if all pass.

    docker exec db_api python tests/check_db_api.py
    cd db_api && ../.venv/bin/python tests/check_db_api.py

Checks that Redis refuses commands without the password, answers PING with it, does a
SET/GET/DEL round trip on a throw-away key, keeps an append-only file, and has a memory limit
with an eviction policy. The password comes from the environment, never the command line:
REDIS_PASSWORD (as db_api's entrypoint and the compose file pass it), else the one in
MLSERVE_REDIS_URL (model_api's setting), else, in a checkout, the local stack's saved one.

Only Python's standard library is used: the db_api image is Redis plus Debian's minimal
Python, so this speaks the few Redis commands it needs itself.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import urllib.parse
from pathlib import Path

IMAGE_PORT = 6379
"""Redis's port in the db_api image (redis.conf)."""
ROOT = Path(__file__).resolve().parents[2]
"""The repository root in a checkout; /opt/db_api in the image (tests/ links to
db_api/tests/ there), which holds mlserve_common's standard-library check helpers."""
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mlserve_common.stdlib_only.resp import command  # noqa: E402
from mlserve_common.stdlib_only.service_check import CheckFailed, Report  # noqa: E402


class RedisError(Exception):
    """An error reply from Redis (`-ERR ...`, `-NOAUTH ...`)."""


class RedisConnection:
    """One connection speaking just enough RESP for these checks."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.replies = self.sock.makefile("rb")

    def call(self, *parts: str) -> object:
        """Send one command; its reply (str, int, None or list), or RedisError."""
        self.sock.sendall(command(*parts))
        return self._reply()

    def _reply(self) -> object:
        line = self.replies.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("Redis closed the connection")
        kind, rest = line[:1], line[1:-2].decode(errors="replace")
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.replies.read(size + 2)[:-2].decode(errors="replace")
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._reply() for _ in range(size)]
        raise ConnectionError(f"not a Redis reply: {line[:40]!r}")

    def info(self, section: str) -> dict[str, str]:
        """One INFO section as a dict (CONFIG is disabled in db_api's redis.conf)."""
        text = str(self.call("INFO", section))
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
        return {key: value for key, value in pairs}

    def close(self) -> None:
        self.replies.close()
        self.sock.close()


def local_stack() -> tuple[int, str | None] | None:
    """The local-mode stack's Redis port and saved password, when run from a checkout."""
    if not (ROOT / "stackctl" / "settings.py").is_file():
        return None
    from stackctl.settings import StackSettings

    settings = StackSettings()
    saved = settings.run_dir / "redis_password"
    return settings.redis_port, saved.read_text().strip() if saved.is_file() else None


def find_password(local: tuple[int, str | None] | None) -> tuple[str | None, str]:
    """The password to try, and where it came from."""
    if os.environ.get("REDIS_PASSWORD"):
        return os.environ["REDIS_PASSWORD"], "REDIS_PASSWORD"
    from_url = urllib.parse.urlsplit(os.environ.get("MLSERVE_REDIS_URL", "")).password
    if from_url:
        return urllib.parse.unquote(from_url), "MLSERVE_REDIS_URL"
    if local and local[1]:
        return local[1], "the local stack's .run/redis_password"
    return None, "nowhere"


def connect(host: str, port: int, timeout: float) -> RedisConnection:
    """A connection to Redis, or a failure that says where nothing answered."""
    try:
        return RedisConnection(host, port, timeout)
    except OSError as exc:
        raise CheckFailed(
            f"cannot connect to Redis at {host}:{port} ({exc}): db_api is not running there "
            "(docker ps, ./check_health.sh) or --host/--port point elsewhere"
        ) from exc


def check_password_required(host: str, port: int, timeout: float) -> str:
    """PING on a fresh connection, without the password, must be refused."""
    redis = connect(host, port, timeout)
    try:
        redis.call("PING")
    except RedisError as exc:
        if "NOAUTH" in str(exc):
            return f"Redis at {host}:{port} refuses commands without the password"
        raise CheckFailed(f"Redis at {host}:{port} answered PING with an error: {exc}") from exc
    finally:
        redis.close()
    raise CheckFailed(
        f"Redis at {host}:{port} answers without a password: anyone who reaches it can read "
        "and change the cache; start it with requirepass (db_api's entrypoint sets it from "
        "REDIS_PASSWORD)"
    )


def authenticate(redis: RedisConnection, password: str | None, source: str) -> str:
    """AUTH with the password from the environment, then PING."""
    if password is None:
        raise CheckFailed("no password to try: set REDIS_PASSWORD to Redis's password")
    try:
        redis.call("AUTH", password)
    except RedisError as exc:
        raise CheckFailed(
            f"Redis refused the password from {source}: it is not the one Redis was started "
            f"with ({exc})"
        ) from exc
    return f"Redis answers {redis.call('PING')} with the password from {source}"


def check_round_trip(redis: RedisConnection) -> str:
    """SET, GET and DEL a throw-away key that expires on its own if DEL never comes."""
    key, value = f"mlserve:check:{os.urandom(8).hex()}", os.urandom(8).hex()
    try:
        redis.call("SET", key, value, "EX", "60")
        stored = redis.call("GET", key)
        deleted = redis.call("DEL", key)
    except RedisError as exc:
        raise CheckFailed(f"Redis refused a write ({exc}): the cache cannot store answers") from exc
    if stored != value or deleted != 1:
        raise CheckFailed(f"SET/GET/DEL on {key} read back {stored!r} and deleted {deleted}")
    return "SET/GET/DEL round trip on a throw-away key"


def check_persistence(redis: RedisConnection) -> str:
    """The append-only file is on, and its last write worked."""
    persistence = redis.info("persistence")
    if persistence.get("aof_enabled") != "1":
        raise CheckFailed(
            "persistence is off (appendonly no): cached predictions are lost when db_api "
            "restarts; db_api/redis.conf turns it on"
        )
    if persistence.get("aof_last_write_status", "ok") != "ok":
        raise CheckFailed(
            "the append-only file's last write failed: is the data volume full or read-only?"
        )
    return "persistence: append-only file on, last write ok"


def check_memory(redis: RedisConnection) -> str:
    """A memory limit and a policy that evicts old entries instead of refusing writes."""
    memory = redis.info("memory")
    used, policy = memory.get("used_memory_human"), memory.get("maxmemory_policy")
    if memory.get("maxmemory") == "0":
        raise CheckFailed(
            f"no maxmemory ({used} used): the cache grows until the container runs out of "
            "memory; db_api/redis.conf sets 256mb"
        )
    if policy == "noeviction":
        raise CheckFailed(
            "eviction policy noeviction: once maxmemory is reached every cache write fails"
        )
    return f"memory: {used} used of maxmemory {memory.get('maxmemory_human')}, eviction {policy}"


def run_checks(
    report: Report, host: str, port: int, timeout: float, password: tuple[str | None, str]
) -> None:
    """Every check, in order; those that need a session stop when Redis cannot be reached."""
    try:
        redis = connect(host, port, timeout)
    except CheckFailed as reason:
        report.fail(reason)
        return
    try:
        report.run(check_password_required, host, port, timeout)
        if report.run(authenticate, redis, *password):
            report.run(check_round_trip, redis)
            report.run(check_persistence, redis)
            report.run(check_memory, redis)
    except (OSError, RedisError) as exc:
        report.fail(CheckFailed(f"Redis stopped answering during the checks: {exc}"))
    finally:
        redis.close()


def main() -> int:
    local = local_stack()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="Redis's address (%(default)s)")
    parser.add_argument(
        "--port",
        type=int,
        default=local[0] if local else IMAGE_PORT,
        help="Redis's port (here: %(default)s; 6379 in the image, the local stack's port "
        "in a checkout)",
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per connection")
    args = parser.parse_args()
    report = Report()
    run_checks(report, args.host, args.port, args.timeout, find_password(local))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
