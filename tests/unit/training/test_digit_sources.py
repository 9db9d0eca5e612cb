"""The data beyond MNIST: font families held out whole, reproducible drawings, served views."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from harness import ROOT
from model_api.model_config import load_model_config
from model_api.preprocess import prepare_image
from training import digit_sources, fonts
from training.capture import MIN_CONTRAST, ink_and_paper, photograph
from training.confusion import confusion_matrix, write_confusion_png
from training.printed import PAGE_SIDES, add_bar, glyph_mask, render_printed
from training.strokes import SKELETONS, draw_strokes, render_canvas

MNIST = load_model_config(ROOT / "models", "mnist")


def test_heldout_families_are_whole_and_have_no_copy_in_training() -> None:
    files = fonts.font_files()
    held, trained = set(fonts.heldout_families()), set(fonts.training_families())
    assert held and not held & trained and held | trained == set(fonts.FAMILIES)
    assert len(trained) >= 15
    for family in held:
        for path in files[family]:  # no training family's pattern claims a held-out file
            assert not any(re.search(fonts.FAMILIES[t], path.name) for t in trained), path
    assert sum(len(files[f]) for f in trained) >= 150  # weights and italics included


def test_every_image_is_a_pure_function_of_its_seed() -> None:
    for source in digit_sources.SYNTHETIC:
        a = digit_sources.synthetic_image(source, digit_sources.TRAIN, 0, 17)
        b = digit_sources.synthetic_image(source, digit_sources.TRAIN, 0, 17)
        assert np.array_equal(np.asarray(a), np.asarray(b))
        other_view = digit_sources.synthetic_image(source, digit_sources.TRAIN, 0, 17, view=1)
        heldout = digit_sources.synthetic_image(source, digit_sources.HELDOUT, 0, 17)
        for image in (other_view, heldout):
            assert image.size != a.size or not np.array_equal(np.asarray(image), np.asarray(a))


def test_heldout_sets_are_balanced_and_served_views_have_ink() -> None:
    images, labels = digit_sources.heldout_set("printed", 60)
    assert np.bincount(labels).tolist() == [6] * 10
    low, high = PAGE_SIDES
    assert all(low <= side <= high for image in images for side in image.size)
    views, view_labels = digit_sources.training_views("canvas", 20, 0, MNIST)
    assert views.shape == (2, 20, 28, 28) and views.dtype == np.uint8
    assert view_labels.tolist() == [i % 10 for i in range(20)]
    assert (views.reshape(40, -1).max(1) > 200).all()


def test_a_seven_gets_a_bar_across_its_stem() -> None:
    path = fonts.font_files()["helvetica"][0]
    seven = glyph_mask(path, 7, 120)
    barred = add_bar(seven, np.random.default_rng(0))
    assert barred.size == seven.size
    gained = np.asarray(barred, dtype=int) - np.asarray(seven, dtype=int)
    rows = np.flatnonzero(gained.max(1) > 0)
    assert 0.3 * seven.height < rows.mean() < 0.7 * seven.height  # mid-height
    assert np.count_nonzero(gained.max(0)) > 0.3 * seven.width  # a real bar, not a dot


@pytest.mark.parametrize("digit", range(10))
def test_every_skeleton_draws_a_digit_the_served_pipeline_can_read(digit: int) -> None:
    for strokes in SKELETONS[digit]:
        coverage = draw_strokes(strokes, np.random.default_rng(digit))
        assert coverage.mode == "L" and np.asarray(coverage).max() == 255
        view = np.asarray(prepare_image(coverage, MNIST))
        assert view.shape == (28, 28) and view.max() > 200


def test_photographs_keep_ink_readable_in_every_format() -> None:
    for seed in range(40):
        rng = np.random.default_rng(seed)
        ink, paper = ink_and_paper(rng)
        luma = np.array([0.299, 0.587, 0.114])
        assert abs(float((ink - paper) @ luma)) >= MIN_CONTRAST
    coverage = glyph_mask(fonts.font_files()["times"][0], 3, 80)
    modes = {photograph(coverage, np.random.default_rng(s)).mode for s in range(30)}
    assert {"RGB", "L", "RGBA"} <= modes
    printed = render_printed(fonts.font_files()["courier"][0], 3, np.random.default_rng(1))
    canvas = render_canvas(3, np.random.default_rng(1))
    assert isinstance(printed, Image.Image) and canvas.size[0] == canvas.size[1]


def test_confusion_matrix_and_its_picture(tmp_path) -> None:
    matrix = confusion_matrix(np.array([0, 1, 1, 7]), np.array([0, 1, 7, 7]))
    assert matrix.sum() == 4 and matrix[1, 7] == 1 and matrix[7, 7] == 1
    path = tmp_path / "confusion.png"
    write_confusion_png({"a": matrix, "b": matrix}, path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 1.5 * image.height
