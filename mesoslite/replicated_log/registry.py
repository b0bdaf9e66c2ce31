"""The registry state machine: what every replica applies from committed log entries.

Each committed NORMAL entry carries one `RegistryOperation` (mesoslite/proto/registry.proto).
`apply` is deterministic: it reads nothing but the registry and the operation (times
come inside operations, chosen by the proposer), so every replica that applies the same
entries holds the same registry, and `snapshot()` returns the same bytes. An operation
that does not fit the current state (admitting an agent twice, ...) raises
`OperationRejected` on every replica alike and changes nothing; the master answers its
proposer with the reason.

The state is kept in dictionaries by key for O(1) operations; snapshots sort by key.
Accessors hand out the stored messages themselves for speed: callers must not mutate them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from mesoslite.proto import maintenance_pb2, mesos_pb2, quota_pb2, registry_pb2

__all__ = ["OperationRejected", "Registry", "decode_operation"]

_MachineKey = tuple[str, str]
_Key = TypeVar("_Key", int, str, _MachineKey)
_Value = TypeVar("_Value")
_Message = TypeVar("_Message", bound=Message)


class OperationRejected(Exception):
    """The operation does not apply to the registry as it stands; nothing changed."""


def decode_operation(data: bytes) -> registry_pb2.RegistryOperation:
    """Parse an entry's data. A committed entry that does not parse is rejected the same
    way on every replica."""
    operation = registry_pb2.RegistryOperation()
    try:
        operation.ParseFromString(data)
    except DecodeError as error:
        raise OperationRejected(f"undecodable registry operation: {error}") from error
    if operation.WhichOneof("operation") is None:
        raise OperationRejected("empty registry operation")
    return operation


def _machine_key(machine_id: mesos_pb2.MachineID) -> _MachineKey:
    return machine_id.hostname, machine_id.ip


class Registry:
    def __init__(self) -> None:
        self._cluster_id = ""
        self._members: dict[int, registry_pb2.Member] = {}
        self._agents: dict[str, registry_pb2.AdmittedAgent] = {}
        self._unreachable: dict[str, registry_pb2.UnreachableAgent] = {}
        self._gone: dict[str, registry_pb2.GoneAgent] = {}
        self._weights: dict[str, mesos_pb2.WeightInfo] = {}
        self._quota_configs: dict[str, quota_pb2.QuotaConfig] = {}
        self._reservations: dict[str, registry_pb2.AgentReservations] = {}
        self._schedule = maintenance_pb2.Schedule()
        self._machines: dict[_MachineKey, mesos_pb2.MachineInfo] = {}
        self._minimum_capabilities: tuple[str, ...] = ()
        self._join_token_sha256: str | None = None

    # ------------------------------------------------------------ snapshots

    def snapshot(self) -> bytes:
        """The whole registry as bytes; equal registries give equal bytes."""
        return self.to_proto().SerializeToString(deterministic=True)

    @classmethod
    def restore(cls, data: bytes) -> Registry:
        message = registry_pb2.Registry()
        message.ParseFromString(data)
        registry = cls()
        registry._cluster_id = message.cluster_id
        registry._members = {member.id: member for member in message.members}
        registry._agents = {agent.info.id.value: agent for agent in message.agents}
        registry._unreachable = {agent.id.value: agent for agent in message.unreachable}
        registry._gone = {agent.id.value: agent for agent in message.gone}
        registry._weights = {weight.role: weight for weight in message.weights}
        registry._quota_configs = {config.role: config for config in message.quota_configs}
        registry._reservations = {
            reservations.agent_id.value: reservations for reservations in message.reservations
        }
        registry._schedule = message.maintenance_schedule
        registry._machines = {_machine_key(machine.id): machine for machine in message.machines}
        registry._minimum_capabilities = tuple(message.minimum_capabilities)
        if message.HasField("join_token_sha256"):
            registry._join_token_sha256 = message.join_token_sha256
        return registry

    def to_proto(self) -> registry_pb2.Registry:
        message = registry_pb2.Registry()
        if self._cluster_id:
            message.cluster_id = self._cluster_id
        message.members.extend(_sorted_values(self._members))
        message.agents.extend(_sorted_values(self._agents))
        message.unreachable.extend(_sorted_values(self._unreachable))
        message.gone.extend(_sorted_values(self._gone))
        message.weights.extend(_sorted_values(self._weights))
        message.quota_configs.extend(_sorted_values(self._quota_configs))
        message.reservations.extend(_sorted_values(self._reservations))
        if self._schedule.windows:
            message.maintenance_schedule.CopyFrom(self._schedule)
        message.machines.extend(_sorted_values(self._machines))
        message.minimum_capabilities.extend(self._minimum_capabilities)
        if self._join_token_sha256 is not None:
            message.join_token_sha256 = self._join_token_sha256
        return message

    # ------------------------------------------------------------ reads

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    @property
    def members(self) -> Mapping[int, registry_pb2.Member]:
        return MappingProxyType(self._members)

    @property
    def agents(self) -> Mapping[str, registry_pb2.AdmittedAgent]:
        """Admitted agents by agent id."""
        return MappingProxyType(self._agents)

    @property
    def unreachable(self) -> Mapping[str, registry_pb2.UnreachableAgent]:
        return MappingProxyType(self._unreachable)

    @property
    def gone(self) -> Mapping[str, registry_pb2.GoneAgent]:
        return MappingProxyType(self._gone)

    @property
    def weights(self) -> Mapping[str, mesos_pb2.WeightInfo]:
        return MappingProxyType(self._weights)

    @property
    def quota_configs(self) -> Mapping[str, quota_pb2.QuotaConfig]:
        return MappingProxyType(self._quota_configs)

    @property
    def reservations(self) -> Mapping[str, registry_pb2.AgentReservations]:
        return MappingProxyType(self._reservations)

    @property
    def maintenance_schedule(self) -> maintenance_pb2.Schedule:
        return self._schedule

    @property
    def machines(self) -> Mapping[_MachineKey, mesos_pb2.MachineInfo]:
        """Machines under maintenance (DRAINING or DOWN) by (hostname, ip)."""
        return MappingProxyType(self._machines)

    @property
    def minimum_capabilities(self) -> tuple[str, ...]:
        return self._minimum_capabilities

    @property
    def join_token_sha256(self) -> str | None:
        return self._join_token_sha256

    # ------------------------------------------------------------ writes

    def apply_entry(self, data: bytes) -> registry_pb2.RegistryOperation:
        """Decode and apply a committed entry's data; returns the operation applied.

        :raises OperationRejected: the operation does not apply; nothing changed.
        """
        operation = decode_operation(data)
        self.apply(operation)
        return operation

    def apply(self, operation: registry_pb2.RegistryOperation) -> None:
        """:raises OperationRejected: the operation does not apply; nothing changed."""
        kind = operation.WhichOneof("operation")
        match kind:
            case "initialize_cluster":
                self._initialize_cluster(operation.initialize_cluster)
            case "admit_agent":
                self._admit_agent(operation.admit_agent.info)
            case "update_agent_info":
                self._update_agent_info(operation.update_agent_info.info)
            case "mark_unreachable":
                op = operation.mark_unreachable
                self._mark_unreachable(op.agent_id.value, op.timestamp)
            case "mark_reachable":
                self._mark_reachable(operation.mark_reachable.info)
            case "mark_gone":
                self._mark_gone(operation.mark_gone.agent_id.value, operation.mark_gone.timestamp)
            case "remove_agent":
                self._remove_agent(operation.remove_agent.agent_id.value)
            case "prune_agents":
                self._prune_agents(agent_id.value for agent_id in operation.prune_agents.agent_ids)
            case "drain_agent":
                op_drain = operation.drain_agent
                self._drain_agent(op_drain.agent_id.value, op_drain.drain_info)
            case "deactivate_agent":
                self._set_deactivated(operation.deactivate_agent.agent_id.value, True)
            case "reactivate_agent":
                self._reactivate_agent(operation.reactivate_agent.agent_id.value)
            case "update_weights":
                self._update_weights(operation.update_weights.weights)
            case "update_quota":
                self._update_quota(operation.update_quota.configs)
            case "update_reservations":
                op_reserve = operation.update_reservations
                self._update_reservations(op_reserve.agent_id, op_reserve.resources)
            case "update_maintenance_schedule":
                self._update_schedule(operation.update_maintenance_schedule.schedule)
            case "start_maintenance":
                self._start_maintenance(operation.start_maintenance.machine_ids)
            case "stop_maintenance":
                self._stop_maintenance(operation.stop_maintenance.machine_ids)
            case "add_member":
                self._add_member(operation.add_member.member)
            case "remove_member":
                self._remove_member(operation.remove_member.id)
            case "set_join_token":
                op_token = operation.set_join_token
                self._join_token_sha256 = op_token.sha256 if op_token.HasField("sha256") else None
            case _:
                raise OperationRejected(f"unknown registry operation {kind!r}")

    def _initialize_cluster(self, op: registry_pb2.InitializeCluster) -> None:
        if self._cluster_id:
            raise OperationRejected(f"the cluster is already initialized as {self._cluster_id}")
        if not op.cluster_id:
            raise OperationRejected("a cluster id must not be empty")
        if len({member.id for member in op.members}) != len(op.members):
            raise OperationRejected("member ids must be unique")
        self._cluster_id = op.cluster_id
        self._members = {member.id: _copy(member) for member in op.members}
        self._minimum_capabilities = tuple(sorted(set(op.minimum_capabilities)))

    def _admit_agent(self, info: mesos_pb2.AgentInfo) -> None:
        agent_id = info.id.value
        if not agent_id:
            raise OperationRejected("an admitted agent needs an id")
        if agent_id in self._agents:
            raise OperationRejected(f"agent {agent_id} is already admitted")
        if agent_id in self._unreachable or agent_id in self._gone:
            raise OperationRejected(f"agent {agent_id} was admitted before")
        self._agents[agent_id] = registry_pb2.AdmittedAgent(info=info)

    def _update_agent_info(self, info: mesos_pb2.AgentInfo) -> None:
        agent = self._admitted(info.id.value)
        agent.info.CopyFrom(info)

    def _mark_unreachable(self, agent_id: str, timestamp: mesos_pb2.TimeInfo) -> None:
        agent = self._admitted(agent_id)
        unreachable = registry_pb2.UnreachableAgent(
            id=agent.info.id, timestamp=timestamp, deactivated=agent.deactivated
        )
        if agent.HasField("drain_info"):
            unreachable.drain_info.CopyFrom(agent.drain_info)
        del self._agents[agent_id]
        self._unreachable[agent_id] = unreachable

    def _mark_reachable(self, info: mesos_pb2.AgentInfo) -> None:
        agent_id = info.id.value
        if agent_id in self._agents:
            return  # already back: re-registration may race with the unreachable timer
        if agent_id in self._gone:
            raise OperationRejected(f"agent {agent_id} is gone and may not come back")
        agent = registry_pb2.AdmittedAgent(info=info)
        unreachable = self._unreachable.pop(agent_id, None)
        if unreachable is not None:
            agent.deactivated = unreachable.deactivated
            if unreachable.HasField("drain_info"):
                agent.drain_info.CopyFrom(unreachable.drain_info)
        self._agents[agent_id] = agent

    def _mark_gone(self, agent_id: str, timestamp: mesos_pb2.TimeInfo) -> None:
        if agent_id in self._gone:
            return
        admitted = self._agents.pop(agent_id, None)
        unreachable = self._unreachable.pop(agent_id, None)
        if admitted is None and unreachable is None:
            raise OperationRejected(f"agent {agent_id} is not known")
        self._gone[agent_id] = registry_pb2.GoneAgent(
            id=mesos_pb2.AgentID(value=agent_id), timestamp=timestamp
        )
        self._reservations.pop(agent_id, None)

    def _remove_agent(self, agent_id: str) -> None:
        self._admitted(agent_id)
        del self._agents[agent_id]
        self._reservations.pop(agent_id, None)

    def _prune_agents(self, agent_ids: Iterable[str]) -> None:
        for agent_id in agent_ids:
            self._unreachable.pop(agent_id, None)
            self._gone.pop(agent_id, None)

    def _drain_agent(self, agent_id: str, drain_info: mesos_pb2.DrainInfo) -> None:
        agent = self._agents.get(agent_id) or self._unreachable.get(agent_id)
        if agent is None:
            raise OperationRejected(f"agent {agent_id} is neither admitted nor unreachable")
        agent.drain_info.CopyFrom(drain_info)
        agent.deactivated = True  # a draining agent gets no new offers

    def _set_deactivated(self, agent_id: str, deactivated: bool) -> None:
        agent = self._agents.get(agent_id) or self._unreachable.get(agent_id)
        if agent is None:
            raise OperationRejected(f"agent {agent_id} is neither admitted nor unreachable")
        agent.deactivated = deactivated

    def _reactivate_agent(self, agent_id: str) -> None:
        self._set_deactivated(agent_id, False)
        agent = self._agents.get(agent_id) or self._unreachable[agent_id]
        agent.ClearField("drain_info")

    def _update_weights(self, weights: Iterable[mesos_pb2.WeightInfo]) -> None:
        updates = list(weights)
        for weight in updates:
            if not weight.role or not weight.weight > 0:
                raise OperationRejected(f"invalid weight {weight.weight} for role {weight.role!r}")
        for weight in updates:
            self._weights[weight.role] = _copy(weight)

    def _update_quota(self, configs: Iterable[quota_pb2.QuotaConfig]) -> None:
        updates = list(configs)
        if any(not config.role for config in updates):
            raise OperationRejected("a quota config needs a role")
        for config in updates:
            if config.guarantees or config.limits:
                self._quota_configs[config.role] = _copy(config)
            else:
                self._quota_configs.pop(config.role, None)

    def _update_reservations(
        self, agent_id: mesos_pb2.AgentID, resources: Iterable[mesos_pb2.Resource]
    ) -> None:
        if agent_id.value not in self._agents and agent_id.value not in self._unreachable:
            raise OperationRejected(f"agent {agent_id.value} is neither admitted nor unreachable")
        entry = registry_pb2.AgentReservations(agent_id=agent_id, resources=resources)
        if entry.resources:
            self._reservations[agent_id.value] = entry
        else:
            self._reservations.pop(agent_id.value, None)

    def _update_schedule(self, schedule: maintenance_pb2.Schedule) -> None:
        scheduled: dict[_MachineKey, mesos_pb2.MachineInfo] = {}
        for window in schedule.windows:
            for machine_id in window.machine_ids:
                key = _machine_key(machine_id)
                if key in scheduled:
                    raise OperationRejected(f"machine {key} is in more than one window")
                machine = self._machines.get(key)
                mode = mesos_pb2.MachineInfo.DRAINING
                if machine is not None and machine.mode == mesos_pb2.MachineInfo.DOWN:
                    mode = mesos_pb2.MachineInfo.DOWN
                scheduled[key] = mesos_pb2.MachineInfo(
                    id=machine_id, mode=mode, unavailability=window.unavailability
                )
        for key, machine in self._machines.items():
            if machine.mode == mesos_pb2.MachineInfo.DOWN and key not in scheduled:
                raise OperationRejected(f"machine {key} is down and must stay scheduled")
        self._schedule = _copy(schedule)
        self._machines = scheduled

    def _start_maintenance(self, machine_ids: Iterable[mesos_pb2.MachineID]) -> None:
        keys = [_machine_key(machine_id) for machine_id in machine_ids]
        for key in keys:
            if key not in self._machines:
                raise OperationRejected(f"machine {key} is not scheduled for maintenance")
        for key in keys:
            self._machines[key].mode = mesos_pb2.MachineInfo.DOWN

    def _stop_maintenance(self, machine_ids: Iterable[mesos_pb2.MachineID]) -> None:
        keys = {_machine_key(machine_id) for machine_id in machine_ids}
        for key in keys:
            machine = self._machines.get(key)
            if machine is None or machine.mode != mesos_pb2.MachineInfo.DOWN:
                raise OperationRejected(f"machine {key} is not down for maintenance")
        for key in keys:
            del self._machines[key]
        schedule = maintenance_pb2.Schedule()
        for window in self._schedule.windows:
            kept = [m for m in window.machine_ids if _machine_key(m) not in keys]
            if kept:
                schedule.windows.add(machine_ids=kept, unavailability=window.unavailability)
        self._schedule = schedule

    def _add_member(self, member: registry_pb2.Member) -> None:
        for other in self._members.values():
            if other.id != member.id and other.address == member.address:
                raise OperationRejected(f"address {member.address} belongs to member {other.id}")
        self._members[member.id] = _copy(member)

    def _remove_member(self, member_id: int) -> None:
        if member_id not in self._members:
            raise OperationRejected(f"member {member_id} is not in the cluster")
        del self._members[member_id]

    def _admitted(self, agent_id: str) -> registry_pb2.AdmittedAgent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise OperationRejected(f"agent {agent_id} is not admitted")
        return agent


def _sorted_values(mapping: Mapping[_Key, _Value]) -> list[_Value]:
    return [mapping[key] for key in sorted(mapping)]


def _copy(message: _Message) -> _Message:
    """A copy, so that the caller's operation and the registry share no message."""
    copied = type(message)()
    copied.CopyFrom(message)
    return copied
