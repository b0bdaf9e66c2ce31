"""A seeded whole-cluster Raft simulation (in the spirit of TigerBeetle's VOPR).

One seed decides everything: the cluster's shape and tuning (swarm testing: every seed
draws its own options), and every fault and request. A run has two phases:

1. safety: replicas crash (sometimes between a write and its fsync) and restart from
   their WALs, the network loses, duplicates, delays and reorders packets and partitions
   the cluster (sometimes one-way), clients write and read, members join as learners, get
   promoted, are removed, leadership is transferred. Checkers watch all along.
2. liveness: faults stop (the network heals, every member restarts) and the cluster must
   elect a leader and commit and apply a new entry on every member within a tick budget.

A failing seed raises `SimulationFailure`, whose message says how to replay it.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mesoslite.raft import (
    ConfChange,
    ConfChangeError,
    ConfChangeType,
    Entry,
    HardState,
    Message,
    ProposalDroppedError,
    Snapshot,
    bootstrap_snapshot,
)
from mesoslite.raft.confchange import Membership, apply_conf_change
from mesoslite.testing.sim.clock import SimClock
from mesoslite.testing.sim.disk import DiskOptions, SimDisk
from mesoslite.testing.sim.network import NetworkOptions, NetworkStats, SimNetwork
from mesoslite.testing.sim.raft_checker import RaftSafetyChecker
from mesoslite.testing.sim.raft_history import ClientHistory
from mesoslite.testing.sim.raft_replica import ReplicaOptions, SimReplica

__all__ = [
    "RaftSimulation",
    "SimulationFailure",
    "SimulationOptions",
    "SimulationReport",
    "run_seed",
]

MAX_VOTERS = 5
MIN_VOTERS = 2
MAX_LEARNERS = 2
_TRACE_LINES = 80
LIVENESS_CAP_FACTOR = 20


@dataclass(slots=True, frozen=True)
class SimulationOptions:
    seed: int
    initial_voters: int = 3
    spare_nodes: int = 2  # ids that may join during the run
    replica: ReplicaOptions = field(default_factory=ReplicaOptions)
    tick_drift_steps: int = 1  # replicas' tick intervals differ by up to this much
    network: NetworkOptions = field(default_factory=NetworkOptions)
    torn_write_probability: float = 0.5
    # Per-tick probabilities during the safety phase.
    partition_probability: float = 0.02
    partition_ticks_max: int = 60
    crash_probability: float = 0.01
    restart_ticks_max: int = 60
    restart_after_crash: bool = True  # scripted scenarios restart replicas themselves
    # The chance that a newly elected leader is crashed or cut off soon after winning:
    # leaders failing before their first entries spread is what Figure 8 is made of.
    leader_fault_probability: float = 0.1
    propose_probability: float = 0.3
    propose_batch_max: int = 3
    read_probability: float = 0.1
    membership_probability: float = 0.02
    transfer_probability: float = 0.005
    safety_ticks: int = 400
    liveness_ticks_max: int = 400

    @classmethod
    def swarm(cls, seed: int) -> SimulationOptions:
        """Options drawn from the seed, so that many seeds explore many configurations."""
        rng = random.Random(seed)
        # Options added later draw from their own generator, so that every seed keeps
        # the configuration it had before they existed.
        later = random.Random(f"later options of {seed}")
        election_ticks = rng.choice([5, 10, 10, 20])
        tick_steps = 10
        replica = ReplicaOptions(
            election_ticks=election_ticks,
            heartbeat_ticks=rng.randint(1, max(1, election_ticks // 4)),
            tick_steps=tick_steps,
            pre_vote=rng.random() < 0.8,
            check_quorum=rng.random() < 0.8,
            max_msg_size_bytes=rng.choice([40, 200, 4096, 1 << 20]),
            max_inflight_msgs=rng.choice([1, 2, 8, 256]),
            max_uncommitted_bytes=rng.choice([200, 1000, 4000]),
            snapshot_interval_entries=rng.choice([5, 20, 100, 1000]),
            compaction_keep_entries=rng.choice([0, 5, 50]),
            crash_before_sync_probability=rng.choice([0.0, 0.001, 0.005]),
            broadcast_commit=later.random() < 0.5,
            leader_sends_before_sync=later.random() < 0.5,
            quiet_heartbeats=later.random() < 0.5,
        )
        # A round trip must fit well within an election timeout or nobody gets elected.
        latency_max_steps = rng.randint(1, election_ticks * tick_steps // 4)
        network = NetworkOptions(
            latency_min_steps=rng.randint(1, latency_max_steps),
            latency_max_steps=latency_max_steps,
            loss_probability=rng.choice([0.0, 0.01, 0.05, 0.2]),
            duplicate_probability=rng.choice([0.0, 0.01, 0.1]),
        )
        return cls(
            seed=seed,
            initial_voters=rng.randint(3, 5),
            spare_nodes=rng.randint(0, 3),
            replica=replica,
            tick_drift_steps=rng.randint(0, 2),
            network=network,
            torn_write_probability=rng.choice([0.0, 0.5, 1.0]),
            partition_probability=rng.choice([0.0, 0.005, 0.02, 0.05]),
            partition_ticks_max=rng.choice([10, 50, 150]),
            crash_probability=rng.choice([0.0, 0.003, 0.01, 0.03]),
            leader_fault_probability=rng.choice([0.0, 0.1, 0.3, 0.6]),
            restart_ticks_max=rng.choice([5, 30, 100]),
            propose_probability=rng.choice([0.1, 0.3, 0.8]),
            propose_batch_max=rng.choice([1, 3, 10]),
            read_probability=rng.choice([0.0, 0.05, 0.2]),
            membership_probability=rng.choice([0.0, 0.01, 0.05]),
            transfer_probability=rng.choice([0.0, 0.005, 0.02]),
            safety_ticks=rng.randint(200, 500),
            liveness_ticks_max=30 * election_ticks + 100,
        )


@dataclass(slots=True)
class SimulationReport:
    seed: int
    ticks: int = 0
    liveness_ticks: int = 0
    events: int = 0
    terms_with_leader: int = 0
    writes_invoked: int = 0
    writes_acked: int = 0
    reads_served: int = 0
    crashes: int = 0
    wal_bytes_discarded: int = 0
    snapshots_taken: int = 0
    snapshots_installed: int = 0
    membership_changes: int = 0
    partitions: int = 0
    entries_checked: int = 0
    network: NetworkStats = field(default_factory=NetworkStats)


class SimulationFailure(AssertionError):
    def __init__(self, seed: int, phase: str, tick: int, reason: str, trace: list[str]) -> None:
        self.seed = seed
        self.phase = phase
        self.tick = tick
        self.reason = reason
        lines = [
            f"simulation seed {seed} failed in the {phase} phase at tick {tick}: {reason}",
            f"replay: MESOSLITE_SEED={seed} python -m pytest tests/sim/test_raft_simulation.py"
            " -k seeds",
            f"    or: python -m mesoslite.testing.sim.raft_vopr --seed {seed} --trace",
        ]
        if trace:
            lines.append(f"last {len(trace)} trace lines:")
            lines.extend(trace)
        super().__init__("\n".join(lines))


class RaftSimulation:
    def __init__(self, options: SimulationOptions, *, trace: bool = False) -> None:
        self.options = options
        seeds = random.Random(options.seed)
        self._fault_rng = random.Random(seeds.getrandbits(64))
        self._workload_rng = random.Random(seeds.getrandbits(64))
        self._network_rng = random.Random(seeds.getrandbits(64))
        self._replica_seed_rng = random.Random(seeds.getrandbits(64))
        self.clock = SimClock()
        self.network: SimNetwork[Message] = SimNetwork(
            self.clock, self._network_rng, replace(options.network)
        )
        self.checker = RaftSafetyChecker()
        self.checker.conf_change_listener = self._on_conf_change_committed
        self.history = ClientHistory()
        self.replicas: dict[int, SimReplica] = {}
        self.removed: set[int] = set()  # committed out of the membership: never restarted
        self.abandoned: set[int] = set()  # started to join, but the change was refused
        initial_voters = tuple(range(1, options.initial_voters + 1))
        self.committed_membership = Membership(frozenset(initial_voters), frozenset())
        self._next_node_id = options.initial_voters + 1
        self._last_node_id = options.initial_voters + options.spare_nodes
        self._tick = 0
        self._phase = "safety"
        self._faults_enabled = True
        self._partition_heal_tick: int | None = None
        self._last_leader: tuple[int, int] | None = None  # (node id, term)
        self._op_counter = 0
        self._trace: deque[str] | None = deque(maxlen=_TRACE_LINES) if trace else None
        self.report = SimulationReport(options.seed)
        for node_id in initial_voters:
            replica = self._new_replica(node_id)
            replica.create(bootstrap_snapshot(initial_voters), HardState(term=1, commit=1))
            replica.start()

    # -- plumbing --------------------------------------------------------------------------

    def _log(self, text: str) -> None:
        if self._trace is not None:
            self._trace.append(f"[tick {self._tick}] {text}")

    def _new_replica(self, node_id: int) -> SimReplica:
        options = self.options
        rng = random.Random(self._replica_seed_rng.getrandbits(64))
        drift = rng.randint(-options.tick_drift_steps, options.tick_drift_steps)
        replica = SimReplica(
            node_id,
            clock=self.clock,
            network=self.network,
            disk=SimDisk(
                random.Random(rng.getrandbits(64)),
                DiskOptions(torn_write_probability=options.torn_write_probability),
            ),
            rng=rng,
            options=options.replica,
            checker=self.checker,
            history=self.history,
            tick_interval_steps=max(1, options.replica.tick_steps + drift),
        )
        replica.crash_listener = self._on_crash
        self.replicas[node_id] = replica
        return replica

    def _running(self) -> list[SimReplica]:
        return [replica for replica in self.replicas.values() if replica.running]

    def _leader(self) -> SimReplica | None:
        """The running replica that believes it leads the newest term, if any."""
        best: SimReplica | None = None
        best_term = 0
        for replica in self.replicas.values():
            node = replica.node
            if node is not None and node.is_leader and node.term > best_term:
                best, best_term = replica, node.term
        return best

    def _advance_tick(self) -> None:
        self._tick += 1
        self.clock.run_until(self._tick * self.options.replica.tick_steps)

    # -- faults ----------------------------------------------------------------------------

    def _on_crash(self, replica: SimReplica) -> None:
        self._log(f"node {replica.id} crashed")
        if not self._faults_enabled:
            raise AssertionError(f"node {replica.id} crashed during the liveness phase")
        if not self.options.restart_after_crash:
            return
        delay_ticks = self._fault_rng.randint(1, self.options.restart_ticks_max)
        self.clock.call_later(
            delay_ticks * self.options.replica.tick_steps, lambda: self._restart(replica)
        )

    def _restart(self, replica: SimReplica) -> None:
        if replica.running or replica.id in self.removed or replica.id in self.abandoned:
            return
        self._log(f"node {replica.id} restarts")
        replica.start()

    def _maybe_crash(self) -> None:
        rng = self._fault_rng
        if rng.random() >= self.options.crash_probability:
            return
        running = self._running()
        if running:
            rng.choice(running).crash()

    def _watch_leader(self) -> None:
        """Now and then, strike a leader shortly after it was elected."""
        leader = self._leader()
        if leader is None or leader.node is None:
            return
        seen = (leader.id, leader.node.term)
        if seen == self._last_leader:
            return
        self._last_leader = seen
        rng = self._fault_rng
        if rng.random() >= self.options.leader_fault_probability:
            return
        delay_steps = rng.randint(
            0, self.options.replica.election_ticks * self.options.replica.tick_steps
        )
        crash = rng.random() < 0.5
        duration_ticks = rng.randint(1, self.options.partition_ticks_max)

        def strike() -> None:
            if not self._faults_enabled or not leader.running:
                return
            if crash:
                self._log(f"leader {leader.id} crashed soon after its election")
                leader.crash()
                return
            self._log(f"leader {leader.id} cut off soon after its election")
            self.network.isolate(leader.id, list(self.replicas))
            heal_tick = self._tick + duration_ticks
            self._partition_heal_tick = max(self._partition_heal_tick or 0, heal_tick)
            self.report.partitions += 1

        self.clock.call_later(delay_steps, strike)

    def _maybe_partition(self) -> None:
        rng = self._fault_rng
        if self._partition_heal_tick is not None:
            if self._tick >= self._partition_heal_tick:
                self.network.heal()
                self._partition_heal_tick = None
                self._log("network healed")
            return
        if rng.random() >= self.options.partition_probability:
            return
        node_ids = sorted(self.replicas)
        mode = rng.randrange(3)
        if mode == 0:
            isolated = rng.choice(node_ids)
            self.network.isolate(isolated, node_ids)
            self._log(f"node {isolated} isolated")
        elif mode == 1:
            shuffled = node_ids[:]
            rng.shuffle(shuffled)
            split = rng.randint(1, len(shuffled) - 1)
            groups = [shuffled[:split], shuffled[split:]]
            self.network.partition(groups)
            self._log(f"network partitioned into {groups}")
        else:
            for _ in range(rng.randint(1, len(node_ids))):
                a, b = rng.sample(node_ids, 2)
                self.network.cut_link(a, b)
                self._log(f"link {a} -> {b} cut")
        self.report.partitions += 1
        self._partition_heal_tick = self._tick + rng.randint(1, self.options.partition_ticks_max)

    # -- workload --------------------------------------------------------------------------

    def _next_op(self, prefix: str) -> bytes:
        self._op_counter += 1
        return f"{prefix}{self._op_counter}".encode()

    def _workload(self) -> None:
        rng = self._workload_rng
        options = self.options
        if rng.random() < options.propose_probability:
            leader = self._leader()
            if leader is not None:
                for _ in range(rng.randint(1, options.propose_batch_max)):
                    leader.propose(self._next_op("w"))
                    self.report.writes_invoked += 1
        if rng.random() < options.read_probability:
            running = self._running()
            if running:
                rng.choice(running).read(self._next_op("r"))
        if rng.random() < options.membership_probability:
            self._change_membership()
        if rng.random() < options.transfer_probability:
            leader = self._leader()
            if leader is not None and leader.node is not None:
                voters = [v for v in leader.node.conf_state().voters if v != leader.id]
                if voters:
                    transferee = rng.choice(voters)
                    self._log(f"node {leader.id} transfers leadership to {transferee}")
                    leader.node.transfer_leadership(transferee)
                    leader.poke()

    def _change_membership(self) -> None:
        leader = self._leader()
        if leader is None or leader.node is None:
            return
        rng = self._workload_rng
        node = leader.node
        status = node.status()
        voters = list(status.conf_state.voters)
        learners = list(status.conf_state.learners)
        candidates: list[ConfChange] = []
        if self._next_node_id <= self._last_node_id and len(learners) < MAX_LEARNERS:
            candidates.append(ConfChange(ConfChangeType.ADD_LEARNER, self._next_node_id))
        if len(voters) < MAX_VOTERS:
            candidates.extend(
                ConfChange(ConfChangeType.ADD_VOTER, learner)
                for learner in learners
                if status.progress[learner].match >= status.hard_state.commit
            )
        if len(voters) > MIN_VOTERS:
            candidates.extend(ConfChange(ConfChangeType.REMOVE_NODE, voter) for voter in voters)
        candidates.extend(ConfChange(ConfChangeType.REMOVE_NODE, learner) for learner in learners)
        if not candidates:
            return
        change = rng.choice(candidates)
        joining = change.type is ConfChangeType.ADD_LEARNER
        if joining:
            self._next_node_id += 1
            replica = self._new_replica(change.node_id)
            replica.create(Snapshot(), HardState())
            replica.start()
        try:
            node.propose_conf_change(change)
        except (ConfChangeError, ProposalDroppedError) as refused:
            self._log(f"membership change {change} refused: {refused}")
            if joining:
                self.abandoned.add(change.node_id)
                self.replicas[change.node_id].stop()
            return
        self._log(f"node {leader.id} proposes {change.type.name} {change.node_id}")
        leader.poke()

    def _on_conf_change_committed(self, entry: Entry) -> None:
        change = ConfChange.decode(entry.data)
        try:
            self.committed_membership = apply_conf_change(self.committed_membership, change)
        except ConfChangeError:
            return  # skipped by every replica alike
        self.report.membership_changes += 1
        self._log(f"committed {change.type.name} {change.node_id}: {self.committed_membership}")
        if change.type is ConfChangeType.REMOVE_NODE and change.node_id not in self.removed:
            removed_id = change.node_id
            self.removed.add(removed_id)
            # Let it hear about its removal for a while, as an operator would, then stop it.
            delay_ticks = self._fault_rng.randint(0, 20)

            def retire() -> None:
                self._log(f"node {removed_id} retired")
                self.replicas[removed_id].stop()

            self.clock.call_later(delay_ticks * self.options.replica.tick_steps, retire)

    # -- scripted scenarios ----------------------------------------------------------------

    def run_steps_until(self, condition: Callable[[], bool], max_steps: int) -> None:
        """Advance the clock one step at a time until `condition()` holds."""
        for _ in range(max_steps):
            if condition():
                return
            self.clock.run_until(self.clock.now_steps + 1)
        if not condition():
            raise AssertionError(f"condition not reached within {max_steps} steps")

    def campaign(self, node_id: int) -> None:
        replica = self.replicas[node_id]
        if replica.node is None:
            raise AssertionError(f"node {node_id} is down")
        replica.node.campaign()
        replica.poke()

    # -- phases ----------------------------------------------------------------------------

    def _run_safety_phase(self) -> None:
        for _ in range(self.options.safety_ticks):
            self._advance_tick()
            self._maybe_crash()
            self._maybe_partition()
            self._watch_leader()
            self._workload()

    def _members(self) -> list[SimReplica]:
        membership = self.committed_membership
        return [
            self.replicas[node_id] for node_id in sorted(membership.voters | membership.learners)
        ]

    def _start_liveness_phase(self) -> None:
        self._phase = "liveness"
        self._faults_enabled = False
        self.network.heal()
        self._partition_heal_tick = None
        self.network.options = replace(
            self.network.options, loss_probability=0.0, duplicate_probability=0.0
        )
        for replica in self.replicas.values():
            replica.crash_before_sync_probability = 0.0
            if (
                not replica.running
                and replica.id not in self.removed
                and replica.id not in self.abandoned
            ):
                replica.start()
        self._log("liveness phase: faults stop")

    def _progress_marker(self) -> int:
        total = 0
        for replica in self._members():
            node = replica.node
            if node is not None:
                total += node.last_index + node.committed_index + node.applied_index
        return total

    def _run_liveness_phase(self) -> None:
        """A leader must be elected within `liveness_ticks_max` ticks; then a new entry must
        commit and every member must apply it. That may take as long as the cluster keeps
        making progress (a member far behind catches up at a rate set by message size and
        window, not by the clock), but no stall may last `liveness_ticks_max` ticks and the
        whole phase is capped at `LIVENESS_CAP_FACTOR` times that."""
        self._start_liveness_phase()
        stall_ticks_max = self.options.liveness_ticks_max
        election_ticks = self.options.replica.election_ticks
        probe: tuple[SimReplica, bytes, int] | None = None  # (replica, op, proposed at tick)
        best_marker = -1
        last_progress_tick = self._tick
        for liveness_tick in range(1, LIVENESS_CAP_FACTOR * stall_ticks_max + 1):
            self._advance_tick()
            self.report.liveness_ticks += 1
            if probe is None and liveness_tick > stall_ticks_max and self._leader() is None:
                raise AssertionError(f"liveness: no leader elected within {stall_ticks_max} ticks")
            marker = self._progress_marker()
            if marker > best_marker:
                best_marker, last_progress_tick = marker, self._tick
            elif self._tick - last_progress_tick > stall_ticks_max:
                break
            if probe is not None:
                replica, op, proposed_tick = probe
                record = self.history.writes[op]
                if record.acked_steps is not None:
                    if all(
                        member.node is not None and member.node.applied_index >= record.index
                        for member in self._members()
                    ):
                        return
                    continue
                node = replica.node
                if (
                    node is not None
                    and node.is_leader
                    and (self._tick - proposed_tick < 4 * election_ticks)
                ):
                    continue  # give the probe time to commit
            leader = self._leader()
            if leader is not None:
                op = self._next_op("probe")
                if leader.propose(op):
                    probe = (leader, op, self._tick)
        leader = self._leader()
        state = ", ".join(
            f"{m.id}: {m.node.role.value} term {m.node.term} applied {m.node.applied_index}"
            if m.node is not None
            else f"{m.id}: down"
            for m in self._members()
        )
        raise AssertionError(
            f"liveness: no new entry committed and applied everywhere (no progress for "
            f"{self._tick - last_progress_tick} ticks; leader {leader.id if leader else None}; "
            f"{state})"
        )

    def _final_checks(self) -> None:
        self.history.check_durability(self.checker)
        max_acked = self.history.max_acked_index
        for member in self._members():
            node = member.node
            if node is None or node.applied_index < max_acked:
                raise AssertionError(
                    f"node {member.id} has not applied every acknowledged write ({max_acked})"
                )

    def run(self) -> SimulationReport:
        try:
            self._run_safety_phase()
            self._run_liveness_phase()
            self._final_checks()
        except Exception as failure:
            trace = list(self._trace) if self._trace is not None else []
            raise SimulationFailure(
                self.options.seed,
                self._phase,
                self._tick,
                f"{type(failure).__name__}: {failure}",
                trace,
            ) from failure
        return self._fill_report()

    def _fill_report(self) -> SimulationReport:
        report = self.report
        report.ticks = self._tick
        report.events = self.clock.events_run
        report.terms_with_leader = len(self.checker.leaders_by_term())
        report.writes_acked = len(self.history.acked_writes())
        report.reads_served = len(self.history.served_reads())
        report.entries_checked = self.checker.entries_checked
        report.network = self.network.stats
        for replica in self.replicas.values():
            report.crashes += replica.crashes
            report.wal_bytes_discarded += replica.wal_bytes_discarded
            report.snapshots_taken += replica.snapshots_taken
            report.snapshots_installed += replica.snapshots_installed
        return report


def run_seed(seed: int, *, trace: bool = False) -> SimulationReport:
    """Run the swarm configuration of `seed`; raises `SimulationFailure` on a violation."""
    return RaftSimulation(SimulationOptions.swarm(seed), trace=trace).run()
