"""Inference cost per image of the shipped mnist model against an earlier one (issue 13).

    PYTHONPATH=. .venv/bin/python -m bench.mnist_cost                # old = OLD_REV, ~30 s
    PYTHONPATH=. .venv/bin/python -m bench.mnist_cost --old-rev REV --rounds 30

The old `model.onnx` is taken from git (`git show REV:models/mnist/model.onnx`) into a
temporary folder that is deleted afterwards. Both models get the session model_api builds
(1 intra-op thread, no spinning, full graph optimisation) and the same inputs: the samples
through the served preprocessing. Each round times `--runs` session runs per model, the order
alternating between rounds; the figures are medians over rounds, and the new/old ratio is taken
per round (adjacent runs) and then its median. It also says whether the two graphs are the
same but for their weights (then any difference is noise). Writes results/mnist_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

from model_api.model_config import file_sha256, load_model_config
from model_api.preprocess import preprocess

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
OLD_REV = "865d3ca"  # the model trained on real MNIST only (a2a877dc...)
RESULT = ROOT / "bench" / "results" / "mnist_cost.json"


def session(path: Path) -> ort.InferenceSession:
    """A CPU session set up as model_api sets up its own (1 thread per worker)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def sample_inputs() -> list[np.ndarray]:
    """The mnist samples as the server feeds them to the network (batch of one each)."""
    config = load_model_config(MODELS, "mnist")
    labels = json.loads((MODELS / "mnist" / "samples" / "labels.json").read_text())
    inputs = []
    for name in sorted(labels):
        with Image.open(MODELS / "mnist" / "samples" / name) as image:
            inputs.append(preprocess(image, config))
    return inputs


def microseconds_per_image(
    sess: ort.InferenceSession, inputs: list[np.ndarray], runs: int
) -> float:
    """Mean wall time of one batch-of-one session run, over `runs` runs."""
    started = time.perf_counter()
    for i in range(runs):
        sess.run(["probabilities"], {"input": inputs[i % len(inputs)]})
    return (time.perf_counter() - started) / runs * 1e6


def graph_structure(path: Path) -> list:
    """The graph without its weights: node op types, and the shape of every initializer."""
    graph = onnx.load(str(path)).graph
    return [[n.op_type for n in graph.node], sorted(list(t.dims) for t in graph.initializer)]


def compare(old: Path, new: Path, rounds: int, runs: int) -> dict:
    """Interleaved rounds of old and new; medians and the per-round ratio new/old."""
    inputs = sample_inputs()
    sessions = {"old": session(old), "new": session(new)}
    for sess in sessions.values():  # warm-up
        microseconds_per_image(sess, inputs, runs // 4 + 1)
    per_round: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(rounds):
        for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
            per_round[name].append(microseconds_per_image(sessions[name], inputs, runs))
    ratios = [n / o for n, o in zip(per_round["new"], per_round["old"], strict=True)]
    return {
        "old_sha256": file_sha256(old),
        "new_sha256": file_sha256(new),
        "old_bytes": old.stat().st_size,
        "new_bytes": new.stat().st_size,
        "old_us_per_image_median": round(statistics.median(per_round["old"]), 2),
        "new_us_per_image_median": round(statistics.median(per_round["new"]), 2),
        "ratio_new_over_old_median": round(statistics.median(ratios), 4),
        "ratio_new_over_old_range": [round(min(ratios), 4), round(max(ratios), 4)],
        "same_graph_structure": graph_structure(old) == graph_structure(new),
        "rounds": rounds,
        "runs_per_round": runs,
        "us_per_image_by_round": {k: [round(v, 2) for v in vs] for k, vs in per_round.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: print the comparison and write it to --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the old model")
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--runs", type=int, default=2000, help="session runs per round")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mnist-old-") as folder:
        old = Path(folder) / "model.onnx"
        old.write_bytes(
            subprocess.run(
                ["git", "show", f"{args.old_rev}:models/mnist/model.onnx"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            ).stdout
        )
        result = compare(old, MODELS / "mnist" / "model.onnx", args.rounds, args.runs)
    result.update(
        {
            "old_rev": args.old_rev,
            "date": time.strftime("%Y-%m-%d"),
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        }
    )
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "us_per_image_by_round"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
