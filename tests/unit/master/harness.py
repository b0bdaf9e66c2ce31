"""A real master served over real HTTP on 127.0.0.1, with scripted agents and schedulers.

`running_master()` starts a `Master` and a uvicorn server for its router (event streams
need a real server: an in-process ASGI transport does not stream). `FakeAgent` is an
agent connection driven by the test through an in-memory channel; `Scheduler` is a
minimal v1 scheduler client that reads its event stream in the background and hands
events to the test as JSON, the way real clients see them.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import uuid
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import httpx
import uvicorn
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mesoslite.master.config import MasterConfig
from mesoslite.master.master import Master
from mesoslite.proto import internal_pb2, mesos_pb2
from mesoslite.resources import parse_resources
from mesoslite.transport.channel import MemoryChannel, memory_channel_pair
from mesoslite.wire.recordio import RecordIODecoder

# Generous: only a guard against hangs, never a measure of speed.
STEP_TIMEOUT_S = 10.0

TaskState = mesos_pb2.TaskState


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class MasterHarness:
    master: Master
    base_url: str
    group: TaskGroup
    http: httpx.AsyncClient
    agents: list[FakeAgent] = field(default_factory=list)

    async def add_agent(
        self,
        hostname: str = "agent1",
        resources: str = "cpus:4;mem:4096;disk:10000;ports:[31000-32000]",
        *,
        endpoint: str | None = None,
        register: bool = True,
    ) -> FakeAgent:
        agent = FakeAgent(
            self, hostname, resources, endpoint or f"127.0.0.{len(self.agents) + 2}:5051"
        )
        self.agents.append(agent)
        await agent.connect()
        if register:
            await agent.register()
        return agent

    async def scheduler(self, **framework_info: Any) -> Scheduler:
        scheduler = Scheduler(self)
        await scheduler.subscribe(framework_info)
        return scheduler

    async def get_json(self, url_path: str, /, **params: Any) -> Any:
        response = await self.http.get(url_path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def operator(self, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post("/api/v1", json=body, headers={"Accept": "application/json"})


@contextlib.asynccontextmanager
async def running_master(**overrides: Any) -> AsyncIterator[MasterHarness]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    config = replace(
        MasterConfig(
            ip="127.0.0.1",
            port=port,
            hostname="127.0.0.1",
            allocation_batch_window_s=0.001,
            allocation_interval_s=0.05,
        ),
        **overrides,
    )
    master = Master(config)
    server = _QuietServer(
        uvicorn.Config(master.router, http="h11", lifespan="off", log_level="warning")
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with (
            anyio.create_task_group() as group,
            httpx.AsyncClient(base_url=base_url, timeout=STEP_TIMEOUT_S) as http,
        ):
            await group.start(master.run)
            group.start_soon(lambda: server.serve(sockets=[sock]))
            while not server.started:
                await anyio.sleep(0.005)
            harness = MasterHarness(master, base_url, group, http)
            try:
                yield harness
            finally:
                for agent in harness.agents:
                    await agent.disconnect()
                server.should_exit = True
                server.force_exit = True
                group.cancel_scope.cancel()
    finally:
        sock.close()


class FakeAgent:
    """An agent connection scripted by the test. Pings are answered automatically."""

    def __init__(
        self, harness: MasterHarness, hostname: str, resources: str, endpoint: str
    ) -> None:
        self.harness = harness
        self.hostname = hostname
        self.resources = parse_resources(resources).to_list()
        self.endpoint = endpoint
        self.agent_id = ""
        self.answer_pings = True
        self.channel: (
            MemoryChannel[internal_pb2.AgentToMaster, internal_pb2.MasterToAgent] | None
        ) = None
        self._inbox_send: MemoryObjectSendStream[internal_pb2.MasterToAgent]
        self._inbox: MemoryObjectReceiveStream[internal_pb2.MasterToAgent]
        self.skipped: list[internal_pb2.MasterToAgent] = []

    def agent_info(self) -> mesos_pb2.AgentInfo:
        info = mesos_pb2.AgentInfo(
            hostname=self.hostname, port=int(self.endpoint.rsplit(":", 1)[1])
        )
        info.resources.extend(self.resources)
        if self.agent_id:
            info.id.value = self.agent_id
        return info

    async def connect(self) -> None:
        master = self.harness.master
        pair: tuple[
            MemoryChannel[internal_pb2.AgentToMaster, internal_pb2.MasterToAgent],
            MemoryChannel[internal_pb2.MasterToAgent, internal_pb2.AgentToMaster],
        ] = memory_channel_pair(self.endpoint, "master")
        agent_end, master_end = pair
        self.channel = agent_end
        self._inbox_send, self._inbox = anyio.create_memory_object_stream[
            internal_pb2.MasterToAgent
        ](math.inf)

        async def serve() -> None:
            try:
                await master.serve_agent(master_end)
            finally:
                await master_end.aclose()

        async def read(
            channel: MemoryChannel[Any, Any], inbox: MemoryObjectSendStream[Any]
        ) -> None:
            async with inbox:
                async for message in channel:
                    if message.WhichOneof("message") == "ping" and self.answer_pings:
                        pong = internal_pb2.AgentToMaster()
                        pong.pong.sequence = message.ping.sequence
                        with contextlib.suppress(Exception):
                            await channel.send(pong)
                        continue
                    await inbox.send(message)

        self.harness.group.start_soon(serve)
        self.harness.group.start_soon(read, agent_end, self._inbox_send)

    async def disconnect(self) -> None:
        if self.channel is not None:
            await self.channel.aclose()
            self.channel = None

    async def send(self, message: internal_pb2.AgentToMaster) -> None:
        assert self.channel is not None
        await self.channel.send(message)

    async def receive(self) -> internal_pb2.MasterToAgent:
        with anyio.fail_after(STEP_TIMEOUT_S):
            return await self._inbox.receive()

    async def expect(self, kind: str) -> Any:
        """The next message of `kind`; others are kept in `skipped`."""
        while True:
            message = await self.receive()
            if message.WhichOneof("message") == kind:
                return getattr(message, kind)
            self.skipped.append(message)

    def pending(self) -> list[internal_pb2.MasterToAgent]:
        """Messages already received and not yet read."""
        messages = []
        while True:
            try:
                messages.append(self._inbox.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                return messages

    async def register(self) -> str:
        message = internal_pb2.AgentToMaster()
        body = message.register_agent
        body.agent_info.CopyFrom(self.agent_info())
        body.agent_info.ClearField("id")
        body.version = "1.12.0"
        body.endpoint = self.endpoint
        await self.send(message)
        registered = await self.expect("agent_registered")
        self.agent_id = registered.agent_id.value
        return self.agent_id

    async def reregister(
        self,
        tasks: list[mesos_pb2.Task] = (),  # type: ignore[assignment]
        frameworks: list[mesos_pb2.FrameworkInfo] = (),  # type: ignore[assignment]
        executors: list[mesos_pb2.ExecutorInfo] = (),  # type: ignore[assignment]
    ) -> None:
        message = internal_pb2.AgentToMaster()
        body = message.reregister_agent
        body.agent_info.CopyFrom(self.agent_info())
        body.version = "1.12.0"
        body.endpoint = self.endpoint
        body.tasks.extend(tasks)
        body.frameworks.extend(frameworks)
        body.executor_infos.extend(executors)
        await self.send(message)
        await self.expect("agent_reregistered")

    async def update(
        self,
        framework_id: str,
        task_id: str,
        state: int,
        *,
        acked: bool = True,
        latest_state: int | None = None,
        executor_id: str | None = None,
        reason: int | None = None,
        source: int = mesos_pb2.TaskStatus.SOURCE_EXECUTOR,
        data: bytes | None = None,
    ) -> bytes:
        """Send a status update (with a fresh uuid when `acked`); returns the uuid."""
        message = internal_pb2.AgentToMaster()
        body = message.status_update
        body.framework_id.value = framework_id
        status = body.status
        status.task_id.value = task_id
        status.state = state  # type: ignore[assignment]
        status.source = source  # type: ignore[assignment]
        status.agent_id.value = self.agent_id
        status.timestamp = 1700000000.0
        if executor_id is not None:
            status.executor_id.value = executor_id
        if reason is not None:
            status.reason = reason  # type: ignore[assignment]
        if data is not None:
            status.data = data
        update_uuid = uuid.uuid4().bytes if acked else b""
        if acked:
            status.uuid = update_uuid
        if latest_state is not None:
            body.latest_state = latest_state  # type: ignore[assignment]
        await self.send(message)
        return update_uuid


class EventReader:
    """Reads one streaming response (RecordIO of JSON events) in the background."""

    def __init__(self, harness: MasterHarness) -> None:
        self.harness = harness
        self.headers: httpx.Headers | None = None
        self.status_code = 0
        self._events_send, self._events = anyio.create_memory_object_stream[dict[str, Any]](
            math.inf
        )
        self._scope: anyio.CancelScope | None = None
        self.closed = anyio.Event()

    async def open(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        started = anyio.Event()

        async def read() -> None:
            with anyio.CancelScope() as scope:
                self._scope = scope
                try:
                    async with self.harness.http.stream(
                        "POST",
                        path,
                        json=body,
                        headers={"Accept": "application/json", **headers},
                        timeout=httpx.Timeout(STEP_TIMEOUT_S, read=None),
                    ) as response:
                        self.status_code = response.status_code
                        self.headers = response.headers
                        started.set()
                        decoder = RecordIODecoder()
                        async for chunk in response.aiter_raw():
                            for record in decoder.feed(chunk):
                                await self._events_send.send(json.loads(record))
                except httpx.HTTPError:
                    pass
                finally:
                    started.set()
                    self.closed.set()

        self.harness.group.start_soon(read)
        with anyio.fail_after(STEP_TIMEOUT_S):
            await started.wait()

    async def next_event(
        self, kind: str | None = None, *, skip_heartbeats: bool = True
    ) -> dict[str, Any]:
        """The next event (of `kind`, if given; others are dropped)."""
        with anyio.fail_after(STEP_TIMEOUT_S):
            while True:
                event = await self._events.receive()
                if skip_heartbeats and event["type"] == "HEARTBEAT" and kind != "HEARTBEAT":
                    continue
                if kind is None or event["type"] == kind:
                    return event

    def pending_events(self) -> list[dict[str, Any]]:
        events = []
        while True:
            try:
                events.append(self._events.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                return events

    def disconnect(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def wait_closed(self) -> None:
        with anyio.fail_after(STEP_TIMEOUT_S):
            await self.closed.wait()


class Scheduler(EventReader):
    """A v1 scheduler over HTTP: the event stream is read in the background."""

    def __init__(self, harness: MasterHarness) -> None:
        super().__init__(harness)
        self.framework_id = ""
        self.stream_id = ""

    async def subscribe(
        self,
        framework_info: dict[str, Any],
        *,
        expect_subscribed: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        info = {"user": "tester", "name": "test-framework", **framework_info}
        body: dict[str, Any] = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        if "id" in info:
            body["framework_id"] = info["id"]
        await self.open("/api/v1/scheduler", body, headers or {})
        assert self.headers is not None
        self.stream_id = self.headers.get("Mesos-Stream-Id", "")
        if expect_subscribed:
            subscribed = await self.next_event("SUBSCRIBED")
            self.framework_id = subscribed["subscribed"]["framework_id"]["value"]

    async def offers(self) -> list[dict[str, Any]]:
        event = await self.next_event("OFFERS")
        offers: list[dict[str, Any]] = event["offers"]["offers"]
        return offers

    async def call(self, body: dict[str, Any], *, stream_id: str | None = None) -> httpx.Response:
        body = {"framework_id": {"value": self.framework_id}, **body}
        headers = {"Mesos-Stream-Id": self.stream_id if stream_id is None else stream_id}
        return await self.harness.http.post("/api/v1/scheduler", json=body, headers=headers)

    async def launch(
        self, offer: dict[str, Any], *tasks: dict[str, Any], filters: dict[str, Any] | None = None
    ) -> httpx.Response:
        accept: dict[str, Any] = {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}],
        }
        if filters is not None:
            accept["filters"] = filters
        return await self.call({"type": "ACCEPT", "accept": accept})

    async def acknowledge(self, status: dict[str, Any]) -> httpx.Response:
        return await self.call(
            {
                "type": "ACKNOWLEDGE",
                "acknowledge": {
                    "agent_id": status["agent_id"],
                    "task_id": status["task_id"],
                    "uuid": status["uuid"],
                },
            }
        )


def command_task(
    task_id: str, agent_id: str, *, cpus: float = 1.0, mem: float = 128.0, command: str = "true"
) -> dict[str, Any]:
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
        ],
        "command": {"value": command},
    }


async def settle() -> None:
    """Let the master's background work (allocation, timers) run a little."""
    for _ in range(20):
        await anyio.sleep(0.005)
