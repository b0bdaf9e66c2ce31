"""Commitment: majorities, and the rule that only entries of the leader's own term are
committed by counting replicas (Raft §5.4.2, Figure 8)."""

from __future__ import annotations

from mesoslite.raft import Message, MessageType, StateRole
from mesoslite.raft._faults import injected

from .cluster import Cluster

_VOTING = {
    MessageType.PRE_VOTE,
    MessageType.PRE_VOTE_RESPONSE,
    MessageType.VOTE,
    MessageType.VOTE_RESPONSE,
}


def test_an_entry_commits_only_once_a_majority_holds_it() -> None:
    cluster = Cluster(voters=(1, 2, 3, 4, 5))
    leader = cluster.elect(1)
    committed = leader.committed_index
    for follower in (3, 4, 5):
        cluster.isolate(follower)
    index = leader.propose(b"needs-three")
    cluster.stabilize()
    assert leader.committed_index == committed  # held by 1 and 2 only
    cluster.heal()
    cluster.tick([1], ticks=1)
    assert leader.committed_index == index


def test_a_new_leader_commits_earlier_terms_through_an_entry_of_its_own() -> None:
    cluster = Cluster(voters=(1, 2, 3), logs={1: [2], 2: [2], 3: []}, terms={1: 2, 2: 2, 3: 2})
    leader = cluster.elect(1)
    assert leader.term == 3
    assert leader.log_term(3) == 3
    assert leader.committed_index == 3  # index 2 (term 2) committed along with index 3
    assert cluster.applied_data(3) == [b"e2@2"]


def test_a_follower_is_never_told_to_commit_beyond_what_it_holds() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    cluster.isolate(3)
    leader.propose(b"x")
    cluster.stabilize()
    cluster.mailbox.clear()
    cluster.tick([1], ticks=1)
    heartbeats = [m for m in cluster.sent_of_type(MessageType.HEARTBEAT) if m.to_id == 3]
    assert heartbeats[-1].commit == leader.status().progress[3].match < leader.committed_index


def _figure_8(*, commit_any_term: bool) -> Cluster:
    """Figure 8 of the Raft paper, with node 1 as S1 and node 5 as S5. Index 2 holds a
    term-2 entry on nodes 1-3 (written by S1 in term 2) and a term-3 entry on node 5
    (written by S5 in term 3). Node 1 leads term 4; nodes 2 and 3 acknowledge index 2 but
    its term-4 entry reaches nobody. Then node 1 is cut off and node 5 runs."""
    cluster = Cluster(
        voters=(1, 2, 3, 4, 5),
        logs={1: [2], 2: [2], 3: [2], 4: [], 5: [3]},
        terms=dict.fromkeys((1, 2, 3, 4, 5), 3),
        check_quorum=False,
    )
    cluster.isolate(5)
    node1 = cluster.node(1)
    node1.campaign()
    for _ in range(4):
        cluster.process_all_readies()
        cluster.deliver(lambda m: m.type in _VOTING)
    assert node1.role is StateRole.LEADER and node1.term == 4
    cluster.mailbox.clear()  # node 1's appends (carrying its term-4 entry) are lost
    with injected(commit_any_term=commit_any_term):
        for follower in (2, 3):
            node1.step(
                Message(MessageType.APPEND_RESPONSE, to_id=1, from_id=follower, term=4, index=2)
            )
        cluster.process_ready(1)
    cluster.mailbox.clear()
    cluster.heal()
    cluster.isolate(1)
    node5 = cluster.node(5)
    for _ in range(3):  # the first pre-vote may only teach node 5 the current term
        if node5.role is not StateRole.LEADER:
            node5.campaign()
            cluster.stabilize()
    assert node5.role is StateRole.LEADER
    node5.propose(b"after")
    cluster.stabilize()
    return cluster


def test_figure_8_a_leader_does_not_commit_an_old_term_entry_by_counting_replicas() -> None:
    cluster = _figure_8(commit_any_term=False)
    assert cluster.node(1).committed_index == 1  # index 2 is on 3 of 5 but from term 2
    # Node 5 may then legitimately replace index 2 everywhere it leads.
    assert cluster.node(2).log_term(2) == 3
    applied_at_2 = {
        node_id: [e.data for e in cluster.states[node_id].applied if e.index == 2]
        for node_id in (1, 2, 3, 4, 5)
    }
    assert applied_at_2[1] == []
    assert all(data == [b"e2@3"] for node_id, data in applied_at_2.items() if node_id != 1)


def test_figure_8_counting_old_term_replicas_loses_a_committed_entry() -> None:
    # The same story with the rule switched off: node 1 commits and applies index 2
    # (term 2), then node 5 overwrites it and the others apply a different entry there.
    cluster = _figure_8(commit_any_term=True)
    applied_by_1 = [e.data for e in cluster.states[1].applied if e.index == 2]
    applied_by_2 = [e.data for e in cluster.states[2].applied if e.index == 2]
    assert applied_by_1 == [b"e2@2"]
    assert applied_by_2 == [b"e2@3"]
