"""Preprocessing steps for photographed paper (issue 31): a digit written on a sheet and taken
with a phone, with the table at the edges, uneven light or a shadow, and the rules of ruled or
squared paper.

Each step takes the uint8 pixels the step before handed on, (H, W) for `L` or (H, W, 3) for
`RGB`, and returns the same shape and dtype: a new array, or the input itself, unchanged, when
there is nothing to do. That is a fast exit (`python -m bench.paper_steps` measures it): an
image whose shorter side is under `min_side` (a 28 px digit), paper that is not lighter than
its ink (a light digit drawn on black), light that is already even, no table at the border,
no long lines, a digit alone. They read dark ink on light paper, so they come before
`invert_if_light_background`, best in this order: even_light, drop_surroundings, remove_rules,
keep_digit (each also works alone). What they remove is painted the paper's colour: the median
of the pixels above Otsu's threshold, on a sample.

The image operations are OpenCV's, on copies shrunk by whole factors (area averaging, or "any
ink in the block" for masks) so that the cost hardly grows with the photo; what is painted is
enlarged back and painted at full size.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

try:
    import cv2
except ImportError:  # a host that serves no config with these steps may lack OpenCV
    cv2 = None

from model_api.model_config import (
    DropSurroundingsStep,
    EvenLightStep,
    KeepDigitStep,
    PaperStep,
    RemoveRulesStep,
)

SAMPLE = 4096
"""About this many pixels, a regular grid of them, tell the paper's level and colour."""

SHADE_SHARE = 0.03
"""even_light: fewer pixels of the sample than this share in the shade (between
`1 - depth` of the paper's level and `tolerance` below it), and nothing is done."""

PAPER_SHARE = 0.15
"""The pixels above Otsu's threshold cover at least this share of a light sheet, in parts
wider than PAPER_WIDTH (a shadow or the table may cover the rest)."""

PAPER_WIDTH = 0.125
"""Paper, a fraction of the sample's short side: what lies above Otsu's threshold in parts
narrower than this (the strokes of a light digit on a dark ground) is not paper."""

LIGHT_SIDE = 64
"""even_light works on a copy shrunk by the whole factor that leaves the short side at least
this long."""

ENVELOPE = 0.25
"""even_light: the window, a fraction of the short side, of the light around (the estimate
that ignores shadows, and ink whatever its width)."""

EDGE = 0.25
"""even_light: a pixel of the shrunk copy whose 3x3 neighbourhood's darkest is more than this
share darker than its lightest lies on a sharp edge (the sheet's, a stroke's), which a shadow
or a gradient, soft, never makes."""

TABLE_DARKER = 0.4
"""even_light: a part of the border cut off from the sheet by sharp edges and more than this
share darker than the paper is the table: left as dark as it is, for drop_surroundings."""

AROUND_SIDE = 100
"""drop_surroundings works on a copy shrunk so that its short side is at least this long."""

AROUND_OPEN = 0.03
"""drop_surroundings: dark parts thinner than this share of the short side (ink, rules) are
not surroundings."""

RIM = 0.01
"""drop_surroundings paints this share of the short side past the surroundings too: the
sheet's shaded edge."""

HUG = 0.5
"""drop_surroundings: a dark region is the table when its area is at most this times the
square of its contact with the border (a strip along it, a corner), not a glyph cut by it."""

BORDER_SHARE = 0.005
"""drop_surroundings: fewer dark pixels than this share of the border, and nothing is done."""

RULES_SIDE = 200
"""remove_rules works on an ink mask shrunk so that its short side is at least this long."""

LINE_BINS = 32
"""remove_rules finds lines on a mask shrunk along them so that the shortest is this long."""

DIGIT_SIDE = 100
"""keep_digit labels an ink mask shrunk so that its short side is at least this long."""

FRAGMENT = 0.7
"""keep_digit: a line (see `line_aspect`) thinner than this share of the main component's
strokes is a fragment of a rule, not a stroke of the digit."""

SPOT = 0.25
"""keep_digit: the weight of a component that touches the border, frames the image or is a
line, when it picks the digit's main component."""


def _need_opencv() -> None:
    """Raise a clear error where OpenCV is not installed."""
    if cv2 is None:
        raise RuntimeError(
            "the preprocessing steps for photographed paper need OpenCV: "
            "pip install opencv-python-headless (pinned in model_api/requirements.txt)"
        )


def _gray(pixels: np.ndarray) -> np.ndarray:
    """The pixels in L (OpenCV's RGB->L for RGB: they only decide where to paint)."""
    return pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)


def _kernel(width: int, height: int) -> np.ndarray:
    """A rectangular structuring element of at least 1x1 pixels."""
    return cv2.getStructuringElement(cv2.MORPH_RECT, (max(1, width), max(1, height)))


def _open(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """The opening of `mask` by a `width` x `height` rectangle: 255 where such a rectangle of
    255 inside the image covers the pixel. (OpenCV's own opening shifts by a pixel when a side
    is even.)"""
    kernel = _kernel(width, height)
    eroded = cv2.erode(mask, kernel, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.dilate(eroded, kernel, anchor=(width - 1, height - 1))


def _factor(shape: tuple[int, ...], side: int) -> int:
    """The whole factor that shrinks `shape` most while its short side stays >= `side`."""
    return max(1, min(shape[:2]) // side)


def _shrink(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Average `factor` x `factor` blocks (the rows and columns past the last whole block are
    left out): OpenCV's area resize, fast for whole factors."""
    if factor == 1:
        return pixels
    height, width = pixels.shape[0] // factor, pixels.shape[1] // factor
    block = pixels[: height * factor, : width * factor]
    return cv2.resize(block, (width, height), interpolation=cv2.INTER_AREA)


def _pool(mask: np.ndarray, factor: int) -> np.ndarray:
    """255 where a `factor` x `factor` block of a 0/255 mask holds any 255, else 0."""
    if factor == 1:
        return mask
    return cv2.compare(_shrink(mask, factor), 0, cv2.CMP_GT)


def _grow(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A shrunk mask enlarged back to `width` x `height` (nearest neighbour)."""
    if mask.shape == (height, width):
        return mask
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def _below(gray: np.ndarray, limit: float) -> np.ndarray:
    """255 where `gray` is below `limit`, else 0."""
    return cv2.threshold(gray, math.ceil(limit) - 1, 255, cv2.THRESH_BINARY_INV)[1]


class _Paper(NamedTuple):
    """What a sample of the image says about its paper."""

    gray: np.ndarray
    """The whole image in L."""
    threshold: int
    """Otsu's threshold of the sample: paper above, ink (and shade, and table) at or below."""
    level: int
    """The median of the sample above the threshold: the paper's typical brightness."""
    colour: np.ndarray
    """The paper's colour, to paint with: `level` for L, each band's median for RGB."""
    histogram: np.ndarray
    """The sample's 256 counts."""


_last_sample: list = [None, None]
"""[sample, what it says] of the last `_paper` call. A step that leaves the image as it is
hands the next one the same pixels: the sample is compared, not recomputed from. (A list,
replaced whole, so that threads see one pair or the other, never half of each.)"""


def _paper_for(pixels: np.ndarray, step: PaperStep) -> _Paper | None:
    """The paper a step works on; None when the image's short side is under the step's
    `min_side` or it shows no light paper (`_paper`): then the step leaves it as it is."""
    _need_opencv()
    if min(pixels.shape[:2]) < step.min_side:
        return None
    return _paper(pixels)


def _paper(pixels: np.ndarray) -> _Paper | None:
    """What a sample of SAMPLE pixels, a regular grid, says about the paper; None when what
    lies above Otsu's threshold covers less than PAPER_SHARE of it in parts wider than
    PAPER_WIDTH: no light paper (a light digit on a dark ground, or a blank). A function of
    the sample alone (and of `pixels` for `gray`): the same sample as last time gives last
    time's answer."""
    height, width = pixels.shape[:2]
    stride = max(1, int(math.sqrt(height * width / SAMPLE)))
    sample = np.ascontiguousarray(pixels[::stride, ::stride])
    global _last_sample
    last, said = _last_sample
    if last is None or last.shape != sample.shape or not np.array_equal(last, sample):
        said = _sample_says(sample)
        _last_sample = [sample, said]
    return None if said is None else _Paper(_gray(pixels), *said)


def _sample_says(sample: np.ndarray) -> tuple[int, int, np.ndarray, np.ndarray] | None:
    """(threshold, level, colour, histogram) of `_Paper` from the sample, or None."""
    gray = _gray(sample)
    threshold = int(cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[0])
    histogram = np.bincount(gray.ravel(), minlength=256)
    above = histogram[threshold + 1 :]
    count = int(above.sum())
    if count == 0 or count < PAPER_SHARE * gray.size:
        return None
    light = cv2.threshold(gray, threshold, 255, cv2.THRESH_BINARY)[1]
    light = cv2.morphologyEx(light, cv2.MORPH_CLOSE, _kernel(3, 3))  # across thin rules
    wide = max(3, round(PAPER_WIDTH * min(gray.shape)))
    if cv2.countNonZero(_open(light, wide, wide)) < PAPER_SHARE * gray.size:
        return None  # light, but only in strokes: a light digit on a dark ground
    level = threshold + 1 + int(np.searchsorted(np.cumsum(above), (count + 1) // 2))
    if sample.ndim == 2:
        colour = np.uint8(level)
    else:
        colour = np.median(sample[gray > threshold], axis=0).round().astype(np.uint8)
    return threshold, level, colour, histogram


def _paint(pixels: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """A copy of `pixels` with the pixels where `mask` is non-zero in `colour`."""
    out = pixels.copy()
    cv2.copyTo(np.full_like(pixels, colour), mask, out)
    return out


def even_light(pixels: np.ndarray, step: EvenLightStep) -> np.ndarray:
    """Divide by the background, scaled so that the paper is near white. On a shrunk copy: the
    light around is a closing over ENVELOPE of the short side (wider than any ink or shadow);
    a closing over `step.kernel` of it (wider than a stroke) is paper where it is no more than
    `step.depth` darker than the light around (a shadow), away from thick ink (the copy more
    than that darker, and the pixels next to it) and not in a dimmer region that does not
    reach the border (a large faint glyph, where a shadow comes in from the edge); the
    background is the mean of the paper in a window of that size (the light around where
    there is none), enlarged back. Unchanged when the paper is not lighter than its ink, when
    next to no pixel of a sample lies in the shade (SHADE_SHARE), or when the background
    spreads over at most `step.tolerance` levels."""
    paper = _paper_for(pixels, step)
    if paper is None:
        return pixels
    height, width = pixels.shape[:2]
    low, high = math.ceil(paper.level * (1 - step.depth)), paper.level - step.tolerance
    if paper.histogram[low:high].sum() < SHADE_SHARE * paper.histogram.sum():
        return pixels  # no shade to even out
    small = _shrink(pixels, _factor(pixels.shape, LIGHT_SIDE))
    short = min(small.shape[:2])
    wide = max(3, round(ENVELOPE * short) | 1)
    around = cv2.morphologyEx(small, cv2.MORPH_CLOSE, _kernel(wide, wide))
    size = max(3, round(step.kernel * short) | 1)
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, _kernel(size, size))
    shade = around * (1 - step.depth)
    # Thick ink, and the blocks next to it that it covers in part, are not paper.
    ink = cv2.dilate((small < shade).view(np.uint8), _kernel(3, 3))
    sheet = (closed >= shade) & (ink == 0)
    table = _table(_gray(small), paper.level)
    if table is not None:
        sheet &= ~(table[:, :, None] if sheet.ndim == 3 else table)
    # Nor is what is dimmer than the light around but does not reach the border: a shadow or
    # a gradient comes in from the edge, a large faint glyph lies inside.
    dim = (closed < around.astype(np.int16) - step.tolerance).view(np.uint8)
    if dim.ndim == 3:
        dim = dim.max(axis=2)
    count, labels = cv2.connectedComponents(dim, connectivity=4)
    if count > 1:
        edge = np.zeros(count, bool)
        edge[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
        inner = ~edge[labels] & (dim > 0)
        sheet &= ~(inner[:, :, None] if sheet.ndim == 3 else inner)
    sheet = sheet.astype(np.float32)
    total = cv2.blur(sheet * closed, (size, size))
    weight = cv2.blur(sheet, (size, size))
    background = np.where(weight > 0, total / np.maximum(weight, 1e-6), around)
    if table is not None:  # the table keeps its darkness: divided by the paper's level
        background[table] = paper.level
    background = np.clip(np.rint(background), 1, 255).astype(np.uint8)
    if int(background.max()) - int(background.min()) <= step.tolerance:
        return pixels
    return cv2.divide(pixels, _grow_smooth(background, width, height), scale=255)


def _table(gray: np.ndarray, level: int) -> np.ndarray | None:
    """True where the shrunk `gray` shows the table: regions between sharp edges (EDGE) that
    touch the border and are more than TABLE_DARKER darker than the paper's `level`; None
    where there is none. A shadow crosses the sheet's edge softly, so it stays with the sheet
    (evened out) even where it darkens the table too."""
    soft = cv2.compare(
        cv2.erode(gray, _kernel(3, 3)).astype(np.float32),
        cv2.dilate(gray, _kernel(3, 3)).astype(np.float32) * (1 - EDGE),
        cv2.CMP_GE,
    )
    count, labels = cv2.connectedComponents(soft, connectivity=4)
    if count <= 2:
        return None
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    border = border[border > 0]
    sums = np.bincount(labels.ravel(), gray.ravel().astype(np.float64), count)
    areas = np.bincount(labels.ravel(), minlength=count)
    dark = np.zeros(count, bool)
    dark[border] = sums[border] < areas[border] * level * (1 - TABLE_DARKER)
    if not dark.any():
        return None
    # The sharp edge itself goes with the table (it lies between the two).
    return cv2.dilate(dark[labels].view(np.uint8), _kernel(3, 3)) > 0


def _grow_smooth(background: np.ndarray, width: int, height: int) -> np.ndarray:
    """A shrunk background enlarged back to `width` x `height` (bilinear)."""
    return cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)


def drop_surroundings(pixels: np.ndarray, step: DropSurroundingsStep) -> np.ndarray:
    """Paint the paper's colour over what is darker than `1 - step.darker_by` of the paper's
    level, at least AROUND_OPEN of the short side thick (a strip along the border counts with
    the border) and hugging the border (HUG: not a glyph the border cuts), on a shrunk copy;
    and over a RIM around it that covers the sheet's edge. Unchanged when the border has next
    to no dark pixels, or there are no such surroundings, or they would cover more than
    `step.max_area` of the image."""
    paper = _paper_for(pixels, step)
    if paper is None:
        return pixels
    height, width = pixels.shape[:2]
    gray, level, colour = paper.gray, paper.level, paper.colour
    limit = level * (1 - step.darker_by)
    edge = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.count_nonzero(edge < limit) < max(2, BORDER_SHARE * edge.size):
        return pixels
    factor = _factor(gray.shape, AROUND_SIDE)
    dark = _below(_shrink(gray, factor), limit)
    short = min(dark.shape)
    size = max(3, round(AROUND_OPEN * short) | 1)
    # A dark frame around the copy: what is dark along the border (a thin strip of table) is
    # as thick as the frame, what only ends there (a rule, a stroke) is not.
    framed = cv2.copyMakeBorder(dark, size, size, size, size, cv2.BORDER_CONSTANT, value=255)
    framed = cv2.morphologyEx(framed, cv2.MORPH_OPEN, _kernel(size, size))
    dark = np.ascontiguousarray(framed[size:-size, size:-size])
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        dark, 4, cv2.CV_32S, cv2.CCL_DEFAULT
    )
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    contact = np.bincount(border, minlength=count).astype(np.float64)
    # The table hugs the border; a glyph cut by the border reaches far in from a short contact.
    table = (contact > 0) & (stats[:, cv2.CC_STAT_AREA] <= HUG * contact**2)
    table[0] = False
    around = (table * np.uint8(255))[labels]
    found = np.count_nonzero(around)
    if found == 0 or found > step.max_area * around.size:
        return pixels
    rim = 2 * max(1, round(RIM * short)) + 1
    around = cv2.dilate(around, _kernel(rim, rim))
    return _paint(pixels, _grow(around, width, height), colour)


def remove_rules(pixels: np.ndarray, step: RemoveRulesStep) -> np.ndarray:
    """Paint the paper's colour over long thin lines: ink (darker than `1 - step.darker_by` of
    the paper's level) at most `step.thickness` thick across a line that runs at least
    `step.length` of the width (height), up to `step.tilt` degrees off the axis (on a shrunk
    mask). Ink that crosses a line is thicker across it there, so it stays, and so does the
    edge of a stroke thicker than a line. Horizontal lines go first, so that where squared
    paper's lines cross, the vertical line left is thin. Unchanged when no band of rows
    (columns) holds enough thin ink for such a line."""
    paper = _paper_for(pixels, step)
    if paper is None:
        return pixels
    height, width = pixels.shape[:2]
    gray, level, colour = paper.gray, paper.level, paper.colour
    factor = _factor(gray.shape, RULES_SIDE)
    ink = _pool(_below(gray, level * (1 - step.darker_by)), factor)
    # Pooling may add a block to a line's thickness where its blocks fall unevenly.
    thickness = math.ceil(step.thickness * min(height, width) / factor) + (factor > 1)
    tan = math.tan(math.radians(step.tilt))
    coarse = _pool(ink, 2)  # a first look at half the size: lines at most half as thick
    extent = cv2.boundingRect(coarse)[2:]  # of all the ink: (width, height)
    removed = np.zeros_like(ink)
    strokes = None
    for vertical in (False, True):  # horizontal lines first
        length = max(3, round(step.length * ink.shape[0 if vertical else 1]))
        rise = round(length * tan)
        if extent[vertical] < length // 2:
            continue  # the ink is not that long, let alone a line
        if not _may_hold_lines(coarse, length // 2, rise // 2, thickness // 2 + 2, vertical):
            continue  # not enough thin ink in any band of rows (columns) for a line
        if strokes is None:
            # Ink thicker than a line both ways (no line, nor where two lines cross), and
            # its next pixels along a line: the edge of a slanted stroke is thin across it.
            strokes = _open(ink, thickness + 1, thickness + 1)
        across = (thickness + 1, 1) if vertical else (1, thickness + 1)
        along = (1, 3) if vertical else (3, 1)
        thin = cv2.subtract(ink, _open(ink, *across))
        thin = cv2.subtract(thin, cv2.dilate(strokes, _kernel(*along)))
        if vertical:
            lines = _lines(ink, length, rise)
        else:
            lines = np.ascontiguousarray(_lines(np.ascontiguousarray(ink.T), length, rise).T)
        found = cv2.bitwise_and(thin, lines)
        ink = cv2.subtract(ink, found)
        removed |= found
        if not vertical and found.any():
            coarse = _pool(ink, 2)
    if not removed.any():
        return pixels
    # The line's soft edge (lighter than the threshold) goes with it; the ink left stays.
    painted = cv2.subtract(cv2.dilate(removed, _kernel(3, 3)), ink)
    return _paint(pixels, _grow(painted, width, height), colour)


def _may_hold_lines(
    ink: np.ndarray, length: int, rise: int, thickness: int, vertical: bool
) -> bool:
    """Whether some band of `rise + thickness` rows (columns if `vertical`) of a 0/255 `ink`
    holds `length` pixels of ink in runs across it of at most `thickness` (and some a little
    longer, see `_alone`): a cheap first look that finds every line `_lines` would, and thick
    strokes seldom."""
    hint = _alone(ink, thickness, vertical)
    counts = cv2.reduce(hint, 0 if vertical else 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    band = np.cumsum(counts, dtype=np.int64)
    width = min(rise + thickness, band.size)
    most = (
        band[width - 1]
        if width == band.size
        else max(band[width - 1], (band[width:] - band[:-width]).max())
    )
    return bool(most >= 255 * length)


def _alone(ink: np.ndarray, distance: int, vertical: bool) -> np.ndarray:
    """255 where a 0/255 `ink` has no ink `distance` pixels before nor after it across the
    lines (along the rows if `vertical`): all the ink in runs shorter than `distance` across
    them (and some in runs up to twice that), for a cheap first look."""
    ends = np.zeros((1, 2 * distance + 1) if vertical else (2 * distance + 1, 1), np.uint8)
    ends.flat[0] = ends.flat[-1] = 1  # a dilation by the two ends: the max of the two
    return cv2.subtract(ink, cv2.dilate(ink, ends))


def _lines(ink: np.ndarray, length: int, rise: int) -> np.ndarray:
    """255 about where runs of a 0/255 `ink` at least `length` long lie along the columns,
    with up to `rise` pixels of drift across them over that length: found on a copy thickened
    by `rise` across and shrunk along by LINE_BINS, widened back over the line's ends."""
    height, width = ink.shape
    shrink = max(1, length // LINE_BINS)
    band = cv2.dilate(ink, _kernel(rise | 1, 1)) if rise else ink
    rows = height // shrink
    short = band[: rows * shrink].reshape(rows, shrink, width).max(axis=1)
    run = max(1, length // shrink)
    opened = _open(short, 1, run)
    # A tilted line leaves the band near its ends: reach over them.
    opened = cv2.dilate(opened, _kernel(rise | 1, run | 1))
    return cv2.resize(opened, (width, height), interpolation=cv2.INTER_NEAREST)


def keep_digit(pixels: np.ndarray, step: KeepDigitStep) -> np.ndarray:
    """Threshold (Otsu's, and at least `step.darker_by` darker than the paper), label the ink
    (on a shrunk mask), pick the main component (the largest near the centre; one that
    touches the border, frames the image or is a line counts SPOT), keep the components
    within `step.gap` of the main one's longer side of what is kept (growing), no smaller than
    `step.min_area` of the main one, not touching the border and no fragment of a rule (a
    line, see `step.line_aspect`, thinner than the main one's strokes: FRAGMENT), and paint
    the rest the paper's colour (all but the kept strokes and a pixel or so around them).
    Unchanged when there are fewer than two components or all are kept."""
    paper = _paper_for(pixels, step)
    if paper is None:
        return pixels
    height, width = pixels.shape[:2]
    gray, threshold, level, colour = paper.gray, paper.threshold, paper.level, paper.colour
    ink = _below(gray, min(threshold + 1, level * (1 - step.darker_by)))
    factor = _factor(gray.shape, DIGIT_SIDE)
    ink = _pool(ink, factor)
    if cv2.connectedComponents(ink, connectivity=8)[0] <= 2:  # cheaper without the stats
        return pixels
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        ink, 8, cv2.CV_32S, cv2.CCL_GRANA
    )
    small_h, small_w = ink.shape
    left, top, w, h, area = (stats[1:, i].astype(np.float64) for i in range(5))
    right, bottom = left + w, top + h
    # Pooling adds about a block to a thin stroke's thickness.
    line = np.maximum(w, h) >= step.line_aspect * np.maximum(np.minimum(w, h) - (factor > 1), 1)
    touches = (left == 0) | (top == 0) | (right == small_w) | (bottom == small_h)
    frames = (w >= 0.8 * small_w) & (h >= 0.8 * small_h)
    off = np.hypot(left + w / 2 - small_w / 2, top + h / 2 - small_h / 2)
    score = area / (1 + (off / (min(small_h, small_w) / 4)) ** 2)
    main = int(np.argmax(score * np.where(line | touches | frames, SPOT, 1.0)))
    kept = np.zeros(count - 1, bool)
    kept[main] = True
    gap = step.gap * max(w[main], h[main])
    # A line is a fragment of a rule when it is also thinner than the digit's strokes.
    thickness = area / (w + h)  # about a stroke's width, for a stroke that does not loop
    fragment = line & (thickness < FRAGMENT * thickness[main])
    eligible = (area >= step.min_area * area[main]) & ~fragment & ~touches
    box = [left[main], top[main], right[main], bottom[main]]
    while True:
        near = eligible & ~kept
        near &= (left <= box[2] + gap) & (right >= box[0] - gap)
        near &= (top <= box[3] + gap) & (bottom >= box[1] - gap)
        if not near.any():
            break
        kept |= near
        box = [left[kept].min(), top[kept].min(), right[kept].max(), bottom[kept].max()]
    if kept.all():
        return pixels
    lookup = np.zeros(count, np.uint8)
    lookup[1:][kept] = 255
    drop = cv2.bitwise_not(cv2.dilate(lookup[labels], _kernel(3, 3)))
    return _paint(pixels, _grow(drop, width, height), colour)
