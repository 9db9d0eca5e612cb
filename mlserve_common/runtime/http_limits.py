"""What one HTTP connection may cost a service: head size, header count, request-line
length, and how long a client may take to send its head or body or stay idle.

Both services read these settings (prefix `MLSERVE_HTTP_`) into one typed object;
`mlserve_common.runtime.server.serve` hands them to every worker, where `GuardedHttpProtocol`
enforces them. Defaults are what a production front end would pick (nginx, Apache, Node
use the same order of magnitude).
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV = "MLSERVE_HTTP_LIMITS_JSON"
"""How `serve` passes the limits to worker processes (they start from a bare interpreter)."""


class HttpLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_head_bytes: int = Field(32 * 1024, ge=1024)
    """Request line plus all headers; past it 431 (nginx: 4 x 8 KiB, Node: 16 KiB)."""
    max_headers: int = Field(100, ge=8)
    """Header fields per request; past it 431 (Apache's LimitRequestFields: 100)."""
    max_request_line_bytes: int = Field(8 * 1024, ge=256)
    """The request target (path and query); past it 414 (Apache: 8190)."""
    keep_alive_seconds: float = Field(75.0, gt=0)
    """An idle keep-alive connection is closed after this; longer than common clients'
    idle pools (aiohttp 15 s, browsers 60 s), so a client never reuses a connection the
    server is closing."""
    header_timeout_seconds: float = Field(10.0, gt=0)
    """From a connection's (or a request's) first byte to its last header; past it 408."""
    body_timeout_seconds: float = Field(60.0, gt=0)
    """From the last header to the body's last byte; past it 408 (a 10 MB upload at
    1.4 Mbit/s still fits)."""

    def export(self) -> None:
        os.environ[ENV] = self.model_dump_json()

    @classmethod
    def exported(cls) -> HttpLimits:
        """The limits `export` left in the environment, or the defaults."""
        text = os.environ.get(ENV)
        return cls.model_validate_json(text) if text else cls()


class HttpLimitSettings(BaseSettings):
    """The limits as settings: `MLSERVE_HTTP_MAX_HEAD_BYTES`, ... Each service's Settings
    inherits these fields."""

    model_config = SettingsConfigDict(env_prefix="MLSERVE_", env_ignore_empty=True)

    http_max_head_bytes: int = Field(HttpLimits.model_fields["max_head_bytes"].default, ge=1024)
    """Request line plus headers, in bytes; larger heads get 431."""
    http_max_headers: int = Field(HttpLimits.model_fields["max_headers"].default, ge=8)
    """Header fields per request; more get 431."""
    http_max_request_line_bytes: int = Field(
        HttpLimits.model_fields["max_request_line_bytes"].default, ge=256
    )
    """Longest request target (path and query); longer ones get 414."""
    http_keep_alive_seconds: float = Field(
        HttpLimits.model_fields["keep_alive_seconds"].default, gt=0
    )
    """Idle keep-alive connections are closed after this."""
    http_header_timeout_seconds: float = Field(
        HttpLimits.model_fields["header_timeout_seconds"].default, gt=0
    )
    """A client that has not sent its whole head in this time gets 408."""
    http_body_timeout_seconds: float = Field(
        HttpLimits.model_fields["body_timeout_seconds"].default, gt=0
    )
    """A client that has not sent its whole body this long after its head gets 408."""

    max_inflight_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """Request bodies one worker process holds at once (uploads being read or forwarded);
    past it new uploads get 503 with Retry-After, so a burst of large files cannot take
    the machine's memory."""

    def http_limits(self) -> HttpLimits:
        return HttpLimits(
            max_head_bytes=self.http_max_head_bytes,
            max_headers=self.http_max_headers,
            max_request_line_bytes=self.http_max_request_line_bytes,
            keep_alive_seconds=self.http_keep_alive_seconds,
            header_timeout_seconds=self.http_header_timeout_seconds,
            body_timeout_seconds=self.http_body_timeout_seconds,
        )
