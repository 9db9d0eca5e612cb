"""A Redis command on the wire (RESP), for the few places that speak to Redis without a
client library: the gateway's cache reader, stackctl's health probe and db_api's container
check (standard library only, so db_api's image can carry it)."""

from __future__ import annotations


def command(*parts: bytes | str) -> bytes:
    """`command("AUTH", password)`: the bytes to send for one command."""
    encoded = [part.encode() if isinstance(part, str) else part for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(
        b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded
    )
