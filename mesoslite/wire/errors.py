"""Exception types shared by the wire modules.

They live in their own module so that `media` (which raises `HttpError`) and `http`
(which renders it) do not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["HttpError", "WireError"]


class WireError(Exception):
    """A malformed payload: bad JSON, bad RecordIO framing, a failed conversion."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HttpError(Exception):
    """An HTTP error answer: the router turns it into a text/plain response.

    Endpoints raise it anywhere below the router instead of building responses by hand,
    so that every error carries Mesos' status code and a plain-text reason.
    """

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.headers: dict[str, str] = dict(headers) if headers else {}
