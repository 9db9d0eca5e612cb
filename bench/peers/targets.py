"""What the benchmark measures: each target is a server to start and the loads to put on it.

The peers' best configurations on this 2-core machine came from `--only` runs of the
variants below (`default=False`), see bench/README.md; the names without a suffix
(`litserve`, `bentoml`, `bentoml-batch`) are the winners and are what a default run measures.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.peers.mlserve_stack import MLServeStack, TracedStack
from bench.peers.processes import ROOT, ServerProcess, free_port

MNIST_CAP = 4000
"""req/s above what MLServe reaches on mnist here (~3x today): it sizes the pack slices of
never-repeated images. A run that outgrows a slice says "images repeated"; raise it then."""
LEUKEMIA_CAP = {64: 2000, 1: 1000}
"""The same bound for leukemia (~2x today), by client count."""

VENV = ROOT / ".venv" / "bin"
LITSERVE_VENV = ROOT / ".venv-litserve" / "bin"
BENTOML_VENV = ROOT / ".venv-bentoml" / "bin"


class Server(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def base_url(self, service: str) -> str: ...
    def memory(self) -> dict[str, list[dict]]: ...


@dataclass(frozen=True)
class Measurement:
    """One load on a started server."""

    name: str
    label: str
    images: str = "cycle"
    """`cycle` (any PNGs, repeats harmless: no cache), `unique` (never sent twice in a run),
    `same` (one PNG every time: cache hits once warm)."""
    pack: str = "mnist"
    service: str = "main"
    path: str = "/predict"
    clients: int | None = None
    """None: the run's --concurrency."""
    body: str = "multipart"
    """`multipart` (a file upload), `v2` (Open Inference Protocol, binary BYTES input) or
    `grpc` (the protocol over gRPC, `ModelInfer` of a BYTES input; `path` is the model)."""
    cap: int = MNIST_CAP


@dataclass(frozen=True)
class Target:
    name: str
    family: str
    config: str
    make: Callable[[Path, Path], Server]
    """(work dir, log/run dir for this start) -> a server, not started yet."""
    measurements: tuple[Measurement, ...]
    default: bool = True


class PeerServer:
    """A single-command server on a free port, with a health route."""

    def __init__(self, argv: list[str], env: dict[str, str], health: str, log: Path) -> None:
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        url = f"http://127.0.0.1:{self.port}{health}"
        self.process = ServerProcess(argv, env, log.with_suffix(".log"), url)

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def base_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory(self) -> dict[str, list[dict]]:
        return {"server": self.process.memory()}


def _uvicorn(app: str, workers: int) -> Callable[[Path, Path], Server]:
    argv = [str(VENV / "python"), "-m", "uvicorn", f"bench.peers.servers.fastapi_app:{app}"]
    argv += ["--host", "127.0.0.1", "--port", "{port}", "--workers", str(workers)]
    argv += ["--log-level", "warning", "--no-access-log"]
    env = {"BENCH_WORKERS": str(workers)}
    return lambda work, log: PeerServer(argv, env, "/health", log)


LITSERVE_CONFIGS = {
    "w1": ["--workers", "1"],
    "w2": ["--workers", "2"],
    "w2-api1": ["--workers", "2", "--api-servers", "1"],
    "w2-fq": ["--workers", "2", "--fast-queue"],
    "w2-b4": ["--workers", "2", "--batch", "4"],
    "w2-b8": ["--workers", "2", "--batch", "8"],
    "w2-b16": ["--workers", "2", "--batch", "16"],
}
LITSERVE_BEST = "w2"
"""2 inference workers (one per core) and their 2 API servers; batching (4-16, 2 ms) was a tie
at best with a 0.2 ms model whose cost is in the per-request decode, so it stays off."""

BENTOML_CONFIGS = {
    "w1": ("Mnist", {"BENCH_WORKERS": "1"}),
    "w2": ("Mnist", {"BENCH_WORKERS": "2"}),
    "batch-w1": ("MnistBatched", {"BENCH_WORKERS": "1"}),
    "batch-w2": ("MnistBatched", {"BENCH_WORKERS": "2"}),
    "batch-w2-b8": ("MnistBatched", {"BENCH_WORKERS": "2", "BENCH_MAX_BATCH": "8"}),
}
BENTOML_BEST, BENTOML_BATCH_BEST = "w2", "batch-w2"
"""A worker per core in both; batches of up to 32 (BentoML's adaptive wait) beat 8."""


def _litserve(flags: list[str]) -> Callable[[Path, Path], Server]:
    argv = [str(LITSERVE_VENV / "python"), "-m", "bench.peers.servers.litserve_app"]
    return lambda work, log: PeerServer([*argv, "--port", "{port}", *flags], {}, "/health", log)


def _bentoml(service: str, env: dict[str, str]) -> Callable[[Path, Path], Server]:
    argv = [str(BENTOML_VENV / "bentoml"), "serve"]
    argv += [f"bench.peers.servers.bentoml_service:{service}", "--host", "127.0.0.1"]
    argv += ["--port", "{port}"]
    env = {**env, "BENTOML_DO_NOT_TRACK": "True"}

    def make(work: Path, log: Path) -> Server:
        return PeerServer(argv, {**env, "BENTOML_HOME": str(work / "bentoml")}, "/readyz", log)

    return make


def _bentoml_config(name: str) -> str:
    service, env = BENTOML_CONFIGS[name]
    return " ".join([service, *(f"{k}={v}" for k, v in env.items())])


def _mlserve(model: str, batching: bool = True) -> Callable[[Path, Path], Server]:
    def make(work: Path, run_dir: Path) -> Server:
        models = None if batching else work / "models-nobatch"
        return MLServeStack(model, run_dir, models)

    return make


def _peer(name: str, family: str, config: str, make, default: bool = True) -> Target:
    return Target(name, family, config, make, (Measurement(name, name),), default)


def all_targets() -> list[Target]:
    """Every target, in the order of the first round."""
    targets = [
        _peer("fastapi-1w", "peer", "uvicorn, 1 worker", _uvicorn("app", 1)),
        _peer("fastapi-2w", "peer", "uvicorn --workers 2", _uvicorn("app", 2)),
        _peer("floor-1w", "floor", "uvicorn, 1 worker", _uvicorn("floor_app", 1)),
        _peer("floor-2w", "floor", "uvicorn --workers 2", _uvicorn("floor_app", 2)),
        _peer(
            "litserve",
            "peer",
            "litserve_app " + " ".join(LITSERVE_CONFIGS[LITSERVE_BEST]),
            _litserve(LITSERVE_CONFIGS[LITSERVE_BEST]),
        ),
        _peer(
            "bentoml",
            "peer",
            _bentoml_config(BENTOML_BEST),
            _bentoml(*BENTOML_CONFIGS[BENTOML_BEST]),
        ),
        _peer(
            "bentoml-batch",
            "peer",
            _bentoml_config(BENTOML_BATCH_BEST),
            _bentoml(*BENTOML_CONFIGS[BENTOML_BATCH_BEST]),
        ),
        Target(
            "mlserve",
            "mlserve",
            "./start_all.sh cli mnist (defaults)",
            _mlserve("mnist"),
            (
                Measurement("mlserve-unique", "MLServe full stack, unique images", "unique"),
                Measurement("mlserve-hits", "MLServe full stack, cache hits", "same"),
                Measurement(
                    "mlserve-v2-unique",
                    "MLServe full stack, V2 infer (binary BYTES), unique images",
                    "unique",
                    path="/v2/models/mnist/infer",
                    body="v2",
                ),
                Measurement(
                    "mlserve-grpc-unique",
                    "MLServe full stack, gRPC infer (BYTES), unique images",
                    "unique",
                    service="grpc",
                    path="mnist",
                    body="grpc",
                ),
                Measurement(
                    "mlserve-v2-hits",
                    "MLServe full stack, V2 infer (binary BYTES), cache hits",
                    "same",
                    path="/v2/models/mnist/infer",
                    body="v2",
                ),
                Measurement(
                    "model-api-unique",
                    "model_api direct, unique images",
                    "unique",
                    service="model_api",
                    path="/v1/models/mnist/predict?app_type=cli",
                ),
            ),
        ),
    ]
    targets.append(
        Target(
            "mlserve-traced",
            "mlserve",
            "./start_all.sh cli mnist, OpenTelemetry on (every trace, to an OTLP sink)",
            lambda work, run_dir: TracedStack("mnist", run_dir),
            (
                Measurement(
                    "mlserve-traced-unique", "MLServe full stack, traced, unique images", "unique"
                ),
                Measurement(
                    "mlserve-traced-hits", "MLServe full stack, traced, cache hits", "same"
                ),
            ),
            default=False,
        )
    )
    targets.append(
        Target(
            "mlserve-sampled",
            "mlserve",
            "./start_all.sh cli mnist, OpenTelemetry on (1 trace in 10, to an OTLP sink)",
            lambda work, run_dir: TracedStack("mnist", run_dir, ratio=0.1),
            (
                Measurement(
                    "mlserve-sampled-unique",
                    "MLServe full stack, 10 % of traces sampled, unique images",
                    "unique",
                ),
            ),
            default=False,
        )
    )
    for on, label in ((True, "on"), (False, "off")):
        measurements = tuple(
            Measurement(
                f"leukemia-{label}-{clients}",
                f"leukemia, batching {label}, {clients} client{'s' if clients > 1 else ''}",
                "unique",
                "leukemia",
                clients=clients,
                cap=LEUKEMIA_CAP[clients],
            )
            for clients in (64, 1)
        )
        config = "models/ as shipped" if on else 'models/ copy, leukemia without "batching"'
        targets.append(
            Target(f"leukemia-{label}", "mlserve", config, _mlserve("leukemia", on), measurements)
        )
    for name, flags in LITSERVE_CONFIGS.items():
        config = "litserve_app " + " ".join(flags)
        targets.append(_peer(f"litserve-{name}", "peer", config, _litserve(flags), False))
    for name, (service, env) in BENTOML_CONFIGS.items():
        targets.append(
            _peer(f"bentoml-{name}", "peer", _bentoml_config(name), _bentoml(service, env), False)
        )
    return targets


def select(targets: list[Target], only: list[str] | None) -> list[tuple[Target, list[Measurement]]]:
    """The targets to start and, for each, the measurements to run (all defaults if no --only)."""
    chosen = []
    for target in targets:
        if only is None:
            wanted = list(target.measurements) if target.default else []
        elif target.name in only:
            wanted = list(target.measurements)
        else:
            wanted = [m for m in target.measurements if m.name in only]
        if wanted:
            chosen.append((target, wanted))
    known = {t.name for t in targets} | {m.name for t in targets for m in t.measurements}
    unknown = sorted(set(only or ()) - known)
    if unknown:
        raise SystemExit(
            f"unknown --only name(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return chosen
