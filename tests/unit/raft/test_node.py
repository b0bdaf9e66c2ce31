"""The RawNode/Ready contract an I/O shell relies on."""

from __future__ import annotations

import random

import pytest

from mesoslite.raft import (
    Config,
    HardState,
    InvariantError,
    MemoryStorage,
    MessageType,
    RawNode,
    SoftState,
    StateRole,
)

from .cluster import Cluster, make_storage


def test_a_fresh_node_has_nothing_to_do() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    assert not cluster.node(1).has_ready()


def test_votes_are_persisted_before_the_vote_requests_go_out() -> None:
    cluster = Cluster(voters=(1, 2, 3), pre_vote=False)
    node = cluster.node(1)
    node.campaign()
    ready = node.ready()
    assert ready.hard_state == HardState(term=2, vote=1, commit=1)
    assert ready.must_sync  # a new term and vote need an fsync
    assert {m.type for m in ready.messages} == {MessageType.VOTE}
    assert ready.soft_state == SoftState(leader_id=0, role=StateRole.CANDIDATE)
    node.advance(ready)
    assert not node.has_ready()


def test_a_commit_index_change_alone_needs_no_fsync() -> None:
    cluster = Cluster(voters=(1, 2))
    leader = cluster.elect(1)
    cluster.drop(lambda m: m.type is MessageType.HEARTBEAT)
    leader.propose(b"a")
    cluster.process_ready(1)
    cluster.deliver()
    cluster.process_ready(2)  # follower persists the entry (must sync)
    cluster.deliver()  # leader learns it is replicated: commits
    ready = leader.ready()
    assert ready.hard_state is not None and ready.hard_state.commit == leader.committed_index
    assert ready.entries == []
    assert not ready.must_sync
    assert [e.data for e in ready.committed_entries] == [b"a"]


def test_entries_are_handed_out_once_for_persisting_and_once_for_applying() -> None:
    cluster = Cluster(voters=(1,))
    leader = cluster.elect(1)
    index = leader.propose(b"once")
    ready = leader.ready()
    assert [e.index for e in ready.entries] == [index]
    assert [e.index for e in ready.committed_entries] == [index]
    cluster.states[1].storage.append(ready.entries)
    leader.advance(ready)
    assert not leader.has_ready()
    assert leader.applied_index == index


def test_a_restarted_node_hands_out_committed_entries_after_its_applied_index() -> None:
    storage = make_storage([1], log_terms=[1, 1, 1])
    storage.set_hard_state(HardState(term=1, commit=4))
    node_config = Config(id=1, storage=storage, rng=random.Random(0), applied_index=2)
    node = RawNode(node_config)
    ready = node.ready()
    assert [e.index for e in ready.committed_entries] == [3, 4]


def test_a_persisted_commit_index_beyond_the_log_is_refused() -> None:
    storage = MemoryStorage()
    storage.set_hard_state(HardState(term=1, commit=5))
    with pytest.raises(InvariantError):
        RawNode(Config(id=1, storage=storage, rng=random.Random(0)))


@pytest.mark.parametrize(
    "bad",
    [
        {"id": 0},
        {"election_ticks": 1, "heartbeat_ticks": 1},
        {"max_inflight_msgs": 0},
        {"max_uncommitted_bytes": 0},
    ],
)
def test_invalid_configurations_are_refused(bad: dict[str, int]) -> None:
    options: dict[str, object] = {"id": 1, "storage": MemoryStorage(), "rng": random.Random(0)}
    options.update(bad)
    with pytest.raises(ValueError):
        Config(**options).validate()  # type: ignore[arg-type]


def test_status_shows_the_leaders_view_of_its_followers() -> None:
    cluster = Cluster(voters=(1, 2, 3))
    leader = cluster.elect(1)
    status = leader.status()
    assert status.soft_state == SoftState(leader_id=1, role=StateRole.LEADER)
    assert sorted(status.progress) == [1, 2, 3]
    assert all(p.match == leader.last_index for p in status.progress.values())
    assert cluster.node(2).status().progress == {}
