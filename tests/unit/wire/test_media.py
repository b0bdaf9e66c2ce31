"""Content negotiation and body decoding (spec section 1.2 steps 5, 6, 8)."""

from __future__ import annotations

from types import ModuleType

import pytest

from mesoslite.wire.errors import HttpError
from mesoslite.wire.json_codec import from_json
from mesoslite.wire.media import (
    JSON,
    PROTOBUF,
    RECORDIO,
    decode_message,
    encode_message,
    media_type,
    negotiate,
    request_content_type,
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("application/x-protobuf", PROTOBUF),
        ("application/x-protobuf, application/json", JSON),  # tie: JSON wins
        ("application/json;q=0.5, application/x-protobuf", PROTOBUF),
        ("application/x-protobuf;q=0.9, application/json;q=0.8", PROTOBUF),
        ("APPLICATION/JSON", JSON),
        ("text/plain", None),
        ("text/html, image/png;q=0.2", None),
        ("application/json;q=0", None),
        ("*/*, application/json;q=0", PROTOBUF),  # the specific range decides for JSON
        ("application/*;q=0.1, application/x-protobuf;q=0.2", PROTOBUF),
        ("bogus, application/json", JSON),
        ("application/json;q=abc, application/x-protobuf", PROTOBUF),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_negotiate_with_other_offers() -> None:
    assert negotiate("application/recordio", (JSON, PROTOBUF, RECORDIO)) == RECORDIO
    assert negotiate(None, (PROTOBUF,)) == PROTOBUF
    assert negotiate("application/json", (PROTOBUF,)) is None


def test_media_type_drops_parameters() -> None:
    assert media_type("application/json; charset=utf-8") == JSON
    assert media_type(None) is None


def test_request_content_type() -> None:
    assert request_content_type("application/json;charset=utf-8") == JSON
    assert request_content_type(PROTOBUF) == PROTOBUF
    for missing in (None, "", " "):
        with pytest.raises(HttpError) as info:
            request_content_type(missing)
        assert (info.value.status, info.value.message) == (
            400,
            "Expecting 'Content-Type' to be present",
        )
    for wrong in ("text/plain", "Application/JSON", "application/recordio", "application/jsonx"):
        with pytest.raises(HttpError) as info:
            request_content_type(wrong)
        assert info.value.status == 415


def test_encode_message(pb: ModuleType) -> None:
    message = pb.Everything(i64=3, text="é")
    assert encode_message(message, JSON) == b'{"i64":3,"text":"\\u00e9"}'
    assert pb.Everything.FromString(encode_message(message, PROTOBUF)) == message
    with pytest.raises(ValueError):
        encode_message(message, RECORDIO)


def test_decode_json_and_protobuf(pb: ModuleType) -> None:
    message = pb.Everything(i64=3, leaf={"text": "x"})
    assert (
        decode_message(b'{"i64":"3","leaf":{"text":"x"}}', JSON, pb.Everything, "Call") == message
    )
    assert decode_message(message.SerializeToString(), PROTOBUF, pb.Everything, "Call") == message


def decode_error(body: bytes, content_type: str | None, pb_type: type) -> HttpError:
    with pytest.raises(HttpError) as info:
        decode_message(body, content_type, pb_type, "Call")
    return info.value


def test_decode_errors(pb: ModuleType) -> None:
    error = decode_error(b"{nope", JSON, pb.Everything)
    assert error.status == 400
    assert error.message.startswith("Failed to parse body into JSON: ")
    error = decode_error(b'{"color": 1}', JSON, pb.Everything)
    assert error.status == 400
    assert error.message.startswith("Failed to convert JSON into Call protobuf: ")
    error = decode_error(b'{"id": {}}', "application/json; charset=utf-8", pb.Strict)
    assert error.message == (
        "Failed to convert JSON into Call protobuf: Missing required fields: color, id.value"
    )
    assert decode_error(b"{}", None, pb.Everything).status == 400
    assert decode_error(b"{}", "text/json", pb.Everything).status == 415


def test_decode_bad_protobuf(pb: ModuleType) -> None:
    error = decode_error(b"\xff\xff\xff", PROTOBUF, pb.Everything)
    assert error.status == 400
    assert error.message.startswith("Failed to parse body into Call protobuf")
    partial = from_json({"child": {"text": "x"}}, pb.Everything).SerializeToString()
    # A protobuf body missing required fields is refused like a JSON one.
    error = decode_error(pb.Strict(ids=[{}]).SerializePartialToString(), PROTOBUF, pb.Strict)
    assert error.status == 400 and "Missing required fields" in error.message
    assert decode_message(partial, PROTOBUF, pb.Everything, "Call").child.text == "x"
