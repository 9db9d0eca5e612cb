"""Closed-loop HTTP load: N keep-alive clients spread over a few processes, each posting
unique PNGs as fast as answers come back. Standard library, numpy and Pillow only, so that
it runs on a host without a package index (scripts/gpu/check.py); a few processes of the
raw client outrun one model_api."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import multiprocessing as mp
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.load.client import ERRORS, REQUEST_TIMEOUT_S, Connection

TIMING_FIELDS = ("decode_ms", "preprocess_ms", "inference_ms", "total_ms")


@dataclass(frozen=True)
class LoadPlan:
    url: str
    clients: int
    processes: int
    warmup_s: float
    duration_s: float
    images: int
    seed: int
    server_pid: int | None = None
    """Whose process tree's CPU use to measure over the window."""


def process_tree_cpu_s(root_pid: int) -> tuple[int, float]:
    """Processes in the tree under `root_pid` (itself included) and their CPU seconds."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            children.setdefault(int(fields[1]), []).append(pid)
            times[pid] = (int(fields[11]) + int(fields[12])) / tick
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return len(tree), sum(times.get(pid, 0.0) for pid in tree)


async def server_cpu(plan: LoadPlan, start: float, into: dict) -> None:
    """The server's processes and the cores they used over the measured window."""
    await asyncio.sleep(plan.warmup_s)
    _, before = process_tree_cpu_s(plan.server_pid)
    await asyncio.sleep(start + plan.warmup_s + plan.duration_s - time.monotonic())
    into["server_processes"], after = process_tree_cpu_s(plan.server_pid)
    into["server_cpu_cores"] = round((after - before) / plan.duration_s, 2)


def make_pngs(first: int, count: int, seed: int) -> list[bytes]:
    """64×64 grey PNGs, unique by construction (each shows its index as text) with random
    strokes, so that the mnist pipeline has something to crop and centre."""
    rng = np.random.default_rng((seed, first))
    font = ImageFont.load_default()
    ends = rng.integers(4, 60, size=(count, 3, 4)).tolist()
    shades = rng.integers(128, 256, size=(count, 3)).tolist()
    widths = rng.integers(2, 6, size=(count, 3)).tolist()
    pngs = []
    for i in range(count):
        image = Image.new("L", (64, 64), 0)
        draw = ImageDraw.Draw(image)
        for line, shade, width in zip(ends[i], shades[i], widths[i], strict=True):
            draw.line(tuple(line), fill=shade, width=width)
        draw.text((2, 50), str(first + i), fill=255, font=font)
        out = io.BytesIO()
        image.save(out, format="PNG")
        pngs.append(out.getvalue())
    return pngs


class ClientStats:
    """What one process saw inside the measured window; it goes back to `run_load` whole."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors: list[str] = []
        self.cached = 0
        self.warmup_failures = 0
        self.sent = 0
        self.late = 0  # answers that came after the window closed (not measured)
        self.slowest_ms = 0.0  # of every answer, warm-up and late ones included
        self.timings = dict.fromkeys(TIMING_FIELDS, 0.0)
        self.images_reused = 0
        self.cpu_share = 0.0  # of one core, over the whole run
        self.server: dict = {}  # rank 0: the server's processes and CPU use (server_cpu)

    def record(self, status: int, body: bytes, latency_ms: float) -> None:
        self.latencies_ms.append(latency_ms)
        try:
            answer = json.loads(body) if status == 200 else None
        except ValueError:
            status, answer = -1, None  # a 200 without a JSON body counts as an error
        self.statuses[str(status)] += 1
        if answer is None:
            self.error(f"HTTP {status}: {body[:200]!r}")
            return
        self.cached += bool(answer.get("cached"))
        for field in TIMING_FIELDS:
            self.timings[field] += answer.get("timings", {}).get(field, 0.0)

    def error(self, what: str) -> None:
        if len(self.errors) < 5:
            self.errors.append(what)


async def one_client(
    plan: LoadPlan, images: list[bytes], offset: int, step: int, start: float, stats: ClientStats
) -> None:
    """Post images[offset], images[offset + step]… until the window ends; what was sent
    inside the window (after the warm-up) is measured."""
    measure_from, stop_at = start + plan.warmup_s, start + plan.warmup_s + plan.duration_s
    connection = Connection(plan.url, "image/png")
    index = offset
    while time.monotonic() < stop_at:
        body = images[index % len(images)]
        index += step
        sent = time.monotonic()
        stats.sent += 1
        try:
            status, answer = await connection.post(body)
        except ERRORS as exc:
            if sent < measure_from:
                stats.warmup_failures += 1
            else:
                stats.statuses["error"] += 1
            stats.error(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.05)
            continue
        done = time.monotonic()
        if done > stop_at:
            stats.late += 1
        stats.slowest_ms = max(stats.slowest_ms, (done - sent) * 1000)
        if measure_from <= sent:
            stats.record(status, answer, (done - sent) * 1000)
        elif status != 200:
            stats.warmup_failures += 1
            stats.error(f"HTTP {status} in the warm-up: {answer[:200]!r}")
    connection.close()


def client_process(plan: LoadPlan, rank: int, barrier, results) -> None:  # noqa: ANN001
    """One load process: make its share of the images, wait for the others, then load."""
    share = -(-plan.images // plan.processes)
    images = make_pngs(rank * share, share, plan.seed)
    clients = plan.clients // plan.processes + (rank < plan.clients % plan.processes)
    barrier.wait()
    start, cpu_start = time.monotonic(), time.process_time()
    stats = ClientStats()

    async def main() -> None:
        tasks = [one_client(plan, images, i, clients, start, stats) for i in range(clients)]
        if rank == 0 and plan.server_pid:
            tasks.append(server_cpu(plan, start, stats.server))
        await asyncio.gather(*tasks)

    asyncio.run(main())
    wall, cpu = time.monotonic() - start, time.process_time() - cpu_start
    stats.cpu_share = cpu / wall if wall else 0.0
    stats.images_reused = max(0, stats.sent - len(images))
    results.put(stats)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run_load(plan: LoadPlan) -> dict:
    """Run the plan; requests/s, latency percentiles, errors and the clients' own CPU use."""
    context = mp.get_context("spawn")  # the parent may hold CUDA state and ORT threads
    barrier = context.Barrier(plan.processes)
    results = context.Queue()
    workers = [
        context.Process(target=client_process, args=(plan, rank, barrier, results), daemon=True)
        for rank in range(plan.processes)
    ]
    for worker in workers:
        worker.start()
    # each process first makes its images (a few seconds), then loads for warm-up + duration
    wait_s = 60 + plan.warmup_s + plan.duration_s + REQUEST_TIMEOUT_S
    parts: list[ClientStats] = [results.get(timeout=wait_s) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    latencies = sorted(v for part in parts for v in part.latencies_ms)
    statuses: Counter[str] = Counter()
    for part in parts:
        statuses.update(part.statuses)
    ok = statuses.get("200", 0)
    timings = {
        field: round(sum(p.timings[field] for p in parts) / ok, 3) if ok else None
        for field in TIMING_FIELDS
    }
    return {
        "clients": plan.clients,
        "client_processes": plan.processes,
        "warmup_s": plan.warmup_s,
        "duration_s": plan.duration_s,
        "requests": len(latencies),
        "ok": ok,
        "errors": sum(statuses.values()) - ok,
        "warmup_failures": sum(part.warmup_failures for part in parts),
        "late_answers": sum(part.late for part in parts),
        "slowest_ms": round(max(part.slowest_ms for part in parts), 1),
        "statuses": dict(statuses),
        "error_samples": [e for part in parts for e in part.errors][:5],
        "cached_answers": sum(part.cached for part in parts),
        "images_reused": sum(part.images_reused for part in parts),
        "requests_per_s": round(ok / plan.duration_s, 1),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 2),
            "p90": round(percentile(latencies, 0.90), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "max": round(latencies[-1], 2) if latencies else None,
            "mean": round(statistics.fmean(latencies), 2) if latencies else None,
        },
        "server_timings_mean_ms": timings,
        "client_cpu_share_max": round(max(part.cpu_share for part in parts), 2),
        **next((part.server for part in parts if part.server), {}),
    }
