"""The multipart fast path: the bytes the full parser would give, or no answer at all
(then the full parser decides); never a different file, never a different error."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from urllib3 import encode_multipart_formdata

from harness.images import UPLOAD_PNG
from harness.raw_http import upload_request
from mlserve_common.runtime import image_upload
from mlserve_common.runtime.errors import MLServeError
from mlserve_common.runtime.image_upload import read_image_bytes, single_file

B = "mlserve-test-boundary"
CT = f"multipart/form-data; boundary={B}"


def part(headers: str, content: bytes, boundary: str = B) -> bytes:
    return f"--{boundary}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"


def closing(boundary: str = B) -> bytes:
    return f"--{boundary}--\r\n".encode()


FILE_HEADERS = (
    'Content-Disposition: form-data; name="file"; filename="x.png"\r\nContent-Type: image/png'
)

# (body, content type, what the fast path answers: the file, or None for "ask the parser")
CASES = {
    "curl/wrk layout": (part(FILE_HEADERS, UPLOAD_PNG) + closing(), CT, UPLOAD_PNG),
    "no final CRLF": (part(FILE_HEADERS, UPLOAD_PNG) + closing()[:-2], CT, UPLOAD_PNG),
    "quoted boundary": (
        part(FILE_HEADERS, UPLOAD_PNG) + closing(),
        f'multipart/form-data; boundary="{B}"',
        UPLOAD_PNG,
    ),
    "disposition only": (
        part('Content-Disposition: form-data; name="file"; filename="x.png"', UPLOAD_PNG)
        + closing(),
        CT,
        UPLOAD_PNG,
    ),
    "another field name": (
        part('Content-Disposition: form-data; name="image"; filename="file"', UPLOAD_PNG)
        + closing(),
        CT,
        UPLOAD_PNG,
    ),
    "empty file": (part(FILE_HEADERS, b"") + closing(), CT, b""),
    "a field, not a file": (
        part('Content-Disposition: form-data; name="file"', UPLOAD_PNG) + closing(),
        CT,
        None,
    ),
    "two parts": (
        part('Content-Disposition: form-data; name="note"', b"hi")
        + part(FILE_HEADERS, UPLOAD_PNG)
        + closing(),
        CT,
        None,
    ),
    "file then field": (
        part(FILE_HEADERS, UPLOAD_PNG)
        + part('Content-Disposition: form-data; name="n"', b"1")
        + closing(),
        CT,
        None,
    ),
    "preamble": (b"preamble\r\n" + part(FILE_HEADERS, UPLOAD_PNG) + closing(), CT, None),
    "extra header": (
        part(FILE_HEADERS + "\r\nContent-Transfer-Encoding: base64", UPLOAD_PNG) + closing(),
        CT,
        None,
    ),
    "filename*": (
        part("Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''x.png", UPLOAD_PNG)
        + closing(),
        CT,
        None,
    ),
    "truncated": (part(FILE_HEADERS, UPLOAD_PNG), CT, None),
    "wrong boundary": (part(FILE_HEADERS, UPLOAD_PNG, "other") + closing("other"), CT, None),
    "no boundary": (part(FILE_HEADERS, UPLOAD_PNG) + closing(), "multipart/form-data", None),
    # Issue 27: layouts the full parser reads otherwise go to it (and 400 at every size).
    "duplicated boundary": (
        part(FILE_HEADERS, UPLOAD_PNG) + closing(),
        f"{CT}; boundary=other",
        None,
    ),
    "quoted boundary with ;": (
        part(FILE_HEADERS, UPLOAD_PNG) + closing(),
        f'multipart/form-data; boundary="{B};x"',
        None,
    ),
    "unterminated quote": (
        part(FILE_HEADERS, UPLOAD_PNG) + closing(),
        f'multipart/form-data; boundary="{B}',
        None,
    ),
    'name="a;filename="b"': (
        part('Content-Disposition: form-data; name="a;filename="b"', UPLOAD_PNG) + closing(),
        CT,
        None,
    ),
    "nine headers": (
        part(FILE_HEADERS + "\r\nContent-Type: x" * 8, UPLOAD_PNG) + closing(),
        CT,
        None,
    ),
}


def read(body: bytes, content_type: str) -> bytes | str:
    """What read_image_bytes answers: the bytes, or the error's code and message."""
    try:
        return asyncio.run(read_image_bytes(upload_request([body], content_type), 10 * 2**20))
    except MLServeError as exc:
        return f"{exc.code}: {exc}"


@pytest.mark.parametrize("name", CASES)
def test_the_fast_path_cuts_only_the_plain_layout(name: str) -> None:
    body, content_type, expected = CASES[name]
    assert single_file(body, content_type) == expected


@pytest.mark.parametrize("name", CASES)
def test_the_answer_is_the_full_parsers_answer(name: str, monkeypatch) -> None:
    body, content_type, _ = CASES[name]
    fast = read(body, content_type)
    monkeypatch.setattr(image_upload, "FAST_PATH_MAX_BYTES", -1)  # the full parser only
    assert fast == read(body, content_type)


def test_bodies_real_clients_build_take_the_fast_path() -> None:
    built = httpx.Request("POST", "http://x/predict", files={"file": ("seven.png", UPLOAD_PNG)})
    body = built.read()
    assert single_file(body, built.headers["content-type"]) == UPLOAD_PNG
    body, content_type = encode_multipart_formdata({"file": ("seven.png", UPLOAD_PNG, "image/png")})
    assert single_file(body, content_type) == UPLOAD_PNG  # requests' encoder
