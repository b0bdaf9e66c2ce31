"""uvicorn settings for serving the Mesos APIs.

The protocol is uvicorn's httptools one: small calls (a scheduler's ACKNOWLEDGE, an
agent's message) cost a third of what they cost through h11 (~0.08 against ~0.23 ms of
server CPU per call, measured with bench/bench_launch.py's call mix).

Event streams must be `Transfer-Encoding: chunked` whatever the request looked like
(spec section 1.3; pymesos raises "Response is not chunked" otherwise, and libprocess
always chunks its streams). The httptools protocol chunks every response without a
Content-Length, HTTP/1.0 requests included, and closes the connection after answering
an HTTP/1.0 request. Without httptools we fall back to h11: uvicorn's h11 protocol
chunks for HTTP/1.1 requests, including ones that say `Connection: close` (pymesos'
SUBSCRIBE), but h11 falls back to a close-delimited body when the client spoke
HTTP/1.0, as RFC 9112 asks. `ChunkedH11Protocol` makes h11 treat an HTTP/1.0 peer as
HTTP/1.1 when framing responses, which changes nothing for responses that have a
Content-Length (all but the streams) and keeps the connection closing after the
response, as HTTP/1.0 expects.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ChunkedH11Protocol", "http_protocol", "uvicorn_config"]


class ChunkedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, chunking unknown-length bodies for HTTP/1.0 clients too."""

    def handle_events(self) -> None:
        super().handle_events()
        # h11 reads `their_http_version` only to choose the response framing; the
        # request's own keep-alive decision (close after an HTTP/1.0 exchange) was
        # already taken when the request was parsed.
        if self.conn.their_http_version == b"1.0":
            self.conn.their_http_version = b"1.1"


def http_protocol() -> type[asyncio.Protocol]:
    """httptools' protocol, or h11's (chunking for HTTP/1.0 too) where it is missing."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return ChunkedH11Protocol
    return HttpToolsProtocol


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    """A uvicorn Config for one Mesos listener: chunked streams, no lifespan.

    `options` are passed to uvicorn.Config (host, port, ssl_*, log_level, ...).
    """
    options.setdefault("http", http_protocol())
    options.setdefault("lifespan", "off")
    options.setdefault("access_log", False)
    return uvicorn.Config(app, **options)
