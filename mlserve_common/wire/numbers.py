"""Numbers read from a request: a header, a query parameter, a field of a wire format.

One rule everywhere: a count is written in ASCII digits, `0` to `9`, and nothing else. No
sign, no spaces, no underscores, no other script's digits: `str.isdigit()` accepts `²` and
`١٢`, `int()` accepts `+1`, ` 1 `, `1_0` and `١٢`, and the two disagree (`int("²")` fails),
so neither is used alone on what a client sent. A value of more than `MAX_DIGITS`
significant digits is refused before it is converted, so no text builds a giant int.

`parse_count` raises `NumberFormatError` (a `ValueError`; `NumberTooLargeError` past a
maximum), whose message says, for a person, what was expected and what came; the services
answer it with 400 `invalid_request` (413 where the number is a body's size). A header's
value goes through `parse_header_count`, which first drops the spaces and tabs HTTP allows
around any value. Standard library only: the gateway, model_api and the wire formats share
it.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_DIGITS = 18
"""The most significant digits a count may have: every such number fits a signed 64-bit
integer (10**18 - 1 < 2**63), far past any size or length the services accept."""
_SHOWN = 40
"""The most characters of a refused text quoted back in the message."""


class NumberFormatError(ValueError):
    """A count that is not ASCII digits, or is larger than allowed; `str()` is the message."""

    def __init__(self, message: str, what: str, text: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.what = what
        self.text = text


class NumberTooLargeError(NumberFormatError):
    """Well written, but past the maximum (or past `MAX_DIGITS` digits)."""


def _shown(text: str) -> str:
    """The refused text for a message: quoted, escaped, cut short."""
    if len(text) <= _SHOWN:
        return repr(text)
    return f"{text[:_SHOWN]!r}... ({len(text):,} characters)"


def parse_count(
    text: str | bytes | None,
    what: str,
    maximum: int | None = None,
    *,
    unit: str = "",
) -> int:
    """The whole number `text` writes in ASCII digits (leading zeros allowed), at most
    `maximum`; `what` names it in the message ("Content-Length"), `unit` says what it
    counts ("bytes"). `NumberFormatError` for anything else: None, an empty text, a sign,
    a space, an underscore, a decimal point, a digit of another script; its subclass
    `NumberTooLargeError` for a number over `maximum` or over `MAX_DIGITS` digits."""
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode("latin-1")  # as HTTP header bytes read as text
    kind = f"a whole number of {unit}" if unit else "a whole number"
    if not isinstance(text, str) or not text:
        given = "none was given" if text in (None, "") else f"not text but {type(text).__name__}"
        raise NumberFormatError(
            f"{what} must be {kind} written in ASCII digits; {given}", what, None
        )
    if not (text.isascii() and text.isdigit()):
        raise NumberFormatError(
            f"{what} must be {kind} written in ASCII digits (0-9), not {_shown(text)}", what, text
        )
    significant = text.lstrip("0")
    if len(significant) > MAX_DIGITS:
        raise NumberTooLargeError(
            f"{what} is {_shown(text)}, more than {MAX_DIGITS} digits: too large", what, text
        )
    value = int(significant or "0")
    if maximum is not None and value > maximum:
        units = f" {unit}" if unit else ""
        raise NumberTooLargeError(
            f"{what} is {value:,}, more than the limit of {maximum:,}{units}", what, text
        )
    return value


def parse_header_count(
    value: str | bytes | None,
    what: str,
    maximum: int | None = None,
    *,
    unit: str = "",
) -> int:
    """`parse_count` of an HTTP header's value. The spaces and tabs HTTP allows around any
    field value are not part of it (RFC 9110, 5.5): the HTTP parser drops those before a
    value, not always those after (`Content-Length: 12 ` frames 12 bytes). Only those:
    anything else around or inside the digits is refused."""
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("latin-1")
    if isinstance(value, str):
        value = value.strip(" \t")
    return parse_count(value, what, maximum, unit=unit)


def bounded_product(factors: Iterable[int], limit: int) -> int | None:
    """The product of non-negative `factors`, or None once it would exceed `limit` (a zero
    factor anywhere makes it 0): a shape's element count without building a giant int or
    wrapping around as a fixed-width product does."""
    product, over = 1, False
    for factor in factors:
        if factor == 0:
            return 0
        if not over:
            product *= factor
            over = product > limit
    return None if over else product
