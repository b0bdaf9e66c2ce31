"""`ProgressTracker`: the membership, a `Progress` per member, and the votes of an election."""

from __future__ import annotations

from mesoslite.raft.confchange import Membership
from mesoslite.raft.messages import ConfState
from mesoslite.raft.progress import Inflights, Progress
from mesoslite.raft.quorum import MajorityConfig, VoteResult

__all__ = ["ProgressTracker"]


class ProgressTracker:
    __slots__ = (
        "learners",
        "max_inflight_bytes",
        "max_inflight_msgs",
        "progress",
        "voters",
        "votes",
    )

    def __init__(self, max_inflight_msgs: int, max_inflight_bytes: int = 0) -> None:
        self.voters = MajorityConfig()
        self.learners: frozenset[int] = frozenset()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.max_inflight_msgs = max_inflight_msgs
        self.max_inflight_bytes = max_inflight_bytes

    def membership(self) -> Membership:
        return Membership(self.voters.ids, self.learners)

    def conf_state(self) -> ConfState:
        return self.membership().to_conf_state()

    def is_single_voter(self, node_id: int) -> bool:
        voter_ids = self.voters.ids
        return len(voter_ids) == 1 and node_id in voter_ids

    def set_membership(self, membership: Membership, next_index: int) -> None:
        """Switch to `membership`: new members start probing at `next_index`, departed
        members are forgotten, and members keep what we know about them."""
        self.voters = MajorityConfig(membership.voters)
        self.learners = membership.learners
        members = membership.voters | membership.learners
        for node_id in [node_id for node_id in self.progress if node_id not in members]:
            del self.progress[node_id]
        for node_id in sorted(members):
            progress = self.progress.get(node_id)
            if progress is None:
                progress = Progress(
                    next_index, Inflights(self.max_inflight_msgs, self.max_inflight_bytes)
                )
                self.progress[node_id] = progress
            progress.is_learner = node_id in membership.learners

    def committed_index(self) -> int:
        progress = self.progress
        return self.voters.committed_index(
            {node_id: progress[node_id].match for node_id in self.voters.ids}
        )

    # -- elections -------------------------------------------------------------------------

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, node_id: int, granted: bool) -> None:
        # The first answer from a node counts; a duplicate cannot change it.
        self.votes.setdefault(node_id, granted)

    def vote_result(self) -> VoteResult:
        return self.voters.vote_result(self.votes)

    # -- check quorum ----------------------------------------------------------------------

    def quorum_active(self, self_id: int) -> bool:
        """Whether a majority was heard from since the last call (`self_id` always counts);
        then starts a new round."""
        active = {
            node_id: progress.recent_active or node_id == self_id
            for node_id, progress in self.progress.items()
        }
        for node_id, progress in self.progress.items():
            if node_id != self_id:
                progress.recent_active = False
        return self.voters.vote_result(active) is VoteResult.WON
