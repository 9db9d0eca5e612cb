"""The soak's request mix: cache hits, unique misses and bad inputs, and how to judge answers."""

from __future__ import annotations

import asyncio
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MISS_SOURCE_MAX_PIXELS = 400_000
"""Larger samples (the 1024x768 scan) take ~0.5 s to re-encode here, so they only serve hits."""
PIXEL_STRIDE = 7919
"""A prime step between the pixels successive misses change, so changes spread over the image."""


@dataclass(frozen=True)
class Probe:
    """One request to send and what a correct answer looks like."""

    kind: str  # "hit" | "miss" | "bad"
    name: str
    expect_status: int
    expect_label: str | None  # None: any label is right (bad inputs, or an unchecked source)
    body: bytes = b""
    source: MissSource | None = None  # misses: the body is made from this, off the event loop
    serial: int = 0


@dataclass
class MissSource:
    """A decoded sample that yields a new, never-seen image on each call."""

    name: str
    label: str
    image: Image.Image
    label_checked: bool = True

    def mutated(self, serial: int) -> bytes:
        """The sample with one pixel changed, as PNG; distinct for every `serial`.

        Pixel `serial * stride mod (w*h)` gets its value shifted by `1 + serial // (w*h)`,
        so no two serials (below 255 * w*h) give the same image, nor the original.
        """
        width, height = self.image.size
        area = width * height
        index = (serial * PIXEL_STRIDE) % area
        xy = (index % width, index // width)
        shift = 1 + serial // area
        image = self.image.copy()
        old = image.getpixel(xy)
        new = (
            tuple((v + shift) % 256 for v in old) if isinstance(old, tuple) else (old + shift) % 256
        )
        image.putpixel(xy, new)
        out = io.BytesIO()
        image.save(out, format="PNG", compress_level=1)
        return out.getvalue()


def bad_inputs(png: bytes, rng: random.Random) -> list[tuple[str, bytes, int]]:
    """(name, body, documented status) for the gateway's bad-input cases."""
    return [
        ("empty body", b"", 400),
        ("random bytes", rng.randbytes(1024), 415),
        ("truncated png", png[: len(png) // 2], 400),
        ("pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n", 415),
    ]


def judge(
    probe: Probe, status: int | None, payload: bytes, error: str | None
) -> tuple[str | None, bool | None]:
    """(why the answer is wrong or None, the `cached` flag when there is one)."""
    if error:
        return error, None
    if status != probe.expect_status:
        return f"status {status} (expected {probe.expect_status}): {payload[:120]!r}", None
    try:
        answer = json.loads(payload)
    except ValueError:
        return f"status {status} with a body that is not JSON: {payload[:120]!r}", None
    if probe.expect_status != 200:
        return (
            None if "error" in answer else f"4xx without an error field: {payload[:120]!r}"
        ), None
    cached = answer.get("cached")
    if probe.expect_label is not None and str(answer.get("label")) != probe.expect_label:
        return f"label {answer.get('label')!r} (expected {probe.expect_label!r})", cached
    return None, cached


async def probe_body(probe: Probe) -> bytes:
    """The bytes to send: a miss encodes its fresh image in a thread, off the event loop."""
    if probe.source is None:
        return probe.body
    return await asyncio.to_thread(probe.source.mutated, probe.serial)


class RequestMix:
    """Draws probes: `hit_share` known samples, `miss_share` unique images, the rest bad input."""

    def __init__(
        self, samples_dir: Path, seed: int = 1, hit_share: float = 0.6, miss_share: float = 0.3
    ) -> None:
        self.rng = random.Random(seed)
        self.hit_share, self.miss_share = hit_share, miss_share
        labels: dict[str, str] = json.loads((samples_dir / "labels.json").read_text())
        self.hits = [
            (name, (samples_dir / name).read_bytes(), str(label)) for name, label in labels.items()
        ]
        self.miss_sources = []
        for name, label in labels.items():
            image = Image.open(samples_dir / name)
            if image.width * image.height <= MISS_SOURCE_MAX_PIXELS:
                image.load()
                self.miss_sources.append(MissSource(name, str(label), image))
        png = next(body for name, body, _ in self.hits if name.endswith(".png"))
        self.bad = bad_inputs(png, self.rng)
        self.miss_serial = 0

    def miss(self, source: MissSource) -> Probe:
        """A probe for a fresh mutation of `source`."""
        self.miss_serial += 1
        label = source.label if source.label_checked else None
        return Probe("miss", source.name, 200, label, source=source, serial=self.miss_serial)

    def next(self) -> Probe:
        draw = self.rng.random()
        if draw < self.hit_share:
            name, body, label = self.rng.choice(self.hits)
            return Probe("hit", name, 200, label, body=body)
        if draw < self.hit_share + self.miss_share:
            return self.miss(self.rng.choice(self.miss_sources))
        name, body, status = self.rng.choice(self.bad)
        return Probe("bad", name, status, None, body=body)
