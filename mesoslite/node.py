"""A node: one `mesoslite` process hosting a master, an agent, or both, on one event loop.

Each role gets its own HTTP listener (master 5050, agent 5051, as Mesos does: clients
find the agent through `MESOS_AGENT_ENDPOINT`, `Offer.url` and `pid`). Inside one
process the agent reaches the master through an in-process channel; an agent-only
node reaches a remote master over HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Generator
from dataclasses import dataclass

import anyio
import uvicorn
from anyio.abc import TaskStatus

from mesoslite.agent.agent import Agent
from mesoslite.agent.config import AgentConfig
from mesoslite.master.config import MasterConfig
from mesoslite.master.master import Master
from mesoslite.runtime.cgroups.layout import DEFAULT_CGROUP_ROOT, detect_cgroup_layout
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.runtime.isolation import (
    IsolationContext,
    default_isolation_flag,
    isolation_from_flag,
    launcher_for,
)
from mesoslite.transport.channel import InProcessConnector, MasterConnector
from mesoslite.transport.http import HttpMasterConnector, mount_agent_transport
from mesoslite.wire.routing import Router
from mesoslite.wire.server import uvicorn_config

__all__ = [
    "BindError",
    "Node",
    "NodeAddresses",
    "bind_listener",
    "build_containerizer",
    "cgroups_root_name",
]

log = logging.getLogger(__name__)


class BindError(Exception):
    """A listener could not be opened (port in use, address not local, ...)."""


@dataclass(frozen=True)
class NodeAddresses:
    """Where the node's roles listen, once it is up."""

    master: str | None
    agent: str | None


def bind_listener(ip: str, port: int) -> socket.socket:
    """Open a listening TCP socket ourselves, so that a busy port fails fast with a
    clear message and port 0 gets a real port we can print."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((ip, port))
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot listen on {ip}:{port}: {exc.strerror}") from exc
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def build_containerizer(config: AgentConfig) -> MesosContainerizer:
    """The containerizer for an agent: isolators from `--isolation` (default: the Linux
    set as root with cgroups, posix otherwise) and, when the filesystem isolator is on,
    the image provisioner. Images live in the node's data directory (the agent's work
    directory's parent), shared with `mesoslite image`."""
    flag = config.isolation or default_isolation_flag()
    context = IsolationContext(
        runtime_dir=config.work_dir / "runtime", cgroups_root_name=cgroups_root_name(config)
    )
    isolators = isolation_from_flag(flag, context)
    provisioner = None
    if any(isolator.name == "filesystem/linux" for isolator in isolators):
        from mesoslite.runtime.provisioner import Provisioner

        provisioner = Provisioner(config.work_dir.parent)
    return MesosContainerizer(
        launcher=launcher_for(isolators, context),
        isolators=isolators,
        provisioner=provisioner,
        runtime_dir=config.work_dir / "containers",
    )


def cgroups_root_name(config: AgentConfig) -> str:
    """Each agent keeps its containers' cgroups under a root of its own, named after its
    work directory: stable across restarts (recovery finds its containers again) and
    never shared with another agent on the host (whose containers it must not take
    for orphans)."""
    digest = hashlib.sha256(str(config.work_dir.resolve()).encode()).hexdigest()[:12]
    return f"mesoslite-{digest}"


def remove_cgroups_root(root_name: str) -> None:
    """Remove the agent's cgroup root directories once they are empty (on exit)."""
    layout = detect_cgroup_layout(DEFAULT_CGROUP_ROOT)
    if layout is None:
        return
    hierarchies = set(layout.v1_hierarchies.values())
    if layout.unified is not None:
        hierarchies.add(layout.unified)
    for hierarchy in hierarchies:
        with contextlib.suppress(OSError):
            os.rmdir(hierarchy / root_name)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the node owns signals and shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve(router: Router, sock: socket.socket) -> None:
    """Serve until cancelled. uvicorn does not take cancellation well (it can leave its
    serve loop hanging), so cancellation is turned into its own way to stop: set
    `should_exit` and let it close the listener and drain (1 s at most)."""
    config = uvicorn_config(
        router, log_level="warning", timeout_graceful_shutdown=1, timeout_keep_alive=75
    )
    server = _EmbeddedServer(config)

    async def stop_when_cancelled() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            server.should_exit = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_when_cancelled)
        with anyio.CancelScope(shield=True):
            await server.serve(sockets=[sock])
        tg.cancel_scope.cancel()


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


class Node:
    """Runs the configured roles until cancelled; stops every task it started on the
    way out."""

    def __init__(
        self,
        *,
        master_config: MasterConfig | None = None,
        agent_config: AgentConfig | None = None,
        master_address: str | None = None,
    ) -> None:
        if master_config is None and agent_config is None:
            raise ValueError("a node needs a master, an agent, or both")
        if master_config is None and agent_config is not None and not master_address:
            raise ValueError("an agent-only node needs the master's address")
        self._master_config = master_config
        self._agent_config = agent_config
        self._master_address = master_address
        self.master: Master | None = None
        self.agent: Agent | None = None
        self._sockets: tuple[socket.socket | None, socket.socket | None] | None = None

    def bind(self) -> tuple[socket.socket | None, socket.socket | None]:
        """Open the listeners (before starting anything, so errors come first). `run`
        binds them itself unless this was called before."""
        if self._sockets is not None:
            return self._sockets
        master_sock = agent_sock = None
        if self._master_config is not None:
            master_sock = bind_listener(self._master_config.ip, self._master_config.port)
        if self._agent_config is not None:
            try:
                agent_sock = bind_listener(self._agent_config.ip, self._agent_config.port)
            except BindError:
                if master_sock is not None:
                    master_sock.close()
                raise
        return master_sock, agent_sock

    async def run(
        self, *, task_status: TaskStatus[NodeAddresses] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        master_sock, agent_sock = self.bind()
        # Cancelling the node must stop the roles first and the containerizer last:
        # the agent's shutdown needs the containerizer's supervision (which reaps the
        # tasks it kills). So the containerizer runs shielded, and an outer
        # cancellation is passed on to the roles' scope alone.
        roles_scope = anyio.CancelScope()

        async def cancel_roles_when_cancelled() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                roles_scope.cancel()

        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(cancel_roles_when_cancelled)
                with anyio.CancelScope(shield=True):
                    async with contextlib.AsyncExitStack() as stack:
                        containerizer = None
                        if self._agent_config is not None:
                            stack.callback(
                                remove_cgroups_root, cgroups_root_name(self._agent_config)
                            )
                            containerizer = await stack.enter_async_context(
                                build_containerizer(self._agent_config)
                            )
                        with roles_scope:
                            await self._run_roles(
                                master_sock, agent_sock, containerizer, task_status=task_status
                            )
                outer.cancel_scope.cancel()
        finally:
            for sock in (master_sock, agent_sock):
                if sock is not None:
                    sock.close()

    async def _run_roles(
        self,
        master_sock: socket.socket | None,
        agent_sock: socket.socket | None,
        containerizer: MesosContainerizer | None,
        *,
        task_status: TaskStatus[NodeAddresses],
    ) -> None:
        async with anyio.create_task_group() as tg:
            master_address = None
            if self._master_config is not None and master_sock is not None:
                master = Master(self._master_config)
                self.master = master
                mount_agent_transport(master.router, master)
                await tg.start(master.run)
                tg.start_soon(_serve, master.router, master_sock)
                master_address = _address(master_sock)

            agent_address = None
            if self._agent_config is not None and agent_sock is not None:
                connector: MasterConnector
                if self.master is not None:
                    connector = InProcessConnector(
                        self.master, tg, agent_name=_address(agent_sock)
                    )
                else:
                    assert self._master_address is not None
                    connector = HttpMasterConnector(self._master_address)
                assert containerizer is not None
                agent = Agent(self._agent_config, connector, containerizer)
                self.agent = agent
                tg.start_soon(_serve, agent.router, agent_sock)
                try:
                    await tg.start(agent.run)
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await agent.shutdown()
                    raise
                agent_address = _address(agent_sock)

            task_status.started(NodeAddresses(master=master_address, agent=agent_address))
            try:
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    if self.agent is not None:
                        await self.agent.shutdown()
