"""Phone photos of one handwritten digit on a sheet of paper lying on a table (issue 31).

The ink comes from our digit sources: a real MNIST digit used as an ink mask (upscaled, its
edges made crisp) or a canvas-style stroke drawing (`training.strokes`). It is written on a
sheet (white, cream or yellow; plain, ruled with an optional red margin line, or squared) in
ballpoint blue, black, pencil grey or red, with a finer or bolder pen. The sheet lies on a
table (wood, grey desk) and is photographed: a perspective warp that shows the table at one
or more edges, light falling off across the frame, a soft shadow band, a colour cast, slight
blur, sensor noise, and a real JPEG (quality 55-90) of 300-600 px. The digit's height is
20-60 % of the frame's short side, not necessarily centred.

Every photo is a pure function of (seed, index, split, scenario): its own generator is
seeded with all four, so a set is the same however it is produced, and each photo comes with
the conditions it was made under. Label = index % 10. A photo costs 50-150 ms on one core.

Conditions, one JSON-ready dict per photo: `split`, `scenario`, `index`, `label`; `source`
(mnist | strokes) and `source_index` (the MNIST digit's index in `mnist_data.load_digits()`,
or the skeleton's in `strokes.SKELETONS[label]`); `paper`, `lines`, `margin`,
`line_spacing_px`; `ink`, `pen`, `pen_change_px` (dilation > 0, erosion < 0); `size`
[w, h]; `digit_fraction` and `digit_centre` (asked), `digit_box` and `digit_height_fraction`
(measured on the photo); `perspective` (0: straight, the sheet fills the frame; up to 1),
`table` (none | wood | grey | slate) and `table_fraction` (of the frame); `light` (fall-off
across the frame, 0-0.45) and `light_kind`; `shadow` (darkening of the band, 0-0.5);
`colour_cast`; `blur` (Gaussian radius, px); `noise` (sd); `specks`; `jpeg_quality`;
`heldout_condition` (a name of HELDOUT_CONDITIONS or None).

Held out, never in the training split:
- whole conditions (`HELDOUT_CONDITIONS`): yellow squared paper with red ink, cream ruled
  paper with pencil, and a slate table (a table surface training never shows);
- images: the held-out split draws from its own streams, and its MNIST ink comes from the
  1,000 digits `mnist_data.stratified_split` holds out (training photos only use the 4,000
  training digits). In the held-out `mixed` set every other block of ten photos (one of each
  digit) is made under a held-out condition, in turn; the other blocks, like every other
  set, are drawn as training draws (no held-out condition).

Scenarios isolate the conditions one at a time, as issue 31's table does: `clean` (plain
paper, straight, even light: a scan), `blur`, `lines` (ruled or squared), `perspective` (with
the table), `light` (uneven light and/or a shadow), `all` (all of them at once) and `mixed`
(each condition present or not at random; training and the overall figure use it).

    photo_set(seed, count, split, scenario) -> [(jpeg bytes, label, conditions)]
    phone_photo(rng, ink_mask, label, conditions) -> (RGB image before JPEG, conditions)
"""

from __future__ import annotations

import functools
import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from training import mnist_data
from training.strokes import SKELETONS, draw_strokes

SPLITS = ("train", "heldout")
SCENARIOS = ("mixed", "clean", "blur", "lines", "perspective", "light", "all")
SOURCES = ("mnist", "strokes")
PAPERS = {"white": (246, 245, 240), "cream": (243, 233, 208), "yellow": (251, 240, 155)}
LINES = ("plain", "ruled", "squared")
INKS = {"blue": (30, 52, 150), "black": (28, 28, 34), "pencil": (78, 78, 84), "red": (192, 36, 46)}
PENS = {"fine": (0.045, 0.07), "medium": (0.07, 0.1), "bold": (0.1, 0.14)}  # width / height
TABLES = ("wood", "grey", "slate")
TRAIN_TABLES = ("wood", "grey")
HELDOUT_CONDITIONS: dict[str, dict[str, str]] = {
    "yellow_squared_red": {"paper": "yellow", "lines": "squared", "ink": "red"},
    "cream_ruled_pencil": {"paper": "cream", "lines": "ruled", "ink": "pencil"},
    "slate_table": {"table": "slate"},
}
HELDOUT_SEED = 0
JPEG_QUALITY = (55, 90)
SIDE = (300, 600)  # each side of the photo, px
DIGIT_FRACTION = (0.2, 0.6)  # digit height / short side of the photo
BLUR = (0.5, 1.8)  # Gaussian radius in px on a photo whose short side is 450 px
_STREAM = 3  # digit_sources uses 1 and 2


def _pick(rng: np.random.Generator, options, p=None):
    """One of `options` (any iterable; a dict gives a key), with probabilities `p`."""
    options = list(options)
    return options[int(rng.choice(len(options), p=p))]


def heldout_condition(conditions: dict) -> str | None:
    """The name of the held-out condition these conditions fall in, or None."""
    for name, values in HELDOUT_CONDITIONS.items():
        if all(conditions.get(key) == value for key, value in values.items()):
            return name
    return None


def draw_conditions(
    rng: np.random.Generator,
    split: str = "train",
    scenario: str = "mixed",
    heldout: str | None = None,
) -> dict:
    """The conditions of one photo. `heldout` forces one of HELDOUT_CONDITIONS (held-out split
    only); otherwise no held-out condition is ever drawn."""
    if split not in SPLITS or scenario not in SCENARIOS:
        raise ValueError(f"split {split!r} / scenario {scenario!r}")
    if heldout is not None and (split != "heldout" or heldout not in HELDOUT_CONDITIONS):
        raise ValueError(f"held-out condition {heldout!r} in split {split!r}")
    mixed, every = scenario == "mixed", scenario == "all"
    c: dict = {"split": split, "scenario": scenario}
    c["source"] = _pick(rng, SOURCES)
    c["paper"] = _pick(rng, PAPERS)
    c["ink"] = _pick(rng, INKS)
    if mixed:
        c["lines"] = _pick(rng, LINES, [0.3, 0.35, 0.35])
    elif every or scenario == "lines":
        c["lines"] = _pick(rng, LINES[1:])
    else:
        c["lines"] = "plain"
    c["margin"] = bool(c["lines"] == "ruled" and rng.random() < 0.5)
    long_side = int(rng.integers(SIDE[0], SIDE[1] + 1))
    short_side = max(SIDE[0], round(long_side / _pick(rng, [1.0, 4 / 3, 3 / 2])))
    c["size"] = [short_side, long_side] if rng.random() < 0.6 else [long_side, short_side]
    c["digit_fraction"] = round(float(rng.uniform(*DIGIT_FRACTION)), 3)
    c["digit_centre"] = [round(float(v), 3) for v in rng.uniform(0.3, 0.7, 2)]
    if scenario in ("perspective", "all") or (mixed and rng.random() < 0.7):
        c["perspective"] = round(float(rng.uniform(0.25, 1.0)), 3)
        c["table"] = _pick(rng, TRAIN_TABLES)
    else:
        c["perspective"], c["table"] = 0.0, "none"
    light = scenario in ("light", "all")
    c["light"] = 0.0
    c["shadow"] = 0.0
    if light or mixed:
        lit = rng.random() < (0.8 if light else 0.6)
        shaded = rng.random() < (0.5 if light else 0.35)
        if light and not (lit or shaded):
            lit = True
        if lit:
            c["light"] = round(float(rng.uniform(0.1, 0.45)), 3)
        if shaded:
            c["shadow"] = round(float(rng.uniform(0.2, 0.5)), 3)
    c["light_kind"] = _pick(rng, ["linear", "radial"]) if c["light"] else "even"
    c["colour_cast"] = bool((mixed or every or light) and rng.random() < 0.5)
    short = min(c["size"])
    if scenario in ("blur", "all") or (mixed and rng.random() < 0.6):
        c["blur"] = round(float(rng.uniform(*BLUR) * short / 450), 3)
    else:
        c["blur"] = 0.0
    c["noise"] = round(
        float(rng.uniform(0.5, 2.0) if scenario == "clean" else rng.uniform(1, 6)), 3
    )
    c["specks"] = int(rng.integers(1, 6)) if (mixed or every) and rng.random() < 0.35 else 0
    c["jpeg_quality"] = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    if heldout is not None:
        c.update(HELDOUT_CONDITIONS[heldout])
        if heldout == "slate_table" and not c["perspective"]:
            c["perspective"] = round(float(rng.uniform(0.25, 1.0)), 3)
    else:
        while heldout_condition(c) is not None:  # the ink of a held-out combination
            c["ink"] = _pick(rng, INKS)
    c["pen"] = _pick(rng, PENS if c["ink"] != "pencil" else ["fine", "medium"])
    c["heldout_condition"] = heldout_condition(c)
    return c


# --- the ink --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def mnist_pools(split: str) -> dict[int, np.ndarray]:
    """Label -> indices into `mnist_data.load_digits()` that `split` may use as ink."""
    _, y = mnist_data.load_digits()
    train, held = mnist_data.stratified_split(y)
    indices = train if split == "train" else held
    return {label: indices[y[indices] == label] for label in range(10)}


def _crop(mask: np.ndarray, level: int = 0) -> np.ndarray:
    rows = np.flatnonzero((mask > level).any(1))
    cols = np.flatnonzero((mask > level).any(0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def mnist_ink(digit: np.ndarray, rng: np.random.Generator, scale: int = 8) -> Image.Image:
    """A 28x28 MNIST digit as a crisp pen mask `scale` times larger (white ink on black):
    upscaled smoothly, then its soft edge cut at a random level (thinner or thicker)."""
    cropped = np.pad(_crop(digit), 2)
    h, w = cropped.shape
    big = Image.fromarray(cropped, "L").resize((w * scale, h * scale), Image.Resampling.BICUBIC)
    big = big.filter(ImageFilter.GaussianBlur(0.5 * scale))  # no trace of the 28 px grid
    level = rng.uniform(0.3, 0.5)
    soft = np.asarray(big, dtype=np.float32) / max(1, int(np.asarray(big).max()))
    mask = np.clip((soft - level) / 0.12 + 0.5, 0, 1)
    return Image.fromarray(_crop((mask * 255).round().astype(np.uint8)), "L")


def ink_mask(
    rng: np.random.Generator,
    label: int,
    source: str,
    split: str,
) -> tuple[Image.Image, dict]:
    """(white-on-black ink mask of digit `label`, what it came from) from one of our sources.
    MNIST digits come from the split's own digits (held-out photos: the held-out 1,000)."""
    if source == "mnist":
        x, _ = mnist_data.load_digits()
        pool = mnist_pools(split)[label]
        index = int(pool[rng.integers(len(pool))])
        return mnist_ink(x[index], rng), {"source_index": index}
    skeletons = SKELETONS[label]
    k = int(rng.integers(len(skeletons)))
    drawn = np.asarray(draw_strokes(skeletons[k], rng))
    return Image.fromarray(_crop(drawn, 20), "L"), {"source_index": k}


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: 2 x area / perimeter."""
    inner = mask.copy()
    inner[1:-1, 1:-1] = (
        mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    )
    inner[[0, -1]] = False
    inner[:, [0, -1]] = False
    perimeter = max(int((mask & ~inner).sum()), 1)
    return 2.0 * float(mask.sum()) / perimeter


def pen_mask(
    mask: Image.Image,
    height: float,
    pen: str,
    rng: np.random.Generator,
) -> tuple[Image.Image, float]:
    """The ink scaled to `height` px, its stroke width moved towards the pen's by dilating
    or eroding with a round pen (a little: a digit is never eaten away); (mask, change in px
    per side)."""
    ss = 2  # work at twice the size, then reduce: smooth edges
    w, h = mask.size
    scale = height / h
    big = mask.resize(
        (max(1, round(w * scale * ss)), max(1, round(h * scale * ss))), Image.Resampling.LANCZOS
    )
    ink = np.pad(np.asarray(big) > 127, 1)
    width = _stroke_width(ink)
    target = max(height * rng.uniform(*PENS[pen]), 1.6) * ss
    thinnest = max(0.0, min(0.2 * width, (width - 3 * ss) / 2))  # keep 60 % and 3 px
    change = float(np.clip((target - width) / 2, -thinnest, 4 * ss))
    # Signed distance to the stroke's edge (positive inside), moved by `change`.
    inside = np.where(
        ink, ndimage.distance_transform_edt(ink) - 0.5, 0.5 - ndimage.distance_transform_edt(~ink)
    )
    grown = np.clip(inside + change + 0.5, 0, 1)[1:-1, 1:-1]
    big = Image.fromarray((grown * 255).round().astype(np.uint8), "L")
    final = (max(1, round(big.width / ss)), max(1, round(big.height / ss)))
    return big.resize(final, Image.Resampling.BOX), round(change / ss, 2)


# --- geometry -------------------------------------------------------------------------------


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 projective map taking the four points `src` onto `dst`."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    return np.append(np.linalg.solve(np.array(a, float), np.array(b, float)), 1).reshape(3, 3)


def apply(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through the homography `h`."""
    p = np.c_[points, np.ones(len(points))] @ h.T
    return p[:, :2] / p[:, 2:]


def _rotate(points: np.ndarray, centre: np.ndarray, degrees: float) -> np.ndarray:
    t = math.radians(degrees)
    r = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return (points - centre) @ r.T + centre


def sheet_quad(
    rng: np.random.Generator, size: tuple[int, int], strength: float, keep: np.ndarray
) -> np.ndarray:
    """Where the sheet's corners land in the frame (TL, TR, BR, BL): pulled inside at one or
    more edges (the table shows there), past the frame at the others, turned and tilted by
    `strength`; the box `keep` (x0, y0, x1, y1, the digit) stays well inside the sheet."""
    w, h = size
    short = min(w, h)
    pad = 0.04 * short
    room = [keep[0] - pad, keep[1] - pad, w - keep[2] - pad, h - keep[3] - pad]  # L, T, R, B
    for attempt in range(40):
        s = strength * (1 - attempt / 40)
        inset = [-rng.uniform(0.02, 0.12) * short for _ in range(4)]
        edges = rng.permutation(4)[: _pick(rng, [1, 2, 3, 4], [0.4, 0.35, 0.15, 0.1])]
        for e in edges:
            top = min(0.04 + 0.16 * s, room[e] / short)
            if top > 0.025:
                inset[e] = rng.uniform(0.025, top) * short
        left, top_, right, bottom = inset
        quad = np.array(
            [[left, top_], [w - right, top_], [w - right, h - bottom], [left, h - bottom]], float
        )
        side = int(rng.integers(4))  # the edge farther from the camera is shorter
        a, b = quad[side], quad[(side + 1) % 4]
        squeeze = s * rng.uniform(0.02, 0.1)
        quad[side], quad[(side + 1) % 4] = a + (b - a) * squeeze, b + (a - b) * squeeze
        quad = _rotate(quad, np.array([w / 2, h / 2]), s * rng.uniform(-7, 7))
        quad += rng.normal(0, 0.01 * short * s, quad.shape)
        to_sheet = homography(quad, np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float))
        x0, y0, x1, y1 = keep[0] - pad, keep[1] - pad, keep[2] + pad, keep[3] + pad
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        inside = apply(to_sheet, corners)
        covers = np.all((inside > 0.02) & (inside < 0.98))
        table_shows = any(inset[e] > 0 for e in range(4))
        if covers and table_shows:
            return quad
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], float)  # pragma: no cover - never seen


# --- textures -------------------------------------------------------------------------------


def _gauss(rng: np.random.Generator, shape: tuple, sigma: float) -> np.ndarray:
    """float32 normal noise of standard deviation `sigma`."""
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)


def smooth_noise(rng: np.random.Generator, size: tuple[int, int], cell: float) -> np.ndarray:
    """(h, w) noise in about [-1, 1] varying smoothly over `cell` px."""
    w, h = size
    gw, gh = max(2, int(w / cell) + 2), max(2, int(h / cell) + 2)
    grid = rng.uniform(0, 255, (gh, gw)).astype(np.uint8)
    up = Image.fromarray(grid, "L").resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(up, dtype=np.float32) / 127.5 - 1.0


def table_texture(rng: np.random.Generator, kind: str, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) float RGB of a table surface: wood (grain), a grey desk, slate (held out)."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "wood":
        base = np.array(
            _pick(rng, [(170, 122, 78), (140, 95, 58), (105, 68, 40), (186, 146, 100)]), float
        ) * rng.uniform(0.85, 1.1)
        angle = rng.uniform(0, math.pi)
        u = xs * math.cos(angle) + ys * math.sin(angle)
        v = -xs * math.sin(angle) + ys * math.cos(angle)
        v = v + 6 * smooth_noise(rng, size, 60)
        profile = rng.normal(0, 1, int(np.ptp(v)) + 8)
        profile = np.convolve(profile, np.ones(3) / 3, "same")
        streaks = profile[(v - v.min()).astype(int)]
        period = rng.uniform(8, 25)
        grain = np.sin(2 * math.pi * v / period + 2 * smooth_noise(rng, size, 90)) * 0.08
        shade = 1 + grain + 0.05 * streaks + 0.03 * np.sin(u / rng.uniform(40, 120))
    elif kind == "grey":
        base = np.full(3, rng.uniform(95, 150)) + rng.normal(0, 4, 3)
        shade = 1 + 0.05 * smooth_noise(rng, size, 80) + _gauss(rng, (h, w), 0.03)
    elif kind == "slate":
        base = np.array([58, 64, 74], float) * rng.uniform(0.85, 1.2)
        speck = (rng.random((h, w), dtype=np.float32) < 0.02) * np.float32(0.4)
        shade = 1 + 0.12 * smooth_noise(rng, size, 40) + speck + _gauss(rng, (h, w), 0.04)
    else:
        raise ValueError(kind)
    return np.clip(shade[..., None] * base, 0, 255)


def paper_texture(rng: np.random.Generator, colour: tuple, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) float RGB of paper: its colour, a little off, with faint fibres."""
    w, h = size
    base = np.array(colour, float) + rng.normal(0, 3, 3)
    shade = 1 + 0.008 * smooth_noise(rng, size, 25) + _gauss(rng, (h, w), 0.006)
    return np.clip(shade[..., None] * base, 0, 255)


def _alpha_lines(size: tuple[int, int], lines: list[tuple], width: float) -> np.ndarray:
    """(h, w) coverage in [0, 1] of straight lines ((x0, y0, x1, y1) each), antialiased."""
    ss = 3
    canvas = Image.new("L", (size[0] * ss, size[1] * ss), 0)
    pen = ImageDraw.Draw(canvas)
    for x0, y0, x1, y1 in lines:
        pen.line(
            [(x0 * ss, y0 * ss), (x1 * ss, y1 * ss)], fill=255, width=max(1, round(width * ss))
        )
    return np.asarray(canvas.resize(size, Image.Resampling.BOX), dtype=np.float32) / 255.0


def _lay(page: np.ndarray, alpha: np.ndarray, colour) -> np.ndarray:
    """Ink or print laid over paper: the paper's light filtered by the colour (multiplied)."""
    tint = np.asarray(colour, float) / 255.0
    return page * (1 - alpha[..., None] * (1 - tint))


# --- the photo ------------------------------------------------------------------------------


def phone_photo(
    rng: np.random.Generator,
    ink: Image.Image,
    label: int,
    conditions: dict,
) -> tuple[Image.Image, dict]:
    """One phone photo (RGB, before its JPEG) of the ink mask `ink` (L, white ink on black,
    any size) written on paper as `conditions` say; returns it with the conditions, completed
    with what was measured (digit box, table fraction, pen change...)."""
    c = dict(conditions, label=int(label))
    w, h = c["size"]
    short = min(w, h)
    height = c["digit_fraction"] * short
    aspect = ink.width / ink.height
    width = height * aspect
    margin = 0.04 * short
    cx = float(np.clip(c["digit_centre"][0] * w, width / 2 + margin, w - width / 2 - margin))
    cy = float(np.clip(c["digit_centre"][1] * h, height / 2 + margin, h - height / 2 - margin))
    keep = np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])

    # The sheet: where it lands in the frame, and its own pixel grid (about one per frame px).
    if c["perspective"] > 0:
        quad = sheet_quad(rng, (w, h), c["perspective"], keep)
    else:
        quad = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    sw = round((np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])) / 2)
    sh = round((np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2)
    rect = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], float)
    to_sheet = homography(quad, rect)
    centre = apply(to_sheet, np.array([[cx, cy]]))[0]
    probe = apply(np.linalg.inv(to_sheet), centre + np.array([[0, 0], [1, 0], [0, 1]]))
    (ax, ay), (bx, by) = probe[1] - probe[0], probe[2] - probe[0]
    local = math.sqrt(abs(ax * by - ay * bx))  # the sheet's px per frame px, here

    # The ink, at its size on the sheet, with its pen.
    mask, change = pen_mask(ink, height / local, c["pen"], rng)
    c["pen_change_px"] = round(change, 2)
    at = (round(centre[0] - mask.width / 2), round(centre[1] - mask.height / 2))
    coverage = Image.new("L", (sw, sh), 0)
    coverage.paste(mask, at)
    box = (at[0], at[1], at[0] + mask.width, at[1] + mask.height)

    page = paper_texture(rng, PAPERS[c["paper"]], (sw, sh))
    spacing = 0.0
    if c["lines"] == "ruled":
        spacing = max(12.0, mask.height / rng.uniform(0.9, 2.2))
        y0 = rng.uniform(0, spacing)
        rows = [(0, y, sw, y) for y in np.arange(y0, sh, spacing)]
        colour = _pick(rng, [(120, 160, 215), (150, 175, 210), (150, 150, 150)])
        page = _lay(
            page,
            _alpha_lines((sw, sh), rows, rng.uniform(1.0, 2.0)) * rng.uniform(0.5, 0.9),
            colour,
        )
    elif c["lines"] == "squared":
        spacing = max(10.0, mask.height / rng.uniform(1.2, 3.0))
        x0, y0 = rng.uniform(0, spacing, 2)
        grid = [(0, y, sw, y) for y in np.arange(y0, sh, spacing)]
        grid += [(x, 0, x, sh) for x in np.arange(x0, sw, spacing)]
        colour = _pick(rng, [(130, 165, 210), (160, 175, 200), (160, 160, 160)])
        page = _lay(
            page,
            _alpha_lines((sw, sh), grid, rng.uniform(0.8, 1.5)) * rng.uniform(0.35, 0.75),
            colour,
        )
    c["line_spacing_px"] = round(spacing, 1)
    if c["margin"]:
        pad = 0.25 * mask.height
        left, right = (0.06 * sw, box[0] - pad), (box[2] + pad, 0.94 * sw)
        span = left if left[1] > left[0] else right if right[1] > right[0] else None
        if span is None:
            c["margin"] = False
        else:
            x = rng.uniform(*span)
            page = _lay(
                page,
                _alpha_lines((sw, sh), [(x, 0, x, sh)], rng.uniform(1.0, 2.0))
                * rng.uniform(0.6, 0.9),
                (225, 95, 110),
            )
    if c["specks"]:
        dots = Image.new("L", (sw, sh), 0)
        pen = ImageDraw.Draw(dots)
        far = 0.35 * mask.height
        for _ in range(c["specks"]):
            for _try in range(20):
                x, y = rng.uniform(0, sw), rng.uniform(0, sh)
                if not (box[0] - far < x < box[2] + far and box[1] - far < y < box[3] + far):
                    break
            r = rng.uniform(0.6, 1.8)
            pen.ellipse([x - r, y - r, x + r, y + r], fill=int(rng.integers(80, 220)))
        page = _lay(page, np.asarray(dots, np.float32) / 255.0, (60, 60, 60))

    alpha = np.asarray(coverage, dtype=np.float32) / 255.0
    if c["ink"] == "pencil":
        grain = np.clip(1 + 0.2 * smooth_noise(rng, (sw, sh), 1.2), 0, 1.2)
        alpha = alpha * rng.uniform(0.55, 0.8) * grain
    else:
        alpha = alpha * (rng.uniform(0.85, 1.0) + 0.08 * smooth_noise(rng, (sw, sh), 30))
    page = _lay(page, np.clip(alpha, 0, 1), np.array(INKS[c["ink"]]) + rng.normal(0, 8, 3))

    # The photo: the sheet warped into the frame over the table.
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    page8 = np.clip(page, 0, 255).round().astype(np.uint8)
    if c["perspective"]:
        pad = 4  # the paper goes on a little past its edge, so no black creeps in there
        shifted = np.array([[1, 0, pad], [0, 1, pad], [0, 0, 1]], float) @ to_sheet
        coefficients = tuple((shifted / shifted[2, 2]).ravel()[:8])
        sheet = Image.fromarray(np.pad(page8, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
        frame = np.asarray(
            sheet.transform(
                (w, h), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC
            ),
            dtype=np.float32,
        )
        drawn = np.asarray(
            Image.fromarray(np.pad(np.asarray(coverage), pad)).transform(
                (w, h), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
            )
        )
        # How much of each pixel the sheet covers, from its distance to the sheet's edges.
        uvw = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs)], -1) @ to_sheet.T.astype(np.float32)
        u, v = uvw[..., 0] / uvw[..., 2], uvw[..., 1] / uvw[..., 2]
        on_sheet = np.ones((h, w), np.float32)
        for inside in (u, sw - u, v, sh - v):
            on_sheet *= np.clip(inside + 0.5, 0, 1)
    else:
        frame, drawn, on_sheet = page8.astype(np.float32), np.asarray(coverage), np.ones((h, w))
    ys_ink, xs_ink = np.nonzero(drawn > 64)
    c["digit_box"] = [
        int(xs_ink.min()),
        int(ys_ink.min()),
        int(xs_ink.max()) + 1,
        int(ys_ink.max()) + 1,
    ]
    c["digit_height_fraction"] = round((c["digit_box"][3] - c["digit_box"][1]) / short, 3)
    c["table_fraction"] = round(float(1 - on_sheet.mean()), 3)
    if c["table"] != "none":
        table = table_texture(rng, c["table"], (w, h))
        dx, dy = rng.normal(0, 0.008 * short, 2)
        cast = Image.fromarray((on_sheet * 255).astype(np.uint8)).transform(
            (w, h), Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy)
        )
        cast = cast.filter(ImageFilter.GaussianBlur(rng.uniform(2, 0.02 * short + 3)))
        table = table * (1 - 0.35 * np.asarray(cast, np.float32)[..., None] / 255.0)
        frame = frame * on_sheet[..., None] + table * (1 - on_sheet[..., None])

    # Light: falling off across the frame, a soft shadow band, a colour cast, exposure.
    field = np.ones((h, w), np.float32)
    if c["light"]:
        if c["light_kind"] == "linear":
            angle = rng.uniform(0, 2 * math.pi)
            ramp = math.cos(angle) * xs / w + math.sin(angle) * ys / h
            ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-9)
        else:
            bx, by = rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h
            ramp = np.hypot(xs - bx, ys - by)
            ramp = (ramp / ramp.max()) ** 2
        field *= 1 - c["light"] * ramp
    if c["shadow"]:
        angle = rng.uniform(0, 2 * math.pi)
        d = (xs - rng.uniform(0.2, 0.8) * w) * math.cos(angle) + (
            ys - rng.uniform(0.2, 0.8) * h
        ) * math.sin(angle)
        soft = rng.uniform(0.02, 0.12) * short
        band = 1 / (1 + np.exp(np.clip(-d / soft, -50, 50)))
        if rng.random() < 0.6:  # a band (an arm, the phone) rather than a half-plane
            band *= 1 / (1 + np.exp(np.clip((d - rng.uniform(0.15, 0.5) * short) / soft, -50, 50)))
        field *= 1 - c["shadow"] * band
    gains = np.ones(3)
    if c["colour_cast"]:  # white balance: warmer or cooler, and a little off
        gains = 1 + rng.uniform(-1, 1) * np.array([0.07, 0.0, -0.09]) + rng.normal(0, 0.012, 3)
    exposure = rng.uniform(0.82, 1.04) if c["scenario"] != "clean" else rng.uniform(0.95, 1.04)
    frame = frame * field[..., None] * (gains * exposure).astype(np.float32)
    photo = Image.fromarray(np.clip(frame, 0, 255).round().astype(np.uint8), "RGB")
    if c["blur"]:
        photo = photo.filter(ImageFilter.GaussianBlur(c["blur"]))
    noisy = np.asarray(photo, dtype=np.float32)
    noisy = noisy + _gauss(rng, noisy.shape, c["noise"]) + _gauss(rng, (h, w, 1), c["noise"] / 2)
    return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8), "RGB"), c


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """The photo as a phone saves it: a baseline JPEG (4:2:0) of `quality`."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def _rng(seed: int, index: int, split: str, scenario: str) -> np.random.Generator:
    return np.random.default_rng(
        [_STREAM, SPLITS.index(split), seed, index, SCENARIOS.index(scenario)]
    )


def forced_heldout(index: int, split: str, scenario: str) -> str | None:
    """The held-out condition photo `index` is made under: in the held-out `mixed` set, every
    other block of ten (one of each digit) cycles through HELDOUT_CONDITIONS."""
    if split != "heldout" or scenario != "mixed":
        return None
    names = list(HELDOUT_CONDITIONS)
    block = (index // 10) % (2 * len(names))
    return names[block // 2] if block % 2 else None


def photo(
    seed: int,
    index: int,
    split: str = "train",
    scenario: str = "mixed",
    size: tuple[int, int] | None = None,
) -> tuple[bytes, int, dict]:
    """(JPEG bytes, label, conditions) of photo `index` of a set (label = index % 10);
    `size` (width, height) replaces the drawn size (timings on photos of one size)."""
    rng = _rng(seed, index, split, scenario)
    label = index % 10
    conditions = draw_conditions(rng, split, scenario, forced_heldout(index, split, scenario))
    if size is not None:
        conditions["size"] = [int(size[0]), int(size[1])]
    ink, origin = ink_mask(rng, label, conditions["source"], split)
    image, conditions = phone_photo(rng, ink, label, {**conditions, **origin, "index": index})
    return encode_jpeg(image, conditions["jpeg_quality"]), label, conditions


def photo_set(
    seed: int,
    count: int,
    split: str = "train",
    scenario: str = "mixed",
    start: int = 0,
    size: tuple[int, int] | None = None,
) -> list[tuple[bytes, int, dict]]:
    """Photos `start` .. `start + count - 1` of a set: [(JPEG bytes, label, conditions)]."""
    return [photo(seed, i, split, scenario, size) for i in range(start, start + count)]


def decode(jpeg: bytes) -> Image.Image:
    """The decoded photo (RGB), as a training view would start from it."""
    image = Image.open(io.BytesIO(jpeg))
    image.load()
    return image
