"""Images (and small V2 inference requests) that reach the gateway together go to
model_api together.

Every unique image costs a request through two HTTP servers: the gateway's call to
model_api is a second request to write, parse, route, answer and read back. So the small
images a gateway worker receives at about the same time (several clients' requests arriving
within a few turns of its event loop) go to model_api in one call
(`mlserve_common.wire.image_batch`), up to `max_images`, and each client gets its own answer
back, with its own status. model_api answers each image of a call as it would answer it
alone (its cache, single-flight, dynamic batching), so one bad image gets its own 400.

The first image of a call waits for company only while its event loop turns `turns` times
(4 by default). An idle loop turns in microseconds, so a lone image goes at once, in a
call of its own, from its own request's task, as before (p50 at 1 client did not move). A
busy loop turns as slowly as its work, so the wait grows with the load, and so do the
calls: at 32 clients they carried 2.2 images with 1 turn and about 4 with 4. The pool
spreads the calls over model_api's workers by load (upstream.py), so fewer, larger calls
do not leave a worker idle.

With `max_calls`, images that come while that many calls are under way wait for one to
finish and go together. Calls grow larger, but a replica with more workers than the
gateway's calls could fill would sit idle: off by default.

Only small, cheap images share calls: PNG or JPEG files whose header declares at most
`max_pixels`. A client that leaves before its image was sent drops it from the call; one
that leaves later cannot cancel its image's work without cancelling its batch-mates', so the
call goes on (and its answer is cached). Images whose work is long go alone, and their
client leaving cancels it, as it always did.

Open Inference Protocol requests share calls of their own, to model_api's
`/v1/models/{name}/infer/batch`, on the same terms: a body of at most `max_image_bytes`
whose one input is such an image or a tensor of at most `max_pixels` elements
(`v2_peek.py`). model_api answers each as its `/v2/models/{name}/infer` would. Any other V2
request goes alone, exactly as the client sent it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

import orjson

from mlserve_common.runtime import tracing
from mlserve_common.runtime.observability import REQUEST_ID_HEADER
from mlserve_common.wire import image_batch, v2_wire
from mlserve_common.wire.image_batch import Item
from mlserve_common.wire.image_formats import declared_pixels
from mlserve_common.wire.numbers import NumberFormatError, parse_header_count
from web_api.gateway import metrics
from web_api.gateway.errors import ModelApiUnavailableError
from web_api.gateway.model_client import ModelApiClient, UpstreamResponse
from web_api.gateway.v2_peek import light_v2_request

log = logging.getLogger("web_api")

REFUSED = (404, 405, 413, 415)
"""model_api answers to a whole call that mean "not this way" (an older model_api without
the route, a smaller body limit): the call's images are then sent one by one. Except a 404
that names the model (or version) as not served: that is every item's own answer."""
MODEL_NOT_FOUND = "model_not_found"


V2_INFER = re.compile(r"/v2(/models/[\w.-]+(?:/versions/[\w.-]+)?/infer)", re.ASCII)
"""A V2 inference path (as the client wrote it, no query), and its model's part."""

Waiter = asyncio.Future[UpstreamResponse]


@dataclass(frozen=True)
class Destination:
    """Where an item goes at model_api: `alone`, or in a call with others (`together`);
    a `v2` item is a whole V2 request body, else an image file."""

    alone: str
    together: str
    v2: bool = False

    @classmethod
    def predict(cls, model_path: str, app_type: str) -> Destination:
        query = urlencode({"app_type": app_type})
        return cls(f"{model_path}/predict?{query}", f"{model_path}/predict/batch?{query}")

    @classmethod
    def v2_infer(cls, target: str) -> Destination | None:
        """For `/v2/models/{m}[/versions/{v}]/infer`; None for any other target."""
        match = V2_INFER.fullmatch(target)
        if match is None:
            return None
        return cls(target, f"/v1{match[1]}/batch", v2=True)


class _Pending:
    """Items for one destination, not yet sent."""

    __slots__ = ("items", "led", "waiters")

    def __init__(self, led: bool) -> None:
        self.items: list[Item] = []
        self.waiters: list[Waiter] = []
        self.led = led
        """A request of the group sends it at the end of its turn; else the next call to
        finish does."""

    def join(self, item: Item) -> Waiter:
        waiter: Waiter = asyncio.get_running_loop().create_future()
        self.items.append(item)
        self.waiters.append(waiter)
        return waiter

    def live(self) -> list[tuple[Item, Waiter]]:
        """The images whose clients still wait."""
        return [(i, w) for i, w in zip(self.items, self.waiters, strict=True) if not w.done()]


class _Route:
    """Calls under way to one destination, and the items waiting to go."""

    __slots__ = ("destination", "in_flight", "pending")

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.in_flight = 0
        self.pending: _Pending | None = None

    def take(self, pending: _Pending) -> bool:
        """Close `pending` to new images; False if it was sent already."""
        if self.pending is not pending:
            return False
        self.pending = None
        return True


class Coalescer:
    """`await coalescer.predict(model_path, app_type, image, request_id)`: model_api's
    answer for one image, sent alone or with other images; `coalescer.infer_v2(...)` the
    same for a V2 inference request."""

    def __init__(
        self,
        client: ModelApiClient,
        max_images: int,
        max_image_bytes: int,
        max_pixels: int,
        max_calls: int = 0,
        turns: int = 1,
    ) -> None:
        """`max_images` <= 1: every image in a call of its own; so is a file over
        `max_image_bytes`, and an image that is not a PNG or JPEG declaring at most
        `max_pixels`. `max_calls` > 0: at most this many calls per route under way; images
        that come meanwhile wait for one to finish, and go together. `turns`: how many
        turns of the event loop the first image of a call waits for others."""
        self.client = client
        self.max_images = min(max_images, image_batch.MAX_ITEMS)
        self.max_image_bytes = max_image_bytes
        self.max_pixels = max_pixels
        self.max_calls = max_calls
        self.turns = max(1, turns)
        self._routes: dict[Destination, _Route] = {}
        self._calls: set[asyncio.Task] = set()

    @property
    def coalescing(self) -> bool:
        return self.max_images > 1

    async def predict(
        self, model_path: str, app_type: str, image: bytes, request_id: str
    ) -> UpstreamResponse:
        destination = Destination.predict(model_path, app_type)
        item = Item(request_id, image, traceparent=tracing.traceparent())
        return await self._forward(destination, item, self._shareable(image))

    async def infer_v2(
        self, target: str, body: bytes, headers: dict[str, str], request_id: str
    ) -> UpstreamResponse:
        """A `POST` of `body` to the V2 `target` (a path without a query), with `headers`
        when it goes alone unshared."""
        destination = Destination.v2_infer(target)
        length = _header_length(headers.get(v2_wire.HEADER_LENGTH))
        if destination is None or length is False or not self._shareable_v2(body, length):
            # model_api answers what the gateway does not understand (a header that is not
            # a number gets its 400 there), exactly as sent
            return await self.client.request("POST", target, body=body, headers=headers)
        item = Item(request_id, body, length, tracing.traceparent())
        return await self._forward(destination, item, True)

    async def _forward(
        self, destination: Destination, item: Item, shareable: bool
    ) -> UpstreamResponse:
        if not shareable:
            return await self._alone(destination, item)
        route = self._routes.get(destination)
        if route is None:
            route = self._routes[destination] = _Route(destination)
        pending = route.pending
        if pending is not None:
            waiter = pending.join(item)
            if len(pending.items) >= self.max_images and route.take(pending):
                self._send(route, pending.live())  # full: it goes now
            return await waiter
        busy = 0 < self.max_calls <= route.in_flight
        pending = route.pending = _Pending(led=not busy)
        waiter = pending.join(item)
        if busy:
            return await waiter  # the next call to finish sends the group
        # This request leads: it lets the loop turn `turns` times, so that the requests
        # that arrive meanwhile join, then sends what came: alone, in its own request's
        # task (so that its client leaving cancels the call, as without coalescing), or
        # together, in a task of the call's.
        try:
            for _ in range(self.turns):
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            waiter.cancel()
            if route.take(pending):
                self._send(route, pending.live())
            self._forget_if_idle(route)
            raise
        if not route.take(pending):
            return await waiter  # it filled up and went
        live = pending.live()
        if len(live) > 1:
            self._send(route, live)
            return await waiter
        metrics.FORWARDED_TOGETHER.observe(1)
        route.in_flight += 1
        try:
            return await self._alone(destination, item)
        finally:
            self._finished(route)

    def _shareable(self, image: bytes) -> bool:
        """Small and cheap: worth a shared call, and little lost if its client leaves."""
        if not self.coalescing or not 0 < len(image) <= self.max_image_bytes:
            return False
        pixels = declared_pixels(image)
        return pixels is not None and 0 < pixels <= self.max_pixels

    def _shareable_v2(self, body: bytes, header_length: int | None) -> bool:
        if not self.coalescing or not 0 < len(body) <= self.max_image_bytes:
            return False
        return light_v2_request(body, header_length, self.max_pixels)

    async def close(self) -> None:
        """Let the calls under way finish."""
        while self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)

    def _finished(self, route: _Route) -> None:
        """A call of `route`'s is done: send the images that waited for it."""
        route.in_flight -= 1
        pending = route.pending
        if pending is not None and not pending.led and route.take(pending):
            self._send(route, pending.live())
        self._forget_if_idle(route)

    def _forget_if_idle(self, route: _Route) -> None:
        """Keep no state for a route with nothing under way or waiting: model names come
        from clients, and one never asked again should cost nothing."""
        key = route.destination
        if route.in_flight == 0 and route.pending is None and self._routes.get(key) is route:
            del self._routes[key]

    def _send(self, route: _Route, live: list[tuple[Item, Waiter]]) -> None:
        if not live:
            return
        metrics.FORWARDED_TOGETHER.observe(len(live))
        route.in_flight += 1
        call = asyncio.get_running_loop().create_task(self._call(route, live))
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _call(self, route: _Route, live: list[tuple[Item, Waiter]]) -> None:
        items = [item for item, _ in live]
        try:
            if len(items) == 1:
                answers = [await self._alone(route.destination, items[0])]
            else:
                answers = await self._together(route.destination, items)
        except Exception as exc:  # noqa: BLE001 - each waiter gets it
            for _, waiter in live:
                if not waiter.done():
                    waiter.set_exception(_copy(exc))
            return
        finally:
            self._finished(route)
        for (_, waiter), answer in zip(live, answers, strict=True):
            if not waiter.done():
                waiter.set_result(answer)

    async def _alone(self, destination: Destination, item: Item) -> UpstreamResponse:
        if destination.v2:
            headers = v2_wire.body_headers(item.header_length)
        else:
            headers = {"content-type": "application/octet-stream"}  # the image's own bytes
        headers[REQUEST_ID_HEADER] = item.request_id
        if item.traceparent is not None:
            headers[tracing.TRACEPARENT] = item.traceparent
        return await self.client.request("POST", destination.alone, body=item.body, headers=headers)

    async def _together(
        self, destination: Destination, items: list[Item]
    ) -> list[UpstreamResponse]:
        answer = await self.client.request(
            "POST",
            destination.together,
            body=image_batch.encode_images(items),
            headers={"content-type": image_batch.IMAGES_TYPE},
        )
        if answer.status in REFUSED and _error_code(answer) != MODEL_NOT_FOUND:
            log.warning(
                "model_api refused %d requests in one call (%d); sending them one by one",
                len(items),
                answer.status,
            )
            return list(await asyncio.gather(*(self._alone(destination, i) for i in items)))
        if answer.status != 200 or answer.content_type != image_batch.ANSWERS_TYPE:
            return [_as_answer_to(answer, item) for item in items]  # 503 loading, 404 model
        try:
            decoded = image_batch.decode_answers(answer.body, len(items))
        except image_batch.BatchFormatError as exc:
            log.error("model_api's answer to %d requests is unreadable: %s", len(items), exc)
            raise ModelApiUnavailableError(
                "model_api gave an unreadable answer; try again in a moment"
            ) from exc
        return [
            UpstreamResponse(
                a.status,
                a.body,
                v2_wire.content_type(a.header_length),
                header_length=None if a.header_length is None else str(a.header_length),
                retry_after=a.retry_after,
            )
            for a in decoded
        ]


def _header_length(text: str | None) -> int | None | Literal[False]:
    """An `Inference-Header-Content-Length` as a number (None: no header); False for one
    that is not ASCII digits (`mlserve_common.wire.numbers`)."""
    if text is None:
        return None
    try:
        return parse_header_count(text, v2_wire.HEADER_NAME, unit="bytes")
    except NumberFormatError:
        return False


def _envelope(answer: UpstreamResponse) -> dict | None:
    """model_api's error envelope, if the answer is one."""
    try:
        envelope = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return None
    return envelope if isinstance(envelope, dict) else None


def _error_code(answer: UpstreamResponse) -> str | None:
    return (_envelope(answer) or {}).get("code")


def _as_answer_to(answer: UpstreamResponse, item: Item) -> UpstreamResponse:
    """A failure of the whole call as one image's answer: its error envelope names the
    image's own request id."""
    envelope = _envelope(answer)
    if envelope is None or "request_id" not in envelope:
        return answer
    body = orjson.dumps({**envelope, "request_id": item.request_id})
    return dataclasses.replace(answer, body=body)


def _copy(exc: Exception) -> Exception:
    """The same error for another waiter (one exception object raised in several tasks
    would mix their tracebacks)."""
    message = getattr(exc, "message", None)
    try:
        return type(exc)(message) if message is not None else type(exc)(*exc.args)
    except Exception:  # noqa: BLE001 - a class with another signature
        return exc
