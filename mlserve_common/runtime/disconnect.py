"""Stop working for a client that has gone.

uvicorn never cancels a request's task when its client disconnects (or when the gateway,
giving up with 504, closes its connection to model_api): the work would go on for nobody.
`unless_disconnected` leaves a callback in the request's scope; `GuardedHttpProtocol`
calls it when the connection is lost before the answer is complete, and it cancels the
request's task. No task or timer per request: a hit costs a dictionary entry. Under a
server without that protocol (a TestClient) nothing is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from mlserve_common.runtime.errors import ClientDisconnectedError

T = TypeVar("T")
ON_DISCONNECT = "mlserve.on_disconnect"
"""The scope key of the callback the connection calls when its client is gone."""


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """`await work`, cancelled with `ClientDisconnectedError` if the client leaves first."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    def on_disconnect() -> None:
        nonlocal gone
        gone = True
        task.cancel()

    scope = request.scope
    scope[ON_DISCONNECT] = on_disconnect
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
        raise ClientDisconnectedError("the client disconnected before the answer") from None
    finally:
        scope.pop(ON_DISCONNECT, None)
