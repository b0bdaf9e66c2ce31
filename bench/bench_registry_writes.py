"""Registry writes through the network path, fsync on, 3 members on 127.0.0.1:
latency with 1 client (sequential), throughput with 64 in flight; the same against a
3-member etcd and a 3-node ZooKeeper in the same run, printed as ratios. The three run
side by side and take turns in rounds, so that other load on the machine falls on each
of them alike.

mesoslite's write is an operator UPDATE_WEIGHTS on the leading master (HTTP JSON),
answered once the registry entry is committed by a quorum (fsync on each). etcd's is a
256-byte put through its HTTP JSON gateway; ZooKeeper's a 256-byte setData (kazoo).
All clients are Python, so each side pays a like client cost.

    python -m bench.bench_registry_writes [--writes 600] [--throughput-writes 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench.peers import EtcdCluster, ZooKeeperCluster
from mesoslite.client.http11 import CallPool
from tests.integration.ha.cluster import HaCluster, free_port_base

IN_FLIGHT = 64
VALUE = b"v" * 256


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class System:
    """One replicated store under test: a 1-client write, and a run at IN_FLIGHT."""

    name: str
    write: Callable[[int], None]
    throughput: Callable[[int], float]


def sequential(write: Callable[[int], None], count: int, *, warm_up: bool = False) -> list[float]:
    if warm_up:  # connections, caches
        for number in range(count):
            write(number)
        return []
    latencies = []
    for number in range(count):
        started = time.perf_counter()
        write(number)
        latencies.append(time.perf_counter() - started)
    return latencies


def in_flight(url: str, body: Callable[[int], dict[str, Any]], count: int) -> float:
    """Writes/s with IN_FLIGHT POSTs of JSON `body(number)` outstanding at all times.

    The client is mesoslite's small keep-alive HTTP/1.1 pool (~0.1 ms of CPU per call)
    rather than httpx, whose pool spends ~5-7 ms of CPU per request with 64 requests in
    flight: on 2 CPUs that capped every HTTP server (etcd too) at ~130-200 writes/s."""
    parsed = httpx.URL(url)
    assert parsed.host and parsed.port

    async def run() -> float:
        pool = CallPool(parsed.host, parsed.port, timeout_s=30.0, max_connections=IN_FLIGHT)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        counter = iter(range(count))

        async def worker() -> None:
            for number in counter:
                data = json.dumps(body(number)).encode()
                response = await pool.post(parsed.raw_path.decode(), data, headers)
                assert response.status_code == 200, response.text

        try:
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for _ in range(IN_FLIGHT):
                    group.start_soon(worker)
            return count / (time.perf_counter() - started)
        finally:
            await pool.aclose()

    return anyio.run(run)


# ---------------------------------------------------------------- mesoslite


def weights_body(number: int) -> dict[str, object]:
    weight = float(number % 1000 + 1)
    return {
        "type": "UPDATE_WEIGHTS",
        "update_weights": {"weight_infos": [{"role": f"r{number % 64}", "weight": weight}]},
    }


@contextlib.contextmanager
def mesoslite_system() -> Iterator[System]:
    root = Path(tempfile.mkdtemp(prefix="mesoslite-bench-"))
    cluster = HaCluster(root, ["127.0.0.1"] * 3, base_port=free_port_base(), netns=[None] * 3)
    try:
        cluster.start()
        leader = cluster.leader()
        assert leader is not None
        url = f"http://{leader.master_address}/api/v1"
        with httpx.Client(timeout=10.0) as client:

            def write(number: int) -> None:
                response = client.post(url, json=weights_body(number))
                assert response.status_code == 200, response.text

            yield System("mesoslite", write, lambda count: in_flight(url, weights_body, count))
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- etcd


@contextlib.contextmanager
def etcd_system() -> Iterator[System]:
    etcd = EtcdCluster()
    try:
        etcd.start()
        leader = etcd.leader()
        assert leader is not None
        url = etcd.put_url(leader)

        def body(number: int) -> dict[str, str]:
            return etcd.put_body(f"k{number % 64}", VALUE)

        with httpx.Client(timeout=10.0) as client:

            def write(number: int) -> None:
                response = client.post(url, json=body(number))
                assert response.status_code == 200, response.text

            yield System("etcd", write, lambda count: in_flight(url, body, count))
    finally:
        etcd.close()


# ---------------------------------------------------------------- ZooKeeper


@contextlib.contextmanager
def zookeeper_system() -> Iterator[System]:
    from kazoo.client import KazooClient

    zookeeper = ZooKeeperCluster()
    try:
        zookeeper.start()
        client = KazooClient(hosts=zookeeper.hosts([0, 1, 2]), timeout=10.0)
        client.start()
        try:
            for key in range(64):
                client.ensure_path(f"/bench/k{key}")

            def write(number: int) -> None:
                client.set(f"/bench/k{number % 64}", VALUE)

            def throughput(count: int) -> float:
                done = threading.Semaphore(0)
                window = threading.Semaphore(IN_FLIGHT)
                started = time.perf_counter()
                for number in range(count):
                    window.acquire()
                    result = client.set_async(f"/bench/k{number % 64}", VALUE)
                    result.rawlink(lambda _result: (window.release(), done.release()))
                for _ in range(count):
                    done.acquire()
                return count / (time.perf_counter() - started)

            yield System("zookeeper", write, throughput)
        finally:
            client.stop()
            client.close()
    finally:
        zookeeper.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=600, help="1-client writes per system")
    parser.add_argument(
        "--throughput-writes", type=int, default=4000, help="writes per system at 64 in flight"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds the writes are split into"
    )
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"kernel {platform.release()}, 3 members each on 127.0.0.1, fsync on; "
        f"{args.rounds} interleaved rounds, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    latencies: dict[str, list[float]] = {}
    rates: dict[str, list[float]] = {}
    with contextlib.ExitStack() as stack:
        systems = [
            stack.enter_context(factory())
            for factory in (mesoslite_system, etcd_system, zookeeper_system)
        ]
        # All three run at once and take turns, a block at a time, so that a load spike
        # on this shared machine falls on every system alike, not on one of them.
        for system in systems:
            sequential(system.write, 20, warm_up=True)
        for _ in range(args.rounds):
            for system in systems:
                block = sequential(system.write, args.writes // args.rounds)
                latencies.setdefault(system.name, []).extend(block)
            for system in systems:
                rate = system.throughput(args.throughput_writes // args.rounds)
                rates.setdefault(system.name, []).append(rate)
    results = {}
    for name, values in latencies.items():
        results[name] = (
            statistics.median(values),
            percentile(values, 0.99),
            statistics.median(rates[name]),
        )
        p50, p99, rate = results[name]
        print(
            f"{name:<10} 1 client: p50 {p50 * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms   "
            f"{IN_FLIGHT} in flight: {rate:8.0f} writes/s "
            f"(rounds: {', '.join(f'{r:.0f}' for r in rates[name])})",
            flush=True,
        )
    ours = results["mesoslite"]
    for peer in ("etcd", "zookeeper"):
        theirs = results[peer]
        print(
            f"mesoslite / {peer}: 1-client p50 latency x{ours[0] / theirs[0]:.2f} "
            f"(<= 1 is as fast or faster), throughput x{ours[2] / theirs[2]:.2f}"
        )
    print(f"# load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
