"""Leadership transfer with TIMEOUT_NOW."""

from __future__ import annotations

import pytest

from mesoslite.raft import MessageType, ProposalDroppedError, StateRole

from .cluster import Cluster


def test_leadership_moves_to_an_up_to_date_follower_immediately() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    term = leader.term
    leader.transfer_leadership(2)
    cluster.stabilize()
    assert cluster.leaders() == [2]
    assert cluster.node(2).term == term + 1
    assert leader.role is StateRole.FOLLOWER and leader.leader_id == 2
    # The transferee skipped pre-vote, and check-quorum leases did not stop it.
    assert cluster.sent_of_type(MessageType.TIMEOUT_NOW)[0].to_id == 2


def test_a_lagging_transferee_is_caught_up_first() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    cluster.isolate(3)
    for i in range(5):
        leader.propose(f"t{i}".encode())
    cluster.stabilize()
    cluster.heal()
    leader.transfer_leadership(3)
    assert cluster.sent_of_type(MessageType.TIMEOUT_NOW) == []
    cluster.stabilize()
    assert cluster.leaders() == [3]
    assert cluster.applied_data(3) == [f"t{i}".encode() for i in range(5)]


def test_a_follower_forwards_a_transfer_request_to_the_leader() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    cluster.elect(1)
    cluster.node(3).transfer_leadership(3)
    cluster.stabilize()
    assert cluster.leaders() == [3]


def test_proposals_are_refused_while_a_transfer_is_in_progress() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    cluster.isolate(2)
    leader.propose(b"x")
    cluster.stabilize()
    leader.transfer_leadership(2)  # 2 lags and cannot be reached
    with pytest.raises(ProposalDroppedError, match="transfer"):
        leader.propose(b"refused")


def test_a_transfer_that_cannot_finish_is_abandoned_after_an_election_timeout() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    cluster.isolate(2)
    leader.propose(b"x")
    cluster.stabilize()
    leader.transfer_leadership(2)
    cluster.tick([1], ticks=10)
    assert leader.is_leader
    leader.propose(b"accepted-again")


def test_transfers_to_a_learner_or_to_the_leader_itself_are_ignored() -> None:
    cluster = Cluster(voters=(1, 2), learners=(3,))
    leader = cluster.elect(1)
    leader.transfer_leadership(3)
    leader.transfer_leadership(1)
    cluster.stabilize()
    assert cluster.leaders() == [1]
    assert leader.status().lead_transferee == 0
