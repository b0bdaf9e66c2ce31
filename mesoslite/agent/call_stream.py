"""A streaming request body of agent Calls: RecordIO records, each one Call encoded as
the request's Message-Content-Type says (ATTACH_CONTAINER_INPUT is the one call that
streams its request)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

from mesoslite.proto import agent_pb2
from mesoslite.wire.errors import HttpError, WireError
from mesoslite.wire.media import decode_message
from mesoslite.wire.recordio import RecordIODecoder

__all__ = ["CallStream"]

# One input record carries a chunk of a terminal's input: far below this.
_MAX_RECORD_BYTES = 16 * 1024 * 1024


class CallStream:
    def __init__(self, chunks: AsyncIterator[bytes], message_content_type: str) -> None:
        self._chunks = chunks
        self._content_type = message_content_type
        self._decoder = RecordIODecoder(max_record_size=_MAX_RECORD_BYTES)
        self._records: deque[bytes] = deque()
        self._ended = False

    async def next(self) -> agent_pb2.Call | None:
        """The next Call, or None once the body has ended. HttpError(400) for a record
        that is not a Call."""
        while not self._records:
            if self._ended:
                return None
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._ended = True
                continue
            try:
                self._records.extend(self._decoder.feed(chunk))
            except WireError as error:
                raise HttpError(400, error.message) from None
        record = self._records.popleft()
        return decode_message(record, self._content_type, agent_pb2.Call, "agent::Call")

    def __aiter__(self) -> AsyncIterator[agent_pb2.Call]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[agent_pb2.Call]:
        while (call := await self.next()) is not None:
            yield call
