"""How results look: a rich table for people, or JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlserve_cli.predict import FileResult

DIGEST_CHARS = 12  # a short digest, like git's short hashes


def short_digest(digest: str | None) -> str:
    """The first characters of a model's digest: enough to tell models apart."""
    return (digest or "-")[:DIGEST_CHARS]


def print_json(console: Console, data: Any) -> None:
    """Plain JSON on stdout (no colours, no wrapping), whatever the terminal."""
    console.file.write(json.dumps(data, indent=2) + "\n")


def predictions_table(results: list[FileResult]) -> Table:
    table = Table(title="Predictions", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("label")
    table.add_column("confidence", justify="right")
    table.add_column("cached")
    table.add_column("via")
    table.add_column("latency", justify="right")
    table.add_column("error", overflow="fold", style="red")
    traced = any(result.trace_id for result in results)
    if traced:
        table.add_column("trace", no_wrap=True)
    for result in results:
        via = "upload" if result.uploaded else "content"
        trace = [result.trace_id or "-"] if traced else []
        if result.prediction is None:
            sent = via if result.uploaded else "-"
            failed = escape(result.error or "")
            table.add_row(escape(result.file), "-", "-", "-", sent, "-", failed, *trace)
            continue
        prediction = result.prediction
        table.add_row(
            escape(result.file),
            escape(str(prediction["label"])),
            f"{prediction['confidence']:.1%}",
            "yes" if prediction.get("cached") else "no",
            via,
            f"{result.latency_ms:.0f} ms",
            "",
            *trace,
        )
    return table


def summary(results: list[FileResult]) -> str:
    """`18 ok, 2 failed; 15 answered by content, 5 uploaded`: files answered without being
    sent, and files that were sent (a file that failed before it was sent is neither)."""
    failed = sum(not result.ok for result in results)
    by_content = sum(result.by_content for result in results)
    uploaded = sum(result.uploaded for result in results)
    return (
        f"{len(results) - failed} ok, {failed} failed; "
        f"{by_content} answered by content, {uploaded} uploaded"
    )


def models_table(models: list[dict[str, Any]]) -> Table:
    table = Table(title="Models", title_justify="left")
    for column in ("name", "versions", "state", "serving", "digest", "provider", "labels"):
        table.add_column(column, overflow="fold")
    for model in models:
        table.add_row(
            escape(model.get("name", "")),
            escape(", ".join(model.get("versions", [])) or "-"),
            escape(model.get("state", "")),
            escape(model.get("version") or "-"),
            escape(short_digest(model.get("digest"))),
            escape(model.get("provider") or "-"),
            escape(", ".join(model.get("labels") or []) or "-"),
        )
    return table


def health_table(status_code: int, body: dict[str, Any]) -> Table:
    table = Table(title="Health", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("state")
    table.add_row("status", escape(str(body.get("status", f"HTTP {status_code}"))))
    for key in ("model", "model_api", "cache", "version", "digest", "provider"):
        if body.get(key) is not None:
            value = str(body[key])
            table.add_row(key, escape(short_digest(value) if key == "digest" else value))
    return table
