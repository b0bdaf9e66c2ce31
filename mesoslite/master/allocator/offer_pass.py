"""One allocation pass over a set of agents (the algorithm; see `allocator.py`).

For each agent, in the order given:
  1. quota guarantees (only while some role has one): roles whose guarantee is unmet, in
     DRF order, get what they still lack of it, plus their reservations;
  2. fair share: roles in hierarchical weighted DRF order, and within a role frameworks
     in DRF order; the first framework that can use the agent's free resources gets all
     of them (what its capabilities allow), as in Mesos. Unreserved resources that other
     roles' unmet guarantees need are held back, and quota limits cap every role.
A chunk is offered only if it meets the minimum allocatable size and the framework has
not refused (a superset of) it on that agent recently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TypeAlias

from mesoslite.resources import Resources

from .accounts import Accounts
from .agent_state import AgentState
from .config import AllocatorConfig
from .framework_state import FrameworkState, ResourceCapabilities
from .min_allocatable import MinAllocatable, is_allocatable
from .refusals import RefusalFilters

__all__ = ["OfferPass", "Offers"]

_EMPTY: Final = Resources()

#: What a pass decided: (framework_id, agent_id, role) -> resources, in decision order.
Offers: TypeAlias = dict[tuple[str, str, str], Resources]


def _judge(
    capabilities: ResourceCapabilities, available: Resources, minimum: MinAllocatable
) -> Resources | None:
    """What a framework with these capabilities would be offered, if it is big enough."""
    chunk = capabilities.receivable(available)
    return chunk if is_allocatable(chunk, minimum) else None


class OfferPass:
    """Decides and books the offers of one `allocate` call."""

    def __init__(
        self,
        *,
        config: AllocatorConfig,
        frameworks: Mapping[str, FrameworkState],
        accounts: Accounts,
        refusals: RefusalFilters,
        quota_held: set[str],
    ) -> None:
        self._config = config
        self._frameworks = frameworks
        self._accounts = accounts
        self._refusals = refusals
        # Agents where quota shrank a chunk are added here (owned by the allocator).
        self._quota_held = quota_held

    def run(self, agents: Sequence[AgentState]) -> Offers:
        offers: Offers = {}
        if self._accounts.quotas.has_guarantees():
            for agent in agents:
                self._allocate_guarantees(agent, offers)
        for agent in agents:
            self._allocate_fair_shares(agent, offers)
        return offers

    def _allocate_guarantees(self, agent: AgentState, offers: Offers) -> None:
        for role in self._accounts.roles.sorted():
            if agent.free.is_empty():
                return
            unmet = self._accounts.quotas.unmet_guarantee(role)
            if not unmet:
                continue
            candidates = self._candidates(role)
            if not candidates:
                continue
            available = agent.free.allocatable_to(role).non_revocable()
            # Guaranteed resources up to what is still lacking; guaranteed names already
            # met get nothing here (stage 2 may still offer them).
            caps = {
                name: unmet.get(name, 0) for name in self._accounts.quotas.guaranteed_names(role)
            }
            chunk = self._cap_unreserved(agent, available, caps)
            chunk = self._shape_for_quota(agent, role, chunk, exempt=caps.keys())
            self._offer_to_first_taker(agent, role, candidates, chunk, offers)

    def _allocate_fair_shares(self, agent: AgentState, offers: Offers) -> None:
        for role in self._accounts.roles.sorted():
            if agent.free.is_empty():
                return
            candidates = self._candidates(role)
            if not candidates:
                continue
            chunk = self._shape_for_quota(agent, role, agent.free.allocatable_to(role))
            while not chunk.is_empty():
                taker = self._offer_to_first_taker(agent, role, candidates, chunk, offers)
                if taker is None:
                    break
                # What the taker's capabilities excluded may still suit the next framework.
                candidates = candidates[candidates.index(taker) + 1 :]
                chunk = self._shape_for_quota(agent, role, agent.free.allocatable_to(role))

    def _offer_to_first_taker(
        self,
        agent: AgentState,
        role: str,
        candidates: list[FrameworkState],
        available: Resources,
        offers: Offers,
    ) -> FrameworkState | None:
        if available.is_empty():
            return None
        gpu_only = self._config.filter_gpu_resources and agent.has_gpus
        default_minimum = self._config.min_allocatable
        is_filtered = self._refusals.is_filtered
        agent_id = agent.agent_id
        # Frameworks mostly share capabilities and minimums: judge each combination once
        # (None: nothing it may receive is big enough).
        judged: dict[ResourceCapabilities, Resources | None] = {}
        judged_with_own_minimum: dict[tuple[ResourceCapabilities, int], Resources | None] = {}
        for framework in candidates:
            if gpu_only and not framework.accepts_gpu_agents:
                continue
            capabilities = framework.resource_capabilities
            minimum = framework.min_allocatable_by_role.get(role, default_minimum)
            if minimum is default_minimum:
                if capabilities in judged:
                    chunk = judged[capabilities]
                else:
                    chunk = judged[capabilities] = _judge(capabilities, available, minimum)
            else:
                verdict_key = (capabilities, id(minimum))
                if verdict_key in judged_with_own_minimum:
                    chunk = judged_with_own_minimum[verdict_key]
                else:
                    chunk = _judge(capabilities, available, minimum)
                    judged_with_own_minimum[verdict_key] = chunk
            if chunk is None:
                continue
            framework_id = framework.framework_id
            if is_filtered(framework_id, role, agent_id, chunk):
                continue
            self._accounts.take(agent, framework_id, role, chunk)
            key = (framework_id, agent.agent_id, role)
            offers[key] = offers.get(key, _EMPTY) + chunk
            return framework
        return None

    def _candidates(self, role: str) -> list[FrameworkState]:
        sorter = self._accounts.framework_sorters.get(role)
        if sorter is None:
            return []
        frameworks = self._frameworks
        return [
            framework
            for framework_id in sorter.sorted()
            if (framework := frameworks[framework_id]).wants_offers_for(role)
        ]

    def _shape_for_quota(
        self, agent: AgentState, role: str, available: Resources, exempt: Iterable[str] = ()
    ) -> Resources:
        """Apply quota limits of the role (and its ancestors) and hold back the headroom
        other roles' unmet guarantees need; names in `exempt` are already capped."""
        caps: dict[str, int] = {}
        room = self._accounts.quotas.limit_room(role)
        if room:
            caps.update(room)
        if self._accounts.quotas.has_guarantees():
            required = self._accounts.quotas.required_headroom()
            for name, needed in required.items():
                surplus = max(self._accounts.headroom_milli.get(name, 0) - needed, 0)
                caps[name] = min(caps.get(name, surplus), surplus)
        for name in exempt:
            if room is not None and name in room:
                caps[name] = room[name]
            else:
                caps.pop(name, None)
        return self._cap_unreserved(agent, available, caps)

    def _cap_unreserved(
        self, agent: AgentState, available: Resources, caps: Mapping[str, int]
    ) -> Resources:
        # Quota governs unreserved non-revocable resources only: reservations already
        # count against their role's quota, revocable ones never do.
        if not caps:
            return available
        subject = available.unreserved().non_revocable()
        capped = subject.shrink_scalars({name: cap / 1000 for name, cap in caps.items()})
        if capped == subject:
            return available
        self._quota_held.add(agent.agent_id)
        return available - subject + capped
