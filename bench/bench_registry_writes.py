"""Registry writes through the network path, fsync on, 3 members on 127.0.0.1:
latency with 1 client (sequential), throughput with 64 in flight; the same against a
3-member etcd and a 3-node ZooKeeper in the same run, printed as ratios.

mesoslite's write is an operator UPDATE_WEIGHTS on the leading master (HTTP JSON),
answered once the registry entry is committed by a quorum (fsync on each). etcd's is a
256-byte put through its HTTP JSON gateway; ZooKeeper's a 256-byte setData (kazoo).
All clients are Python, so each side pays a like client cost.

    python -m bench.bench_registry_writes [--writes 500] [--throughput-writes 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
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


def sequential(write: Callable[[int], None], count: int) -> list[float]:
    for number in range(20):  # warm-up: connections, JIT, caches
        write(number)
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


def bench_mesoslite(writes: int, throughput_writes: int) -> tuple[list[float], float]:
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

            latencies = sequential(write, writes)

        return latencies, in_flight(url, weights_body, throughput_writes)
    finally:
        cluster.close()


# ---------------------------------------------------------------- etcd


def bench_etcd(writes: int, throughput_writes: int) -> tuple[list[float], float]:
    etcd = EtcdCluster()
    try:
        etcd.start()
        leader = etcd.leader()
        assert leader is not None
        url = etcd.put_url(leader)
        with httpx.Client(timeout=10.0) as client:

            def write(number: int) -> None:
                response = client.post(url, json=etcd.put_body(f"k{number % 64}", VALUE))
                assert response.status_code == 200, response.text

            latencies = sequential(write, writes)

        def body(number: int) -> dict[str, str]:
            return etcd.put_body(f"k{number % 64}", VALUE)

        return latencies, in_flight(url, body, throughput_writes)
    finally:
        etcd.close()


# ---------------------------------------------------------------- ZooKeeper


def bench_zookeeper(writes: int, throughput_writes: int) -> tuple[list[float], float]:
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

            latencies = sequential(write, writes)
            done = threading.Semaphore(0)
            window = threading.Semaphore(IN_FLIGHT)
            started = time.perf_counter()
            for number in range(throughput_writes):
                window.acquire()
                result = client.set_async(f"/bench/k{number % 64}", VALUE)
                result.rawlink(lambda _result: (window.release(), done.release()))
            for _ in range(throughput_writes):
                done.acquire()
            rate = throughput_writes / (time.perf_counter() - started)
        finally:
            client.stop()
            client.close()
        return latencies, rate
    finally:
        zookeeper.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--throughput-writes", type=int, default=4000)
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"kernel {platform.release()}, 3 members each on 127.0.0.1, fsync on"
    )
    results = {}
    for name, run in (
        ("mesoslite", bench_mesoslite),
        ("etcd", bench_etcd),
        ("zookeeper", bench_zookeeper),
    ):
        latencies, rate = run(args.writes, args.throughput_writes)
        results[name] = (statistics.median(latencies), percentile(latencies, 0.99), rate)
        p50, p99, rate = results[name]
        print(
            f"{name:<10} 1 client: p50 {p50 * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms   "
            f"{IN_FLIGHT} in flight: {rate:8.0f} writes/s",
            flush=True,
        )
    ours = results["mesoslite"]
    for peer in ("etcd", "zookeeper"):
        theirs = results[peer]
        print(
            f"mesoslite / {peer}: 1-client p50 latency x{ours[0] / theirs[0]:.2f} "
            f"(<= 1 is as fast or faster), throughput x{ours[2] / theirs[2]:.2f}"
        )


if __name__ == "__main__":
    main()
