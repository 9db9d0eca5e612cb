"""Golden hashes of every preprocessing step, so a change to what a step computes shows up.

Each shipped model's pipeline (and an `extra` one for what they leave out) runs, step by step
through model_api/preprocess.py's own dispatch, over a fixed set of images; the SHA-256 of the
array after each step is pinned in golden_preprocess.json with `PREPROCESS_REVISION`.

    python -m tests.unit.model_api.golden_preprocess           # print what differs from the pin
    python -m tests.unit.model_api.golden_preprocess --write   # re-pin
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from harness.images import MODELS_DIR, drawn_digit_seven, samples
from model_api import preprocess
from model_api.errors import NoContentError
from model_api.model_config import ModelConfig, load_model_config

GOLDEN_FILE = Path(__file__).with_suffix(".json")
"""The pinned hashes."""

MODELS = ("mnist", "leukemia")
"""The shipped models whose pipelines and samples are pinned."""

SEED = 26
"""The only source of randomness (the tiny noise image)."""

NO_CONTENT = "NoContentError"
"""The outcome recorded for a step that refuses the image; the pipeline stops there."""


def extra_config() -> ModelConfig:
    """mnist's config in RGB, with other parameters and a `resize`: every step's 3-channel path
    and every op no shipped config uses (add a new op's step here, or, where that would change
    what the steps after it are pinned at, to a config of its own such as `paper_config`)."""
    data = load_model_config(MODELS_DIR, "mnist").model_dump()
    data["name"] = "extra"
    data["input"]["shape"] = [None, 3, 28, 28]
    data["preprocess"] = [
        {"op": "convert", "mode": "RGB"},
        {"op": "reject_blank", "min_range": 10},
        {"op": "invert_if_light_background", "border": 3},
        {"op": "autocontrast", "cutoff": 2.0},
        {"op": "crop_to_content", "threshold": 60},
        {"op": "fit_in_box", "size": 24},
        {"op": "center_by_mass", "size": 32},
        {"op": "resize", "width": 28, "height": 28},
        {"op": "normalize", "mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3]},
    ]
    return ModelConfig.model_validate(data)


def paper_config() -> ModelConfig:
    """mnist's config with the steps for photographed paper (model_api/paper.py) in front of
    `invert_if_light_background`, with other parameters than their defaults where it shows."""
    data = load_model_config(MODELS_DIR, "mnist").model_dump()
    data["name"] = "paper"
    at = [step["op"] for step in data["preprocess"]].index("invert_if_light_background")
    data["preprocess"][at:at] = [
        {"op": "even_light", "kernel": 0.1, "min_side": 32},
        {"op": "drop_surroundings", "darker_by": 0.3, "min_side": 32},
        {"op": "remove_rules", "length": 0.5, "min_side": 32},
        {"op": "keep_digit", "gap": 0.4, "min_side": 32},
    ]
    return ModelConfig.model_validate(data)


def configs() -> list[ModelConfig]:
    """The pipelines pinned: the shipped models', the `extra` one and the `paper` one."""
    return [
        *(load_model_config(MODELS_DIR, name) for name in MODELS),
        extra_config(),
        paper_config(),
    ]


def _stroke(size: tuple[int, int], background: int, ink: int) -> Image.Image:
    """A digit-like '2' drawn in `ink` on a `background` gray of the given size."""
    width, height = size
    image = Image.new("L", size, background)
    points = [(0.2, 0.3), (0.5, 0.1), (0.8, 0.3), (0.2, 0.9), (0.85, 0.9)]
    line = [(x * width, y * height) for x, y in points]
    ImageDraw.Draw(image).line(line, fill=ink, width=max(1, min(size) // 10))
    return image


def _paper_photo(squared: bool) -> Image.Image:
    """A 160x120 'photo' of a '4' on ruled (or squared) paper: the table along two edges, light
    falling off, specks and a piece of a rule; in L."""
    width, height = 160, 120
    page = Image.new("L", (width, height), 228)
    draw = ImageDraw.Draw(page)
    for y in range(8, height, 8 if squared else 11):
        draw.line([(0, y), (width, y + 2)], fill=165, width=1)
    if squared:
        for x in range(6, width, 8):
            draw.line([(x, 0), (x - 2, height)], fill=165, width=1)
    draw.line([(80, 20), (55, 70), (100, 70)], fill=40, width=3)
    draw.line([(84, 45), (83, 102)], fill=40, width=3)
    for x, y in [(20, 30), (130, 25), (140, 95), (30, 100), (115, 60)]:
        draw.rectangle([x, y, x + 1, y + 1], fill=90)
    draw.line([(110, 100), (140, 100)], fill=110, width=1)
    draw.polygon([(0, 0), (10, 0), (4, height), (0, height)], fill=90)  # the table
    draw.rectangle([0, height - 4, width, height], fill=90)
    ramp = np.linspace(1.0, 0.75, width)[None, :] * np.linspace(1.0, 0.9, height)[:, None]
    return Image.fromarray((np.asarray(page) * ramp).round().astype(np.uint8), "L")


def synthetic_images() -> dict[str, Image.Image]:
    """Hand-made images of awkward modes and sizes, the same on every run."""
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # transparent black: must read as white
    ImageDraw.Draw(rgba).line([(10, 10), (54, 10), (25, 56)], fill=(20, 20, 200, 255), width=6)
    ImageDraw.Draw(rgba).rectangle([40, 40, 60, 60], fill=(200, 30, 30, 128))
    blue = Image.new("RGB", (64, 64), (60, 120, 200))
    ImageDraw.Draw(blue).line([(12, 12), (52, 12), (26, 56)], fill=(10, 10, 10), width=5)
    palette = blue.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    palette_alpha = palette.copy()
    palette_alpha.info["transparency"] = int(np.asarray(palette)[0, 0])  # blue paper -> white
    ramp = np.linspace(0, 65535, 48 * 32).reshape(32, 48).astype("<u2")
    ramp[8:24, 20:28] = 1000  # a dark bar across a bright 16-bit gradient
    noise = np.random.default_rng(SEED).integers(0, 256, (5, 3, 3), dtype=np.uint8)
    return {
        "rgba_transparent": rgba,
        "palette": palette,
        "palette_transparent": palette_alpha,
        "i16_gradient": Image.frombytes("I;16", (48, 32), ramp.tobytes()),
        "tiny_3x5": Image.fromarray(noise),
        "wide_300x40": _stroke((300, 40), 230, 30),
        "light_background_digit": _stroke((90, 110), 215, 40),
        "drawn_seven": drawn_digit_seven(64),
        "dark_background_digit": _stroke((110, 90), 25, 235).convert("RGB"),
        "blank": Image.new("RGB", (40, 40), (128, 128, 128)),
        "paper_photo_ruled": _paper_photo(squared=False),
        "paper_photo_squared": _paper_photo(squared=True),
    }


def images() -> dict[str, Image.Image]:
    """The fixed image set: every shipped sample, then the synthetic ones."""
    found = {}
    for model in MODELS:
        for path, _label in samples(model):
            with Image.open(path) as image:
                found[f"{model}_sample:{path.name}"] = image.copy()
    found.update({f"synthetic:{name}": image for name, image in synthetic_images().items()})
    return found


def array_hash(array: np.ndarray) -> str:
    """SHA-256 of dtype, shape and C-order bytes: any change to one of them changes it."""
    digest = hashlib.sha256(f"{array.dtype.str};{array.shape};".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def step_hashes(image: Image.Image, config: ModelConfig) -> list[list[str]]:
    """[op, hash] after each step, as preprocess.py dispatches it; a refusal ends the list."""
    pixels, outcomes = image, []
    for index, step in enumerate(config.preprocess):
        last = index == len(config.preprocess) - 1
        try:
            if last:
                pixels = preprocess.normalize(pixels, step)  # type: ignore[arg-type]
            else:
                pixels = preprocess._IMAGE_STEPS[type(step)](pixels, step)
        except NoContentError:
            outcomes.append([step.op, NO_CONTENT])
            break
        outcomes.append([step.op, array_hash(pixels)])
    return outcomes


def compute() -> dict:
    """{"revision": PREPROCESS_REVISION, "hashes": {"<model>/<image>": [[op, hash], ...]}}."""
    fixed = images()
    hashes = {
        f"{config.name}/{name}": step_hashes(image, config)
        for config in configs()
        for name, image in fixed.items()
    }
    return {"revision": preprocess.PREPROCESS_REVISION, "hashes": hashes}


def load_pinned() -> dict:
    """The pinned golden file (empty if there is none yet)."""
    if not GOLDEN_FILE.is_file():
        return {"revision": None, "hashes": {}}
    return json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))


def differences(pinned: dict, current: dict) -> list[str]:
    """One line per model/image whose steps differ, naming the first step that changed."""
    old, new = pinned["hashes"], current["hashes"]
    lines = [f"{key}: not pinned" for key in sorted(new.keys() - old.keys())]
    lines += [f"{key}: pinned, no longer computed" for key in sorted(old.keys() - new.keys())]
    for key in sorted(old.keys() & new.keys()):
        before, after = old[key], new[key]
        for index, (was, now) in enumerate(zip(before, after, strict=False)):
            if was != now:
                lines.append(f"{key}: step {index} {now[0]!r} changed ({was[1]} -> {now[1]})")
                break
        else:
            if len(before) != len(after):
                lines.append(f"{key}: {len(before)} steps pinned, now {len(after)}")
    return lines


def write(result: dict) -> None:
    """Pin `result` as pretty JSON (sorted keys, indent 2, trailing newline)."""
    GOLDEN_FILE.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    """`--write` re-pins; otherwise print the differences and exit 1 if there are any."""
    current = compute()
    if "--write" in argv:
        write(current)
        print(f"pinned {len(current['hashes'])} pipelines in {GOLDEN_FILE}")
        return 0
    pinned = load_pinned()
    lines = differences(pinned, current)
    if pinned["revision"] != current["revision"]:
        lines.insert(0, f"revision: pinned {pinned['revision']}, now {current['revision']}")
    print("\n".join(lines) or "no differences from the pinned hashes")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
