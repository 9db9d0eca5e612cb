"""Confusion matrices per source, and one small PNG that shows them side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CELL = 22
MARGIN = 30


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, k: int = 10) -> np.ndarray:
    """(k, k) counts: row = true label, column = predicted label."""
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def _panel(matrix: np.ndarray, title: str, font: ImageFont.ImageFont) -> Image.Image:
    k = len(matrix)
    side = MARGIN + k * CELL + 6
    panel = Image.new("RGB", (side, side + 18), "white")
    pen = ImageDraw.Draw(panel)
    pen.text((4, 2), title, fill="black", font=font)
    rows = np.maximum(matrix.sum(1, keepdims=True), 1)
    for t in range(k):
        pen.text((MARGIN - 14, 18 + MARGIN + t * CELL + 5), str(t), fill="black", font=font)
        pen.text((MARGIN + t * CELL + 8, 18 + MARGIN - 16), str(t), fill="black", font=font)
        for p in range(k):
            share = matrix[t, p] / rows[t, 0]
            diagonal = t == p
            shade = (
                (int(255 - 150 * share), int(255 - 60 * share), int(255 - 150 * share))
                if diagonal
                else (
                    255,
                    int(255 - 255 * min(1.0, 8 * share)),
                    int(255 - 255 * min(1.0, 8 * share)),
                )
            )
            x, y = MARGIN + p * CELL, 18 + MARGIN + t * CELL
            pen.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=shade, outline=(220, 220, 220))
            if matrix[t, p] and not diagonal:
                pen.text((x + 3, y + 5), str(matrix[t, p]), fill="black", font=font)
    return panel


def write_confusion_png(matrices: dict[str, np.ndarray], path: Path) -> None:
    """One panel per source (title -> matrix): rows are true digits, columns predictions."""
    font = ImageFont.load_default(11)
    panels = [_panel(matrix, title, font) for title, matrix in matrices.items()]
    sheet = Image.new("RGB", (sum(p.width for p in panels), panels[0].height + 16), "white")
    for i, panel in enumerate(panels):
        sheet.paste(panel, (i * panel.width, 0))
    ImageDraw.Draw(sheet).text(
        (4, sheet.height - 14),
        "rows: true digit, columns: predicted; off-diagonal numbers are mistakes",
        fill="black",
        font=font,
    )
    sheet.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(path, optimize=True)
