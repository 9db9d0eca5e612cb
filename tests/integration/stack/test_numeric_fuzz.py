"""Every number a request carries, fuzzed against real processes (issue 27): no 5xx, and
both services stay up and log nothing unexpected.

A number reaches the services as a header (Content-Length, Inference-Header-Content-Length),
a query parameter (app_type, and anything passed through to /v2), a field of a V2 request's
JSON (`shape`, `parameters.binary_data_size`) or of the batch wire format between the
gateway and model_api (`sizes`, `header_lengths`). Each is sent written every odd way:
other scripts' digits (`²`, `١٢`, fullwidth), signs, spaces, underscores, decimal points,
empty, and huge. Requests go over raw sockets, so the headers are exactly the bytes
generated (a client library would write its own Content-Length), one connection each with
`Connection: close`. Examples are derandomized: CI runs the same ones every time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, currently_in_test_context, example, given, note, settings
from hypothesis import strategies as st

from harness.bad_inputs import png_claiming
from harness.hostile import RawAnswer, raw_exchange
from harness.images import drawn_digit_seven, encode
from harness.net import port_of
from harness.services import RunningServices, running_services, slow_client_timeouts
from harness.v2 import image_request
from mlserve_common.wire import image_batch
from mlserve_common.wire.cache_keys import image_sha256

SLOW_CLIENT_SECONDS = 2  # a missed case waits 2 s for a body that never comes, not 60
MAX_BODY = 10 * 1024 * 1024  # the services' default body limit
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

PNG = encode(drawn_digit_seven(28, "L"))
SMALL_PNG = png_claiming(28, 28)
V2_BODY, V2_HEADERS = image_request(PNG)
V2_HEAD_LENGTH = int(V2_HEADERS["inference-header-content-length"])
IMAGES_TYPE = image_batch.IMAGES_TYPE.encode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServices]:
    timeouts = slow_client_timeouts(SLOW_CLIENT_SECONDS)
    with running_services(
        tmp_path_factory.mktemp("numeric-fuzz"), "mnist", web_api_env=timeouts, **timeouts
    ) as services:
        yield services


# What a number may be written as ----------------------------------------------------------
ODD_DIGIT = st.characters(categories=["Nd", "No", "Nl"], exclude_characters="0123456789")
"""Digits of other scripts, superscripts, fractions, Roman numerals: `²`, `١`, `１`, `½`."""
ODD_PART = st.sampled_from(
    ["", "+", "-", " ", "\t", "_", ".", ",", "\xa0", "e", "e5", "0x", "0b", "j", "  "]
)
ASCII_DIGITS = st.text("0123456789", min_size=1, max_size=4)


def odd_numbers(near: int = 7) -> st.SearchStrategy[str]:
    """Text that looks like a number, or almost; around `near` (the right value, where there
    is one), so that some forms a lenient reader would take for it come up often."""
    return st.one_of(
        st.sampled_from(
            [
                "²",
                "³",
                "¹",
                "١٢",
                "１２",
                "+1",
                "-1",
                " 1",
                "1 ",
                "1_0",
                "",
                "1.0",
                "1e3",
                "-0",
                "NaN",
                "inf",
                "0x10",
                "18446744073709551615",  # 2**64 - 1
                "18446744073709551616",  # 2**64
                "9" * 19,
                "9" * 100,
                "9" * 5000,  # past int()'s 4,300 digits
            ]
        ),
        st.sampled_from(
            [
                f"{near}",
                f"00{near}",
                "0" * 200 + f"{near}",
                f" {near}",
                f"{near} ",
                f"\t{near}",
                f"+{near}",
                f"-{near}",
                f"{near}.0",
                f"{near}e0",
                f"{near}²",
                f"²{near}",
                f"{near}_0",
                f"{near:_}",
                f"{near:,}",
                f"{near} {near}",
                f"{near},{near}",
                "".join(chr(0x0660 + int(d)) for d in str(near)),  # Arabic-Indic
                "".join(chr(0xFF10 + int(d)) for d in str(near)),  # fullwidth
            ]
        ),
        st.builds(lambda a, b, c: a + b + c, ODD_PART, ASCII_DIGITS, ODD_PART),
        st.text(ODD_DIGIT, min_size=1, max_size=4),
        st.lists(st.one_of(ODD_DIGIT, st.sampled_from("0123456789+-_. ")), max_size=6).map("".join),
        st.integers(min_value=19, max_value=400).map(lambda n: "9" * n),
    )


def header_bytes(text: str, utf8: bool) -> bytes:
    """A header value as a client could send it: Latin-1 where it can be, else UTF-8."""
    if not utf8:
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            pass
    return text.encode("utf-8")


def header_values(near: int) -> st.SearchStrategy[bytes]:
    return st.builds(header_bytes, odd_numbers(near), st.booleans()).filter(
        lambda value: not re.search(rb"[\r\n\0]", value)  # one header each, not a new one
    )


JSON_NUMBERS = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "-0",
            "1.0",
            "1e400",  # infinity to a float parser
            "-1e400",
            "1e-400",
            "0.5",
            "true",
            "false",
            "null",
            "[]",
            "{}",
            "[1]",
            '"1"',
            '"²"',
            '"١٢"',
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "1" + "0" * 400,
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: orjson.dumps(f).decode()),
    odd_numbers().map(json.dumps),
)
"""JSON tokens where a JSON integer belongs: every kind of number, and other kinds too."""


# Sending ----------------------------------------------------------------------------------
def exchange(
    url: str,
    target: str,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | tuple = (),
    method: str = "POST",
    content_length: bytes | None = None,
) -> RawAnswer:
    """One request on a fresh connection, its head exactly these bytes; the answer."""
    if content_length is None:
        content_length = str(len(body)).encode()
    head = [f"{method} {target} HTTP/1.1".encode(), b"Host: fuzz", b"Connection: close"]
    head += [b"Content-Length: " + content_length]
    head += [name + b": " + value for name, value in headers]
    answer = raw_exchange(port_of(url), [b"\r\n".join(head) + b"\r\n\r\n" + body], timeout=30)
    if currently_in_test_context():
        note(f"{method} {url}{target} -> {answer.status} {answer.body[:300]!r}")
    return answer


def assert_answered_without_5xx(answer: RawAnswer) -> None:
    assert answer.status != 0, "the connection closed without an answer"
    assert answer.status < 500, (answer.status, answer.body[:500])
    if answer.status >= 400:  # every refusal is the one envelope
        envelope = answer.json()
        assert envelope["code"] and envelope["error"], envelope


def assert_still_up(stack: RunningServices) -> None:
    for process in (stack.model_api, stack.web_api):
        assert process.process is not None and process.process.poll() is None
    assert httpx.get(stack.url + "/health", timeout=10).status_code == 200
    for process in (stack.model_api, stack.web_api):
        log = process.log.read_text(errors="replace")
        for sign in ("unhandled error", "Exception in ASGI application", "Traceback"):
            assert sign not in log, log[log.index(sign) - 200 : log.index(sign) + 3000]


# The regression of issue 27 ---------------------------------------------------------------
@pytest.mark.parametrize("value", ["²", "³", "¹"])
def test_a_superscript_header_length_is_a_400_on_model_api_and_through_the_gateway(
    stack: RunningServices, value: str
) -> None:
    """`'²'.isdigit()` is true but `int('²')` fails: that was a 500 and a traceback."""
    header = [(b"Inference-Header-Content-Length", value.encode("latin-1"))]
    binary_type = [(b"Content-Type", b"application/octet-stream")]
    targets = [
        (stack.model_api_url, "/v2/models/mnist/infer"),
        (stack.model_api_url, "/v2/models/mnist/versions/1/infer"),
        (stack.url, "/v2/models/mnist/infer"),  # the gateway's coalescer looks first
        (stack.url, "/v2/models/mnist/infer?via=passthrough"),  # a query: passed through
    ]
    for url, target in targets:
        answer = exchange(url, target, V2_BODY, header + binary_type)
        assert answer.status == 400, (url, target, answer)
        envelope = answer.json()
        assert envelope["code"] == "invalid_request"
        assert envelope["error"] == (
            "Inference-Header-Content-Length must be a whole number of bytes written in ASCII "
            f"digits (0-9), not {value!r}"
        )
    good = [(b"Inference-Header-Content-Length", str(V2_HEAD_LENGTH).encode())]
    for url in (stack.model_api_url, stack.url):  # the same request, with a number: answered
        assert exchange(url, "/v2/models/mnist/infer", V2_BODY, good + binary_type).status == 200
    assert_still_up(stack)


# Headers ----------------------------------------------------------------------------------
V2_BATCH_BODY = image_batch.encode_images(
    [image_batch.Item("a", V2_BODY, V2_HEAD_LENGTH), image_batch.Item("b", V2_BODY, V2_HEAD_LENGTH)]
)
IMAGES_BATCH_BODY = image_batch.encode_images([image_batch.Item("a", PNG)])
V2_INFER_TARGETS = [
    ("model_api", "/v2/models/mnist/infer", V2_BODY),
    ("model_api", "/v2/models/mnist/versions/1/infer", V2_BODY),
    ("model_api", "/v1/models/mnist/infer/batch", V2_BATCH_BODY),  # the header is ignored
    ("model_api", "/v1/models/mnist/predict/batch", IMAGES_BATCH_BODY),  # there
    ("web_api", "/v2/models/mnist/infer", V2_BODY),
    ("web_api", "/v2/models/mnist/versions/1/infer", V2_BODY),
    ("web_api", "/v2/models/mnist/infer?q=1", V2_BODY),  # a query: passed through as sent
]


def url_of(stack: RunningServices, service: str) -> str:
    return stack.model_api_url if service == "model_api" else stack.url


@given(value=header_values(V2_HEAD_LENGTH), where=st.sampled_from(V2_INFER_TARGETS))
@example(value=str(V2_HEAD_LENGTH).encode(), where=V2_INFER_TARGETS[4])  # right: 200
@example(value=b"%d " % V2_HEAD_LENGTH, where=V2_INFER_TARGETS[0])  # HTTP's spaces: 200
@example(value=b"\xb2", where=V2_INFER_TARGETS[4])  # issue 27
@EXAMPLES
def test_inference_header_content_length_fuzzed(
    stack: RunningServices, value: bytes, where: tuple[str, str, bytes]
) -> None:
    service, target, body = where
    content_type = IMAGES_TYPE if "batch" in target else b"application/octet-stream"
    headers = [(b"Inference-Header-Content-Length", value), (b"Content-Type", content_type)]
    url = url_of(stack, service)
    if service == "web_api" and "?" not in target:
        # a few at once: they may share a call to model_api (the coalescer's batch format)
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: exchange(url, target, body, headers), range(3)))
    else:
        answers = [exchange(url, target, body, headers)]
    for answer in answers:
        assert_answered_without_5xx(answer)
    if value.strip(b" \t").lstrip(b"0") == str(V2_HEAD_LENGTH).encode() or "batch" in target:
        assert {answer.status for answer in answers} == {200}, answers


V2_TYPE = b"application/octet-stream"
CONTENT_LENGTH_TARGETS = [
    ("web_api", "/predict", PNG, b"image/png"),
    ("web_api", "/v1/models/mnist/predict", PNG, b"image/png"),
    ("web_api", "/v2/models/mnist/infer", V2_BODY, V2_TYPE),
    ("model_api", "/v1/models/mnist/predict", PNG, b"image/png"),
    ("model_api", "/v2/models/mnist/infer", V2_BODY, V2_TYPE),
    ("model_api", "/v1/models/mnist/predict/batch", IMAGES_BATCH_BODY, IMAGES_TYPE),
    ("model_api", "/v1/models/mnist/infer/batch", V2_BATCH_BODY, IMAGES_TYPE),
]


@given(
    case=st.sampled_from(CONTENT_LENGTH_TARGETS).flatmap(
        lambda where: st.tuples(st.just(where), header_values(len(where[2])))
    )
)
@example(case=(CONTENT_LENGTH_TARGETS[4], b"%d " % len(V2_BODY)))  # framed by the parser
@example(case=(CONTENT_LENGTH_TARGETS[0], b"%d\t" % len(PNG)))
@EXAMPLES
def test_content_length_fuzzed(
    stack: RunningServices, case: tuple[tuple[str, str, bytes, bytes], bytes]
) -> None:
    """The HTTP parser refuses most (400 `invalid_http`) before the services see them; what
    it lets through (`007`, a trailing space) the services read as ASCII digits."""
    (service, target, body, content_type), value = case
    plain = value.strip(b" \t")
    significant = plain.lstrip(b"0")
    declared = None
    if plain.isdigit():  # a number to the parser: send that many bytes, so none is awaited
        declared = int(significant or b"0") if len(significant) <= 20 else MAX_BODY + 1
        if len(body) < declared <= MAX_BODY:
            body = body + b" " * (declared - len(body))
    headers = [(b"Content-Type", content_type)]
    if content_type == V2_TYPE:
        headers.append((b"Inference-Header-Content-Length", str(V2_HEAD_LENGTH).encode()))
    answer = exchange(url_of(stack, service), target, body, headers, content_length=value)
    assert_answered_without_5xx(answer)
    if declared == len(body) and answer.status != 200:  # the right length, let through
        assert answer.json()["code"] == "invalid_http", answer


# Query parameters -------------------------------------------------------------------------
SHA = image_sha256(PNG)


@given(
    value=odd_numbers(),
    encoded=st.booleans(),
    where=st.sampled_from(
        [
            ("model_api", "POST", "/v1/models/mnist/predict?app_type={}"),
            ("model_api", "GET", f"/v1/models/mnist/predictions/{SHA}?app_type={{}}"),
            ("model_api", "POST", "/v1/models/mnist/predict/batch?app_type={}"),
            ("web_api", "GET", f"/v1/models/mnist/predictions/{SHA}?app_type={{}}"),
            ("web_api", "POST", "/v2/models/mnist/infer?binary_data_size={}"),
            ("web_api", "GET", "/v2/models/mnist?version={}"),
            ("model_api", "GET", "/v2/models/mnist/ready?n={}"),
            ("web_api", "POST", "/predict?app_type={}"),
        ]
    ),
)
@EXAMPLES
def test_query_parameters_fuzzed(
    stack: RunningServices, value: str, encoded: bool, where: tuple[str, str, str]
) -> None:
    service, method, target = where
    # percent-encoded as a client library writes it, or raw UTF-8 bytes (the parser or the
    # gateway refuses those where they cannot be a target)
    text = quote(value, safe="") if encoded else value.replace(" ", "%20")
    target = target.format(text)
    if method == "GET":
        body, headers = b"", []
    elif "infer" in target:
        body, headers = (
            V2_BODY,
            [(b"Inference-Header-Content-Length", str(V2_HEAD_LENGTH).encode())],
        )
    elif "batch" in target:
        body = image_batch.encode_images([image_batch.Item("a", PNG)])
        headers = [(b"Content-Type", IMAGES_TYPE)]
    else:
        body, headers = PNG, [(b"Content-Type", b"image/png")]
    raw = f"{method} {target} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n".encode()
    head = raw + b"Content-Length: %d\r\n" % len(body)
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    answer = raw_exchange(port_of(url_of(stack, service)), [head + b"\r\n" + body], timeout=30)
    note(f"{method} {target} -> {answer.status} {answer.body[:300]!r}")
    assert_answered_without_5xx(answer)


# JSON fields of a V2 request ---------------------------------------------------------------
def json_numbers_near(value: int) -> st.SearchStrategy[str]:
    """JSON tokens where `value` belongs: it, ways to almost write it, and anything else."""
    return st.one_of(
        st.sampled_from(
            [
                f"{value}",
                f"{value}.0",
                f"{value}e0",
                f"-{value}",
                f"{value}0",
                f"{value - 1}",
                f'"{value}"',
                f"[{value}]",
                f"{value + 2**64}",
            ]
        ),
        JSON_NUMBERS,
    )


BYTES_BLOB = len(PNG).to_bytes(4, "little") + PNG
FP32_BLOB = b"\0" * (784 * 4)


@given(
    binary_input=st.booleans(),
    fuzz=st.sampled_from(["size", "shape", "both"]),
    where=st.sampled_from(["model_api", "web_api"]),
    data=st.data(),
)
@EXAMPLES
def test_v2_binary_data_size_and_shape_fuzzed(
    stack: RunningServices, binary_input: bool, fuzz: str, where: str, data: st.DataObject
) -> None:
    """`parameters.binary_data_size` and `shape`, written every way JSON allows and some
    it does not, on the image input (BYTES) and on the model's own (FP32)."""
    if binary_input:
        blob, name, datatype, real_shape = BYTES_BLOB, "image", "BYTES", [1]
    else:
        blob, name, datatype, real_shape = FP32_BLOB, "input", "FP32", [1, 1, 28, 28]
    size = str(len(blob))
    if fuzz in ("size", "both"):
        size = data.draw(json_numbers_near(len(blob)), label="binary_data_size")
    shape = [str(d) for d in real_shape]
    if fuzz in ("shape", "both"):
        shape = data.draw(
            st.lists(st.one_of(*map(json_numbers_near, real_shape)), max_size=5), label="shape"
        )
    head = (
        f'{{"inputs":[{{"name":"{name}","datatype":"{datatype}","shape":[{",".join(shape)}],'
        f'"parameters":{{"binary_data_size":{size}}}}}]}}'
    ).encode()
    headers = [
        (b"Inference-Header-Content-Length", str(len(head)).encode()),
        (b"Content-Type", b"application/octet-stream"),
    ]
    answer = exchange(url_of(stack, where), "/v2/models/mnist/infer", head + blob, headers)
    assert_answered_without_5xx(answer)


@given(
    shape=st.lists(JSON_NUMBERS, min_size=0, max_size=5),
    depth=st.one_of(  # around Python's recursion limit (1,000) and orjson's (1,024)
        st.sampled_from([0, 1, 2, 960, 980, 1000, 1023, 1024, 1025]),
        st.integers(min_value=0, max_value=1200),
    ),
    where=st.sampled_from(["model_api", "web_api"]),
)
@EXAMPLES
def test_v2_json_data_shape_fuzzed(
    stack: RunningServices, shape: list[str], depth: int, where: str
) -> None:
    """A shape against JSON `data`, nested as deep as a client likes (orjson allows 1,024
    levels, past Python's recursion limit)."""
    data = "[" * depth + "0" + "]" * depth
    body = (
        f'{{"inputs":[{{"name":"input","datatype":"FP32","shape":[{",".join(shape)}],'
        f'"data":{data}}}]}}'
    ).encode()
    headers = [(b"Content-Type", b"application/json")]
    answer = exchange(url_of(stack, where), "/v2/models/mnist/infer", body, headers)
    assert_answered_without_5xx(answer)


# The batch wire format (gateway -> model_api) -----------------------------------------------
@given(
    sizes=st.one_of(st.none(), st.lists(JSON_NUMBERS, min_size=0, max_size=3)),
    header_lengths=st.one_of(st.none(), st.lists(JSON_NUMBERS, min_size=0, max_size=3)),
    v2=st.booleans(),
)
@EXAMPLES
def test_the_batch_format_length_fields_fuzzed(
    stack: RunningServices, sizes: list[str] | None, header_lengths: list[str] | None, v2: bool
) -> None:
    """`sizes` and `header_lengths` of `/v1/models/{m}/predict/batch` and `.../infer/batch`
    (None: the true ones)."""
    items = [V2_BODY, V2_BODY] if v2 else [PNG, SMALL_PNG]
    true_sizes = [str(len(item)) for item in items]
    true_lengths = [str(V2_HEAD_LENGTH)] * 2 if v2 else ["null", "null"]
    header = (
        f'{{"sizes":[{",".join(true_sizes if sizes is None else sizes)}],"ids":["a","b"],'
        f'"header_lengths":[{",".join(true_lengths if header_lengths is None else header_lengths)}]}}'
    ).encode()
    target = "/v1/models/mnist/infer/batch" if v2 else "/v1/models/mnist/predict/batch"
    headers = [(b"Content-Type", IMAGES_TYPE)]
    answer = exchange(stack.model_api_url, target, header + b"\n" + b"".join(items), headers)
    assert_answered_without_5xx(answer)
    if answer.status == 200:  # each item's own answer: no 5xx inside either
        rows = orjson.loads(answer.body.split(b"\n", 1)[0])["answers"]
        assert all(row[0] < 500 for row in rows), rows


def test_after_all_that_both_services_are_up_and_logged_nothing_unexpected(
    stack: RunningServices,
) -> None:
    assert_still_up(stack)
