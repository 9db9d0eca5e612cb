"""The gRPC front end's translation on its own: tritonclient's messages to the V2 bodies
model_api parses (checked with model_api's own parser), model_api's answers back, and its
errors as status codes."""

from __future__ import annotations

import struct

import grpc
import numpy as np
import orjson
import pytest
from tritonclient.grpc import service_pb2

from mlserve_common.runtime.errors import InvalidRequestError
from model_api.v2_codec import Output, encode_response, parse_request
from web_api.gateway import grpc_codec
from web_api.gateway.errors import UnknownModelError

Input = service_pb2.ModelInferRequest.InferInputTensor
Wanted = service_pb2.ModelInferRequest.InferRequestedOutputTensor
Contents = service_pb2.InferTensorContents


def parsed(request: service_pb2.ModelInferRequest):  # noqa: ANN201 - model_api's InferRequest
    call = grpc_codec.infer_call(request)
    return call, parse_request(call.body, call.headers()[grpc_codec.v2_wire.HEADER_LENGTH])


# requests
def test_raw_contents_go_as_they_are_and_every_output_is_asked_in_binary() -> None:
    image = b"\x89PNG not really"
    raw = struct.pack("<I", len(image)) + image
    request = service_pb2.ModelInferRequest(
        model_name="mnist",
        model_version="1",
        id="req-1",
        inputs=[Input(name="image", datatype="BYTES", shape=[1])],
        outputs=[Wanted(name="probabilities")],
        raw_input_contents=[raw],
    )
    request.parameters["flag"].bool_param = True
    request.parameters["count"].int64_param = 3
    request.parameters["note"].string_param = "x"
    request.parameters["ratio"].double_param = 0.5
    request.inputs[0].parameters["tag"].string_param = "t"
    call, v2 = parsed(request)
    assert call.target == "/v2/models/mnist/versions/1/infer"
    assert v2.id == "req-1" and v2.binary_output
    assert v2.parameters == {
        "flag": True,
        "count": 3,
        "note": "x",
        "ratio": 0.5,
        "binary_data_output": True,
    }
    (tensor,) = v2.inputs
    assert (tensor.name, tensor.datatype, tensor.shape, tensor.data) == (
        "image",
        "BYTES",
        (1,),
        [image],
    )
    assert [(o.name, o.binary) for o in v2.outputs] == [("probabilities", True)]
    head = orjson.loads(call.body[: call.header_length])
    assert head["inputs"][0]["parameters"] == {"tag": "t", "binary_data_size": len(raw)}


@pytest.mark.parametrize(
    ("datatype", "field", "values"),
    [
        ("BOOL", "bool_contents", [True, False]),
        ("INT8", "int_contents", [-128, 127]),
        ("INT16", "int_contents", [-300, 300]),
        ("INT32", "int_contents", [-(2**31), 2**31 - 1]),
        ("INT64", "int64_contents", [-(2**63), 2**63 - 1]),
        ("UINT8", "uint_contents", [0, 255]),
        ("UINT16", "uint_contents", [0, 65535]),
        ("UINT32", "uint_contents", [0, 2**32 - 1]),
        ("UINT64", "uint64_contents", [0, 2**64 - 1]),
        ("FP32", "fp32_contents", [0.25, -1.5]),
        ("FP64", "fp64_contents", [1e-300, 2.5]),
    ],
)
def test_typed_contents_arrive_as_the_same_numbers(datatype: str, field: str, values: list) -> None:
    tensor = Input(name="x", datatype=datatype, shape=[2], contents=Contents(**{field: values}))
    _, v2 = parsed(service_pb2.ModelInferRequest(model_name="m", inputs=[tensor]))
    assert v2.inputs[0].data.tolist() == values


def test_typed_bytes_contents_are_length_prefixed() -> None:
    tensor = Input(
        name="s", datatype="BYTES", shape=[3], contents=Contents(bytes_contents=[b"a", b"", b"xyz"])
    )
    _, v2 = parsed(service_pb2.ModelInferRequest(model_name="m", inputs=[tensor]))
    assert v2.inputs[0].data == [b"a", b"", b"xyz"]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            service_pb2.ModelInferRequest(
                model_name="m",
                inputs=[Input(name="a", datatype="FP32", shape=[1]), Input(name="b")],
                raw_input_contents=[b"\0\0\0\0"],
            ),
            "raw_input_contents holds 1 tensors for 2 inputs",
        ),
        (
            service_pb2.ModelInferRequest(
                model_name="m",
                inputs=[
                    Input(
                        name="a", datatype="FP32", shape=[1], contents=Contents(fp32_contents=[1])
                    )
                ],
                raw_input_contents=[b"\0\0\0\0"],
            ),
            "not both",
        ),
        (
            service_pb2.ModelInferRequest(
                model_name="m", inputs=[Input(name="h", datatype="FP16", shape=[1])]
            ),
            "raw_input_contents",
        ),
        (
            service_pb2.ModelInferRequest(
                model_name="m",
                inputs=[
                    Input(
                        name="i", datatype="INT8", shape=[1], contents=Contents(int_contents=[300])
                    )
                ],
            ),
            "out of INT8's range",
        ),
    ],
)
def test_what_no_v2_body_can_say_is_invalid(
    request_: service_pb2.ModelInferRequest, message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        grpc_codec.infer_call(request_)


def test_classification_is_refused_not_ignored() -> None:
    wanted = Wanted(name="probabilities")
    wanted.parameters["classification"].int64_param = 3
    request = service_pb2.ModelInferRequest(
        model_name="m",
        inputs=[Input(name="x", datatype="FP32", shape=[1], contents=Contents(fp32_contents=[1]))],
        outputs=[wanted],
    )
    with pytest.raises(InvalidRequestError, match="classification is not supported"):
        grpc_codec.infer_call(request)


@pytest.mark.parametrize(
    ("name", "version"), [("", ""), ("..", ""), ("a/b", ""), ("m?x=1", ""), ("mnist", "../2")]
)
def test_only_plain_names_reach_model_apis_path(name: str, version: str) -> None:
    with pytest.raises(UnknownModelError, match="not served here"):
        grpc_codec.model_path(name, version)
    if not version:
        with pytest.raises(UnknownModelError):
            grpc_codec.repository_path(name, "load")


def test_paths_of_plain_names() -> None:
    assert grpc_codec.model_path("mnist") == "/v2/models/mnist"
    assert grpc_codec.model_path("mnist", "2") == "/v2/models/mnist/versions/2"
    assert grpc_codec.repository_path("leukemia", "unload") == (
        "/v2/repository/models/leukemia/unload"
    )


# answers
def test_binary_outputs_become_raw_output_contents() -> None:
    rows = np.arange(20, dtype=np.float32).reshape(2, 10) / 20
    body, length = encode_response(
        "mnist", "1", "req-1", [Output("probabilities", rows, True)], {"digest": "abc"}
    )
    response = grpc_codec.infer_response(body, str(length))
    assert (response.model_name, response.model_version, response.id) == ("mnist", "1", "req-1")
    assert response.parameters["digest"].string_param == "abc"
    (output,) = response.outputs
    assert (output.name, output.datatype, list(output.shape)) == ("probabilities", "FP32", [2, 10])
    np.testing.assert_array_equal(
        np.frombuffer(response.raw_output_contents[0], "<f4").reshape(2, 10), rows
    )


def test_json_outputs_are_packed_as_raw_too() -> None:
    answer = {
        "model_name": "m",
        "outputs": [
            {"name": "p", "datatype": "FP32", "shape": [2], "data": [0.5, 0.25]},
            {"name": "s", "datatype": "BYTES", "shape": [2], "data": ["ab", "c"]},
        ],
        "parameters": {"on": True, "n": 2, "x": 1.5, "s": "v", "nested": {"a": 1}},
    }
    response = grpc_codec.infer_response(orjson.dumps(answer), None)
    assert response.id == "" and response.model_version == ""
    assert np.frombuffer(response.raw_output_contents[0], "<f4").tolist() == [0.5, 0.25]
    assert response.raw_output_contents[1] == b"\x02\0\0\0ab\x01\0\0\0c"
    parameters = response.parameters
    assert parameters["on"].bool_param is True and parameters["n"].int64_param == 2
    assert parameters["x"].double_param == 1.5 and parameters["s"].string_param == "v"
    assert parameters["nested"].string_param == '{"a":1}'


def test_metadata_and_index_answers() -> None:
    server = grpc_codec.server_metadata(
        b'{"name":"mlserve","version":"0.1.0","extensions":["model_repository"]}'
    )
    assert (server.name, server.version, list(server.extensions)) == (
        "mlserve",
        "0.1.0",
        ["model_repository"],
    )
    model = grpc_codec.model_metadata(
        orjson.dumps(
            {
                "name": "mnist",
                "versions": ["1", 2],
                "platform": "onnxruntime_onnx",
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
                "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
                "parameters": {"labels": ["0"]},
            }
        )
    )
    assert list(model.versions) == ["1", "2"] and list(model.inputs[0].shape) == [-1, 1, 28, 28]
    assert model.outputs[0].name == "probabilities"
    index = grpc_codec.repository_index(
        b'[{"name":"mnist","version":"1","state":"READY"},'
        b'{"name":"leukemia","state":"UNAVAILABLE","reason":"not loaded"}]'
    )
    assert [(m.name, m.version, m.state, m.reason) for m in index.models] == [
        ("mnist", "1", "READY", ""),
        ("leukemia", "", "UNAVAILABLE", "not loaded"),
    ]


# errors
@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "invalid_request", grpc.StatusCode.INVALID_ARGUMENT),
        (415, "unsupported_media_type", grpc.StatusCode.INVALID_ARGUMENT),
        (422, "no_content", grpc.StatusCode.INVALID_ARGUMENT),
        (418, "teapot", grpc.StatusCode.INVALID_ARGUMENT),
        (401, "unauthorized", grpc.StatusCode.UNAUTHENTICATED),
        (403, "forbidden", grpc.StatusCode.PERMISSION_DENIED),
        (404, "model_not_found", grpc.StatusCode.NOT_FOUND),
        (409, "model_protected", grpc.StatusCode.FAILED_PRECONDITION),
        (413, "payload_too_large", grpc.StatusCode.RESOURCE_EXHAUSTED),
        (429, "rate_limited", grpc.StatusCode.RESOURCE_EXHAUSTED),
        (503, "overloaded", grpc.StatusCode.RESOURCE_EXHAUSTED),
        (503, "busy", grpc.StatusCode.RESOURCE_EXHAUSTED),
        (503, "gateway_saturated", grpc.StatusCode.RESOURCE_EXHAUSTED),
        (503, "model_api_unavailable", grpc.StatusCode.UNAVAILABLE),
        (503, "model_not_ready", grpc.StatusCode.UNAVAILABLE),
        (504, "model_api_timeout", grpc.StatusCode.DEADLINE_EXCEEDED),
        (499, "client_disconnected", grpc.StatusCode.CANCELLED),
        (500, "internal_error", grpc.StatusCode.INTERNAL),
    ],
)
def test_http_errors_map_to_status_codes(status: int, code: str, expected: grpc.StatusCode) -> None:
    assert grpc_codec.status_code(status, code) is expected


def test_upstream_errors_keep_the_envelopes_message_and_code() -> None:
    error = grpc_codec.upstream_error(
        404, b'{"error":"model x is not served","code":"model_not_found"}'
    )
    assert (error.status_code, error.code, error.message) == (
        404,
        "model_not_found",
        "model x is not served",
    )
    odd = grpc_codec.upstream_error(502, b"<html>bad gateway</html>")
    assert (odd.status_code, odd.code, odd.message) == (502, "error", "model_api answered 502")
