"""Who leads, and the registry writes only a leader makes (wire contract 1.6, 7.2, 7.3).

`Leadership` is the master's seam to the replicated registry:

* `SoleLeadership`: a master alone (no replica) always leads and keeps no registry;
* `ReplicatedLeadership`: a master whose replica leads the Raft group. Registry writes
  (`record`) are proposed in call order; `after_recorded` and `recorded` wait for
  their commit, so that an agent hears "registered", or an operator call is answered,
  only once the write survives a failover.

Non-leading masters answer through `follower_router`: API calls get 307 to the leader
(`Location: //host:port/master/<delegated path>`), or 503 "No leader elected";
`/redirect` and `/master/redirect` answer 307 to the leader's `//host:port`.
`run_leading_masters` makes a fresh master each time this replica wins an election:
it recovers the registry (admitted agents are *recovered* until they re-register,
unreachable and gone agents, weights) and serves until leadership is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import Response

from mesoslite.proto import mesos_pb2, registry_pb2
from mesoslite.wire.http import HttpError
from mesoslite.wire.routing import Router, route_path

if TYPE_CHECKING:
    from mesoslite.master.master import Master
    from mesoslite.replicated_log.service import Proposal, ReplicaService

__all__ = [
    "AGENT_REREGISTER_TIMEOUT_S",
    "Leadership",
    "ReplicatedLeadership",
    "SoleLeadership",
    "follower_router",
    "leader_base",
    "redirect_endpoint",
    "require_leader",
    "run_leading_masters",
    "time_info",
]

log = logging.getLogger(__name__)

# Mesos' --agent_reregister_timeout: recovered agents that do not come back within it
# after a failover are marked unreachable.
AGENT_REREGISTER_TIMEOUT_S = 600.0


def time_info(seconds: float) -> mesos_pb2.TimeInfo:
    return mesos_pb2.TimeInfo(nanoseconds=int(seconds * 1e9))


class Leadership(Protocol):
    def is_leader(self) -> bool: ...

    def leader_info(self, own: mesos_pb2.MasterInfo) -> mesos_pb2.MasterInfo | None:
        """The leading master's info (`own` when this master leads); None: unknown."""
        ...

    def is_admitted(self, agent_id: str) -> bool:
        """Whether the registry holds `agent_id` as admitted."""
        ...

    def record(self, operation: registry_pb2.RegistryOperation) -> None:
        """Write to the registry; writes commit in call order."""
        ...

    def after_recorded(self, callback: Callable[[], None]) -> None:
        """Run `callback` once every write recorded so far has committed (never, if
        leadership is lost first: the master is then replaced anyway)."""
        ...

    async def recorded(self) -> None:
        """Wait until every write recorded so far has committed.

        :raises HttpError: 503 when it did not (leadership lost).
        """
        ...

    async def committed_weights(self) -> dict[str, float] | None:
        """The weights as committed, read linearizably (None: use the master's own)."""
        ...


class SoleLeadership:
    """A master without a replica: it always leads and keeps no registry."""

    def is_leader(self) -> bool:
        return True

    def leader_info(self, own: mesos_pb2.MasterInfo) -> mesos_pb2.MasterInfo | None:
        return own

    def is_admitted(self, agent_id: str) -> bool:
        return False

    def record(self, operation: registry_pb2.RegistryOperation) -> None:
        pass

    def after_recorded(self, callback: Callable[[], None]) -> None:
        callback()

    async def recorded(self) -> None:
        return

    async def committed_weights(self) -> dict[str, float] | None:
        return None


def _counts_as_committed(error: BaseException | None) -> bool:
    from mesoslite.replicated_log.registry import OperationRejected

    # A rejected operation is committed too (every replica rejected it alike).
    return error is None or isinstance(error, OperationRejected)


class ReplicatedLeadership:
    """The leadership of a master backed by this node's replica."""

    def __init__(self, service: ReplicaService) -> None:
        self._service = service
        self._last: Proposal | None = None
        self.serving = False  # set while this master is the leading master

    def is_leader(self) -> bool:
        return self.serving and self._service.is_leader

    def leader_info(self, own: mesos_pb2.MasterInfo) -> mesos_pb2.MasterInfo | None:
        if self.is_leader():
            return own
        member = self._service.leader_member()
        if member is None or not member.master_address:
            return None
        return master_info_at(member.master_address)

    def is_admitted(self, agent_id: str) -> bool:
        return agent_id in self._service.registry.agents

    def record(self, operation: registry_pb2.RegistryOperation) -> None:
        from mesoslite.replicated_log.service import NotLeaderError

        try:
            self._last = self._service.propose_nowait(operation)
        except NotLeaderError as error:
            log.warning("registry write dropped (%s): %s", error, operation.WhichOneof("operation"))

    def after_recorded(self, callback: Callable[[], None]) -> None:
        last = self._last
        if last is None:
            callback()
            return

        def done(error: BaseException | None) -> None:
            if _counts_as_committed(error):
                callback()

        last.add_done_callback(done)

    async def recorded(self) -> None:
        last = self._last
        if last is None:
            return
        try:
            await last.wait(10.0)
        except Exception as error:
            if not _counts_as_committed(error):
                raise HttpError(503, f"The registry write did not complete: {error}") from None

    async def committed_weights(self) -> dict[str, float] | None:
        service = self._service
        term = service.term
        try:
            await service.read_barrier()
        except TimeoutError:
            raise HttpError(503, "No leader elected") from None
        if not service.is_leader or service.term != term:
            raise HttpError(503, "Leadership changed; retry")
        return {role: info.weight for role, info in service.registry.weights.items()}


def master_info_at(address: str) -> mesos_pb2.MasterInfo:
    """What a follower knows of the leading master: its address."""
    host, _, port = address.rpartition(":")
    info = mesos_pb2.MasterInfo(id="", ip=0, port=int(port), hostname=host, pid=f"master@{address}")
    info.address.hostname = host
    info.address.ip = host
    info.address.port = int(port)
    return info


# ---------------------------------------------------------------------- redirection


def _base_of(leader: mesos_pb2.MasterInfo | None) -> str | None:
    if leader is None:
        return None
    host = leader.hostname or leader.address.ip or leader.address.hostname
    return f"//{host}:{leader.port}"


def leader_base(master: Master) -> str | None:
    """`//host:port` of the leading master, None when no leader is known."""
    return _base_of(master.leader_info())


def require_leader(master: Master, request: Request) -> None:
    """Raise the redirect (or 503) unless this master leads."""
    if master.is_leader():
        return
    _redirect_to(leader_base(master), request)


def _redirect_to(base: str | None, request: Request) -> None:
    if base is None:
        raise HttpError(503, "No leader elected")
    # Mesos redirects to the path as delegated to the master process.
    location = f"{base}/master{route_path(request)}"
    raise HttpError(307, "", headers={"Location": location})


async def redirect_endpoint(master: Master, request: Request) -> Response:
    """`/redirect`, `/master/redirect`: always 307 to the leader, even on the leader."""
    base = leader_base(master)
    if base is None:
        raise HttpError(503, "No leader elected")
    return Response(b"", status_code=307, headers={"Location": base})


def follower_router(service: ReplicaService) -> Router:
    """The master port of a master that does not lead: everything goes to the leader,
    except `/health` and the cluster endpoints (mounted by the caller)."""

    def base() -> str | None:
        member = service.leader_member()
        if member is None or not member.master_address:
            return None
        return f"//{member.master_address}"

    async def redirect(request: Request) -> Response:
        target = base()
        if target is None:
            raise HttpError(503, "No leader elected")
        return Response(b"", status_code=307, headers={"Location": target})

    async def health(request: Request) -> Response:
        return Response(b"", status_code=200)

    async def elsewhere(request: Request) -> Response:
        _redirect_to(base(), request)
        raise AssertionError("unreachable")

    router = Router(aliases=["/master"])
    router.add("/redirect", redirect, methods=("GET",))
    router.add("/health", health, methods=("GET",))
    router.add("/", elsewhere, prefix=True)
    return router


# ---------------------------------------------------------------------- lifecycle


def _recover(master: Master, registry_view: ReplicaService) -> None:
    """Take over what the registry remembers (wire contract 7.2)."""
    from mesoslite.master.state import GoneAgent, UnreachableAgent

    registry = registry_view.registry
    state = master.state
    for agent_id, gone in registry.gone.items():
        state.gone_agents[agent_id] = GoneAgent(agent_id, gone.timestamp.nanoseconds / 1e9)
    for agent_id, unreachable in registry.unreachable.items():
        info = mesos_pb2.AgentInfo(hostname="")
        info.id.CopyFrom(unreachable.id)
        state.unreachable_agents[agent_id] = UnreachableAgent(
            info, unreachable.timestamp.nanoseconds / 1e9
        )
    if registry.weights:
        weights = {role: info.weight for role, info in registry.weights.items()}
        master.weights.update(weights)
        master.allocator.update_weights(weights)
    recovered = sorted(registry.agents)
    for agent_id in recovered:
        state.recovered_agents[agent_id] = registry.agents[agent_id].info
    if recovered:
        log.info("%d agents recovered from the registry; waiting for them", len(recovered))
        master.timers.call_later(
            AGENT_REREGISTER_TIMEOUT_S, lambda: _expire_recovered(master, registry_view, recovered)
        )


def _expire_recovered(master: Master, service: ReplicaService, recovered: list[str]) -> None:
    now = master.clock()
    for agent_id in recovered:
        if master.state.recovered_agents.pop(agent_id, None) is None:
            continue
        if agent_id in master.state.agents or agent_id not in service.registry.agents:
            continue
        log.warning("recovered agent %s did not re-register in time: unreachable", agent_id)
        operation = registry_pb2.RegistryOperation()
        operation.mark_unreachable.agent_id.value = agent_id
        operation.mark_unreachable.timestamp.CopyFrom(time_info(now))
        master.leadership.record(operation)
        info = service.registry.agents[agent_id].info
        from mesoslite.master.state import UnreachableAgent

        master.state.unreachable_agents[agent_id] = UnreachableAgent(info, now)


async def run_leading_masters(
    service: ReplicaService,
    make_master: Callable[[ReplicatedLeadership], Master],
    on_change: Callable[[Master | None], None],
) -> None:
    """Whenever this replica leads (and has applied everything committed before), run
    a fresh master from the registry; stop it the moment leadership is lost."""
    while True:
        while not service.is_leader:
            await service.wait_leadership_changed()
        try:
            await service.read_barrier()
        except TimeoutError:
            continue
        if not service.is_leader:
            continue
        leadership = ReplicatedLeadership(service)
        master = make_master(leadership)
        _recover(master, service)
        term = service.term
        async with anyio.create_task_group() as group:
            await group.start(master.run)
            leadership.serving = True
            master.elected_time = master.clock()
            on_change(master)
            log.info("leading master %s from term %d", master.info.id, term)
            try:
                while service.is_leader and service.term == term:
                    await service.wait_leadership_changed()
            finally:
                leadership.serving = False
                on_change(None)
                log.info("master %s stops leading", master.info.id)
                for agent in list(master.state.agents.values()):
                    if agent.link is not None:
                        agent.link.close()  # agents reconnect and find the new leader
                group.cancel_scope.cancel()
