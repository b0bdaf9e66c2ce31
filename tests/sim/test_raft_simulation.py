"""Seeded whole-cluster Raft simulation: many seeds, each its own swarm configuration.

Environment:
- MESOSLITE_SEED=<n>: replay exactly one seed (what a failure message tells you to run);
- MESOSLITE_SIM_SEEDS=<count> (default 2000) and MESOSLITE_SIM_FIRST_SEED=<n> (default 0);
- MESOSLITE_SIM_WORKERS=<n>: processes to spread seeds over (default: up to 2 CPUs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import pytest

from mesoslite.raft._faults import injected
from mesoslite.testing.sim import RaftSimulation, SimulationFailure, SimulationOptions, run_seed
from mesoslite.testing.sim.raft_vopr import run_seeds

DEFAULT_SEED_COUNT = 2000
FAILURES_SHOWN = 3


def _planned_seeds() -> list[int]:
    replay = os.environ.get("MESOSLITE_SEED")
    if replay:
        return [int(replay)]
    count = int(os.environ.get("MESOSLITE_SIM_SEEDS", DEFAULT_SEED_COUNT))
    first = int(os.environ.get("MESOSLITE_SIM_FIRST_SEED", 0))
    return list(range(first, first + count))


def _workers() -> int:
    configured = os.environ.get("MESOSLITE_SIM_WORKERS")
    if configured:
        return max(1, int(configured))
    return max(1, min(2, os.cpu_count() or 1))


def test_raft_simulation_seeds() -> None:
    seeds = _planned_seeds()
    outcomes = run_seeds(seeds, _workers())
    failures = [outcome for outcome in outcomes if outcome.failure is not None]
    if failures:
        shown = "\n\n".join(str(outcome.failure) for outcome in failures[:FAILURES_SHOWN])
        failed_seeds = [outcome.seed for outcome in failures]
        pytest.fail(f"{len(failures)} of {len(seeds)} seeds failed: {failed_seeds}\n\n{shown}")
    assert len(outcomes) == len(seeds)
    assert all(outcome.ticks > 0 for outcome in outcomes)


def test_a_seed_replays_exactly() -> None:
    first = run_seed(7)
    second = run_seed(7)
    assert first == second
    assert first != run_seed(8)


def test_a_seed_replays_exactly_in_another_process_with_another_hash_seed() -> None:
    # Nothing may depend on set or dict order of hashed strings and bytes, which
    # PYTHONHASHSEED changes from one process to the next.
    script = "from mesoslite.testing.sim import run_seed; print(repr(run_seed(11)))"
    reports = []
    for hash_seed in ("1", "2"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        completed = subprocess.run(
            [sys.executable, "-c", script],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        reports.append(completed.stdout)
    assert reports[0] == reports[1] == repr(run_seed(11)) + "\n"


def test_the_simulation_exercises_what_it_claims_to() -> None:
    # Over a handful of seeds, every fault and feature actually happens.
    reports = [run_seed(seed) for seed in range(40)]
    assert sum(r.crashes for r in reports) > 0
    assert sum(r.wal_bytes_discarded for r in reports) > 0  # torn or lost unsynced writes
    assert sum(r.partitions for r in reports) > 0
    assert sum(r.network.lost for r in reports) > 0
    assert sum(r.network.duplicated for r in reports) > 0
    assert sum(r.snapshots_taken for r in reports) > 0
    assert sum(r.snapshots_installed for r in reports) > 0
    assert sum(r.membership_changes for r in reports) > 0
    assert sum(r.reads_served for r in reports) > 0
    assert sum(r.writes_acked for r in reports) > 100
    assert all(r.liveness_ticks > 0 for r in reports)


def _first_failure(
    seeds: range,
    make_options: Callable[[SimulationOptions], SimulationOptions] | None = None,
) -> SimulationFailure | None:
    for seed in seeds:
        options = SimulationOptions.swarm(seed)
        if make_options is not None:
            options = make_options(options)
        try:
            RaftSimulation(options).run()
        except SimulationFailure as failure:
            return failure
    return None


def test_the_checkers_catch_votes_granted_to_stale_logs() -> None:
    # Test-of-the-test: voters that skip the "at least as up to date" check (Raft §5.4.1)
    # elect leaders that lack committed entries; a few seeds must expose it.
    with injected(vote_ignores_log=True):
        failure = _first_failure(range(100))
    assert failure is not None
    assert "SafetyViolation" in failure.reason or "InvariantError" in failure.reason


def test_the_checkers_catch_a_shell_that_sends_before_it_fsyncs() -> None:
    # Test-of-the-test: a shell that sends (acknowledges) before its writes are durable
    # loses acknowledged entries when it crashes between the two.
    def broken_shell(options: SimulationOptions) -> SimulationOptions:
        replica = replace(
            options.replica, bug_send_before_sync=True, crash_before_sync_probability=0.02
        )
        return replace(options, replica=replica)

    failure = _first_failure(range(100), broken_shell)
    assert failure is not None
    assert "SafetyViolation" in failure.reason or "InvariantError" in failure.reason


def test_a_leader_that_sends_before_it_fsyncs_loses_nothing_acknowledged() -> None:
    # The ReplicaService's shell: a leader's appends go out before its own writes are
    # durable (its fsync overlaps its followers'), followers learn the commit index
    # from the next append or heartbeat, and a follower that was sent an append gets no
    # heartbeat that tick. Crashes between write and fsync included.
    def service_shell(options: SimulationOptions) -> SimulationOptions:
        replica = replace(
            options.replica,
            leader_sends_before_sync=True,
            broadcast_commit=False,
            quiet_heartbeats=True,
            crash_before_sync_probability=0.02,
        )
        return replace(options, replica=replica)

    failure = _first_failure(range(200), service_shell)
    assert failure is None, str(failure)
