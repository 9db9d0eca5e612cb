"""Stop working for a client that has gone.

uvicorn never cancels a request's task when its client disconnects (or when the gateway,
giving up with 504, closes its connection to model_api): the work would go on for nobody.
`unless_disconnected` runs the work in the request's own task while a small watcher waits
for the ASGI `http.disconnect` message, and cancels the task when it comes. Call it only
once the body has been read: the watcher reads the request's next message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from mlserve_common.errors import ClientDisconnectedError

T = TypeVar("T")


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """`await work`, cancelled with `ClientDisconnectedError` if the client leaves first."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass  # more body after the body: ignored
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
        raise ClientDisconnectedError("the client disconnected before the answer") from None
    finally:
        watcher.cancel()
