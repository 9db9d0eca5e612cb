"""Plain FastAPI baselines, run by uvicorn with 1 or 2 workers (BENCH_WORKERS).

`app`: the model behind one multipart route, the way a FastAPI user would write it.
`floor_app`: reads the body and answers constant JSON; no server can beat this floor.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, UploadFile

from bench.peers.servers.model import OnnxModel


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.model = OnnxModel("mnist", workers=int(os.environ.get("BENCH_WORKERS", "1")))
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.post("/predict")
def predict(file: UploadFile, request: Request) -> dict:
    """A sync route: FastAPI runs it in its thread pool, so the event loop keeps accepting."""
    return request.app.state.model.predict(file.file.read())


floor_app = FastAPI()
CONSTANT = {"label": "7", "probabilities": {"7": 1.0}}


@floor_app.get("/health")
async def floor_health() -> dict:
    return {"status": "ok"}


@floor_app.post("/predict")
async def floor_predict(request: Request) -> dict:
    await request.body()
    return CONSTANT
