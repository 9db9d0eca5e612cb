"""Closed-loop gRPC load: `ModelInfer` calls of the Open Inference Protocol, each a PNG from a
pack as a BYTES input, as fast as answers come back; in a process of its own, like wrk for the
HTTP cases (bench/load/wrk.py), so its CPU is measured apart from the server's.

`clients` calls are under way at once, spread over `channels` channels, each its own HTTP/2
connection (a local subchannel pool): the gateway's workers each take whole connections, as
with HTTP/1.1 keep-alive clients. Requests are serialized protobufs of tritonclient's own
messages, sent through a raw-bytes stub and answered unparsed but for their status: the cost
measured is the server's, not the client's protobuf work.

    python -m bench.load.grpc_loop '{"target": "127.0.0.1:5001", "model": "mnist", ...}'

prints one line `GRPC_JSON {...}` with wrk's fields (bench/load/wrk.py).
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
import time
from pathlib import Path

import grpc
import numpy as np
from tritonclient.grpc import service_pb2

METHOD = "/inference.GRPCInferenceService/ModelInfer"
TIMEOUT_S = 10
CHANNELS = 8
"""Connections the calls are spread over (the HTTP cases open one per client)."""


def read_pngs(pack: Path, offset: int, count: int) -> list[bytes]:
    """`count` PNGs of a pack (4-byte big-endian length, then the bytes), from `offset`."""
    pngs = []
    with pack.open("rb") as fh:
        fh.seek(offset)
        for _ in range(count):
            (length,) = struct.unpack(">I", fh.read(4))
            pngs.append(fh.read(length))
    return pngs


def request_bytes(model: str, png: bytes) -> bytes:
    request = service_pb2.ModelInferRequest(
        model_name=model,
        inputs=[
            service_pb2.ModelInferRequest.InferInputTensor(
                name="image", datatype="BYTES", shape=[1]
            )
        ],
        raw_input_contents=[struct.pack("<I", len(png)) + png],
    )
    return request.SerializeToString()


async def drive(plan: dict) -> dict:
    pngs = read_pngs(Path(plan["pack"]), plan["offset"], plan["count"])
    channels = [
        grpc.aio.insecure_channel(
            plan["target"],
            options=[
                ("grpc.use_local_subchannel_pool", 1),
                ("grpc.max_receive_message_length", -1),
            ],
        )
        for _ in range(plan["channels"])
    ]
    calls = [channel.unary_unary(METHOD) for channel in channels]  # bytes in, bytes out
    sent = ok = failures = 0
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    end = time.monotonic() + plan["seconds"]
    start = time.monotonic()

    async def client(index: int) -> None:
        nonlocal sent, ok, failures
        call = calls[index % len(calls)]
        while time.monotonic() < end:
            body = request_bytes(plan["model"], pngs[sent % len(pngs)])
            sent += 1
            began = time.perf_counter()
            try:
                await call(body, timeout=TIMEOUT_S)
            except grpc.aio.AioRpcError as exc:
                failures += 1
                statuses[exc.code().name] = statuses.get(exc.code().name, 0) + 1
                continue
            latencies.append(time.perf_counter() - began)
            ok += 1

    await asyncio.gather(*(client(i) for i in range(plan["clients"])))
    measured = time.monotonic() - start
    for channel in channels:
        await channel.close()
    percentiles = np.percentile(latencies, [50, 99]) * 1000 if latencies else (0.0, 0.0)
    return {
        "rps": round(ok / measured, 1),
        "p50_ms": round(float(percentiles[0]), 2),
        "p99_ms": round(float(percentiles[1]), 2),
        "ok": ok,
        "failures": failures,
        "non2xx": failures,
        "socket_errors": 0,
        "statuses": statuses,
        "seconds": round(measured, 3),
        "images_in_slice": len(pngs),
        "sent": sent,
        "wrapped": max(0, (sent - 1) // len(pngs)),
    }


def run_grpc(target: str, model: str, images, clients: int, seconds: int) -> dict:  # noqa: ANN001
    """`clients` calls at once for `seconds`, from a process of its own, over the images of a
    pack slice (bench/load/wrk.py's `Slice`); wrk's figures, `wrk_cpu` being this
    generator's cores."""
    from bench.load.wrk import run_generator

    plan = {
        "target": target,
        "model": model,
        "pack": str(images.pack.path),
        "offset": int(images.pack.offsets[images.first]),
        "count": images.count,
        "clients": clients,
        "channels": max(1, min(clients, CHANNELS)),
        "seconds": seconds,
    }
    figures, cores = run_generator(
        "grpc_loop",
        [sys.executable, "-m", "bench.load.grpc_loop", json.dumps(plan)],
        "GRPC_JSON",
        seconds + 120,
        cwd=Path(__file__).resolve().parents[2],
    )
    return {**figures, "wrk_cpu": cores, "raw": figures}


def main() -> int:
    plan = json.loads(sys.argv[1])
    print("GRPC_JSON " + json.dumps(asyncio.run(drive(plan))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
