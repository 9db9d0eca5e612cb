"""What the photographed-paper steps (model_api/paper.py, issue 31) cost per image.

    PYTHONPATH=. .venv/bin/python -m bench.paper_steps                # ~20 s
    PYTHONPATH=. .venv/bin/python -m bench.paper_steps --runs 50 --save /tmp/paper

Each step is timed on its own (best and median of `--runs` calls, after a warm-up) on: a synthetic
600x450 phone photo of a digit on ruled paper (the table at the edges, a light gradient and a
shadow band, blur, noise, specks, JPEG), each step given what the steps before it in the
suggested order made of it; the same photo on squared paper; a clean 200x200 drawn digit (dark
on white); and a clean 28x28 digit (light on black, as MNIST). Then the whole mnist pipeline
as shipped (with the four steps) and less them. `--save DIR` writes
the photo after each step as PNG, to look at.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from harness.images import MODELS_DIR, drawn_digit_seven
from harness.model_copies import without_paper_steps
from model_api import paper, preprocess
from model_api.model_config import (
    DropSurroundingsStep,
    EvenLightStep,
    KeepDigitStep,
    RemoveRulesStep,
    load_model_config,
)

STEPS = [
    ("even_light", paper.even_light, EvenLightStep(op="even_light")),
    ("drop_surroundings", paper.drop_surroundings, DropSurroundingsStep(op="drop_surroundings")),
    ("remove_rules", paper.remove_rules, RemoveRulesStep(op="remove_rules")),
    ("keep_digit", paper.keep_digit, KeepDigitStep(op="keep_digit")),
]
"""The four steps, in the suggested order, with their default parameters."""

FOUR = [[(290, 110), (190, 280), (350, 280)], [(305, 170), (300, 370)]]
"""A '4' in 600x450 coordinates, two strokes: down-left and across, then the long one."""


def synthetic_photo(
    width: int = 600, height: int = 450, squared: bool = False, seed: int = 0
) -> np.ndarray:
    """A phone photo (L, uint8) of a '4' in ballpoint ink on ruled (or squared) paper."""
    rng = np.random.default_rng(seed)
    sx, sy = width / 600, height / 450
    table = 95 + rng.normal(0, 6, (height, width))
    sheet = np.array([[40, 30], [575, 18], [590, 440], [25, 450]], np.float64) * (sx, sy)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, sheet.round().astype(np.int32), 1)
    page = np.full((height, width), 232.0)
    spacing = (22 if squared else 30) * sy
    tilt = np.tan(np.radians(1.2))
    for y in np.arange(60 * sy, height, spacing):
        y0, y1 = y, y + tilt * width
        cv2.line(page, (0, round(y0)), (width, round(y1)), 170.0, max(1, round(2 * sy)))
    if squared:
        for x in np.arange(40 * sx, width, spacing):
            cv2.line(page, (round(x), 0), (round(x - tilt * height), height), 170.0, 2)
    else:
        cv2.line(page, (round(90 * sx), 0), (round(86 * sx), height), 140.0, 2)  # the margin
    strokes = [(np.array(line) * (sx, sy)).round().astype(np.int32) for line in FOUR]
    cv2.polylines(page, strokes, False, 55.0, max(2, round(5 * sy)))
    for x, y in rng.uniform((60, 40), (540, 410), (12, 2)) * (sx, sy):
        cv2.circle(page, (round(x), round(y)), 1, 90.0, -1)  # specks of dust
    cv2.line(page, (round(420 * sx), round(380 * sy)), (round(470 * sx), round(381 * sy)), 80.0, 2)
    photo = np.where(mask == 1, page, table)
    # Light falling off across the page, and a soft shadow band.
    xs, ys = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    light = 1.0 - 0.3 * xs * ys
    band = np.abs((xs - 0.25) + 0.5 * (ys - 0.5)) < 0.08
    shadow = cv2.GaussianBlur(band.astype(np.float64), (0, 0), 12 * sx)
    photo = photo * light * (1 - 0.3 * shadow)
    photo = cv2.GaussianBlur(photo, (0, 0), 0.8) + rng.normal(0, 3, photo.shape)
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)


def clean_28() -> np.ndarray:
    """A light '7' on black, 28x28, as MNIST writes digits."""
    return 255 - np.asarray(drawn_digit_seven(28, "L"))


def clean_200() -> np.ndarray:
    """A dark '7' on white paper, 200x200, as a canvas drawing or a clean scan."""
    return np.asarray(drawn_digit_seven(200, "L"))


def cost_us(call: Callable[[], object], runs: int) -> tuple[float, float]:
    """(best, median) wall time of `call()` in microseconds over `runs` calls, after 3
    warm-ups. The best is the figure to compare on a shared machine: others' load only adds."""
    for _ in range(3):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times) * 1e6, statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--save", type=Path, help="write the photo after each step here")
    args = parser.parse_args()
    images = {
        "photo 600x450, ruled": synthetic_photo(),
        "photo 600x450, squared": synthetic_photo(squared=True),
        "clean 200x200": clean_200(),
        "clean 28x28": clean_28(),
    }
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; {args.runs} runs each\n")
    print(f"{'image':24} {'step':18} {'best us':>8} {'median':>8}  changed")
    for name, image in images.items():
        pixels = image
        for op, function, step in STEPS:
            out = function(pixels, step)
            best, median = cost_us(lambda f=function, p=pixels, s=step: f(p, s), args.runs)
            changed = "no" if out is pixels else "yes"
            print(f"{name:24} {op:18} {best:8.0f} {median:8.0f}  {changed}")
            pixels = out
            if args.save and name.startswith("photo"):
                args.save.mkdir(parents=True, exist_ok=True)
                stem = name.split(", ")[1]
                Image.fromarray(image).save(args.save / f"{stem}_0_photo.png")
                Image.fromarray(out).save(args.save / f"{stem}_{op}.png")
    print(f"\n{'image':24} {'mnist pipeline':18} {'best us':>8} {'median':>8}")
    mnist = load_model_config(MODELS_DIR, "mnist")
    both = {"less the paper steps": without_paper_steps(mnist), "as shipped": mnist}
    for name, image in images.items():
        pil = Image.fromarray(image)
        for label, config in both.items():
            best, median = cost_us(lambda c=config, i=pil: preprocess.preprocess(i, c), args.runs)
            print(f"{name:24} {label:18} {best:8.0f} {median:8.0f}")


if __name__ == "__main__":
    main()
