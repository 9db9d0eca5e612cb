"""What a batch saves per image on this machine's CPU: one shipped model's session, run at
several batch sizes with the threads a model_api worker gets, interleaved rounds, medians.

Dynamic batching pays where a run's fixed cost (or an idle accelerator) dominates: when the
time per image falls as the batch grows. Where it stays flat, batching cannot speed up a
server, whatever its queue does; and the session run is only part of a request's work
(decode, preprocess, HTTP, the cache), which bounds the gain further.

    PYTHONPATH=. .venv/bin/python -m bench.batch_cost [--model leukemia] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model_api.model_config import load_model_config

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 2, 4, 8, 16, 32)


def session(model: str, threads: int) -> tuple[ort.InferenceSession, str, tuple[int, ...]]:
    config = load_model_config(ROOT / "models", model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        str(ROOT / "models" / model / config.file), options, providers=["CPUExecutionProvider"]
    )
    return sess, config.input.name, (config.channels, config.height, config.width)


def microseconds_per_image(sess, name: str, batch: np.ndarray, images: int) -> float:
    runs = max(3, images // len(batch))
    start = time.perf_counter()
    for _ in range(runs):
        sess.run(None, {name: batch})
    return (time.perf_counter() - start) / (runs * len(batch)) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="leukemia")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=400, help="images per size per round")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/batch_cost.json")
    args = parser.parse_args()
    sess, name, shape = session(args.model, args.threads)
    rng = np.random.default_rng(0)
    batches = {n: rng.standard_normal((n, *shape)).astype(np.float32) for n in SIZES}
    for batch in batches.values():
        sess.run(None, {name: batch})  # warm-up
    per_round: dict[int, list[float]] = {n: [] for n in SIZES}
    for r in range(args.rounds):
        order = SIZES if r % 2 == 0 else tuple(reversed(SIZES))
        for n in order:
            per_round[n].append(microseconds_per_image(sess, name, batches[n], args.images))
    medians = {n: statistics.median(v) for n, v in per_round.items()}
    best = min(medians.values())
    result = {
        "model": args.model,
        "intra_op_threads": args.threads,
        "rounds": args.rounds,
        "us_per_image_median": {str(n): round(v, 1) for n, v in medians.items()},
        "us_per_image_by_round": {str(n): [round(x, 1) for x in v] for n, v in per_round.items()},
        "best_batch_saving_vs_1": round(1 - best / medians[1], 3),
        "date": time.strftime("%Y-%m-%d"),
        "onnxruntime": ort.__version__,
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
    }
    for n in SIZES:
        print(f"batch {n:3d}: {medians[n]:8.1f} us/image  ({medians[n] / medians[1]:.2f}x batch 1)")
    print(f"the best batch saves {result['best_batch_saving_vs_1']:.0%} of a batch-1 run per image")
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
