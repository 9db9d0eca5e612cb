"""The V2 request and response bodies, JSON and binary (Triton's binary tensor data)."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest

from harness import ROOT
from mlserve_common.wire.cache_keys import v2_cache_key
from model_api.v2_codec import Output, V2RequestError, encode_response, parse_request


def binary_request(inputs: list[tuple[dict, bytes]], outputs: list | None = None) -> tuple:
    head = {"inputs": [meta for meta, _ in inputs]}
    if outputs is not None:
        head["outputs"] = outputs
    encoded = orjson.dumps(head)
    return encoded + b"".join(blob for _, blob in inputs), str(len(encoded))


def bytes_elements(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def test_binary_bytes_and_fp32_inputs_are_read_back_exactly() -> None:
    images = bytes_elements(b"\x89PNG one", b"\xff\xd8 two")
    tensor = np.arange(6, dtype="<f4").reshape(1, 2, 3)
    body, length = binary_request(
        [
            (
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [2],
                    "parameters": {"binary_data_size": len(images)},
                },
                images,
            ),
            (
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": [1, 2, 3],
                    "parameters": {"binary_data_size": tensor.nbytes},
                },
                tensor.tobytes(),
            ),
        ],
        outputs=[{"name": "probabilities", "parameters": {"binary_data": True}}],
    )
    request = parse_request(body, length)
    assert request.inputs[0].data == [b"\x89PNG one", b"\xff\xd8 two"]
    np.testing.assert_array_equal(request.inputs[1].data, tensor.ravel())
    assert request.outputs[0].name == "probabilities" and request.outputs[0].binary


def test_json_data_nested_or_flat_and_base64_bytes() -> None:
    nested = orjson.dumps(
        {
            "inputs": [
                {"name": "input", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3, 4.5]]}
            ]
        }
    )
    assert parse_request(nested, None).inputs[0].data.tolist() == [1, 2, 3, 4.5]
    b64 = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [1],
                    "data": ["aGk="],
                    "parameters": {"content_type": "base64"},
                }
            ]
        }
    )
    assert parse_request(b64, None).inputs[0].data == [b"hi"]


def test_base64_named_by_the_request_applies_to_inputs_that_name_nothing() -> None:
    def parsed(request_parameters: dict, input_parameters: dict) -> list[bytes]:
        text = {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["aGk="]}
        body = {"inputs": [{**text, "parameters": input_parameters}]}
        request = parse_request(orjson.dumps({**body, "parameters": request_parameters}), None)
        return request.inputs[0].data

    assert parsed({"content_type": "base64"}, {}) == [b"hi"]
    assert parsed({"content_type": "base64"}, {"content_type": "str"}) == [b"aGk="]
    assert parsed({}, {}) == [b"aGk="]  # no content type: the text's UTF-8 bytes, as before


@pytest.mark.parametrize(
    ("body", "length", "message"),
    [
        (b"{not json", None, "cannot be parsed"),
        (b'{"inputs": []}', None, "non-empty 'inputs'"),
        (
            b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1]}]}',
            None,
            "shape says 2",
        ),
        (
            b'{"inputs": [{"name": "x", "datatype": "FP99", "shape": [1], "data": [1]}]}',
            None,
            "unknown datatype",
        ),
        (
            b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1], "data": [1]}]}',
            None,
            "non-negative",
        ),
        (
            b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": ["a"]}]}',
            None,
            "not all FP32",
        ),
        (
            b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}',
            None,
            "neither 'data' nor",
        ),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}', "999", "the body has"),
    ],
)
def test_malformed_requests_say_what_is_wrong(body: bytes, length, message: str) -> None:
    with pytest.raises(V2RequestError, match=message):
        parse_request(body, length)


def test_binary_sizes_that_do_not_add_up_are_refused() -> None:
    body, length = binary_request(
        [
            (
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [2],
                    "parameters": {"binary_data_size": 4},
                },
                b"\0" * 4,
            )
        ]
    )
    with pytest.raises(V2RequestError, match="take 8 bytes"):
        parse_request(body, length)
    body, length = binary_request(
        [
            (
                {
                    "name": "x",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": 6},
                },
                b"\x09\0\0\0ab",
            )
        ]
    )
    with pytest.raises(V2RequestError, match="cut off"):
        parse_request(body, length)
    body, length = binary_request(
        [
            (
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [1],
                    "parameters": {"binary_data_size": 4},
                },
                b"\0" * 4,
            )
        ]
    )
    parse_request(body, length)
    with pytest.raises(V2RequestError, match="after the last binary input"):
        parse_request(body + b"extra", length)


def test_a_response_is_json_or_json_then_binary() -> None:
    rows = np.array([[0.25, 0.75]], dtype=np.float32)
    text, length = encode_response("m", "1", "req-1", [Output("p", rows, binary=False)])
    assert length is None
    assert orjson.loads(text) == {
        "model_name": "m",
        "model_version": "1",
        "id": "req-1",
        "outputs": [{"name": "p", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75]}],
    }
    blob, length = encode_response("m", "1", None, [Output("p", rows, binary=True)])
    head = orjson.loads(blob[:length])
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 8}
    np.testing.assert_array_equal(np.frombuffer(blob[length:], "<f4"), rows.ravel())


def test_the_v2_cache_key_tells_every_part_apart() -> None:
    base = ("m", "v", [("image", "BYTES", (1,), b"abc")], ["p"])
    variants = [
        ("m2", "v", base[2], base[3]),
        ("m", "v2", base[2], base[3]),
        ("m", "v", [("img", "BYTES", (1,), b"abc")], base[3]),
        ("m", "v", [("image", "FP32", (1,), b"abc")], base[3]),
        ("m", "v", [("image", "BYTES", (1, 1), b"abc")], base[3]),
        ("m", "v", [("image", "BYTES", (1,), b"abd")], base[3]),
        ("m", "v", base[2], []),
        ("m", "v", [("image", "BYTES", (11,), b"abc")], base[3]),
    ]
    keys = {v2_cache_key(*base)} | {v2_cache_key(*v) for v in variants}
    assert len(keys) == len(variants) + 1
    assert v2_cache_key(*base) == v2_cache_key(*base)


def test_the_benchmark_sends_what_tritonclient_sends() -> None:
    """bench/peers/wrk.lua builds V2 requests by hand; they must be tritonclient's bytes."""
    import re

    import tritonclient.http as triton

    lua = (ROOT / "bench" / "peers" / "wrk.lua").read_text()
    head = re.search(r"^local V2_HEAD = '(.*)'$", lua, re.M).group(1)
    tail = re.search(r"^local V2_TAIL = '(.*)'$", lua, re.M).group(1)
    png = b"\x89PNG\r\n\x1a\n some image bytes"
    image = triton.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([png], dtype=np.object_))
    output = triton.InferRequestedOutput("probabilities", binary_data=True)
    body, header_length = triton.InferenceServerClient.generate_request_body([image], [output])
    ours = f"{head}{len(png) + 4}{tail}".encode() + struct.pack("<I", len(png)) + png
    assert ours == body and header_length == len(ours) - len(png) - 4


FP32_ONE = b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}'


@pytest.mark.parametrize(
    "length",
    ["²", "³", "¹", "١٢", "１２", "+1", "-1", "1_0", "1.0", "", " ", "0x1", "1 2", "\xa01"],
)
def test_a_header_length_is_ascii_digits_or_a_request_error(length: str) -> None:
    """Issue 27: `'²'.isdigit()` but `int('²')` fails: that was a 500; `int('١٢')` is 12."""
    with pytest.raises(V2RequestError) as refused:
        parse_request(FP32_ONE, length)
    assert str(refused.value).startswith(
        "Inference-Header-Content-Length must be a whole number of bytes written in ASCII digits"
    )


def test_a_huge_header_length_is_refused_without_building_it() -> None:
    for length in ("9" * 19, "9" * 10_000):
        with pytest.raises(V2RequestError, match="too large"):
            parse_request(FP32_ONE, length)
    with pytest.raises(V2RequestError, match="is 999,999 but the body has 74 bytes"):
        parse_request(FP32_ONE, "999999")
    assert parse_request(FP32_ONE, f"000{len(FP32_ONE)}").inputs[0].data.tolist() == [1.0]


def test_a_header_length_may_have_the_spaces_http_allows_around_a_value() -> None:
    """`Inference-Header-Content-Length: 74 ` reaches the service with its trailing space
    (the HTTP parser drops only the leading ones): it is still 74."""
    for length in (f" {len(FP32_ONE)}", f"{len(FP32_ONE)} ", f"\t{len(FP32_ONE)}\t "):
        assert parse_request(FP32_ONE, length).inputs[0].data.tolist() == [1.0]


def _one_input(**fields: object) -> bytes:
    return orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", **fields}]})


@pytest.mark.parametrize(
    "shape",
    [[2**63], [2**64 - 1], [2**32, 2**32], [2**62, 4], [1 << 26, 2]],
)
def test_a_shape_whose_count_overflows_64_bits_is_too_many_elements(shape: list) -> None:
    """numpy's int64 product wrapped around (`[2**32, 2**32]` had 0 elements) or failed
    (`[2**63]`: an OverflowError, a 500)."""
    with pytest.raises(V2RequestError, match="more than 67108864 elements"):
        parse_request(_one_input(shape=shape, data=[1]), None)


@pytest.mark.parametrize("shape", [[1.0], [True], ["1"], [-1], [None], "1", 1])
def test_a_shape_is_a_list_of_json_integers(shape: object) -> None:
    with pytest.raises(V2RequestError, match="'shape' must be a list of non-negative integers"):
        parse_request(_one_input(shape=shape, data=[1]), None)


@pytest.mark.parametrize("size", [True, False, 4.0, "4", -1, 2**63, 9])
def test_binary_data_size_is_a_json_integer_within_the_body(size: object) -> None:
    head = _one_input(shape=[1], parameters={"binary_data_size": size})
    with pytest.raises(V2RequestError, match="binary_data_size must be a whole number of bytes"):
        parse_request(head + b"\0" * 4, str(len(head)))


def test_data_nested_past_the_recursion_limit_is_a_request_error_not_a_crash() -> None:
    deep = b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": '
    deep += b"[" * 1000 + b"1" + b"]" * 1000 + b"}]}"
    assert parse_request(deep, None).inputs[0].data.tolist() == [1.0]
    with pytest.raises(V2RequestError, match="cannot be parsed"):  # orjson's own limit
        parse_request(
            deep.replace(b"[" * 1000, b"[" * 1100).replace(b"]" * 1000, b"]" * 1100), None
        )
