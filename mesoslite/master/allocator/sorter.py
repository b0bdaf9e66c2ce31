"""Dominant Resource Fairness orderings: roles (hierarchical, weighted) and frameworks.

A client's dominant share is the largest fraction it holds of any scalar resource of
the cluster. Roles form a tree by their '/'-separated names; siblings are ordered by the
dominant share of their whole subtree divided by their weight, and a role that has
frameworks of its own competes with its children through its own allocation (Mesos'
"virtual leaf"). Ties go to the smaller name so that orderings are reproducible.

Quantities are thousandths (Mesos' fixed point), so equal allocations compare equal.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["ClusterTotals", "FairShareSorter", "RoleSorter", "dominant_share"]


class ClusterTotals:
    """Scalar totals of the whole cluster in thousandths, shared by every sorter."""

    def __init__(self) -> None:
        self.milli: dict[str, int] = {}
        # Bumped on every change so that sorters know their cached shares are stale.
        self.version = 0

    def add(self, quantities: Mapping[str, int], sign: int = 1) -> None:
        for name, amount in quantities.items():
            remaining = self.milli.get(name, 0) + sign * amount
            if remaining > 0:
                self.milli[name] = remaining
            else:
                self.milli.pop(name, None)
        self.version += 1


def dominant_share(allocated: Mapping[str, int], totals: Mapping[str, int]) -> float:
    share = 0.0
    for name, amount in allocated.items():
        total = totals.get(name)
        if total:
            share = max(share, amount / total)
    return share


def _accumulate(target: dict[str, int], quantities: Mapping[str, int], sign: int) -> None:
    for name, amount in quantities.items():
        remaining = target.get(name, 0) + sign * amount
        if remaining:
            target[name] = remaining
        else:
            del target[name]


class FairShareSorter:
    """Frameworks within one role, in DRF order. Allocations of frameworks that are not
    (or no longer) clients are still tracked: they count again if the framework returns."""

    def __init__(self, totals: ClusterTotals) -> None:
        self._totals = totals
        self._clients: set[str] = set()
        self._allocated: dict[str, dict[str, int]] = {}
        self._shares: dict[str, float] = {}
        self._shares_version = -1
        self._order: list[str] | None = None

    def add_client(self, client: str) -> None:
        if client not in self._clients:
            self._clients.add(client)
            self._order = None

    def remove_client(self, client: str) -> None:
        if client in self._clients:
            self._clients.discard(client)
            self._order = None

    def has_clients(self) -> bool:
        return bool(self._clients)

    def is_unused(self) -> bool:
        return not self._clients and not self._allocated

    def allocate(self, client: str, quantities: Mapping[str, int], sign: int = 1) -> None:
        if not quantities:
            return
        allocated = self._allocated.setdefault(client, {})
        _accumulate(allocated, quantities, sign)
        if not allocated:
            del self._allocated[client]
        self._shares.pop(client, None)
        if client not in self._clients or self._order is None:
            return
        if self._shares_version != self._totals.version:
            self._order = None
            return
        # Only this client moved: re-place it rather than sorting everyone again. A new
        # list, so that callers iterating the previous one are not disturbed.
        order = [other for other in self._order if other != client]
        bisect.insort(order, client, key=self._sort_key)
        self._order = order

    def allocated(self, client: str) -> dict[str, int]:
        return dict(self._allocated.get(client, {}))

    def share(self, client: str) -> float:
        if self._shares_version != self._totals.version:
            self._shares.clear()
            self._shares_version = self._totals.version
            self._order = None
        share = self._shares.get(client)
        if share is None:
            share = dominant_share(self._allocated.get(client, {}), self._totals.milli)
            self._shares[client] = share
        return share

    def sorted(self) -> list[str]:
        if self._shares_version != self._totals.version:
            self._order = None
        if self._order is None:
            self._order = sorted(self._clients, key=self._sort_key)
        return self._order

    def _sort_key(self, client: str) -> tuple[float, str]:
        return (self.share(client), client)


@dataclass(eq=False, slots=True)
class _RoleNode:
    path: str
    parent: _RoleNode | None
    children: dict[str, _RoleNode] = field(default_factory=dict)
    own: dict[str, int] = field(default_factory=dict)
    subtree: dict[str, int] = field(default_factory=dict)
    active: bool = False
    active_in_subtree: int = 0


_Visit = Callable[[_RoleNode], None]


class RoleSorter:
    """Roles that have frameworks, in hierarchical weighted DRF order."""

    def __init__(self, totals: ClusterTotals) -> None:
        self._totals = totals
        self._root = _RoleNode("", None)
        self._nodes: dict[str, _RoleNode] = {"": self._root}
        self._weights: dict[str, float] = {}
        self._order: list[str] | None = None
        self._order_version = -1

    # ------------------------------------------------------------------ changes

    def activate(self, role: str) -> None:
        node = self._node(role)
        if node.active:
            return
        node.active = True
        self._walk_up(node, lambda ancestor: _bump_active(ancestor, 1))
        self._order = None

    def deactivate(self, role: str) -> None:
        node = self._nodes.get(role)
        if node is None or not node.active:
            return
        node.active = False
        self._walk_up(node, lambda ancestor: _bump_active(ancestor, -1))
        self._prune(node)
        self._order = None

    def allocate(self, role: str, quantities: Mapping[str, int], sign: int = 1) -> None:
        if not quantities:
            return
        node = self._node(role)
        _accumulate(node.own, quantities, sign)
        self._walk_up(node, lambda ancestor: _accumulate(ancestor.subtree, quantities, sign))
        self._prune(node)
        self._order = None

    def set_weight(self, role: str, weight: float) -> None:
        if weight == 1.0:
            self._weights.pop(role, None)
        else:
            self._weights[role] = weight
        self._order = None

    # ------------------------------------------------------------------ queries

    def weight(self, role: str) -> float:
        return self._weights.get(role, 1.0)

    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def allocated(self, role: str, *, subtree: bool = False) -> dict[str, int]:
        node = self._nodes.get(role)
        if node is None:
            return {}
        return dict(node.subtree if subtree else node.own)

    def share(self, role: str) -> float:
        """The role's weighted dominant share, counting its whole subtree."""
        node = self._nodes.get(role)
        if node is None:
            return 0.0
        return dominant_share(node.subtree, self._totals.milli) / self.weight(role)

    def sorted(self) -> list[str]:
        if self._order is None or self._order_version != self._totals.version:
            order: list[str] = []
            self._visit(self._root, order)
            self._order = order
            self._order_version = self._totals.version
        return self._order

    # ------------------------------------------------------------------ internals

    def _visit(self, node: _RoleNode, order: list[str]) -> None:
        totals = self._totals.milli
        entries: list[tuple[float, str, _RoleNode | None]] = []
        if node.active:
            own_share = dominant_share(node.own, totals) / self.weight(node.path)
            entries.append((own_share, node.path, None))
        for child in node.children.values():
            if child.active_in_subtree:
                child_share = dominant_share(child.subtree, totals) / self.weight(child.path)
                entries.append((child_share, child.path, child))
        entries.sort(key=lambda entry: (entry[0], entry[1]))
        for _, path, subtree in entries:
            if subtree is None:
                order.append(path)
            else:
                self._visit(subtree, order)

    def _node(self, role: str) -> _RoleNode:
        node = self._nodes.get(role)
        if node is not None:
            return node
        parent_path, _, _ = role.rpartition("/")
        parent = self._node(parent_path) if parent_path else self._root
        node = _RoleNode(role, parent)
        parent.children[role] = node
        self._nodes[role] = node
        return node

    @staticmethod
    def _walk_up(node: _RoleNode, visit: _Visit) -> None:
        current: _RoleNode | None = node
        while current is not None and current.path:
            visit(current)
            current = current.parent

    def _prune(self, node: _RoleNode) -> None:
        # Roles come and go with frameworks; drop nodes that no longer hold anything.
        current: _RoleNode | None = node
        while (
            current is not None
            and current.path
            and not current.active
            and not current.active_in_subtree
            and not current.subtree
            and not current.children
        ):
            parent = current.parent
            assert parent is not None
            del parent.children[current.path]
            del self._nodes[current.path]
            current = parent


def _bump_active(node: _RoleNode, delta: int) -> None:
    node.active_in_subtree += delta
