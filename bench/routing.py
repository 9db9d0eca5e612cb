"""Time per request of the services' routing: HotPath against FastAPI's and Starlette's own.

`mlserve_common/runtime/hot_path.py` answers the hot routes without FastAPI's routing and
dependency machinery. The house rule keeps hand-written code only for a measured win of 10 %
or more over the library; this is that measurement. One endpoint (`POST /v1/models/{name}/
predict`, a guard that checks a header, a constant answer) is declared once and reached three
ways: through HotPath, through FastAPI's route (`declare`, the guard as a dependency), through
a plain Starlette `Route` (the guard called in the endpoint) in a bare Starlette app, and the
same `Route` first in the FastAPI app's table (what the services would run without HotPath).
Each app is called as ASGI in-process, so only the routing differs; the ways take turns over
rounds, medians are printed and written to results/routing.json.

    PYTHONPATH=. .venv/bin/python -m bench.routing [--rounds 7] [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from fastapi import FastAPI, Request, Response
from starlette.applications import Starlette
from starlette.routing import Route

from mlserve_common.runtime.errors import InvalidRequestError
from mlserve_common.runtime.hot_path import HotPath, HotRoute, declare

RESULTS = Path(__file__).with_name("results") / "routing.json"
ANSWER = b'{"label":"7"}'


async def guard(request: Request) -> None:
    if request.headers.get("x-api-key") != "k":
        raise InvalidRequestError("no key")


async def endpoint(request: Request, model_name: str) -> Response:
    return Response(ANSWER, media_type="application/json")


ROUTES = [HotRoute("/v1/models/{model_name}/predict", endpoint, guard=guard, openapi={})]


def hot_path_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(HotPath, routes=ROUTES)
    declare(app, ROUTES)
    return app


def fastapi_app() -> FastAPI:
    app = FastAPI()
    declare(app, ROUTES)
    return app


async def plain(request: Request) -> Response:
    await guard(request)
    return await endpoint(request, request.path_params["model_name"])


PLAIN_ROUTE = Route("/v1/models/{model_name}/predict", plain, methods=["POST"])


def starlette_app() -> Starlette:
    return Starlette(routes=[PLAIN_ROUTE])


def fastapi_with_starlette_route_app() -> FastAPI:
    """What replacing HotPath by the library would look like: the same FastAPI app, the hot
    route a plain Starlette `Route` first in its table."""
    app = FastAPI()
    declare(app, ROUTES)
    app.router.routes.insert(0, PLAIN_ROUTE)
    return app


WAYS = {
    "HotPath": hot_path_app,
    "FastAPI": fastapi_app,
    "Starlette": starlette_app,
    "FastAPI+Starlette route": fastapi_with_starlette_route_app,
}


async def _per_request(app, requests: int) -> float:
    """Seconds per request of `requests` POSTs called on `app` as ASGI."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/models/mnist/predict",
        "raw_path": b"/v1/models/mnist/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"x-api-key", b"k"), (b"content-length", b"0")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    statuses = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(200):  # warm up (and build the middleware stack)
        await app(dict(scope), receive, send)
    start = time.perf_counter()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    elapsed = time.perf_counter() - start
    assert set(statuses) == {200}, set(statuses)
    return elapsed / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in WAYS}
    for round_ in range(args.rounds):
        names = list(WAYS)
        names = names[round_ % len(names) :] + names[: round_ % len(names)]  # rotate the order
        for name in names:
            seconds = asyncio.run(_per_request(WAYS[name](), args.requests))
            samples[name].append(seconds * 1e6)
    medians = {name: round(statistics.median(v), 2) for name, v in samples.items()}
    ratios = {
        f"{name}_over_hot_path": round(
            statistics.median(o / h for o, h in zip(v, samples["HotPath"], strict=True)), 3
        )
        for name, v in samples.items()
        if name != "HotPath"
    }
    result = {"rounds": args.rounds, "requests_per_run": args.requests, "us_per_request": medians}
    result.update(ratios)
    print(f"us per request (median of {args.rounds} rounds): {medians}; {ratios}")
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
