"""What the hostile-traffic tests send: raw sockets, heavy images, unique small images."""

from __future__ import annotations

import json
import random
import select
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import numpy as np
from PIL import Image

from harness.images import drawn_digit_seven, encode
from harness.net import process_tree_rss


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def parse_answer(data: bytes) -> RawAnswer:
    """The answer's status, headers and body; status 0 when the server closed silently."""
    if not data:
        return RawAnswer(0, {}, b"")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return RawAnswer(int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body)


def read_answer(sock: socket.socket) -> RawAnswer:
    """Read exactly one answer with a Content-Length from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    length = int(parse_answer(data).headers["content-length"])
    while len(data.partition(b"\r\n\r\n")[2]) < length:
        data += sock.recv(65536)
    return parse_answer(data)


def raw_exchange(
    port: int, parts: list[bytes], pause: float = 0.0, timeout: float = 30.0
) -> RawAnswer:
    """Send `parts` over one fresh connection (`pause` seconds apart), read until the server
    closes. Sending may fail once the server has answered and closed: that is expected."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            for part in parts:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered (or closed) already: stop sending
                sock.sendall(part)
                if pause:
                    time.sleep(pause)
        except OSError:
            pass
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    return parse_answer(received)


def unique_small_pngs(count: int, seed: int = 0) -> list[bytes]:
    """`count` different PNGs of a drawn 7 (one pixel of noise each)."""
    base = np.asarray(drawn_digit_seven(56, "L"))
    rng = random.Random(seed)
    images = []
    for _ in range(count):
        array = base.copy()
        array[rng.randrange(56), rng.randrange(56)] = rng.randrange(256)
        images.append(encode(Image.fromarray(array, "L")))
    return images


def gradient(size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    """A smooth image (tiny once compressed, large once decoded), different per seed."""
    width, height = size
    row = (np.arange(width, dtype=np.uint32) * 7 + seed) % 256
    array = np.broadcast_to(row.astype(np.uint8), (height, width))
    image = Image.fromarray(np.ascontiguousarray(array), "L")
    return image if mode == "L" else image.convert(mode)


def decompression_heavy_files(count: int) -> list[bytes]:
    """`count` different small files that are large once decoded, like the ones issue 15
    found: a WebP of 16383x2441, a 16-bit PNG of 6324^2, an RGBA PNG of 6000^2, a grey PNG
    of 4000^2 (PNGs are made distinct by bytes after their end, which decoders ignore)."""
    webp = [
        encode(Image.new("RGB", (16383, 2441), (i, 0, 0)), "WEBP", lossless=True)
        for i in range(count // 4 + 1)
    ]
    pngs = [
        encode(Image.new("I;16", (6324, 6324), 1000), "PNG"),
        encode(Image.new("RGBA", (6000, 6000), (90, 0, 0, 128)), "PNG"),
        encode(gradient((4000, 4000), "L", 0), "PNG"),
    ]
    files = []
    for i in range(count):
        kind = i % 4
        files.append(webp[i // 4] if kind == 0 else pngs[kind - 1] + b"\0" * (i + 1))
    return files


def noisy_jpeg(target_bytes: int, seed: int = 0) -> bytes:
    """A JPEG of about `target_bytes` (noise compresses badly)."""
    side = int((target_bytes / 1.17) ** 0.5)
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8), "RGB")
    return encode(image, "JPEG", quality=95)


@dataclass
class RssWatch:
    """Samples a process tree's resident memory in the background; `peak` in bytes."""

    pid: int
    interval: float = 0.05
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, process_tree_rss(self.pid))
            self._stop.wait(self.interval)


def clients_that_leave(url: str, images: list[bytes], after: float = 0.3) -> Counter:
    """Post every image at once from its own client, each hanging up after `after` seconds
    unless answered; how many were `answered` and how many `left`."""

    def post_and_leave(image: bytes) -> str:
        try:
            httpx.post(url + "/predict", content=image, timeout=after)
            return "answered"
        except httpx.TimeoutException:
            return "left"

    with ThreadPoolExecutor(len(images)) as pool:
        return Counter(pool.map(post_and_leave, images))
