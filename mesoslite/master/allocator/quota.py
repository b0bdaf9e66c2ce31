"""Quota: guarantees (resources a role is promised) and limits (a ceiling it never passes).

As in Mesos, what a role *consumes* against its quota is everything reserved for its
subtree (allocated or not) plus the unreserved, non-revocable resources allocated to
its subtree. Amounts are thousandths, like the rest of the allocator's bookkeeping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["ConsumptionLedger", "Quota", "QuotaBook"]


def _milli(value: float) -> int:
    return round(value * 1000)


def _ancestry(role: str) -> Iterable[str]:
    """The role and each of its ancestors: "a/b/c" -> "a/b/c", "a/b", "a"."""
    path = role
    while path:
        yield path
        path = path.rpartition("/")[0]


@dataclass(frozen=True, slots=True)
class Quota:
    """Per resource name (scalars only): `guarantees` <= `limits` where both are given."""

    guarantees: Mapping[str, float] = field(default_factory=dict)
    limits: Mapping[str, float] = field(default_factory=dict)

    def validate(self) -> str | None:
        for kind, quantities in (("guarantee", self.guarantees), ("limit", self.limits)):
            for name, amount in quantities.items():
                if math.isnan(amount) or amount < 0:
                    return f"quota {kind} for '{name}' must be a non-negative number"
                if kind == "guarantee" and math.isinf(amount):
                    return f"quota guarantee for '{name}' must be finite"
        for name, guarantee in self.guarantees.items():
            limit = self.limits.get(name)
            if limit is not None and guarantee > limit:
                return f"quota guarantee for '{name}' ({guarantee}) exceeds its limit ({limit})"
        return None


class ConsumptionLedger:
    """Quota consumption per role subtree, kept up to date incrementally."""

    def __init__(self) -> None:
        self._reserved: dict[str, dict[str, int]] = {}
        self._allocated: dict[str, dict[str, int]] = {}

    def add_reserved(self, role: str, quantities: Mapping[str, int], sign: int = 1) -> None:
        self._add(self._reserved, role, quantities, sign)

    def add_allocated(self, role: str, quantities: Mapping[str, int], sign: int = 1) -> None:
        self._add(self._allocated, role, quantities, sign)

    def clear(self) -> None:
        self._reserved.clear()
        self._allocated.clear()

    def consumed(self, role: str) -> dict[str, int]:
        total = dict(self._reserved.get(role, {}))
        for name, amount in self._allocated.get(role, {}).items():
            total[name] = total.get(name, 0) + amount
        return total

    @staticmethod
    def _add(
        book: dict[str, dict[str, int]], role: str, quantities: Mapping[str, int], sign: int
    ) -> None:
        for path in _ancestry(role):
            sums = book.setdefault(path, {})
            for name, amount in quantities.items():
                remaining = sums.get(name, 0) + sign * amount
                if remaining:
                    sums[name] = remaining
                else:
                    del sums[name]
            if not sums:
                del book[path]


class QuotaBook:
    """The configured quotas and what they imply for one allocation decision."""

    def __init__(self, ledger: ConsumptionLedger) -> None:
        self._ledger = ledger
        self._quotas: dict[str, Quota] = {}
        self._guarantees: dict[str, dict[str, int]] = {}
        self._limits: dict[str, dict[str, int]] = {}

    def assign(self, role: str, quota: Quota) -> None:
        self._quotas[role] = quota
        guarantees = {n: _milli(a) for n, a in quota.guarantees.items() if a > 0}
        limits = {n: _milli(a) for n, a in quota.limits.items() if not math.isinf(a)}
        self._set_or_drop(self._guarantees, role, guarantees)
        self._set_or_drop(self._limits, role, limits)

    def remove(self, role: str) -> None:
        self._quotas.pop(role, None)
        self._guarantees.pop(role, None)
        self._limits.pop(role, None)

    def get(self, role: str) -> Quota | None:
        return self._quotas.get(role)

    def by_role(self) -> dict[str, Quota]:
        return dict(self._quotas)

    def has_guarantees(self) -> bool:
        return bool(self._guarantees)

    def has_limits(self) -> bool:
        return bool(self._limits)

    def guaranteed_names(self, role: str) -> set[str]:
        """The resource names the role's own guarantee covers."""
        return set(self._guarantees.get(role, {}))

    def unmet_guarantee(self, role: str) -> dict[str, int]:
        """How much of each guaranteed resource the role still lacks (only positive ones)."""
        guarantees = self._guarantees.get(role)
        if not guarantees:
            return {}
        consumed = self._ledger.consumed(role)
        unmet = {name: amount - consumed.get(name, 0) for name, amount in guarantees.items()}
        return {name: amount for name, amount in unmet.items() if amount > 0}

    def limit_room(self, role: str) -> dict[str, int] | None:
        """Per limited resource, how much more the role may consume before it or one of its
        ancestors reaches its limit (never negative); None when no limit applies."""
        if not self._limits:
            return None
        room: dict[str, int] | None = None
        for path in _ancestry(role):
            limits = self._limits.get(path)
            if not limits:
                continue
            consumed = self._ledger.consumed(path)
            room = room if room is not None else {}
            for name, limit in limits.items():
                left = max(limit - consumed.get(name, 0), 0)
                room[name] = min(room.get(name, left), left)
        return room

    def required_headroom(self) -> dict[str, int]:
        """Unallocated unreserved resources to hold back so that every unmet guarantee can
        still be met. Guarantees nested under a guaranteed ancestor are inside the
        ancestor's and are not counted twice."""
        required: dict[str, int] = {}
        for role in self._guarantees:
            if any(path in self._guarantees for path in list(_ancestry(role))[1:]):
                continue
            for name, amount in self.unmet_guarantee(role).items():
                required[name] = required.get(name, 0) + amount
        return required

    @staticmethod
    def _set_or_drop(book: dict[str, dict[str, int]], role: str, values: dict[str, int]) -> None:
        if values:
            book[role] = values
        else:
            book.pop(role, None)
