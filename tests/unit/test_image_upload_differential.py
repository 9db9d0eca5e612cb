"""One parser decides what an upload is: the fast path against the full parser, on hostile
layouts generated from the plain one, at both sizes (issue 27, item 2).

For every generated body, `read_image_bytes` must give the status and the bytes (or the
message) that the full parser alone gives, under `FAST_PATH_MAX_BYTES` (where the fast
path may answer) and padded above it (where the full parser always runs). The padding is a
run of CRLF before the first delimiter, which python-multipart skips unread (its START state
jumps to the first `-`), so the full parser reads the same layout at both sizes; a body that
starts with anything else is padded with its own first byte, refused at that byte at both
sizes. The explicit cases below also grow the file itself past the limit, as a client would.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from harness.images import UPLOAD_PNG
from harness.raw_http import upload_request
from mlserve_common.runtime import image_upload
from mlserve_common.runtime.errors import MLServeError
from mlserve_common.runtime.image_upload import FAST_PATH_MAX_BYTES, read_image_bytes, single_file

B = "fuzz-boundary"
B2 = "fuzz-other"
LIMIT = 10 * 2**20  # the read limit, well above both sizes
BIG = FAST_PATH_MAX_BYTES + 1

Answer = tuple[int, bytes | str]


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


def answer(runner: asyncio.Runner, chunks: list[bytes], content_type: str) -> Answer:
    """What the client gets: (200, the image) or (the error's status, its code and message)."""
    try:
        return 200, runner.run(read_image_bytes(upload_request(chunks, content_type), LIMIT))
    except MLServeError as exc:
        return exc.status_code, f"{exc.code}: {exc}"


def full_parser_answer(runner: asyncio.Runner, body: bytes, content_type: str) -> Answer:
    with mock.patch.object(image_upload, "FAST_PATH_MAX_BYTES", -1):
        return answer(runner, [body], content_type)


@functools.cache
def padding(fill: bytes) -> bytes:
    return fill * (BIG // len(fill) + 1)


def padded(body: bytes) -> list[bytes]:
    """The body past the fast path's limit, read by the full parser as it reads `body`, in
    two chunks."""
    return [padding(body[:1] if body[:1] not in (b"", b"-", b"\r", b"\n") else b"\r\n"), body]


def check(runner: asyncio.Runner, body: bytes, content_type: str) -> tuple[bytes | None, Answer]:
    """The invariant; returns what the fast path cut (None: it left the body to the parser)
    and the answer."""
    assert len(body) <= FAST_PATH_MAX_BYTES
    small = answer(runner, [body], content_type)
    assert small == full_parser_answer(runner, body, content_type)
    cut = single_file(body, content_type)
    if cut is not None:
        assert small == (200, cut)
    big = padded(body)
    assert sum(map(len, big)) > FAST_PATH_MAX_BYTES
    assert answer(runner, big, content_type) == small
    return cut, small


# ---- the layouts, and the parser's limits, as explicit regressions ----

DISPOSITION = 'Content-Disposition: form-data; name="file"; filename="x.png"'


def plain_body(
    boundary: str = B, disposition: str = DISPOSITION, content: bytes = UPLOAD_PNG, extra: str = ""
) -> bytes:
    head = f"--{boundary}\r\n{disposition}\r\n{extra}Content-Type: image/png\r\n\r\n"
    return head.encode() + content + f"\r\n--{boundary}--\r\n".encode()


GROWN = UPLOAD_PNG + b"\x00" * BIG  # the same file, past the fast path's limit

# (body, content type, the status at both sizes)
REGRESSIONS = {
    "duplicated boundary, body by the first": (
        plain_body(),
        f"multipart/form-data; boundary={B}; boundary={B2}",
        400,
    ),
    "duplicated boundary, body by the last": (
        plain_body(B2),
        f"multipart/form-data; boundary={B}; boundary={B2}",
        200,
    ),
    "quoted boundary with ;": (plain_body(), f'multipart/form-data; boundary="{B};x"', 400),
    "quoted boundary with ;, body by all of it": (
        plain_body(f"{B};x"),
        f'multipart/form-data; boundary="{B};x"',
        200,
    ),
    "unterminated quote": (plain_body(), f'multipart/form-data; boundary="{B}', 400),
    'name="a;filename="b"': (
        plain_body(disposition='Content-Disposition: form-data; name="a;filename="b"'),
        f"multipart/form-data; boundary={B}",
        400,
    ),
    "nine headers": (
        plain_body(extra="Content-Type: image/png\r\n" * 8),
        f"multipart/form-data; boundary={B}",
        400,
    ),
    "a header line over python-multipart's limit": (
        plain_body(disposition=DISPOSITION[:-1] + "x" * 4200 + '"'),
        f"multipart/form-data; boundary={B}",
        400,
    ),
    "a long header line within it": (
        plain_body(disposition=DISPOSITION[:-1] + "x" * 3900 + '"'),
        f"multipart/form-data; boundary={B}",
        200,
    ),
}


@pytest.mark.parametrize("name", REGRESSIONS)
def test_an_unusual_layout_gets_one_answer_at_every_size(name: str, runner: asyncio.Runner) -> None:
    body, content_type, status = REGRESSIONS[name]
    _, small = check(runner, body, content_type)
    assert small[0] == status
    # The client's own way to cross the limit: a bigger file in the same layout.
    grown = body.replace(UPLOAD_PNG, GROWN)
    assert answer(runner, [grown], content_type)[0] == status


def test_the_plain_layout_keeps_the_fast_path(runner: asyncio.Runner) -> None:
    for content_type in (
        f"multipart/form-data; boundary={B}",
        f'multipart/form-data; boundary="{B}"',
        f"Multipart/Form-Data;boundary={B}",
    ):
        cut, small = check(runner, plain_body(), content_type)
        assert cut == UPLOAD_PNG and small == (200, UPLOAD_PNG)


# ---- every header the fast path admits, built along its grammars ----

WHITESPACE = st.text(" \t", max_size=3)
HEADER_TEXT = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=20)
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3  # no CRLF-- in it, whatever the boundary
BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"


def any_case(draw: st.DrawFn, word: str) -> str:
    mask = draw(st.integers(0, 2 ** len(word) - 1))
    return "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(word))


def quoted(draw: st.DrawFn) -> str:
    """A quoted value without `"`, `\\`, `;`, CR or LF (any other Latin-1 character)."""
    text = draw(
        st.text(st.characters(max_codepoint=255, exclude_characters='"\\;\r\n'), max_size=12)
    )
    return f'"{text}"'


@st.composite
def admitted(draw: st.DrawFn) -> tuple[str, str, str, str | None]:
    """(Content-Type, boundary, Content-Disposition line, a part's Content-Type line or None)."""

    def ws() -> str:
        return draw(WHITESPACE)

    boundary = draw(st.text(BCHARS, min_size=1, max_size=70))
    value = f'"{boundary}"' if draw(st.booleans()) else boundary
    content_type = (
        f"{any_case(draw, 'multipart/form-data')}{ws()};{ws()}{any_case(draw, 'boundary')}"
        f"{ws()}={ws()}{value}{ws()}"
    )
    disposition = (
        f"{any_case(draw, 'content-disposition')}:{ws()}{any_case(draw, 'form-data')}{ws()};"
        f"{ws()}{any_case(draw, 'name')}{ws()}={ws()}{quoted(draw)}{ws()};"
        f"{ws()}{any_case(draw, 'filename')}{ws()}={ws()}{quoted(draw)}{ws()}"
    )
    part_type = None
    if draw(st.booleans()):
        part_type = any_case(draw, "content-type") + ":" + draw(HEADER_TEXT)
    return content_type, boundary, disposition, part_type


def test_what_the_fast_path_admits_reads_the_same_to_the_full_parser(
    runner: asyncio.Runner,
) -> None:
    """Whatever the grammars admit, python-multipart reads as one file with those bytes."""

    @settings(max_examples=150, derandomize=True, database=None, deadline=None)
    @given(admitted(), st.booleans())
    def same_file(headers: tuple[str, str, str, str | None], type_first: bool) -> None:
        content_type, boundary, disposition, part_type = headers
        lines = [disposition] if part_type is None else [disposition, part_type]
        lines = lines[::-1] if type_first else lines
        body = (
            (f"--{boundary}\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            + IMAGE
            + f"\r\n--{boundary}--".encode()
        )
        note(f"Content-Type: {content_type!r}\nbody: {body.replace(IMAGE, b'<IMAGE>')!r}")
        cut, small = check(runner, body, content_type)
        assert cut == IMAGE and small == (200, IMAGE)

    same_file()


# ---- generated layouts: the plain one, mutated ----

NAMES = ["file", "image", "", 'a;filename="b', "x;y", 'a\\"b', "caf\u00e9"]
FILENAMES = ["x.png", "", "C:\\dir\\x.png", "x;y.png", 'a\\"b.png', "s\u00e9ven.png"]
VALUE_FORMS = ['"{0}"', "{0}", '"{0}', '{0}"', '"{0}\\"x"', ' "{0}" ', "'{0}'", '"{0};x"']
SEPARATORS = ["; ", ";", " ; ", ";\t", ";  ", "; \t ", ";;"]


@dataclass
class Part:
    delimiter_end: str = "\r\n"  # after `--B`
    headers: list[str] = field(default_factory=lambda: [DISPOSITION, "Content-Type: image/png"])
    blank: str = "\r\n"  # the empty line after the headers
    content: list[str | bytes] = field(default_factory=lambda: [UPLOAD_PNG])  # str: in the boundary
    end: str = "\r\n"  # before the next delimiter

    def render(self, boundary: str) -> bytes:
        out = f"--{boundary}{self.delimiter_end}".encode()
        out += "".join(f"{h}\r\n" for h in self.headers).encode() + self.blank.encode()
        for piece in self.content:
            out += piece if isinstance(piece, bytes) else piece.format(boundary).encode()
        return out + self.end.encode()


@dataclass
class Layout:
    media_type: str = "multipart/form-data"
    parameters: list[tuple[str, str]] = field(default_factory=lambda: [("; ", f"boundary={B}")])
    boundary: str = B  # the one the body uses
    preamble: str = ""
    parts: list[Part] = field(default_factory=lambda: [Part()])
    closing: str = "--{0}--"
    epilogue: str = "\r\n"

    def content_type(self) -> str:
        return self.media_type + "".join(sep + p for sep, p in self.parameters)

    def body(self) -> bytes:
        out = self.preamble.encode()
        for part in self.parts:
            out += part.render(self.boundary)
        return out + self.closing.format(self.boundary).encode() + self.epilogue.encode()


def one_of(options: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(options)


DRAW_BOOL = st.booleans()
DRAW_SEPARATOR = one_of(SEPARATORS)
DRAW_VALUE_FORM = one_of(VALUE_FORMS)


def parameter(draw: st.DrawFn, keys: st.SearchStrategy[str], tokens: st.SearchStrategy[str]) -> str:
    """`key=value` in one of many forms, or a malformed one."""
    key, token = draw(keys), draw(tokens)
    if draw(DRAW_BOOL) and draw(DRAW_BOOL):
        return draw(one_of([key, f"{key}=", f"{key} = {token}", f"{key}*=x"]))
    return f"{key}=" + draw(DRAW_VALUE_FORM).format(token)


DISPOSITION_NAMES = one_of(
    ["Content-Disposition", "content-disposition", "CONTENT-DISPOSITION"]
    + ["Content-Disposition ", " Content-Disposition", "Content_Disposition"]
)
COLONS = one_of([": ", ":", ":  ", ":\t", " : "])
DISPOSITION_TYPES = one_of(["form-data", "Form-Data", "attachment", "", "form-data "])
DISPOSITION_CHANGES = one_of(["name", "filename", "add", "drop", "swap", "raw"])
NAME_KEYS = one_of(["name", "NAME", "Name", " name", "name*", "name "])
FILENAME_KEYS = one_of(["filename", "FILENAME", "fileName", "filename*", " filename"])
ANY_KEYS = one_of(["name", "filename", "filename*", "name*", "size"])
NAME_TOKENS = one_of(NAMES)
FILENAME_TOKENS = one_of(FILENAMES)
ANY_TOKENS = one_of(NAMES + FILENAMES)
RAW_DISPOSITIONS = one_of(['name="a;filename="b"', 'name="file;filename="x"', "filename", "name"])


def disposition(draw: st.DrawFn) -> str:
    """A Content-Disposition header: the plain one with up to three changes."""
    head = draw(DISPOSITION_NAMES) + draw(COLONS) + draw(DISPOSITION_TYPES)
    params = ['name="file"', 'filename="x.png"']
    for _ in range(draw(st.integers(1, 3))):
        what = draw(DISPOSITION_CHANGES)
        at = draw(st.integers(0, len(params)))
        if what == "name" and params:
            params[0] = parameter(draw, NAME_KEYS, NAME_TOKENS)
        elif what == "filename" and params:
            params[-1] = parameter(draw, FILENAME_KEYS, FILENAME_TOKENS)
        elif what == "add":
            params.insert(at, parameter(draw, ANY_KEYS, ANY_TOKENS))
        elif what == "drop" and params:
            del params[at % len(params)]
        elif what == "swap":
            params.reverse()
        elif what == "raw":
            params = [draw(RAW_DISPOSITIONS)]
    return head + "".join(draw(DRAW_SEPARATOR) + p for p in params)


OTHER_HEADERS = one_of(
    [
        "Content-Type: image/png",
        "content-type:application/octet-stream",
        "Content-Type : image/png",
        "Content-Transfer-Encoding: base64",
        "X-Pad: " + "a" * 4300,
        "Content-Type: image/png\nX: y",
        "Bad Header: x",
        ": x",
        "",
    ]
)
CONTENT_PIECES = st.lists(
    st.sampled_from(
        [UPLOAD_PNG, b"x", b"", "\r\n--{0}", "\r\n--{0}--", "--{0}\r\n", "\r\n--{0} \r\n", "\r\n-"]
    ),
    min_size=1,
    max_size=3,
)
PART_CHANGES = one_of(["disposition", "header", "order", "delimiter", "blank", "content", "end"])
DELIMITER_ENDS = one_of([" \r\n", "\t\r\n", "\n", "", "--\r\n", "x\r\n"])
BLANKS = one_of(["", "\n", " \r\n"])
PART_ENDS = one_of(["", "\n", "\r\n\r\n", " \r\n"])


def mutated(draw: st.DrawFn, part: Part) -> Part:
    what = draw(PART_CHANGES)
    if what == "disposition":
        headers = [h for h in part.headers if not h.lower().startswith("content-disposition")]
        where = draw(st.integers(0, len(headers)))
        return replace(part, headers=headers[:where] + [disposition(draw)] + headers[where:])
    if what == "header":
        headers = list(part.headers)
        if headers and draw(DRAW_BOOL):
            del headers[draw(st.integers(0, len(headers) - 1))]
        else:
            headers.insert(draw(st.integers(0, len(headers))), draw(OTHER_HEADERS))
        return replace(part, headers=headers)
    if what == "order":
        return replace(part, headers=part.headers[::-1])
    if what == "delimiter":
        return replace(part, delimiter_end=draw(DELIMITER_ENDS))
    if what == "blank":
        return replace(part, blank=draw(BLANKS))
    if what == "content":
        return replace(part, content=[*part.content, *draw(CONTENT_PIECES)][-3:])
    return replace(part, end=draw(PART_ENDS))


LAYOUT_CHANGES = one_of(
    ["media type", "parameter", "separator", "body boundary", "preamble"]
    + ["epilogue", "closing", "part", "part", "part", "add part", "drop part"]
)
MEDIA_TYPES = one_of(["Multipart/Form-Data", "MULTIPART/FORM-DATA", "multipart/form-data "])
BOUNDARY_KEYS = one_of(["boundary", "Boundary", "BOUNDARY", "boundary*", " boundary", "boundar"])
BOUNDARY_TOKENS = one_of([B, B2, f"{B};x", f"{B} x", "", "x" * 71])
BODY_BOUNDARIES = one_of([B, B2, f"{B};x", f'"{B}', f'"{B}"', f"{B} x", f"{B}*"])
PREAMBLES = one_of(["\r\n", "\r\n\r\n", "\n", "preamble\r\n", " "])
EPILOGUES = one_of(["", "epilogue", "\r\nepilogue\r\n", "\r\n\r\n", f"\r\n--{B}\r\n", " "])
CLOSINGS = one_of(["--{0}-", "", "--{0}", "--{0}-- ", f"--{B2}--", "--{0}--\r\n--{0}--"])
NEW_PARTS = st.sampled_from(
    [
        ([DISPOSITION, "Content-Type: image/png"], [UPLOAD_PNG]),  # another file
        (['Content-Disposition: form-data; name="note"'], [b"hi"]),  # a field
        (['Content-Disposition: form-data; name="a"; filename="b"'], [b"other"]),
    ]
)


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    """The plain layout with up to four hostile changes."""
    layout = Layout()
    for _ in range(draw(st.integers(0, 4))):
        what = draw(LAYOUT_CHANGES)
        params, parts = layout.parameters, layout.parts
        if what == "media type":
            layout.media_type = draw(MEDIA_TYPES)
        elif what == "parameter":  # change one, or add one (a duplicate, another)
            new = parameter(draw, BOUNDARY_KEYS, BOUNDARY_TOKENS)
            new = "charset=utf-8" if draw(DRAW_BOOL) and draw(DRAW_BOOL) else new
            where = draw(st.integers(0, len(params)))
            if params and draw(DRAW_BOOL):
                params[where % len(params)] = (params[where % len(params)][0], new)
            else:
                params.insert(where, (draw(DRAW_SEPARATOR), new))
        elif what == "separator":
            layout.parameters = [(draw(DRAW_SEPARATOR), p) for _, p in params]
        elif what == "body boundary":
            layout.boundary = draw(BODY_BOUNDARIES)
        elif what == "preamble":
            layout.preamble = draw(PREAMBLES)
        elif what == "epilogue":
            layout.epilogue = draw(EPILOGUES)
        elif what == "closing":
            layout.closing = draw(CLOSINGS)
        elif what == "part" and parts:
            at = draw(st.integers(0, len(parts) - 1))
            parts[at] = mutated(draw, parts[at])
        elif what == "add part" and len(parts) < 4:
            headers, content = draw(NEW_PARTS)
            parts.insert(draw(st.integers(0, len(parts))), Part(headers=headers, content=content))
        elif what == "drop part" and parts:
            del parts[draw(st.integers(0, len(parts) - 1))]
    return layout


def test_generated_layouts_get_the_full_parsers_answer_at_both_sizes(
    runner: asyncio.Runner,
) -> None:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=600,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(layouts())
    def one_answer(layout: Layout) -> None:
        body, content_type = layout.body(), layout.content_type()
        note(f"Content-Type: {content_type!r}\nbody: {body.replace(UPLOAD_PNG, b'<UPLOAD_PNG>')!r}")
        cut, (status, _) = check(runner, body, content_type)
        seen["fast path" if cut is not None else "full parser"] += 1
        seen[str(status)] += 1

    one_answer()
    # The generator reaches both paths and both answers, or it proves little.
    assert seen["fast path"] >= 60 and seen["full parser"] >= 200, seen
    assert seen["200"] >= 100 and seen["400"] >= 200, seen
