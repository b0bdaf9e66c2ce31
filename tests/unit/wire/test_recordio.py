"""RecordIO framing (spec section 1.4)."""

from __future__ import annotations

import pytest

from mesoslite.wire.errors import WireError
from mesoslite.wire.recordio import RecordIODecoder, decode_records, encode_record

RECORDS = [b'{"type":"HEARTBEAT"}', b"", b"x" * 1000, b"1\n2\n", b'{"type":"SUBSCRIBED"}']
STREAM = b"".join(encode_record(record) for record in RECORDS)


def test_encode_has_no_trailing_separator() -> None:
    assert encode_record(b'{"type":"HEARTBEAT"}') == b'20\n{"type":"HEARTBEAT"}'
    assert encode_record(b"") == b"0\n"


def test_decode_whole_stream() -> None:
    decoder = RecordIODecoder()
    assert decoder.feed(STREAM) == RECORDS
    assert decoder.at_boundary


@pytest.mark.parametrize("size", [1, 2, 3, 7, 19, 64])
def test_decode_any_split(size: int) -> None:
    decoder = RecordIODecoder()
    out: list[bytes] = []
    for start in range(0, len(STREAM), size):
        out += decoder.feed(STREAM[start : start + size])
    assert out == RECORDS
    decoder.close()


def test_decode_every_two_way_split() -> None:
    for cut in range(len(STREAM) + 1):
        decoder = RecordIODecoder()
        assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == RECORDS


def test_partial_record_is_held_back() -> None:
    decoder = RecordIODecoder()
    assert decoder.feed(b"5\nab") == []
    assert not decoder.at_boundary
    with pytest.raises(WireError):
        decoder.close()
    assert decoder.feed(b"cde3") == [b"abcde"]
    assert decoder.feed(b"\nxyz") == [b"xyz"]


@pytest.mark.parametrize(
    "garbage", [b"abc\n", b"\n", b"-1\n", b" 1\n", b"1x\n", b"9" * 21, b"0x10\n"]
)
def test_garbage_length_line_is_an_error(garbage: bytes) -> None:
    decoder = RecordIODecoder()
    with pytest.raises(WireError):
        decoder.feed(garbage)
    with pytest.raises(WireError):  # the stream cannot be resynchronised
        decoder.feed(b"1\na")


def test_max_record_size() -> None:
    decoder = RecordIODecoder(max_record_size=4)
    assert decoder.feed(b"4\nabcd") == [b"abcd"]
    with pytest.raises(WireError):
        decoder.feed(b"5\n")


def test_decode_records_helper() -> None:
    assert list(decode_records([STREAM[:10], STREAM[10:]])) == RECORDS
    with pytest.raises(WireError):
        list(decode_records([b"3\nab"]))
