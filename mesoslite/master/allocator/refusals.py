"""Refusal filters: what a framework declined on an agent is not re-offered for a while.

A filter holds the refused resources for one (framework, role, agent); a later chunk
is filtered when the refused resources contain it (Mesos' RefusedOfferFilter). Filters
expire at an absolute time; `expire(now)` drops the due ones and says which agents to
look at again.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from mesoslite.resources import Resources

__all__ = [
    "DEFAULT_REFUSE_SECONDS",
    "MAX_REFUSE_SECONDS",
    "RefusalFilters",
    "refusal_duration_seconds",
]

#: `Filters.refuse_seconds` default, also used for negative or invalid values.
DEFAULT_REFUSE_SECONDS: Final = 5.0
#: Longer filters are capped at one year, as Mesos does.
MAX_REFUSE_SECONDS: Final = 365 * 24 * 3600.0

_Target: TypeAlias = tuple[str, str, str]  # (framework_id, role, agent_id)


def refusal_duration_seconds(refuse_seconds: float | None) -> float | None:
    """How long a refusal filters, or None for no filter (None or 0 given)."""
    if refuse_seconds is None:
        return None
    if math.isnan(refuse_seconds) or refuse_seconds < 0:
        return DEFAULT_REFUSE_SECONDS
    if refuse_seconds == 0:
        return None
    return min(refuse_seconds, MAX_REFUSE_SECONDS)


@dataclass(eq=False, slots=True)
class _Refusal:
    target: _Target
    resources: Resources
    expires_at: float
    live: bool = field(default=True)


class RefusalFilters:
    """Live refusal filters, indexed by target, framework and agent, with an expiry heap."""

    def __init__(self) -> None:
        self._by_target: dict[_Target, list[_Refusal]] = {}
        self._targets_by_framework: dict[str, set[_Target]] = {}
        self._targets_by_agent: dict[str, set[_Target]] = {}
        # Removed filters stay in the heap, marked dead, until they reach its top.
        self._expiries: list[tuple[float, int, _Refusal]] = []
        self._sequence = 0

    def add(
        self, framework_id: str, role: str, agent_id: str, resources: Resources, expires_at: float
    ) -> None:
        target = (framework_id, role, agent_id)
        refusal = _Refusal(target, resources, expires_at)
        self._by_target.setdefault(target, []).append(refusal)
        self._targets_by_framework.setdefault(framework_id, set()).add(target)
        self._targets_by_agent.setdefault(agent_id, set()).add(target)
        self._sequence += 1
        heapq.heappush(self._expiries, (expires_at, self._sequence, refusal))

    def is_filtered(self, framework_id: str, role: str, agent_id: str, chunk: Resources) -> bool:
        refusals = self._by_target.get((framework_id, role, agent_id))
        if not refusals:
            return False
        if len(refusals) == 1:  # the common case, without a generator's overhead
            return refusals[0].resources.contains(chunk)
        return any(refusal.resources.contains(chunk) for refusal in refusals)

    def has_filters(self, framework_id: str, role: str, agent_id: str) -> bool:
        return bool(self._by_target.get((framework_id, role, agent_id)))

    def clear_framework(self, framework_id: str, roles: Collection[str] | None = None) -> None:
        """Drop the framework's filters (only those for `roles` when given)."""
        targets = self._targets_by_framework.get(framework_id, set())
        for target in [t for t in targets if roles is None or t[1] in roles]:
            self._drop_target(target)

    def clear_agent(self, agent_id: str) -> None:
        for target in list(self._targets_by_agent.get(agent_id, set())):
            self._drop_target(target)

    def expire(self, now: float) -> set[str]:
        """Drop the filters due by `now`; the agents they were on."""
        agents: set[str] = set()
        while self._expiries and self._expiries[0][0] <= now:
            _, _, refusal = heapq.heappop(self._expiries)
            if not refusal.live:
                continue
            refusal.live = False
            remaining = [r for r in self._by_target[refusal.target] if r is not refusal]
            if remaining:
                self._by_target[refusal.target] = remaining
            else:
                self._forget_target(refusal.target)
            agents.add(refusal.target[2])
        return agents

    def next_expiry(self) -> float | None:
        while self._expiries and not self._expiries[0][2].live:
            heapq.heappop(self._expiries)
        return self._expiries[0][0] if self._expiries else None

    def __len__(self) -> int:
        return sum(len(refusals) for refusals in self._by_target.values())

    def _drop_target(self, target: _Target) -> None:
        for refusal in self._by_target.get(target, []):
            refusal.live = False
        self._forget_target(target)

    def _forget_target(self, target: _Target) -> None:
        self._by_target.pop(target, None)
        framework_id, _, agent_id = target
        for index, key in (
            (self._targets_by_framework, framework_id),
            (self._targets_by_agent, agent_id),
        ):
            targets = index.get(key)
            if targets is not None:
                targets.discard(target)
                if not targets:
                    del index[key]
