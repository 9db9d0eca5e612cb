"""`mlserve predict`: one result per file, failures included.

Each file is asked for by content first: its SHA-256 goes to the gateway, which answers
with the prediction it keeps for those exact bytes, or 404 `not_cached` (or 503
`cache_unavailable`), and only then is the file uploaded. A folder sent again costs a hash
and a small GET per file, and the model never runs. `ask=False` uploads every file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mlserve_cli.client import (
    MLServeClient,
    RequestError,
    UnreachableError,
    image_sha256,
    read_image_file,
)

ANSWER_KEYS = (
    "label",
    "confidence",
    "cached",
    "model",
    "version",
    "digest",
    "sha256",
    "probabilities",
)
"""What --json keeps of an answer, per file."""


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: the gateway's prediction, or why it failed, and whether
    the file itself was sent (`uploaded`) or the answer came by its content alone."""

    file: str
    prediction: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float = 0.0
    uploaded: bool = False
    trace_id: str | None = None
    """The trace its calls went in (`--trace`)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def by_content(self) -> bool:
        """Answered without sending the file."""
        return self.ok and not self.uploaded

    def as_json(self) -> dict[str, Any]:
        traced = {} if self.trace_id is None else {"trace_id": self.trace_id}
        if self.prediction is None:
            failed = {"file": self.file, "ok": False, "uploaded": self.uploaded}
            return {**failed, "error": self.error, **traced}
        return {
            "file": self.file,
            "ok": True,
            "uploaded": self.uploaded,
            **{key: self.prediction.get(key) for key in ANSWER_KEYS},
            "latency_ms": round(self.latency_ms, 2),
            **traced,
        }


class ModelToAsk:
    """The model named in the question by content: `--model`, else the stack's own, which
    its `/health` names; asked once per run, and only when a file needs it."""

    def __init__(self, client: MLServeClient, model: str | None) -> None:
        self.client = client
        self.model = model
        self._looked_up = model is not None

    def __call__(self) -> str | None:
        """None when the stack does not say (the files are then uploaded to `/predict`)."""
        if not self._looked_up:
            self._looked_up = True
            try:
                self.model = self.client.default_model()
            except UnreachableError:
                raise
            except RequestError:
                self.model = None
        return self.model


def predict_files(
    client: MLServeClient,
    files: list[Path],
    stderr: Console,
    model: str | None = None,
    ask: bool = True,
) -> list[FileResult]:
    """Results in the order of `files`; stops early only when the gateway is unreachable.
    With `ask`, each file is asked for by content before it is uploaded."""
    to_ask = ModelToAsk(client, model) if ask else None
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
            results.append(_predict_one(client, path, model, to_ask))
            progress.advance(task)
    return results


def _predict_one(
    client: MLServeClient, path: Path, model: str | None, to_ask: ModelToAsk | None
) -> FileResult:
    started = time.perf_counter()
    uploaded = False
    trace_id = client.new_trace()
    try:
        image = read_image_file(path)
        if not image:
            raise RequestError("the file is empty", code="empty_request")
        sha256 = image_sha256(image)
        asked_model = to_ask() if to_ask is not None else None
        prediction = client.stored(asked_model, sha256) if asked_model else None
        if prediction is None:
            uploaded = True
            prediction = client.predict_bytes(image, model)
        _check_receipt(prediction, sha256)
    except UnreachableError:
        raise
    except RequestError as problem:
        return FileResult(str(path), error=str(problem), uploaded=uploaded, trace_id=trace_id)
    latency_ms = (time.perf_counter() - started) * 1000
    return FileResult(
        str(path), prediction, latency_ms=latency_ms, uploaded=uploaded, trace_id=trace_id
    )


def _check_receipt(prediction: dict[str, Any], sha256: str) -> None:
    """An answer names the image it answers (`sha256`): it must be this file's."""
    receipt = prediction.get("sha256")
    if receipt is not None and receipt != sha256:
        raise RequestError(
            f"the answer is for another image (sha256 {str(receipt)[:12]}, "
            f"this file's is {sha256[:12]})"
        )
