"""Canvas-like digits: thick jittered polylines drawn with a round brush, as the UI's canvas does.

Each digit has a few skeletons in a unit box (y down), including the forms MNIST lacks: a `1`
with a flag and a foot, a `7` with a bar, an open `4`, a flat-topped `3`. A drawing jitters
the points, bends the whole digit (rotation up to 15 degrees, slant, width), places it on a
280-px canvas (the UI's size, varied a little) and strokes it with a round brush of 8-34 px.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from training.capture import encode_decode

Stroke = list[tuple[float, float]]
CANVAS_SIDE = 280
SUPERSAMPLE = 2


def arc(
    cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 24
) -> Stroke:
    """Points of an elliptic arc; angles in degrees, 0 = right, 90 = down."""
    t = np.radians(np.linspace(start, end, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t), strict=True))


def curve(p0: tuple, p1: tuple, p2: tuple, n: int = 16) -> Stroke:
    """Points of a quadratic Bezier curve from p0 to p2 pulled towards p1."""
    t = np.linspace(0, 1, n)[:, None]
    points = (1 - t) ** 2 * np.array(p0) + 2 * (1 - t) * t * np.array(p1) + t**2 * np.array(p2)
    return [tuple(p) for p in points]


def _eight() -> Stroke:
    t = np.linspace(0, 2 * np.pi, 48)
    return list(zip(0.5 + 0.3 * np.sin(2 * t) * 0.9, 0.5 - 0.45 * np.cos(t), strict=True))


SKELETONS: dict[int, list[list[Stroke]]] = {
    0: [[arc(0.5, 0.5, 0.3, 0.45, -90, 275)], [arc(0.5, 0.5, 0.22, 0.45, -100, 265)]],
    1: [
        [[(0.5, 0.05), (0.5, 0.95)]],
        [[(0.3, 0.28), (0.55, 0.05), (0.55, 0.95)]],
        [[(0.3, 0.28), (0.55, 0.05), (0.55, 0.95)], [(0.3, 0.95), (0.8, 0.95)]],
        [[(0.32, 0.3), (0.6, 0.05), (0.52, 0.95)]],
    ],
    2: [
        [[*arc(0.5, 0.3, 0.3, 0.25, -180, 30), (0.2, 0.95), (0.85, 0.95)]],
        [
            [
                *arc(0.5, 0.28, 0.3, 0.23, -160, 45),
                *curve((0.65, 0.5), (0.3, 0.75), (0.15, 0.95)),
                (0.85, 0.92),
            ]
        ],
    ],
    3: [
        [[*arc(0.5, 0.28, 0.28, 0.23, -160, 90), *arc(0.5, 0.72, 0.32, 0.23, -90, 160)]],
        [[(0.2, 0.05), (0.8, 0.05), (0.45, 0.4), *arc(0.5, 0.68, 0.32, 0.27, -90, 150)]],
    ],
    4: [
        [[(0.68, 0.95), (0.68, 0.05), (0.12, 0.65), (0.88, 0.65)]],
        [[(0.3, 0.05), (0.2, 0.6), (0.88, 0.6)], [(0.66, 0.3), (0.66, 0.95)]],
        [[(0.25, 0.05), (0.15, 0.55), (0.8, 0.55)], [(0.6, 0.05), (0.6, 0.95)]],
    ],
    5: [
        [[(0.8, 0.05), (0.3, 0.05), (0.25, 0.45), *arc(0.5, 0.68, 0.3, 0.27, -130, 150)]],
        [
            [(0.3, 0.05), (0.25, 0.45), *arc(0.5, 0.68, 0.3, 0.27, -130, 150)],
            [(0.3, 0.05), (0.8, 0.03)],
        ],
    ],
    6: [
        [[*curve((0.72, 0.05), (0.22, 0.2), (0.22, 0.7)), *arc(0.5, 0.7, 0.28, 0.25, 180, 540)]],
        [[(0.65, 0.05), (0.25, 0.65), *arc(0.5, 0.72, 0.26, 0.23, 200, 560)]],
    ],
    7: [
        [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)]],
        [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)], [(0.42, 0.5), (0.82, 0.5)]],
        [[(0.15, 0.17), (0.15, 0.05), (0.85, 0.05), (0.45, 0.95)]],
        [
            [(0.15, 0.05), (0.85, 0.05), *curve((0.8, 0.1), (0.5, 0.5), (0.5, 0.95))],
            [(0.45, 0.5), (0.8, 0.48)],
        ],
    ],
    8: [[arc(0.5, 0.27, 0.24, 0.22, 0, 360), arc(0.5, 0.72, 0.29, 0.23, 0, 360)], [_eight()]],
    9: [
        [arc(0.5, 0.3, 0.27, 0.24, 0, 360), [(0.77, 0.3), (0.72, 0.95)]],
        [[*arc(0.5, 0.3, 0.27, 0.24, -20, 345), *curve((0.77, 0.3), (0.75, 0.8), (0.4, 0.95))]],
        [[*arc(0.5, 0.3, 0.27, 0.24, 0, 360), (0.77, 0.3), (0.55, 0.95)]],
    ],
}


def _densify(points: np.ndarray, step: float) -> np.ndarray:
    """Points along the polyline no more than `step` apart (so the brush leaves no gaps)."""
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:], strict=True):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
        out.append(a + (b - a) * np.linspace(0, 1, n + 1)[1:, None])
    return np.concatenate(out)


def _smooth_jitter(
    n: int, rng: np.random.Generator, anchors: int = 4, sigma: float = 0.03
) -> np.ndarray:
    """(n, 2) offsets that drift smoothly along a stroke, as a hand does (no zigzag)."""
    at = np.linspace(0, 1, anchors)
    offsets = rng.normal(0, sigma, (anchors, 2))
    t = np.linspace(0, 1, n)
    return np.stack([np.interp(t, at, offsets[:, 0]), np.interp(t, at, offsets[:, 1])], 1)


def _pose(rng: np.random.Generator) -> np.ndarray:
    """A 2x2 matrix: rotation up to 15 degrees, slant, narrower or wider."""
    angle = np.radians(rng.uniform(-15, 15))
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    slant = np.array([[1.0, rng.uniform(-0.3, 0.15)], [0.0, 1.0]])
    return rotate @ slant @ np.diag([rng.uniform(0.65, 1.15), 1.0])


def draw_strokes(strokes: list[Stroke], rng: np.random.Generator) -> Image.Image:
    """One skeleton drawn by hand: white-on-black ink coverage of a square canvas."""
    side = int(CANVAS_SIDE * rng.uniform(0.8, 1.3))
    brush = int(rng.integers(8, 35))
    height = side * rng.uniform(0.35, 0.85)
    matrix = _pose(rng) * height
    drawn = [np.array(s, dtype=np.float64) - 0.5 for s in strokes]
    drawn = [(s + _smooth_jitter(len(s), rng)) @ matrix.T for s in drawn]
    low = np.min([s.min(0) for s in drawn], 0) - brush
    high = np.max([s.max(0) for s in drawn], 0) + brush
    free = np.maximum(side - (high - low), 0)
    offset = -low + rng.uniform(0, 1, 2) * free
    big = side * SUPERSAMPLE
    ink = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(ink)
    radius = brush * SUPERSAMPLE / 2
    for s in drawn:
        for x, y in _densify((s + offset) * SUPERSAMPLE, radius / 2):
            pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    return ink.resize((side, side), Image.Resampling.BOX)


def render_canvas(digit: int, rng: np.random.Generator) -> Image.Image:
    """A canvas drawing as the UI posts it, decoded: mostly a PNG, dark or light background."""
    skeletons = SKELETONS[digit]
    coverage = draw_strokes(skeletons[int(rng.integers(len(skeletons)))], rng)
    kind = rng.random()
    if kind < 0.3:  # what the canvas returns: the strokes on a transparent background
        image = Image.new("RGBA", coverage.size, (0, 0, 0, 0))
        image.putalpha(coverage)
    elif kind < 0.65:
        image = Image.merge("RGB", [coverage] * 3)  # white on black
    else:
        image = Image.merge("RGB", [coverage.point(lambda v: 255 - v)] * 3)  # black on white
    return encode_decode(image, "PNG")
