"""Membership changes, one server at a time.

A change takes effect on each node when the node applies its committed CONF_CHANGE entry.
Changing at most one voter per step keeps every majority of the old voter set overlapping
every majority of the new one, which is what makes single-step changes safe; the leader
additionally allows only one change in flight, and none before it has applied everything
up to its own election (so an entry of its own term is committed first).
"""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.raft.errors import ConfChangeError
from mesoslite.raft.messages import ConfChange, ConfChangeType, ConfState

__all__ = ["Membership", "apply_conf_change"]


@dataclass(slots=True, frozen=True)
class Membership:
    voters: frozenset[int]
    learners: frozenset[int]

    @classmethod
    def from_conf_state(cls, conf_state: ConfState) -> Membership:
        voters = frozenset(conf_state.voters)
        learners = frozenset(conf_state.learners)
        if voters & learners:
            raise ConfChangeError(f"nodes {sorted(voters & learners)} are voters and learners")
        return cls(voters, learners)

    def to_conf_state(self) -> ConfState:
        return ConfState(tuple(sorted(self.voters)), tuple(sorted(self.learners)))

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.voters or node_id in self.learners


def apply_conf_change(membership: Membership, change: ConfChange) -> Membership:
    """The membership after `change`. Repeating a change already in effect is a no-op.

    :raises ConfChangeError: the change is malformed or would leave no voter.
    """
    node_id = change.node_id
    if node_id <= 0:
        raise ConfChangeError(f"invalid node id {node_id}")
    voters, learners = membership.voters, membership.learners
    if change.type is ConfChangeType.ADD_VOTER:
        return Membership(voters | {node_id}, learners - {node_id})
    if change.type is ConfChangeType.ADD_LEARNER:
        if voters == {node_id}:
            raise ConfChangeError("demoting the last voter would leave no voter")
        return Membership(voters - {node_id}, learners | {node_id})
    if change.type is ConfChangeType.REMOVE_NODE:
        if voters == {node_id}:
            raise ConfChangeError("removing the last voter would leave no voter")
        return Membership(voters - {node_id}, learners - {node_id})
    raise ConfChangeError(f"unknown change type {change.type!r}")
