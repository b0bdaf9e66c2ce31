"""Run Raft simulation seeds from the command line.

    python -m mesoslite.testing.sim.raft_vopr --seed 1234 --trace   # replay one seed
    python -m mesoslite.testing.sim.raft_vopr --first 0 --count 5000 --workers 4

Seeds run in worker processes when --workers > 1; each seed is deterministic, so the
order in which they finish does not matter.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from mesoslite.testing.sim.raft_simulation import SimulationFailure, run_seed

__all__ = ["SeedOutcome", "main", "run_one", "run_seeds"]


@dataclass(slots=True, frozen=True)
class SeedOutcome:
    seed: int
    failure: str | None  # None: passed
    ticks: int
    events: int


def run_one(seed: int) -> SeedOutcome:
    try:
        report = run_seed(seed)
    except SimulationFailure as failure:
        return SeedOutcome(seed, str(failure), 0, 0)
    return SeedOutcome(seed, None, report.ticks, report.events)


def run_seeds(seeds: Iterable[int], workers: int) -> list[SeedOutcome]:
    """Every seed's outcome, in seed order."""
    seed_list = list(seeds)
    if workers <= 1 or len(seed_list) < 2 * workers:
        return [run_one(seed) for seed in seed_list]
    chunk_size = max(1, len(seed_list) // (workers * 8))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run_one, seed_list, chunksize=chunk_size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, help="run this one seed")
    parser.add_argument("--trace", action="store_true", help="print the trace of a failure")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    arguments = parser.parse_args(argv)
    if arguments.seed is not None:
        try:
            report = run_seed(arguments.seed, trace=arguments.trace)
        except SimulationFailure as failure:
            print(failure)
            return 1
        print(report)
        return 0
    seeds = range(arguments.first, arguments.first + arguments.count)
    outcomes = run_seeds(seeds, arguments.workers)
    failures = [outcome for outcome in outcomes if outcome.failure is not None]
    for outcome in failures:
        print(outcome.failure, end="\n\n")
    ticks = sum(outcome.ticks for outcome in outcomes)
    print(f"{len(outcomes)} seeds, {len(failures)} failed, {ticks} ticks simulated")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
