"""Held-out evaluation of a model folder with ONNX Runtime, through the serving preprocessing.

    python -m training.evaluate mnist [--json] [--model-dir models/mnist] [--confusion PNG]
    python -m training.evaluate leukemia [--json] [--data-dir DIR]

The held-out data is regenerated deterministically (same split / seed as training), so the
figures can be compared with those in the model card. mnist is measured per source: real
MNIST, printed digits in held-out font families, canvas strokes from held-out seeds, and phone
photos of a digit on paper (held-out images, a third of them under held-out conditions).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from model_api.model_config import ModelConfig
from model_api.preprocess import normalize, preprocess
from training import digit_sources, leukemia_data, mnist_data, mnist_mix, phone_photos
from training.configs import read_config
from training.confusion import confusion_matrix, write_confusion_png

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
PHONE_N = 300  # held-out phone photos (training.phone_eval measures more, and per condition)


def open_session(model_dir: Path, config: ModelConfig) -> ort.InferenceSession:
    """A single-threaded CPU session on the folder's ONNX file (stable, comparable timings)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        str(model_dir / config.file), options, providers=["CPUExecutionProvider"]
    )


def predict(session: ort.InferenceSession, batch: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Probabilities for an (N, C, H, W) float32 batch."""
    outs = [
        session.run(["probabilities"], {"input": batch[i : i + chunk]})[0]
        for i in range(0, len(batch), chunk)
    ]
    return np.concatenate(outs)


def through_config(images: list[Image.Image], config: ModelConfig) -> np.ndarray:
    """Stack the served preprocessing of each image into one batch."""
    return np.concatenate([preprocess(image, config) for image in images])


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent, rounded to 2 decimals."""
    return round(100.0 * float((probs.argmax(1) == labels).mean()), 2)


def mnist_predictions(
    model_dir: Path,
    max_eval: int | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """source -> (labels, probabilities) on held-out data.

    `mnist_tensor` is the 1,000 held-out MNIST digits as tensors (normalisation only); every
    other source goes through the served preprocessing: `mnist` as 200x200 user PNGs, `printed`
    in font families never trained on, `canvas` drawn from seeds never trained on.
    """
    config = read_config(model_dir)
    session = open_session(model_dir, config)
    x, y = mnist_data.load_digits()
    _, held = mnist_data.stratified_split(y)
    held = held[:max_eval] if max_eval else held
    step = config.preprocess[-1]
    tensors = np.stack([normalize(Image.fromarray(d, "L"), step) for d in x[held]])
    rendered = [mnist_data.render_on_paper(d) for d in x[held]]
    out = {
        "mnist_tensor": (y[held], predict(session, tensors)),
        "mnist": (y[held], predict(session, through_config(rendered, config))),
    }
    for source in digit_sources.SYNTHETIC:
        n = min(max_eval, digit_sources.HELDOUT_N[source]) if max_eval else None
        images, labels = digit_sources.heldout_set(source, n)
        out[source] = (labels, predict(session, through_config(images, config)))
    n = min(max_eval, PHONE_N) if max_eval else PHONE_N
    photos = mnist_mix.served_phone_photos(range(n), phone_photos.HELDOUT_SEED, "heldout", config)
    tensors = np.stack([normalize(Image.fromarray(p, "L"), step) for p in photos])
    out["phone"] = (np.arange(n) % 10, predict(session, tensors))
    return out


def phone_conditions(n: int) -> dict[str, np.ndarray]:
    """Held-out condition (or "none") -> the indices of the first `n` held-out phone photos
    made under it."""
    names = np.array(
        [phone_photos.forced_heldout(i, "heldout", "mixed") or "none" for i in range(n)]
    )
    return {name: np.flatnonzero(names == name) for name in sorted(set(names))}


SOURCE_TITLES = {
    "mnist": "real MNIST",
    "printed": "printed, unseen font families",
    "canvas": "canvas strokes, unseen seeds",
    "phone": "phone photos, held out",
}


def evaluate_mnist(
    model_dir: Path, max_eval: int | None = None, confusion_png: Path | None = None
) -> dict:
    """Held-out accuracy per source (see mnist_predictions); optionally the confusion PNG."""
    predictions = mnist_predictions(model_dir, max_eval)
    labels, _ = predictions["mnist"]
    result = {
        "heldout_n": len(labels),
        "heldout_accuracy": accuracy(predictions["mnist_tensor"][1], labels),
        "rendered_png_accuracy": accuracy(predictions["mnist"][1], labels),
    }
    for source in digit_sources.SYNTHETIC:
        labels, probs = predictions[source]
        result[f"{source}_n"] = len(labels)
        result[f"{source}_accuracy"] = accuracy(probs, labels)
    labels, probs = predictions["phone"]
    result["phone_n"] = len(labels)
    result["phone_accuracy"] = accuracy(probs, labels)
    for name, idx in phone_conditions(len(labels)).items():
        result[f"phone_{name}_n"] = len(idx)
        result[f"phone_{name}_accuracy"] = accuracy(probs[idx], labels[idx])
    if confusion_png is not None:
        write_confusion_png(
            {
                f"{title} ({accuracy(probs, labels):.1f} %)": confusion_matrix(
                    labels, probs.argmax(1)
                )
                for source, title in SOURCE_TITLES.items()
                for labels, probs in [predictions[source]]
            },
            confusion_png,
        )
    return result


def evaluate_leukemia(
    model_dir: Path, data_dir: Path | None = None, n_test: int = leukemia_data.N_TEST
) -> dict:
    """Accuracy and per-class recall on the held-out synthetic set (or a real folder's split)."""
    config = read_config(model_dir)
    session = open_session(model_dir, config)
    if data_dir is None:
        images, labels = leukemia_data.synthetic(n_test, test=True)
        source = "synthetic"
    else:
        pairs = leukemia_data.folder_split(data_dir, config.labels, test=True)
        images = [leukemia_data.open_image(p) for p, _ in pairs]
        labels = [label for _, label in pairs]
        source = str(data_dir)
    y = np.asarray(labels)
    probs = predict(session, through_config(images, config))
    pred = probs.argmax(1)
    result = {"heldout_n": len(y), "heldout_accuracy": accuracy(probs, y), "data": source}
    for index, name in enumerate(config.labels):
        mask = y == index
        if mask.any():
            result[f"recall_{name}"] = round(100.0 * float((pred[mask] == index).mean()), 2)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: print the held-out figures (or JSON with --json)."""
    parser = argparse.ArgumentParser(description="Evaluate a model folder on its held-out set.")
    parser.add_argument("model", choices=["mnist", "leukemia"])
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="leukemia: real folder-per-class dataset (all/, hem/)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--confusion",
        type=Path,
        default=None,
        help="mnist: also write the per-source confusion-matrix PNG here",
    )
    args = parser.parse_args(argv)
    model_dir = args.model_dir or MODELS / args.model
    if args.model == "mnist":
        result = evaluate_mnist(model_dir, confusion_png=args.confusion)
    else:
        result = evaluate_leukemia(model_dir, args.data_dir)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
