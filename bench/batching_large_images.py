"""leukemia's dynamic batching, on and off, with images larger than the peers' 64x64 cells.

In `bench.peers` the leukemia images are 64x64: small enough to be decoded on model_api's
event loop, where an image meets an idle batcher and runs alone, so "batching on" hardly
forms a batch. A microscope's images are larger. Larger images are decoded in threads, a
queue forms, and batches with it, on both sides of the comparison alike. This measures
that case through :5000, on the full stack as a user starts it (`./start_all.sh cli
leukemia`): as shipped (batching on), and with a copy of models/ whose leukemia config lacks
`batching`. Rounds interleave the two, every image is new, medians of rounds:

    PYTHONPATH=. .venv/bin/python -m bench.batching_large_images [--size 256] [--rounds 3]

The images are the shipped leukemia samples scaled to `--size`, each made unique by one
row of noise and one column of its index (made once, kept in bench/.work/packs: about 510 MB
at 256x256). Every start of the stack has a new, empty Redis, so each start takes the same
images again, and never one twice.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import statistics
import struct
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.load.wrk import SliceAllocator, run_wrk
from bench.peers.mlserve_stack import MLServeStack
from bench.peers.pack import PACK_DIR, WORK_DIR, Pack, load_pack
from harness import MODELS_DIR, ROOT
from harness.metrics import metric
from harness.model_copies import copy_with_batching

MODEL = "leukemia"
SEED = 20261203
PER_SECOND_MANY, PER_SECOND_ONE = 500, 300
"""Images a load's slice holds per second, with --clients and with one client: above what
the stack answers with images of 256x256 (about 420 and 170 req/s here); a smaller --size
needs more."""
WARMUP_S = 2


def make_pack(size: int, count: int) -> Pack:
    """`count` unique `size`x`size` RGB PNGs from the shipped samples (made once)."""
    path = PACK_DIR / f"{MODEL}{size}-s{SEED}.bin"
    if path.is_file() and load_pack(path).count >= count:
        return load_pack(path)
    rng = np.random.default_rng(SEED)
    samples = sorted((MODELS_DIR / MODEL / "samples").glob("*.png"))
    bases = [np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in samples]
    offsets, chunks, position = [], [], 0
    print(f"making {count:,} {size}x{size} PNGs in {PACK_DIR} (once) ...", flush=True)
    for index in range(count):
        pixels = bases[index % len(bases)].copy()
        pixels[index % size] = rng.integers(0, 256, (size, 3), dtype=np.uint8)
        pixels[:, (index // size) % size, 0] = (index * 7) % 256
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
        data = struct.pack(">I", buffer.tell()) + buffer.getvalue()
        offsets.append(position)
        chunks.append(data)
        position += len(data)
    PACK_DIR.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(chunks))
    np.save(path.with_suffix(".npy"), np.asarray(offsets, np.int64))
    return load_pack(path)


def batch_figures(stack: MLServeStack) -> tuple[float, float]:
    """(session runs, images) from model_api's batch-size histogram."""
    text = httpx.get(stack.base_url("model_api") + "/metrics", timeout=10).text
    name = "mlserve_batch_size"
    return metric(text, name + "_count"), metric(text, name + "_sum")


def images_per_start(args: argparse.Namespace) -> int:
    return (WARMUP_S + args.duration) * PER_SECOND_MANY + args.duration * PER_SECOND_ONE


def measure(models_dir: Path | None, pack: Pack, args: argparse.Namespace) -> dict:
    images = SliceAllocator(pack)  # a new Redis: the same images again, none twice
    stack = MLServeStack(MODEL, WORK_DIR / "batching_large_images", models_dir)
    stack.start()
    try:
        url = stack.base_url("web") + "/predict"
        run_wrk(url, images.take(WARMUP_S * PER_SECOND_MANY), args.clients, WARMUP_S)
        runs_before, images_before = batch_figures(stack)
        seconds = args.duration
        many = run_wrk(url, images.take(seconds * PER_SECOND_MANY), args.clients, seconds)
        runs_after, images_after = batch_figures(stack)
        one = run_wrk(url, images.take(seconds * PER_SECOND_ONE), 1, seconds)
    finally:
        stack.stop()
    if many["wrapped"] or one["wrapped"]:
        raise SystemExit(
            f"images repeated within a load ({many['rps']} and {one['rps']} req/s): "
            "raise PER_SECOND_MANY or PER_SECOND_ONE"
        )
    runs = runs_after - runs_before
    return {
        "batching": models_dir is None,
        "rps": many["rps"],
        "p50_ms": many["p50_ms"],
        "p99_ms": many["p99_ms"],
        "failures": many["failures"] + one["failures"],
        "images_per_run": round((images_after - images_before) / runs, 2) if runs else None,
        "p50_ms_1_client": one["p50_ms"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=int, default=6, help="seconds per load")
    parser.add_argument("--out", type=Path, help="JSON results (default: print only)")
    args = parser.parse_args()
    pack = make_pack(args.size, images_per_start(args))
    unbatched = WORK_DIR / "models-nobatch-large"
    shipped = copy_with_batching(unbatched, MODEL, None)
    records = []
    for round_index in range(args.rounds):
        for models_dir in (None, unbatched) if round_index % 2 == 0 else (unbatched, None):
            record = {"round": round_index, **measure(models_dir, pack, args)}
            records.append(record)
            print(json.dumps(record), flush=True)
    on = {r["round"]: r for r in records if r["batching"]}
    off = {r["round"]: r for r in records if not r["batching"]}
    ratios = [on[i]["rps"] / off[i]["rps"] for i in sorted(on)]
    p50_diffs = [on[i]["p50_ms_1_client"] - off[i]["p50_ms_1_client"] for i in sorted(on)]
    summary = {
        "on_over_off_median": round(statistics.median(ratios), 3),
        "on_over_off_per_round": [round(r, 3) for r in ratios],
        "p50_1_client_on_minus_off_ms_median": round(statistics.median(p50_diffs), 2),
        "images_per_run_on": [on[i]["images_per_run"] for i in sorted(on)],
    }
    print(json.dumps(summary))
    if args.out:
        document = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": "python -m bench.batching_large_images "
            + f"--size {args.size} --rounds {args.rounds} --clients {args.clients} "
            + f"--duration {args.duration}",
            "batching_as_shipped": shipped,
            "summary": summary,
            "records": records,
        }
        args.out.write_text(json.dumps(document, indent=1) + "\n")
        print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
