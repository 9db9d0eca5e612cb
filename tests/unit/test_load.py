"""bench.load against tiny real HTTP servers on loopback: the raw client, the closed loop
(in this process, and over real processes as the GPU check runs it) and the open loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from bench.load import closed_loop, open_loop
from bench.load.client import Connection, Pool
from harness import ROOT
from harness.raw_http import read_request, serve

PREDICTION = {"label": "7", "cached": False, "timings": {"decode_ms": 0.5, "total_ms": 2.0}}


def response(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def chunked(body: bytes) -> bytes:
    half = len(body) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:half], body[half:]))
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


class Server:
    """Answers each request with `answer(request)` (bytes, or None to hang up without one),
    then waits for the next one or (`keep_alive=False`) hangs up; keeps every request and
    counts connections."""

    def __init__(
        self, answer: Callable[[bytes], bytes | None] | None = None, keep_alive: bool = True
    ) -> None:
        self.answer = answer or (lambda request: response(json.dumps(PREDICTION).encode()))
        self.keep_alive = keep_alive
        self.requests: list[bytes] = []
        self.connections = 0
        self.open: dict[asyncio.Task, asyncio.StreamWriter] = {}

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open[asyncio.current_task()] = writer
        try:
            while True:
                request = await read_request(reader)
                self.requests.append(request)
                answer = self.answer(request)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if not self.keep_alive:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            del self.open[asyncio.current_task()]

    async def close(self) -> None:
        """Hang up on the clients still connected, and let their handlers end."""
        handlers = list(self.open)
        for writer in self.open.values():
            writer.close()
        await asyncio.gather(*handlers)

    def bodies(self) -> list[bytes]:
        return [request.split(b"\r\n\r\n", 1)[1] for request in self.requests]


@contextlib.asynccontextmanager
async def serving(server: Server, path: str = "/predict"):
    listener, base = await serve(server)
    try:
        yield base + path
    finally:
        listener.close()
        await server.close()


@contextlib.contextmanager
def serving_in_a_thread(server: Server) -> Iterator[str]:
    """The server on an event loop of its own, for clients in other processes."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    listener, base = asyncio.run_coroutine_threadsafe(serve(server), loop).result(10)
    try:
        yield base
    finally:
        loop.call_soon_threadsafe(listener.close)
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def test_a_connection_posts_on_one_keep_alive_connection() -> None:
    server = Server()
    async with serving(server, "/v1/models/mnist/predict?x=1") as url:
        connection = Connection(url, "application/octet-stream")
        answers = [await connection.post(b"body %d" % i) for i in range(3)]
        connection.close()
    assert answers == [(200, json.dumps(PREDICTION).encode())] * 3
    assert server.connections == 1
    head, body = server.requests[0].split(b"\r\n\r\n")
    port = url.split(":")[2].split("/")[0]
    assert head.split(b"\r\n") == [
        b"POST /v1/models/mnist/predict?x=1 HTTP/1.1",
        f"Host: 127.0.0.1:{port}".encode(),
        b"Content-Type: application/octet-stream",
        b"Content-Length: 6",
    ]
    assert server.bodies() == [b"body 0", b"body 1", b"body 2"]


async def test_a_connection_reads_chunked_answers_and_reopens_after_a_close() -> None:
    answers = iter(
        [chunked(b"first part, second part"), response(b"bye", extra="Connection: close\r\n")]
    )
    server = Server(lambda request: next(answers, response(b"again")))
    async with serving(server) as url:
        connection = Connection(url, "image/png")
        assert await connection.post(b"a") == (200, b"first part, second part")
        assert await connection.post(b"b") == (200, b"bye")
        assert connection.streams is None
        assert await connection.post(b"c") == (200, b"again")
        connection.close()
    assert server.connections == 2


async def test_a_connection_fails_on_a_hang_up_a_timeout_and_a_refusal() -> None:
    hang_up = Server(lambda request: None)
    async with serving(hang_up) as url:
        connection = Connection(url, "image/png")
        with pytest.raises(asyncio.IncompleteReadError):
            await connection.post(b"x")
        assert connection.streams is None

    silent = Server(lambda request: b"")
    async with serving(silent) as url:
        connection = Connection(url, "image/png", timeout=0.2)
        with pytest.raises(TimeoutError):
            await connection.post(b"x")
        assert connection.streams is None

    not_http = Server(lambda request: b"SSH-2.0-OpenSSH\r\n\r\n")
    async with serving(not_http) as url:
        with pytest.raises(ValueError):
            await Connection(url, "image/png").post(b"x")
    with pytest.raises(OSError):
        await Connection(url, "image/png").post(b"x")  # the listener is closed


async def test_a_pool_opens_a_connection_per_concurrent_request_and_reuses_idle_ones() -> None:
    server = Server()
    async with serving(server) as url:
        pool = Pool(url, "image/png")
        answers = await asyncio.gather(*(pool.post(b"%d" % i) for i in range(4)))
        assert [status for status, _ in answers] == [200] * 4
        assert len(pool.idle) == server.connections == 4
        for i in range(6):
            await pool.post(b"again %d" % i)
        assert server.connections == 4
        pool.close()


async def test_a_pool_drops_a_connection_the_server_closed_while_it_was_idle() -> None:
    server = Server(keep_alive=False)  # hangs up without `Connection: close`, as on idle
    async with serving(server) as url:
        pool = Pool(url, "image/png")
        assert (await pool.post(b"a"))[0] == 200
        await asyncio.sleep(0.1)  # the server's FIN arrives
        assert (await pool.post(b"b"))[0] == 200
        pool.close()
    assert server.connections == 2


async def load_one_client(server: Server, warmup_s: float, duration_s: float):
    """What one closed-loop client saw, and the images it had to send."""
    async with serving(server) as url:
        plan = closed_loop.LoadPlan(url, 1, 1, warmup_s, duration_s, images=4, seed=1)
        images = closed_loop.make_pngs(0, plan.images, plan.seed)
        stats = closed_loop.ClientStats()
        await closed_loop.one_client(plan, images, 0, 1, time.monotonic(), stats)
    return stats, images


async def test_one_closed_loop_client_judges_every_answer_in_the_window() -> None:
    answers = iter(
        [
            response(b"", "503 Service Unavailable"),
            response(b"not json"),  # a 200 without JSON is an error
            response(b'{"error": "bad"}', "400 Bad Request"),
        ]
    )
    server = Server(lambda r: next(answers, response(json.dumps(PREDICTION).encode())))
    stats, images = await load_one_client(server, 0.0, 0.3)
    assert stats.warmup_failures == 0
    assert stats.statuses["503"] == stats.statuses["-1"] == stats.statuses["400"] == 1
    assert stats.statuses["200"] == len(stats.latencies_ms) - 3 > 0
    assert stats.timings["decode_ms"] == 0.5 * stats.statuses["200"]
    assert len(stats.errors) == 3 and stats.errors[0].startswith("HTTP 503")
    assert server.bodies()[: len(images)] == images  # each image in turn, then again


async def test_what_fails_in_the_warm_up_is_counted_apart() -> None:
    server = Server(lambda r: response(b"", "503 Service Unavailable"))
    stats, _ = await load_one_client(server, 0.2, 0.0)
    assert stats.warmup_failures == len(server.requests) > 0
    assert stats.latencies_ms == [] and not stats.statuses


def test_the_closed_loop_over_processes_reports_the_window() -> None:
    server = Server()
    with serving_in_a_thread(server) as base:
        plan = closed_loop.LoadPlan(
            base + "/v1/models/mnist/predict", clients=3, processes=2,
            warmup_s=0.2, duration_s=0.5, images=200, seed=1, server_pid=os.getpid(),
        )  # fmt: skip
        figures = closed_loop.run_load(plan)
    assert figures["ok"] == figures["requests"] > 0 and figures["errors"] == 0
    assert figures["warmup_failures"] == 0 and figures["late_answers"] >= 0
    assert figures["server_timings_mean_ms"]["decode_ms"] == 0.5
    assert figures["server_processes"] >= 1 and "server_cpu_cores" in figures
    assert figures["latency_ms"]["p50"] <= figures["latency_ms"]["max"]
    bodies = server.bodies()  # the warm-up's too
    assert len(bodies) >= figures["requests"] and all(b.startswith(b"\x89PNG") for b in bodies)
    assert len(set(bodies)) == min(len(bodies), plan.images) or figures["images_reused"]


async def run_open(
    url: str, body: Callable[[int], Awaitable[bytes]], **options: float
) -> tuple[list[tuple[int, open_loop.Outcome]], int]:
    outcomes: list[tuple[int, open_loop.Outcome]] = []
    drawn = iter(range(1000))
    pool = Pool(url, "image/png", options.pop("timeout", 5.0))
    abandoned = await open_loop.run_open_loop(
        pool, time.monotonic(), 100.0, 0.2, lambda: next(drawn), body,
        lambda i, o: outcomes.append((i, o)), **options,
    )  # fmt: skip
    pool.close()
    return sorted(outcomes, key=lambda pair: pair[0]), abandoned


async def as_bytes(item: int) -> bytes:
    return b"request %d" % item


async def test_the_open_loop_sends_on_schedule_and_records_every_answer() -> None:
    server = Server(lambda request: response(request.split(b"\r\n\r\n")[1].upper()))
    async with serving(server) as url:
        outcomes, abandoned = await run_open(url, as_bytes)
    assert abandoned == 0
    assert [i for i, _ in outcomes] == list(range(20))
    assert [o.sent for _, o in outcomes] == pytest.approx([i / 100.0 for i in range(20)])
    assert all(o.status == 200 and o.error is None for _, o in outcomes)
    assert [o.body for _, o in outcomes] == [b"REQUEST %d" % i for i in range(20)]
    assert all(o.lag >= 0 and o.latency > 0 for _, o in outcomes)


async def test_the_open_loop_does_not_send_past_its_limit_and_reports_timeouts() -> None:
    server = Server(lambda request: b"")  # never answers
    async with serving(server) as url:
        outcomes, abandoned = await run_open(url, as_bytes, timeout=1.0, max_in_flight=3)
    assert abandoned == 0 and len(outcomes) == 20
    errors = [o.error for _, o in outcomes]
    assert errors.count(open_loop.NOT_SENT) == 17 and len(server.requests) == 3
    assert sum(e.startswith("TimeoutError") for e in errors) == 3


async def test_the_open_loop_abandons_what_is_unanswered_after_the_drain() -> None:
    async def never(item: int) -> bytes:
        await asyncio.sleep(60)
        return b""

    server = Server()
    async with serving(server) as url:
        outcomes, abandoned = await run_open(url, never, timeout=0.1, drain_s=0.1)
    assert abandoned == 20 and outcomes == [] and server.requests == []


@pytest.mark.parametrize("module", ["bench.load.client", "bench.load.open_loop"])
def test_the_client_and_the_open_loop_need_only_the_standard_library(module: str) -> None:
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import {module}"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_closed_loop_needs_only_numpy_and_pillow_beyond_the_standard_library() -> None:
    """The GPU host has no package index: what it imports must be there already."""
    code = (
        "import sys\n"
        "def installed():\n"
        "    return {m.split('.')[0] for m, module in list(sys.modules.items())\n"
        "            if 'site-packages' in (getattr(module, '__file__', None) or '')}\n"
        "before = installed()\n"
        "import bench.load.closed_loop\n"
        "print(' '.join(sorted(installed() - before)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert set(done.stdout.split()) == {"numpy", "PIL"}


def test_results_come_back_through_a_queue_in_one_process_too() -> None:
    """client_process is what each spawned process runs; here with a thread's barrier."""
    server = Server()
    with serving_in_a_thread(server) as base:
        plan = closed_loop.LoadPlan(base + "/predict", 2, 1, 0.0, 0.2, images=100, seed=3)
        results: queue.Queue = queue.Queue()
        closed_loop.client_process(plan, 0, threading.Barrier(1), results)
    part = results.get_nowait()
    assert part.statuses == {"200": len(part.latencies_ms)} and part.errors == []
    assert part.images_reused == max(0, part.sent - plan.images) and part.cpu_share > 0


# the gRPC closed loop (bench/load/grpc_loop.py)
def test_the_grpc_loop_sends_each_png_of_its_slice_and_counts_refusals(tmp_path) -> None:  # noqa: ANN001
    """Against a real grpc.aio server: every call carries the slice's PNGs in turn as a BYTES
    input; calls the server refuses are failures, by status, not answers."""
    import struct

    import grpc
    import numpy as np
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    from bench.load.grpc_loop import run_grpc
    from bench.load.wrk import Slice
    from bench.peers.pack import Pack

    pngs = [b"png-%d" % i for i in range(5)]
    path = tmp_path / "pack.bin"
    path.write_bytes(b"".join(struct.pack(">I", len(p)) + p for p in pngs))
    offsets = np.cumsum([0] + [4 + len(p) for p in pngs[:-1]])
    seen: list[bytes] = []

    class Recorder(service_pb2_grpc.GRPCInferenceServiceServicer):
        async def ModelInfer(self, request, context):  # noqa: ANN001, ANN202, N802
            (tensor,) = request.inputs
            assert (request.model_name, tensor.name, tensor.datatype) == ("m", "image", "BYTES")
            seen.append(request.raw_input_contents[0][4:])
            if seen[-1] == b"png-3":
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "not an image")
            return service_pb2.ModelInferResponse(model_name="m")

    ready, stop = threading.Event(), threading.Event()
    port_box: list[int] = []

    def serve_grpc() -> None:
        async def main() -> None:
            server = grpc.aio.server()
            service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Recorder(), server)
            port_box.append(server.add_insecure_port("127.0.0.1:0"))
            await server.start()
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            await server.stop(None)

        asyncio.run(main())

    thread = threading.Thread(target=serve_grpc)
    thread.start()
    try:
        ready.wait(10)
        pack = Pack("mnist", path, offsets)
        figures = run_grpc(f"127.0.0.1:{port_box[0]}", "m", Slice(pack, 1, 4), 2, 1)
    finally:
        stop.set()
        thread.join()
    assert set(seen) == {b"png-1", b"png-2", b"png-3", b"png-4"}
    assert figures["ok"] + figures["failures"] == figures["sent"] == len(seen)
    assert (
        figures["statuses"] == {"INVALID_ARGUMENT": figures["failures"]} and figures["failures"] > 0
    )
    assert figures["wrapped"] > 0 and figures["rps"] > 0 and figures["wrk_cpu"] > 0
