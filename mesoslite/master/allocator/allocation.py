"""What one allocation pass decides."""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.proto import mesos_pb2

__all__ = ["Allocation", "PassStats"]


@dataclass(frozen=True, slots=True)
class Allocation:
    """Resources of one agent allocated to one framework for one role (one offer's worth).

    Every resource carries `allocation_info.role == role`. They stay allocated to the
    framework until the master hands them back with `Allocator.recover`.
    """

    framework_id: str
    agent_id: str
    role: str
    resources: list[mesos_pb2.Resource]


@dataclass(frozen=True, slots=True)
class PassStats:
    """How much work the latest `allocate()` did (for tests and benchmarks)."""

    agents_examined: int
    allocations: int
