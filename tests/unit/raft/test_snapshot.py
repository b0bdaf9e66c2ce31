"""Snapshots: compaction, InstallSnapshot to a lagging follower, and restarts."""

from __future__ import annotations

from mesoslite.raft import Message, MessageType, ProgressState, Snapshot, SnapshotMetadata

from .cluster import Cluster


def _lagging_follower_cluster() -> Cluster:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    cluster.isolate(3)
    for i in range(10):
        leader.propose(f"v{i}".encode())
    cluster.stabilize()
    cluster.compact(1)
    return cluster


def test_a_follower_behind_the_compaction_point_receives_a_snapshot() -> None:
    cluster = _lagging_follower_cluster()
    leader = cluster.node(1)
    cluster.heal()
    cluster.tick([1], ticks=1)
    (snapshot_message,) = cluster.sent_of_type(MessageType.SNAPSHOT)
    assert snapshot_message.to_id == 3
    follower = cluster.states[3]
    snapshot_index = leader.applied_index
    assert follower.storage.snapshot().metadata.index == snapshot_index
    assert follower.snapshot_data.split(b"|") == [f"v{i}".encode() for i in range(10)]
    assert follower.node.conf_state() == leader.conf_state()
    # Replication continues from the snapshot on.
    leader.propose(b"after")
    cluster.stabilize()
    assert cluster.applied_data(3) == [b"after"]
    assert follower.node.applied_index == leader.applied_index
    assert leader.status().progress[3].state is ProgressState.REPLICATE


def test_a_lost_snapshot_is_sent_again_after_the_transport_reports_it() -> None:
    cluster = _lagging_follower_cluster()
    leader = cluster.node(1)
    cluster.heal()
    cluster.drop(lambda m: m.type is MessageType.SNAPSHOT)
    cluster.tick([1], ticks=1)
    assert leader.status().progress[3].state is ProgressState.SNAPSHOT
    cluster.tick([1], ticks=3)
    assert len(cluster.sent_of_type(MessageType.SNAPSHOT)) == 1  # waits for news
    leader.report_snapshot(3, failed=True)
    assert leader.status().progress[3].state is ProgressState.PROBE
    cluster.heal()
    cluster.tick([1], ticks=2)
    assert len(cluster.sent_of_type(MessageType.SNAPSHOT)) == 2
    assert cluster.node(3).applied_index == leader.applied_index


def test_a_snapshot_older_than_the_commit_index_is_ignored() -> None:
    cluster = Cluster(voters=(1, 2))
    leader = cluster.elect(1)
    leader.propose(b"a")
    cluster.stabilize()
    follower = cluster.node(2)
    committed = follower.committed_index
    stale = Snapshot(SnapshotMetadata(index=committed - 1, term=2, conf_state=leader.conf_state()))
    follower.step(
        Message(MessageType.SNAPSHOT, to_id=2, from_id=1, term=leader.term, snapshot=stale)
    )
    ready = follower.ready()
    assert ready.snapshot is None
    assert ready.messages[0].index == committed


def test_a_snapshot_matching_our_log_only_moves_the_commit_index() -> None:
    cluster = Cluster(voters=(1, 2))
    leader = cluster.elect(1)
    cluster.drop(lambda m: m.type is MessageType.HEARTBEAT)
    leader.propose(b"a")
    leader.propose(b"b")
    cluster.process_ready(1)
    cluster.deliver()  # the follower appends a and b but does not know they commit
    cluster.process_ready(2)
    cluster.mailbox.clear()
    follower = cluster.node(2)
    last = follower.last_index
    assert follower.committed_index < last
    snapshot = Snapshot(
        SnapshotMetadata(index=last - 1, term=leader.term, conf_state=leader.conf_state())
    )
    follower.step(
        Message(MessageType.SNAPSHOT, to_id=2, from_id=1, term=leader.term, snapshot=snapshot)
    )
    ready = follower.ready()
    assert ready.snapshot is None
    assert follower.committed_index == last - 1
    assert follower.last_index == last  # the entry after the snapshot is kept


def test_a_node_restarted_from_a_snapshot_applies_only_what_follows_it() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    for i in range(3):
        leader.propose(f"s{i}".encode())
    cluster.stabilize()
    snapshot_index = cluster.compact(2)
    leader.propose(b"later")
    cluster.stabilize()
    restarted = cluster.restart(2)
    assert restarted.applied_index == snapshot_index
    cluster.tick(ticks=2)
    assert cluster.applied_data(2)[-1:] == [b"later"]
    assert restarted.applied_index == leader.applied_index
