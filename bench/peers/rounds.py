"""The measuring loop: rounds of every target, order rotated each round, one server up at a time.

Each target is started fresh in each round, warmed up, measured, its process memory
recorded, and stopped before the next one starts, so no idle server shares the two cores
with the one under load. An MLServe start gets a new run directory, so a new, empty Redis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.load.grpc_loop import run_grpc
from bench.load.wrk import LoadError, Slice, SliceAllocator, run_wrk
from bench.peers.machine import steal_seconds
from bench.peers.pack import Pack
from bench.peers.processes import StartError, cpu_seconds
from bench.peers.targets import Measurement, Server, Target

CYCLE_IMAGES = 20_000
"""The pack's first PNGs, sent in a loop to servers without a cache (repeats are harmless)."""


@dataclass(frozen=True)
class Settings:
    rounds: int
    duration: int
    warmup: int
    concurrency: int
    wrk_threads: int


def images_needed(chosen: list[tuple[Target, list[Measurement]]], s: Settings) -> dict[str, int]:
    """PNGs each pack must hold so that no `unique` image is ever sent twice in this run."""
    need = {"mnist": CYCLE_IMAGES, "leukemia": 0}
    for _, measurements in chosen:
        for m in measurements:
            if m.images == "unique":
                need[m.pack] += s.rounds * m.cap * (s.warmup + s.duration + 2)
            elif m.images == "same":
                need[m.pack] += s.rounds
    return need


def _rotate(items: list, by: int) -> list:
    by %= max(1, len(items))
    return items[by:] + items[:by]


class Runner:
    def __init__(self, packs: dict[str, Pack], settings: Settings, work: Path) -> None:
        self.settings, self.work = settings, work
        self.packs = packs
        self.allocators = {
            kind: SliceAllocator(pack, CYCLE_IMAGES if kind == "mnist" else 0)
            for kind, pack in packs.items()
        }
        self.records: list[dict] = []
        self.memory: list[dict] = []
        self.errors: list[dict] = []

    def _slices(self, m: Measurement) -> tuple[Slice, Slice]:
        """(warm-up slice, measured slice) for a measurement."""
        s = self.settings
        if m.images == "cycle":
            pack = self.packs[m.pack]
            loop = Slice(pack, 0, min(CYCLE_IMAGES, pack.count))
            return loop, loop
        allocator = self.allocators[m.pack]
        if m.images == "same":
            one = allocator.take(1)
            return one, one
        return allocator.take(m.cap * (s.warmup + 1)), allocator.take(m.cap * (s.duration + 1))

    def measure(self, server: Server, target: Target, m: Measurement, round_no: int) -> None:
        s = self.settings
        clients = m.clients or s.concurrency
        url = server.base_url(m.service) + m.path
        warm, measured = self._slices(m)

        def load(images: Slice, seconds: int) -> dict:
            if m.body == "grpc":  # the gRPC front end: `path` names the model
                return run_grpc(server.base_url("grpc"), m.path, images, clients, seconds)
            return run_wrk(url, images, clients, seconds, s.wrk_threads, m.body)

        warmup = load(warm, s.warmup)
        pids = [p["pid"] for group in server.memory().values() for p in group]
        before, stolen = cpu_seconds(pids), steal_seconds()
        figures = load(measured, s.duration)
        after, stolen = cpu_seconds(pids), steal_seconds() - stolen
        repeated = m.images == "unique" and warmup["wrapped"] + figures["wrapped"] > 0
        record = {
            "round": round_no,
            "target": target.name,
            "measurement": m.name,
            "family": target.family,
            "clients": clients,
            "images": m.images,
            **{k: v for k, v in figures.items() if k != "raw"},
            "warmup_rps": warmup["rps"],
            "warmup_failures": warmup["failures"],
            "repeated_images": repeated,
            # Per server process: shows when one of two workers got most of the connections.
            "server_cpu_s": {pid: round(after[pid] - before[pid], 2) for pid in after},
            # CPU the hypervisor took for other machines meanwhile (of cores x duration).
            "steal_s": round(stolen, 2),
        }
        self.records.append(record)
        note = "  IMAGES REPEATED (raise the cap)" if repeated else ""
        if stolen >= 0.5:
            note += f"  ({stolen:.1f} s of CPU stolen by the hypervisor)"
        print(
            f"    {m.name:<20} {clients:>3} clients  {record['rps']:>8.1f} req/s  "
            f"p50 {record['p50_ms']:>7.2f} ms  p99 {record['p99_ms']:>8.2f} ms  "
            f"failures {record['failures']}  (wrk {record['wrk_cpu']:.2f} cores){note}",
            flush=True,
        )

    def run(self, chosen: list[tuple[Target, list[Measurement]]]) -> None:
        for index in range(self.settings.rounds):
            round_no = index + 1
            print(f"round {round_no}/{self.settings.rounds}", flush=True)
            for target, measurements in _rotate(chosen, index):
                self._run_target(target, _rotate(measurements, index), round_no)

    def _run_target(self, target: Target, measurements: list[Measurement], round_no: int) -> None:
        where = self.work / "runs" / f"{target.name}-r{round_no}"
        server = target.make(self.work, where)
        print(f"  {target.name}: starting ({target.config})", flush=True)
        began = time.monotonic()
        try:
            server.start()
        except StartError as exc:
            self._fail(target, round_no, f"start failed: {exc}")
            return
        print(f"    up in {time.monotonic() - began:.1f} s", flush=True)
        try:
            for m in measurements:
                try:
                    self.measure(server, target, m, round_no)
                except LoadError as exc:
                    self._fail(target, round_no, f"{m.name}: {exc}")
            self.memory.append(
                {"round": round_no, "target": target.name, "processes": server.memory()}
            )
        finally:
            began = time.monotonic()
            server.stop()
            print(f"    stopped in {time.monotonic() - began:.1f} s", flush=True)

    def _fail(self, target: Target, round_no: int, message: str) -> None:
        print(f"  ERROR {target.name} round {round_no}: {message}", flush=True)
        self.errors.append({"round": round_no, "target": target.name, "error": message})
