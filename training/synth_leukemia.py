"""Deterministic procedural generator of synthetic blood-smear crops: lymphoblast vs lymphocyte.

Class `all` (lymphoblast-like, leukemic): large cell, nucleus filling most of it, irregular
outline, fine pale chromatin, visible nucleoli. Class `hem` (mature lymphocyte-like, normal):
smaller cell, small dense round nucleus, coarse clumped chromatin, thin rim of cytoplasm.
Stain colour, size, focus, illumination, red cells and noise are varied; the class ranges overlap
and a few cells are atypical, so the task is not trivially separable.
Image `index` of a `seed` is always the same picture: `make_image(seed, index)`.

CLI (writes a C-NMC-style folder-per-class tree, e.g. for testing real-data training):
    python -m training.synth_leukemia OUT_DIR --per-class 50 [--seed 7] [--size 128]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = ("all", "hem")  # index 0: lymphoblast (leukemic), 1: normal lymphocyte
DEFAULT_SIZE = 128


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D (or HxWxC) float array, edges reflected."""
    if sigma <= 0.05:
        return a
    radius = max(1, int(3 * sigma + 0.5))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(a, pad, mode="reflect")
        n = a.shape[axis]
        out = np.zeros_like(a, dtype=np.float64)
        for i, w in enumerate(kernel):
            out += w * np.take(padded, np.arange(i, i + n), axis=axis)
        a = out
    return a


def _noise_field(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Band-limited noise with zero mean and unit standard deviation."""
    field = _blur(rng.standard_normal((size, size)), sigma)
    return (field - field.mean()) / (field.std() + 1e-8)


def _blob_mask(yy, xx, cy, cx, radius, harmonics, soft=1.2) -> np.ndarray:
    """Soft mask (0..1) of a star-shaped blob whose radius varies with angle by `harmonics`."""
    dy, dx = yy - cy, xx - cx
    theta = np.arctan2(dy, dx)
    rho = np.hypot(dy, dx)
    boundary = np.full_like(rho, radius)
    for k, amp, phase in harmonics:
        boundary += radius * amp * np.cos(k * theta + phase)
    return np.clip(0.5 - (rho - boundary) / soft, 0.0, 1.0)


def _harmonics(rng: np.random.Generator, max_amp: float, ks=(2, 3, 4, 5, 7)):
    return [
        (k, rng.uniform(0, max_amp) / (1 + 0.3 * i), rng.uniform(0, 2 * np.pi))
        for i, k in enumerate(ks)
    ]


def _paint(canvas: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Alpha-composite a colour (H,W,3 or 3) over the canvas in place."""
    m = mask[..., None]
    canvas *= 1 - m
    canvas += m * colour


def make_image(
    seed: int, index: int, label: int | None = None, size: int = DEFAULT_SIZE, typical: bool = False
) -> tuple[Image.Image, int]:
    """The `index`-th synthetic smear crop of `seed`: (RGB image, label index into LABELS).

    `typical=True` draws a textbook cell of its class (no atypical or ambiguous morphology).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    if label is None:
        label = int(rng.integers(0, 2))
    s = size / DEFAULT_SIZE  # all geometry below is for a 128-px crop
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)

    # Stain: one random tint per slide, applied to every colour below.
    tint = np.array([rng.uniform(0.88, 1.08), rng.uniform(0.88, 1.06), rng.uniform(0.9, 1.1)])
    hue_mix = rng.uniform(-0.12, 0.12)  # moves purple towards blue or magenta

    def stain(rgb) -> np.ndarray:
        c = np.asarray(rgb, dtype=np.float64)
        c = c + hue_mix * np.array([40.0, 0.0, -40.0])
        return np.clip(c * tint, 0, 255)

    # Background plasma with an illumination gradient.
    bg = stain([rng.uniform(225, 245), rng.uniform(212, 232), rng.uniform(215, 238)])
    canvas = np.broadcast_to(bg, (size, size, 3)).copy()
    gy, gx = rng.normal(0, 0.12, size=2)
    light = 1 + gy * (yy / size - 0.5) + gx * (xx / size - 0.5)
    canvas *= light[..., None]

    # Red blood cells: pink discs with a pale centre, scattered around (under the white cell).
    for _ in range(int(rng.integers(3, 10))):
        r = rng.uniform(10, 16) * s
        ang = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(30, 75) * s
        cy, cx = size / 2 + dist * np.sin(ang), size / 2 + dist * np.cos(ang)
        disc = _blob_mask(yy, xx, cy, cx, r, _harmonics(rng, 0.05, (2, 3)), soft=1.5)
        pallor = _blob_mask(yy, xx, cy, cx, r * rng.uniform(0.3, 0.5), [], soft=r * 0.4)
        red = stain([rng.uniform(205, 230), rng.uniform(120, 160), rng.uniform(135, 170)])
        _paint(canvas, disc * rng.uniform(0.75, 0.95), red)
        _paint(canvas, disc * pallor * 0.45, bg)

    # The white cell. Class ranges overlap, and about 5 % of cells are ambiguous: drawn with the
    # other class's morphology (like borderline or mislabelled cells in real data), so a perfect
    # score is not attainable and the held-out figure stays informative.
    atypical = rng.random() < 0.1 and not typical
    blast = (label == 0) != (rng.random() < 0.05 and not typical)
    cy, cx = size / 2 + rng.normal(0, 4 * s, size=2)
    if blast:
        cell_r = rng.uniform(27, 42) * s
        nc_ratio = rng.uniform(0.78, 0.93)
        outline_amp = rng.uniform(0.02, 0.11)
        nucleus_rgb = [rng.uniform(100, 155), rng.uniform(60, 105), rng.uniform(140, 190)]
        chromatin_sigma, chromatin_amp = rng.uniform(0.6, 1.2), rng.uniform(8, 20)
        nucleoli = 0 if atypical else int(rng.integers(1, 4))
    else:
        cell_r = rng.uniform(22, 35) * s
        nc_ratio = rng.uniform(0.74, 0.9)
        outline_amp = rng.uniform(0.0, 0.04) if not atypical else rng.uniform(0.04, 0.09)
        nucleus_rgb = [rng.uniform(65, 120), rng.uniform(30, 75), rng.uniform(95, 150)]
        chromatin_sigma, chromatin_amp = rng.uniform(1.5, 3.0), rng.uniform(14, 30)
        nucleoli = 1 if atypical and rng.random() < 0.5 else 0

    cyto_rgb = stain([rng.uniform(165, 200), rng.uniform(175, 205), rng.uniform(215, 240)])
    cell = _blob_mask(yy, xx, cy, cx, cell_r, _harmonics(rng, outline_amp * 0.6), soft=1.5)
    _paint(canvas, cell, cyto_rgb)

    # Nucleus: blasts sit central, mature lymphocytes are often slightly eccentric.
    off = (1 - nc_ratio) * cell_r * (0.3 if blast else 0.8)
    ang = rng.uniform(0, 2 * np.pi)
    ny, nx = cy + off * np.sin(ang), cx + off * np.cos(ang)
    nuc_r = cell_r * nc_ratio
    harm = _harmonics(rng, outline_amp)
    if blast and rng.random() < 0.35:  # nuclear cleft / indentation
        harm.append((1, rng.uniform(0.04, 0.1), rng.uniform(0, 2 * np.pi)))
    nucleus = _blob_mask(yy, xx, ny, nx, nuc_r, harm, soft=1.3)
    chromatin = _noise_field(rng, size, chromatin_sigma * s)
    if not blast:
        chromatin = np.sign(chromatin) * np.abs(chromatin) ** 0.7  # clumped: hard-edged blotches
    nucleus_col = stain(nucleus_rgb)[None, None, :] + chromatin_amp * chromatin[..., None]
    _paint(canvas, nucleus, nucleus_col)

    for _ in range(nucleoli):  # pale, slightly blue round bodies inside the nucleus
        a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.55) * nuc_r
        nr = rng.uniform(2.5, 5.0) * s
        body = _blob_mask(
            yy,
            xx,
            ny + d * np.sin(a),
            nx + d * np.cos(a),
            nr,
            _harmonics(rng, 0.08, (2, 3)),
            soft=1.2,
        )
        lighter = stain([rng.uniform(170, 200), rng.uniform(150, 180), rng.uniform(205, 230)])
        _paint(canvas, body * nucleus * rng.uniform(0.6, 0.9), lighter)

    # Focus, sensor noise and exposure.
    canvas = _blur(canvas, rng.uniform(0.0, 2.0) * s)
    canvas += rng.normal(0, rng.uniform(1.5, 7.0), size=canvas.shape)
    canvas = canvas * rng.uniform(0.9, 1.08) + rng.uniform(-10, 10)
    return Image.fromarray(np.clip(canvas, 0, 255).round().astype(np.uint8), "RGB"), label


def write_folder(
    out: Path, per_class: int, seed: int, size: int = DEFAULT_SIZE, fmt: str = "png"
) -> None:
    """Write `per_class` images of each class as OUT/all/*.png and OUT/hem/*.png."""
    for label, name in enumerate(LABELS):
        (out / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image, _ = make_image(seed, 2 * i + label, label=label, size=size)
            image.save(out / name / f"{name}_{i:05d}.{fmt}")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: write a folder-per-class synthetic dataset."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    args = parser.parse_args(argv)
    write_folder(args.out, args.per_class, args.seed, args.size)
    print(f"wrote {2 * args.per_class} images to {args.out}")


if __name__ == "__main__":
    main()
