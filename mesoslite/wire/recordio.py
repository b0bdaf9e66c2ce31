"""RecordIO framing (spec section 1.4): `<decimal length>\\n<record>`, nothing after.

Used for every event stream (scheduler, executor and operator SUBSCRIBE) and for the
agent's streaming calls. The decoder is incremental because stream chunks split
records anywhere, including inside the length line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from mesoslite.wire.errors import WireError

__all__ = ["RecordIODecoder", "decode_records", "encode_record"]

# A uint64 has at most 20 decimal digits; a longer length line can only be garbage,
# and refusing it early stops a bad peer from making us buffer without bound.
_MAX_LENGTH_DIGITS = 20


def encode_record(data: bytes) -> bytes:
    """Frame one record."""
    return b"%d\n" % len(data) + data


class RecordIODecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole records back.

    Raises WireError on a malformed length line (and stays failed: the stream cannot be
    resynchronised). `max_record_size` bounds memory against a hostile or broken peer.
    """

    def __init__(self, max_record_size: int | None = None) -> None:
        self._buffer = bytearray()
        self._length: int | None = None  # length of the record being read, once known
        self._max = max_record_size
        self._failed: str | None = None

    @property
    def at_boundary(self) -> bool:
        """True when no partial record is buffered (a clean place for the stream to end)."""
        return self._length is None and not self._buffer

    def feed(self, data: bytes) -> list[bytes]:
        if self._failed is not None:
            raise WireError(self._failed)
        self._buffer += data
        records: list[bytes] = []
        buffer = self._buffer
        start = 0
        while True:
            if self._length is None:
                newline = buffer.find(b"\n", start)
                if newline < 0:
                    if len(buffer) - start > _MAX_LENGTH_DIGITS:
                        self._fail("RecordIO length line too long")
                    break
                line = bytes(buffer[start:newline])
                if not line or len(line) > _MAX_LENGTH_DIGITS or not line.isdigit():
                    self._fail(f"Invalid RecordIO length line: {line[:32]!r}")
                length = int(line)
                if self._max is not None and length > self._max:
                    self._fail(f"RecordIO record of {length} bytes exceeds {self._max}")
                self._length = length
                start = newline + 1
            end = start + self._length
            if end > len(buffer):
                break
            records.append(bytes(buffer[start:end]))
            self._length = None
            start = end
        del buffer[:start]
        return records

    def _fail(self, reason: str) -> None:
        self._failed = reason
        self._buffer.clear()
        self._length = None
        raise WireError(reason)

    def close(self) -> None:
        """Declare the end of input; raises WireError if it cut a record short."""
        if not self.at_boundary:
            raise WireError("RecordIO stream ended inside a record")


def decode_records(chunks: Iterable[bytes], max_record_size: int | None = None) -> Iterator[bytes]:
    """All records of a finite stream given as chunks; raises WireError on garbage."""
    decoder = RecordIODecoder(max_record_size)
    for chunk in chunks:
        yield from decoder.feed(chunk)
    decoder.close()
