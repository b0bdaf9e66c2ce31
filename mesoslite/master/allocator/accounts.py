"""Who holds what, mirrored wherever it matters.

Every change to an agent's allocations goes through `Accounts`, which keeps the agent's
own record, the DRF sorters (roles and frameworks within roles), the cluster totals and,
while any quota is set, quota consumption and headroom in step.
"""

from __future__ import annotations

from collections.abc import Mapping

from mesoslite.resources import Resources

from .agent_state import AgentState
from .quota import ConsumptionLedger, QuotaBook
from .sorter import ClusterTotals, FairShareSorter, RoleSorter

__all__ = ["Accounts", "milli_scalars"]


def milli_scalars(resources: Resources) -> dict[str, int]:
    """Scalar totals by name in thousandths, the unit of all the allocator's sums."""
    return {name: round(value * 1000) for name, value in resources.scalars().items()}


def _quota_subject(resources: Resources) -> dict[str, int]:
    # Quota counts unreserved, non-revocable resources (reservations count separately).
    return milli_scalars(resources.unreserved().non_revocable())


class Accounts:
    def __init__(self, agents: Mapping[str, AgentState]) -> None:
        self._agents = agents  # the allocator's registry, read here
        self.totals = ClusterTotals()
        self.roles = RoleSorter(self.totals)
        self.framework_sorters: dict[str, FairShareSorter] = {}
        self.agents_of_framework: dict[str, set[str]] = {}
        self.ledger = ConsumptionLedger()
        self.quotas = QuotaBook(self.ledger)
        # Unreserved, non-revocable, unallocated scalars over all agents: what quota
        # guarantees can still be met from.
        self.headroom_milli: dict[str, int] = {}
        # Consumption and headroom are kept only while some quota is set: without quota
        # they would cost every allocation a few resource filters for nothing.
        self._tracking_quota = False

    # ------------------------------------------------------------------ allocations

    def take(self, agent: AgentState, framework_id: str, role: str, chunk: Resources) -> None:
        headroom_before = self._headroom_of(agent)
        agent.take((framework_id, role), chunk)
        self._mirror(agent, framework_id, role, chunk, 1, headroom_before)
        self.agents_of_framework.setdefault(framework_id, set()).add(agent.agent_id)

    def give_back(
        self, agent: AgentState, framework_id: str, role: str, resources: Resources
    ) -> Resources:
        """Release what of `resources` the framework holds there; returns what was."""
        headroom_before = self._headroom_of(agent)
        released = agent.give_back((framework_id, role), resources)
        if released.is_empty():
            return released
        self._mirror(agent, framework_id, role, released, -1, headroom_before)
        if not agent.holders_of(framework_id):
            agents = self.agents_of_framework.get(framework_id)
            if agents is not None:
                agents.discard(agent.agent_id)
                if not agents:
                    del self.agents_of_framework[framework_id]
        return released

    def _mirror(
        self,
        agent: AgentState,
        framework_id: str,
        role: str,
        delta: Resources,
        sign: int,
        headroom_before: Mapping[str, int],
    ) -> None:
        quantities = milli_scalars(delta)
        self.roles.allocate(role, quantities, sign)
        sorter = self.framework_sorters.get(role)
        if sorter is None:
            sorter = self.framework_sorters[role] = FairShareSorter(self.totals)
        sorter.allocate(framework_id, quantities, sign)
        if sorter.is_unused():
            del self.framework_sorters[role]
        if self._tracking_quota:
            self.ledger.add_allocated(role, _quota_subject(delta), sign)
            self._add_headroom(headroom_before, -1)
            self._add_headroom(self._headroom_of(agent), 1)

    # ------------------------------------------------------------------ agents

    def add_agent(self, agent: AgentState) -> None:
        """Count a new agent's total (before anything is allocated on it)."""
        self._count_total(agent.total, 1)
        self._add_headroom(self._headroom_of(agent), 1)

    def replace_total(self, agent: AgentState, total: Resources) -> None:
        headroom_before = self._headroom_of(agent)
        self._count_total(agent.total, -1)
        agent.set_total(total)
        self._count_total(agent.total, 1)
        self._add_headroom(headroom_before, -1)
        self._add_headroom(self._headroom_of(agent), 1)

    def remove_agent(self, agent: AgentState) -> None:
        """Release everything allocated on the agent and stop counting it."""
        for (framework_id, role), held in list(agent.allocations.items()):
            self.give_back(agent, framework_id, role, held)
        self._add_headroom(self._headroom_of(agent), -1)
        self._count_total(agent.total, -1)

    def _count_total(self, total: Resources, sign: int) -> None:
        self.totals.add(milli_scalars(total), sign)
        if self._tracking_quota:
            self._count_reserved(total, sign)

    def _count_reserved(self, total: Resources, sign: int) -> None:
        for role, reserved in total.reservations_by_role().items():
            self.ledger.add_reserved(role, milli_scalars(reserved.non_revocable()), sign)

    # ------------------------------------------------------------------ sorter membership

    def join(self, framework_id: str, role: str) -> None:
        sorter = self.framework_sorters.get(role)
        if sorter is None:
            sorter = self.framework_sorters[role] = FairShareSorter(self.totals)
        sorter.add_client(framework_id)
        self.roles.activate(role)

    def leave(self, framework_id: str, role: str) -> None:
        sorter = self.framework_sorters.get(role)
        if sorter is None:
            return
        sorter.remove_client(framework_id)
        if not sorter.has_clients():
            self.roles.deactivate(role)
        if sorter.is_unused():
            del self.framework_sorters[role]

    # ------------------------------------------------------------------ quota

    def track_quota(self, tracking: bool) -> None:
        """Start (rebuilding from the agents) or stop keeping quota consumption."""
        if tracking == self._tracking_quota:
            return
        self._tracking_quota = tracking
        self.ledger.clear()
        self.headroom_milli = {}
        if not tracking:
            return
        for agent in self._agents.values():
            self._count_reserved(agent.total, 1)
            self._add_headroom(self._headroom_of(agent), 1)
            for (_, role), held in agent.allocations.items():
                self.ledger.add_allocated(role, _quota_subject(held))

    def _headroom_of(self, agent: AgentState) -> dict[str, int]:
        return _quota_subject(agent.free) if self._tracking_quota else {}

    def _add_headroom(self, quantities: Mapping[str, int], sign: int) -> None:
        for name, amount in quantities.items():
            remaining = self.headroom_milli.get(name, 0) + sign * amount
            if remaining:
                self.headroom_milli[name] = remaining
            else:
                del self.headroom_milli[name]
