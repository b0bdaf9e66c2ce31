"""Start a `mesoslite up` for a benchmark: from the frozen binary when it exists
(dist/mesoslite), else from this checkout with `python -m mesoslite`."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from mesoslite.runtime.cgroups.layout import detect_cgroup_layout

ROOT = Path(__file__).resolve().parent.parent


def mesoslite_command() -> list[str]:
    binary = os.environ.get("MESOSLITE_BINARY") or str(ROOT / "dist" / "mesoslite")
    if Path(binary).is_file() and os.access(binary, os.X_OK):
        return [binary]
    return [sys.executable, "-m", "mesoslite"]


def describe_host() -> str:
    """The facts a benchmark's figures depend on, for its first line."""
    layout = detect_cgroup_layout()
    mode = layout.mode.value if layout is not None else "none"
    return (
        f"nproc={os.cpu_count()} kernel={platform.release()} cgroups={mode} "
        f"python={platform.python_version()} load={os.getloadavg()[0]:.2f}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BenchCluster:
    master: str
    agent: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    ready_s: float

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start(*extra: str) -> BenchCluster:
    """Start and wait until ready: /health answers 200 and an agent is registered."""
    master_port, agent_port = free_port(), free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="mesoslite-bench-"))
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            *mesoslite_command(),
            "up",
            "--data-dir",
            str(data_dir),
            "--port",
            str(master_port),
            "--agent-port",
            str(agent_port),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    master = f"127.0.0.1:{master_port}"
    with httpx.Client(base_url=f"http://{master}", timeout=1) as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError("mesoslite up exited during start")
            if time.perf_counter() - started > 60:
                process.kill()
                raise RuntimeError("mesoslite up not ready in 60 s")
            try:
                if (
                    http.get("/health").status_code == 200
                    and http.get("/master/slaves").json()["slaves"]
                ):
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            time.sleep(0.005)
    ready_s = time.perf_counter() - started
    return BenchCluster(master, f"127.0.0.1:{agent_port}", process, data_dir, ready_s)


def tree_rss_bytes(pid: int) -> int:
    """RSS of a process and its descendants (a one-file binary runs as two processes)."""
    children = _children_of()
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def _children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def tree_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a process and its descendants: (their own, that of
    the children they have reaped, e.g. task processes)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children = _children_of()
    own = reaped = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime stime cutime cstime are fields 14-17 of stat (11-14 after the name).
        own += int(fields[11]) + int(fields[12])
        reaped += int(fields[13]) + int(fields[14])
    return own / ticks, reaped / ticks


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]
