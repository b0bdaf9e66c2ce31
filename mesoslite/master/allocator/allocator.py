"""The hierarchical DRF allocator: the master tells it what happens, it decides offers.

Pure and incremental. Time arrives as `now` arguments and randomness (the agent order
Mesos shuffles) as an injected `random.Random`. The allocator remembers which agents
could have something new to offer ("dirty" agents: their free resources grew, a filter
on them expired, or some framework became able to take what they have); `allocate`
examines only those, so a pass with nothing dirty costs nothing.

Each pass takes the dirty agents in shuffled order and hands them to `OfferPass`
(`offer_pass.py`): quota guarantees first, then hierarchical weighted DRF.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Iterable, Mapping
from typing import Final

from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources, validate_role

from .accounts import Accounts
from .agent_state import AgentState
from .allocation import Allocation, PassStats
from .config import AllocatorConfig
from .framework_state import FrameworkState
from .min_allocatable import (
    OfferFilterInput,
    min_allocatable_by_role,
)
from .offer_pass import OfferPass
from .quota import Quota
from .refusals import RefusalFilters, refusal_duration_seconds

__all__ = ["Allocator", "AllocatorError"]

_EMPTY: Final = Resources()


class AllocatorError(ValueError):
    """The master asked for something inconsistent (unknown id, duplicate, bad role)."""


class Allocator:
    """Hierarchical DRF over roles and frameworks, with filters, quota and weights."""

    def __init__(
        self, config: AllocatorConfig | None = None, *, rng: random.Random | None = None
    ) -> None:
        self._config = config or AllocatorConfig()
        # Only shuffles the agent order, so a fixed default seed keeps runs reproducible.
        self._rng = rng if rng is not None else random.Random(0)
        self._frameworks: dict[str, FrameworkState] = {}
        self._agents: dict[str, AgentState] = {}
        self._accounts = Accounts(self._agents)
        self._roles = self._accounts.roles
        self._quotas = self._accounts.quotas
        self._refusals = RefusalFilters()
        self._dirty: set[str] = set()
        # Agents where quota shrank a chunk last time: look again when quota loosens.
        self._quota_held: set[str] = set()
        self._last_pass = PassStats(agents_examined=0, allocations=0)

    # ================================================================== frameworks

    def add_framework(
        self,
        framework_id: str,
        roles: Collection[str],
        *,
        capabilities: Collection[int],
        suppressed_roles: Collection[str] = (),
        active: bool = True,
        offer_filters: OfferFilterInput | None = None,
    ) -> None:
        if framework_id in self._frameworks:
            raise AllocatorError(f"framework {framework_id} is already known")
        self._check_roles(roles)
        framework = FrameworkState(
            framework_id,
            roles,
            capabilities,
            suppressed_roles=suppressed_roles,
            active=active,
            min_allocatable_by_role=min_allocatable_by_role(offer_filters),
        )
        self._frameworks[framework_id] = framework
        for role in framework.roles:
            self._accounts.join(framework_id, role)
        if active:
            self._dirty_agents_with_free()

    def update_framework(
        self,
        framework_id: str,
        roles: Collection[str],
        capabilities: Collection[int],
        suppressed_roles: Collection[str] = (),
        *,
        offer_filters: OfferFilterInput | None = None,
    ) -> None:
        """Replace roles, capabilities, suppressed roles and offer filters (UPDATE_FRAMEWORK
        or re-subscription). Filters of dropped roles and of roles leaving the suppressed
        set are cleared."""
        framework = self._framework(framework_id)
        self._check_roles(roles)
        new_roles = frozenset(roles)
        dropped = framework.roles - new_roles
        unsuppressed = framework.suppressed_roles - set(suppressed_roles)
        for role in dropped:
            self._accounts.leave(framework_id, role)
        for role in new_roles - framework.roles:
            self._accounts.join(framework_id, role)
        framework.roles = new_roles
        framework.suppressed_roles = set(suppressed_roles) & new_roles
        framework.set_capabilities(capabilities)
        framework.min_allocatable_by_role = min_allocatable_by_role(offer_filters)
        self._refusals.clear_framework(framework_id, dropped | unsuppressed)
        self._dirty_agents_with_free()

    def activate_framework(self, framework_id: str) -> None:
        self._framework(framework_id).active = True
        self._dirty_agents_with_free()

    def deactivate_framework(self, framework_id: str) -> None:
        """No more offers until activated; its refusal filters are cleared (Mesos does so on
        disconnection). What it holds stays allocated until recovered."""
        self._framework(framework_id).active = False
        self._refusals.clear_framework(framework_id)

    def remove_framework(self, framework_id: str) -> None:
        """Forget the framework and free everything allocated to it (offers and tasks)."""
        framework = self._frameworks.pop(framework_id, None)
        if framework is None:
            return
        for agent_id in sorted(self._accounts.agents_of_framework.get(framework_id, set())):
            agent = self._agents[agent_id]
            for holder in agent.holders_of(framework_id):
                self._give_back(agent, framework_id, holder[1], agent.allocations[holder])
            self._mark_dirty(agent_id)
        for role in framework.roles:
            self._accounts.leave(framework_id, role)
        self._refusals.clear_framework(framework_id)

    def suppress(self, framework_id: str, roles: Collection[str] = ()) -> None:
        """Stop offers for `roles` (all the framework's roles when empty)."""
        framework = self._framework(framework_id)
        framework.suppressed_roles |= self._roles_or_all(framework, roles)

    def revive(self, framework_id: str, roles: Collection[str] = ()) -> None:
        """Resume offers for `roles` (all when empty) and clear their refusal filters."""
        framework = self._framework(framework_id)
        revived = self._roles_or_all(framework, roles)
        framework.suppressed_roles -= revived
        self._refusals.clear_framework(framework_id, revived)
        self._dirty_agents_with_free()

    # ================================================================== agents

    def add_agent(
        self,
        agent_id: str,
        total: Iterable[mesos_pb2.Resource],
        *,
        used: Mapping[tuple[str, str], Iterable[mesos_pb2.Resource]] | None = None,
        attributes: Iterable[mesos_pb2.Attribute] = (),
        hostname: str = "",
        gpus: bool = False,
    ) -> None:
        """Add an agent; `used` maps (framework_id, role) to what it already runs there."""
        if agent_id in self._agents:
            raise AllocatorError(f"agent {agent_id} is already known")
        agent = AgentState(
            agent_id,
            Resources(total).without_allocation(),
            hostname=hostname,
            attributes=attributes,
            has_gpus=gpus,
        )
        self._agents[agent_id] = agent
        self._accounts.add_agent(agent)
        for (framework_id, role), resources in (used or {}).items():
            self._accounts.take(
                agent, framework_id, role, Resources(resources).without_allocation()
            )
        self._mark_dirty(agent_id)
        self._quota_loosened()

    def update_agent(self, agent_id: str, total: Iterable[mesos_pb2.Resource]) -> None:
        """Replace the agent's total (allocations are kept; free is what remains)."""
        agent = self._agent(agent_id)
        self._accounts.replace_total(agent, Resources(total).without_allocation())
        self._mark_dirty(agent_id)
        self._quota_loosened()

    def remove_agent(self, agent_id: str) -> None:
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        self._accounts.remove_agent(agent)
        del self._agents[agent_id]
        self._quota_loosened()
        self._refusals.clear_agent(agent_id)
        self._dirty.discard(agent_id)
        self._quota_held.discard(agent_id)

    def activate_agent(self, agent_id: str) -> None:
        self._agent(agent_id).active = True
        self._mark_dirty(agent_id)

    def deactivate_agent(self, agent_id: str) -> None:
        """No offers from this agent until activated (e.g. while it is unreachable)."""
        self._agent(agent_id).active = False

    def pause_agent(self, agent_id: str) -> None:
        """No offers from this agent until resumed (flow control: it has launches to
        catch up with). Independent of activation."""
        self._agent(agent_id).paused = True

    def resume_agent(self, agent_id: str) -> None:
        agent = self._agents.get(agent_id)
        if agent is not None and agent.paused:
            agent.paused = False
            self._mark_dirty(agent_id)

    # ================================================================== resources

    def recover(
        self,
        framework_id: str,
        agent_id: str,
        resources: Iterable[mesos_pb2.Resource],
        *,
        refuse_seconds: float | None,
        now: float,
    ) -> None:
        """Resources come back: an offer declined or rescinded, the unused part of an
        accepted offer, a finished task. With `refuse_seconds` (Filters.refuse_seconds,
        normalized as Mesos does) the framework is not offered them again for that role
        on that agent until the filter expires. Unknown agents and resources not
        allocated to the framework are ignored."""
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        duration_s = refusal_duration_seconds(refuse_seconds)
        freed_any = False
        for role, part in self._split_by_role(framework_id, agent, Resources(resources)):
            released = self._give_back(agent, framework_id, role, part)
            if released.is_empty():
                continue
            freed_any = True
            if duration_s is not None and framework_id in self._frameworks:
                self._refusals.add(framework_id, role, agent_id, released, now + duration_s)
        if freed_any:
            self._mark_dirty(agent_id)

    def used(
        self, framework_id: str, agent_id: str, resources: Iterable[mesos_pb2.Resource]
    ) -> None:
        """Make sure `resources` are accounted to the framework on the agent.

        What is already allocated to it there (an outstanding offer a launch draws from)
        is left as it is; anything beyond that (tasks reported by a re-registering agent
        or framework) is taken from the agent's free resources."""
        agent = self._agent(agent_id)
        for role, part in self._split_by_role(framework_id, agent, Resources(resources)):
            missing = part - agent.allocations.get((framework_id, role), _EMPTY)
            if not missing.is_empty():
                self._accounts.take(agent, framework_id, role, missing)

    # ================================================================== policy

    def update_weights(self, weights: Mapping[str, float]) -> None:
        """Set the weight of each given role (others keep theirs; the default is 1.0)."""
        for role, weight in weights.items():
            self._check_roles([role])
            if not math.isfinite(weight) or weight <= 0:
                raise AllocatorError(f"weight of role '{role}' must be a positive number")
        for role, weight in weights.items():
            self._roles.set_weight(role, weight)

    def set_quota(
        self,
        role: str,
        *,
        guarantees: Mapping[str, float] | None = None,
        limits: Mapping[str, float] | None = None,
    ) -> None:
        self._check_roles([role])
        quota = Quota(dict(guarantees or {}), dict(limits or {}))
        error = quota.validate()
        if error is not None:
            raise AllocatorError(error)
        self._accounts.track_quota(True)
        self._quotas.assign(role, quota)
        self._dirty_agents_with_free()

    def remove_quota(self, role: str) -> None:
        self._quotas.remove(role)
        self._accounts.track_quota(bool(self._quotas.by_role()))
        self._dirty_agents_with_free()

    # ================================================================== allocation

    def allocate(self, now: float) -> list[Allocation]:
        """Decide offers for the dirty agents; the resources offered become allocated."""
        self._dirty |= self._refusals.expire(now)
        if not self._dirty:
            self._last_pass = PassStats(agents_examined=0, allocations=0)
            return []
        order = sorted(self._dirty)
        self._dirty.clear()
        self._rng.shuffle(order)
        agents = [
            agent
            for agent_id in order
            if (agent := self._agents.get(agent_id)) is not None
            and agent.active
            and not agent.paused
            and agent.offerable
        ]
        offers = OfferPass(
            config=self._config,
            frameworks=self._frameworks,
            accounts=self._accounts,
            refusals=self._refusals,
            quota_held=self._quota_held,
        ).run(agents)
        self._last_pass = PassStats(agents_examined=len(agents), allocations=len(offers))
        return [
            Allocation(framework_id, agent_id, role, chunk.with_allocation_role(role).to_list())
            for (framework_id, agent_id, role), chunk in offers.items()
        ]

    def examine_all_agents(self) -> None:
        """Make the next pass look at every agent that has free resources (a full pass,
        as Mesos makes on every allocation interval). Never needed for correctness."""
        self._dirty_agents_with_free()

    def next_wakeup(self, now: float) -> float | None:
        """When `allocate` next has something to do: `now` if agents are dirty, else the
        earliest refusal filter expiry, else None."""
        if self._dirty:
            return now
        return self._refusals.next_expiry()

    # ================================================================== introspection

    @property
    def last_pass(self) -> PassStats:
        return self._last_pass

    def free(self, agent_id: str) -> Resources:
        return self._agent(agent_id).free

    def total(self, agent_id: str) -> Resources:
        return self._agent(agent_id).total

    def allocated(self, agent_id: str) -> dict[tuple[str, str], Resources]:
        """What each (framework_id, role) holds on the agent (without allocation_info)."""
        return dict(self._agent(agent_id).allocations)

    def role_share(self, role: str) -> float:
        """Weighted dominant share of the role's subtree."""
        return self._roles.share(role)

    def framework_share(self, framework_id: str, role: str) -> float:
        sorter = self._accounts.framework_sorters.get(role)
        return 0.0 if sorter is None else sorter.share(framework_id)

    def weights(self) -> dict[str, float]:
        """Roles whose weight is not the default 1.0."""
        return self._roles.weights()

    def quotas(self) -> dict[str, Quota]:
        return self._quotas.by_role()

    # ================================================================== bookkeeping

    def _give_back(
        self, agent: AgentState, framework_id: str, role: str, resources: Resources
    ) -> Resources:
        released = self._accounts.give_back(agent, framework_id, role, resources)
        if not released.is_empty():
            self._quota_loosened()
        return released

    def _quota_loosened(self) -> None:
        if self._quota_held:
            self._dirty |= self._quota_held
            self._quota_held = set()

    def _mark_dirty(self, agent_id: str) -> None:
        self._dirty.add(agent_id)

    def _dirty_agents_with_free(self) -> None:
        for agent_id, agent in self._agents.items():
            if agent.active and not agent.paused and agent.offerable and not agent.free.is_empty():
                self._dirty.add(agent_id)

    def _split_by_role(
        self, framework_id: str, agent: AgentState, resources: Resources
    ) -> list[tuple[str, Resources]]:
        parts = [
            (role, part.without_allocation()) for role, part in resources.allocations().items()
        ]
        bare = resources.unallocated()
        if not bare.is_empty():
            parts.append((self._infer_role(framework_id, agent, bare), bare))
        return parts

    def _infer_role(self, framework_id: str, agent: AgentState, resources: Resources) -> str:
        # Resources without allocation_info: the role is unambiguous for a framework with
        # one role, or when exactly one of its allocations on the agent holds them.
        framework = self._frameworks.get(framework_id)
        if framework is not None and len(framework.roles) == 1:
            return next(iter(framework.roles))
        holding = sorted(
            role
            for (holder, role), held in agent.allocations.items()
            if holder == framework_id and held.contains(resources)
        )
        if len(holding) == 1:
            return holding[0]
        raise AllocatorError(
            f"resources for framework {framework_id} on agent {agent.agent_id} carry no "
            "allocation_info.role and the role cannot be inferred"
        )

    def _roles_or_all(self, framework: FrameworkState, roles: Collection[str]) -> set[str]:
        return set(framework.roles) if not roles else set(roles) & framework.roles

    def _check_roles(self, roles: Iterable[str]) -> None:
        for role in roles:
            error = validate_role(role)
            if error is not None:
                raise AllocatorError(error)

    def _framework(self, framework_id: str) -> FrameworkState:
        framework = self._frameworks.get(framework_id)
        if framework is None:
            raise AllocatorError(f"unknown framework {framework_id}")
        return framework

    def _agent(self, agent_id: str) -> AgentState:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise AllocatorError(f"unknown agent {agent_id}")
        return agent
