"""Images that reach the gateway together go to model_api together.

Every unique image costs a request through two HTTP servers: the gateway's call to
model_api is a second request to write, parse, route, answer and read back. So the small
images a gateway worker receives at about the same time (several clients' requests arriving
within a few turns of its event loop) go to model_api in one call
(`mlserve_common.image_batch`), up to `max_images`, and each client gets its own answer
back, with its own status. model_api answers each image of a call as it would answer it
alone (its cache, single-flight, dynamic batching), so one bad image gets its own 400.

The first image of a call waits for company only while its event loop turns `turns` times
(once by default). An idle loop turns in microseconds, so a lone image goes at once, in a
call of its own, from its own request's task, as before (p50 at 1 client did not move). A
busy loop turns as slowly as its work, so the wait grows with the load, and so do the
calls: at 32 clients they carried 2.5 images with 1 turn and about 5 with 4. But fewer,
larger calls can all land on the connections of one model_api worker (the pool reuses its
most recently used connection first) and leave the others idle: with 4 turns, one of two
workers did most of the work in 2 of 3 rounds of a full benchmark (README, Benchmarks).

With `max_calls`, images that come while that many calls are under way wait for one to
finish and go together. Calls grow larger, but a replica with more workers than the
gateway's calls could fill would sit idle: off by default.

Only small, cheap images share calls: PNG or JPEG files whose header declares at most
`max_pixels`. A client that leaves before its image was sent drops it from the call; one
that leaves later cannot cancel its image's work without cancelling its batch-mates', so the
call goes on (and its answer is cached). Images whose work is long go alone, and their
client leaving cancels it, as it always did.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import orjson

from mlserve_common import image_batch
from mlserve_common.image_batch import Item
from mlserve_common.image_formats import declared_pixels
from mlserve_common.observability import REQUEST_ID_HEADER
from web_api.gateway import metrics
from web_api.gateway.errors import ModelApiUnavailableError
from web_api.gateway.model_client import ModelApiClient, UpstreamResponse

log = logging.getLogger("web_api")

REFUSED = (404, 405, 413, 415)
"""model_api answers to a whole call that mean "not this way" (an older model_api without
the route, a smaller body limit): the call's images are then sent one by one."""


Waiter = asyncio.Future[UpstreamResponse]


class _Pending:
    """Images for one model and app type, not yet sent."""

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
    """Calls under way to one model and app type, and the images waiting to go."""

    __slots__ = ("app_type", "in_flight", "model_path", "pending")

    def __init__(self, model_path: str, app_type: str) -> None:
        self.model_path, self.app_type = model_path, app_type
        self.in_flight = 0
        self.pending: _Pending | None = None

    def take(self, pending: _Pending) -> bool:
        """Close `pending` to new images; False if it was sent already."""
        if self.pending is not pending:
            return False
        self.pending = None
        return True


class ImageForwarder:
    """`await forwarder.predict(model_path, app_type, image, request_id)`: model_api's
    answer for one image, sent alone or with other images."""

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
        self._routes: dict[tuple[str, str], _Route] = {}
        self._calls: set[asyncio.Task] = set()

    @property
    def coalescing(self) -> bool:
        return self.max_images > 1

    async def predict(
        self, model_path: str, app_type: str, image: bytes, request_id: str
    ) -> UpstreamResponse:
        item = Item(request_id, image)
        if not self._shareable(image):
            return await self._alone(model_path, app_type, item)
        route = self._routes.get((model_path, app_type))
        if route is None:
            route = self._routes[(model_path, app_type)] = _Route(model_path, app_type)
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
            return await self._alone(model_path, app_type, item)
        finally:
            self._finished(route)

    def _shareable(self, image: bytes) -> bool:
        """Small and cheap: worth a shared call, and little lost if its client leaves."""
        if not self.coalescing or not 0 < len(image) <= self.max_image_bytes:
            return False
        pixels = declared_pixels(image)
        return pixels is not None and 0 < pixels <= self.max_pixels

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
        key = (route.model_path, route.app_type)
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
                answers = [await self._alone(route.model_path, route.app_type, items[0])]
            else:
                answers = await self._together(route.model_path, route.app_type, items)
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

    async def _alone(self, model_path: str, app_type: str, item: Item) -> UpstreamResponse:
        headers = {"content-type": "application/octet-stream", REQUEST_ID_HEADER: item.request_id}
        return await self.client.request(
            "POST",
            model_path + "/predict",
            body=item.image,
            headers=headers,
            params={"app_type": app_type},
        )

    async def _together(
        self, model_path: str, app_type: str, items: list[Item]
    ) -> list[UpstreamResponse]:
        answer = await self.client.request(
            "POST",
            model_path + "/predict/batch",
            body=image_batch.encode_images(items),
            headers={"content-type": image_batch.IMAGES_TYPE},
            params={"app_type": app_type},
        )
        if answer.status in REFUSED:
            log.warning(
                "model_api refused %d images in one call (%d); sending them one by one",
                len(items),
                answer.status,
            )
            return list(
                await asyncio.gather(*(self._alone(model_path, app_type, i) for i in items))
            )
        if answer.status != 200 or answer.content_type != image_batch.ANSWERS_TYPE:
            return [_as_answer_to(answer, item) for item in items]  # a 503 while loading
        try:
            decoded = image_batch.decode_answers(answer.body, len(items))
        except image_batch.BatchFormatError as exc:
            log.error("model_api's answer to %d images is unreadable: %s", len(items), exc)
            raise ModelApiUnavailableError(
                "model_api gave an unreadable answer; try again in a moment"
            ) from exc
        return [
            UpstreamResponse(
                a.status,
                a.body,
                "application/json",
                retry_after=a.retry_after,
            )
            for a in decoded
        ]


def _as_answer_to(answer: UpstreamResponse, item: Item) -> UpstreamResponse:
    """A failure of the whole call as one image's answer: its error envelope names the
    image's own request id."""
    try:
        envelope = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return answer
    if not isinstance(envelope, dict) or "request_id" not in envelope:
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
