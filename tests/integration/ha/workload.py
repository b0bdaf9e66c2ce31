"""The clients of the fault tests: registry writers and readers (role weights through the
operator API) recording a history for the linearizability checker, and a scheduler that
follows the leading master, launches tasks and reconciles."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from mesoslite.client.scheduler import SchedulerClient, SchedulerError
from mesoslite.proto import mesos_pb2, scheduler_pb2
from tests.integration.ha.linearizability import Operation

__all__ = ["HaScheduler", "RegistryClients"]

_FOLLOW_GUARD = 10
# A master cut off by the network does not refuse connections: give up on it soon.
_TIMEOUT = httpx.Timeout(5.0, connect=1.0)
# A task in one of these states never ran (or is gone): the scheduler launches another.
_REPLACE = {
    mesos_pb2.TASK_LOST,
    mesos_pb2.TASK_DROPPED,
    mesos_pb2.TASK_UNKNOWN,
    mesos_pb2.TASK_GONE,
    mesos_pb2.TASK_ERROR,
    mesos_pb2.TASK_FAILED,
}


def _netloc(location: str) -> str:
    return urlsplit(location if "//" in location else f"//{location}").netloc


class RegistryClients:
    """Writers and readers of role weights; every answer goes into `history`."""

    def __init__(self, masters: list[str], keys: list[str]) -> None:
        self.masters = masters
        self.keys = keys
        self.history: list[Operation] = []
        self.acknowledged_writes = 0
        self._next_value = 1.0
        self._target = 0

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response | None:
        """POST to the leader (following 307s); None: nobody took the call."""
        for _ in range(_FOLLOW_GUARD):
            address = self.masters[self._target % len(self.masters)]
            try:
                response = await client.post(f"http://{address}/api/v1", json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                # Never sent: try the next master (an isolated one does not even refuse).
                self._target += 1
                await anyio.sleep(0.02)
                continue
            if response.status_code == 307:
                location = _netloc(response.headers.get("location", ""))
                if location in self.masters:
                    self._target = self.masters.index(location)
                continue
            if response.status_code == 503 and "No leader" in response.text:
                await anyio.sleep(0.02)
                continue
            return response
        return None

    async def write(self, client: httpx.AsyncClient, key: str) -> None:
        value = self._next_value
        self._next_value += 1
        body = {
            "type": "UPDATE_WEIGHTS",
            "update_weights": {"weight_infos": [{"role": key, "weight": value}]},
        }
        invoked = time.monotonic()
        try:
            response = await self._post(client, body)
        except httpx.HTTPError:
            # Sent, no answer: it may take effect later or never. Ask another master next.
            self._target += 1
            self.history.append(Operation(key, "write", value, invoked, None))
            return
        if response is None:
            return  # never taken: not part of the history
        if response.status_code == 200:
            self.acknowledged_writes += 1
            self.history.append(Operation(key, "write", value, invoked, time.monotonic()))
        elif response.status_code == 503:
            self.history.append(Operation(key, "write", value, invoked, None))

    async def read(self, client: httpx.AsyncClient) -> dict[str, float] | None:
        invoked = time.monotonic()
        try:
            response = await self._post(client, {"type": "GET_WEIGHTS"})
        except httpx.HTTPError:
            self._target += 1
            return None
        if response is None or response.status_code != 200:
            return None
        returned = time.monotonic()
        infos = response.json()["get_weights"].get("weight_infos", [])
        weights = {info["role"]: info["weight"] for info in infos}
        for key in self.keys:
            self.history.append(Operation(key, "read", weights.get(key), invoked, returned))
        return weights

    async def run_writer(self, index: int, stop: anyio.Event) -> None:
        async with httpx.AsyncClient(timeout=_TIMEOUT) as client:
            while not stop.is_set():
                await self.write(client, self.keys[index % len(self.keys)])

    async def run_reader(self, stop: anyio.Event) -> None:
        async with httpx.AsyncClient(timeout=_TIMEOUT) as client:
            while not stop.is_set():
                await self.read(client)
                await anyio.sleep(0.01)


@dataclass
class HaScheduler:
    """A v1 HTTP framework that follows the leader: subscribes (again, with its id, after
    a failover), launches `sleep` tasks as offers come, acknowledges and reconciles."""

    masters: list[str]
    task_command: str = "sleep 600"
    info: mesos_pb2.FrameworkInfo = field(
        default_factory=lambda: mesos_pb2.FrameworkInfo(
            user="root", name="ha-test", checkpoint=True, failover_timeout=3600.0
        )
    )
    states: dict[str, int] = field(default_factory=dict)  # task id -> TaskState
    agents: dict[str, str] = field(default_factory=dict)  # task id -> agent id
    subscriptions: int = 0
    to_launch: int = 0
    on_subscribed: Callable[[float], None] | None = None
    _client: SchedulerClient | None = None
    _launched: int = 0
    _target: int = 0

    def running(self) -> set[str]:
        return {task for task, state in self.states.items() if state == mesos_pb2.TASK_RUNNING}

    async def run(self) -> None:
        while True:
            address = self.masters[self._target % len(self.masters)]
            client = SchedulerClient(address, self.info)
            try:
                async with client.subscription() as events:
                    self._client = client
                    async for event in events:
                        await self._handle(client, event)
            except SchedulerError as error:
                if error.status == 307:
                    location = _netloc(error.message.rsplit(" ", 1)[-1])
                    if location in self.masters:
                        self._target = self.masters.index(location)
                        continue
                self._target += 1
            except (httpx.HTTPError, anyio.EndOfStream, OSError):
                self._target += 1
            finally:
                self._client = None
                await client.aclose()
            await anyio.sleep(0.02)

    async def _handle(self, client: SchedulerClient, event: scheduler_pb2.Event) -> None:
        kind = event.type
        if kind == scheduler_pb2.Event.SUBSCRIBED:
            self.subscriptions += 1
            if self.on_subscribed is not None:
                self.on_subscribed(time.monotonic())
            await self._call(client.reconcile(self.states))
        elif kind == scheduler_pb2.Event.OFFERS:
            for offer in event.offers.offers:
                await self._answer_offer(client, offer)
        elif kind == scheduler_pb2.Event.UPDATE:
            status = event.update.status
            previous = self.states.get(status.task_id.value)
            if status.state in _REPLACE and previous not in _REPLACE:
                self.to_launch += 1  # lost on the way (e.g. with the old leader): again
            self.states[status.task_id.value] = status.state
            self.agents[status.task_id.value] = status.agent_id.value
            await self._call(client.acknowledge(status))

    async def _answer_offer(self, client: SchedulerClient, offer: mesos_pb2.Offer) -> None:
        tasks: list[mesos_pb2.TaskInfo] = []
        while self.to_launch > 0 and len(tasks) < 4:
            self.to_launch -= 1
            self._launched += 1
            task = mesos_pb2.TaskInfo(name=f"ha-{self._launched}")
            task.task_id.value = f"ha-task-{self._launched}"
            task.agent_id.CopyFrom(offer.agent_id)
            task.command.value = self.task_command
            task.resources.add(name="cpus", type=mesos_pb2.Value.SCALAR).scalar.value = 0.1
            task.resources.add(name="mem", type=mesos_pb2.Value.SCALAR).scalar.value = 16
            self.states[task.task_id.value] = mesos_pb2.TASK_STAGING
            tasks.append(task)
        if tasks:
            await self._call(client.launch(offer, tasks, refuse_seconds=0.1))
        else:
            await self._call(client.decline([offer.id], refuse_seconds=0.2))

    async def reconcile(self) -> None:
        client = self._client
        if client is not None:
            await self._call(client.reconcile(self.states))

    async def _call(self, call: Any) -> None:
        # The master went away: the next subscription reconciles.
        with contextlib.suppress(SchedulerError, httpx.HTTPError):
            await call
