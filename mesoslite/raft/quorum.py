"""Majority arithmetic: which index a majority holds, and how an election stands.

Pure functions of a voter set; no progress, no terms. Membership changes go one voter at a
time (see `confchange`), so any two successive voter sets share a majority and a single
majority configuration is all the core needs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

__all__ = ["MajorityConfig", "VoteResult"]


class VoteResult(enum.Enum):
    PENDING = "pending"  # neither side can be sure yet
    LOST = "lost"
    WON = "won"


class MajorityConfig:
    """A set of voters whose decisions need more than half of them."""

    __slots__ = ("_sorted_ids", "ids")

    def __init__(self, voter_ids: Iterable[int] = ()) -> None:
        self.ids = frozenset(voter_ids)
        self._sorted_ids = tuple(sorted(self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.ids

    def __repr__(self) -> str:
        return f"MajorityConfig({list(self._sorted_ids)})"

    def sorted_ids(self) -> tuple[int, ...]:
        return self._sorted_ids

    def quorum_size(self) -> int:
        return len(self.ids) // 2 + 1

    def committed_index(self, acked_index_of: Mapping[int, int]) -> int:
        """The largest index that a majority has acknowledged (absent voters count 0).
        An empty configuration commits nothing."""
        if not self.ids:
            return 0
        acked = sorted((acked_index_of.get(node_id, 0) for node_id in self.ids), reverse=True)
        # The quorum_size-th largest value is held by at least quorum_size voters.
        return acked[self.quorum_size() - 1]

    def vote_result(self, votes: Mapping[int, bool]) -> VoteResult:
        """Tally votes cast by voters (other keys are ignored). An empty configuration wins
        every vote, which keeps a node with no voters from blocking on itself."""
        if not self.ids:
            return VoteResult.WON
        granted = rejected = 0
        for node_id in self.ids:
            vote = votes.get(node_id)
            if vote is True:
                granted += 1
            elif vote is False:
                rejected += 1
        quorum = self.quorum_size()
        if granted >= quorum:
            return VoteResult.WON
        if len(self.ids) - rejected >= quorum:
            return VoteResult.PENDING
        return VoteResult.LOST
