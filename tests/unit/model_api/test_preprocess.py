from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.images import MODELS_DIR, drawn_digit_seven
from model_api.errors import NoContentError
from model_api.model_config import load_model_config
from model_api.preprocess import normalize, prepare_image, preprocess, to_mode

MNIST = load_model_config(MODELS_DIR, "mnist")
LEUKEMIA = load_model_config(MODELS_DIR, "leukemia")


def _ink(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def test_mnist_pipeline_makes_an_mnist_style_digit() -> None:
    prepared = prepare_image(drawn_digit_seven(), MNIST)
    assert prepared.size == (28, 28) and prepared.mode == "L"
    pixels = _ink(prepared)
    # light ink on black, like MNIST
    assert pixels[0].max() == 0 and pixels[:, 0].max() == 0 and pixels.max() > 200
    # the digit fits a 20x20 box...
    rows, cols = np.nonzero(pixels > 0)
    assert rows.max() - rows.min() + 1 <= 20 and cols.max() - cols.min() + 1 <= 20
    # ...centred by mass in 28x28
    total = pixels.sum()
    cy = (np.arange(28)[:, None] * pixels).sum() / total
    cx = (np.arange(28)[None, :] * pixels).sum() / total
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1


def test_mnist_output_is_a_normalised_nchw_batch() -> None:
    tensor = preprocess(drawn_digit_seven(), MNIST)
    assert tensor.shape == (1, 1, 28, 28) and tensor.dtype == np.float32
    mean, std = MNIST.preprocess[-1].mean[0], MNIST.preprocess[-1].std[0]
    assert tensor.min() == pytest.approx((0 - mean) / std, abs=1e-5)


def test_size_and_colour_mode_do_not_change_what_the_network_sees() -> None:
    reference = _ink(prepare_image(drawn_digit_seven(200), MNIST))
    for image in (
        drawn_digit_seven(600),
        drawn_digit_seven(200, "L"),
        drawn_digit_seven(200, "RGBA"),
    ):
        assert np.abs(_ink(prepare_image(image, MNIST)) - reference).mean() < 12


def test_light_ink_on_black_is_not_inverted() -> None:
    dark = Image.eval(drawn_digit_seven(200, "L"), lambda v: 255 - v)
    reference = _ink(prepare_image(drawn_digit_seven(200, "L"), MNIST))
    assert np.abs(_ink(prepare_image(dark, MNIST)) - reference).mean() < 1


@pytest.mark.parametrize(("paper", "ink"), [(110, 20), (90, 0), (150, 250), (40, 140)])
def test_lighter_is_relative_to_the_ink_not_to_mid_grey(paper: int, ink: int) -> None:
    # dark ink on paper photographed in dim light (paper below 127) is still inverted; light
    # chalk on a mid-grey board (paper above 127) is not
    page = drawn_digit_seven(200, "L").point(lambda v: paper if v > 127 else ink)
    reference = _ink(prepare_image(drawn_digit_seven(200, "L"), MNIST))
    assert np.abs(_ink(prepare_image(page, MNIST)) - reference).mean() < 12


def test_transparent_background_is_laid_on_white_paper() -> None:
    rgba = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ink = drawn_digit_seven(200, "L").point(lambda v: 255 - v)  # alpha = ink
    rgba.putalpha(ink)
    assert np.asarray(to_mode(rgba, "L"))[0, 0] == 255
    reference = _ink(prepare_image(drawn_digit_seven(200), MNIST))
    assert np.abs(_ink(prepare_image(rgba, MNIST)) - reference).mean() < 12


def test_sixteen_bit_grayscale_is_scaled_not_clipped() -> None:
    eight = np.asarray(drawn_digit_seven(200, "L"), dtype=np.uint16)
    sixteen = Image.fromarray(eight * 257)  # mode I;16
    assert sixteen.mode.startswith("I")
    assert np.array_equal(np.asarray(to_mode(sixteen, "L")), eight.astype(np.uint8))


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "CMYK", "LA", "I", "F"])
def test_every_pil_mode_reaches_the_input_shape(mode: str) -> None:
    image = drawn_digit_seven(64).convert(mode)
    assert preprocess(image, MNIST).shape == (1, 1, 28, 28)
    assert preprocess(image, LEUKEMIA).shape == (1, 3, LEUKEMIA.height, LEUKEMIA.width)


@pytest.mark.parametrize("colour", [0, 128, 255])
def test_mnist_refuses_a_blank_image_as_no_content(colour: int) -> None:
    for image in (Image.new("RGB", (1, 1), (colour,) * 3), Image.new("L", (50, 50), colour)):
        with pytest.raises(NoContentError, match="looks blank") as refused:
            preprocess(image, MNIST)
        assert refused.value.status_code == 422 and refused.value.code == "no_content"


def test_faint_content_is_not_blank_and_a_one_pixel_dot_yields_a_tensor() -> None:
    faint = Image.new("L", (50, 50), 200)
    faint.paste(170, (20, 10, 30, 40))  # a light grey stroke on lighter paper
    dot = Image.new("L", (1, 2), 0)
    dot.putpixel((0, 0), 255)
    for image in (faint, dot):
        tensor = preprocess(image, MNIST)
        assert tensor.shape == (1, 1, 28, 28) and np.isfinite(tensor).all()


def test_models_without_the_step_answer_blank_images() -> None:
    tensor = preprocess(Image.new("RGB", (300, 200), "white"), LEUKEMIA)
    assert tensor.shape == (1, 3, LEUKEMIA.height, LEUKEMIA.width)


def test_leukemia_pipeline_resizes_rgb_and_standardises_per_channel() -> None:
    step = LEUKEMIA.preprocess[-1]
    mean_colour = tuple(round(m * 255) for m in step.mean)
    tensor = preprocess(Image.new("RGB", (300, 200), mean_colour), LEUKEMIA)
    assert tensor.shape == (1, 3, LEUKEMIA.height, LEUKEMIA.width)
    assert np.abs(tensor).max() < 0.05  # the mean colour maps to ~0 in every channel


def test_normalize_is_per_channel() -> None:
    image = Image.new("RGB", (2, 2), (255, 0, 51))
    step = LEUKEMIA.preprocess[-1].model_copy(update={"mean": [0.0] * 3, "std": [1.0, 1.0, 0.5]})
    array = normalize(image, step)
    assert array.shape == (3, 2, 2)
    assert array[:, 0, 0] == pytest.approx([1.0, 0.0, 0.4])
