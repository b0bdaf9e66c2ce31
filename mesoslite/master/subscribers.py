"""Operator API SUBSCRIBE streams: every subscriber gets every master event.

Each event is encoded once per media type in use, however many subscribers there are.
Callers check `if subscribers:` before building an event, so an idle master pays
nothing for the feature.
"""

from __future__ import annotations

from mesoslite.master.events import OPERATOR_HEARTBEAT_BYTES
from mesoslite.proto import master_pb2
from mesoslite.wire.http import EventStream
from mesoslite.wire.media import encode_message

__all__ = ["OperatorSubscribers"]


class OperatorSubscribers:
    def __init__(self, max_subscribers: int) -> None:
        self._max_subscribers = max_subscribers
        self._streams: set[EventStream] = set()

    def __len__(self) -> int:
        return len(self._streams)

    def __bool__(self) -> bool:
        return bool(self._streams)

    def add(self, stream: EventStream) -> bool:
        """Register a new subscriber; False when the limit is reached."""
        if len(self._streams) >= self._max_subscribers:
            return False
        self._streams.add(stream)
        stream.on_close(lambda: self._streams.discard(stream))
        return True

    def broadcast(self, event: master_pb2.Event) -> None:
        encoded: dict[str, bytes] = {}
        for stream in list(self._streams):
            media = stream.content_type
            payload = encoded.get(media)
            if payload is None:
                payload = encoded[media] = encode_message(event, media)
            if not stream.send_encoded(payload):
                self._streams.discard(stream)

    def heartbeat(self) -> None:
        for stream in list(self._streams):
            if not stream.send_encoded(OPERATOR_HEARTBEAT_BYTES[stream.content_type]):
                self._streams.discard(stream)

    def close_all(self) -> None:
        for stream in list(self._streams):
            stream.close()
        self._streams.clear()
