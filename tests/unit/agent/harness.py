"""A real agent (real containerizer, real processes) driven by a scripted master.

`FakeMaster` is the agent's `MasterConnector`: every connection the agent opens shows
up as a `MasterLink` on which the test reads what the agent sends and answers as the
master would. `running_agent` starts everything and cleans up every process on the way
out, failure or not.
"""

from __future__ import annotations

import contextlib
import getpass
import math
import socket
import sys
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskGroup

from mesoslite.agent.agent import Agent
from mesoslite.agent.config import AgentConfig
from mesoslite.proto import internal_pb2, mesos_pb2
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.transport.channel import AgentChannel, MemoryChannel, memory_channel_pair

BASIC_PATH = "/usr/local/bin:/usr/bin:/bin"
AGENT_ID = "master-uuid-S0"
FRAMEWORK_ID = "master-uuid-0000"

_TS = mesos_pb2.TaskState


class MasterLink:
    """The master's end of one agent connection."""

    def __init__(
        self, channel: MemoryChannel[internal_pb2.MasterToAgent, internal_pb2.AgentToMaster]
    ) -> None:
        self.channel = channel
        self._messages = channel.__aiter__()
        # Messages read past while looking for another kind.
        self.skipped: list[internal_pb2.AgentToMaster] = []

    async def receive(self) -> internal_pb2.AgentToMaster:
        return await self._messages.__anext__()

    async def expect(self, kind: str) -> Any:
        """The next message of `kind` (others are kept in `skipped`)."""
        while True:
            message = await self.receive()
            if message.WhichOneof("message") == kind:
                return getattr(message, kind)
            self.skipped.append(message)

    async def send(self, message: internal_pb2.MasterToAgent) -> None:
        await self.channel.send(message)

    async def register(self, agent_id: str = AGENT_ID) -> internal_pb2.RegisterAgent:
        request: internal_pb2.RegisterAgent = await self.expect("register_agent")
        await self.answer_registration(agent_id, reregistered=False)
        return request

    async def answer_registration(self, agent_id: str, *, reregistered: bool) -> None:
        answer = internal_pb2.MasterToAgent()
        reply = answer.agent_reregistered if reregistered else answer.agent_registered
        reply.agent_id.value = agent_id
        reply.master_info.id = "master-uuid"
        reply.master_info.ip = 16777343
        reply.master_info.port = 5050
        await self.send(answer)

    async def next_update(self) -> internal_pb2.StatusUpdate:
        update: internal_pb2.StatusUpdate = await self.expect("status_update")
        return update

    async def updates_until_terminal(self, *, ack: bool = True) -> list[internal_pb2.StatusUpdate]:
        """Updates of one task up to its terminal one, acknowledging each."""
        seen: list[internal_pb2.StatusUpdate] = []
        while True:
            update = await self.next_update()
            if seen and update.status.uuid == seen[-1].status.uuid:
                continue  # a retry of the one in flight
            seen.append(update)
            if ack:
                await self.acknowledge(update)
            if update.status.state in TERMINAL:
                return seen

    async def acknowledge(self, update: internal_pb2.StatusUpdate) -> None:
        message = internal_pb2.MasterToAgent()
        ack = message.status_update_acknowledgement
        ack.agent_id.CopyFrom(update.status.agent_id)
        ack.framework_id.CopyFrom(update.framework_id)
        ack.task_id.CopyFrom(update.status.task_id)
        ack.uuid = update.status.uuid
        await self.send(message)

    async def run_task(self, task: mesos_pb2.TaskInfo, framework: mesos_pb2.FrameworkInfo) -> None:
        message = internal_pb2.MasterToAgent()
        message.run_task.framework_info.CopyFrom(framework)
        message.run_task.task.CopyFrom(task)
        message.run_task.role = "*"
        await self.send(message)

    async def run_task_group(
        self,
        executor: mesos_pb2.ExecutorInfo,
        tasks: list[mesos_pb2.TaskInfo],
        framework: mesos_pb2.FrameworkInfo,
    ) -> None:
        message = internal_pb2.MasterToAgent()
        message.run_task_group.framework_info.CopyFrom(framework)
        message.run_task_group.executor_info.CopyFrom(executor)
        message.run_task_group.task_group.tasks.extend(tasks)
        message.run_task_group.role = "*"
        await self.send(message)

    async def kill_task(
        self, task_id: str, framework_id: str = FRAMEWORK_ID, grace_period_s: float | None = None
    ) -> None:
        message = internal_pb2.MasterToAgent()
        kill = message.kill_task
        kill.framework_id.value = framework_id
        kill.task_id.value = task_id
        if grace_period_s is not None:
            kill.kill_policy.grace_period.nanoseconds = int(grace_period_s * 1e9)
        await self.send(message)


TERMINAL = frozenset(
    {
        _TS.TASK_FINISHED,
        _TS.TASK_FAILED,
        _TS.TASK_KILLED,
        _TS.TASK_LOST,
        _TS.TASK_ERROR,
        _TS.TASK_DROPPED,
        _TS.TASK_GONE,
        _TS.TASK_GONE_BY_OPERATOR,
    }
)


class FakeMaster:
    """The agent's MasterConnector; each connect() yields a MasterLink to the test."""

    def __init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[MasterLink](math.inf)
        self.refuse = False

    async def connect(self) -> AgentChannel:
        if self.refuse:
            raise ConnectionRefusedError("the fake master refuses connections")
        pair: tuple[
            MemoryChannel[internal_pb2.AgentToMaster, internal_pb2.MasterToAgent],
            MemoryChannel[internal_pb2.MasterToAgent, internal_pb2.AgentToMaster],
        ] = memory_channel_pair("agent", "master")
        agent_end, master_end = pair
        self._send.send_nowait(MasterLink(master_end))
        return agent_end

    async def accept(self) -> MasterLink:
        return await self._receive.receive()


def framework_info(
    *,
    checkpoint: bool = False,
    capabilities: tuple[int, ...] = (),
    framework_id: str = FRAMEWORK_ID,
) -> mesos_pb2.FrameworkInfo:
    info = mesos_pb2.FrameworkInfo(
        user=getpass.getuser(), name="test-framework", checkpoint=checkpoint
    )
    info.id.value = framework_id
    for capability in capabilities:
        info.capabilities.add(type=capability)  # type: ignore[arg-type]
    return info


def command_task(
    task_id: str,
    command: str,
    *,
    shell: bool = True,
    arguments: tuple[str, ...] = (),
    grace_period_s: float | None = None,
    environment: dict[str, str] | None = None,
) -> mesos_pb2.TaskInfo:
    task = mesos_pb2.TaskInfo(name=f"task {task_id}")
    task.task_id.value = task_id
    task.agent_id.value = AGENT_ID
    task.command.value = command
    task.command.shell = shell
    task.command.arguments.extend(arguments)
    variables = {"PATH": BASIC_PATH, **(environment or {})}
    for name, value in variables.items():
        task.command.environment.variables.add(name=name, value=value)
    cpus = task.resources.add(name="cpus", type=mesos_pb2.Value.SCALAR)
    cpus.scalar.value = 0.1
    mem = task.resources.add(name="mem", type=mesos_pb2.Value.SCALAR)
    mem.scalar.value = 32
    if grace_period_s is not None:
        task.kill_policy.grace_period.nanoseconds = int(grace_period_s * 1e9)
    return task


def test_config(work_dir: Path, **overrides: Any) -> AgentConfig:
    config = AgentConfig(
        work_dir=work_dir,
        ip="127.0.0.1",
        port=0,
        hostname="localhost",
        resources="cpus:2;mem:1024;disk:1024;ports:[31000-31010]",
        registration_backoff_factor_s=0.01,
        registration_backoff_max_s=0.05,
        executor_environment_variables={"PATH": BASIC_PATH, "PYTHONPATH": ":".join(sys.path)},
    )
    return replace(config, **overrides)


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve_http(app: Any, sock: socket.socket) -> None:
    config = uvicorn.Config(
        app,
        http="h11",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = _QuietServer(config)
    try:
        await server.serve(sockets=[sock])
    finally:
        server.should_exit = True
        server.force_exit = True


def local_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class RunningAgent:
    agent: Agent
    master: FakeMaster
    link: MasterLink
    registration: internal_pb2.RegisterAgent
    group: TaskGroup

    @property
    def base_url(self) -> str:
        return f"http://{self.agent.endpoint}"

    def sandbox_of(self, framework_id: str, executor_id: str) -> Path:
        agent_id = self.agent.agent_id
        assert agent_id is not None
        runs = self.agent.layout.runs_dir(agent_id, framework_id, executor_id)
        return runs / "latest"


@contextlib.asynccontextmanager
async def running_agent(
    work_dir: Path, *, http: bool = False, **overrides: Any
) -> AsyncIterator[RunningAgent]:
    """A registered agent; with `http` its listener serves on 127.0.0.1."""
    master = FakeMaster()
    sock = local_socket() if http else None
    port = sock.getsockname()[1] if sock is not None else 5051
    config = test_config(work_dir, port=port, **overrides)
    try:
        runtime_dir = work_dir / "runtime"
        async with (
            MesosContainerizer(runtime_dir=runtime_dir) as containerizer,
            anyio.create_task_group() as group,
        ):
            agent = Agent(config, master, containerizer, port=port)
            if sock is not None:
                group.start_soon(serve_http, agent.router, sock)
            group.start_soon(agent.run)
            try:
                with anyio.fail_after(30):
                    link = await master.accept()
                    registration = await link.register()
                    await agent.wait_registered()
                yield RunningAgent(agent, master, link, registration, group)
            finally:
                with anyio.CancelScope(shield=True):
                    await agent.shutdown()
                group.cancel_scope.cancel()
    finally:
        if sock is not None:
            sock.close()
