"""Benchmark the Raft simulator and the pure Raft core. Prints figures; asserts nothing.

    python -m bench.bench_raft_sim [--seeds 200] [--proposals 200000]

- simulator: seeds per second, simulated ticks per second and events per second
  (one process, swarm configurations, faults on);
- core: proposals per second through `RawNode` with `MemoryStorage` and no I/O at all,
  for one node and for three nodes exchanging messages in memory, with one proposal per
  Ready cycle and with batches of proposals per cycle.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from mesoslite.raft import (
    Config,
    HardState,
    MemoryStorage,
    Message,
    RawNode,
    bootstrap_snapshot,
)
from mesoslite.testing.sim import run_seed

PAYLOAD = b"x" * 256  # the etcd benchmark's value size


def bench_simulator(seed_count: int) -> None:
    started = time.perf_counter()
    ticks = events = 0
    for seed in range(seed_count):
        report = run_seed(seed)
        ticks += report.ticks
        events += report.events
    elapsed_s = time.perf_counter() - started
    print(
        f"simulator: {seed_count} seeds in {elapsed_s:.1f} s: "
        f"{seed_count / elapsed_s:.1f} seeds/s, {ticks / elapsed_s:,.0f} ticks/s "
        f"(cluster ticks), {events / elapsed_s:,.0f} events/s"
    )


def _cluster(node_ids: list[int]) -> dict[int, tuple[RawNode, MemoryStorage]]:
    nodes = {}
    for node_id in node_ids:
        storage = MemoryStorage()
        storage.apply_snapshot(bootstrap_snapshot(node_ids))
        storage.set_hard_state(HardState(term=1, commit=1))
        config = Config(id=node_id, storage=storage, rng=random.Random(node_id), applied_index=1)
        nodes[node_id] = (RawNode(config), storage)
    return nodes


def _drain(nodes: dict[int, tuple[RawNode, MemoryStorage]]) -> int:
    """Run Ready cycles and deliver messages until quiet; returns entries applied."""
    applied = 0
    while True:
        mailbox: list[Message] = []
        for node, storage in nodes.values():
            while node.has_ready():
                ready = node.ready()
                if ready.snapshot is not None:
                    storage.apply_snapshot(ready.snapshot)
                storage.append(ready.entries)
                if ready.hard_state is not None:
                    storage.set_hard_state(ready.hard_state)
                mailbox.extend(ready.messages)
                applied += len(ready.committed_entries)
                node.advance(ready)
        if not mailbox:
            return applied
        for message in mailbox:
            nodes[message.to_id][0].step(message)


def bench_core(node_count: int, proposal_count: int, batch: int) -> None:
    node_ids = list(range(1, node_count + 1))
    nodes = _cluster(node_ids)
    leader = nodes[1][0]
    leader.campaign()
    _drain(nodes)
    assert leader.is_leader
    started = time.perf_counter()
    for _ in range(proposal_count // batch):
        for _ in range(batch):
            leader.propose(PAYLOAD)
        _drain(nodes)
    elapsed_s = time.perf_counter() - started
    committed = leader.committed_index
    assert all(node.applied_index == committed for node, _ in nodes.values())
    per_s = proposal_count / elapsed_s
    print(
        f"core: {node_count} node(s), {batch:>3} proposal(s) per Ready cycle: "
        f"{per_s:,.0f} proposals/s ({1e6 / per_s:.1f} us each, committed and applied "
        f"on every node)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--proposals", type=int, default=100_000)
    arguments = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}")
    bench_simulator(arguments.seeds)
    for node_count in (1, 3):
        for batch in (1, 10, 100):
            bench_core(node_count, arguments.proposals, batch)


if __name__ == "__main__":
    main()
