"""`mlserve predict`: send every file, one result per file, failures included."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mlserve_cli.client import MLServeClient, RequestError, UnreachableError


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: the gateway's prediction, or why it failed."""

    file: str
    prediction: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        if self.prediction is None:
            return {"file": self.file, "ok": False, "error": self.error}
        keys = ("label", "confidence", "cached", "model", "version", "probabilities")
        return {
            "file": self.file,
            "ok": True,
            **{key: self.prediction.get(key) for key in keys},
            "latency_ms": round(self.latency_ms, 2),
        }


def predict_files(
    client: MLServeClient, files: list[Path], stderr: Console, model: str | None = None
) -> list[FileResult]:
    """Results in the order of `files`; stops early only when the gateway is unreachable."""
    results: list[FileResult] = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=len(files) < 2,
    )
    with progress:
        task = progress.add_task("predicting", total=len(files))
        for path in files:
            results.append(_predict_one(client, path, model))
            progress.advance(task)
    return results


def _predict_one(client: MLServeClient, path: Path, model: str | None) -> FileResult:
    started = time.perf_counter()
    try:
        prediction = client.predict(path, model)
    except UnreachableError:
        raise
    except RequestError as problem:
        return FileResult(str(path), error=str(problem))
    return FileResult(str(path), prediction, latency_ms=(time.perf_counter() - started) * 1000)
