"""Shorthands for allocator tests: resources from text, offers as comparable tuples."""

from __future__ import annotations

import random
from collections.abc import Iterable

from mesoslite.master.allocator import Allocation, Allocator, AllocatorConfig
from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources, parse_resources

__all__ = [
    "GPU",
    "MULTI_ROLE",
    "REFINEMENT",
    "REVOCABLE",
    "SHARED",
    "make_allocator",
    "offered",
    "resources",
    "summary",
]

_Capability = mesos_pb2.FrameworkInfo.Capability
GPU = _Capability.GPU_RESOURCES
REVOCABLE = _Capability.REVOCABLE_RESOURCES
SHARED = _Capability.SHARED_RESOURCES
REFINEMENT = _Capability.RESERVATION_REFINEMENT
MULTI_ROLE = _Capability.MULTI_ROLE


def resources(text: str) -> list[mesos_pb2.Resource]:
    return parse_resources(text).to_list()


def make_allocator(config: AllocatorConfig | None = None, seed: int = 7) -> Allocator:
    return Allocator(config, rng=random.Random(seed))


def offered(allocation: Allocation) -> Resources:
    """The allocation's resources without their allocation_info."""
    return Resources(allocation.resources).without_allocation()


def summary(allocations: Iterable[Allocation]) -> set[tuple[str, str, str]]:
    """(framework_id, agent_id, role) of each allocation."""
    return {(a.framework_id, a.agent_id, a.role) for a in allocations}
