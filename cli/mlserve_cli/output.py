"""How results look: a rich table for people, or JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlserve_cli.predict import FileResult


def print_json(console: Console, data: Any) -> None:
    """Plain JSON on stdout (no colours, no wrapping), whatever the terminal."""
    console.file.write(json.dumps(data, indent=2) + "\n")


def predictions_table(results: list[FileResult]) -> Table:
    table = Table(title="Predictions", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("label")
    table.add_column("confidence", justify="right")
    table.add_column("cached")
    table.add_column("latency", justify="right")
    table.add_column("error", overflow="fold", style="red")
    for result in results:
        if result.prediction is None:
            table.add_row(escape(result.file), "-", "-", "-", "-", escape(result.error or ""))
            continue
        prediction = result.prediction
        table.add_row(
            escape(result.file),
            escape(str(prediction["label"])),
            f"{prediction['confidence']:.1%}",
            "yes" if prediction.get("cached") else "no",
            f"{result.latency_ms:.0f} ms",
            "",
        )
    return table


def summary(results: list[FileResult]) -> str:
    failed = sum(not result.ok for result in results)
    return f"{len(results) - failed} ok, {failed} failed"


def models_table(models: list[dict[str, Any]]) -> Table:
    table = Table(title="Models", title_justify="left")
    for column in ("name", "versions", "state", "digest", "provider", "labels"):
        table.add_column(column, overflow="fold")
    for model in models:
        table.add_row(
            escape(model.get("name", "")),
            escape(", ".join(model.get("versions", [])) or "-"),
            escape(model.get("state", "")),
            escape((model.get("version") or "-")[:12]),
            escape(model.get("provider") or "-"),
            escape(", ".join(model.get("labels") or []) or "-"),
        )
    return table


def health_table(status_code: int, body: dict[str, Any]) -> Table:
    table = Table(title="Health", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("state")
    table.add_row("status", escape(str(body.get("status", f"HTTP {status_code}"))))
    for key in ("model", "model_api", "cache", "version", "provider"):
        if body.get(key) is not None:
            value = str(body[key])
            table.add_row(key, escape(value[:12] if key == "version" else value))
    return table
