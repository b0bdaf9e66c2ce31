"""One agent as the allocator sees it: total, what is allocated to whom, what is free."""

from __future__ import annotations

from collections.abc import Iterable

from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources

__all__ = ["AgentState"]

_Holder = tuple[str, str]  # (framework_id, role)
_EMPTY = Resources()


class AgentState:
    """Allocations are kept without `allocation_info` (the holder key says the role)."""

    __slots__ = (
        "active",
        "agent_id",
        "allocated",
        "allocations",
        "attributes",
        "free",
        "gpus_declared",
        "has_gpus",
        "hostname",
        "offerable",
        "paused",
        "total",
    )

    def __init__(
        self,
        agent_id: str,
        total: Resources,
        *,
        hostname: str,
        attributes: Iterable[mesos_pb2.Attribute],
        has_gpus: bool,
    ) -> None:
        self.agent_id = agent_id
        self.hostname = hostname
        self.attributes = tuple(attributes)
        self.active = True
        # Launch flow control (the master's): no offers while it catches up.
        self.paused = False
        self.gpus_declared = has_gpus
        self.has_gpus = has_gpus
        self.allocations: dict[_Holder, Resources] = {}
        self.allocated = _EMPTY
        self.total = _EMPTY
        self.free = _EMPTY
        self.offerable = False
        self.set_total(total)

    def set_total(self, total: Resources) -> None:
        self.total = total
        # Mesos never offers an agent that has neither cpus nor mem.
        self.offerable = total.scalar("cpus") > 0 or total.scalar("mem") > 0
        self.has_gpus = self.gpus_declared or total.scalar("gpus") > 0
        self.free = total - self.allocated

    def take(self, holder: _Holder, resources: Resources) -> None:
        self.allocations[holder] = self.allocations.get(holder, _EMPTY) + resources
        self.allocated = self.allocated + resources
        self.free = self.total - self.allocated

    def give_back(self, holder: _Holder, resources: Resources) -> Resources:
        """Release what of `resources` the holder has here; returns what was released."""
        held = self.allocations.get(holder)
        if held is None:
            return _EMPTY
        remaining = held - resources
        released = held - remaining
        if released.is_empty():
            return _EMPTY
        if remaining.is_empty():
            del self.allocations[holder]
        else:
            self.allocations[holder] = remaining
        self.allocated = self.allocated - released
        self.free = self.total - self.allocated
        return released

    def holders_of(self, framework_id: str) -> list[_Holder]:
        return [holder for holder in self.allocations if holder[0] == framework_id]
