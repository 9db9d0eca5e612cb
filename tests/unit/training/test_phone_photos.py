"""Phone photos of a handwritten digit (issue 31): reproducible, every condition drawn,
held-out conditions and digits never in training, the promised size, mode and labels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from training import mnist_data, phone_photos
from training.phone_photos import (
    HELDOUT_CONDITIONS,
    draw_conditions,
    heldout_condition,
    photo,
    photo_set,
)


@pytest.fixture(scope="module")
def train_photos():
    return photo_set(0, 12, "train")


@pytest.fixture(scope="module")
def heldout_photos():
    # the first photos of blocks 0-5: training conditions, then each held-out condition
    return [
        photo(phone_photos.HELDOUT_SEED, b * 10 + i, "heldout") for b in range(6) for i in (0, 1)
    ]


def _draws(split: str, scenario: str, n: int) -> list[dict]:
    return [
        draw_conditions(phone_photos._rng(0, i, split, scenario), split, scenario) for i in range(n)
    ]


def test_a_photo_is_a_pure_function_of_seed_index_split_scenario(train_photos) -> None:
    again = photo_set(0, 3, "train")
    assert [p[0] for p in again] == [p[0] for p in train_photos[:3]]
    assert [p[2] for p in again] == [p[2] for p in train_photos[:3]]
    assert photo(0, 5, "train")[0] == train_photos[5][0]  # however the set is cut
    assert photo(1, 0, "train")[0] != train_photos[0][0]
    assert photo(0, 0, "heldout")[0] != train_photos[0][0]
    assert photo(0, 0, "train", "clean")[0] != train_photos[0][0]


def test_every_condition_shows_up() -> None:
    mixed = _draws("train", "mixed", 400)
    for key, values in (
        ("source", phone_photos.SOURCES),
        ("paper", phone_photos.PAPERS),
        ("ink", phone_photos.INKS),
        ("pen", phone_photos.PENS),
        ("lines", phone_photos.LINES),
        ("table", (*phone_photos.TRAIN_TABLES, "none")),
        ("light_kind", ("even", "linear", "radial")),
        ("margin", (True, False)),
        ("colour_cast", (True, False)),
    ):
        assert {c[key] for c in mixed} == set(values), key
    for key in ("perspective", "light", "shadow", "blur", "specks"):
        values = [c[key] for c in mixed]
        assert 0 in values and max(values) > 0, key
    qualities = {c["jpeg_quality"] for c in mixed}
    assert min(qualities) == 55 and max(qualities) == 90


def test_each_scenario_isolates_its_condition() -> None:
    for scenario in phone_photos.SCENARIOS[1:]:
        for c in _draws("heldout", scenario, 60):
            assert (c["lines"] != "plain") == (scenario in ("lines", "all")), scenario
            assert (c["perspective"] > 0) == (scenario in ("perspective", "all")), scenario
            assert (c["table"] != "none") == (c["perspective"] > 0)
            assert (c["blur"] > 0) == (scenario in ("blur", "all")), scenario
            uneven = c["light"] > 0 or c["shadow"] > 0
            assert uneven == (scenario in ("light", "all")), scenario


def test_heldout_conditions_never_in_training(train_photos, heldout_photos) -> None:
    for scenario in phone_photos.SCENARIOS:
        for c in _draws("train", scenario, 300):
            assert heldout_condition(c) is None
            assert c["table"] != "slate"
    assert all(c["heldout_condition"] is None for _, _, c in train_photos)
    seen = {c["heldout_condition"] for _, _, c in heldout_photos}
    assert seen == {None, *HELDOUT_CONDITIONS}
    for _, _, c in heldout_photos:
        if c["heldout_condition"]:
            wanted = HELDOUT_CONDITIONS[c["heldout_condition"]]
            assert {k: c[k] for k in wanted} == wanted
    with pytest.raises(ValueError):
        draw_conditions(np.random.default_rng(0), "train", "mixed", "slate_table")


def test_heldout_mnist_digits_never_ink_training_photos(train_photos, heldout_photos) -> None:
    _, y = mnist_data.load_digits()
    train, held = mnist_data.stratified_split(y)
    pools = {
        s: np.concatenate(list(phone_photos.mnist_pools(s).values())) for s in ("train", "heldout")
    }
    assert set(pools["train"]) == set(train) and set(pools["heldout"]) == set(held)
    for photos, allowed in ((train_photos, set(train)), (heldout_photos, set(held))):
        used = [c["source_index"] for _, _, c in photos if c["source"] == "mnist"]
        assert used and set(used) <= allowed


def test_photos_are_jpegs_of_the_promised_size_and_mode(train_photos, heldout_photos) -> None:
    for data, _, c in train_photos + heldout_photos:
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG" and image.mode == "RGB"
        assert list(image.size) == c["size"]
        assert all(300 <= side <= 600 for side in image.size)
        assert 55 <= c["jpeg_quality"] <= 90
        x0, y0, x1, y1 = c["digit_box"]
        assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height
        assert 0.15 <= c["digit_height_fraction"] <= 0.65
        assert (c["table_fraction"] > 0) == (c["table"] != "none")
    sized = photo(0, 0, "heldout", "all", size=(450, 600))
    assert Image.open(io.BytesIO(sized[0])).size == (450, 600)


def test_labels_are_right(train_photos, heldout_photos) -> None:
    _, y = mnist_data.load_digits()
    for i, (_, label, c) in enumerate(train_photos):
        assert label == c["label"] == i % 10 == c["index"] % 10
    for _, label, c in train_photos + heldout_photos:
        if c["source"] == "mnist":
            assert y[c["source_index"]] == label
        else:
            assert 0 <= c["source_index"] < len(phone_photos.SKELETONS[label])


def test_the_digit_is_ink_on_paper(heldout_photos) -> None:
    """The digit's box holds pixels clearly darker than the paper around them."""
    for data, _, c in heldout_photos:
        gray = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float64)
        x0, y0, x1, y1 = c["digit_box"]
        box = gray[y0:y1, x0:x1]
        assert np.percentile(box, 95) - np.percentile(box, 2) > 40


def test_phone_eval_runs_the_served_path(tmp_path) -> None:
    from training import phone_eval

    config = phone_eval.DEFAULT_CONFIG
    result = phone_eval.evaluate(
        config,
        config.parent / "model.onnx",
        count=4,
        per_condition=1,
        timing_count=2,
        save=tmp_path,
        save_per_set=1,
    )
    assert result["overall"]["n"] == 4
    assert set(result["conditions"]) == set(phone_eval.CONDITIONS)
    assert all(0 <= s["accuracy"] <= 100 for s in result["conditions"].values())
    assert result["timing"]["photo_size"] == [450, 600]
    assert len(result["saved"]) == 7 and (tmp_path / "conditions.json").is_file()
    assert "one condition at a time" in phone_eval.report(result)
