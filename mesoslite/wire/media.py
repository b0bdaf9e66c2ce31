"""Media types: Accept negotiation and message encode/decode by Content-Type.

Spec section 1.2 steps 5, 6 and 8. The error texts are Mesos' own, because clients log
them and people search for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

from google.protobuf.message import DecodeError, Message

from mesoslite.wire.errors import HttpError
from mesoslite.wire.json_codec import (
    JsonConversionError,
    JsonParseError,
    from_json_value,
    parse_json,
    to_json_bytes,
)

__all__ = [
    "JSON",
    "PROTOBUF",
    "RECORDIO",
    "decode_message",
    "encode_message",
    "media_type",
    "negotiate",
    "request_content_type",
]

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
RECORDIO = "application/recordio"

M = TypeVar("M", bound=Message)


def media_type(content_type: str | None) -> str | None:
    """The bare media type of a Content-Type value: parameters (`; charset=...`) dropped.

    Case is kept: Mesos compares the type case-sensitively, and so do we.
    """
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip()


def _parse_accept(accept: str) -> list[tuple[str, str, float]]:
    """Accept header -> [(type, subtype, q)], lower-cased; malformed entries skipped."""
    ranges: list[tuple[str, str, float]] = []
    for item in accept.split(","):
        parts = item.split(";")
        kind, slash, sub = parts[0].strip().lower().partition("/")
        if not slash or not kind or not sub:
            continue
        quality = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0
        if 0.0 <= quality <= 1.0:
            ranges.append((kind, sub.strip(), quality))
    return ranges


def _quality(ranges: list[tuple[str, str, float]], offered: str) -> float:
    # The most specific matching range decides (type/subtype over type/* over */*),
    # so `*/*, application/json;q=0` rejects JSON.
    kind, _, sub = offered.lower().partition("/")
    best_rank, best_q = -1, 0.0
    for range_kind, range_sub, quality in ranges:
        if range_kind == kind and range_sub == sub:
            rank = 2
        elif range_kind == kind and range_sub == "*":
            rank = 1
        elif range_kind == "*" and range_sub == "*":
            rank = 0
        else:
            continue
        if rank > best_rank:
            best_rank, best_q = rank, quality
    return best_q


def negotiate(accept: str | None, offered: Sequence[str] = (JSON, PROTOBUF)) -> str | None:
    """The type to answer in, or None (-> 406).

    A missing or empty Accept means the first offered type (JSON). Otherwise the
    offered type with the highest q wins and ties go to the earlier offered type, so
    JSON beats protobuf when the client accepts both equally.
    """
    if accept is None or not accept.strip():
        return offered[0] if offered else None
    ranges = _parse_accept(accept)
    best: str | None = None
    best_q = 0.0
    for candidate in offered:
        quality = _quality(ranges, candidate)
        if quality > best_q:
            best, best_q = candidate, quality
    return best


def encode_message(message: Message, content_type: str) -> bytes:
    """Serialise for a JSON or protobuf body (not RecordIO: frame the result for that)."""
    if content_type == JSON:
        return to_json_bytes(message)
    if content_type == PROTOBUF:
        return message.SerializeToString()
    raise ValueError(f"Cannot encode a message as '{content_type}'")


def request_content_type(content_type: str | None) -> str:
    """Validate a request's Content-Type (spec 1.2 step 5); returns JSON or PROTOBUF.

    Parameters such as `; charset=utf-8` are tolerated; the media type itself must match
    exactly (Mesos compares case-sensitively).
    """
    kind = media_type(content_type)
    if not kind:
        raise HttpError(400, "Expecting 'Content-Type' to be present")
    if kind in (JSON, PROTOBUF):
        return kind
    raise HttpError(415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF}")


def decode_message(body: bytes, content_type: str | None, message_type: type[M], what: str) -> M:
    """Parse a request body; raises HttpError(400/415) with Mesos' messages.

    `what` names the message in errors, e.g. "Call" gives "Failed to convert JSON into
    Call protobuf: ...".
    """
    if request_content_type(content_type) == JSON:
        try:
            value = parse_json(body)
        except JsonParseError as error:
            raise HttpError(400, f"Failed to parse body into JSON: {error.message}") from None
        try:
            return from_json_value(value, message_type)
        except JsonConversionError as error:
            raise HttpError(
                400, f"Failed to convert JSON into {what} protobuf: {error.message}"
            ) from None
    message = message_type()
    try:
        message.ParseFromString(body)
    except DecodeError as error:
        raise HttpError(400, f"Failed to parse body into {what} protobuf: {error}") from None
    if not message.IsInitialized():
        missing = ", ".join(cast(Any, message).FindInitializationErrors())
        raise HttpError(
            400,
            f"Failed to parse body into {what} protobuf: Missing required fields: {missing}",
        )
    return message
