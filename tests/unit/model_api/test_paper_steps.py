"""The steps for photographed paper (model_api/paper.py, issue 31), each on its own on small
synthetic images made here, their fast exits, their parameters, and all four through the
whole mnist pipeline."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from harness.images import MODELS_DIR, drawn_digit_seven
from harness.model_copies import without_paper_steps
from model_api import paper, preprocess
from model_api.model_config import (
    DropSurroundingsStep,
    EvenLightStep,
    KeepDigitStep,
    ModelConfig,
    RemoveRulesStep,
    load_model_config,
)

SHIPPED = load_model_config(MODELS_DIR, "mnist")
MNIST = without_paper_steps(SHIPPED)
"""The shipped mnist config less the paper steps: the pipeline they are added to here."""
EVEN_LIGHT = EvenLightStep(op="even_light")
DROP_SURROUNDINGS = DropSurroundingsStep(op="drop_surroundings")
REMOVE_RULES = RemoveRulesStep(op="remove_rules")
KEEP_DIGIT = KeepDigitStep(op="keep_digit")
STEPS = [
    (paper.even_light, EVEN_LIGHT),
    (paper.drop_surroundings, DROP_SURROUNDINGS),
    (paper.remove_rules, REMOVE_RULES),
    (paper.keep_digit, KEEP_DIGIT),
]
"""The four steps with their defaults, in the suggested order."""

SHAPE = (240, 320)
PAPER = 232
INK = 45


def _four(shape: tuple[int, int] = SHAPE, width: int = 6, gap: int = 0) -> np.ndarray:
    """A '4' as a bool mask: two strokes (down-left and across; the long one), in the middle;
    `gap` pixels between them, or crossing when 0."""
    height, side = shape
    mask = np.zeros(shape, np.uint8)
    s = min(height, side)
    cx, cy = side / 2, height / 2

    def at(x: float, y: float) -> tuple[int, int]:
        return round(cx + x * s), round(cy + y * s)

    first = np.array([at(0.0, -0.35), at(-0.22, 0.08), at(0.12, 0.08)])
    cv2.polylines(mask, [first], False, 1, width)
    x = 0.02 if gap == 0 else 0.12 + (gap + width) / s  # through the bar, or past its end
    cv2.line(mask, at(x, -0.2), at(x, 0.38), 1, width)
    return mask.astype(bool)


def _sheet(mask: np.ndarray, paper_level: int = PAPER, ink: int = INK) -> np.ndarray:
    """`mask` in `ink` on paper of `paper_level`, uint8."""
    return np.where(mask, ink, paper_level).astype(np.uint8)


def _noisy(image: np.ndarray, sigma: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _near(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` grown by `pixels` each way."""
    size = 2 * pixels + 1
    return cv2.dilate(mask.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)


def _photo(shape: tuple[int, int] = SHAPE, squared: bool = False, seed: int = 1) -> np.ndarray:
    """A small phone photo of the '4' on ruled (squared) paper: the table at the edges, light
    falling off, a shadow band, ruled lines, specks, blur, noise and JPEG."""
    height, width = shape
    rng = np.random.default_rng(seed)
    digit = _four(shape, width=4)
    page = np.full(shape, float(PAPER))
    for y in range(12, height, 12 if squared else 16):
        cv2.line(page, (0, y), (width, y + 3), 165.0, 1)
    if squared:
        for x in range(10, width, 12):
            cv2.line(page, (x, 0), (x - 3, height), 165.0, 1)
    page[digit] = INK
    for x, y in rng.uniform((20, 20), (width - 20, height - 20), (8, 2)):
        cv2.circle(page, (round(x), round(y)), 1, 80.0, -1)
    sheet = np.zeros(shape, np.uint8)
    corners = [(14, 10), (width - 8, 4), (width - 4, height - 6), (8, height)]
    cv2.fillConvexPoly(sheet, np.array(corners, np.int32), 1)
    photo = np.where(sheet == 1, page, 95.0 + rng.normal(0, 5, shape))
    xs, ys = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    band = cv2.GaussianBlur((np.abs(xs - 0.3 + 0.4 * (ys - 0.5)) < 0.07).astype(float), (0, 0), 5)
    photo = photo * (1 - 0.3 * xs * ys) * (1 - 0.3 * band)
    photo = cv2.GaussianBlur(photo, (0, 0), 0.7) + rng.normal(0, 2.5, shape)
    ok, jpeg = cv2.imencode(
        ".jpg", np.clip(photo, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 80]
    )
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)


def _with_paper_steps(config: ModelConfig, steps: list[dict] | None = None) -> ModelConfig:
    """`config` with the paper steps in front of `invert_if_light_background`."""
    data = config.model_dump()
    at = [step["op"] for step in data["preprocess"]].index("invert_if_light_background")
    data["preprocess"][at:at] = steps or [{"op": step.op} for _, step in STEPS]
    return ModelConfig.model_validate(data)


# --- even_light -------------------------------------------------------------------------------


def _uneven(mask: np.ndarray) -> np.ndarray:
    """The digit on paper under light falling off to the right and a soft shadow band."""
    height, width = mask.shape
    xs, ys = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    band = cv2.GaussianBlur((np.abs(xs - 0.25 + 0.5 * (ys - 0.5)) < 0.09).astype(float), (0, 0), 6)
    light = (1 - 0.35 * xs) * (1 - 0.35 * band)
    return _noisy(_sheet(mask) * light)


def test_even_light_makes_the_background_uniform_and_keeps_the_digit_dark() -> None:
    digit = _four()
    image = _uneven(digit)
    out = paper.even_light(image, EVEN_LIGHT)
    assert out.shape == image.shape and out.dtype == np.uint8
    background = ~_near(digit, 4)
    before = np.percentile(image[background], [2, 98])
    after = np.percentile(out[background], [2, 98])
    assert before[1] - before[0] > 60  # the gradient and the shadow
    assert after[1] - after[0] < 25  # evened out...
    assert np.median(out[background]) >= 240  # ...near white
    assert np.median(out[digit & ~_near(~digit, 1)]) < 100  # the ink still dark


def test_even_light_leaves_even_light_and_thick_strokes_alone() -> None:
    for image in (_noisy(_sheet(_four())), _sheet(_four(width=24)), _sheet(_four(width=40))):
        assert paper.even_light(image, EVEN_LIGHT) is image


def test_even_light_leaves_the_table_dark_for_drop_surroundings() -> None:
    """A wide table, cut off from the sheet by its sharp edge, is not a shadow to brighten:
    it stays as dark as it is, and drop_surroundings then paints it the paper's colour."""
    digit = _four()
    table = np.zeros(SHAPE, bool)
    table[:, :90] = True  # wider than the light around reaches
    image = np.where(table, 100, _sheet(digit)).astype(float)
    xs = np.linspace(0, 1, SHAPE[1])[None, :]
    image = _noisy(image * (1 - 0.3 * xs))  # light falling off across table and sheet
    out = paper.even_light(image, EVEN_LIGHT)
    sheet = ~_near(table, 4) & ~_near(digit, 4)
    assert np.percentile(out[sheet], 2) > 215  # the sheet's light is evened out...
    assert np.median(out[table & ~_near(~table, 4)]) < 150  # ...the table's is not
    dropped = paper.drop_surroundings(out, DROP_SURROUNDINGS)
    assert np.percentile(dropped[table], 5) > 215
    assert np.median(dropped[digit & ~_near(~digit, 1)]) < 100


def test_even_light_evens_out_a_soft_shadow_at_the_border_as_a_shadow() -> None:
    """A shadow as dark as the table but with a soft edge is evened out, not kept."""
    digit = _four()
    xs = np.linspace(0, 1, SHAPE[1])[None, :]
    shade = 1 - 0.55 * cv2.GaussianBlur((xs < 0.2).astype(float) * np.ones(SHAPE), (0, 0), 8)
    image = _noisy(_sheet(digit) * shade)
    out = paper.even_light(image, EVEN_LIGHT)
    assert np.median(out[:, :40]) > 220


# --- drop_surroundings ------------------------------------------------------------------------


def _on_table(digit: np.ndarray, table: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """The digit on a sheet whose left and top edges show the table; (image, table mask)."""
    height, width = digit.shape
    around = np.zeros(digit.shape, np.uint8)
    cv2.fillConvexPoly(around, np.array([(0, 0), (36, 0), (20, height), (0, height)]), 1)
    cv2.fillConvexPoly(around, np.array([(0, 0), (width, 0), (width, 14), (0, 26)]), 1)
    image = np.where(around == 1, table, _sheet(digit))
    return _noisy(image), around.astype(bool)


def test_drop_surroundings_paints_the_table_and_keeps_the_digit() -> None:
    digit = _four()
    image, table = _on_table(digit)
    inner = np.zeros(SHAPE, bool)
    inner[150:175, 240:270] = True  # dark, but not connected to the border
    image[inner] = 90
    out = paper.drop_surroundings(image, DROP_SURROUNDINGS)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out[table].min() >= PAPER - 10  # the table is paper now
    assert np.array_equal(out[_near(digit, 3)], image[_near(digit, 3)])  # the digit untouched
    assert np.array_equal(out[inner], image[inner])  # not surroundings


def test_drop_surroundings_takes_a_thin_strip_but_not_a_rule_that_reaches_the_digit() -> None:
    digit = _four()
    image = _sheet(digit)
    image[-5:] = 90  # a thin strip of table along the bottom
    image[118:120, :] = 130  # a rule from border to border, across the digit
    out = paper.drop_surroundings(image, DROP_SURROUNDINGS)
    assert out[-5:].min() >= PAPER - 10
    assert np.array_equal(out[digit], image[digit])
    assert (out[118:120, 60:260] == 130).mean() > 0.9


def test_drop_surroundings_gives_up_when_the_surroundings_would_be_most_of_it() -> None:
    digit = _four()
    image = _sheet(digit)
    image[:, :150] = 90  # the table: 47 % of the image
    assert paper.drop_surroundings(image, DROP_SURROUNDINGS) is not image
    few = DropSurroundingsStep(op="drop_surroundings", max_area=0.4)
    assert paper.drop_surroundings(image, few) is image


# --- remove_rules -----------------------------------------------------------------------------


def _ruled(digit: np.ndarray, squared: bool, tilt: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The digit over ruled (or squared) paper: (image, mask of the lines)."""
    height, width = digit.shape
    lines = np.zeros(digit.shape, np.uint8)
    rise = round(np.tan(np.radians(tilt)) * width)
    for y in range(9, height, 18):
        cv2.line(lines, (0, y), (width, y + rise), 1, 2)
    if squared:
        for x in range(9, width, 18):
            cv2.line(lines, (x, 0), (x - round(np.tan(np.radians(tilt)) * height), height), 1, 2)
    image = np.where(lines == 1, 160, PAPER)
    image[digit] = INK
    return _noisy(image), lines.astype(bool) & ~digit


@pytest.mark.parametrize(
    ("squared", "tilt"), [(False, 0.0), (False, 1.0), (True, 0.0), (True, 1.0)]
)
def test_remove_rules_removes_the_lines_and_keeps_the_digit_crossing_them(
    squared: bool, tilt: float
) -> None:
    digit = _four()
    image, lines = _ruled(digit, squared, tilt)
    out = paper.remove_rules(image, REMOVE_RULES)
    assert out.shape == image.shape and out.dtype == np.uint8
    far = lines & ~_near(digit, 3)
    assert (out[far] >= PAPER - 12).mean() > 0.97  # the lines are paper now
    assert _iou(out < 128, digit) > 0.95  # the digit is all there
    assert _iou(image < 128, digit) > 0.95  # (as it was: the lines are lighter than ink)


def test_remove_rules_keeps_short_lines_and_thick_strokes() -> None:
    digit = _four(width=10)
    image = _sheet(digit)
    image[30:32, 20:120] = 160  # a short line: a third of the width
    assert paper.remove_rules(image, REMOVE_RULES) is image


# --- keep_digit -------------------------------------------------------------------------------


def test_keep_digit_drops_specks_and_line_fragments() -> None:
    digit = _four()
    image = _sheet(digit)
    rng = np.random.default_rng(3)
    specks = np.zeros(SHAPE, np.uint8)
    for x, y in rng.uniform((10, 10), (310, 230), (25, 2)):
        cv2.circle(specks, (round(x), round(y)), 1, 1, -1)
    specks = specks.astype(bool) & ~_near(digit, 4)
    fragment = np.zeros(SHAPE, bool)
    fragment[205:207, 180:250] = True  # a piece of a rule, next to the digit
    far = np.zeros(SHAPE, bool)
    far[20:22, 230:300] = True  # and one far from it
    image[specks | fragment | far] = 70
    image = _noisy(image)
    out = paper.keep_digit(image, KEEP_DIGIT)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out[specks | fragment | far].min() >= PAPER - 12
    assert np.array_equal(out[digit], image[digit])
    assert _iou(out < 128, digit) > 0.97


def test_keep_digit_keeps_a_digit_of_separate_strokes() -> None:
    digit = _four(gap=8)
    assert cv2.connectedComponents(digit.astype(np.uint8))[0] == 3  # two strokes
    image = _sheet(digit)
    image[20:23, 20:23] = 60  # a speck, so that there is something to drop
    out = paper.keep_digit(image, KEEP_DIGIT)
    assert out[20:23, 20:23].min() >= PAPER - 12
    assert np.array_equal(out[digit], image[digit])


def test_keep_digit_picks_the_digit_in_the_middle_over_a_larger_blot_at_the_edge() -> None:
    digit = _four(width=4)
    image = _sheet(digit)
    image[5:60, 250:315] = 60  # larger than the digit, but in a corner
    out = paper.keep_digit(image, KEEP_DIGIT)
    assert out[5:60, 250:315].min() >= PAPER - 12
    assert np.array_equal(out[digit], image[digit])


# --- all of them ------------------------------------------------------------------------------


def _clean_images() -> dict[str, np.ndarray]:
    seven = np.asarray(drawn_digit_seven(200, "L"))
    return {
        "28 light on black": 255 - np.asarray(drawn_digit_seven(28, "L")),
        "28 dark on white": np.asarray(drawn_digit_seven(28, "L")),
        "63 dark on white": np.asarray(drawn_digit_seven(63, "L")),
        "200 dark on white": seven,
        "200 light on black": 255 - seven,
        "200 blank": np.full((200, 200), 255, np.uint8),
        "200x300 thick four": _sheet(_four((200, 300), width=20)),
    }


@pytest.mark.parametrize("name", list(_clean_images()))
def test_clean_and_small_images_pass_unchanged(name: str) -> None:
    """The fast exits: the very array comes back, so nothing was copied or computed on it."""
    image = _clean_images()[name]
    for step, parameters in STEPS:
        assert step(image, parameters) is image, (step.__name__, name)


def test_light_strokes_on_a_dark_ground_are_not_paper() -> None:
    """Light over more than PAPER_SHARE of the image, but only in strokes: no paper, where a
    sheet with a shadow over most of it still is one."""
    bars = np.full((200, 300), 30, np.uint8)
    for x in range(40, 300, 64):
        bars[20:180, x : x + 20] = 220  # a tenth of the short side wide
    assert (bars > 128).mean() > paper.PAPER_SHARE
    assert paper._paper(bars) is None
    shaded = _sheet(_four((200, 300))).astype(float)
    shaded[:, 60:] *= 0.45  # a shadow over four fifths of the sheet
    assert paper._paper(shaded.astype(np.uint8)) is not None


def test_the_steps_leave_their_input_alone_and_take_rgb() -> None:
    photo = _photo()
    rgb = np.ascontiguousarray(np.stack([photo, photo, (photo * 0.9).astype(np.uint8)], axis=2))
    for image in (photo, rgb):
        kept = image.copy()
        for step, parameters in STEPS:
            out = step(image, parameters)
            assert out is not image, step.__name__  # each has something to do on the photo
            assert out.shape == image.shape and out.dtype == np.uint8
            assert np.array_equal(image, kept)


def test_rgb_is_painted_in_the_papers_own_colour() -> None:
    digit = _four()
    gray, table = _on_table(digit)
    cream = np.array([240, 228, 200], np.uint8)
    image = np.where(gray[:, :, None] >= 200, cream, np.uint8(90)).astype(np.uint8)
    image[digit] = (20, 30, 120)  # blue ink
    out = paper.drop_surroundings(image, DROP_SURROUNDINGS)
    assert np.array_equal(out[table], np.broadcast_to(cream, out[table].shape))
    assert np.array_equal(out[digit], image[digit])


def test_the_papers_sample_is_remembered_only_for_the_same_pixels() -> None:
    a, _ = _on_table(_four())
    b = _photo()
    first = paper.drop_surroundings(a, DROP_SURROUNDINGS)
    paper.drop_surroundings(b, DROP_SURROUNDINGS)
    assert np.array_equal(paper.drop_surroundings(a, DROP_SURROUNDINGS), first)
    a[a >= 200] = 180  # the same array, other paper: its sample differs
    painted = paper.drop_surroundings(a, DROP_SURROUNDINGS)
    assert painted[0, 0] == 180 and first[0, 0] != 180


def test_each_step_helps_on_a_photo_in_order() -> None:
    """The photo through the four steps comes out as the digit on white, nothing else."""
    digit = _four(width=4)
    pixels = _photo()
    for step, parameters in STEPS:
        pixels = step(pixels, parameters)
    ink = pixels < 128
    assert _iou(ink, digit) > 0.8
    assert not (ink & ~_near(digit, 3)).any()


# --- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [
        {"op": "even_light", "kernel": 0},
        {"op": "even_light", "kernel": 1.5},
        {"op": "even_light", "depth": 1},
        {"op": "even_light", "tolerance": -1},
        {"op": "even_light", "tolerance": 256},
        {"op": "even_light", "min_side": 0},
        {"op": "drop_surroundings", "darker_by": 0},
        {"op": "drop_surroundings", "darker_by": 1},
        {"op": "drop_surroundings", "max_area": 0},
        {"op": "drop_surroundings", "max_area": 1.1},
        {"op": "remove_rules", "length": 0},
        {"op": "remove_rules", "length": 1.01},
        {"op": "remove_rules", "thickness": 0},
        {"op": "remove_rules", "tilt": -1},
        {"op": "remove_rules", "tilt": 11},
        {"op": "keep_digit", "gap": -0.1},
        {"op": "keep_digit", "min_area": 2},
        {"op": "keep_digit", "line_aspect": 1},
        {"op": "keep_digit", "darker_by": 1},
        {"op": "keep_digit", "lenght": 0.5},  # a typo is an error, not ignored
    ],
)
def test_parameters_out_of_range_are_refused(step: dict) -> None:
    with pytest.raises(ValidationError):
        _with_paper_steps(MNIST, [step])


def test_defaults_and_parameters_are_read_from_the_config() -> None:
    steps = [
        {"op": "even_light", "kernel": 0.1, "depth": 0.5, "tolerance": 8, "min_side": 32},
        {"op": "drop_surroundings", "darker_by": 0.3, "max_area": 0.5},
        {"op": "remove_rules", "length": 0.7, "thickness": 0.01, "tilt": 2},
        {"op": "keep_digit", "gap": 0.5, "min_area": 0.05, "line_aspect": 6},
    ]
    config = _with_paper_steps(MNIST, steps)
    parsed = config.preprocess[2:6]
    assert [type(step) for step in parsed] == [type(step) for _, step in STEPS]
    assert parsed[0] == EvenLightStep(
        op="even_light", kernel=0.1, depth=0.5, tolerance=8, min_side=32
    )
    assert parsed[3].line_aspect == 6 and parsed[3].min_side == 64
    assert ModelConfig.model_validate(config.model_dump()) == config


# --- the whole pipeline -----------------------------------------------------------------------


def test_the_shipped_mnist_runs_the_four_steps_in_order_before_the_inversion() -> None:
    ops = [step.op for step in SHIPPED.preprocess]
    at = ops.index("invert_if_light_background")
    assert ops[at - 4 : at] == ["even_light", "drop_surroundings", "remove_rules", "keep_digit"]


def test_the_pipeline_with_the_steps_yields_the_models_input() -> None:
    config = _with_paper_steps(MNIST)
    for image in (_photo(), _photo(squared=True)):
        tensor = preprocess.preprocess(Image.fromarray(image), config)
        assert tensor.shape == (1, 1, 28, 28) and tensor.dtype == np.float32
        assert np.isfinite(tensor).all()


def test_the_steps_make_a_photo_look_like_the_clean_digit() -> None:
    """What the network sees of the photo is close to what it sees of the same digit clean
    with the steps, and far from it without them."""
    config = _with_paper_steps(MNIST)
    clean = preprocess.prepare_image(Image.fromarray(_sheet(_four(width=4))), MNIST)
    target = np.asarray(clean, np.float64)
    for squared in (False, True):
        photo = Image.fromarray(_photo(squared=squared))
        with_steps = np.asarray(preprocess.prepare_image(photo, config), np.float64)
        without = np.asarray(preprocess.prepare_image(photo, MNIST), np.float64)
        assert np.abs(with_steps - target).mean() < 12
        assert np.abs(without - target).mean() > 3 * np.abs(with_steps - target).mean()


def test_clean_images_give_the_same_tensor_with_or_without_the_steps() -> None:
    config = _with_paper_steps(MNIST)
    for image in _clean_images().values():
        if image.max() == image.min():
            continue  # blank: refused by reject_blank either way
        pil = Image.fromarray(image)
        assert np.array_equal(preprocess.preprocess(pil, config), preprocess.preprocess(pil, MNIST))


def test_preprocess_dispatches_the_new_steps() -> None:
    for step, parameters in STEPS:
        assert preprocess._IMAGE_STEPS[type(parameters)] is step


def test_an_opening_by_an_even_rectangle_does_not_shift() -> None:
    """`_open` against its definition: 255 where a rectangle of 255 covers the pixel."""
    mask = (np.random.default_rng(5).random((30, 40)) > 0.3).astype(np.uint8) * 255
    for width, height in [(1, 4), (4, 1), (4, 4), (3, 3), (2, 5)]:
        expected = np.zeros_like(mask)
        for y in range(30 - height + 1):
            for x in range(40 - width + 1):
                if mask[y : y + height, x : x + width].all():
                    expected[y : y + height, x : x + width] = 255
        assert np.array_equal(paper._open(mask, width, height), expected), (width, height)


def test_without_opencv_the_steps_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paper, "cv2", None)
    for step, parameters in STEPS:
        with pytest.raises(RuntimeError, match="opencv-python-headless"):
            step(_photo(), parameters)


def test_the_warm_up_image_gives_each_paper_step_work() -> None:
    """model_api runs the pipeline once at load on this image, so that OpenCV's one-off
    set-up is not paid by a worker's first request: each step must take its full path."""
    pixels = np.asarray(preprocess.warm_up_image().convert("L"))
    for step, parameters in STEPS:
        out = step(pixels, parameters)
        assert out is not pixels, step.__name__
        pixels = out
    preprocess.warm_up(SHIPPED)  # and the whole pipeline takes it
