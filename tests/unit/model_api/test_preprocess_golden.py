"""What each preprocessing step computes is pinned (golden_preprocess.json), so a change to it
cannot ship without bumping PREPROCESS_REVISION, which retires the old cache entries."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from harness.images import MODELS_DIR
from mlserve_common.stdlib_only.model_folders import available_models
from model_api import preprocess
from model_api.errors import NoContentError
from model_api.model_config import AutocontrastStep, PreprocessStep, load_model_config
from tests.unit.model_api import golden_preprocess as golden

REPIN = "`python -m tests.unit.model_api.golden_preprocess --write`"


@pytest.fixture(scope="module")
def pinned() -> dict:
    """The pinned golden file."""
    return golden.load_pinned()


@pytest.fixture(scope="module")
def current() -> dict:
    """Today's hashes, computed once for the module."""
    return golden.compute()


def test_every_step_computes_what_is_pinned(pinned: dict, current: dict) -> None:
    """Unchanged revision, unchanged hashes: a changed step must come with a bump."""
    if current["revision"] != pinned["revision"]:
        pytest.skip("PREPROCESS_REVISION changed: see test_golden_file_pinned_at_revision")
    changed = golden.differences(pinned, current)
    assert not changed, (
        "\n".join(changed) + "\n\na preprocessing step now computes something else: bump "
        "PREPROCESS_REVISION in model_api/preprocess.py (it is part of every model's digest, "
        f"so old cache entries stop answering) and re-pin with {REPIN}"
    )


def test_golden_file_pinned_at_revision(pinned: dict) -> None:
    """A bumped PREPROCESS_REVISION is re-pinned in the same change."""
    assert pinned["revision"] == preprocess.PREPROCESS_REVISION, (
        f"PREPROCESS_REVISION is {preprocess.PREPROCESS_REVISION} but golden_preprocess.json "
        f"was pinned at revision {pinned['revision']}: re-pin the golden file in the same "
        f"change with {REPIN}"
    )


def _union_ops() -> set[str]:
    """Every `op` of the PreprocessStep union, read from the pydantic models themselves."""
    union = typing.get_args(PreprocessStep)[0]
    return {
        op for step in typing.get_args(union) for op in step.model_fields["op"].annotation.__args__
    }


def test_golden_set_covers_every_step_op(current: dict) -> None:
    """Every op, of the shipped configs and of the union, is hashed somewhere (not refused)."""
    outcomes = [pair for steps in current["hashes"].values() for pair in steps]
    hashed = {op for op, outcome in outcomes if outcome != golden.NO_CONTENT}
    shipped = {
        step.op
        for name in available_models(MODELS_DIR)
        for step in load_model_config(MODELS_DIR, name).preprocess
    }
    missing = (_union_ops() | shipped) - hashed
    assert not missing, f"no golden hash for {sorted(missing)}: add it to golden.extra_config()"
    assert [op for op, outcome in outcomes if outcome == golden.NO_CONTENT], "no refusal pinned"


def test_steps_add_up_to_what_is_served() -> None:
    """The step-by-step run ends in exactly the tensor `preprocess()` serves."""
    images = golden.images().values()
    for config in golden.configs():
        for image in images:
            try:
                served = golden.array_hash(preprocess.preprocess(image, config)[0])
            except NoContentError:
                served = golden.NO_CONTENT
            assert golden.step_hashes(image, config)[-1][1] == served


def test_guard_reports_a_changed_step(pinned: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that computes one more than it did is reported, by name, as the first change."""
    autocontrast = preprocess._IMAGE_STEPS[AutocontrastStep]

    def off_by_one(pixels: np.ndarray, step: AutocontrastStep) -> np.ndarray:
        return autocontrast(pixels, step) + np.uint8(1)

    monkeypatch.setitem(preprocess._IMAGE_STEPS, AutocontrastStep, off_by_one)
    changed = golden.differences(pinned, golden.compute())
    assert changed
    assert all("'autocontrast' changed" in line for line in changed), changed
    assert any(line.startswith("mnist/") for line in changed)
