"""How well a digit model reads phone photos of a handwritten digit on paper (issue 31).

    python -m training.phone_eval [--count 300] [--per-condition 100]
        [--config models/mnist/config.json] [--onnx models/mnist/model.onnx]
        [--json] [--save DIR]

The held-out photos of `training.phone_photos` go through what `POST /predict` does with
them: `model_api.imaging.open_image` / `load_image` (a JPEG is decoded at a reduced scale
when the model's input is much smaller), `model_api.preprocess.preprocess` with the model's
config, and an ONNX Runtime session. Printed: accuracy overall (held-out images of the
training conditions and whole held-out conditions), per held-out condition, per condition
taken one at a time (issue 31's table), per factor, the commonest confusions, and what the
decode and the preprocessing cost per 600 px photo (median, p95). A photo the preprocessing
refuses (`NoContentError`) counts as wrong ("rejected").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from model_api.config import Settings
from model_api.errors import MLServeError
from model_api.imaging import load_image, open_image
from model_api.model_config import ModelConfig, load_model_config
from model_api.preprocess import preprocess
from training import phone_photos

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "models" / "mnist" / "config.json"
CONDITIONS = {  # issue 31's table: one condition at a time, then all of them
    "clean": "plain paper, straight, even light (a clean scan)",
    "blur": "the same, blurred",
    "lines": "ruled or squared paper",
    "perspective": "perspective, with the table visible at the edges",
    "light": "uneven light or a shadow",
    "all": "all of it together (a real phone photo)",
}
TIMING_SIZE = (450, 600)  # a 3:4 portrait phone photo, 600 px high
FACTORS = ("source", "paper", "lines", "ink", "pen", "table")
REJECTED = -1


def read_config(path: Path) -> ModelConfig:
    """The model config at `path`, as model_api loads it (folder name = model name), or
    validated on its own when it lies elsewhere."""
    try:
        return load_model_config(path.parent.parent, path.parent.name)
    except (MLServeError, ValueError, OSError):
        return ModelConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))


def open_session(onnx: Path) -> ort.InferenceSession:
    """A single-threaded CPU session (stable, comparable timings)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])


def decode_as_served(data: bytes, target: tuple[int, int] | None) -> Image.Image:
    """The uploaded bytes decoded as model_api decodes them, with its default limits (a JPEG
    drafted down towards `target`, the model's input size, when given)."""
    fields = Settings.model_fields
    opened = open_image(
        data, fields["max_image_pixels"].default, fields["max_decode_bytes"].default, target
    )
    return load_image(opened, target)


class Served:
    """What model_api does with one uploaded image, step by step, timed."""

    def __init__(self, config: ModelConfig, session: ort.InferenceSession) -> None:
        self.config = config
        self.session = session
        self.target = (config.width, config.height)

    def decode(self, data: bytes, draft: bool = True):
        """The decoded image as model_api has it (a JPEG drafted down when `draft`)."""
        return decode_as_served(data, self.target if draft else None)

    def tensor(self, data: bytes) -> np.ndarray | None:
        """The network's input, or None when the preprocessing refuses the image."""
        try:
            return preprocess(self.decode(data), self.config)
        except MLServeError:
            return None

    def predict(self, photos: list[tuple[bytes, int, dict]]) -> np.ndarray:
        """The predicted label of each photo (REJECTED where preprocessing refused it)."""
        tensors = [self.tensor(data) for data, _, _ in photos]
        kept = [t for t in tensors if t is not None]
        predicted = np.full(len(photos), REJECTED)
        if kept:
            batch = np.concatenate(kept)
            name = self.config.input.name
            probs = np.concatenate(
                [
                    self.session.run(None, {name: batch[i : i + 256]})[0]
                    for i in range(0, len(batch), 256)
                ]
            )
            predicted[[i for i, t in enumerate(tensors) if t is not None]] = probs.argmax(1)
        return predicted


def _score(labels: np.ndarray, predicted: np.ndarray) -> dict:
    right = round(100.0 * float((labels == predicted).mean()), 1) if len(labels) else None
    return {
        "n": int(len(labels)),
        "accuracy": right,
        "rejected": int((predicted == REJECTED).sum()),
    }


def confusions(labels: np.ndarray, predicted: np.ndarray, top: int = 8) -> list[list]:
    """The commonest mistakes: [true label, predicted label ("rejected"), count]."""
    counts = Counter((int(t), int(p)) for t, p in zip(labels, predicted, strict=True) if t != p)
    return [[t, "rejected" if p == REJECTED else p, n] for (t, p), n in counts.most_common(top)]


def timings(served: Served, count: int, seed: int) -> dict:
    """Milliseconds per 600 px photo: decode as served (drafted), preprocess as served, and
    preprocess of the full-size decode (what the steps cost on a 600 px image)."""
    photos = phone_photos.photo_set(seed, count, "heldout", "all", start=10_000, size=TIMING_SIZE)
    times: dict[str, list[float]] = {
        "decode_ms": [],
        "preprocess_ms": [],
        "preprocess_full_size_ms": [],
    }
    for data, _, _ in photos[:3]:  # warm up
        served.tensor(data)
    for data, _, _ in photos:
        start = time.perf_counter()
        decoded = served.decode(data)
        times["decode_ms"].append((time.perf_counter() - start) * 1e3)
        full = served.decode(data, draft=False)
        for key, image in (("preprocess_ms", decoded), ("preprocess_full_size_ms", full)):
            start = time.perf_counter()
            with contextlib.suppress(MLServeError):
                preprocess(image, served.config)
            times[key].append((time.perf_counter() - start) * 1e3)
    drafted = served.decode(photos[0][0]).size
    out: dict = {"photo_size": list(TIMING_SIZE), "served_decode_size": list(drafted), "n": count}
    for key, values in times.items():
        out[key] = {
            "median": round(float(np.median(values)), 2),
            "p95": round(float(np.percentile(values, 95)), 2),
        }
    return out


def evaluate(
    config_path: Path,
    onnx: Path,
    count: int = 300,
    per_condition: int = 100,
    seed: int = phone_photos.HELDOUT_SEED,
    timing_count: int = 50,
    save: Path | None = None,
    save_per_set: int = 2,
) -> dict:
    """Every figure of the module docstring, as one JSON-ready dict."""
    config = read_config(config_path)
    served = Served(config, open_session(onnx))
    sets = {"overall": phone_photos.photo_set(seed, count, "heldout", "mixed")}
    for scenario in CONDITIONS:
        sets[scenario] = phone_photos.photo_set(seed, per_condition, "heldout", scenario)
    results = {
        name: (np.array([label for _, label, _ in photos]), served.predict(photos))
        for name, photos in sets.items()
    }
    labels, predicted = results["overall"]
    overall = sets["overall"]
    result: dict = {
        "config": str(config_path),
        "onnx": str(onnx),
        "seed": seed,
        "overall": _score(labels, predicted),
    }
    groups: dict[str, list[int]] = {}
    for i, (_, _, conditions) in enumerate(overall):
        groups.setdefault(conditions["heldout_condition"] or "none", []).append(i)
    result["heldout_conditions"] = {
        name: _score(labels[idx], predicted[idx]) for name, idx in sorted(groups.items())
    }
    result["conditions"] = {
        name: {"title": title, **_score(*results[name])} for name, title in CONDITIONS.items()
    }
    by_factor: dict[str, dict] = {}
    for factor in FACTORS:
        values: dict[str, list[int]] = {}
        for i, (_, _, conditions) in enumerate(overall):
            values.setdefault(str(conditions[factor]), []).append(i)
        by_factor[factor] = {
            v: _score(labels[idx], predicted[idx])["accuracy"] for v, idx in sorted(values.items())
        }
    result["by_factor"] = by_factor
    everything = np.concatenate([r[0] for r in results.values()])
    result["confusions"] = confusions(labels, predicted)
    result["confusions_all_sets"] = confusions(
        everything, np.concatenate([r[1] for r in results.values()])
    )
    if timing_count:
        result["timing"] = timings(served, timing_count, seed)
    if save is not None:
        result["saved"] = save_photos(save, sets, results, save_per_set)
    return result


def save_photos(folder: Path, sets: dict, results: dict, per_set: int) -> list[str]:
    """Write the first `per_set` photos of every set as JPEG (their own bytes) and their
    conditions and predictions as conditions.json."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict] = {}
    for name, photos in sets.items():
        for i, (data, label, conditions) in enumerate(photos[:per_set]):
            got = int(results[name][1][i])
            file = f"{name}_{i:03d}_digit{label}_read{'X' if got == REJECTED else got}.jpg"
            (folder / file).write_bytes(data)
            written[file] = {**conditions, "predicted": got}
    (folder / "conditions.json").write_text(json.dumps(written, indent=1), encoding="utf-8")
    return sorted(written)


def report(result: dict) -> str:
    """The figures as text."""
    o = result["overall"]
    lines = [
        f"phone photos, held out ({result['onnx']}, {result['config']})",
        f"overall: {o['accuracy']} % of {o['n']} (rejected {o['rejected']})",
        "",
        "per held-out condition (overall set):",
    ]
    for name, s in result["heldout_conditions"].items():
        title = "training conditions, held-out images" if name == "none" else name
        lines.append(f"  {title:<40} {s['accuracy']:>5} %  of {s['n']}")
    lines += ["", "one condition at a time:", f"  {'condition':<52} {'right':>7}"]
    for s in (result["conditions"][name] for name in CONDITIONS):
        lines.append(
            f"  {s['title']:<52} {s['accuracy']:>5} %  of {s['n']}"
            + (f" (rejected {s['rejected']})" if s["rejected"] else "")
        )
    lines += ["", "per factor (overall set):"]
    for factor, values in result["by_factor"].items():
        lines.append(f"  {factor}: " + ", ".join(f"{v} {a} %" for v, a in values.items()))
    pairs = ", ".join(f"{t}->{p} x{n}" for t, p, n in result["confusions_all_sets"])
    lines += ["", f"commonest confusions (true->read, all sets): {pairs}"]
    if "timing" in result:
        t = result["timing"]
        size = "x".join(map(str, t["photo_size"]))
        drafted = "x".join(map(str, t["served_decode_size"]))
        lines += ["", f"per {size} photo ({t['n']} photos), ms median / p95:"]
        for key, label in (
            ("decode_ms", f"decode as served (to {drafted})"),
            ("preprocess_ms", f"preprocess as served ({drafted})"),
            ("preprocess_full_size_ms", f"preprocess of the full {size}"),
        ):
            lines.append(f"  {label:<40} {t[key]['median']:>7} / {t[key]['p95']}")
    if "saved" in result:
        lines += ["", f"saved {len(result['saved'])} photos"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300, help="photos in the overall set")
    parser.add_argument(
        "--per-condition", type=int, default=100, help="photos per condition of issue 31's table"
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument(
        "--onnx", type=Path, default=None, help="default: the config's file next to the config"
    )
    parser.add_argument("--seed", type=int, default=phone_photos.HELDOUT_SEED)
    parser.add_argument("--timing", type=int, default=50, help="600 px photos timed (0: none)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--save",
        type=Path,
        default=None,
        help="write a few photos of every set (JPEG) and conditions.json here",
    )
    parser.add_argument("--save-per-set", type=int, default=2)
    args = parser.parse_args(argv)
    onnx = args.onnx or args.config.parent / read_config(args.config).file
    result = evaluate(
        args.config,
        onnx,
        args.count,
        args.per_condition,
        args.seed,
        args.timing,
        args.save,
        args.save_per_set,
    )
    print(json.dumps(result, sort_keys=True) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
