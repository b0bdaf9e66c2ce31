"""Linearizable reads with ReadIndex: a heartbeat round confirms leadership first."""

from __future__ import annotations

from mesoslite.raft import MessageType, ReadState

from .cluster import Cluster

_VOTING = {
    MessageType.PRE_VOTE,
    MessageType.PRE_VOTE_RESPONSE,
    MessageType.VOTE,
    MessageType.VOTE_RESPONSE,
}


def test_the_leader_answers_a_read_after_a_majority_confirms_its_leadership() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    index = leader.propose(b"w")
    cluster.stabilize()
    leader.read_index(b"r1")
    cluster.process_ready(1)
    assert cluster.states[1].read_states == []  # not before the heartbeat round
    heartbeats = [m for m in cluster.mailbox if m.type is MessageType.HEARTBEAT]
    assert {m.context for m in heartbeats} == {b"r1"}
    cluster.stabilize()
    assert cluster.states[1].read_states == [ReadState(index, b"r1")]


def test_a_leader_cut_off_from_the_majority_serves_no_read() -> None:
    cluster = Cluster(voters=(1, 2, 3), check_quorum=False)
    leader = cluster.elect(1)
    cluster.isolate(1)
    leader.read_index(b"stale?")
    cluster.tick([1], ticks=5)  # heartbeats carry the read again, but nobody answers
    assert leader.is_leader
    assert cluster.states[1].read_states == []


def test_reads_are_answered_in_order_by_a_later_round() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    cluster.drop(lambda m: m.type is MessageType.HEARTBEAT_RESPONSE)
    leader.read_index(b"first")
    cluster.stabilize()
    cluster.heal()
    leader.read_index(b"second")
    cluster.stabilize()
    contexts = [state.request_context for state in cluster.states[1].read_states]
    assert contexts == [b"first", b"second"]


def test_a_new_leader_answers_reads_only_after_committing_an_entry_of_its_term() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    node = cluster.node(1)
    node.campaign()
    for _ in range(4):
        cluster.process_all_readies()
        cluster.deliver(lambda m: m.type in _VOTING)
    assert node.is_leader
    node.read_index(b"early")
    cluster.process_ready(1)
    assert not [m for m in cluster.mailbox if m.type is MessageType.HEARTBEAT]
    cluster.stabilize()
    (state,) = cluster.states[1].read_states
    assert state.request_context == b"early"
    assert state.index == node.committed_index  # includes the entry of its own term


def test_a_follower_read_is_forwarded_and_covers_every_earlier_write() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    cluster.isolate(3)
    index = leader.propose(b"written-while-3-was-away")
    cluster.stabilize()
    cluster.heal()
    cluster.node(3).read_index(b"from-3")
    cluster.stabilize()
    (state,) = cluster.states[3].read_states
    assert state.index >= index
    assert cluster.node(3).applied_index >= state.index


def test_a_single_voter_answers_reads_at_once() -> None:
    cluster = Cluster(voters=(1,))
    leader = cluster.elect(1)
    leader.read_index(b"solo")
    cluster.process_ready(1)
    assert cluster.states[1].read_states == [ReadState(leader.committed_index, b"solo")]
