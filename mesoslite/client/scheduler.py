"""An async client for the Mesos v1 scheduler API.

Used by `mesoslite execute`, the benchmarks and the testing kit; framework authors can
use it too. It speaks JSON (as most Mesos clients do) or protobuf, follows the
Mesos-Stream-Id rules and the 307 redirect of a non-leading master.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Self

import httpx

from mesoslite.client.http11 import CallPool
from mesoslite.proto import mesos_pb2, scheduler_pb2
from mesoslite.wire import json_codec, media, recordio

__all__ = ["SchedulerClient", "SchedulerError"]


class SchedulerError(Exception):
    """The master refused a call (HTTP status and its plain-text reason)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def _base_url(master: str) -> str:
    return master if "://" in master else f"http://{master}"


class _EventIterator:
    """Events of one subscription, decoded from the RecordIO stream."""

    def __init__(self, client: SchedulerClient, response: httpx.Response) -> None:
        self._client = client
        self._chunks = response.aiter_raw()
        self._decoder = recordio.RecordIODecoder()
        self._pending: collections.deque[bytes] = collections.deque()

    def __aiter__(self) -> _EventIterator:
        return self

    async def __anext__(self) -> scheduler_pb2.Event:
        while not self._pending:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                raise StopAsyncIteration from None
            self._pending.extend(self._decoder.feed(chunk))
        event = self._client._decode_event(self._pending.popleft())
        if event.type == scheduler_pb2.Event.SUBSCRIBED:
            self._client.framework_info.id.CopyFrom(event.subscribed.framework_id)
        return event


class SchedulerClient:
    """One framework's connection to the master.

    `subscription()` opens the event stream; `call()` sends any other call on a
    separate connection, carrying the stream id.
    """

    def __init__(
        self,
        master: str,
        framework_info: mesos_pb2.FrameworkInfo,
        *,
        content_type: str = media.JSON,
        timeout_s: float = 30.0,
    ) -> None:
        self.framework_info = framework_info
        self.content_type = content_type
        self.stream_id: str | None = None
        self._base = _base_url(master)
        self._timeout_s = timeout_s
        self._calls = httpx.AsyncClient(base_url=self._base, timeout=timeout_s)
        # Plain http: the light keep-alive client for calls (httpx for anything else).
        self._call_pool = CallPool.for_url(self._base, timeout_s=timeout_s)
        self._stream_client = httpx.AsyncClient(base_url=self._base, timeout=None)

    @property
    def framework_id(self) -> mesos_pb2.FrameworkID | None:
        if self.framework_info.HasField("id"):
            return self.framework_info.id
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._call_pool is not None:
            await self._call_pool.aclose()
        await self._calls.aclose()
        await self._stream_client.aclose()

    def _encode(self, call: scheduler_pb2.Call) -> bytes:
        return media.encode_message(call, self.content_type)

    @contextlib.asynccontextmanager
    async def subscription(self) -> AsyncIterator[AsyncIterator[scheduler_pb2.Event]]:
        """Subscribe (or re-subscribe, if the framework already has an id); inside the
        block, iterate the events until the stream ends. Leaving the block closes the
        stream (the framework disconnects)."""
        call = scheduler_pb2.Call(type=scheduler_pb2.Call.SUBSCRIBE)
        call.subscribe.framework_info.CopyFrom(self.framework_info)
        if self.framework_id is not None:
            call.framework_id.CopyFrom(self.framework_id)
        headers = {"Content-Type": self.content_type, "Accept": self.content_type}
        async with self._stream_client.stream(
            "POST", "/api/v1/scheduler", content=self._encode(call), headers=headers
        ) as response:
            if response.status_code == 307:
                location = response.headers.get("location", "")
                raise SchedulerError(307, f"not the leading master; leader at {location}")
            if response.status_code != 200:
                body = (await response.aread()).decode("utf-8", "replace")
                raise SchedulerError(response.status_code, body)
            self.stream_id = response.headers.get("mesos-stream-id")
            yield _EventIterator(self, response)

    def _decode_event(self, record: bytes) -> scheduler_pb2.Event:
        if self.content_type == media.PROTOBUF:
            event = scheduler_pb2.Event()
            event.ParseFromString(record)
            return event
        return json_codec.from_json(record, scheduler_pb2.Event)

    async def call(self, call: scheduler_pb2.Call) -> None:
        """Send a non-SUBSCRIBE call; raises SchedulerError unless the master answers 2xx."""
        if self.framework_id is not None and not call.HasField("framework_id"):
            call.framework_id.CopyFrom(self.framework_id)
        headers = {"Content-Type": self.content_type, "Accept": self.content_type}
        if self.stream_id:
            headers["Mesos-Stream-Id"] = self.stream_id
        body = self._encode(call)
        if self._call_pool is not None:
            answer = await self._call_pool.post("/api/v1/scheduler", body, headers)
            status, text = answer.status_code, answer.text
        else:
            response = await self._calls.post("/api/v1/scheduler", content=body, headers=headers)
            status, text = response.status_code, response.text
        if status // 100 != 2:
            raise SchedulerError(status, text)

    # Helpers for the common calls.

    async def accept(
        self,
        offer_ids: Iterable[mesos_pb2.OfferID],
        operations: Iterable[mesos_pb2.Offer.Operation],
        *,
        refuse_seconds: float | None = None,
    ) -> None:
        call = scheduler_pb2.Call(type=scheduler_pb2.Call.ACCEPT)
        call.accept.offer_ids.extend(offer_ids)
        call.accept.operations.extend(operations)
        if refuse_seconds is not None:
            call.accept.filters.refuse_seconds = refuse_seconds
        await self.call(call)

    async def launch(
        self,
        offer: mesos_pb2.Offer,
        tasks: Iterable[mesos_pb2.TaskInfo],
        *,
        refuse_seconds: float | None = None,
    ) -> None:
        """Launch tasks from one offer; what they leave unused is declined with
        `refuse_seconds` (Mesos' default filter of 5 s when None)."""
        operation = mesos_pb2.Offer.Operation(type=mesos_pb2.Offer.Operation.LAUNCH)
        operation.launch.task_infos.extend(tasks)
        await self.accept([offer.id], [operation], refuse_seconds=refuse_seconds)

    async def decline(
        self, offer_ids: Iterable[mesos_pb2.OfferID], *, refuse_seconds: float | None = None
    ) -> None:
        call = scheduler_pb2.Call(type=scheduler_pb2.Call.DECLINE)
        call.decline.offer_ids.extend(offer_ids)
        if refuse_seconds is not None:
            call.decline.filters.refuse_seconds = refuse_seconds
        await self.call(call)

    async def acknowledge(self, status: mesos_pb2.TaskStatus) -> None:
        """Acknowledge an update if it asks for it (it carries a uuid)."""
        if not status.HasField("uuid"):
            return
        call = scheduler_pb2.Call(type=scheduler_pb2.Call.ACKNOWLEDGE)
        call.acknowledge.agent_id.CopyFrom(status.agent_id)
        call.acknowledge.task_id.CopyFrom(status.task_id)
        call.acknowledge.uuid = status.uuid
        await self.call(call)

    async def kill(self, task_id: str, agent_id: mesos_pb2.AgentID | None = None) -> None:
        call = scheduler_pb2.Call(type=scheduler_pb2.Call.KILL)
        call.kill.task_id.value = task_id
        if agent_id is not None:
            call.kill.agent_id.CopyFrom(agent_id)
        await self.call(call)

    async def reconcile(self, task_ids: Iterable[str] = ()) -> None:
        call = scheduler_pb2.Call(type=scheduler_pb2.Call.RECONCILE)
        call.reconcile.SetInParent()  # no task ids: implicit reconciliation
        for task_id in task_ids:
            call.reconcile.tasks.add().task_id.value = task_id
        await self.call(call)

    async def revive(self, roles: Iterable[str] = ()) -> None:
        call = scheduler_pb2.Call(type=scheduler_pb2.Call.REVIVE)
        call.revive.roles.extend(roles)
        await self.call(call)

    async def suppress(self, roles: Iterable[str] = ()) -> None:
        call = scheduler_pb2.Call(type=scheduler_pb2.Call.SUPPRESS)
        call.suppress.roles.extend(roles)
        await self.call(call)

    async def teardown(self) -> None:
        await self.call(scheduler_pb2.Call(type=scheduler_pb2.Call.TEARDOWN))
