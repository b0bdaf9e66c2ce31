"""Scheduler events (`mesos.v1.scheduler.Event`) as the master sends them.

Every event carries its `type` and its member, even when the member is empty
(pymesos drops events without the member key).
"""

from __future__ import annotations

from mesoslite.proto import master_pb2, mesos_pb2, scheduler_pb2
from mesoslite.wire.media import JSON, PROTOBUF, encode_message

__all__ = [
    "HEARTBEAT_BYTES",
    "OPERATOR_HEARTBEAT_BYTES",
    "error_event",
    "failure_event",
    "message_event",
    "offers_event",
    "rescind_event",
    "subscribed_event",
    "update_event",
]

Event = scheduler_pb2.Event

# Heartbeats are the same bytes every time: encode them once per media type.
HEARTBEAT_BYTES: dict[str, bytes] = {
    media: encode_message(Event(type=Event.HEARTBEAT), media) for media in (JSON, PROTOBUF)
}
OPERATOR_HEARTBEAT_BYTES: dict[str, bytes] = {
    media: encode_message(master_pb2.Event(type=master_pb2.Event.HEARTBEAT), media)
    for media in (JSON, PROTOBUF)
}


def subscribed_event(
    framework_id: str, heartbeat_interval_s: float, master_info: mesos_pb2.MasterInfo
) -> Event:
    event = Event(type=Event.SUBSCRIBED)
    event.subscribed.framework_id.value = framework_id
    event.subscribed.heartbeat_interval_seconds = heartbeat_interval_s
    event.subscribed.master_info.CopyFrom(master_info)
    return event


def offers_event(offers: list[mesos_pb2.Offer]) -> Event:
    event = Event(type=Event.OFFERS)
    event.offers.offers.extend(offers)
    return event


def rescind_event(offer_id: str) -> Event:
    event = Event(type=Event.RESCIND)
    event.rescind.offer_id.value = offer_id
    return event


def update_event(status: mesos_pb2.TaskStatus) -> Event:
    event = Event(type=Event.UPDATE)
    event.update.status.CopyFrom(status)
    return event


def message_event(agent_id: str, executor_id: str, data: bytes) -> Event:
    event = Event(type=Event.MESSAGE)
    event.message.agent_id.value = agent_id
    event.message.executor_id.value = executor_id
    event.message.data = data
    return event


def failure_event(
    agent_id: str, executor_id: str | None = None, status: int | None = None
) -> Event:
    """Agent removed (only `agent_id`), or an executor exited (with its wait status)."""
    event = Event(type=Event.FAILURE)
    event.failure.agent_id.value = agent_id
    if executor_id is not None:
        event.failure.executor_id.value = executor_id
        event.failure.status = status if status is not None else 0
    return event


def error_event(message: str) -> Event:
    event = Event(type=Event.ERROR)
    event.error.message = message
    return event
