"""Log replication: conflict resolution, probing, pipelining and batching."""

from __future__ import annotations

import pytest

from mesoslite.raft import Message, MessageType, ProgressState, ProposalDroppedError

from .cluster import Cluster


def _appends_to(messages: list[Message], to_id: int) -> list[Message]:
    return [m for m in messages if m.type is MessageType.APPEND and m.to_id == to_id]


def test_proposals_are_replicated_committed_and_applied_in_order_everywhere() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    indexes = [leader.propose(f"p{i}".encode()) for i in range(5)]
    assert indexes == list(range(3, 8))
    cluster.stabilize()
    for node_id in (1, 2, 3):
        assert cluster.applied_data(node_id) == [f"p{i}".encode() for i in range(5)]
        assert cluster.node(node_id).committed_index == 7


def test_only_the_leader_accepts_proposals() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    cluster.elect(1)
    with pytest.raises(ProposalDroppedError):
        cluster.node(2).propose(b"x")


@pytest.mark.parametrize(
    "follower_log",
    [
        [],  # missing entries
        [2, 2],  # a prefix
        [2, 2, 2, 4, 4, 4],  # extra entries of a newer term the leader never had
        [2, 3, 3, 3, 3, 3, 3],  # a long divergent suffix of an older term
        [2, 2, 5, 5],  # divergent from index 4 on
    ],
)
def test_the_leader_overwrites_conflicting_follower_entries(follower_log: list[int]) -> None:
    # Node 1's log after the bootstrap entry: terms 2 2 5 6 6; node 1 wins at term 7.
    leader_log = [2, 2, 5, 6, 6]
    cluster = Cluster(voters=(1, 2, 3), logs={1: leader_log, 2: follower_log, 3: leader_log})
    cluster.elect(1)
    leader_entries = cluster.log_entries(1)
    assert cluster.log_entries(2) == leader_entries
    assert cluster.log_entries(3) == leader_entries
    assert cluster.node(2).committed_index == cluster.node(1).committed_index


def test_a_rejection_skips_a_whole_divergent_term_per_round_trip() -> None:
    # Node 2 holds 30 entries of term 3 the leader never had; backing off one entry per
    # rejection would take 30 round trips, the conflict hint takes a handful.
    cluster = Cluster(voters=(1, 2, 3), logs={1: [2, 4], 2: [2] + [3] * 30, 3: [2, 4]})
    cluster.elect(1)
    rejections = [
        m for m in cluster.sent_of_type(MessageType.APPEND_RESPONSE) if m.from_id == 2 and m.reject
    ]
    assert 1 <= len(rejections) <= 3
    assert cluster.log_entries(2) == cluster.log_entries(1)


def test_a_probing_leader_sends_one_append_at_a_time() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    assert leader.status().progress[3].state is ProgressState.REPLICATE
    leader.report_unreachable(3)  # the transport lost the connection: probe again
    assert leader.status().progress[3].state is ProgressState.PROBE
    cluster.mailbox.clear()
    leader.propose(b"c")
    leader.propose(b"d")
    cluster.process_ready(1)
    probes = _appends_to(cluster.mailbox, 3)
    assert len(probes) == 1  # then paused until an answer or a heartbeat answer
    leader.propose(b"e")
    cluster.process_ready(1)
    assert len(_appends_to(cluster.mailbox, 3)) == 1


def test_a_replicating_leader_pipelines_up_to_the_inflight_window() -> None:
    cluster = Cluster(voters=(1, 2, 3), max_inflight_msgs=3)
    leader = cluster.elect(1)
    cluster.mailbox.clear()
    for round_number in range(5):
        leader.propose(f"r{round_number}".encode())
        cluster.process_ready(1)  # answers are never delivered in this test
    appends = _appends_to(cluster.mailbox, 2)
    assert len(appends) == 3  # the window is full: two proposals wait
    assert [m.entries[0].data for m in appends] == [b"r0", b"r1", b"r2"]
    # Acknowledging the first frees one slot; the rest goes out in one message.
    cluster.mailbox.clear()
    leader.step(
        Message(
            MessageType.APPEND_RESPONSE,
            to_id=1,
            from_id=2,
            term=leader.term,
            index=appends[0].entries[-1].index,
        )
    )
    cluster.process_ready(1)
    (follow_up,) = _appends_to(cluster.mailbox, 2)
    assert [e.data for e in follow_up.entries] == [b"r3", b"r4"]


def test_proposals_between_two_readies_travel_in_one_append_per_follower() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    cluster.mailbox.clear()
    for i in range(50):
        leader.propose(f"batch{i}".encode())
    cluster.process_ready(1)
    for follower in (2, 3):
        (append,) = _appends_to(cluster.mailbox, follower)
        assert len(append.entries) == 50
    cluster.stabilize()
    assert len(cluster.applied_data(3)) == 50


def test_appends_respect_the_message_size_limit() -> None:
    cluster = Cluster(voters=(1, 2), max_msg_size_bytes=100)
    leader = cluster.elect(1)
    cluster.mailbox.clear()
    leader.propose_batch([bytes(40)] * 6)  # 56 bytes each, with framing
    cluster.process_ready(1)
    appends = _appends_to(cluster.mailbox, 2)
    assert [len(m.entries) for m in appends] == [1] * 6
    cluster.stabilize()
    assert cluster.node(2).committed_index == leader.committed_index


def test_a_follower_that_restarts_keeps_its_log_and_catches_up() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    leader.propose(b"before")
    cluster.stabilize()
    cluster.isolate(3)
    leader.propose(b"while-away")
    cluster.stabilize()
    cluster.restart(3)
    cluster.heal()
    cluster.tick(ticks=3)
    assert cluster.applied_data(3)[-2:] == [b"before", b"while-away"]
    assert cluster.log_entries(3) == cluster.log_entries(1)


def test_duplicated_and_reordered_appends_do_not_corrupt_the_follower_log() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    cluster.mailbox.clear()
    captured: list[Message] = []
    for i in range(4):
        leader.propose(f"d{i}".encode())
        cluster.process_ready(1)
        captured.extend(_appends_to(cluster.mailbox, 2))
    cluster.stabilize()
    for message in reversed(captured + captured):  # stale, duplicated, reordered
        cluster.node(2).step(message)
    cluster.stabilize()
    assert cluster.log_entries(2) == cluster.log_entries(1)
    assert cluster.applied_data(2) == [b"d0", b"d1", b"d2", b"d3"]


def test_a_full_window_whose_appends_were_all_lost_recovers_on_a_heartbeat() -> None:
    cluster = Cluster(voters=(1, 2, 3), max_inflight_msgs=2)
    leader = cluster.elect(1)
    cluster.drop(lambda m: m.type is MessageType.APPEND and m.to_id == 3)
    for i in range(4):
        leader.propose(f"lost{i}".encode())
        cluster.stabilize()
    assert leader.status().progress[3].match < leader.committed_index
    cluster.heal()
    cluster.tick([1], ticks=3)
    assert cluster.applied_data(3) == [f"lost{i}".encode() for i in range(4)]


def test_a_leader_refuses_proposals_beyond_its_uncommitted_budget() -> None:
    cluster = Cluster(voters=(1, 2, 3), max_uncommitted_bytes=100)
    leader = cluster.elect(1)
    cluster.isolate(1)
    leader.propose(bytes(150))  # one proposal always goes through
    with pytest.raises(ProposalDroppedError, match="uncommitted"):
        leader.propose(b"x")
    cluster.heal()
    cluster.tick([1], ticks=1)
    leader.propose(bytes(40))  # committed and applied: the budget is free again
    leader.propose(bytes(20))  # 56 + 36 bytes with framing
    with pytest.raises(ProposalDroppedError):
        leader.propose_batch([b"a", b"b"])
