"""CPU cost per forwarded request of the gateway's upstream client, against aiohttp and httpx.

The gateway forwards every request, so its client's cost is paid on every cache hit. Each
client posts a 700-byte body 4,000 times from 16 concurrent tasks to a trivial raw-ASGI
upstream (uvicorn, its own process) and the client process's CPU time is divided by the
request count. Clients take turns over rounds; medians are printed and written to
results/upstream_client.json.

    PYTHONPATH=. .venv/bin/python -m bench.upstream_client [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness.redis_server import free_port

RESULTS = Path(__file__).with_name("results") / "upstream_client.json"
REQUESTS, TASKS = 4000, 16
BODY = b"x" * 700


async def _upstream(scope, receive, send) -> None:  # noqa: ANN001 - a bare ASGI app
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"label":"7"}'})


def _client(kind: str, url: str):  # noqa: ANN202
    if kind == "mlserve":
        from web_api.gateway.model_client import ModelApiClient

        client = ModelApiClient(url, 10, 2)
        return client.request, client.close
    if kind == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))

        async def post(method, path, body, headers, params):  # noqa: ANN001, ANN202
            async with session.request(
                method, url + path, data=body, headers=headers, params=params
            ) as response:
                return await response.read()

        return post, session.close
    import httpx

    httpx_client = httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=64))

    async def post_httpx(method, path, body, headers, params):  # noqa: ANN001, ANN202
        return (
            await httpx_client.request(method, path, content=body, headers=headers, params=params)
        ).content

    return post_httpx, httpx_client.aclose


async def _measure(kind: str, url: str) -> float:
    send, close = _client(kind, url)
    headers = {"content-type": "image/png", "x-request-id": "bench"}

    async def one() -> None:
        if kind == "mlserve":
            await send(
                "POST",
                "/v1/models/mnist/predict",
                body=BODY,
                headers=headers,
                params={"app_type": "cli"},
            )
        else:
            await send("POST", "/v1/models/mnist/predict", BODY, headers, {"app_type": "cli"})

    for _ in range(200):
        await one()

    async def loop(count: int) -> None:
        for _ in range(count):
            await one()

    start = time.process_time()
    await asyncio.gather(*(loop(REQUESTS // TASKS) for _ in range(TASKS)))
    cpu_us = (time.process_time() - start) / REQUESTS * 1e6
    await close()
    return cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--one", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import uvloop

        print(uvloop.run(_measure(*args.one)))
        return
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.upstream_client:_upstream",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    )
    try:
        time.sleep(3)
        kinds = ["mlserve", "aiohttp", "httpx"]
        per_round: dict[str, list[float]] = {k: [] for k in kinds}
        for round_no in range(args.rounds):
            for kind in kinds[round_no % 3 :] + kinds[: round_no % 3]:
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.upstream_client",
                        "--one",
                        kind,
                        f"http://127.0.0.1:{port}",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                per_round[kind].append(float(out.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait()
    medians = {k: statistics.median(v) for k, v in per_round.items()}
    for kind in kinds:
        print(
            f"{kind:8s} {medians[kind]:7.1f} µs CPU per request  (rounds: "
            f"{', '.join(f'{v:.0f}' for v in per_round[kind])})"
        )
    RESULTS.write_text(
        json.dumps(
            {
                "what": "client-process CPU µs per forwarded request (700-byte POST, 16 tasks)",
                "date": time.strftime("%Y-%m-%d"),
                "rounds": per_round,
                "median_us": medians,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
