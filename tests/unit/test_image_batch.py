"""The wire format of several images in one call, and of their answers."""

from __future__ import annotations

import orjson
import pytest

from mlserve_common.wire import image_batch
from mlserve_common.wire.image_batch import BatchFormatError, Item, ItemAnswer


def test_images_come_back_as_they_went_bytes_and_ids() -> None:
    items = [
        Item("a1", b"\x89PNG\r\n\x1a\n\n\n"),  # newlines inside an image
        Item("b-2", b""),
        Item("c.3", bytes(range(256)) * 3),
    ]
    assert image_batch.decode_images(image_batch.encode_images(items)) == items


def test_answers_come_back_with_status_body_and_retry_after() -> None:
    answers = [
        ItemAnswer(200, b'{"label":"7"}'),
        ItemAnswer(400, b'{"error":"not an image"}\n'),
        ItemAnswer(503, b"{}", "1"),
    ]
    body = image_batch.encode_answers(answers)
    assert image_batch.decode_answers(body, 3) == answers


def test_an_unsafe_request_id_is_dropped_not_passed_on() -> None:
    body = image_batch.encode_images([Item("x" * 65, b"1"), Item("bad\r\nid", b"2")])
    assert [i.request_id for i in image_batch.decode_images(body)] == ["", ""]


def _body(header: object, payload: bytes = b"") -> bytes:
    return orjson.dumps(header) + b"\n" + payload


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"no header line at all", "no header line"),
        (b"{not json}\nxx", "not JSON"),
        (_body([1, 2]), "not a JSON object"),
        (_body({"sizes": [2, 2], "ids": ["a", "b"]}, b"abc"), "sizes add up to 4"),
        (_body({"sizes": [], "ids": []}), "1 to 64"),
        (_body({"sizes": [1] * 65, "ids": ["a"] * 65}, b"x" * 65), "1 to 64"),
        (_body({"sizes": [-1, 2], "ids": ["a", "b"]}, b"x"), "1 to 64"),
        (_body({"sizes": [1.0], "ids": ["a"]}, b"x"), "1 to 64"),
        (_body({"sizes": [1], "ids": ["a", "b"]}, b"x"), "one id per image"),
        (_body({"sizes": [1]}, b"x"), "one id per image"),
    ],
)
def test_a_malformed_images_body_is_refused_with_the_reason(body: bytes, says: str) -> None:
    with pytest.raises(BatchFormatError, match=says):
        image_batch.decode_images(body)


@pytest.mark.parametrize(
    "header",
    [
        {"answers": [[200, 1, None]]},  # one answer for two images
        {"answers": [[200, 1], [200, 1]]},
        {"answers": [["200", 1, None], [200, 1, None]]},
        {"answers": [[200, 1, 5], [200, 1, None]]},
        {"other": []},
    ],
)
def test_an_answers_body_of_the_wrong_shape_is_refused(header: dict) -> None:
    with pytest.raises(BatchFormatError):
        image_batch.decode_answers(_body(header, b"xx"), 2)


def test_v2_requests_and_answers_carry_their_header_lengths() -> None:
    items = [Item("a", b'{"inputs":[]}' + b"\x01\x02", 13), Item("b", b'{"inputs":[]}')]
    body = image_batch.encode_images(items)
    assert image_batch.decode_images(body) == items
    answers = [ItemAnswer(200, b'{"outputs":[]}1234', None, 14), ItemAnswer(400, b"{}")]
    encoded = image_batch.encode_answers(answers)
    assert image_batch.decode_answers(encoded, 2) == answers
    # an answer without a header length is a row of three, as a gateway of the last
    # release reads it
    rows = orjson.loads(encoded.split(b"\n", 1)[0])["answers"]
    assert [len(row) for row in rows] == [4, 3]


def test_images_alone_are_encoded_as_before() -> None:
    body = image_batch.encode_images([Item("a", b"xy")])
    assert body == b'{"sizes":[2],"ids":["a"]}\nxy'


@pytest.mark.parametrize(
    "lengths",
    [[3], [None, 1], ["2"], [-1], [True], 5],  # over the item's size, too few, not ints
)
def test_a_header_length_that_does_not_fit_its_item_is_refused(lengths: object) -> None:
    with pytest.raises(BatchFormatError, match="header_lengths"):
        image_batch.decode_images(
            _body({"sizes": [2], "ids": ["a"], "header_lengths": lengths}, b"xy")
        )


@pytest.mark.parametrize("fourth", [-1, "14", 1.0, None])
def test_an_answer_with_a_bad_header_length_is_refused(fourth: object) -> None:
    with pytest.raises(BatchFormatError, match="header_length"):
        image_batch.decode_answers(_body({"answers": [[200, 2, None, fourth]]}, b"xx"), 1)


def test_traceparents_travel_with_their_items_and_bad_ones_are_dropped() -> None:
    good = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    items = [Item("a", b"1", traceparent=good), Item("b", b"2")]
    assert image_batch.decode_images(image_batch.encode_images(items)) == items
    assert b"traceparents" not in image_batch.encode_images([Item("c", b"3")])
    forged = [Item("d", b"4", traceparent="00-zz\r\n"), Item("e", b"5", traceparent=good[:-1])]
    decoded = image_batch.decode_images(image_batch.encode_images(forged))
    assert [item.traceparent for item in decoded] == [None, None]
    with pytest.raises(BatchFormatError, match="traceparents"):
        image_batch.decode_images(b'{"sizes": [1], "ids": ["a"], "traceparents": []}\n1')
