"""`mlserve_common.wire.numbers`: counts read from a request are ASCII digits and nothing else."""

from __future__ import annotations

import pytest

from mlserve_common.wire.numbers import (
    MAX_DIGITS,
    NumberFormatError,
    NumberTooLargeError,
    bounded_product,
    parse_count,
    parse_header_count,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("7", 7),
        ("1234", 1234),
        ("007", 7),  # leading zeros are digits too (HTTP's 1*DIGIT)
        ("0" * 5000 + "5", 5),  # and do not count towards MAX_DIGITS
        (b"42", 42),  # header bytes
        ("9" * MAX_DIGITS, 10**MAX_DIGITS - 1),
    ],
)
def test_ascii_digits_are_a_count(text: str | bytes, value: int) -> None:
    assert parse_count(text, "X") == value


@pytest.mark.parametrize(
    "text",
    [
        "²",  # str.isdigit() says yes, int() says no: the 500 of issue 27
        "³",
        "¹",
        "١٢",  # Arabic-Indic: int() reads it as 12
        "１２",  # fullwidth
        "߁",  # NKo
        "+1",
        "-1",
        " 1",
        "1 ",
        "\t1",
        "1\n",
        "1_0",
        "1.0",
        "1e3",
        "0x10",
        "½",
        "",
        b"",
        b"\xb2",  # '²' as Latin-1 header bytes
        "1,000",
    ],
)
def test_anything_else_is_refused_with_a_message(text: str | bytes) -> None:
    with pytest.raises(NumberFormatError) as refused:
        parse_count(text, "Inference-Header-Content-Length", unit="bytes")
    assert not isinstance(refused.value, NumberTooLargeError)
    message = str(refused.value)
    assert message.startswith(
        "Inference-Header-Content-Length must be a whole number of bytes written in ASCII digits"
    )
    if text:
        shown = text.decode("latin-1") if isinstance(text, bytes) else text
        assert repr(shown) in message


def test_the_message_a_person_reads() -> None:
    with pytest.raises(NumberFormatError) as refused:
        parse_count("²", "Inference-Header-Content-Length", unit="bytes")
    assert str(refused.value) == (
        "Inference-Header-Content-Length must be a whole number of bytes written in ASCII "
        "digits (0-9), not '²'"
    )
    assert refused.value.what == "Inference-Header-Content-Length"
    assert refused.value.text == "²"
    assert isinstance(refused.value, ValueError)


def test_none_and_empty_say_that_nothing_was_given() -> None:
    for text in (None, ""):
        with pytest.raises(NumberFormatError, match="none was given"):
            parse_count(text, "Content-Length")
    with pytest.raises(NumberFormatError, match="must be a whole number written"):
        parse_count(None, "Content-Length")  # no unit: no "of ..."


def test_huge_values_are_refused_before_they_become_ints() -> None:
    for text in ("1" + "0" * MAX_DIGITS, "9" * 25, "9" * 5000, "9" * 100_000):
        with pytest.raises(NumberTooLargeError, match="more than 18 digits") as refused:
            parse_count(text, "X")
        assert len(str(refused.value)) < 200  # quoted back cut short
    # past int()'s own limit of 4300 digits it would have been a ValueError of another kind


def test_a_maximum_is_inclusive() -> None:
    assert parse_count("10", "X", 10) == 10
    with pytest.raises(NumberTooLargeError, match=r"X is 11, more than the limit of 10 bytes"):
        parse_count("11", "X", 10, unit="bytes")
    with pytest.raises(NumberTooLargeError, match=r"more than the limit of 1,000$"):
        parse_count("1001", "X", 1000)


def test_a_long_refused_text_is_cut_short_in_the_message() -> None:
    with pytest.raises(NumberFormatError) as refused:
        parse_count("x" * 10_000, "X")
    assert "(10,000 characters)" in str(refused.value)
    assert len(str(refused.value)) < 200


def test_a_header_value_may_have_spaces_and_tabs_around_it_and_nothing_else() -> None:
    """HTTP's optional whitespace around a field value is not part of it (the parser drops
    the leading spaces, not always the trailing ones); nothing else is forgiven."""
    for value in ("12", " 12", "12 ", "\t12\t", b" 12 "):
        assert parse_header_count(value, "Content-Length") == 12
    for value in ("", " ", None, "1 2", "\xa012", "12\xa0", "+12", " ²", "12\r", "１２"):
        with pytest.raises(NumberFormatError, match="Content-Length must be a whole number"):
            parse_header_count(value, "Content-Length")
    with pytest.raises(NumberTooLargeError):
        parse_header_count(" 13 ", "Content-Length", 12)


def test_something_that_is_not_text_is_refused_too() -> None:
    with pytest.raises(NumberFormatError, match="not text but int"):
        parse_count(12, "X")  # type: ignore[arg-type]


def test_bounded_product() -> None:
    assert bounded_product([], 10) == 1
    assert bounded_product([2, 5], 10) == 10
    assert bounded_product([2, 6], 10) is None
    assert bounded_product([2**63, 2**63, 0], 10) == 0  # a zero anywhere: no elements
    assert bounded_product([0, 2**63], 10) == 0
    assert bounded_product([2**62] * 100_000, 10) is None  # no giant int is built
