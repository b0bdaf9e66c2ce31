"""End-to-end fixtures: a real `mesoslite up` process, as a user starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port

__all__ = ["RunningCluster", "free_port", "start_cluster", "stop_cluster"]


@dataclass
class RunningCluster:
    master: str
    agent: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_cluster(tmp_path: Path, *extra: str) -> RunningCluster:
    master_port, agent_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    log_path = tmp_path / "mesoslite.log"
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mesoslite",
                "up",
                "--data-dir",
                str(data_dir),
                "--port",
                str(master_port),
                "--agent-port",
                str(agent_port),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    cluster = RunningCluster(
        f"127.0.0.1:{master_port}", f"127.0.0.1:{agent_port}", data_dir, process, log_path
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mesoslite up exited early:\n{cluster.log()}")
        if "export MESOS_MASTER=" in cluster.log():
            return cluster
        time.sleep(0.02)
    stop_cluster(cluster)
    raise RuntimeError(f"mesoslite up was not ready in 30 s:\n{cluster.log()}")


def stop_cluster(cluster: RunningCluster) -> None:
    if cluster.process.poll() is None:
        cluster.process.send_signal(signal.SIGINT)
        try:
            cluster.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.process.pid, signal.SIGKILL)
            cluster.process.wait()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RunningCluster]:
    running = start_cluster(tmp_path)
    try:
        yield running
    finally:
        stop_cluster(running)


@pytest.fixture
def master_http(cluster: RunningCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{cluster.master}", timeout=10) as client:
        yield client
