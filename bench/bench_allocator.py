"""Allocation throughput of the DRF allocator, in process (no master, no network).

The workload follows Mesos' `HierarchicalAllocator_BENCHMARK_Test.DeclineOffers`: every
agent has `cpus:24;mem:4096;disk:4096;ports:[31000-32000]`, of which
`cpus:16;mem:2014;disk:1024` plus a port range is already used by a framework (round
robin), all frameworks in one role. Reported, each as the median over rounds:

* decline rounds: every agent is offered to the next framework that has not declined it
  and every offer is declined with a year-long filter (Mesos' metric: rounds 0-9);
* full pass, all filtered: once every framework has declined every agent, every agent is
  examined again (what Mesos does on each allocation interval) and nothing is offered;
* incremental pass: one task ends on one agent, the event-driven pass looks at that agent
  only and offers what came back;
* idle pass: nothing changed.

Times are the process's CPU time (the allocator is single-threaded and does no I/O), so
that other work on a shared machine does not inflate them.

    python -m bench.bench_allocator [--agents 1000] [--frameworks 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time
from collections.abc import Callable

from mesoslite.master.allocator import Allocation, Allocator
from mesoslite.resources import Resources, parse_resources

AGENT_TOTAL = "cpus:24;mem:4096;disk:4096;ports:[31000-32000]"
USED_PER_AGENT = "cpus:16;mem:2014;disk:1024;ports:[31000-31499]"
TASK = "cpus:1;mem:64"
ROLE = "*"
YEAR_S = 365 * 24 * 3600.0


# CPU time of this (single-threaded) process: on a shared machine, wall time also counts
# the time other processes hold the CPU.
_clock = time.process_time


def timed(action: Callable[[], object]) -> float:
    started = _clock()
    action()
    return _clock() - started


def timed_pass(allocator: Allocator, now: float) -> tuple[list[Allocation], float]:
    started = _clock()
    allocations = allocator.allocate(now)
    return allocations, _clock() - started


def build(agent_count: int, framework_count: int, seed: int) -> tuple[Allocator, float]:
    allocator = Allocator(rng=random.Random(seed))
    for index in range(framework_count):
        allocator.add_framework(f"fw-{index:05d}", [ROLE], capabilities=[])
    total = parse_resources(AGENT_TOTAL).to_list()
    used = parse_resources(USED_PER_AGENT).to_list()

    def add_agents() -> None:
        for index in range(agent_count):
            framework_id = f"fw-{index % framework_count:05d}"
            allocator.add_agent(f"agent-{index:06d}", total, used={(framework_id, ROLE): used})

    return allocator, timed(add_agents)


def decline_all(allocator: Allocator, allocations: list[Allocation], now: float) -> None:
    for allocation in allocations:
        allocator.recover(
            allocation.framework_id,
            allocation.agent_id,
            allocation.resources,
            refuse_seconds=YEAR_S,
            now=now,
        )


def run(agent_count: int, framework_count: int, rounds: int, seed: int) -> None:
    allocator, add_agents_s = build(agent_count, framework_count, seed)
    print(f"{agent_count} agents x {framework_count} frameworks, one role")
    print(f"  add agents:               {add_agents_s * 1000:9.1f} ms")

    # Mesos' DeclineOffers rounds: every agent is offered (to the next framework that has
    # not declined it yet) and every offer is declined with a year-long filter.
    round_times: list[float] = []
    round_offers: list[int] = []
    now = 0.0
    while len(round_times) < framework_count + 1:
        made, seconds = timed_pass(allocator, now)
        round_times.append(seconds)
        round_offers.append(len(made))
        if not made:
            break
        decline_all(allocator, made, now=now)
        now += 1.0
    first_rounds = round_times[: min(10, len(round_times))]
    median_s = statistics.median(first_rounds)
    print(
        f"  decline round (0-{len(first_rounds) - 1}):     {median_s * 1000:9.1f} ms  "
        f"(median; {round_offers[0]} offers in round 0, "
        f"{round_offers[0] / round_times[0]:,.0f} offers/s)"
    )
    print(f"  rounds until all declined: {len(round_times) - 1:8d}")

    declined: list[float] = []
    for _ in range(rounds):
        allocator.examine_all_agents()
        declined.append(timed_pass(allocator, now)[1])
    print(
        f"  full pass, all filtered:  {statistics.median(declined) * 1000:9.1f} ms  "
        f"(median of {rounds}, {allocator.last_pass.agents_examined} agents examined, "
        f"{allocator.last_pass.allocations} offers)"
    )

    # A framework's task ends: its resources come back on one agent, nobody filters them
    # (the refusal filters cover only what was declined), and the next pass offers them.
    rng = random.Random(seed)
    task = parse_resources(TASK).to_list()
    incremental: list[float] = []
    for _ in range(max(rounds, 20)):
        agent_index = rng.randrange(agent_count)
        framework_id = f"fw-{agent_index % framework_count:05d}"
        allocator.recover(
            framework_id, f"agent-{agent_index:06d}", task, refuse_seconds=None, now=now
        )
        incremental.append(timed_pass(allocator, now)[1])
    print(
        f"  incremental pass:         {statistics.median(incremental) * 1e6:9.1f} us  "
        f"(median of {len(incremental)}, {allocator.last_pass.agents_examined} agent examined, "
        f"{allocator.last_pass.allocations} offer)"
    )

    idle = [timed_pass(allocator, now)[1] for _ in range(100)]
    print(f"  idle pass:                {statistics.median(idle) * 1e6:9.1f} us")

    arithmetic = Resources(parse_resources(AGENT_TOTAL))
    chunk = parse_resources(TASK)
    count = 20_000
    spent = timed(lambda: [(arithmetic - chunk).contains(chunk) for _ in range(count)])
    print(f"  Resources '-' + contains: {spent / count * 1e6:9.2f} us per pair")

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS:                 {peak_rss_mb:9.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--frameworks", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    run(arguments.agents, arguments.frameworks, arguments.rounds, arguments.seed)


if __name__ == "__main__":
    main()
