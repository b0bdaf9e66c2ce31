"""Capabilities decide which agents and which resources a framework may be offered."""

from __future__ import annotations

from mesoslite.master.allocator import AllocatorConfig
from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources, parse_resources

from .builders import (
    GPU,
    REFINEMENT,
    REVOCABLE,
    SHARED,
    make_allocator,
    offered,
    resources,
    summary,
)


def test_agents_with_gpus_go_only_to_gpu_frameworks() -> None:
    allocator = make_allocator()
    allocator.add_agent("gpu", resources("cpus:4;mem:4096;gpus:1"))
    allocator.add_agent("plain", resources("cpus:4;mem:4096"))
    allocator.add_framework("cpu-only", ["*"], capabilities=[])
    assert summary(allocator.allocate(now=0)) == {("cpu-only", "plain", "*")}
    allocator.add_framework("gpu-aware", ["*"], capabilities=[GPU])
    assert summary(allocator.allocate(now=0)) == {("gpu-aware", "gpu", "*")}


def test_the_gpus_flag_marks_an_agent_as_a_gpu_agent() -> None:
    allocator = make_allocator()
    allocator.add_agent("flagged", resources("cpus:4;mem:4096"), gpus=True)
    allocator.add_framework("cpu-only", ["*"], capabilities=[])
    assert allocator.allocate(now=0) == []


def test_gpu_filtering_can_be_turned_off() -> None:
    allocator = make_allocator(AllocatorConfig(filter_gpu_resources=False))
    allocator.add_agent("gpu", resources("cpus:4;mem:4096;gpus:1"))
    allocator.add_framework("cpu-only", ["*"], capabilities=[])
    assert summary(allocator.allocate(now=0)) == {("cpu-only", "gpu", "*")}


def _revocable_cpus(amount: float) -> mesos_pb2.Resource:
    resource = mesos_pb2.Resource(name="cpus", type=mesos_pb2.Value.SCALAR)
    resource.scalar.value = amount
    resource.revocable.SetInParent()
    return resource


def test_revocable_resources_only_go_to_frameworks_that_accept_them() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", [*resources("cpus:1;mem:1024"), _revocable_cpus(3)])
    allocator.add_framework("plain", ["*"], capabilities=[])
    (first,) = allocator.allocate(now=0)
    assert first.framework_id == "plain"
    assert offered(first) == parse_resources("cpus:1;mem:1024")
    allocator.add_framework("revocable", ["*"], capabilities=[REVOCABLE])
    (second,) = allocator.allocate(now=0)
    assert second.framework_id == "revocable"
    assert offered(second) == Resources([_revocable_cpus(3)])


def test_a_framework_with_more_capabilities_takes_what_another_could_not() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", [*resources("cpus:1;mem:1024"), _revocable_cpus(3)])
    allocator.add_framework("a-plain", ["*"], capabilities=[])
    allocator.add_framework("b-revocable", ["*"], capabilities=[REVOCABLE])
    allocations = allocator.allocate(now=0)
    assert summary(allocations) == {("a-plain", "agent", "*"), ("b-revocable", "agent", "*")}


def _refined_cpus() -> mesos_pb2.Resource:
    resource = parse_resources("cpus(a):2").to_list()[0]
    refinement = resource.reservations.add()
    refinement.type = mesos_pb2.Resource.ReservationInfo.DYNAMIC
    refinement.role = "a/b"
    return resource


def test_refined_reservations_need_reservation_refinement() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", [*resources("mem:1024"), _refined_cpus()])
    allocator.add_framework("old-style", ["a/b"], capabilities=[])
    (allocation,) = allocator.allocate(now=0)
    assert offered(allocation) == parse_resources("mem:1024")
    allocator.add_framework("refining", ["a/b"], capabilities=[REFINEMENT])
    (refined,) = allocator.allocate(now=0)
    assert refined.framework_id == "refining"
    assert offered(refined) == Resources([_refined_cpus()])


def _shared_volume() -> mesos_pb2.Resource:
    resource = parse_resources("disk:64").to_list()[0]
    reservation = resource.reservations.add()
    reservation.type = mesos_pb2.Resource.ReservationInfo.DYNAMIC
    reservation.role = "db"
    resource.disk.persistence.id = "volume-1"
    resource.disk.volume.container_path = "data"
    resource.disk.volume.mode = mesos_pb2.Volume.RW
    resource.shared.SetInParent()
    return resource


def test_shared_resources_need_shared_resources() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", [*resources("cpus:1;mem:1024"), _shared_volume()])
    allocator.add_framework("plain", ["db"], capabilities=[])
    (allocation,) = allocator.allocate(now=0)
    assert offered(allocation) == parse_resources("cpus:1;mem:1024")
    allocator.add_framework("sharing", ["db"], capabilities=[SHARED])
    allocator.recover("plain", "agent", allocation.resources, refuse_seconds=None, now=0)
    allocator.suppress("plain")
    (shared,) = allocator.allocate(now=0)
    assert offered(shared).shared() == Resources([_shared_volume()])
