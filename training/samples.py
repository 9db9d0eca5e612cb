"""Write `samples/` for a model: a few user-style images and `labels.json` (file -> label).

MNIST samples are held-out digits (never trained on) drawn the way users send them: dark ink on
light paper, many sizes, RGB / RGBA / grayscale, PNG / JPEG / BMP; and three forms MNIST lacks,
from font families and seeds never trained on (a printed `1`, a printed `7` with a bar, an open
`4` drawn on the canvas), and two phone photos of a digit written on ruled and on squared
paper (`training.phone_photos`, a seed neither training nor evaluation draws). Their names sort
after the digits, so tests indexing the first ten keep their images. Leukemia samples are
typical synthetic cells from an index range used neither for training nor for the held-out
figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from training import fonts, leukemia_data, mnist_data, phone_photos
from training.capture import lay_ink
from training.printed import add_bar, glyph_mask
from training.strokes import SKELETONS, draw_strokes
from training.synth_leukemia import LABELS, make_image

SAMPLE_OFFSET = 2_000_000
PHONE_SEED = 7  # neither training (0) nor the held-out figures (phone_photos.HELDOUT_SEED)
PHONE_SAMPLES = (("ruled", 2), ("squared", 5))  # (paper's lines, digit)


def _ink(digit: np.ndarray, size: int) -> Image.Image:
    """Ink coverage (0 paper .. 255 full ink) of a digit scaled to `size` pixels."""
    return Image.fromarray(digit, "L").resize((size, size), Image.Resampling.BICUBIC)


def _on_paper(
    ink: Image.Image,
    page: tuple[int, int],
    at: tuple[int, int],
    paper=(255, 255, 255),
    pen=(0, 0, 0),
) -> Image.Image:
    """Lay `ink` coverage at `at` on an RGB page of colour `paper` with pen colour `pen`."""
    coverage = Image.new("L", page, 0)
    coverage.paste(ink, at)
    alpha = np.asarray(coverage, dtype=np.float64)[..., None] / 255.0
    rgb = (1 - alpha) * np.asarray(paper, dtype=np.float64) + alpha * np.asarray(pen)
    return Image.fromarray(rgb.round().astype(np.uint8), "RGB")


def mnist_samples() -> list[tuple[str, Image.Image, str]]:
    """(file name, image, label) for one held-out digit of each class, each drawn differently."""
    x, y = mnist_data.load_digits()
    _, held = mnist_data.stratified_split(y)
    d = {c: x[held[y[held] == c][0]] for c in range(10)}
    rng = np.random.default_rng(5)
    noisy = np.clip(rng.normal(238, 6, (768, 1024, 3)), 0, 255).astype(np.uint8)
    big = _on_paper(_ink(d[6], 300), (1024, 768), (400, 200), pen=(20, 20, 30))
    big = Image.fromarray(np.minimum(np.asarray(big), noisy))
    ink2 = Image.new("L", (256, 256), 0)
    ink2.paste(_ink(d[2], 200), (28, 28))
    rgba = Image.merge("RGBA", (*Image.new("RGB", (256, 256), (0, 0, 0)).split(), ink2))
    return [
        ("0_rgb_200.png", mnist_data.render_on_paper(d[0]), "0"),
        (
            "1_gray_640x480_offcentre.png",
            _on_paper(_ink(d[1], 150), (640, 480), (420, 60), paper=(235,) * 3).convert("L"),
            "1",
        ),
        ("2_rgba_transparent.png", rgba, "2"),
        (
            "3_blue_pen_yellow_paper.jpg",
            _on_paper(_ink(d[3], 220), (300, 300), (40, 40), (250, 244, 215), (20, 40, 140)),
            "3",
        ),
        ("4_gray_120x160.bmp", _on_paper(_ink(d[4], 100), (120, 160), (10, 30)).convert("L"), "4"),
        (
            "5_thick_marker.png",
            _on_paper(_ink(d[5], 240).filter(ImageFilter.MaxFilter(9)), (300, 300), (30, 30)),
            "5",
        ),
        ("6_large_scan_1024x768.png", big, "6"),
        ("7_tiny_48.png", _on_paper(_ink(d[7], 40), (48, 48), (4, 4)).convert("L"), "7"),
        (
            "8_rotated.png",
            _on_paper(_ink(d[8], 200).rotate(8, Image.Resampling.BICUBIC), (240, 240), (20, 20)),
            "8",
        ),
        (
            "9_pencil_400x300.png",
            _on_paper(_ink(d[9], 220), (400, 300), (90, 40), pen=(90, 90, 90)).convert("L"),
            "9",
        ),
    ]


def _font(family: str, name: str) -> Path:
    return next(p for p in fonts.font_files()[family] if p.name == name)


def _printed_page(
    mask: Image.Image, page: tuple[int, int], at: tuple[int, int], paper: tuple, pen: tuple
) -> Image.Image:
    coverage = Image.new("L", page, 0)
    coverage.paste(mask, at)
    return lay_ink(coverage, np.asarray(pen, float), np.asarray(paper, float))


def beyond_mnist_samples() -> list[tuple[str, Image.Image, str]]:
    """What MNIST lacks, from font families and seeds never trained on: a printed `1` with flag
    and foot, a printed `7` with a bar, a `4` drawn open on the canvas (transparent PNG)."""
    one = glyph_mask(_font("caladea", "Caladea-Regular.ttf"), 1, 150).rotate(
        -4, Image.Resampling.BICUBIC, expand=True
    )
    photo = _printed_page(one, (260, 220), (90, 30), (226, 222, 210), (35, 35, 40))
    photo = photo.filter(ImageFilter.GaussianBlur(0.8))
    seven = add_bar(
        glyph_mask(_font("carlito", "Carlito-Bold.ttf"), 7, 110), np.random.default_rng(7)
    )
    barred = _printed_page(seven, (180, 160), (50, 25), (250, 240, 190), (30, 50, 150))
    rng = np.random.default_rng(4_000_004)  # a seed neither training nor evaluation draws
    coverage = draw_strokes(SKELETONS[4][1], rng)
    canvas = Image.new("RGBA", coverage.size, (0, 0, 0, 0))
    canvas.putalpha(coverage)
    return [
        ("printed_1_flag_and_foot_photo.jpg", photo, "1"),
        ("printed_7_with_bar_blue_ink.png", barred, "7"),
        ("canvas_4_open_transparent.png", canvas, "4"),
    ]


def phone_samples() -> list[tuple[str, bytes, str]]:
    """Two phone photos as a user takes them (every condition at once: the table at an edge,
    perspective, uneven light, JPEG), of digits on ruled and on squared paper: the first
    photos of their digit with those lines, as JPEG bytes, not re-encoded."""
    out = []
    for lines, digit in PHONE_SAMPLES:
        for index in range(digit, 10_000, 10):
            data, label, conditions = phone_photos.photo(PHONE_SEED, index, "heldout", "all")
            if conditions["lines"] == lines and conditions["table"] != "none":
                out.append((f"phone_{label}_{lines}_paper.jpg", data, str(label)))
                break
    return out


def leukemia_samples() -> list[tuple[str, Image.Image, str]]:
    """(file name, image, label): four unseen, typical synthetic cells per class, some JPEG."""
    out = []
    for i in range(8):
        label = i % 2
        image, _ = make_image(
            leukemia_data.SYNTH_SEED, SAMPLE_OFFSET + i, label=label, typical=True
        )
        name = LABELS[label]
        if i in (2, 3):
            image = image.resize((256, 256), Image.Resampling.BICUBIC)
        suffix = "jpg" if i in (4, 5) else "png"
        out.append((f"{name}_{i // 2 + 1}.{suffix}", image, name))
    return out


def write_samples(name: str, model_dir: Path) -> None:
    """(Re)write `model_dir/samples/` with images and labels.json."""
    folder = model_dir / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    items = (
        mnist_samples() + beyond_mnist_samples() + phone_samples()
        if name == "mnist"
        else leukemia_samples()
    )
    labels = {}
    for file_name, image, label in items:
        if isinstance(image, bytes):  # already encoded
            (folder / file_name).write_bytes(image)
        else:
            options = {"quality": 90} if file_name.endswith(".jpg") else {}
            image.save(folder / file_name, **options)
        labels[file_name] = label
    (folder / "labels.json").write_text(json.dumps(labels, indent=2) + "\n", encoding="utf-8")
