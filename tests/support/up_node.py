"""A real `mesoslite up` process, started as a user starts it and stopped with Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

__all__ = ["UpNode", "start_up", "stop_up"]


@dataclass
class UpNode:
    master: str
    agent: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_up(workdir: Path, *extra: str, ready_limit_s: float = 60.0) -> UpNode:
    """`mesoslite up` with its data and log under `workdir`; returns once it printed
    its export line (raises with the log if it exits or takes longer)."""
    master_port, agent_port = free_port(), free_port()
    data_dir = workdir / "data"
    log_path = workdir / "mesoslite.log"
    command = [
        *(sys.executable, "-m", "mesoslite", "up"),
        *("--data-dir", str(data_dir)),
        *("--port", str(master_port), "--agent-port", str(agent_port)),
        *extra,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    node = UpNode(
        f"127.0.0.1:{master_port}", f"127.0.0.1:{agent_port}", data_dir, process, log_path
    )
    deadline = time.monotonic() + ready_limit_s
    while "export MESOS_MASTER=" not in node.log():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_up(node)
            raise RuntimeError(f"mesoslite up did not start:\n{node.log()}")
        time.sleep(0.02)
    return node


def stop_up(node: UpNode, timeout_s: float = 30.0) -> None:
    """Ctrl-C: the node stops every task and container it started."""
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGINT)
        try:
            node.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait()
