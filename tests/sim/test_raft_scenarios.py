"""Targeted scenarios on the simulation harness (same replicas, WALs, network and
checkers as the seeded runs, with scripted faults instead of random ones)."""

from __future__ import annotations

import pytest

from mesoslite.raft import RawNode
from mesoslite.raft._faults import injected
from mesoslite.testing.sim import (
    NetworkOptions,
    RaftSimulation,
    ReplicaOptions,
    SafetyViolation,
    SimulationOptions,
)

STEPS_MAX = 5_000
NODE_IDS = [1, 2, 3, 4, 5]


def _quiet_simulation() -> RaftSimulation:
    """Five replicas, one-entry appends, one in flight, no random faults or requests, and
    election timeouts long enough that only the script starts elections."""
    options = SimulationOptions(
        seed=8,
        initial_voters=5,
        spare_nodes=0,
        replica=ReplicaOptions(
            election_ticks=200,
            heartbeat_ticks=1,
            pre_vote=False,
            check_quorum=False,
            max_msg_size_bytes=1,
            max_inflight_msgs=1,
            snapshot_interval_entries=1_000_000,
        ),
        network=NetworkOptions(latency_min_steps=1, latency_max_steps=1),
        partition_probability=0.0,
        crash_probability=0.0,
        leader_fault_probability=0.0,
        restart_after_crash=False,
        propose_probability=0.0,
        read_probability=0.0,
        membership_probability=0.0,
        transfer_probability=0.0,
    )
    return RaftSimulation(options)


def _node(sim: RaftSimulation, node_id: int) -> RawNode:
    node = sim.replicas[node_id].node
    assert node is not None, f"node {node_id} is down"
    return node


def _elect(sim: RaftSimulation, node_id: int) -> RawNode:
    """Campaign until elected (a first try may only teach the candidate the latest term)."""
    for _ in range(5):
        sim.campaign(node_id)
        sim.run_steps_until(lambda: _node(sim, node_id).role.value != "candidate", STEPS_MAX)
        if _node(sim, node_id).is_leader:
            return _node(sim, node_id)
    raise AssertionError(f"node {node_id} was not elected")


def _isolate(sim: RaftSimulation, node_id: int) -> None:
    sim.network.isolate(node_id, NODE_IDS)


def _figure_8(sim: RaftSimulation) -> int:
    """Raft paper Figure 8 with S1..S5 as nodes 1..5. Returns the contested index."""
    network = sim.network
    # (a) S1 leads term 2 and writes X at index k, which reaches S2 only.
    s1 = _elect(sim, 1)
    sim.run_steps_until(
        lambda: all(_node(sim, i).applied_index == s1.last_index for i in NODE_IDS), STEPS_MAX
    )
    contested_index = s1.last_index + 1
    _isolate(sim, 1)
    network.connect(1, 2)
    assert sim.replicas[1].propose(b"X")
    sim.run_steps_until(lambda: _node(sim, 2).last_index == contested_index, STEPS_MAX)
    # (b) S1 crashes; S5 wins term 3 with S3 and S4 and writes its own entry at index k,
    # then is cut off before that entry leaves, and crashes.
    sim.replicas[1].crash()
    network.heal()
    _isolate(sim, 2)
    s5 = _elect(sim, 5)
    _isolate(sim, 5)
    assert s5.term == 3 and s5.log_term(contested_index) == 3
    sim.replicas[5].crash()
    # (c) S1 restarts and wins term 4 with S2 and S3, and sends X to S3. X is now on a
    # majority (S1, S2, S3), but S1's own term-4 entry is not: S1 is cut off the moment
    # S3 acknowledges X, before S3 receives anything more.
    network.heal()
    _isolate(sim, 4)
    _isolate(sim, 5)
    sim.replicas[1].start()
    s1 = _elect(sim, 1)
    sim.run_steps_until(
        lambda: min(s1.status().progress[i].match for i in (2, 3)) >= contested_index, STEPS_MAX
    )
    _isolate(sim, 1)
    assert _node(sim, 3).log_term(contested_index + 1) == 0
    # (d) S5 restarts and wins term 5 with S2, S3 and S4: its log ends in term 3, newer
    # than their term-2 entries at index k. It replaces X with its own entry everywhere.
    network.heal()
    _isolate(sim, 1)
    sim.replicas[5].start()
    s5 = _elect(sim, 5)
    assert sim.replicas[5].propose(b"after")
    sim.run_steps_until(lambda: _node(sim, 3).applied_index > contested_index, STEPS_MAX)
    return contested_index


def test_figure_8_runs_clean_with_the_commit_rule() -> None:
    sim = _quiet_simulation()
    contested_index = _figure_8(sim)
    # S1 never counted replicas for its term-2 entry, so nobody applied X...
    assert _node(sim, 1).committed_index < contested_index
    # ...and what everyone applied at index k is S5's entry.
    assert sim.checker.applied_entry(contested_index) == (3, b"")


def test_figure_8_without_the_commit_rule_is_caught_by_the_checkers() -> None:
    # Test-of-the-test: switch the commit-term rule off. S1 then commits and applies X in
    # (c), and the checkers must object when S5, which lacks X, is elected in (d) (had
    # that slipped through, state machine safety would fail when S5 overwrites X).
    sim = _quiet_simulation()
    with (
        injected(commit_any_term=True),
        pytest.raises(SafetyViolation, match="leader completeness: node 5"),
    ):
        _figure_8(sim)
    assert sim.checker.applied_entry(3) == (2, b"X")  # S1 applied X at the contested index
