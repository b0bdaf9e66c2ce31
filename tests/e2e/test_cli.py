"""The command line as a user runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import UpNode, free_port, start_up, stop_up

MESOSLITE = [sys.executable, "-m", "mesoslite"]


def run_cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MESOSLITE, *args], capture_output=True, text=True, timeout=timeout_s)


def test_up_prints_urls_and_export_line(cluster: UpNode) -> None:
    log = cluster.log()
    assert f"http://{cluster.master}" in log
    assert f"http://{cluster.agent}" in log
    assert f"export MESOS_MASTER={cluster.master}" in log


def test_execute_wait_returns_the_task_exit_status(cluster: UpNode) -> None:
    ok = run_cli(
        "execute", "--master", cluster.master, "--name", "hello", "--command", "echo hi", "--wait"
    )
    assert ok.returncode == 0, ok.stderr
    assert "TASK_FINISHED" in ok.stdout
    failed = run_cli(
        "execute", "--master", cluster.master, "--name", "bad", "--command", "exit 42", "--wait"
    )
    assert failed.returncode == 42
    assert "TASK_FAILED" in failed.stdout


def test_execute_passes_environment(cluster: UpNode) -> None:
    result = run_cli(
        "execute",
        "--master",
        cluster.master,
        "--name",
        "env",
        "--command",
        'test "$GREETING" = hello',
        "--env",
        "GREETING=hello",
        "--wait",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_input_gets_one_line_errors(tmp_path: Path) -> None:
    bad_resources = run_cli(
        "execute",
        "--master",
        "127.0.0.1:1",
        "--name",
        "x",
        "--command",
        "true",
        "--resources",
        "cpus:lots",
    )
    assert bad_resources.returncode != 0
    assert "Traceback" not in bad_resources.stderr
    assert "--resources" in bad_resources.stderr

    unreachable = run_cli(
        "execute", "--master", f"127.0.0.1:{free_port()}", "--name", "x", "--command", "true"
    )
    assert unreachable.returncode == 1
    assert "cannot reach the master" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr

    zk = run_cli("agent", "--master", "zk://localhost:2181/mesos")
    assert zk.returncode == 1
    assert "ZooKeeper" in zk.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("up", "--ephemeral", "--port", str(port), "--agent-port", str(free_port()))
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_detach_and_down(tmp_path: Path) -> None:
    data_dir = tmp_path / "detached"
    master_port = free_port()
    started = run_cli(
        "up",
        "--detach",
        "--data-dir",
        str(data_dir),
        "--port",
        str(master_port),
        "--agent-port",
        str(free_port()),
    )
    try:
        assert started.returncode == 0, started.stderr
        assert f"export MESOS_MASTER=127.0.0.1:{master_port}" in started.stdout
        again = run_cli("up", "--detach", "--data-dir", str(data_dir))
        assert again.returncode == 1
        assert "already runs" in again.stderr
    finally:
        stopped = run_cli("down", "--data-dir", str(data_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert run_cli("down", "--data-dir", str(data_dir)).returncode == 1


def _pids_running(command_fragment: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if command_fragment in cmdline:
            pids.append(int(entry.name))
    return pids


def test_ctrl_c_stops_every_task(tmp_path: Path) -> None:
    cluster = start_up(tmp_path)
    marker = f"sleep {600 + os.getpid() % 97}.{time.time_ns() % 1000}"
    try:
        launched = run_cli(
            "execute", "--master", cluster.master, "--name", "sleeper", "--command", marker
        )
        assert launched.returncode == 0, launched.stdout + launched.stderr
        assert _pids_running(marker), "the task should be running"
    finally:
        cluster.process.send_signal(signal.SIGINT)
        cluster.process.wait(timeout=30)
        stop_up(cluster)
    deadline = time.monotonic() + 5
    while _pids_running(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pids_running(marker)


def test_agent_process_registers_with_a_master_process(tmp_path: Path) -> None:
    """`mesoslite master` and `mesoslite agent --master` as two processes (HTTP between
    them), then a task through them."""
    master_port, agent_port = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for args in (
            ["master", "--data-dir", str(tmp_path / "m"), "--port", str(master_port)],
            [
                "agent",
                "--master",
                f"127.0.0.1:{master_port}",
                "--data-dir",
                str(tmp_path / "a"),
                "--port",
                str(agent_port),
            ],
        ):
            processes.append(
                subprocess.Popen(
                    [*MESOSLITE, *args],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                slaves = httpx.get(f"http://127.0.0.1:{master_port}/master/slaves").json()
                if slaves["slaves"]:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        result = run_cli(
            "execute",
            "--master",
            f"127.0.0.1:{master_port}",
            "--name",
            "remote",
            "--command",
            "echo remote",
            "--wait",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "TASK_FINISHED" in result.stdout
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
