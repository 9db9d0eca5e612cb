"""When the gateway sends images together, alone, or again one by one: the coalescer in
front of a real TCP server that answers as model_api does and records every call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import orjson

from harness.bad_inputs import png_claiming
from harness.raw_http import read_request, serve
from harness.v2 import image_request
from mlserve_common.wire import image_batch
from mlserve_common.wire.image_batch import ItemAnswer
from mlserve_common.wire.v2_wire import HEADER_LENGTH
from web_api.gateway.coalescer import Coalescer
from web_api.gateway.errors import ModelApiUnavailableError
from web_api.gateway.model_client import ModelApiClient

SMALL = png_claiming(28, 28)  # a header declaring 784 pixels is all the coalescer reads


@dataclass
class FakeModelApi:
    """Answers `/predict` and `/predict/batch` with each image's request id; `calls` holds
    the request ids of every call, in order."""

    calls: list[list[str]] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    refuse_batches: bool = False
    serves: str | None = None
    """The one model it serves; None: any."""

    def __post_init__(self) -> None:
        self.release.set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                head, _, body = request.partition(b"\r\n\r\n")
                path = head.split(b" ")[1]
                self.heads.append(head)
                await self.release.wait()
                if path.split(b"?")[0].endswith(b"/batch"):
                    if self.serves and f"/models/{self.serves}/".encode() not in path:
                        body = orjson.dumps(
                            {"code": "model_not_found", "error": "no", "request_id": "call"}
                        )
                        writer.write(_answer(404, body, "application/json"))
                        continue
                    if self.refuse_batches:
                        writer.write(_answer(404, b'{"error":"no such route"}', "application/json"))
                        continue
                    items = image_batch.decode_images(body)
                    self.calls.append([item.request_id for item in items])
                    # a V2 item's answer is binary when its request was
                    answers = [
                        ItemAnswer(200, _id_body(i.request_id), None, i.header_length)
                        for i in items
                    ]
                    body = image_batch.encode_answers(answers)
                    writer.write(_answer(200, body, image_batch.ANSWERS_TYPE))
                else:
                    request_id = next(
                        line.split(b": ")[1].decode()
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"x-request-id")
                    )
                    self.calls.append([request_id])
                    writer.write(_answer(200, _id_body(request_id), "application/json"))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def _id_body(request_id: str) -> bytes:
    return orjson.dumps({"id": request_id})


def _answer(status: int, body: bytes, content_type: str) -> bytes:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


async def forwarder_for(api: FakeModelApi, **options) -> tuple[asyncio.Server, Coalescer]:
    server, url = await serve(api.handle)
    client = ModelApiClient(url, timeout=5, connect_timeout=1)
    options = {"max_images": 16, "max_image_bytes": 65536, "max_pixels": 65536, **options}
    return server, Coalescer(client, **options)


def predict(coalescer: Coalescer, request_id: str, image: bytes = SMALL) -> asyncio.Task:
    return asyncio.create_task(coalescer.predict("/v1/models/mnist", "cli", image, request_id))


def ids(answers: list) -> list[str]:
    return [orjson.loads(answer.body)["id"] for answer in answers]


async def test_the_requests_of_one_turn_go_together_and_a_lone_one_alone() -> None:
    api = FakeModelApi()
    server, coalescer = await forwarder_for(api)
    async with server:
        together = await asyncio.gather(*(predict(coalescer, f"r{i}") for i in range(5)))
        alone = await predict(coalescer, "solo")
        await coalescer.client.close()
    assert api.calls == [["r0", "r1", "r2", "r3", "r4"], ["solo"]]
    assert ids(together) == ["r0", "r1", "r2", "r3", "r4"] and ids([alone]) == ["solo"]


async def test_the_first_image_waits_the_given_turns_for_company() -> None:
    for turns, expected in ((1, [["early"], ["late"]]), (3, [["early", "late"]])):
        api = FakeModelApi()
        server, coalescer = await forwarder_for(api, turns=turns)
        async with server:
            early = predict(coalescer, "early")
            await asyncio.sleep(0)  # "early" runs and waits its first turn
            await asyncio.sleep(0)
            late = predict(coalescer, "late")  # comes two turns later
            await asyncio.gather(early, late)
            await coalescer.client.close()
        assert sorted(api.calls) == expected, turns


async def test_nothing_is_kept_for_a_model_name_once_its_calls_are_done() -> None:
    api = FakeModelApi()
    server, coalescer = await forwarder_for(api)
    async with server:
        for name in ("a", "b", "c"):  # names a client made up, each asked once
            await asyncio.gather(
                *(
                    coalescer.predict(f"/v1/models/{name}", "cli", SMALL, f"{name}{i}")
                    for i in range(3)
                )
            )
        tasks = [predict(coalescer, f"r{i}") for i in range(2)]
        await asyncio.sleep(0)
        for task in tasks:  # every client leaves before its image was sent
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await coalescer.client.close()
    assert len(api.calls) == 3
    assert coalescer._routes == {}


async def test_a_full_call_goes_at_once_and_the_rest_follow() -> None:
    api = FakeModelApi()
    server, coalescer = await forwarder_for(api, max_images=4)
    async with server:
        answers = await asyncio.gather(*(predict(coalescer, f"r{i}") for i in range(6)))
        await coalescer.client.close()
    assert sorted(api.calls, key=len, reverse=True) == [["r0", "r1", "r2", "r3"], ["r4", "r5"]]
    assert ids(answers) == [f"r{i}" for i in range(6)]


async def test_large_or_foreign_images_always_go_alone() -> None:
    api = FakeModelApi()
    server, coalescer = await forwarder_for(api)
    async with server:
        await asyncio.gather(
            predict(coalescer, "big", png_claiming(300, 300)),  # 90,000 pixels > 65,536
            predict(coalescer, "gif", b"GIF89a" + bytes(20)),
            predict(coalescer, "small-1"),
            predict(coalescer, "small-2"),
        )
        await coalescer.client.close()
    assert sorted(api.calls) == [["big"], ["gif"], ["small-1", "small-2"]]


async def test_a_client_that_leaves_before_the_call_is_left_out_of_it() -> None:
    api = FakeModelApi()
    server, coalescer = await forwarder_for(api)
    async with server:
        tasks = [predict(coalescer, f"r{i}") for i in range(3)]
        await asyncio.sleep(0)  # all three have joined; the first waits for the turn's end
        tasks[1].cancel()
        first, _, third = await asyncio.gather(*tasks, return_exceptions=True)
        await coalescer.client.close()
    assert api.calls == [["r0", "r2"]] and ids([first, third]) == ["r0", "r2"]


async def test_the_first_leaving_still_sends_the_others() -> None:
    api = FakeModelApi()
    server, coalescer = await forwarder_for(api)
    async with server:
        tasks = [predict(coalescer, f"r{i}") for i in range(3)]
        await asyncio.sleep(0)
        tasks[0].cancel()
        answers = await asyncio.gather(*tasks, return_exceptions=True)
        await coalescer.close()
        await coalescer.client.close()
    assert isinstance(answers[0], asyncio.CancelledError)
    assert api.calls == [["r1", "r2"]] and ids(answers[1:]) == ["r1", "r2"]


async def test_with_a_call_limit_images_wait_for_a_call_to_finish_and_go_together() -> None:
    api = FakeModelApi()
    api.release.clear()
    server, coalescer = await forwarder_for(api, max_calls=1)
    async with server:
        first = predict(coalescer, "first")
        for _ in range(20):  # the first call is under way, held by the server
            await asyncio.sleep(0.005)
        later = []
        for i in range(5):  # each in a turn of its own: without the limit, five calls
            later.append(predict(coalescer, f"later-{i}"))
            await asyncio.sleep(0.005)
        api.release.set()
        answers = await asyncio.gather(first, *later)
        await coalescer.client.close()
    assert api.calls == [["first"], [f"later-{i}" for i in range(5)]]
    assert ids(answers) == ["first"] + [f"later-{i}" for i in range(5)]


async def test_a_model_api_without_the_route_gets_the_images_one_by_one() -> None:
    api = FakeModelApi(refuse_batches=True)
    server, coalescer = await forwarder_for(api)
    async with server:
        answers = await asyncio.gather(*(predict(coalescer, f"r{i}") for i in range(3)))
        await coalescer.client.close()
    assert sorted(api.calls) == [["r0"], ["r1"], ["r2"]]
    assert ids(answers) == ["r0", "r1", "r2"]


async def test_model_api_away_fails_each_image_with_its_own_error() -> None:
    server, coalescer = await forwarder_for(FakeModelApi())
    server.close()
    await server.wait_closed()
    answers = await asyncio.gather(
        *(predict(coalescer, f"r{i}") for i in range(3)), return_exceptions=True
    )
    await coalescer.client.close()
    assert all(isinstance(a, ModelApiUnavailableError) for a in answers)
    assert len({id(a) for a in answers}) == 3  # not one object raised in three tasks


async def test_off_means_one_call_per_image() -> None:
    api = FakeModelApi()
    server, coalescer = await forwarder_for(api, max_images=1)
    async with server:
        await asyncio.gather(*(predict(coalescer, f"r{i}") for i in range(3)))
        await coalescer.client.close()
    assert sorted(api.calls) == [["r0"], ["r1"], ["r2"]]


def infer_v2(
    coalescer: Coalescer,
    request_id: str,
    request: tuple[bytes, dict[str, str]],
    target: str = "/v2/models/mnist/infer",
) -> asyncio.Task:
    body, headers = request
    headers = {**headers, "x-request-id": request_id}
    return asyncio.create_task(coalescer.infer_v2(target, body, headers, request_id))


def paths(api: FakeModelApi) -> list[str]:
    return sorted(head.split(b" ")[1].decode() for head in api.heads)


async def test_small_v2_requests_go_together_and_get_back_binary_or_json() -> None:
    api = FakeModelApi()
    server, coalescer = await forwarder_for(api)
    async with server:
        answers = await asyncio.gather(
            infer_v2(coalescer, "bin-1", image_request(SMALL)),
            infer_v2(coalescer, "json-1", image_request(SMALL, binary=False)),
            infer_v2(coalescer, "bin-2", image_request(SMALL)),
            predict(coalescer, "png"),  # images go in calls of their own
        )
        await coalescer.client.close()
    assert sorted(api.calls) == [["bin-1", "json-1", "bin-2"], ["png"]]
    assert paths(api) == [
        "/v1/models/mnist/infer/batch",
        "/v1/models/mnist/predict?app_type=cli",
    ]
    assert ids(answers) == ["bin-1", "json-1", "bin-2", "png"]
    binary_length = image_request(SMALL)[1][HEADER_LENGTH]
    assert [(a.content_type, a.header_length) for a in answers[:3]] == [
        ("application/octet-stream", binary_length),  # the fake echoes the request's length
        ("application/json", None),
        ("application/octet-stream", binary_length),
    ]


async def test_versions_go_to_their_own_calls_and_other_v2_requests_pass_unchanged() -> None:
    api = FakeModelApi()
    server, coalescer = await forwarder_for(api)
    body, headers = image_request(SMALL)
    odd = {**headers, "content-type": "application/x-custom"}
    async with server:
        await asyncio.gather(
            infer_v2(coalescer, "v1-a", image_request(SMALL), "/v2/models/mnist/versions/1/infer"),
            infer_v2(coalescer, "v1-b", image_request(SMALL), "/v2/models/mnist/versions/1/infer"),
            infer_v2(coalescer, "large", image_request(png_claiming(300, 300))),
            infer_v2(coalescer, "two", image_request(SMALL, SMALL)),
            infer_v2(coalescer, "load", (body, odd), "/v2/repository/models/mnist/load"),
        )
        await coalescer.client.close()
    assert sorted(api.calls) == [["large"], ["load"], ["two"], ["v1-a", "v1-b"]]
    assert paths(api) == [
        "/v1/models/mnist/versions/1/infer/batch",
        "/v2/models/mnist/infer",
        "/v2/models/mnist/infer",
        "/v2/repository/models/mnist/load",
    ]
    (load,) = [head for head in api.heads if b"/load" in head]
    assert b"content-type: application/x-custom" in load  # as the client sent it
    assert f"{HEADER_LENGTH}: {headers[HEADER_LENGTH]}".encode() in load


async def test_a_lone_small_v2_request_goes_alone_with_its_header_length() -> None:
    api = FakeModelApi()
    server, coalescer = await forwarder_for(api)
    body, headers = image_request(SMALL)
    async with server:
        await infer_v2(coalescer, "solo", (body, headers))
        await coalescer.client.close()
    assert api.calls == [["solo"]] and paths(api) == ["/v2/models/mnist/infer"]
    assert f"{HEADER_LENGTH}: {headers[HEADER_LENGTH]}".encode() in api.heads[0]


async def test_a_model_not_served_is_each_requests_own_404_without_a_retry() -> None:
    api = FakeModelApi(serves="leukemia")
    server, coalescer = await forwarder_for(api)
    async with server:
        answers = await asyncio.gather(
            *(predict(coalescer, f"r{i}") for i in range(2)),
            *(infer_v2(coalescer, f"v{i}", image_request(SMALL)) for i in range(2)),
        )
        await coalescer.client.close()
    assert paths(api) == [
        "/v1/models/mnist/infer/batch",
        "/v1/models/mnist/predict/batch?app_type=cli",
    ]
    assert [a.status for a in answers] == [404] * 4
    assert [orjson.loads(a.body)["request_id"] for a in answers] == ["r0", "r1", "v0", "v1"]
