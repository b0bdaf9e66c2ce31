"""A node: one `mesoslite` process hosting a master, an agent, or both, on one event loop.

Each role gets its own HTTP listener (master 5050, agent 5051, as Mesos does: clients
find the agent through `MESOS_AGENT_ENDPOINT`, `Offer.url` and `pid`). Inside one
process the agent reaches the master through an in-process channel; an agent-only
node reaches a remote master over HTTP.

With a replica (`ReplicaConfig`), the master is highly available: the node also runs a
member of the Raft group on its own mutual-TLS listener (the replica port, master port
+ 1000 by default), and the master port serves a fresh leading master while this
replica leads, or redirects to the leader otherwise (`master.leadership`). The
node's agent then talks to whichever master leads: in process when it is its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from anyio.abc import TaskStatus

from mesoslite.agent.agent import Agent
from mesoslite.agent.config import AgentConfig
from mesoslite.master.config import MasterConfig
from mesoslite.master.master import Master
from mesoslite.replicated_log.service import ReplicaService, ReplicaTiming
from mesoslite.runtime.cgroups.layout import DEFAULT_CGROUP_ROOT, detect_cgroup_layout
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.runtime.isolation import (
    IsolationContext,
    default_isolation_flag,
    isolation_from_flag,
    launcher_for,
)
from mesoslite.transport.channel import AgentChannel, InProcessConnector, MasterConnector
from mesoslite.transport.http import HttpMasterConnector, mount_agent_transport
from mesoslite.wire.routing import Router
from mesoslite.wire.server import uvicorn_config

if TYPE_CHECKING:
    from mesoslite.replicated_log.durable_storage import DurableStorage
    from mesoslite.replicated_log.identity import NodeIdentity

__all__ = [
    "BindError",
    "Node",
    "NodeAddresses",
    "ReplicaConfig",
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
    peer: str | None = None
    # Set when this start founded a new cluster: its first join token.
    join_token: str | None = None


@dataclass(frozen=True)
class ReplicaConfig:
    """The replica role: a member of the Raft group holding the registry.

    Without an identity in `data_dir` the node founds a new cluster (`mesoslite up`);
    `advertise_ip` is the address the other members and clients reach it on."""

    data_dir: Path
    peer_ip: str
    peer_port: int
    advertise_ip: str
    name: str
    timing: ReplicaTiming = field(default_factory=ReplicaTiming)


def bind_listener(ip: str, port: int) -> socket.socket:
    """Open a listening TCP socket ourselves, so that a busy port fails fast with a
    clear message and port 0 gets a real port we can print."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only on sockets that say TCP, and
    # with Nagle on, a response written in two parts waits ~40 ms for the client's ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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


async def _serve(app: Any, sock: socket.socket, **options: Any) -> None:
    """Serve until cancelled. uvicorn does not take cancellation well (it can leave its
    serve loop hanging), so cancellation is turned into its own way to stop: set
    `should_exit` and let it close the listener and drain (1 s at most)."""
    options.setdefault("timeout_graceful_shutdown", 1)
    config = uvicorn_config(app, log_level="warning", timeout_keep_alive=75, **options)
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


class _MasterPort:
    """The master listener of an HA node: the leading master's routes while this
    replica leads, the follower's redirects otherwise."""

    def __init__(self, follower: Router) -> None:
        self.follower = follower
        self.leading: Master | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        master = self.leading
        app = master.router if master is not None else self.follower
        await app(scope, receive, send)


class _LeaderConnector:
    """An HA node's agent reaches the leading master: in process when this node's master
    leads, over HTTP otherwise."""

    def __init__(
        self, port: _MasterPort, service: ReplicaService, tg: Any, agent_name: str
    ) -> None:
        self._port = port
        self._service = service
        self._tg = tg
        self._agent_name = agent_name

    async def connect(self) -> AgentChannel:
        master = self._port.leading
        if master is not None:
            return await InProcessConnector(master, self._tg, self._agent_name).connect()
        leader = self._service.leader_member()
        if leader is None or not leader.master_address:
            raise ConnectionError("no leading master is elected yet")
        return await HttpMasterConnector(
            leader.master_address, agent_endpoint=self._agent_name
        ).connect()


class MasterListConnector:
    """An agent-only node knows every master's address and finds the leader among
    them: a non-leader's 307 names it, an unreachable master is skipped."""

    def __init__(self, addresses: list[str], *, agent_endpoint: str | None = None) -> None:
        if not addresses:
            raise ValueError("no master address to connect to")
        self._connectors = [
            HttpMasterConnector(address, agent_endpoint=agent_endpoint) for address in addresses
        ]
        self._current = 0

    async def connect(self) -> AgentChannel:
        errors = []
        for _ in range(len(self._connectors)):
            connector = self._connectors[self._current]
            for _attempt in range(2):  # the second follows a redirect to the leader
                try:
                    return await connector.connect()
                except (ConnectionError, OSError, Exception) as error:
                    errors.append(str(error))
            self._current = (self._current + 1) % len(self._connectors)
        raise ConnectionError("; ".join(errors[-3:]))


class Node:
    """Runs the configured roles until cancelled; stops every task it started on the
    way out."""

    def __init__(
        self,
        *,
        master_config: MasterConfig | None = None,
        agent_config: AgentConfig | None = None,
        master_address: str | None = None,
        master_addresses: list[str] | None = None,
        replica: ReplicaConfig | None = None,
    ) -> None:
        if master_config is None and agent_config is None:
            raise ValueError("a node needs a master, an agent, or both")
        if (
            master_config is None
            and agent_config is not None
            and not (master_address or master_addresses)
        ):
            raise ValueError("an agent-only node needs the master's address")
        if replica is not None and master_config is None:
            raise ValueError("a replica runs beside a master")
        self._master_config = master_config
        self._agent_config = agent_config
        self._master_addresses = master_addresses or ([master_address] if master_address else [])
        self._replica = replica
        self._peer_sock: socket.socket | None = None
        self.replica: ReplicaService | None = None
        self._replica_state: tuple[NodeIdentity, DurableStorage, str | None] | None = None
        self._master_port: _MasterPort | None = None
        self.agent: Agent | None = None
        # Set before cancelling run(): stop only what a restart could not take over
        # (tasks of checkpointing frameworks keep running; docs/recovery.md).
        self.keep_tasks_on_stop = False
        self._single_master: Master | None = None
        self._sockets: tuple[socket.socket | None, socket.socket | None] | None = None

    @property
    def master(self) -> Master | None:
        """This node's master while it serves (with a replica: while it leads)."""
        if self._master_port is not None:
            return self._master_port.leading
        return self._single_master

    def bind(self) -> tuple[socket.socket | None, socket.socket | None]:
        """Open the listeners (before starting anything, so errors come first). `run`
        binds them itself unless this was called before."""
        if self._sockets is not None:
            return self._sockets
        master_sock = agent_sock = None
        if self._master_config is not None:
            master_sock = bind_listener(self._master_config.ip, self._master_config.port)
        try:
            if self._agent_config is not None:
                agent_sock = bind_listener(self._agent_config.ip, self._agent_config.port)
            if self._replica is not None and self._peer_sock is None:
                self._peer_sock = bind_listener(self._replica.peer_ip, self._replica.peer_port)
        except BindError:
            for sock in (master_sock, agent_sock):
                if sock is not None:
                    sock.close()
            raise
        self._sockets = (master_sock, agent_sock)
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
                        if self._replica is not None and master_sock is not None:
                            await self._open_replica_storage(stack, master_sock)
                        with roles_scope:
                            await self._run_roles(
                                master_sock, agent_sock, containerizer, task_status=task_status
                            )
                outer.cancel_scope.cancel()
        finally:
            for sock in (master_sock, agent_sock, self._peer_sock):
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
            peer_address = None
            join_token = None
            if self._master_config is not None and master_sock is not None:
                master_address = _address(master_sock)
                if self._replica is not None:
                    peer_address, join_token = await self._start_replica(tg, master_sock)
                else:
                    master = Master(self._master_config)
                    self._single_master = master
                    mount_agent_transport(master.router, master)
                    await tg.start(master.run)
                    tg.start_soon(_serve, master.router, master_sock)

            agent_address = None
            if self._agent_config is not None and agent_sock is not None:
                connector: MasterConnector
                if self.replica is not None and self._master_port is not None:
                    connector = _LeaderConnector(
                        self._master_port, self.replica, tg, _address(agent_sock)
                    )
                elif self._single_master is not None:
                    connector = InProcessConnector(
                        self._single_master, tg, agent_name=_address(agent_sock)
                    )
                elif len(self._master_addresses) == 1:
                    connector = HttpMasterConnector(self._master_addresses[0])
                else:
                    connector = MasterListConnector(self._master_addresses)
                assert containerizer is not None
                agent = Agent(self._agent_config, connector, containerizer)
                self.agent = agent
                tg.start_soon(_serve, agent.router, agent_sock)
                try:
                    await tg.start(agent.run)
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await agent.shutdown(keep_checkpointed=self.keep_tasks_on_stop)
                    raise
                agent_address = _address(agent_sock)

            task_status.started(
                NodeAddresses(
                    master=master_address,
                    agent=agent_address,
                    peer=peer_address,
                    join_token=join_token,
                )
            )
            try:
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    if self.agent is not None:
                        await self.agent.shutdown(keep_checkpointed=self.keep_tasks_on_stop)

    async def _start_replica(self, tg: Any, master_sock: socket.socket) -> tuple[str, str | None]:
        """Found the cluster if the data directory has none; start the replica, its
        listener, the cluster endpoints and the leading-master loop. Returns the
        replica's address and, after founding, the new cluster's join token."""
        from mesoslite.master.leadership import (
            ReplicatedLeadership,
            follower_router,
            run_leading_masters,
        )
        from mesoslite.replicated_log.cluster_api import ClusterApi, promote_learners
        from mesoslite.replicated_log.identity import tls_paths
        from mesoslite.replicated_log.peer_transport import (
            mount_raft_endpoint,
            raft_http_protocol,
        )
        from mesoslite.replicated_log.tls import client_ssl_context, uvicorn_tls_options

        replica = self._replica
        master_config = self._master_config
        assert replica is not None and master_config is not None
        assert self._peer_sock is not None and self._replica_state is not None
        identity, storage, join_token = self._replica_state
        paths = tls_paths(replica.data_dir)
        client_ssl = await anyio.to_thread.run_sync(client_ssl_context, paths)
        service = ReplicaService(
            node_id=identity.node_id,
            storage=storage,
            client_ssl=client_ssl,
            timing=replica.timing,
            seed_peers={int(k): v for k, v in identity.seed_peers.items()},
        )
        self.replica = service
        api = ClusterApi(service, paths)
        peer_router = Router()
        endpoint = mount_raft_endpoint(peer_router, service.deliver)
        api.mount_admin(peer_router)
        follower = follower_router(service)
        api.mount_public(follower)
        port = _MasterPort(follower)
        self._master_port = port

        def make_master(leadership: ReplicatedLeadership) -> Master:
            master = Master(master_config, leadership=leadership)
            mount_agent_transport(master.router, master)
            api.mount_public(master.router)
            return master

        def on_change(master: Master | None) -> None:
            port.leading = master

        peer_sock = self._peer_sock

        async def serve_peers() -> None:
            try:
                await _serve(
                    peer_router,
                    peer_sock,
                    http=raft_http_protocol(endpoint),
                    **uvicorn_tls_options(paths),
                )
            finally:
                endpoint.close()

        tg.start_soon(serve_peers)
        await tg.start(service.run)
        tg.start_soon(promote_learners, service)
        tg.start_soon(run_leading_masters, service, make_master, on_change)
        tg.start_soon(_serve, port, master_sock)
        assert identity.peer_address is not None
        return identity.peer_address, join_token

    def _agent_port(self) -> int:
        if self._sockets is None or self._sockets[1] is None:
            return 0
        port: int = self._sockets[1].getsockname()[1]
        return port

    async def _open_replica_storage(
        self, stack: contextlib.AsyncExitStack, master_sock: socket.socket
    ) -> None:
        """Found the cluster if the data directory has none, then open the Raft log
        (before the roles start, so that it closes after they stop)."""
        from mesoslite.replicated_log.durable_storage import open_durable_storage
        from mesoslite.replicated_log.identity import NodeIdentity, found_cluster, raft_directory
        from mesoslite.replicated_log.service import new_node_id
        from mesoslite.replicated_log.tls import default_node_sans

        replica = self._replica
        assert replica is not None and self._peer_sock is not None
        data_dir = replica.data_dir
        identity = await anyio.to_thread.run_sync(NodeIdentity.load, data_dir)
        join_token = None
        if identity is None:
            peer_port = self._peer_sock.getsockname()[1]
            master_port = master_sock.getsockname()[1]
            sans = [*default_node_sans(), replica.advertise_ip]
            identity, token = await found_cluster(
                data_dir,
                node_id=new_node_id(),
                name=replica.name,
                master_address=f"{replica.advertise_ip}:{master_port}",
                peer_address=f"{replica.advertise_ip}:{peer_port}",
                sans=list(dict.fromkeys(sans)),
                agent=self._agent_config is not None,
                listen_ip=replica.peer_ip,
                agent_port=self._agent_port(),
            )
            join_token = str(token)
            log.info("founded cluster %s", identity.cluster_id)
        storage = await stack.enter_async_context(open_durable_storage(raft_directory(data_dir)))
        self._replica_state = (identity, storage, join_token)
