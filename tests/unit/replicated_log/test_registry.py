"""The registry state machine: operations, rejections, determinism, snapshot/restore."""

from __future__ import annotations

import random

import pytest

from mesoslite.proto import maintenance_pb2, mesos_pb2, quota_pb2, registry_pb2
from mesoslite.replicated_log.registry import OperationRejected, Registry, decode_operation

Op = registry_pb2.RegistryOperation


def agent_info(number: int, cpus: float = 4.0) -> mesos_pb2.AgentInfo:
    info = mesos_pb2.AgentInfo(hostname=f"host-{number}", port=5051)
    info.id.value = f"cluster-S{number}"
    resource = info.resources.add(name="cpus", type=mesos_pb2.Value.SCALAR)
    resource.scalar.value = cpus
    return info


def agent_id(number: int) -> mesos_pb2.AgentID:
    return mesos_pb2.AgentID(value=f"cluster-S{number}")


def at(seconds: int) -> mesos_pb2.TimeInfo:
    return mesos_pb2.TimeInfo(nanoseconds=seconds * 1_000_000_000)


def member(node_id: int, role: int = registry_pb2.Member.VOTER) -> registry_pb2.Member:
    return registry_pb2.Member(id=node_id, address=f"10.0.0.{node_id}:5050", role=role)


def initialize(cluster_id: str = "c1") -> Op:
    return Op(
        initialize_cluster=registry_pb2.InitializeCluster(
            cluster_id=cluster_id, members=[member(1)], minimum_capabilities=["B", "A", "A"]
        )
    )


def machine(hostname: str) -> mesos_pb2.MachineID:
    return mesos_pb2.MachineID(hostname=hostname, ip="10.1.0.1")


def schedule(*hostnames: str) -> maintenance_pb2.Schedule:
    window = maintenance_pb2.Window(machine_ids=[machine(name) for name in hostnames])
    window.unavailability.start.nanoseconds = 1
    return maintenance_pb2.Schedule(windows=[window])


def scenario_operations() -> list[Op]:
    """A run through every kind of operation, some of which are rejected."""
    guarantee = quota_pb2.QuotaConfig(role="analytics")
    guarantee.guarantees["cpus"].value = 8
    return [
        initialize(),
        Op(admit_agent=registry_pb2.AdmitAgent(info=agent_info(3))),
        Op(admit_agent=registry_pb2.AdmitAgent(info=agent_info(1))),
        Op(admit_agent=registry_pb2.AdmitAgent(info=agent_info(2))),
        Op(admit_agent=registry_pb2.AdmitAgent(info=agent_info(2))),  # rejected
        Op(update_agent_info=registry_pb2.UpdateAgentInfo(info=agent_info(1, cpus=8))),
        Op(
            mark_unreachable=registry_pb2.MarkAgentUnreachable(
                agent_id=agent_id(2), timestamp=at(10)
            )
        ),
        Op(mark_reachable=registry_pb2.MarkAgentReachable(info=agent_info(2))),
        Op(
            mark_unreachable=registry_pb2.MarkAgentUnreachable(
                agent_id=agent_id(3), timestamp=at(20)
            )
        ),
        Op(mark_gone=registry_pb2.MarkAgentGone(agent_id=agent_id(1), timestamp=at(30))),
        Op(remove_agent=registry_pb2.RemoveAgent(agent_id=agent_id(9))),  # rejected
        Op(
            update_weights=registry_pb2.UpdateWeights(
                weights=[mesos_pb2.WeightInfo(role="web", weight=2.5)]
            )
        ),
        Op(update_quota=registry_pb2.UpdateQuota(configs=[guarantee])),
        Op(
            update_reservations=registry_pb2.UpdateReservations(
                agent_id=agent_id(2), resources=agent_info(2).resources
            )
        ),
        Op(
            drain_agent=registry_pb2.DrainAgent(
                agent_id=agent_id(2),
                drain_info=mesos_pb2.DrainInfo(
                    state=mesos_pb2.DRAINING, config=mesos_pb2.DrainConfig(mark_gone=False)
                ),
            )
        ),
        Op(
            update_maintenance_schedule=registry_pb2.UpdateMaintenanceSchedule(
                schedule=schedule("m1", "m2")
            )
        ),
        Op(start_maintenance=registry_pb2.StartMaintenance(machine_ids=[machine("m1")])),
        Op(add_member=registry_pb2.AddMember(member=member(2, registry_pb2.Member.LEARNER))),
        Op(add_member=registry_pb2.AddMember(member=member(2))),
        Op(set_join_token=registry_pb2.SetJoinToken(sha256="ab" * 32)),
        Op(prune_agents=registry_pb2.PruneAgents(agent_ids=[agent_id(1)])),
    ]


def apply_all(registry: Registry, operations: list[Op]) -> list[str]:
    rejections = []
    for operation in operations:
        try:
            registry.apply_entry(operation.SerializeToString())
        except OperationRejected as rejected:
            rejections.append(str(rejected))
    return rejections


def test_the_same_operations_give_the_same_bytes() -> None:
    first, second = Registry(), Registry()
    rejections = apply_all(first, scenario_operations())
    assert apply_all(second, scenario_operations()) == rejections
    assert len(rejections) == 2
    assert first.snapshot() == second.snapshot()


def test_restoring_a_snapshot_midway_gives_the_same_bytes() -> None:
    operations = scenario_operations()
    straight = Registry()
    apply_all(straight, operations)
    for cut in range(len(operations) + 1):
        replica = Registry()
        apply_all(replica, operations[:cut])
        restored = Registry.restore(replica.snapshot())
        apply_all(restored, operations[cut:])
        assert restored.snapshot() == straight.snapshot(), cut


def test_bytes_do_not_depend_on_insertion_order() -> None:
    numbers = list(range(1, 30))
    shuffled = numbers[:]
    random.Random(7).shuffle(shuffled)
    one, other = Registry(), Registry()
    for registry, order in ((one, numbers), (other, shuffled)):
        registry.apply(initialize())
        for number in order:
            registry.apply(Op(admit_agent=registry_pb2.AdmitAgent(info=agent_info(number))))
            weight = mesos_pb2.WeightInfo(role=f"role-{number}", weight=number)
            registry.apply(Op(update_weights=registry_pb2.UpdateWeights(weights=[weight])))
    assert one.snapshot() == other.snapshot()


def test_the_scenario_leaves_the_expected_state() -> None:
    registry = Registry()
    apply_all(registry, scenario_operations())
    assert registry.cluster_id == "c1"
    assert registry.minimum_capabilities == ("A", "B")
    assert sorted(registry.agents) == ["cluster-S2"]
    assert registry.agents["cluster-S2"].deactivated
    assert registry.agents["cluster-S2"].drain_info.state == mesos_pb2.DRAINING
    assert sorted(registry.unreachable) == ["cluster-S3"]
    assert registry.unreachable["cluster-S3"].timestamp == at(20)
    assert dict(registry.gone) == {}, "pruned"
    assert registry.weights["web"].weight == 2.5
    assert registry.quota_configs["analytics"].guarantees["cpus"].value == 8
    assert list(registry.reservations) == ["cluster-S2"]
    assert registry.machines[("m1", "10.1.0.1")].mode == mesos_pb2.MachineInfo.DOWN
    assert registry.machines[("m2", "10.1.0.1")].mode == mesos_pb2.MachineInfo.DRAINING
    assert {node: m.role for node, m in registry.members.items()} == {
        1: registry_pb2.Member.VOTER,
        2: registry_pb2.Member.VOTER,
    }
    assert registry.join_token_sha256 == "ab" * 32


def test_a_rejected_operation_changes_nothing() -> None:
    registry = Registry()
    apply_all(registry, scenario_operations())
    before = registry.snapshot()
    rejected = [
        initialize("c2"),
        Op(admit_agent=registry_pb2.AdmitAgent(info=agent_info(3))),  # unreachable already
        Op(
            mark_unreachable=registry_pb2.MarkAgentUnreachable(
                agent_id=agent_id(7), timestamp=at(1)
            )
        ),
        Op(
            update_weights=registry_pb2.UpdateWeights(
                weights=[mesos_pb2.WeightInfo(role="x", weight=-1)]
            )
        ),
        # m1 is down: it must stay scheduled.
        Op(
            update_maintenance_schedule=registry_pb2.UpdateMaintenanceSchedule(
                schedule=schedule("m2")
            )
        ),
        Op(stop_maintenance=registry_pb2.StopMaintenance(machine_ids=[machine("m2")])),
        Op(
            add_member=registry_pb2.AddMember(
                member=registry_pb2.Member(id=5, address="10.0.0.1:5050", role=1)
            )
        ),
        Op(remove_member=registry_pb2.RemoveMember(id=42)),
        Op(),
    ]
    for operation in rejected:
        with pytest.raises(OperationRejected):
            registry.apply(operation)
        assert registry.snapshot() == before, operation


def test_a_gone_agent_never_comes_back_until_pruned() -> None:
    registry = Registry()
    registry.apply(initialize())
    registry.apply(Op(admit_agent=registry_pb2.AdmitAgent(info=agent_info(1))))
    registry.apply(Op(mark_gone=registry_pb2.MarkAgentGone(agent_id=agent_id(1), timestamp=at(5))))
    with pytest.raises(OperationRejected, match="gone"):
        registry.apply(Op(mark_reachable=registry_pb2.MarkAgentReachable(info=agent_info(1))))
    assert "cluster-S1" in registry.gone and "cluster-S1" not in registry.agents

    registry.apply(Op(prune_agents=registry_pb2.PruneAgents(agent_ids=[agent_id(1)])))
    registry.apply(Op(mark_reachable=registry_pb2.MarkAgentReachable(info=agent_info(1))))
    assert "cluster-S1" in registry.agents and "cluster-S1" not in registry.gone


def test_maintenance_lifecycle() -> None:
    registry = Registry()
    registry.apply(initialize())
    registry.apply(
        Op(
            update_maintenance_schedule=registry_pb2.UpdateMaintenanceSchedule(
                schedule=schedule("a", "b")
            )
        )
    )
    registry.apply(Op(start_maintenance=registry_pb2.StartMaintenance(machine_ids=[machine("a")])))
    registry.apply(Op(stop_maintenance=registry_pb2.StopMaintenance(machine_ids=[machine("a")])))
    assert list(registry.machines) == [("b", "10.1.0.1")]
    (window,) = registry.maintenance_schedule.windows
    assert [m.hostname for m in window.machine_ids] == ["b"]


def test_quota_without_guarantees_or_limits_is_removed() -> None:
    registry = Registry()
    config = quota_pb2.QuotaConfig(role="r")
    config.limits["mem"].value = 1024
    registry.apply(Op(update_quota=registry_pb2.UpdateQuota(configs=[config])))
    assert "r" in registry.quota_configs
    registry.apply(
        Op(update_quota=registry_pb2.UpdateQuota(configs=[quota_pb2.QuotaConfig(role="r")]))
    )
    assert "r" not in registry.quota_configs


def test_the_registry_shares_no_message_with_applied_operations() -> None:
    registry = Registry()
    operation = Op(admit_agent=registry_pb2.AdmitAgent(info=agent_info(1)))
    registry.apply(operation)
    before = registry.snapshot()
    operation.admit_agent.info.hostname = "changed"
    assert registry.snapshot() == before


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b""])
def test_undecodable_entries_are_rejected(data: bytes) -> None:
    with pytest.raises(OperationRejected):
        decode_operation(data)
    registry = Registry()
    with pytest.raises(OperationRejected):
        registry.apply_entry(data)
    assert registry.snapshot() == Registry().snapshot()
