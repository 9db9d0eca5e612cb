"""Drive one URL with wrk and bench/peers/wrk.lua for a fixed time; return its figures as a dict.

wrk runs with one thread by default: one LuaJIT thread drives well over 10k req/s here,
several times what any server on this machine answers, and every extra thread would
take CPU from the two cores the servers share with it. Its CPU use is measured and reported
(`wrk_cpu`, in cores) so the cost of the load generator stays visible.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.peers.pack import Pack

WRK_SCRIPT = Path(__file__).resolve().parents[1] / "peers" / "wrk.lua"
SOCKET_TIMEOUT_S = 10
SOCKET_ERRORS = ("connect_errors", "read_errors", "write_errors", "timeouts")


class LoadError(RuntimeError):
    """wrk failed or printed no figures."""


@dataclass(frozen=True)
class Slice:
    """PNGs first..first+count-1 of a pack: what one wrk run sends, in order, then again."""

    pack: Pack
    first: int
    count: int


class SliceAllocator:
    """Hands out disjoint slices of a pack, so no image is sent twice in one bench run."""

    def __init__(self, pack: Pack, start: int = 0) -> None:
        self.pack, self.next = pack, start

    def take(self, count: int) -> Slice:
        if self.next + count > self.pack.count:
            raise RuntimeError(f"the {self.pack.kind} pack is exhausted; this is a bug in sizing")
        piece = Slice(self.pack, self.next, count)
        self.next += count
        return piece


def wrk_version() -> str:
    path = shutil.which("wrk")
    if path is None:
        return "missing"
    output = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    return output.split(" [")[0].strip()


def run_generator(
    name: str,
    argv: list[str],
    tag: str,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[dict, float]:
    """Run a load generator in a process of its own: the JSON it prints on the line that
    starts with `tag`, and the cores it used meanwhile (its CPU time over the wall time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith(tag + " ")), None)
    if done.returncode != 0 or line is None:
        raise LoadError(f"{name} exited {done.returncode}: {(done.stdout + done.stderr)[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(line.removeprefix(tag + " ")), round(cpu / wall, 2)


def run_wrk(
    url: str,
    images: Slice,
    clients: int,
    seconds: int,
    threads: int = 1,
    body: str = "multipart",
) -> dict:
    """`clients` keep-alive connections post images back to back for `seconds`, each as a
    multipart upload or (`body="v2"`) an Open Inference Protocol binary request."""
    threads = max(1, min(threads, clients))
    env = {
        **os.environ,
        "BODY_FORMAT": body,
        "PACK_PATH": str(images.pack.path),
        "PACK_OFFSET": str(int(images.pack.offsets[images.first])),
        "PACK_COUNT": str(images.count),
        "WRK_THREADS": str(threads),
    }
    argv = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}s"]
    argv += ["--timeout", f"{SOCKET_TIMEOUT_S}s", "-s", str(WRK_SCRIPT), url]
    raw, cores = run_generator("wrk", argv, "WRK_JSON", seconds + 120, env=env)
    measured = raw["duration_us"] / 1e6
    ok = raw["responses"] - raw["non2xx"]
    socket_errors = sum(raw[k] for k in SOCKET_ERRORS)
    return {
        "rps": round(ok / measured, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "ok": ok,
        "failures": raw["non2xx"] + socket_errors,
        "non2xx": raw["non2xx"],
        "socket_errors": socket_errors,
        "seconds": round(measured, 3),
        "images_in_slice": images.count,
        "sent": raw["sent"],
        "wrapped": raw["wrapped"],
        "wrk_cpu": cores,
        "raw": raw,
    }
