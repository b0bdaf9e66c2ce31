"""Membership changes through the log: learners, promotion, removal, one at a time."""

from __future__ import annotations

import pytest

from mesoslite.raft import (
    ConfChange,
    ConfChangeError,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    ProposalDroppedError,
    StateRole,
)

from .cluster import Cluster

_VOTING = {
    MessageType.PRE_VOTE,
    MessageType.PRE_VOTE_RESPONSE,
    MessageType.VOTE,
    MessageType.VOTE_RESPONSE,
}


def _change(change_type: ConfChangeType, node_id: int) -> ConfChange:
    return ConfChange(change_type, node_id)


def _cluster_with_learner() -> Cluster:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    leader.propose(b"before-join")
    cluster.stabilize()
    cluster.add_empty_node(4)
    leader.propose_conf_change(_change(ConfChangeType.ADD_LEARNER, 4))
    cluster.stabilize()
    cluster.tick([1], ticks=2)
    return cluster


def test_a_joining_learner_catches_up_through_a_snapshot_and_the_log() -> None:
    cluster = _cluster_with_learner()
    expected = ConfState(voters=(1, 2, 3), learners=(4,))
    for node in cluster.nodes():
        assert node.conf_state() == expected
    learner = cluster.node(4)
    assert learner.applied_index == cluster.node(1).applied_index
    assert cluster.applied_data(4) == [b"before-join"]  # from the log after the snapshot


def test_a_learner_does_not_count_towards_the_quorum_and_never_campaigns() -> None:
    cluster = _cluster_with_learner()
    leader = cluster.node(1)
    cluster.isolate(3)
    cluster.isolate(4)
    index = leader.propose(b"without-the-learner")
    cluster.stabilize()
    assert leader.committed_index == index  # 1 and 2 are a majority of three voters
    cluster.tick([4], ticks=100)
    assert cluster.node(4).role is StateRole.FOLLOWER


def test_a_learner_is_promoted_only_once_it_has_caught_up() -> None:
    cluster = _cluster_with_learner()
    leader = cluster.node(1)
    cluster.isolate(4)
    leader.propose(b"while-the-learner-is-away")
    cluster.stabilize()
    with pytest.raises(ConfChangeError, match="caught up"):
        leader.propose_conf_change(_change(ConfChangeType.ADD_VOTER, 4))
    cluster.heal()
    cluster.tick([1], ticks=1)
    leader.propose_conf_change(_change(ConfChangeType.ADD_VOTER, 4))
    cluster.stabilize()
    for node in cluster.nodes():
        assert node.conf_state() == ConfState(voters=(1, 2, 3, 4))
    # Four voters need three acknowledgements now.
    cluster.isolate(3)
    cluster.isolate(4)
    committed = leader.committed_index
    leader.propose(b"needs-three-of-four")
    cluster.stabilize()
    assert leader.committed_index == committed


def test_removing_a_voter_shrinks_the_quorum() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    leader.propose_conf_change(_change(ConfChangeType.REMOVE_NODE, 3))
    cluster.stabilize()
    assert leader.conf_state() == ConfState(voters=(1, 2))
    cluster.isolate(3)
    index = leader.propose(b"two-of-two")
    cluster.stabilize()
    assert leader.committed_index == index
    assert cluster.node(3).conf_state() == ConfState(voters=(1, 2))
    cluster.tick([3], ticks=100)  # the removed node knows it is out and stays quiet
    assert cluster.node(3).role is StateRole.FOLLOWER


def test_a_leader_that_removes_itself_steps_down_and_the_rest_elect_a_successor() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    leader.propose_conf_change(_change(ConfChangeType.REMOVE_NODE, 1))
    cluster.stabilize()
    assert leader.role is StateRole.FOLLOWER
    cluster.tick([2, 3], ticks=40)
    (successor,) = cluster.leaders()
    assert successor in (2, 3)
    assert cluster.node(successor).conf_state() == ConfState(voters=(2, 3))


def test_only_one_membership_change_may_be_in_flight() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    leader.propose_conf_change(_change(ConfChangeType.ADD_LEARNER, 4))
    with pytest.raises(ProposalDroppedError, match="not applied yet"):
        leader.propose_conf_change(_change(ConfChangeType.ADD_LEARNER, 5))
    cluster.stabilize()
    leader.propose_conf_change(_change(ConfChangeType.ADD_LEARNER, 5))


def test_a_new_leader_changes_membership_only_after_committing_its_own_entry() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    node = cluster.node(1)
    node.campaign()
    for _ in range(4):
        cluster.process_all_readies()
        cluster.deliver(lambda m: m.type in _VOTING)
    assert node.is_leader
    with pytest.raises(ProposalDroppedError):
        node.propose_conf_change(_change(ConfChangeType.ADD_LEARNER, 4))
    cluster.stabilize()
    node.propose_conf_change(_change(ConfChangeType.ADD_LEARNER, 4))


def test_removing_the_last_voter_is_refused() -> None:
    cluster = Cluster(voters=(1,))
    leader = cluster.elect(1)
    with pytest.raises(ConfChangeError, match="last voter"):
        leader.propose_conf_change(_change(ConfChangeType.REMOVE_NODE, 1))


def test_a_follower_with_a_committed_unapplied_change_does_not_campaign() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    follower = cluster.node(2)
    change = Entry(
        term=1,
        index=2,
        data=_change(ConfChangeType.REMOVE_NODE, 2).encode(),
        type=EntryType.CONF_CHANGE,
    )
    follower.step(
        Message(
            MessageType.APPEND,
            to_id=2,
            from_id=1,
            term=1,
            index=1,
            log_term=1,
            entries=[change],
            commit=2,
        )
    )
    for _ in range(40):  # the Ready carrying the change is never processed
        follower.tick()
    assert follower.role is StateRole.FOLLOWER
    cluster.process_ready(2)  # applying it removes node 2: it may never campaign again
    for _ in range(40):
        follower.tick()
    assert follower.role is StateRole.FOLLOWER
    assert follower.conf_state() == ConfState(voters=(1, 3))
