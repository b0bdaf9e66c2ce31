"""The replicated log's write path on one disk: the WAL under DurableStorage.persist, with
fsync, 256-byte entries (the etcd op-guide value size).

1. one appender, each append awaited before the next: appends/s and latency p50/p99;
2. 64 appenders in flight (group commit: each fsync covers everything queued):
   appends/s, latency p50/p99, and appends per fsync.

Anchors (shared research): etcd 583 writes/s at 1.6 ms with one client (3 members,
network included); ZooKeeper 21k writes/s, LogCabin 19.5k writes/s batched.

    python -m bench.bench_wal [--appends N] [--appenders N] [--dir PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import anyio

from mesoslite.raft.messages import Entry, HardState
from mesoslite.replicated_log.durable_storage import DurableStorage, open_durable_storage

VALUE = b"v" * 256


class SyncCounter:
    """Counts fdatasync calls (to report appends per fsync)."""

    def __init__(self) -> None:
        self.count = 0
        self._real = os.fdatasync

    def __call__(self, fd: int) -> None:
        self.count += 1
        self._real(fd)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(name: str, latencies_s: list[float], elapsed_s: float, syncs: int) -> None:
    print(
        f"{name}: {len(latencies_s) / elapsed_s:,.0f} appends/s, "
        f"p50 {percentile(latencies_s, 0.50) * 1e3:.3f} ms, "
        f"p99 {percentile(latencies_s, 0.99) * 1e3:.3f} ms, "
        f"{len(latencies_s) / max(syncs, 1):.1f} appends/fsync"
    )


async def single_appender(storage: DurableStorage, appends: int, counter: SyncCounter) -> None:
    latencies_s: list[float] = []
    first = storage.last_index() + 1
    syncs_before = counter.count
    started = time.perf_counter()
    for index in range(first, first + appends):
        began = time.perf_counter()
        await storage.persist(
            entries=[Entry(1, index, VALUE)], hard_state=HardState(1, 1, index - 1)
        )
        latencies_s.append(time.perf_counter() - began)
    elapsed_s = time.perf_counter() - started
    report("1 appender  ", latencies_s, elapsed_s, counter.count - syncs_before)


async def concurrent_appenders(
    storage: DurableStorage, appends: int, appenders: int, counter: SyncCounter
) -> None:
    latencies_s: list[float] = []
    next_index = storage.last_index() + 1
    per_appender = appends // appenders

    async def appender() -> None:
        nonlocal next_index
        for _ in range(per_appender):
            index = next_index  # taken before awaiting: writes queue in index order
            next_index += 1
            began = time.perf_counter()
            await storage.persist(entries=[Entry(1, index, VALUE)])
            latencies_s.append(time.perf_counter() - began)

    syncs_before = counter.count
    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(appenders):
            group.start_soon(appender)
    elapsed_s = time.perf_counter() - started
    report(f"{appenders} appenders", latencies_s, elapsed_s, counter.count - syncs_before)


async def run(directory: Path, appends: int, appenders: int) -> None:
    counter = SyncCounter()
    os.fdatasync = counter  # type: ignore[assignment]  # the bench's own process only
    async with open_durable_storage(directory) as storage:
        await single_appender(storage, appends, counter)
        await concurrent_appenders(storage, appends * 4, appenders, counter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=2000, help="appends of the 1-appender run")
    parser.add_argument("--appenders", type=int, default=64)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the WAL")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-wal-", dir=args.dir))
    try:
        statvfs = os.statvfs(directory)
        print(f"WAL in {directory} ({statvfs.f_bsize}-byte blocks), {os.cpu_count()} CPUs")
        anyio.run(run, directory, args.appends, args.appenders)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
