"""Failover: kill -9 the leading master of a 3-master mesoslite cluster on 127.0.0.1 and
time until a new leader serves a scheduler SUBSCRIBE (200 and the event stream), over
`--trials` kills (each time the killed master restarts from its data directory and the
cluster heals first); p50/p99. The same run kills the leader of a 3-member etcd (time to
the first successful put) and of a 3-node ZooKeeper (time to the first successful
setData), each at default settings, and prints the ratios.

    python -m bench.bench_failover [--trials 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.peers import EtcdCluster, ZooKeeperCluster
from tests.integration.ha.cluster import HaCluster, free_port_base

SUBSCRIBE = {
    "type": "SUBSCRIBE",
    "subscribe": {"framework_info": {"user": "bench", "name": "failover-bench"}},
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def subscribed(client: httpx.Client, address: str) -> str | None:
    """SUBSCRIBE at `address`: None once served, else where to try next."""
    try:
        with client.stream(
            "POST",
            f"http://{address}/api/v1/scheduler",
            json=SUBSCRIBE,
            headers={"Accept": "application/json"},
        ) as response:
            if response.status_code == 200:
                next(response.iter_raw())  # the SUBSCRIBED event
                return None
            if response.status_code == 307:
                return response.headers["location"].lstrip("/").split("/", 1)[0]
    except httpx.HTTPError:
        pass
    return ""


def mesoslite_trials(trials: int) -> list[float]:
    root = Path(tempfile.mkdtemp(prefix="mesoslite-bench-"))
    cluster = HaCluster(root, ["127.0.0.1"] * 3, base_port=free_port_base(), netns=[None] * 3)
    durations = []
    try:
        cluster.start()
        with httpx.Client(timeout=httpx.Timeout(1.0)) as client:
            for _ in range(trials):
                cluster.wait_until(cluster.healed, "the cluster to heal")
                victim = cluster.leader()
                assert victim is not None
                others = [n.master_address for n in cluster.masters if n is not victim]
                victim.kill()
                started = time.perf_counter()
                target = others[0]
                while True:
                    answer = subscribed(client, target)
                    if answer is None:
                        break
                    if answer in others:
                        target = answer
                    else:
                        target = others[(others.index(target) + 1) % 2]
                        time.sleep(0.005)
                durations.append(time.perf_counter() - started)
                cluster.restart(victim)
        return durations
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def etcd_trials(trials: int) -> list[float]:
    etcd = EtcdCluster()
    durations = []
    try:
        etcd.start()
        for trial in range(trials):
            deadline = time.monotonic() + 60
            while (leader := etcd.leader()) is None or not all(
                etcd.write_once(i, "warm", b"x") for i in range(3)
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("etcd did not heal")
                time.sleep(0.05)
            others = [i for i in range(3) if i != leader]
            etcd.kill(leader)
            started = time.perf_counter()
            attempt = 0
            while not etcd.write_once(others[attempt % 2], f"k{trial}", b"v", timeout_s=0.3):
                attempt += 1
            durations.append(time.perf_counter() - started)
            etcd.restart_killed()
        return durations
    finally:
        etcd.close()


def zookeeper_trials(trials: int) -> list[float]:
    from kazoo.client import KazooClient

    zookeeper = ZooKeeperCluster()
    durations = []
    try:
        zookeeper.start()
        for trial in range(trials):
            deadline = time.monotonic() + 120
            while (leader := zookeeper.leader()) is None or any(
                zookeeper.mode(i) is None for i in range(3)
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("ZooKeeper did not heal")
                time.sleep(0.05)
            others = [i for i in range(3) if i != leader]
            client = KazooClient(hosts=zookeeper.hosts(others), timeout=10.0)
            client.start()
            client.ensure_path("/bench")
            zookeeper.kill(leader)
            started = time.perf_counter()
            while True:
                try:
                    client.set("/bench", f"{trial}".encode())
                    break
                except Exception:
                    time.sleep(0.005)
            durations.append(time.perf_counter() - started)
            client.stop()
            client.close()
            zookeeper.restart_killed()
        return durations
    finally:
        zookeeper.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--peers", default="etcd,zookeeper")
    args = parser.parse_args()
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
        f"{args.trials} kill -9 trials each, 3 members on 127.0.0.1"
    )
    runs = {"mesoslite": mesoslite_trials, "etcd": etcd_trials, "zookeeper": zookeeper_trials}
    wanted = ["mesoslite", *[p for p in args.peers.split(",") if p]]
    results = {}
    for name in wanted:
        durations = runs[name](args.trials)
        results[name] = (statistics.median(durations), percentile(durations, 0.99))
        print(
            f"{name:<10} failover p50 {results[name][0]:.3f} s  p99 {results[name][1]:.3f} s "
            f"(min {min(durations):.3f}, max {max(durations):.3f})",
            flush=True,
        )
    ours = results["mesoslite"]
    for peer in wanted[1:]:
        theirs = results[peer]
        print(
            f"mesoslite / {peer}: p50 x{ours[0] / theirs[0]:.2f}, p99 x{ours[1] / theirs[1]:.2f}"
            " (<= 1 is as fast or faster)"
        )


if __name__ == "__main__":
    main()
