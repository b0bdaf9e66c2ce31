"""Deterministic simulation pieces: a simulated clock, network and disk, and a seeded
whole-cluster Raft simulation with safety checkers built on them."""

from mesoslite.testing.sim.clock import SimClock
from mesoslite.testing.sim.disk import DiskOptions, DiskStats, SimDisk
from mesoslite.testing.sim.network import NetworkOptions, NetworkStats, SimNetwork
from mesoslite.testing.sim.raft_checker import RaftSafetyChecker, SafetyViolation
from mesoslite.testing.sim.raft_history import ClientHistory
from mesoslite.testing.sim.raft_replica import ReplicaOptions, SimReplica
from mesoslite.testing.sim.raft_simulation import (
    RaftSimulation,
    SimulationFailure,
    SimulationOptions,
    SimulationReport,
    run_seed,
)
from mesoslite.testing.sim.raft_wal import SimWal

__all__ = [
    "ClientHistory",
    "DiskOptions",
    "DiskStats",
    "NetworkOptions",
    "NetworkStats",
    "RaftSafetyChecker",
    "RaftSimulation",
    "ReplicaOptions",
    "SafetyViolation",
    "SimClock",
    "SimDisk",
    "SimNetwork",
    "SimReplica",
    "SimWal",
    "SimulationFailure",
    "SimulationOptions",
    "SimulationReport",
    "run_seed",
]
